package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"

	"github.com/licensehub/licensehub"
)

// EpochKey is the KV key whose value changes when the KV (Redis) loses its
// data: an instance that finds another value than the one it saw last
// re-publishes every record of its local journal that is not sealed.
const EpochKey = "audit:journal:epoch"

// AckedPrefix holds one signed document per instance with a local
// journal: how many records it has acknowledged (AckedMark), written by
// Run when that changed. Verify compares it with the sealed trail.
const AckedPrefix = "audit/acked/"

// AckedType is the body type of an AckedMark document.
const AckedType = "licensehub.audit.acked"

// AckedMark is the body of AckedKey(instance): instance had journaled,
// durably, its records 1..AckedSeq by UpdatedAt.
type AckedMark struct {
	Type      string `json:"type"` // AckedType
	Authority string `json:"authority"`
	Instance  string `json:"instance"`
	AckedSeq  uint64 `json:"acked_seq"`
	UpdatedAt string `json:"updated_at"` // TimeLayout
}

// AckedKey is the object key of instance's AckedMark.
func AckedKey(instance string) string { return AckedPrefix + instance + ".json" }

// reconcileState is what Run's reconcile remembers between turns.
type reconcileState struct {
	mu        sync.Mutex
	epoch     string              // EpochKey's value last seen ("" before the first turn)
	failed    atomic.Bool         // an Append could not add its record to the shared journal
	missing   map[uint64]struct{} // local records not sealed although a later one is, last turn
	trimmedID string              // local journal entries through here are trimmed
	marked    uint64              // AckedSeq last written
}

// journalAppend makes the encoded record data durable: in the local
// journal (numbered) when there is one, and in the shared journal.
func (t *Trail) journalAppend(ctx context.Context, data []byte) error {
	if t.local == nil {
		_, err := t.journal.Append(ctx, data)
		return err
	}
	rec, seq, err := t.local.appendRecord(ctx, data)
	if err != nil {
		return err
	}
	if t.journal == Journal(t.local) {
		return nil
	}
	// The record is durable: a shared journal that fails now delays its
	// sealing (Run re-publishes it), it does not lose it.
	if _, err := t.journal.Append(ctx, rec); err != nil {
		t.recon.failed.Store(true)
		t.log.Warn("audit: the shared journal did not take a record; it is kept in the local journal and published again", "instance", t.instance, "seq", seq, "err", err)
	}
	return nil
}

// Reconcile is one turn of what Run does for the local journal after
// sealing: it trims the local journal of the records the sealed trail
// holds, re-publishes to the shared journal the ones it lacks when they
// may be lost (first turn after start, the KV's epoch changed, an Append
// could not publish, or a later record of this instance was sealed twice
// in a row without it), and writes this instance's AckedMark. It does
// nothing without a local journal or when the local journal is the only
// one.
func (t *Trail) Reconcile(ctx context.Context) error {
	if t.local == nil {
		return nil
	}
	t.recon.mu.Lock()
	defer t.recon.mu.Unlock()
	if t.journal == Journal(t.local) {
		return t.writeAckedMark(ctx)
	}

	sealed, err := t.sealedOf(ctx)
	if err != nil {
		return err
	}
	through := sealed.through()

	// The local records: trim what is sealed, collect what is not.
	var trimTo string
	var trimSeq uint64
	var pending []Entry
	var pendingSeq []uint64
	err = t.local.scan(ctx, t.recon.trimmedID, func(e Entry, seq uint64) bool {
		switch {
		case seq == 0: // not numbered (written by an older hub): sealed from the shared journal as before
		case seq <= through:
			trimTo, trimSeq = e.ID, seq
		case !sealed.has(seq):
			pending = append(pending, e)
			pendingSeq = append(pendingSeq, seq)
		}
		return true
	})
	if err != nil {
		return err
	}
	if trimTo != "" {
		if err := t.local.trimThrough(ctx, trimTo, trimSeq); err != nil {
			return err
		}
		t.recon.trimmedID = trimTo
	}

	// Whether the shared journal may have lost some of them.
	republish := t.recon.failed.Swap(false)
	epoch, err := t.epoch(ctx)
	if err != nil {
		t.recon.failed.Store(republish || t.recon.failed.Load())
		return err
	}
	if epoch != t.recon.epoch {
		if t.recon.epoch != "" {
			t.log.Warn("audit: the shared journal was reset (Redis lost its data); publishing again the records not sealed yet", "instance", t.instance, "records", len(pending))
		}
		republish = true
		t.recon.epoch = epoch
	}
	top := sealed.top()
	missing := map[uint64]struct{}{}
	var out []Entry
	for i, e := range pending {
		s := pendingSeq[i]
		_, before := t.recon.missing[s]
		switch {
		case republish:
			out = append(out, e)
		case s < top && before:
			out = append(out, e) // a later record was sealed, twice now, without it
		case s < top:
			missing[s] = struct{}{}
		}
	}
	t.recon.missing = missing
	for i, e := range out {
		if _, err := t.journal.Append(ctx, e.Data); err != nil {
			t.recon.failed.Store(true)
			return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit: publishing %d local records again (%d done)", len(out), i)
		}
	}
	if len(out) > 0 {
		t.log.Info("audit: published local records again", "instance", t.instance, "records", len(out))
	}
	return t.writeAckedMark(ctx)
}

