// Package socialsecurity adapts the social-security system (社保):
// a person's participation and contribution record (参保缴费证明) and an
// employer's (单位参保证明). Kinds lists the default kinds with their
// mappings; adapters.Gateway checks their parameters, queries and maps.
package socialsecurity

import (
	"time"

	"github.com/licensehub/licensehub/adapters"
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
