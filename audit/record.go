package audit

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/logging"
)

// TimeLayout is the one form of Record.Time on the wire: UTC with
// milliseconds, e.g. 2026-11-26T08:00:00.123Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// ResultOK is Record.Result for an operation that succeeded; any other
// value is the licensehub error code the caller received.
const ResultOK = "OK"

// MaxRecordSize bounds the JSON form of one record, in bytes.
const MaxRecordSize = 64 << 10

// MinHolderKeySize is the shortest holder hash key New accepts, in bytes.
const MinHolderKeySize = 16

// Record is one audited use of the hub: who (app, operator) did what
// (operation, matter, reason) to which licenses of which holder, with what
// result, in which request on which hub instance.
//
// The holder code itself is never stored: HolderMasked is logging.MaskID
// of it (for display) and HolderHash the hex HMAC-SM3 of it under the
// hub's holder key (to find a holder's records). Fill both with
// Trail.SetHolder (or HashHolder and logging.MaskID), which do not keep
// the code.
type Record struct {
	Time         time.Time `json:"time"`                    // UTC, milliseconds (TimeLayout); Trail.Append fills a zero Time
	AppID        string    `json:"app_id"`                  // the member system that called ("" if it could not be identified)
	Operator     *Operator `json:"operator,omitempty"`      // the person acting by duty, when there is one
	Operation    string    `json:"operation"`               // e.g. "license.read", "license.issue", "consent.create"
	Matter       string    `json:"matter,omitempty"`        // service matter (事项) code
	Reason       string    `json:"reason,omitempty"`        // the reason for use the caller stated
	Licenses     []string  `json:"licenses,omitempty"`      // license identifiers involved
	Uses         []Use     `json:"uses,omitempty"`          // the use records (加注件) a lookup made
	HolderMasked string    `json:"holder_masked,omitempty"` // logging.MaskID of the holder code
	HolderHash   string    `json:"holder_hash,omitempty"`   // hex HMAC-SM3(holder key, holder code)
	Result       string    `json:"result"`                  // ResultOK or the error code answered
	RequestID    string    `json:"request_id,omitempty"`
	InstanceID   string    `json:"instance_id,omitempty"` // the hub instance that served the request; Trail.Append fills it
	// Seq numbers the records of InstanceID 1, 2, 3, … in the order its
	// local journal made them durable (Trail.Append fills it when the trail
	// has a LocalJournal; 0, absent, in records of older hubs). A number
	// missing from the sealed trail is a lost record (Verify names it).
	Seq uint64 `json:"instance_seq,omitempty"`
}

// Operator is the person who acted through the member system by duty.
// Use is one use record (加注件) handed out by a lookup: the trail is its
// durable record (the access code that reads the annotated copy lives only
// as long as the code, in the KV).
type Use struct {
	ID        string `json:"id"`         // the use record's ID (hex of 16 bytes of SM3 of its access code)
	Of        string `json:"of"`         // the license identifier or certificate number handed out
	ExpiresAt string `json:"expires_at"` // the annotated copy is valid until (TimeLayout)
}

type Operator struct {
	Account    string `json:"account"`
	Name       string `json:"name,omitempty"`
	Department string `json:"department,omitempty"`
	Role       string `json:"role,omitempty"`
}

// recordJSON is Record on the wire, with the time in TimeLayout.
type recordJSON struct {
	Time string `json:"time"`
	recordFields
}

