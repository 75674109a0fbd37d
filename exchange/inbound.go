package exchange

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// Inbound outcomes (Result.Outcome).
const (
	OutcomeStored    = "stored" // a foreign license (or version) was stored and indexed
	OutcomeApplied   = license.ForeignApplied
	OutcomeHeld      = license.ForeignHeld
	OutcomeDuplicate = license.ForeignDuplicate // the event ID (or seq) was applied before: nothing changed
	OutcomeRejected  = "rejected"               // ReceiveBatch only: Code says why; nothing stored
)

// InboundEventsPrefix holds one create-only marker per applied inbound
// event: exchange/inbound/events/<hex SM3 of the event ID>.json.
const InboundEventsPrefix = "exchange/inbound/events/"

// MaxBatch bounds the envelopes of one ReceiveBatch.
const MaxBatch = 1000

// ForeignLibrary is what Inbound needs of the license library
// (*license.Library).
type ForeignLibrary interface {
	Import(ctx context.Context, doc []byte, prov license.Provenance, initial license.Status) (*license.PushResult, error)
	ApplyForeignStatus(ctx context.Context, id string, seq int, change license.ForeignStatus, envelope []byte) (string, error)
}

var _ ForeignLibrary = (*license.Library)(nil)

// InboundConfig configures an Inbound. Library, Objects and Keys are
// required.
type InboundConfig struct {
	Library ForeignLibrary
	Objects licensehub.ObjectStore // the event markers
	// KV is not used yet (the markers are objects, the system of record);
	// accepted so the wiring does not change when a KV cache is added.
	KV licensehub.KV
	// Keys is the province's key bundle: an envelope verifies against it
	// or is ESIGINVALID.
	Keys signing.KeySource
	// Province is the expected sender authority; "" accepts any sender
	// whose key is in Keys.
	Province string
	Clock    func() time.Time // nil: time.Now
	// OpTimeout bounds each marker read or write; 0: 10s.
	OpTimeout time.Duration
	// Workers bounds the licenses a batch works on concurrently (the
	// events of one license are handled in arrival order); 0: 8.
	Workers int
}

// Inbound receives the provincial platform's envelopes: licenses issued
// elsewhere in the province and their status changes. Safe for concurrent
// use and for several hub instances sharing one object store.
type Inbound struct {
	cfg InboundConfig
}

