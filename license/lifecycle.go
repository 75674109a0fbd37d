package license

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// transitions is the whole lifecycle: from a status, which op leads where.
// A status absent here (withdrawn 03, cancelled 04, expired 05,
// transferred 06, revoked 07, other/superseded 99) is terminal.
var transitions = map[Status]map[string]Status{
	StatusValid: {
		OpSuspend: StatusSuspended, OpCancel: StatusCancelled, OpWithdraw: StatusWithdrawn,
		OpRevoke: StatusRevoked, OpExpire: StatusExpired, OpSupersede: StatusOther,
	},
	StatusSuspended: {
		OpRestore: StatusValid, OpCancel: StatusCancelled, OpWithdraw: StatusWithdrawn,
		OpRevoke: StatusRevoked, OpExpire: StatusExpired, OpSupersede: StatusOther,
	},
}

// StatusOps are the operations ChangeStatus accepts.
var StatusOps = []string{OpSuspend, OpRestore, OpCancel, OpWithdraw, OpRevoke, OpExpire}

// Transition says where op leads from status from, and whether it is
// allowed at all.
func Transition(from Status, op string) (Status, bool) {
	to, ok := transitions[from][op]
	return to, ok
}

// retryWindow: a status change that finds its own op, reason and app as
// the last record made this recently is taken for a retry of that change.
const retryWindow = 15 * time.Minute

// ChangeStatus applies op (suspend, restore, cancel, withdraw, revoke,
// expire) to identifier: it appends a signed status record
// status/<identifier>/<seq>.json create-only (seq = last + 1; a conflict
// is a concurrent change: re-read and re-check), then updates the index and
// records the exchange event. suspend, cancel, withdraw and revoke need a
// reason (EINVALID, field reason, rule required); a reason has at most
// MaxReasonLen characters and follows package signable's text rules; it
// is stored and signed in the status record. An illegal transition is
// EILLEGALTRANSITION (409) with Details {"current_status": name,
// "current_status_code": code}. A retry of a change that succeeded
// (same op, reason and app as the last record, within 15 minutes) returns
// that record again after completing its index and event.
func (l *Library) ChangeStatus(ctx context.Context, identifier, op, reason, app string) (*StatusChange, error) {
	known := false
	for _, o := range StatusOps {
		known = known || o == op
	}
	if !known {
		return nil, invalid("op", "operation %q is not one of suspend, restore, cancel, withdraw, revoke, expire", clip(op))
	}
	if err := checkReason(op, reason); err != nil {
		return nil, err
	}
	if _, err := parseID(identifier); err != nil {
		return nil, err
	}
	s, err := l.loadLicense(ctx, identifier)
	if err != nil {
		return nil, err
	}
	return l.appendStatus(ctx, s, op, reason, app, "")
}

func (l *Library) appendStatus(ctx context.Context, s *stored, op, reason, app, supersededBy string) (*StatusChange, error) {
	id := s.lic.Identifier
	if s.foreign != nil {
		return nil, foreignLicenseError(id) // its changes come from the province (ApplyForeignStatus)
	}
	for attempt := 0; attempt < 16; attempt++ {
		recs, err := l.statusRecords(ctx, id, false)
		if err != nil {
			return nil, err
		}
		cur, seq, by := current(recs, s.initial)
		now := l.cfg.Clock()
		to, ok := Transition(cur, op)
		if !ok {
			if len(recs) > 0 {
				last := recs[len(recs)-1]
				at, _ := time.Parse(signing.SignedAtLayout, last.At)
				if last.Op == op && last.Reason == reason && last.App == app && last.SupersededBy == supersededBy &&
					now.Sub(at) < retryWindow {
					if err := l.afterStatus(ctx, s, &last); err != nil {
						return nil, outcomeUnknown(err, unknownStatus)
					}
					return &last, nil
				}
			}
			return nil, &licensehub.Error{Code: licensehub.EILLEGALTRANSITION, Field: "op",
				Message: "cannot " + op + " a license that is " + statusName(cur, by) + " (status " + string(cur) + ")",
				Details: map[string]any{"current_status": statusName(cur, by), "current_status_code": string(cur)}}
		}
		rec := StatusChange{Identifier: id, Seq: seq + 1, From: cur, To: to, Op: op, Reason: reason, App: app,
			At: now.UTC().Format(signing.SignedAtLayout), SupersededBy: supersededBy}
		body, err := json.Marshal(&rec)
		if err != nil {
			return nil, err
		}
		signer, err := l.cfg.Signers.SignerFor(s.lic.Issuer.Code, now)
		if err != nil {
			return nil, err
		}
		d, err := signing.Sign(ctx, signer, body, now)
		if err != nil {
			return nil, bodyFieldError(err)
		}
		if rec.Document, err = d.Marshal(); err != nil {
			return nil, err
		}
		// Readers trust the index unless a change is pending: mark it
		// before the status object exists, clear it once the index has it.
		marker := []byte(strconv.Itoa(rec.Seq))
		if err := l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.Set(c, kvPending+id, marker, pendingTTL) }); err != nil {
			return nil, err
		}
		key := statusKey(id, rec.Seq)
		err = l.createObject(ctx, key, rec.Document, docContentType, nil)
		if isCode(err, licensehub.ECONFLICT) {
			// A concurrent change took this seq, or a retried request of
			// ours did: ours only if the stored bytes are ours.
			if raw, _, gerr := l.getObject(ctx, key); gerr == nil && bytes.Equal(raw, rec.Document) {
				err = nil
			} else {
				continue
			}
		}
		if isCode(err, licensehub.ETIMEOUT) {
			return nil, outcomeUnknown(err, unknownStatus) // the request ended during the write
		}
		if err != nil {
			return nil, err
		}
		if err := l.afterStatus(ctx, s, &rec); err != nil {
			return nil, outcomeUnknown(err, unknownStatus)
		}
		_ = l.kvDo(ctx, func(c context.Context) error {
			_, err := l.cfg.KV.CompareAndDelete(c, kvPending+id, marker)
			return err
		})
		return &rec, nil
	}
	return nil, licensehub.Errorf(licensehub.ECONFLICT, "license %s is changing too often concurrently; try again", id)
}

