// Package jcs implements the JSON Canonicalization Scheme of RFC 8785 over
// I-JSON (RFC 7493) input.
//
// The canonical form of a JSON text is the same value written with
//
//   - no insignificant whitespace;
//   - object members sorted by their names compared as arrays of UTF-16
//     code units (not as UTF-8 bytes: the two orders differ for characters
//     above U+FFFF against U+E000–U+FFFF);
//   - strings with minimal escaping: \" and \\, the short forms \b \f \n \r
//     \t, \u00xx (lower-case hex) for the other characters below U+0020,
//     and every other character, U+007F and U+2028 included, as literal
//     UTF-8;
//   - numbers as IEEE 754 doubles written the way ECMAScript's
//     Number.prototype.toString writes them (1e+21, 1e-7, 0.000001, -0 as 0).
//
// Input must be I-JSON: a duplicate member name in any object (compared
// after unescaping), invalid UTF-8, an escaped lone surrogate, a number
// whose magnitude rounds to infinity or data after the value are errors.
// Nesting deeper than MaxDepth is an error too, as in encoding/json.
//
// The package does not decode into map[string]any: a hand-written scanner
// writes the canonical form while it reads, and only objects whose members
// arrive out of order are rearranged, so a few kilobytes canonicalise in a
// few microseconds.
package jcs

import (
	"errors"
	"strconv"
	"strings"
)

// MaxDepth is the deepest nesting of arrays and objects accepted, the same
// limit as encoding/json's.
const MaxDepth = 10000

// The classes of error. Every error this package returns is an *Error whose
// Unwrap gives one of these, so errors.Is(err, jcs.ErrDuplicateKey) works.
var (
	// ErrSyntax: the input is not JSON (RFC 8259) at all.
	ErrSyntax = errors.New("invalid JSON")
	// ErrTooDeep: arrays and objects nest deeper than MaxDepth.
	ErrTooDeep = errors.New("JSON nested too deeply")
	// ErrDuplicateKey: an object has two members with the same name.
	ErrDuplicateKey = errors.New("duplicate object member name")
	// ErrInvalidUTF8: a string holds bytes that are not UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8 in string")
	// ErrLoneSurrogate: a \u escape names half a surrogate pair.
	ErrLoneSurrogate = errors.New("lone surrogate in \\u escape")
	// ErrNumberRange: a number is too large for an IEEE 754 double.
	ErrNumberRange = errors.New("number out of range")
	// ErrRestricted: the input is I-JSON but breaks one of the Options.
	ErrRestricted = errors.New("value not allowed")
)

// Error reports where and why input was rejected.
type Error struct {
	Err    error  // one of the Err* values above
	Offset int    // byte offset in the input where the problem was found
	Path   string // the value's JSON path, e.g. `holder.names[2]`; "" for the top level
	Msg    string // detail for humans
}

func (e *Error) Error() string {
	s := "jcs: " + e.Err.Error()
	if e.Path != "" {
		s += " at " + e.Path
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s + " (offset " + strconv.Itoa(e.Offset) + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// JoinPath joins a JSON path prefix and a path relative to it, as
// Error.Path is relative to the canonicalised value: JoinPath("body",
// "items[2].name") is "body.items[2].name", JoinPath("body", "[0]") is
// "body[0]", and an empty side gives the other.
func JoinPath(prefix, rel string) string {
	switch {
	case prefix == "":
		return rel
	case rel == "":
		return prefix
	case rel[0] == '[':
		return prefix + rel
	}
	return prefix + "." + rel
}

// MemberPath is the JSON path of member name of the object at path prefix,
// in the notation of Error.Path: MemberPath("signature", "kid") is
// "signature.kid", MemberPath("", "a b") is `["a b"]`.
func MemberPath(prefix, name string) string {
	seg := nameSegment([]byte(name))
	if prefix == "" && seg[0] == '.' {
		return seg[1:]
	}
	return prefix + seg
}

// nameSegment is the path segment of an object member: .name for plain
// words, ["...."] (Go-quoted) for anything else, so paths read back
// unambiguously.
func nameSegment(name []byte) string {
	plain := len(name) > 0
	for _, c := range name {
		if c < 0x80 && !(c == '_' || c == '-' || c == '$' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return "." + string(name)
	}
	return "[" + strconv.Quote(string(name)) + "]"
}

// prefixPath puts a member's or element's segment in front of the path of
// an error that happened inside it. It runs while the error travels up, so
// the successful path does no path bookkeeping at all.
// Paths longer than maxPath keep their innermost part after an ellipsis,
// so that an error 10000 levels deep costs no quadratic string building.
func prefixPath(err error, seg string) error {
	if e, ok := err.(*Error); ok {
		switch {
		case strings.HasPrefix(e.Path, "…"):
		case len(e.Path) > maxPath:
			e.Path = "…" + e.Path
		default:
			e.Path = seg + e.Path
		}
	}
	return err
}

const maxPath = 256
