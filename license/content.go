package license

import (
	"fmt"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signable"
)

// Lengths, in characters, of the texts of a signed body the library
// bounds (face fields are bounded by their catalog entry's max_length).
// The API's request decoder applies the same limits.
const (
	MaxNameLen       = 100 // name, type_name
	MaxHolderNameLen = 200 // holder.name
	MaxIssuerNameLen = 200 // issuer.name
	MaxMatterNameLen = 200 // matter.name
	MaxMatterCodeLen = 64  // matter.code
	MaxReasonLen     = 500 // a status change's reason
	maxProvenanceLen = 200 // provenance.source, provenance.original_issue_date
)

// DefaultEarliestYear is the earliest issue year of a type whose catalog
// entry sets none: the registers are of the People's Republic.
const DefaultEarliestYear = 1949

// Rule names of the library's own refusals (Details["rule"]), besides
// package signable's text rules and the catalog's. Part of the API.
const (
	RuleRequired     = "required"      // a required value is missing or blank
	RuleDate         = "date"          // not a real date written YYYY-MM-DD
	RuleFutureDate   = "future_date"   // issue_date after today (plus the allowed skew)
	RuleEarliestYear = "earliest_year" // a date before the type's earliest year
	RuleDateOrder    = "date_order"    // valid_from before issue_date, valid_until before valid_from
	RuleExpired      = "expired"       // the validity ended before the license was pushed
)

// Policy is what a license type's catalog entry declares about the dates
// and history of its licenses (the catalog's type implements
// PolicySource).
type Policy struct {
	// EarliestYear: issue_date and valid_from may not be before 1 January
	// of this year; 0 means DefaultEarliestYear.
	EarliestYear int
	// ValidFromBeforeIssue allows a valid_from before issue_date (a
	// license issued with retroactive effect).
	ValidFromBeforeIssue bool
	// RecordExpired lets the stock conversion record a license whose
	// validity already ended: it is stored with status 05 (expired) at
	// once. Without it, and for every department's push, such a license
	// is refused (rule expired).
	RecordExpired bool
}

// PolicySource is a Validator that declares its type's Policy.
type PolicySource interface {
	Policy() Policy
}

func policyOf(v Validator) Policy {
	var p Policy
	if ps, ok := v.(PolicySource); ok {
		p = ps.Policy()
	}
	if p.EarliestYear <= 0 {
		p.EarliestYear = DefaultEarliestYear
	}
	return p
}

// invalidRule is the EINVALID refusal of field for rule.
func invalidRule(field, rule string, details map[string]any, format string, args ...any) error {
	d := map[string]any{"rule": rule}
	for k, v := range details {
		d[k] = v
	}
	return &licensehub.Error{Code: licensehub.EINVALID, Field: field, Message: fmt.Sprintf(format, args...), Details: d}
}

// checkText applies the text rules of package signable to every text of
// the request that goes into the signed body (face fields: the catalog).
func checkText(req *PushRequest) error {
	texts := []struct {
		field, s string
		max      int
	}{
		{"name", req.Name, MaxNameLen},
		{"type_name", req.TypeName, MaxNameLen},
		{"issuer.name", req.Issuer.Name, MaxIssuerNameLen},
		{"issuer.code", req.Issuer.Code, 0},
		{"number", req.Number, 0},
		{"holder.name", req.Holder.Name, MaxHolderNameLen},
		{"holder.code", req.Holder.Code, 0},
		{"holder.code_type", req.Holder.CodeType, 0},
		{"issue_date", req.IssueDate, 0},
		{"valid_from", req.ValidFrom, 0},
		{"valid_until", req.ValidUntil, 0},
		{"area_code", req.AreaCode, 0},
	}
	for _, t := range texts {
		if err := signable.Check(t.field, t.s, t.max); err != nil {
			return err
		}
	}
	if m := req.Matter; m != nil {
		if err := signable.Check("matter.code", m.Code, MaxMatterCodeLen); err != nil {
			return err
		}
		if err := signable.Check("matter.name", m.Name, MaxMatterNameLen); err != nil {
			return err
		}
	}
	if pv := req.Provenance; pv != nil {
		if err := signable.Check("provenance.source", pv.Source, maxProvenanceLen); err != nil {
			return err
		}
		if err := signable.Check("provenance.original_issue_date", pv.OriginalIssueDate, maxProvenanceLen); err != nil {
			return err
		}
	}
	return nil
}

