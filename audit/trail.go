package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/lease"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/signing/jcs"
)

// LockKey is the KV key of the sealer lock.
const LockKey = "audit:sealer"

// Defaults of Config.
const (
	DefaultSegmentSize    = 1000
	DefaultSealInterval   = 30 * time.Second
	DefaultLockTTL        = 2 * time.Minute
	DefaultMaxRecordSkew  = time.Minute
	DefaultQueryScanLimit = 20000
	DefaultQueryTimeSlack = 10 * time.Minute
	// MaxQueryLimit is the largest page Query returns.
	MaxQueryLimit = 1000
	// DefaultQueryLimit is the page size when Filter.Limit is 0.
	DefaultQueryLimit = 50
)

// UnreadableOperation is the operation of the record the sealer seals in
// place of a journal entry that is not a record, so that nothing in the
// journal is ever skipped silently.
const UnreadableOperation = "audit.unreadable_entry"

// Config configures a Trail.
type Config struct {
	// Journal is where Append makes records durable and Seal reads them
	// from (required unless Local is set): the shared Redis stream, or,
	// embedded, the local journal.
	Journal Journal
	// Local is this instance's own journal (OpenLocalJournal). When set,
	// Append numbers each record (Record.Seq, with the journal's stable
	// instance ID) and journals it there, fsynced, before anything else;
	// with a Journal as well (Redis), it then adds the record to Journal,
	// and Run trims Local of what is sealed and re-publishes to Journal
	// what the sealed trail lacks (after a Redis loss). Without Journal,
	// Local is the journal (embedded). See LocalJournal.
	Local   *LocalJournal
	Objects licensehub.ObjectStore // where segments and head.json live (required)
	// Signers gives the hub's signing key (required); Authority is the
	// hub's own authority code, whose active key signs checkpoints and
	// head.json (required).
	Signers   signing.SignerSource
	Authority string
	// Keys verifies head.json and segments the sealer finds already
	// written; nil means Signers, which must then be a KeySource too (the
	// keyring is).
	Keys signing.KeySource
	// Lock holds the sealer lock (LockKey): the shared Redis, or the
	// in-process KV when embedded (required).
	Lock licensehub.KV
	// HolderKey is the HMAC-SM3 key of holder hashes, at least
	// MinHolderKeySize bytes (required). Changing it makes older records
	// unfindable by holder.
	HolderKey []byte
	// InstanceID names this hub instance in records and checkpoints;
	// default: Local's instance ID, else host name and process ID. With
	// Local it must be empty or Local's.
	InstanceID string
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// SegmentSize is the most records in one segment; default
	// DefaultSegmentSize.
	SegmentSize int
	// SealInterval is how often Run seals; default DefaultSealInterval.
	SealInterval time.Duration
	// LockTTL is the sealer lock's expiry; a Seal stops starting new
	// segments after half of it. Default DefaultLockTTL.
	LockTTL time.Duration
	// MaxRecordSkew is how far Record.Time may be from the clock when
	// appended; default DefaultMaxRecordSkew.
	MaxRecordSkew time.Duration
	// QueryScanLimit is the most records one Query call examines; default
	// DefaultQueryScanLimit.
	QueryScanLimit int
	// QueryTimeSlack is how far out of time order records may be sealed:
	// Query stops going back in time once a segment's newest record is
	// older than Filter.From minus this. It must exceed twice
	// MaxRecordSkew plus the clock offset between hub instances; default
	// DefaultQueryTimeSlack.
	QueryTimeSlack time.Duration
	// Logger logs sealing problems; default slog.Default().
	Logger *slog.Logger
}

