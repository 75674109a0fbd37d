// Package tax adapts the tax system (税务): tax registration (税务登记),
// tax payments over a period (完税证明) and the taxpayer credit grade
// (纳税信用等级, A/B/M/C/D). Kinds lists the default kinds with their
// mappings; Registration, Payments and Credit validate, query and map.
package tax

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/upstream"
)

// Upstream is the upstream system's name (upstream.Config.Name).
const Upstream = "tax"

// Kind names.
const (
	KindRegistration = "tax_registration"
	KindPayments     = "tax_payments"
	KindCredit       = "tax_credit"
)

// MaxPaymentMonths is the longest period a payments query may cover.
const MaxPaymentMonths = 36

// Kinds returns the default kinds of this upstream; each call returns
// fresh copies.
func Kinds() []adapters.Kind {
	return []adapters.Kind{
		{
			Name: KindRegistration, Title: "税务登记证明", Upstream: Upstream,
			ServiceID: "tax.registration", Path: "/tax/registration", Params: []string{"credit_code"},
			CacheTTL: 6 * time.Hour,
			Mapping: adapters.Mapping{
				"credit_code":          "nsrsbh",
				"name":                 "nsrmc",
				"state":                "nsrzt",
				"registered_on":        "djrq",
				"cancelled_on":         "?zxrq",
				"tax_authority":        "zgswjg",
				"taxpayer_type":        "?nsrlx",
				"legal_representative": "?fddbr",
				"address":              "?scjydz",
				"industry":             "?hy",
			},
		},
		{
			Name: KindPayments, Title: "完税证明", Upstream: Upstream,
			ServiceID: "tax.payments", Path: "/tax/payments", Params: []string{"credit_code", "from", "to"},
			CacheTTL: 6 * time.Hour,
			Mapping: adapters.Mapping{
				"credit_code":               "nsrsbh",
				"name":                      "nsrmc",
				"period_from":               "qsny",
				"period_to":                 "jzny",
				"payments[].period":         "jkmx[].ssny",
				"payments[].item":           "jkmx[].zsxm",
				"payments[].amount":         "jkmx[].sjje",
				"payments[].paid_on":        "jkmx[].jkrq",
				"payments[].voucher_number": "?jkmx[].dzsphm",
				"payment_count":             "bs",
				"total_amount":              "hjje",
			},
		},
		{
			Name: KindCredit, Title: "纳税信用等级证明", Upstream: Upstream,
			ServiceID: "tax.credit", Path: "/tax/credit", Params: []string{"credit_code", "year"},
			CacheTTL: 24 * time.Hour,
			Mapping: adapters.Mapping{
				"credit_code": "nsrsbh",
				"name":        "nsrmc",
				"year":        "pdnd",
				"grade":       "xydj",
				"rated_on":    "?pdrq",
			},
		},
	}
}

func kind(name string) adapters.Kind { return adapters.MustKind(Kinds(), name) }

// RegistrationParams validates the input of a registration query.
func RegistrationParams(creditCode string) (url.Values, error) {
	return adapters.OrganisationParams(creditCode)
}

// Registration returns a company's tax registration: state (正常/注销),
// registration date, tax authority, taxpayer type.
func Registration(ctx context.Context, c *upstream.Client, creditCode string) (map[string]any, error) {
	params, err := RegistrationParams(creditCode)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindRegistration), params)
}

// PaymentsParams validates the input of a payments query: from and to are
// months YYYY-MM, from ≤ to, at most MaxPaymentMonths months.
func PaymentsParams(creditCode, from, to string) (url.Values, error) {
	params, err := adapters.OrganisationParams(creditCode)
	if err != nil {
		return nil, err
	}
	f, err := time.Parse("2006-01", from)
	if err != nil {
		return nil, licensehub.FieldError(licensehub.EINVALID, "from", "from %q is not a month YYYY-MM", from)
	}
	t, err := time.Parse("2006-01", to)
	if err != nil {
		return nil, licensehub.FieldError(licensehub.EINVALID, "to", "to %q is not a month YYYY-MM", to)
	}
	months := (t.Year()-f.Year())*12 + int(t.Month()) - int(f.Month()) + 1
	switch {
	case months < 1:
		return nil, licensehub.FieldError(licensehub.EINVALID, "to", "to %s is before from %s", to, from)
	case months > MaxPaymentMonths:
		return nil, licensehub.FieldError(licensehub.EINVALID, "to", "the period covers %d months, at most %d", months, MaxPaymentMonths)
	}
	params.Set("from", from)
	params.Set("to", to)
	return params, nil
}

// Payments returns a company's tax payments from month from to month to
// (YYYY-MM, inclusive) with their total: the fields of a 完税证明.
func Payments(ctx context.Context, c *upstream.Client, creditCode, from, to string) (map[string]any, error) {
	params, err := PaymentsParams(creditCode, from, to)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindPayments), params)
}

// CreditParams validates the input of a credit-grade query.
func CreditParams(creditCode string, year int) (url.Values, error) {
	params, err := adapters.OrganisationParams(creditCode)
	if err != nil {
		return nil, err
	}
	if year < 2000 || year > 9999 {
		return nil, licensehub.FieldError(licensehub.EINVALID, "year", "year %d is out of range", year)
	}
	params.Set("year", strconv.Itoa(year))
	return params, nil
}

// Credit returns a company's taxpayer credit grade (A, B, M, C or D) for
// year. A year not rated yet is NOT_FOUND.
func Credit(ctx context.Context, c *upstream.Client, creditCode string, year int) (map[string]any, error) {
	params, err := CreditParams(creditCode, year)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindCredit), params)
}