// reconcile is Reconcile for Run: failures are logged.
func (t *Trail) reconcile(ctx context.Context) {
	if err := t.Reconcile(ctx); err != nil && ctx.Err() == nil {
		t.log.Warn("audit: reconciling the local journal failed; the next turn retries", "err", err)
	}
}

// sealedOf returns this instance's numbered records that are sealed, as
// SealedSeqsKey says (or this instance's last Seal, if newer).
func (t *Trail) sealedOf(ctx context.Context) (*seqSet, error) {
	s, err := readSealedSeqs(ctx, t.objects)
	if err != nil {
		return nil, err
	}
	t.seqMu.Lock()
	if c := t.seqCache; c != nil && (s == nil || c.segment > s.segment) {
		s = c.clone()
	}
	t.seqMu.Unlock()
	if s == nil || s.m[t.instance] == nil {
		return &seqSet{}, nil
	}
	return s.m[t.instance], nil
}

// epoch returns EpochKey's value, setting a new one when it is missing.
func (t *Trail) epoch(ctx context.Context) (string, error) {
	for range 3 {
		v, err := t.lock.Get(ctx, EpochKey)
		if err == nil {
			return string(v), nil
		}
		if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return "", err
		}
		b := make([]byte, 16)
		rand.Read(b)
		if _, err := t.lock.SetNX(ctx, EpochKey, []byte(hex.EncodeToString(b)), 0); err != nil {
			return "", err
		}
	}
	return "", licensehub.Errorf(licensehub.EUNAVAILABLE, "audit: %s keeps disappearing", EpochKey)
}

// writeAckedMark writes this instance's AckedMark when it changed
// (t.recon.mu held).
func (t *Trail) writeAckedMark(ctx context.Context) error {
	acked := t.local.Acked()
	if acked == 0 || acked == t.recon.marked {
		return nil
	}
	now := t.clock()
	signer, err := t.signers.SignerFor(t.authority, now)
	if err != nil {
		return err
	}
	doc, err := signBody(ctx, signer, AckedMark{Type: AckedType, Authority: t.authority, Instance: t.instance, AckedSeq: acked, UpdatedAt: formatTime(now)}, now)
	if err != nil {
		return err
	}
	doc = append(doc, '\n')
	if _, err := t.objects.Put(ctx, AckedKey(t.instance), bytes.NewReader(doc), int64(len(doc)), licensehub.PutOptions{ContentType: "application/json"}); err != nil {
		return err
	}
	t.recon.marked = acked
	return nil
}

// laterJournalID returns the later of two journal IDs ("" is the start).
func laterJournalID(a, b string) string {
	if a == "" {
		return b
	}
	if c, ok := compareJournalIDs(a, b); ok && c < 0 {
		return b
	}
	return a
}

// FinalSeal is the last turn of an instance that stops: what its local
// journal holds and the shared journal may have lost (a Redis that
// restarted empty since the last turn) is published again, everything
// published is sealed, and the local journal is trimmed of it, so that
// nothing this instance acknowledged waits for its next start.
func (t *Trail) FinalSeal(ctx context.Context) error {
	if err := t.Reconcile(ctx); err != nil {
		return err
	}
	for {
		res, err := t.Seal(ctx)
		if err != nil {
			return err
		}
		if !res.More {
			break
		}
	}
	return t.Reconcile(ctx)
}