// recordFields is Record without its time: the same fields, the same tags.
type recordFields struct {
	AppID        string    `json:"app_id"`
	Operator     *Operator `json:"operator,omitempty"`
	Operation    string    `json:"operation"`
	Matter       string    `json:"matter,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Licenses     []string  `json:"licenses,omitempty"`
	Uses         []Use     `json:"uses,omitempty"`
	HolderMasked string    `json:"holder_masked,omitempty"`
	HolderHash   string    `json:"holder_hash,omitempty"`
	Result       string    `json:"result"`
	RequestID    string    `json:"request_id,omitempty"`
	InstanceID   string    `json:"instance_id,omitempty"`
	Seq          uint64    `json:"instance_seq,omitempty"` // last: LocalJournal appends it to the encoded record
}

// MarshalJSON writes the record with "time" in TimeLayout (UTC).
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(recordJSON{Time: formatTime(r.Time), recordFields: r.fields()})
}

func (r Record) fields() recordFields {
	return recordFields{
		AppID: r.AppID, Operator: r.Operator, Operation: r.Operation, Matter: r.Matter,
		Reason: r.Reason, Licenses: r.Licenses, Uses: r.Uses, HolderMasked: r.HolderMasked, HolderHash: r.HolderHash,
		Result: r.Result, RequestID: r.RequestID, InstanceID: r.InstanceID, Seq: r.Seq,
	}
}

// UnmarshalJSON reads a record. It is lenient about members it does not
// know (a newer hub may add some) but requires "time" in TimeLayout.
func (r *Record) UnmarshalJSON(b []byte) error {
	var w recordJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t, err := parseTime(w.Time)
	if err != nil {
		return err
	}
	f := w.recordFields
	*r = Record{
		Time: t, AppID: f.AppID, Operator: f.Operator, Operation: f.Operation, Matter: f.Matter,
		Reason: f.Reason, Licenses: f.Licenses, Uses: f.Uses, HolderMasked: f.HolderMasked, HolderHash: f.HolderHash,
		Result: f.Result, RequestID: f.RequestID, InstanceID: f.InstanceID, Seq: f.Seq,
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil || t.Format(TimeLayout) != s {
		return time.Time{}, licensehub.FieldError(licensehub.EMALFORMED, "time",
			"%q is not a UTC time with milliseconds like 2026-11-26T08:00:00.123Z", s)
	}
	return t, nil
}

// NormalizeHolder is the form of a holder code that is masked and hashed:
// surrounding space removed, letters upper-cased (a resident ID number's
// check character x and X are the same holder).
func NormalizeHolder(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// HashHolder returns the hex HMAC-SM3 of the normalized holder code under
// key: the value of Record.HolderHash.
func HashHolder(key []byte, code string) string {
	m := hmac.New(sm3.New, key)
	m.Write([]byte(NormalizeHolder(code)))
	return hex.EncodeToString(m.Sum(nil))
}

// MaskHolder returns logging.MaskID of the normalized holder code: the
// value of Record.HolderMasked.
func MaskHolder(code string) string { return logging.MaskID(NormalizeHolder(code)) }

// isMasked reports whether s has the shape MaskID gives: all '*' when
// short, otherwise only the first 3 and last 2 characters visible.
func isMasked(s string) bool {
	r := []rune(s)
	lo, hi := 3, len(r)-2
	if len(r) <= 6 {
		lo, hi = 0, len(r)
	}
	for i := lo; i < hi; i++ {
		if r[i] != '*' {
			return false
		}
	}
	return true
}

func isHexHash(s string) bool {
	if len(s) != 2*sm3.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validate checks what Trail.Append requires of a record whose Time and
// InstanceID are already filled.
func (r *Record) validate() error {
	switch {
	case r.Operation == "":
		return licensehub.FieldError(licensehub.EINVALID, "operation", "an audit record needs an operation")
	case r.Result == "":
		return licensehub.FieldError(licensehub.EINVALID, "result", "an audit record needs a result (%q or an error code)", ResultOK)
	case r.Operator != nil && r.Operator.Account == "":
		return licensehub.FieldError(licensehub.EINVALID, "operator.account", "an operator needs an account")
	case r.HolderHash != "" && !isHexHash(r.HolderHash):
		return licensehub.FieldError(licensehub.EINVALID, "holder_hash", "not a hex HMAC-SM3 (use Trail.SetHolder)")
	case r.HolderMasked != "" && !isMasked(r.HolderMasked):
		// The one place a plain holder code could slip into the trail.
		return licensehub.FieldError(licensehub.EINVALID, "holder_masked", "the holder code is not masked (use Trail.SetHolder)")
	case (r.HolderMasked == "") != (r.HolderHash == ""):
		return licensehub.FieldError(licensehub.EINVALID, "holder_hash", "holder_masked and holder_hash go together (use Trail.SetHolder)")
	}
	for _, s := range r.strings() {
		if !utf8.ValidString(s) {
			return licensehub.FieldError(licensehub.EINVALID, "record", "a field is not valid UTF-8")
		}
	}
	return nil
}

func (r *Record) strings() []string {
	ss := []string{r.AppID, r.Operation, r.Matter, r.Reason, r.HolderMasked, r.HolderHash, r.Result, r.RequestID, r.InstanceID}
	if r.Operator != nil {
		ss = append(ss, r.Operator.Account, r.Operator.Name, r.Operator.Department, r.Operator.Role)
	}
	for _, u := range r.Uses {
		ss = append(ss, u.ID, u.Of, u.ExpiresAt)
	}
	return append(ss, r.Licenses...)
}

// matches reports whether r passes f (with the holder code already hashed).
func (r *Record) matches(f *Filter, holderHash string) bool {
	switch {
	case f.App != "" && r.AppID != f.App,
		f.Matter != "" && r.Matter != f.Matter,
		holderHash != "" && r.HolderHash != holderHash,
		!f.From.IsZero() && r.Time.Before(f.From),
		!f.To.IsZero() && !r.Time.Before(f.To):
		return false
	}
	if f.License != "" {
		for _, l := range r.Licenses {
			if l == f.License {
				return true
			}
		}
		return false
	}
	return true
}

// decodeRecord reads a record leniently (unknown members are ignored), but
// requires a JSON object.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return r, licensehub.Errorf(licensehub.EMALFORMED, "an audit record is a JSON object")
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, licensehub.Wrap(err, licensehub.EMALFORMED, "audit record")
	}
	return r, nil
}