// Trail is the hub's audit trail: Append makes a record durable in the
// journal; Seal (run by Run every SealInterval, on one instance at a time)
// chains journal records with SM3 into signed segments in the object
// store; Query and HolderUsage read sealed and pending records; Verify
// checks the sealed chain. It is safe for concurrent use.
type Trail struct {
	journal   Journal
	objects   licensehub.ObjectStore
	signers   signing.SignerSource
	keys      signing.KeySource
	authority string
	lock      licensehub.KV
	holderKey []byte
	instance  string
	clock     func() time.Time
	segSize   int
	interval  time.Duration
	lockTTL   time.Duration
	skew      time.Duration
	scanLimit int
	timeSlack time.Duration
	log       *slog.Logger
	segments  *segmentCache

	// Local journal (see Config.Local and reconcile.go).
	local    *LocalJournal
	seqMu    sync.Mutex
	seqCache *sealedSeqs // which numbered records are sealed, as of the last Seal here
	recon    reconcileState

	// afterSegmentWrite, when set (tests), runs after a segment was
	// created and before head.json is written; an error stops Seal there,
	// as a crash would.
	afterSegmentWrite func(n int64) error
}

// New checks cfg and returns a Trail.
func New(cfg Config) (*Trail, error) {
	var missing []string
	for _, m := range []struct {
		name string
		nil  bool
	}{
		{"Journal", cfg.Journal == nil && cfg.Local == nil},
		{"Objects", cfg.Objects == nil},
		{"Signers", cfg.Signers == nil},
		{"Authority", cfg.Authority == ""},
		{"Lock", cfg.Lock == nil},
	} {
		if m.nil {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return nil, licensehub.FieldError(licensehub.EINVALID, missing[0], "audit: Config needs %v", missing)
	}
	if len(cfg.HolderKey) < MinHolderKeySize {
		return nil, licensehub.FieldError(licensehub.EINVALID, "HolderKey", "audit: the holder key must be at least %d bytes, got %d", MinHolderKeySize, len(cfg.HolderKey))
	}
	keys := cfg.Keys
	if keys == nil {
		ks, ok := cfg.Signers.(signing.KeySource)
		if !ok {
			return nil, licensehub.FieldError(licensehub.EINVALID, "Keys", "audit: Config needs Keys (Signers is not a KeySource)")
		}
		keys = ks
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SealInterval", cfg.SealInterval}, {"LockTTL", cfg.LockTTL}, {"MaxRecordSkew", cfg.MaxRecordSkew}, {"QueryTimeSlack", cfg.QueryTimeSlack}} {
		if d.v < 0 {
			return nil, licensehub.FieldError(licensehub.EINVALID, d.name, "audit: %s must not be negative, got %s", d.name, d.v)
		}
	}
	if cfg.Local != nil {
		if cfg.InstanceID != "" && cfg.InstanceID != cfg.Local.InstanceID() {
			return nil, licensehub.FieldError(licensehub.EINVALID, "InstanceID", "audit: InstanceID %q is not the local journal's instance %q", cfg.InstanceID, cfg.Local.InstanceID())
		}
		cfg.InstanceID = cfg.Local.InstanceID()
		if cfg.Journal == nil {
			cfg.Journal = cfg.Local
		}
	}
	if cfg.SegmentSize < 0 || cfg.QueryScanLimit < 0 {
		return nil, licensehub.FieldError(licensehub.EINVALID, "SegmentSize", "audit: SegmentSize and QueryScanLimit must not be negative")
	}
	t := &Trail{
		journal:   cfg.Journal,
		objects:   cfg.Objects,
		signers:   cfg.Signers,
		keys:      keys,
		authority: cfg.Authority,
		lock:      cfg.Lock,
		holderKey: bytes.Clone(cfg.HolderKey),
		instance:  cfg.InstanceID,
		clock:     cfg.Clock,
		segSize:   cmpOr(cfg.SegmentSize, DefaultSegmentSize),
		interval:  cmpOr(cfg.SealInterval, DefaultSealInterval),
		lockTTL:   cmpOr(cfg.LockTTL, DefaultLockTTL),
		skew:      cmpOr(cfg.MaxRecordSkew, DefaultMaxRecordSkew),
		scanLimit: cmpOr(cfg.QueryScanLimit, DefaultQueryScanLimit),
		timeSlack: cmpOr(cfg.QueryTimeSlack, DefaultQueryTimeSlack),
		log:       cfg.Logger,
		segments:  newSegmentCache(),
		local:     cfg.Local,
	}
	if t.clock == nil {
		t.clock = time.Now
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.instance == "" {
		host, _ := os.Hostname()
		t.instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return t, nil
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// InstanceID is the instance ID the trail writes into records.
func (t *Trail) InstanceID() string { return t.instance }

// HolderHash returns the hash under which records of this holder code are
// stored (Record.HolderHash).
func (t *Trail) HolderHash(code string) string { return HashHolder(t.holderKey, code) }

// SetHolder stores the holder code in r the only way the trail keeps it:
// masked (HolderMasked) and hashed with the holder key (HolderHash). An
// empty code clears both. The code itself is not kept.
func (t *Trail) SetHolder(r *Record, code string) {
	if NormalizeHolder(code) == "" {
		r.HolderMasked, r.HolderHash = "", ""
		return
	}
	r.HolderMasked, r.HolderHash = MaskHolder(code), t.HolderHash(code)
}

// Append makes r durable in the journal and returns once it is: the
// response that r audits may be sent after Append returns nil, and must
// not be if it returns an error. A zero Time becomes now and an empty
// InstanceID this instance's; Time is kept in UTC with milliseconds and
// must be within MaxRecordSkew of the clock. A record that is invalid
// (no operation or result, a holder that is not masked and hashed, …) is
// EINVALID; a journal failure keeps the journal's code (EUNAVAILABLE,
// ETIMEOUT).
func (t *Trail) Append(ctx context.Context, r Record) error {
	now := t.clock()
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.UTC().Truncate(time.Millisecond)
	if d := r.Time.Sub(now); d > t.skew || d < -t.skew {
		return licensehub.FieldError(licensehub.EINVALID, "time", "audit record time %s is %s away from now; at most %s is allowed", formatTime(r.Time), d.Round(time.Millisecond), t.skew)
	}
	if r.InstanceID == "" || t.local != nil {
		r.InstanceID = t.instance
	}
	r.Seq = 0 // numbered by the local journal
	if err := r.validate(); err != nil {
		return err
	}
	data, err := r.MarshalJSON() // not json.Marshal(r): that compacts the output again
	if err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "audit: encode record")
	}
	if len(data) > MaxRecordSize {
		return licensehub.FieldError(licensehub.EINVALID, "record", "audit record is %d bytes, more than %d", len(data), MaxRecordSize)
	}
	if err := t.journalAppend(ctx, data); err != nil {
		var e *licensehub.Error
		if errors.As(err, &e) {
			return err
		}
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit: journal append")
	}
	return nil
}

// SealResult says what one Seal did.
type SealResult struct {
	// Busy: another instance holds the sealer lock; nothing was done.
	Busy bool
	// Segments written and records sealed by this call.
	Segments int
	Records  int
	// Adopted counts segments found already written (by a sealer that
	// stopped between writing a segment and head.json, or lost its lock)
	// that this call verified and continued from.
	Adopted int
	// More: the call stopped (lock time budget) with journal entries left.
	More bool
	// Head is where the sealed chain ends now.
	Head HeadState
}

// Seal moves the journal's records into signed segments: under the
// sealer lock it reads head.json, adopts any segment already written
// beyond it (checked to continue the chain: create-only writes make a
// fork impossible), then repeatedly reads up to SegmentSize journal
// entries after the last sealed one, chains them, creates the next segment
// (create-only), writes head.json and trims the journal. Without the lock
// it returns Busy. Appends never wait for it.
//
// The lock is a lease (package lease) renewed while Seal runs: a sealer
// that loses it stops at its next step (its context ends). It needs no
// fencing token: segments are create-only, so a stale sealer cannot
// overwrite one, and a head.json it writes late only points behind the
// chain's end, which the next Seal adopts forward from.
func (t *Trail) Seal(ctx context.Context) (SealResult, error) {
	var res SealResult
	ran, err := lease.Run(ctx, t.lock, LockKey, lease.Options{Owner: t.instance, TTL: t.lockTTL},
		func(ctx context.Context, _ *lease.Lease) (err error) {
			res, err = t.seal(ctx)
			return err
		})
	res.Busy = !ran && err == nil
	return res, err
}

// seal is Seal under the sealer lock.
func (t *Trail) seal(ctx context.Context) (SealResult, error) {
	var res SealResult
	budget := time.Now().Add(t.lockTTL / 2)

	st, err := t.loadState(ctx)
	if err != nil {
		return res, err
	}
	// Numbered records already sealed (nil without a local journal):
	// a record published twice is sealed once.
	var seqs *sealedSeqs
	if t.local != nil {
		if seqs, err = t.sealedSeqsAt(ctx, st); err != nil {
			return res, err
		}
	}
	readFrom := st.journalID // entries through here are sealed or skipped
	headDirty := false
	var signer signing.Signer
	for {
		if err := ctxError(ctx, "audit seal"); err != nil {
			return res, err
		}
		if time.Now().After(budget) {
			res.More = true
			break
		}
		// A segment beyond the head: written by a sealer that stopped
		// before head.json, or that raced this one.
		next := st.segment + 1
		data, err := readObject(ctx, t.objects, SegmentKey(next), maxSegmentSize)
		if err == nil {
			if st, err = t.adopt(next, data, st); err != nil {
				return res, err
			}
			if seqs != nil {
				seqs.fold(next, data)
			}
			readFrom = laterJournalID(readFrom, st.journalID)
			res.Adopted++
			headDirty = true
			continue
		}
		if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return res, err
		}

		entries, err := t.journal.Read(ctx, readFrom, t.segSize)
		if err != nil {
			return res, err
		}
		if len(entries) == 0 {
			break
		}
		batch, refs := entries, []seqRef(nil)
		if seqs != nil {
			if batch, refs = seqs.fresh(entries); len(batch) == 0 {
				// Only records sealed already: skip them.
				readFrom = entries[len(entries)-1].ID
				t.trim(ctx, readFrom)
				if len(entries) < t.segSize {
					break
				}
				continue
			}
		}
		now := t.clock()
		if signer == nil {
			if signer, err = t.signers.SignerFor(t.authority, now); err != nil {
				return res, err
			}
		}
		recs := make([]sealedRecord, len(batch))
		for i, e := range batch {
			recs[i] = t.sealable(e)
		}
		seg, cp, nst, err := buildSegment(ctx, st, recs, signer, t.authority, t.instance, now)
		if err != nil {
			return res, err
		}
		_, err = t.objects.Create(ctx, SegmentKey(next), bytes.NewReader(seg), int64(len(seg)),
			licensehub.PutOptions{ContentType: "application/x-ndjson"})
		if licensehub.IsCode(err, licensehub.ECONFLICT) {
			continue // someone else sealed it first: adopt it on the next turn
		}
		if err != nil {
			return res, err
		}
		t.segments.put(next, segmentMetaFrom(cp, seg))
		if t.afterSegmentWrite != nil {
			if err := t.afterSegmentWrite(next); err != nil {
				return res, err
			}
		}
		st = nst
		res.Segments++
		res.Records += len(recs)
		readFrom = entries[len(entries)-1].ID
		if seqs != nil {
			seqs.addRefs(refs)
			seqs.segment = st.segment
		}
		if err := t.putHead(ctx, signer, st, now); err != nil {
			return res, err
		}
		headDirty = false
		if seqs != nil {
			t.keepSealedSeqs(ctx, seqs)
		}
		t.trim(ctx, readFrom)
		if len(entries) < t.segSize {
			break
		}
	}
	if headDirty {
		now := t.clock()
		if signer == nil {
			if signer, err = t.signers.SignerFor(t.authority, now); err != nil {
				return res, err
			}
		}
		if err := t.putHead(ctx, signer, st, now); err != nil {
			return res, err
		}
		if seqs != nil {
			t.keepSealedSeqs(ctx, seqs)
		}
		t.trim(ctx, readFrom)
	}
	res.Head = st.head(t.authority, t.clock())
	return res, nil
}

// Run seals every SealInterval (at once again while a Seal reports More)
// until ctx ends, logging failures; it returns when ctx is done. Call it
// in a goroutine you own; call Seal once more at shutdown if you like.
func (t *Trail) Run(ctx context.Context) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	t.reconcile(ctx) // records journaled locally before a crash reach the shared journal
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for {
			res, err := t.Seal(ctx)
			if err != nil {
				if ctx.Err() == nil {
					t.log.Error("audit: sealing failed; records stay in the journal until it succeeds", "err", err)
				}
				break
			}
			if !res.More {
				break
			}
		}
		t.reconcile(ctx)
	}
}

