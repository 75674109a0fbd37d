// Package tax adapts the tax system (税务): tax registration (税务登记),
// tax payments over a period (完税证明) and the taxpayer credit grade
// (纳税信用等级, A/B/M/C/D). Kinds lists the default kinds with their
// mappings and parameter rules; adapters.Gateway checks, queries and maps.
package tax

import (
	"net/url"
	"strconv"
	"time"

	"github.com/licensehub/licensehub/adapters"
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

// FirstYear is the earliest year a payments period or a credit grade may
// concern: the tax system holds nothing older.
const FirstYear = 2000

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
			CacheTTL: 6 * time.Hour, Rules: checkPeriod,
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
			CacheTTL: 24 * time.Hour, Rules: checkYear,
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

// cst is the time zone of "this month" and "this year": China Standard Time.
var cst = time.FixedZone("CST", 8*3600)

// checkPeriod: from and to are months YYYY-MM from FirstYear to this
// month, from ≤ to, at most MaxPaymentMonths months.
func checkPeriod(q url.Values, now time.Time) error {
	this := now.In(cst)
	month := func(name string) (time.Time, error) {
		v := q.Get(name)
		t, err := time.Parse("2006-01", v)
		switch {
		case err != nil || len(v) != len("2006-01"):
			return t, adapters.ParamError(name, "%s must be a month written YYYY-MM, e.g. 2025-01", name)
		case t.Year() < FirstYear:
			return t, adapters.ParamError(name, "%s is before %d-01: the tax system holds nothing older", name, FirstYear)
		case t.Year() > this.Year() || t.Year() == this.Year() && t.Month() > this.Month():
			return t, adapters.ParamError(name, "%s is a month still to come; the latest is %s", name, this.Format("2006-01"))
		}
		return t, nil
	}
	from, err := month("from")
	if err != nil {
		return err
	}
	to, err := month("to")
	if err != nil {
		return err
	}
	months := (to.Year()-from.Year())*12 + int(to.Month()) - int(from.Month()) + 1
	switch {
	case months < 1:
		return adapters.ParamError("to", "the period ends (to %s) before it starts (from %s)", q.Get("to"), q.Get("from"))
	case months > MaxPaymentMonths:
		return adapters.ParamError("to", "the period covers %d months, at most %d", months, MaxPaymentMonths)
	}
	return nil
}

// checkYear: year is a year YYYY from FirstYear to this year.
func checkYear(q url.Values, now time.Time) error {
	v := q.Get("year")
	year, err := strconv.Atoi(v)
	if err != nil || len(v) != 4 || v[0] < '0' || v[0] > '9' {
		return adapters.ParamError("year", "year must be a year written YYYY, e.g. 2024")
	}
	if this := now.In(cst).Year(); year < FirstYear || year > this {
		return adapters.ParamError("year", "year must be from %d to %d", FirstYear, this)
	}
	return nil
}
