package license

import (
	"errors"

	"github.com/licensehub/licensehub"
)

// Writes whose outcome is unknown.
//
// A push, a new version or a status change writes its record to the
// object store (the system of record) and then indexes it and records its
// exchange event. When a backend fails after the record's write, or while
// it (its answer may have been lost), the record may be stored although
// the call failed: that is EOUTCOMEUNKNOWN (503), never EOBJECTSTORE or
// EUNAVAILABLE, which promise that nothing was written. Retrying the same
// request completes it: a push or version with the same Idempotency-Key
// (and content) returns the stored license, a status change with the same
// op, reason and app within the retry window returns its record.

// Messages of EOUTCOMEUNKNOWN, by what may have been stored.
const (
	unknownLicense = "the license may have been stored; retry with the same Idempotency-Key"
	unknownStatus  = "the status change may have been recorded; retry the same request (same operation and reason) to complete it"
)

// outcomeUnknown turns a backend failure met after (or during) the write
// of a system-of-record object into EOUTCOMEUNKNOWN with msg, keeping the
// cause and the failing backend (Details "backend"); an EOUTCOMEUNKNOWN
// gets msg. Other errors (a conflict, a bug) are returned unchanged.
func outcomeUnknown(err error, msg string) error {
	switch licensehub.ErrorCode(err) {
	case licensehub.EOBJECTSTORE, licensehub.EUNAVAILABLE, licensehub.ETIMEOUT, licensehub.EOUTCOMEUNKNOWN:
	default:
		return err
	}
	e := &licensehub.Error{Code: licensehub.EOUTCOMEUNKNOWN, Message: msg, Err: err}
	var le *licensehub.Error
	if errors.As(err, &le) && le.Details["backend"] != nil {
		e.Details = map[string]any{"backend": le.Details["backend"]}
	}
	return e
}