// loadState reads where the sealed chain ends from head.json. A head.json
// that is missing, malformed or not validly signed is replaced by the
// state of the last segment present (found by listing).
func (t *Trail) loadState(ctx context.Context) (chainState, error) {
	h, found, prob, err := readHead(ctx, t.objects, t.keys, t.authority)
	if err != nil {
		return chainState{}, err
	}
	if found && prob == nil {
		return chainState{segment: h.Segment, lastSeq: h.LastSeq, lastHash: h.LastHash, journalID: h.LastJournalID}, nil
	}
	if prob != nil {
		t.log.Warn("audit: head.json is not usable; recovering the chain's end from the segments", "problem", prob.Error())
	}
	nums, _, err := listSegments(ctx, t.objects)
	if err != nil {
		return chainState{}, err
	}
	if len(nums) == 0 {
		return genesis, nil
	}
	n := nums[len(nums)-1]
	data, err := readObject(ctx, t.objects, SegmentKey(n), maxSegmentSize)
	if err != nil {
		return chainState{}, err
	}
	st, _, err := t.selfCheck(n, data)
	return st, err
}

// selfCheck verifies segment n against its own checkpoint (signature,
// records, hashes) and returns the chain state after it.
func (t *Trail) selfCheck(n int64, data []byte) (chainState, Checkpoint, error) {
	lines := splitLines(data)
	var cp Checkpoint
	if len(lines) > 0 {
		if doc, err := signing.ParseDocument(lines[len(lines)-1]); err == nil {
			_ = json.Unmarshal(doc.Body, &cp)
		}
	}
	before := chainState{segment: n - 1, lastSeq: cp.FirstSeq - 1, lastHash: cp.PrevHash}
	if !isHexHash(before.lastHash) || before.lastSeq < 0 {
		before.lastHash, before.lastSeq = ZeroHash, 0
	}
	cp, _, st, prob := checkSegment(t.keys, t.authority, n, data, before)
	if prob != nil {
		return chainState{}, cp, licensehub.Errorf(licensehub.EINTERNAL, "audit: segment %d is not intact: %v", n, prob)
	}
	return st, cp, nil
}

