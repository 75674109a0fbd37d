package ident

import (
	"errors"
	"fmt"
	"maps"

	"github.com/licensehub/licensehub"
)

// Rule names: the value of Details["rule"] in every error this package
// returns. They are part of the API; never rename one.
const (
	RuleLength         = "length"           // wrong number of characters
	RuleAlphabet       = "alphabet"         // a character outside the permitted set
	RuleCheckDigit     = "check_digit"      // resident ID or credit code check character mismatch
	RuleCheckCharacter = "check_character"  // identifier check character malformed or mismatched
	RuleBirthDate      = "birth_date"       // resident ID birth date impossible, too old or in the future
	RuleRegion         = "region"           // resident ID region is not a province-level code
	RuleRoot           = "root"             // identifier does not start with Root
	RuleSegments       = "segments"         // identifier has the wrong number of dot-separated parts
	RuleTypeCode       = "type_code"        // identifier type code invalid (see Details["cause"])
	RuleIssuerCode     = "issuer_code"      // identifier issuer code invalid (see Details["cause"])
	RuleSerial         = "serial"           // identifier serial invalid (see Details["cause"])
	RuleVersion        = "version"          // identifier version invalid (see Details["cause"])
	RuleHolderCodeType = "holder_code_type" // unknown holder code type
)

// causeRange is the cause of a version outside 001..999; causeExhausted
// that of asking for the version after 999.
const (
	causeRange     = "range"
	causeExhausted = "exhausted"
)

// Rule returns Details["rule"] of the first *licensehub.Error in err's
// chain, or "" when there is none.
func Rule(err error) string {
	var e *licensehub.Error
	if !errors.As(err, &e) {
		return ""
	}
	r, _ := e.Details["rule"].(string)
	return r
}

// WithField returns err with Field set to field when err is a
// *licensehub.Error, as a copy so that the original is never changed; any
// other error is returned as it is.
//
//	if err := ident.ValidateCreditCode(req.Issuer.Code); err != nil {
//		return ident.WithField(err, "issuer.code")
//	}
func WithField(err error, field string) error {
	var e *licensehub.Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Field = field
	c.Details = maps.Clone(e.Details)
	return &c
}

// invalid builds the EINVALID error for rule; details may be nil.
func invalid(rule string, details map[string]any, format string, args ...any) *licensehub.Error {
	d := make(map[string]any, len(details)+1)
	maps.Copy(d, details)
	d["rule"] = rule
	return &licensehub.Error{
		Code:    licensehub.EINVALID,
		Message: fmt.Sprintf(format, args...),
		Details: d,
	}
}

// within re-labels err, found while checking a part of a larger code, as a
// violation of rule: err's rule becomes Details["cause"], its other details
// are kept and its message is prefixed with what (e.g. "issuer code").
func within(rule, what string, err *licensehub.Error) *licensehub.Error {
	d := maps.Clone(err.Details)
	d["cause"] = d["rule"]
	return invalid(rule, d, "%s: %s", what, err.Message)
}

// firstOutside returns the 1-based position and the value of the first
// rune of s that ok rejects, and found=false when ok accepts them all.
// Invalid UTF-8 bytes are reported one by one as utf8.RuneError.
func firstOutside(s string, ok func(rune) bool) (pos int, r rune, found bool) {
	for _, r := range s {
		pos++
		if !ok(r) {
			return pos, r, true
		}
	}
	return 0, 0, false
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }

// isDigitOrUpper reports whether r is 0-9 or A-Z: the alphabet of
// identifier serials and of ISO/IEC 7064 MOD 37,36.
func isDigitOrUpper(r rune) bool { return isDigit(r) || ('A' <= r && r <= 'Z') }
