// Package signable owns the text rules for everything that goes into a
// signed document (a license body, a status record): names, numbers, face
// field strings, reasons. A signed license is a legal record that outlives
// the request that made it, so its text must be exactly what a person
// reads, in one normal form, with nothing hidden:
//
//   - valid UTF-8 (invalid_utf8), and no U+FFFD replacement character,
//     which only ever comes from a lossy decoding upstream
//     (replacement_character);
//   - Unicode NFC (nfc): text in another normal form is refused, not
//     silently normalised, since the hub must sign what the department
//     sent; the stock conversion normalises legacy registers itself
//     (NFC), before validation;
//   - no control characters: C0 (U+0000–U+001F, tab and newline
//     included), DEL (U+007F) and C1 (U+0080–U+009F) (control_character);
//   - no bidirectional controls: U+202A–U+202E, U+2066–U+2069, U+200E,
//     U+200F, U+061C (bidi_control), which let a name display as another;
//   - no zero-width characters: U+200B–U+200D, U+2060, U+FEFF
//     (zero_width);
//   - no private-use characters (U+E000–U+F8FF, planes 15 and 16)
//     (private_use), which display differently on every system;
//   - no other invisible formatting characters (Unicode category Cf:
//     the soft hyphen U+00AD, U+2061–U+2064, tag characters…)
//     (format_character);
//   - at most a given number of characters (length).
//
// A refusal is a *licensehub.Error with code EINVALID, Field the field's
// JSON path, Details["rule"] one of the Rule* constants and
// Details["position"] the 1-based character index of the first offending
// character (for invalid_utf8, the index the bad byte would have; for
// length, the first character beyond the limit). Messages never repeat
// the value (it can be personal data).
package signable

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/licensehub/licensehub"
)

// Rule names: Details["rule"] of the errors Check returns. They are part
// of the API; never rename one.
const (
	RuleInvalidUTF8 = "invalid_utf8"
	RuleReplacement = "replacement_character"
	RuleNFC         = "nfc"
	RuleControl     = "control_character"
	RuleBidi        = "bidi_control"
	RuleZeroWidth   = "zero_width"
	RulePrivateUse  = "private_use"
	RuleFormat      = "format_character"
	RuleLength      = "length"
)

// Problem returns the first rule s breaks (ignoring length) and the
// 1-based character index where; "" and 0 when s is fit to be signed.
func Problem(s string) (rule string, position int) {
	pos := 0
	simple := true // every character is NFC by itself and combines with nothing
	for i := 0; i < len(s); {
		pos++
		c := s[i]
		if c < utf8.RuneSelf { // ASCII fast path
			if c < 0x20 || c == 0x7f {
				return RuleControl, pos
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return RuleInvalidUTF8, pos
		}
		if rule := runeRule(r); rule != "" {
			return rule, pos
		}
		simple = simple && isSimple(r)
		i += n
	}
	if !simple && !norm.NFC.IsNormalString(s) {
		return RuleNFC, utf8.RuneCountInString(s[:norm.NFC.QuickSpanString(s)]) + 1
	}
	return "", 0
}

// runeRule is the rule a single (valid, non-ASCII) character breaks.
func runeRule(r rune) string {
	switch {
	case r == utf8.RuneError:
		return RuleReplacement
	case r >= 0x80 && r <= 0x9f:
		return RuleControl
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return RuleBidi
	case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff:
		return RuleZeroWidth
	case r >= 0xe000 && r <= 0xf8ff, r >= 0xf0000 && r <= 0xffffd, r >= 0x100000 && r <= 0x10fffd: // Unicode category Co
		return RulePrivateUse
	case (r < 0x3000 || r > 0xfdff) && unicode.Is(unicode.Cf, r): // no Cf lies in U+3000–U+FDFF
		return RuleFormat
	}
	return ""
}

// isSimple reports the characters that are in NFC whatever surrounds
// them (canonical combining class 0, NFC quick check Yes, no canonical
// composition with a neighbour): below U+0300 (where combining marks
// begin), CJK unified ideographs, CJK symbols and punctuation up to
// U+3029, full-width ASCII. Text of these alone (most Chinese license
// text) skips the full NFC check.
func isSimple(r rune) bool {
	return r < 0x300 || r >= 0x4e00 && r <= 0x9fff || r >= 0x3000 && r <= 0x3029 || r >= 0xff01 && r <= 0xff5e
}

var ruleWords = map[string]string{
	RuleInvalidUTF8: "is not valid UTF-8",
	RuleReplacement: "holds the replacement character U+FFFD (text damaged by a wrong character encoding)",
	RuleNFC:         "is not in Unicode normal form C (NFC); send it composed (NFC)",
	RuleControl:     "holds a control character (tab, line break or other)",
	RuleBidi:        "holds a bidirectional control character (such as U+202E), which can make it display as other text",
	RuleZeroWidth:   "holds a zero-width character (such as U+200B), invisible when displayed",
	RulePrivateUse:  "holds a private-use character, which displays differently on every system",
	RuleFormat:      "holds an invisible formatting character (such as a soft hyphen U+00AD)",
}

// Check returns nil when s is fit to be signed and has at most max
// characters (max 0: no bound), else an EINVALID error at field naming
// the rule and the position.
func Check(field, s string, max int) error {
	if rule, pos := Problem(s); rule != "" {
		return Error(field, rule, pos)
	}
	if max > 0 {
		if n := utf8.RuneCountInString(s); n > max {
			return &licensehub.Error{Code: licensehub.EINVALID, Field: field,
				Message: fmt.Sprintf("%s has %d characters; at most %d", field, n, max),
				Details: map[string]any{"rule": RuleLength, "position": max + 1, "max": max, "got": n}}
		}
	}
	return nil
}

// Error is the refusal of field for rule at position.
func Error(field, rule string, position int) error {
	what, ok := ruleWords[rule]
	if !ok {
		what = "breaks rule " + rule
	}
	return &licensehub.Error{Code: licensehub.EINVALID, Field: field,
		Message: fmt.Sprintf("%s %s at character %d", field, what, position),
		Details: map[string]any{"rule": rule, "position": position}}
}

// Normalize is for legacy data the hub converts itself (the stock
// conversion), never for what a department pushes: s in NFC, with
// invalid UTF-8 left as it is (Check refuses it).
func Normalize(s string) string {
	if !utf8.ValidString(s) || norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}