// adopt checks that segment n, found already written, continues the chain
// at st and returns the state after it.
func (t *Trail) adopt(n int64, data []byte, st chainState) (chainState, error) {
	cp, _, next, prob := checkSegment(t.keys, t.authority, n, data, st)
	if prob != nil {
		return st, &licensehub.Error{Code: licensehub.EINTERNAL,
			Message: fmt.Sprintf("audit: segment %d exists but does not continue the chain (%v); sealing stops until this is resolved", n, prob),
			Details: map[string]any{"problem": prob}}
	}
	t.segments.put(n, segmentMetaFrom(cp, data))
	t.log.Info("audit: continued from a segment already written", "segment", n, "records", cp.Count)
	return next, nil
}

func (t *Trail) putHead(ctx context.Context, signer signing.Signer, st chainState, at time.Time) error {
	doc, err := signBody(ctx, signer, st.head(t.authority, at), at)
	if err != nil {
		return err
	}
	doc = append(doc, '\n')
	_, err = t.objects.Put(ctx, HeadKey, bytes.NewReader(doc), int64(len(doc)), licensehub.PutOptions{ContentType: "application/json"})
	return err
}

// trim trims the journal through id; a failure is logged (the next Seal
// trims again).
func (t *Trail) trim(ctx context.Context, id string) {
	if id == "" {
		return
	}
	if err := t.journal.Trim(ctx, id); err != nil {
		t.log.Warn("audit: trimming the journal failed; the next seal retries", "through", id, "err", err)
	}
}

