// Package licensehub holds the hub's domain vocabulary: the error type with
// its stable codes and the small storage interfaces that every concern
// (license, signing, exchange, adapters) consumes. It imports no transport
// or storage library; those live at the edge (api/, store/...).
package licensehub

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Stable error codes. Clients match on these strings; never rename one.
// The mapping to HTTP status lives in one place: api/errors.go.
const (
	EINVALID         = "INVALID_ARGUMENT"         // a field of the request is wrong
	EMALFORMED       = "MALFORMED_REQUEST"        // the body cannot be parsed at all
	ENOTFOUND        = "NOT_FOUND"                // no such route or resource
	ECONFLICT        = "ALREADY_EXISTS"           // a create-only write met an existing key
	EBODYTOOLARGE    = "BODY_TOO_LARGE"           // request body over the configured limit
	EMETHOD          = "METHOD_NOT_ALLOWED"       // route exists, method does not
	EMEDIATYPE       = "UNSUPPORTED_MEDIA_TYPE"   // a JSON write without Content-Type application/json
	EREQUESTTIMEOUT  = "REQUEST_TIMEOUT"          // the client did not send the whole request within server.read_timeout
	EURITOOLONG      = "URI_TOO_LONG"             // the request target (path and query) is longer than the hub reads
	EHEADERSTOOLARGE = "HEADERS_TOO_LARGE"        // the request line and headers together exceed the hub's read buffer
	EUNAVAILABLE     = "BACKEND_UNAVAILABLE"      // MinIO, Redis or the filesystem failed
	EOBJECTSTORE     = "OBJECT_STORE_UNAVAILABLE" // the system of record cannot be read or written: nothing was changed
	EOUTCOMEUNKNOWN  = "OUTCOME_UNKNOWN"          // the system of record may have been written, a later step failed: retry the same request
	EUPSTREAM        = "UPSTREAM_UNAVAILABLE"     // a public-security/social/tax system failed
	EUPSTREAMBAD     = "UPSTREAM_BAD_RESPONSE"    // an upstream answered outside its contract
	ETIMEOUT         = "TIMEOUT"                  // a deadline expired
	EINTERNAL        = "INTERNAL"                 // a bug; details are logged, not returned
	ELICNOTFOUND     = "LICENSE_NOT_FOUND"
	ESIGINVALID      = "SIGNATURE_INVALID"
	EKEYNOTFOUND     = "KEY_NOT_FOUND"
	EUNAUTHENTICATED = "UNAUTHENTICATED"
	EFORBIDDEN       = "FORBIDDEN"
	ERATELIMITED     = "RATE_LIMITED"

	// Authentication failures (401): what exactly was wrong with the
	// request's app ID, timestamp, nonce or HMAC-SM3 signature.
	EAUTHMISSING    = "AUTH_MISSING"       // a required auth header is absent
	EAUTHUNKNOWNAPP = "AUTH_UNKNOWN_APP"   // no member system with that app ID
	EAUTHBADSIG     = "AUTH_BAD_SIGNATURE" // the HMAC does not match (either secret)
	EAUTHSTALE      = "AUTH_STALE"         // timestamp outside the allowed clock skew
	EAUTHREPLAY     = "AUTH_REPLAY"        // nonce already used within the window

	// Authorisation failures (403): which grant the caller lacks.
	EFORBIDDENROLE      = "FORBIDDEN_ROLE"         // the caller's roles do not allow the operation
	EFORBIDDENOPERATION = "FORBIDDEN_OPERATION"    // no grant for the operation
	EFORBIDDENTYPE      = "FORBIDDEN_LICENSE_TYPE" // no grant for this license type
	EFORBIDDENAUTHORITY = "FORBIDDEN_AUTHORITY"    // no grant for this issuing authority
	EFORBIDDENMATTER    = "FORBIDDEN_MATTER"       // no grant for this service matter
)

// EILLEGALTRANSITION (409): the license's current status does not allow
// the operation; Details["current_status"] names that status and
// Details["current_status_code"] gives its code.
const EILLEGALTRANSITION = "ILLEGAL_TRANSITION"

// Error is the one error type the hub returns across package boundaries.
// Code is stable and machine-readable; Message is for humans; Field names
// the offending input (a JSON path or config key) when there is one.
type Error struct {
	Code    string
	Message string
	Field   string
	Details map[string]any
	Err     error // cause, logged but never shown to clients
}

func (e *Error) Error() string {
	s := e.Code
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError reports a bad input field.
func FieldError(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a code and message to a cause.
func Wrap(err error, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }

// Clip shortens s, a caller's value echoed in a message, to at most n
// bytes on a character boundary, marking a cut with "…"; bytes that are
// not UTF-8 become U+FFFD. A message never repeats a huge or broken input.
func Clip(s string, n int) string {
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
