// Package publicsecurity adapts the public-security system (公安): identity
// check (身份核验) and household registration (户籍). Kinds lists the
// default kinds with their mappings from the upstream's fields (see package
// adapters/sim for the upstream's field names); adapters.Gateway checks
// their parameters, queries the upstream and maps its answer.
//
// The identity kind is a check, not a query: the caller gives an ID number
// and a name, and the certificate says whether the public-security record
// matches them. It echoes what was asked and carries the verdicts; on a
// match also the document's expiry and the person's status (人员状态),
// which the service matters need (configs/matters.yaml); never the
// record's name, birth date, address or anything else the caller did not
// know. The household kind is a query: it reads the register.
package publicsecurity

import (
	"time"

	"github.com/licensehub/licensehub/adapters"
)

// Upstream is the upstream system's name (upstream.Config.Name).
const Upstream = "publicsecurity"

// Kind names.
const (
	KindIdentity  = "identity"
	KindHousehold = "household"
)

// Kinds returns the default kinds of this upstream; each call returns
// fresh copies.
func Kinds() []adapters.Kind {
	return []adapters.Kind{
		{
			Name: KindIdentity, Title: "身份核验证明", Upstream: Upstream,
			ServiceID: "ps.identity", Path: "/ps/identity", Params: []string{"id_number", "name"},
			CacheTTL: time.Hour,
			Verifies: []adapters.Verification{
				{Param: "id_number", Result: "id_number_match"},
				{Param: "name", Result: "name_match"},
			},
			Mapping: adapters.Mapping{
				"id_number_match":      "hyjg.sfzh_yz",
				"name_match":           "hyjg.xm_yz",
				"document_valid_until": "zjxx.yxqx_jzrq",
				"status":               "ryzt",
			},
		},
		{
			Name: KindHousehold, Title: "户籍证明", Upstream: Upstream,
			ServiceID: "ps.household", Path: "/ps/household", Params: []string{"id_number"},
			CacheTTL: 6 * time.Hour,
			Mapping: adapters.Mapping{
				"household_number":     "hh",
				"address":              "hjdz",
				"head_name":            "hzxm",
				"head_id_number":       "hzsfhm",
				"member_count":         "hcysl",
				"members[].name":       "hcy[].xm",
				"members[].relation":   "hcy[].yhzgx",
				"members[].id_number":  "hcy[].gmsfhm",
				"members[].sex":        "?hcy[].xb",
				"members[].birth_date": "?hcy[].csrq",
			},
		},
	}
}