// sealable turns a journal entry into the record to chain: its canonical
// JSON when it is a record, otherwise a record of the unreadable entry.
func (t *Trail) sealable(e Entry) sealedRecord {
	rec, ok := recordBytes(e.Data)
	if !ok {
		t.log.Error("audit: a journal entry is not an audit record; sealing a record of it instead", "journal_id", e.ID, "bytes", len(e.Data))
		rec = unreadableRecord(e)
	}
	return sealedRecord{journalID: e.ID, record: rec}
}

// recordBytes returns the canonical form of data if it is a record.
func recordBytes(data []byte) ([]byte, bool) {
	if len(data) > MaxRecordSize {
		return nil, false
	}
	canon, err := jcs.Canonicalize(data)
	if err != nil {
		return nil, false
	}
	if _, err := decodeRecord(canon); err != nil {
		return nil, false
	}
	return canon, true
}

// unreadableRecord is the record sealed in place of entry e. Its time is
// the journal ID's, so the pending view (Query) and the sealed record
// agree.
func unreadableRecord(e Entry) []byte {
	var at time.Time
	if id, ok := parseJournalID(e.ID); ok {
		at = time.UnixMilli(int64(min(id.ms, 1<<62)))
	}
	sum := sm3.Sum(e.Data)
	r := Record{
		Time:      at,
		Operation: UnreadableOperation,
		Result:    licensehub.EMALFORMED,
		Reason:    fmt.Sprintf("journal entry %s (%d bytes, SM3 %s) is not an audit record", e.ID, len(e.Data), hex.EncodeToString(sum[:])),
	}
	b, _ := json.Marshal(r)
	canon, _ := jcs.Canonicalize(b)
	return canon
}

