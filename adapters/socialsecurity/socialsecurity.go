// Package socialsecurity adapts the social-security system (社保):
// a person's participation and contribution record (参保缴费证明) and an
// employer's (单位参保证明). Kinds lists the default kinds with their
// mappings; PersonInsurance and EmployerInsurance validate, query and map.
package socialsecurity

import (
	"context"
	"net/url"
	"time"

	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/upstream"
)

// Upstream is the upstream system's name (upstream.Config.Name).
const Upstream = "socialsecurity"

// Kind names.
const (
	KindPersonInsurance   = "person_insurance"
	KindEmployerInsurance = "employer_insurance"
)

// Kinds returns the default kinds of this upstream; each call returns
// fresh copies.
func Kinds() []adapters.Kind {
	return []adapters.Kind{
		{
			Name: KindPersonInsurance, Title: "社会保险参保缴费证明", Upstream: Upstream,
			ServiceID: "si.person", Path: "/si/person", Params: []string{"id_number"},
			CacheTTL: time.Hour,
			Mapping: adapters.Mapping{
				"insurance_number":           "grbh",
				"name":                       "xm",
				"id_number":                  "gmsfhm",
				"state":                      "cbzt",
				"employer_name":              "?dwmc",
				"employer_credit_code":       "?dwtyshxydm",
				"contribution_base":          "?jfjs",
				"insurances[].code":          "cbxx[].xzdm",
				"insurances[].kind":          "cbxx[].xzmc",
				"insurances[].state":         "cbxx[].cbzt",
				"insurances[].since":         "cbxx[].cbrq",
				"insurances[].last_paid":     "cbxx[].zhjfny",
				"insurances[].months_paid":   "cbxx[].ljjfys",
				"insurances[].personal_rate": "?cbxx[].grjfbl",
			},
		},
		{
			Name: KindEmployerInsurance, Title: "单位参保证明", Upstream: Upstream,
			ServiceID: "si.employer", Path: "/si/employer", Params: []string{"credit_code"},
			CacheTTL: 6 * time.Hour,
			Mapping: adapters.Mapping{
				"employer_number":     "dwbh",
				"name":                "dwmc",
				"credit_code":         "tyshxydm",
				"state":               "dwcbzt",
				"insured_employees":   "cbrs",
				"contribution_months": "jfys",
				"in_arrears":          "sfqf",
				"arrears_amount":      "?qfje",
				"insurance_kinds":     "?cbxz[]",
			},
		},
	}
}

func kind(name string) adapters.Kind { return adapters.MustKind(Kinds(), name) }

// PersonParams validates the input of a person's record query.
func PersonParams(idNumber string) (url.Values, error) { return adapters.ResidentParams(idNumber) }

// PersonInsurance returns a person's social-insurance record: state,
// employer, and per insurance kind (养老, 医疗, 失业, 工伤, 生育) its state,
// first month, last month paid and months paid.
func PersonInsurance(ctx context.Context, c *upstream.Client, idNumber string) (map[string]any, error) {
	params, err := PersonParams(idNumber)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindPersonInsurance), params)
}

// EmployerParams validates the input of an employer's record query.
func EmployerParams(creditCode string) (url.Values, error) {
	return adapters.OrganisationParams(creditCode)
}

// EmployerInsurance returns an employer's record: insured employees,
// months contributed, arrears.
func EmployerInsurance(ctx context.Context, c *upstream.Client, creditCode string) (map[string]any, error) {
	params, err := EmployerParams(creditCode)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindEmployerInsurance), params)
}