// Result is what happened to one envelope.
type Result struct {
	EventID string `json:"event_id,omitempty"`
	License string `json:"license,omitempty"`
	Seq     int    `json:"seq,omitempty"`
	Outcome string `json:"outcome"`
	// Code, Message and Field say why an envelope of a batch was rejected.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// NewInbound checks cfg and returns an Inbound.
func NewInbound(cfg InboundConfig) (*Inbound, error) {
	switch {
	case cfg.Library == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Library", "exchange inbound: no license library")
	case cfg.Objects == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Objects", "exchange inbound: no object store")
	case cfg.Keys == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Keys", "exchange inbound: no province key bundle")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	return &Inbound{cfg: cfg}, nil
}

// MarkerKey is the object key of the marker of an applied event.
func MarkerKey(eventID string) string {
	sum := sm3.Sum([]byte(eventID))
	return InboundEventsPrefix + hex.EncodeToString(sum[:]) + ".json"
}

type marker struct {
	EventID string `json:"event_id"`
	License string `json:"license,omitempty"`
	Seq     int    `json:"seq,omitempty"`
	Outcome string `json:"outcome"`
	At      string `json:"at"`
}

// Receive verifies one envelope against the province's keys and applies
// it once per event ID: ESIGINVALID (a bad signature, a key not in the
// bundle, a tampered body, a sender other than the province) and
// EMALFORMED store nothing. new, renew and change import the carried
// license document (Outcome stored, or duplicate when it was stored
// before); status changes apply in seq order (applied, held or
// duplicate). The marker of the event is written after the event is
// applied, so a crash between the two re-applies it, idempotently.
func (in *Inbound) Receive(ctx context.Context, raw []byte) (Result, error) {
	ev, err := Open(raw, in.cfg.Keys)
	if licensehub.IsCode(err, licensehub.EKEYNOTFOUND) {
		// A key that is not in the province's bundle: not the province.
		return Result{}, &licensehub.Error{Code: licensehub.ESIGINVALID, Field: "signature.kid",
			Message: "envelope is not signed with a key of the provincial platform", Err: err}
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{EventID: ev.ID, License: ev.License, Seq: ev.Seq}
	if in.cfg.Province != "" && ev.Sender != in.cfg.Province {
		return res, &licensehub.Error{Code: licensehub.ESIGINVALID, Field: "body.sender",
			Message: "envelope is from " + ev.Sender + ", not from the provincial platform",
			Details: map[string]any{"sender": ev.Sender}}
	}
	if err := checkInbound(ev); err != nil {
		return res, err
	}
	mkey := MarkerKey(ev.ID)
	if _, err := in.head(ctx, mkey); err == nil {
		res.Outcome = OutcomeDuplicate
		return res, nil
	} else if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return res, backendErr(ctx, err)
	}

	switch ev.Op {
	case license.OpNew, license.OpRenew, license.OpChange:
		out, err := in.cfg.Library.Import(ctx, ev.Document,
			license.Provenance{Kind: license.ProvenanceProvince, Source: ev.Sender, EventID: ev.ID},
			license.Status(ev.InitialStatus))
		if err != nil {
			return res, err
		}
		res.Outcome = OutcomeStored
		if !out.Created {
			res.Outcome = OutcomeDuplicate
		}
	default:
		// The stored record is the envelope in canonical form.
		d, err := signing.ParseDocument(raw)
		if err != nil {
			return res, err
		}
		canon, err := d.Marshal()
		if err != nil {
			return res, err
		}
		st := ev.Status
		res.Outcome, err = in.cfg.Library.ApplyForeignStatus(ctx, ev.License, ev.Seq, license.ForeignStatus{
			Op: ev.Op, From: license.Status(st.From), To: license.Status(st.To), Reason: st.Reason,
			SupersededBy: st.SupersededBy, At: ev.Time}, canon)
		if err != nil {
			return res, err
		}
	}
	m, _ := json.Marshal(marker{EventID: ev.ID, License: ev.License, Seq: ev.Seq, Outcome: res.Outcome,
		At: in.cfg.Clock().UTC().Format(signing.SignedAtLayout)})
	if err := in.create(ctx, mkey, m); err != nil && !licensehub.IsCode(err, licensehub.ECONFLICT) {
		// Applied but not marked: a redelivery re-applies it idempotently.
		return res, backendErr(ctx, err)
	}
	return res, nil
}

// checkInbound checks what an inbound event must carry, before anything
// is written.
func checkInbound(ev *Event) error {
	switch ev.Op {
	case license.OpNew, license.OpRenew, license.OpChange:
		if len(ev.Document) == 0 {
			return licensehub.FieldError(licensehub.EMALFORMED, "body.document", "a %s event carries the license document", ev.Op)
		}
		d, err := signing.ParseDocument(ev.Document)
		if err != nil {
			return licensehub.Wrap(err, licensehub.EMALFORMED, "body.document is not a signed document")
		}
		var body struct {
			Identifier string `json:"identifier"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil || body.Identifier != ev.License {
			return licensehub.FieldError(licensehub.EINVALID, "body.license",
				"the event names license %q but its document is %q", ev.License, body.Identifier)
		}
		if ev.Seq != 0 {
			return licensehub.FieldError(licensehub.EINVALID, "body.seq", "a %s event has seq 0", ev.Op)
		}
		switch license.Status(ev.InitialStatus) {
		case "", license.StatusValid, license.StatusExpired:
		default:
			return licensehub.FieldError(licensehub.EINVALID, "body.initial_status",
				"a license is received valid (01) or already expired (05), not with status %q", clipStatus(ev.InitialStatus))
		}
	case license.OpSuspend, license.OpRestore, license.OpCancel, license.OpWithdraw,
		license.OpRevoke, license.OpExpire, license.OpSupersede:
		switch {
		case ev.Status == nil:
			return licensehub.FieldError(licensehub.EMALFORMED, "body.status", "a status change event carries status {from, to}")
		case ev.Seq < 1:
			return licensehub.FieldError(licensehub.EINVALID, "body.seq", "a status change has seq 1 or more")
		case ev.License == "":
			return licensehub.FieldError(licensehub.EINVALID, "body.license", "required")
		case ev.InitialStatus != "":
			return licensehub.FieldError(licensehub.EINVALID, "body.initial_status", "only a license event carries an initial status")
		}
	default:
		return licensehub.FieldError(licensehub.EINVALID, "body.op", "operation %q is not accepted from the provincial platform", ev.Op)
	}
	return nil
}

// clipStatus bounds a status code quoted in a message.
func clipStatus(s string) string {
	if r := []rune(s); len(r) > 8 {
		return string(r[:8]) + "…"
	}
	return s
}

// ReceiveBatch receives envelopes one by one: one Result per envelope, in
// order; a rejected envelope (Outcome rejected, with its Code) does not
// stop the others. The events of one license are handled in arrival
// order, different licenses concurrently (Workers). The error is for the
// batch as a whole (too many envelopes).
func (in *Inbound) ReceiveBatch(ctx context.Context, envelopes []json.RawMessage) ([]Result, error) {
	if len(envelopes) > MaxBatch {
		return nil, licensehub.FieldError(licensehub.EINVALID, "envelopes", "at most %d envelopes per batch, got %d", MaxBatch, len(envelopes))
	}
	out := make([]Result, len(envelopes))
	// Group by license (as the envelope says, unverified: only used to
	// order the work; each envelope is verified by Receive).
	groups := map[string][]int{}
	var order []string
	for i, raw := range envelopes {
		k := peekLicense(raw, i)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	sem := make(chan struct{}, in.cfg.Workers)
	var wg sync.WaitGroup
	for _, k := range order {
		idx := groups[k]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, i := range idx {
				out[i] = in.receiveOne(ctx, envelopes[i])
			}
		}()
	}
	wg.Wait()
	return out, nil
}

func (in *Inbound) receiveOne(ctx context.Context, raw []byte) Result {
	res, err := in.Receive(ctx, raw)
	if err == nil {
		return res
	}
	var e *licensehub.Error
	if !errors.As(err, &e) {
		e = &licensehub.Error{Code: licensehub.EINTERNAL}
	}
	res.Outcome, res.Code, res.Message, res.Field = OutcomeRejected, e.Code, e.Message, e.Field
	if e.Code == licensehub.EINTERNAL {
		res.Message = "internal error"
	}
	return res
}

// peekLicense reads the license an envelope claims to be about, for
// grouping; unparsable envelopes get a group of their own.
func peekLicense(raw []byte, i int) string {
	var env struct {
		Body struct {
			License string `json:"license"`
		} `json:"body"`
	}
	if json.Unmarshal(raw, &env) != nil || env.Body.License == "" {
		return "\x00" + strconv.Itoa(i)
	}
	return env.Body.License
}

func (in *Inbound) head(ctx context.Context, key string) (licensehub.ObjectInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, in.cfg.OpTimeout)
	defer cancel()
	return in.cfg.Objects.Head(cctx, key)
}

func (in *Inbound) create(ctx context.Context, key string, data []byte) error {
	cctx, cancel := context.WithTimeout(ctx, in.cfg.OpTimeout)
	defer cancel()
	_, err := in.cfg.Objects.Create(cctx, key, bytes.NewReader(data), int64(len(data)),
		licensehub.PutOptions{ContentType: "application/json"})
	return err
}

// backendErr is an object store failure as callers see it.
func backendErr(ctx context.Context, err error) error {
	switch licensehub.ErrorCode(err) {
	case licensehub.EOBJECTSTORE, licensehub.ETIMEOUT, licensehub.EUNAVAILABLE:
		return err
	}
	if ctx.Err() != nil {
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "request ended while the object store was being used")
	}
	return &licensehub.Error{Code: licensehub.EOBJECTSTORE, Message: "object store unavailable",
		Details: map[string]any{"backend": "object_store"}, Err: err}
}