// ---- segment metadata cache (Query) ----

// segmentMeta is what Query needs to know of a sealed segment without
// reading it: its seq range and record times. Segments never change, so
// the cache never goes stale.
type segmentMeta struct {
	firstSeq, lastSeq int64
	minTime, maxTime  time.Time
	journalID         string
}

func segmentMetaFrom(cp Checkpoint, data []byte) segmentMeta {
	m := segmentMeta{firstSeq: cp.FirstSeq, lastSeq: cp.LastSeq, journalID: cp.LastJournalID}
	for _, l := range splitLines(data) {
		var line struct {
			Record struct {
				Time string `json:"time"`
			} `json:"record"`
		}
		if json.Unmarshal(l, &line) != nil {
			continue
		}
		tm, err := parseTime(line.Record.Time)
		if err != nil {
			continue
		}
		if m.minTime.IsZero() || tm.Before(m.minTime) {
			m.minTime = tm
		}
		if tm.After(m.maxTime) {
			m.maxTime = tm
		}
	}
	return m
}

// maxCachedSegments bounds the metadata cache (about 100 bytes each).
const maxCachedSegments = 1 << 20

type segmentCache struct {
	mu sync.Mutex
	m  map[int64]segmentMeta
}

func newSegmentCache() *segmentCache { return &segmentCache{m: map[int64]segmentMeta{}} }

func (c *segmentCache) get(n int64) (segmentMeta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.m[n]
	return m, ok
}

func (c *segmentCache) put(n int64, m segmentMeta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) < maxCachedSegments {
		c.m[n] = m
	}
}