// checkReason applies the text rules to a status change's reason and
// requires one for the operations that take a license away.
func checkReason(op, reason string) error {
	switch op {
	case OpSuspend, OpCancel, OpWithdraw, OpRevoke:
		if blank(reason) {
			return invalidRule("reason", RuleRequired, map[string]any{"op": op},
				"a reason is required to %s a license", op)
		}
	}
	return signable.Check("reason", reason, MaxReasonLen)
}

func blank(s string) bool {
	for _, r := range s {
		if r != ' ' && r != '\u3000' {
			return false
		}
	}
	return true
}

// dates is the outcome of checkDates.
type dates struct {
	until   string // valid_until, the catalog's default applied
	initial Status // StatusValid, or StatusExpired for a recorded historic license
}

// checkDates checks that the dates are real and plausible: issue_date not
// after today plus the configured skew, issue_date and valid_from not
// before the type's earliest year, valid_from not before issue_date
// unless the type allows it, valid_until not before valid_from, and the
// validity not already ended (unless the type lets the stock conversion
// record it as expired).
func (l *Library) checkDates(req *PushRequest, pol Policy, now time.Time) (dates, error) {
	out := dates{initial: StatusValid}
	issue, err := parseDate("issue_date", req.IssueDate)
	if err != nil {
		return out, err
	}
	from, err := parseDate("valid_from", req.ValidFrom)
	if err != nil {
		return out, err
	}
	today := dateOf(now)
	if latest := today.AddDate(0, 0, l.cfg.IssueDateSkewDays); issue.After(latest) {
		return out, invalidRule("issue_date", RuleFutureDate, map[string]any{"latest": latest.Format(DateLayout)},
			"issue date %s is in the future (the latest accepted today is %s)", req.IssueDate, latest.Format(DateLayout))
	}
	for _, d := range []struct {
		field string
		t     time.Time
	}{{"issue_date", issue}, {"valid_from", from}} {
		if d.t.Year() < pol.EarliestYear {
			return out, invalidRule(d.field, RuleEarliestYear, map[string]any{"earliest_year": pol.EarliestYear},
				"%s %s is before %d, the earliest year of this license type", d.field, d.t.Format(DateLayout), pol.EarliestYear)
		}
	}
	if from.Before(issue) && !pol.ValidFromBeforeIssue {
		return out, invalidRule("valid_from", RuleDateOrder, nil,
			"valid_from %s is before issue_date %s", req.ValidFrom, req.IssueDate)
	}
	out.until = req.ValidUntil
	if out.until == "" && l.cfg.DefaultValidUntil != nil {
		if out.until, err = l.cfg.DefaultValidUntil(req.TypeCode, req.ValidFrom); err != nil {
			return out, ident.WithField(err, "valid_until")
		}
	}
	switch out.until {
	case "":
		return out, invalidRule("valid_until", RuleRequired, nil, "required: the catalog gives no default for this type")
	case LongTerm:
		return out, nil
	}
	u, err := parseDate("valid_until", out.until)
	if err != nil {
		return out, err
	}
	if u.Before(from) {
		return out, invalidRule("valid_until", RuleDateOrder, nil,
			"valid_until %s is before valid_from %s", out.until, req.ValidFrom)
	}
	if u.Before(today) {
		if pol.RecordExpired && req.Provenance != nil && req.Provenance.Kind == ProvenanceStock {
			out.initial = StatusExpired
			return out, nil
		}
		return out, invalidRule("valid_until", RuleExpired, map[string]any{"valid_until": out.until},
			"the license's validity ended on %s; an expired license is not pushed", out.until)
	}
	return out, nil
}

// dateOf is t's date in China, as midnight CST.
func dateOf(t time.Time) time.Time {
	y, m, d := t.In(CST).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, CST)
}
