package ident

import (
	"errors"
	"fmt"
	"testing"

	"github.com/licensehub/licensehub"
)

func TestRule(t *testing.T) {
	err := ValidateCreditCode("91350100M000100Y44")
	if got := Rule(err); got != RuleCheckDigit {
		t.Errorf("Rule = %q, want %q", got, RuleCheckDigit)
	}
	if got := Rule(fmt.Errorf("wrapped: %w", err)); got != RuleCheckDigit {
		t.Errorf("Rule through a wrap = %q, want %q", got, RuleCheckDigit)
	}
	if got := Rule(errors.New("plain")); got != "" {
		t.Errorf("Rule of a plain error = %q, want empty", got)
	}
	if got := Rule(nil); got != "" {
		t.Errorf("Rule(nil) = %q, want empty", got)
	}
}

func TestWithField(t *testing.T) {
	orig := ValidateCreditCode("91350100M000100Y44")
	withField := WithField(orig, "holder.code")

	var e *licensehub.Error
	if !errors.As(withField, &e) || e.Field != "holder.code" {
		t.Fatalf("WithField gave %#v, want Field holder.code", withField)
	}
	if e.Details["rule"] != RuleCheckDigit || e.Code != licensehub.EINVALID {
		t.Errorf("WithField lost code or details: %#v", e)
	}
	e.Details["extra"] = 1
	var o *licensehub.Error
	errors.As(orig, &o)
	if o.Field != "" || o.Details["extra"] != nil {
		t.Errorf("WithField changed the original error: %#v", o)
	}

	plain := errors.New("plain")
	if WithField(plain, "x") != plain {
		t.Error("WithField changed an error that is not a *licensehub.Error")
	}
	if WithField(nil, "x") != nil {
		t.Error("WithField(nil) is not nil")
	}
}

func TestValidatorsReturnUntypedNil(t *testing.T) {
	// A nil *licensehub.Error inside a non-nil error interface is the
	// classic Go trap; the exported functions must return a true nil.
	checks := map[string]error{
		"ValidateCreditCode": ValidateCreditCode("91350100M000100Y43"),
		"ValidateResidentID": ValidateResidentID("11010519491231002X"),
		"ValidateHolderCode": ValidateHolderCode(HolderCreditCode, "91350100M000100Y43"),
	}
	id, err := Parse("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U")
	checks["Parse"] = err
	checks["Validate"] = id.Validate()
	for name, err := range checks {
		if err != nil {
			t.Errorf("%s returned %#v, want nil", name, err)
		}
	}
}
