package ident

import (
	"errors"
	"reflect"
	"testing"

	"github.com/licensehub/licensehub"
)

// want describes an expected rejection: the rule, and optionally the cause
// and any other details that must be present with these values.
type want struct {
	rule    string
	details map[string]any
}

// assertInvalid checks that err is the *licensehub.Error this package
// promises: EINVALID, a message, no Field, and the expected rule and
// details.
func assertInvalid(t *testing.T, err error, w want) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want rule %q", w.rule)
	}
	var e *licensehub.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is a %T, want *licensehub.Error", err, err)
	}
	if e.Code != licensehub.EINVALID {
		t.Errorf("code = %q, want %q", e.Code, licensehub.EINVALID)
	}
	if e.Message == "" {
		t.Error("message is empty")
	}
	if e.Field != "" {
		t.Errorf("field = %q, want it left to the caller", e.Field)
	}
	if got := e.Details["rule"]; got != w.rule {
		t.Fatalf("rule = %v, want %q (error: %v)", got, w.rule, err)
	}
	for k, v := range w.details {
		if got, ok := e.Details[k]; !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("details[%q] = %#v, want %#v (all details: %v)", k, got, v, e.Details)
		}
	}
}

// assertWellFormed checks what fuzz targets can check of any rejection:
// the error type, code and that the rule is one of the exported names.
func assertWellFormed(t *testing.T, err error) {
	t.Helper()
	var e *licensehub.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is a %T, want *licensehub.Error", err, err)
	}
	if e.Code != licensehub.EINVALID || e.Message == "" || e.Field != "" {
		t.Fatalf("malformed error %#v", e)
	}
	if !knownRules[Rule(err)] {
		t.Fatalf("rule %q is not an exported rule name", Rule(err))
	}
}

var knownRules = map[string]bool{
	RuleLength: true, RuleAlphabet: true, RuleCheckDigit: true, RuleCheckCharacter: true,
	RuleBirthDate: true, RuleRegion: true, RuleRoot: true, RuleSegments: true,
	RuleTypeCode: true, RuleIssuerCode: true, RuleSerial: true, RuleVersion: true,
	RuleHolderCodeType: true,
}

// withCreditCheck appends the GB 32100 check character to 17 characters.
func withCreditCheck(t testing.TB, first17 string) string {
	t.Helper()
	c, err := CreditCodeCheck(first17)
	if err != nil {
		t.Fatalf("CreditCodeCheck(%q): %v", first17, err)
	}
	return first17 + string(c)
}

// withResidentCheck appends the GB 11643 check character to 17 digits.
func withResidentCheck(t testing.TB, first17 string) string {
	t.Helper()
	c, err := ResidentIDCheck(first17)
	if err != nil {
		t.Fatalf("ResidentIDCheck(%q): %v", first17, err)
	}
	return first17 + string(c)
}

// replaceAt returns s with the byte at i replaced by c.
func replaceAt(s string, i int, c byte) string {
	b := []byte(s)
	b[i] = c
	return string(b)
}
