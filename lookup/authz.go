package lookup

import (
	"strings"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
)

// MaxReasonRunes bounds the stated reason for use (用证事由).
const MaxReasonRunes = 200

// Authorization is why a lookup is lawful: exactly one of the applicant's
// consent (ConsentToken, 网上申办用证) or a named operator acting by duty
// (Operator, 依职能用证), plus the stated reason for use (用证事由).
type Authorization struct {
	ConsentToken string
	Operator     *Operator
	// Reason is required (1..200 characters) with an operator; optional
	// (at most 200) with a consent, where the matter's name is recorded
	// when it is empty.
	Reason string
}

// Operator is the government officer acting by duty; every field is
// required.
type Operator struct {
	Account    string `json:"account"`
	Name       string `json:"name"`
	Department string `json:"department"`
	Role       string `json:"role"`
}

// Reasons in the Details of EFORBIDDEN errors.
const (
	ReasonAuthorizationMissing = "authorization_missing"
	ReasonConsentMissing       = "consent_missing"
	ReasonConsentExpired       = "consent_expired"
	ReasonConsentNotYetValid   = "consent_not_yet_valid"
	ReasonConsentRevoked       = "consent_revoked"
	ReasonConsentOtherHolder   = "consent_other_holder"
	ReasonConsentOtherMatter   = "consent_other_matter"
	ReasonConsentOtherApp      = "consent_other_app"
	ReasonNotInMatter          = "license_type_not_in_matter"
)

// forbidden is an EFORBIDDEN error with Details {"reason": reason}.
func forbidden(reason, format string, args ...any) *licensehub.Error {
	e := licensehub.Errorf(licensehub.EFORBIDDEN, format, args...)
	e.Details = map[string]any{"reason": reason}
	return e
}

// ForbiddenReason returns the Details["reason"] of an EFORBIDDEN error
// made by this package ("" for any other error).
func ForbiddenReason(err error) string {
	var e *licensehub.Error
	if !asError(err, &e) || e.Code != licensehub.EFORBIDDEN {
		return ""
	}
	r, _ := e.Details["reason"].(string)
	return r
}

// Validate checks the form: neither consent nor operator is EFORBIDDEN
// (authorization_missing); both, an incomplete operator or a bad reason
// is EINVALID naming the field.
func (a Authorization) Validate() error {
	hasConsent := a.ConsentToken != ""
	hasOperator := a.Operator != nil
	switch {
	case !hasConsent && !hasOperator:
		return forbidden(ReasonAuthorizationMissing,
			"a lookup needs the applicant's consent token or an operator acting by duty with a reason")
	case hasConsent && hasOperator:
		return licensehub.FieldError(licensehub.EINVALID, "authorization",
			"give either a consent token or an operator acting by duty, not both")
	}
	n := utf8.RuneCountInString(a.Reason)
	if !utf8.ValidString(a.Reason) {
		return licensehub.FieldError(licensehub.EINVALID, "reason", "the reason is not valid UTF-8")
	}
	if n > MaxReasonRunes {
		return licensehub.FieldError(licensehub.EINVALID, "reason", "the reason for use is at most %d characters, got %d", MaxReasonRunes, n)
	}
	if hasOperator {
		op := a.Operator
		for _, f := range []struct{ name, v string }{
			{"operator.account", op.Account}, {"operator.name", op.Name},
			{"operator.department", op.Department}, {"operator.role", op.Role},
		} {
			if strings.TrimSpace(f.v) == "" {
				return licensehub.FieldError(licensehub.EINVALID, f.name, "an operator acting by duty needs account, name, department and role")
			}
			if utf8.RuneCountInString(f.v) > 100 || !utf8.ValidString(f.v) {
				return licensehub.FieldError(licensehub.EINVALID, f.name, "at most 100 characters of UTF-8")
			}
		}
		if strings.TrimSpace(a.Reason) == "" {
			return licensehub.FieldError(licensehub.EINVALID, "reason", "an operator acting by duty must state the reason for use (1..%d characters)", MaxReasonRunes)
		}
	}
	return nil
}