// afterStatus updates the index and records the exchange event of a
// status record that is stored.
func (l *Library) afterStatus(ctx context.Context, s *stored, rec *StatusChange) error {
	id := rec.Identifier
	at, _ := time.Parse(signing.SignedAtLayout, rec.At)
	return firstErr(
		func() error { return l.repairEntry(ctx, s, rec.To, rec.Seq, rec.SupersededBy) },
		func() error {
			if rec.To == StatusValid || rec.To == StatusSuspended {
				return nil
			}
			return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZRem(c, kvExpiry, id) })
		},
		func() error {
			return l.emit(ctx, at, id, rec.Op, rec.Seq, map[string]any{
				"op": rec.Op, "identifier": id, "type_code": s.lic.TypeCode, "authority": s.lic.Issuer.Code,
				"number": s.lic.Number, "from": rec.From, "to": rec.To, "superseded_by": rec.SupersededBy,
				"seq": rec.Seq, "object": statusKey(id, rec.Seq), "at": rec.At,
			})
		})
}

// supersede appends the record that marks old as replaced by next.
func (l *Library) supersede(ctx context.Context, old, next string, oldLic *License) (*StatusChange, error) {
	s := &stored{lic: *oldLic}
	if oldLic.Identifier != old {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "supersede: license mismatch")
	}
	// The full stored form is needed if the index has to be rebuilt.
	full, err := l.loadLicense(ctx, old)
	if err != nil {
		return nil, err
	}
	s = full
	return l.appendStatus(ctx, s, OpSupersede, "superseded by "+next, "", next)
}

// NewVersion makes the next version of identifier (op OpRenew or
// OpChange): its own identifier (version + 1) referencing identifier as
// License.Previous, signed and stored create-only, indexed (the natural key
// then names it), with its exchange event; then identifier gets a status
// record to StatusOther (99) with SupersededBy, so it reads as superseded
// and links to the new version. req must keep the type code, issuing
// authority and license number (they make the identifier).
func (l *Library) NewVersion(ctx context.Context, identifier string, req VersionRequest, op string) (*PushResult, error) {
	if op != OpRenew && op != OpChange {
		return nil, invalid("op", "operation %q is not renew or change", clip(op))
	}
	pid, err := parseID(identifier)
	if err != nil {
		return nil, err
	}
	old, err := l.loadLicense(ctx, identifier)
	if err != nil {
		return nil, err
	}
	if old.foreign != nil {
		return nil, foreignLicenseError(identifier)
	}
	switch {
	case req.TypeCode != pid.TypeCode:
		return nil, invalid("type_code", "a new version keeps the type code of %s", identifier)
	case req.Issuer.Code != pid.IssuerCode:
		return nil, invalid("issuer.code", "a new version keeps the issuing authority of %s", identifier)
	case serialOf(req.Number) != pid.Serial:
		return nil, invalid("number", "a new version keeps the license number of %s", identifier)
	}
	next, err := pid.Next()
	if err != nil {
		return nil, ident.WithField(err, "identifier")
	}
	recs, err := l.statusRecords(ctx, identifier, false)
	if err != nil {
		return nil, err
	}
	cur, _, by := current(recs, old.initial)
	if _, ok := Transition(cur, OpSupersede); !ok && by != next.String() {
		return nil, &licensehub.Error{Code: licensehub.EILLEGALTRANSITION, Field: "identifier",
			Message: "cannot make a new version of a license that is " + statusName(cur, by) + " (status " + string(cur) + ")",
			Details: map[string]any{"current_status": statusName(cur, by), "current_status_code": string(cur), "superseded_by": by}}
	}
	now := l.cfg.Clock()
	p, err := l.prepare(ctx, &req, next.Version, identifier, op, now)
	if err != nil {
		return nil, err
	}
	res, err := l.store(ctx, &req, p, now)
	if err != nil {
		return nil, err
	}
	if by != next.String() {
		// The new version is stored: a failure now leaves it stored and
		// the old one not yet superseded; a retry completes both.
		if _, err := l.supersede(ctx, identifier, next.String(), &old.lic); err != nil {
			return nil, outcomeUnknown(err, unknownLicense)
		}
	}
	return res, nil
}
