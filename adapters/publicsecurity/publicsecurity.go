// Package publicsecurity adapts the public-security system (公安): identity
// check (身份核验) and household registration (户籍). Kinds lists the
// default kinds with their mappings from the upstream's fields (see package
// adapters/sim for the upstream's field names); Identity and Household
// validate their inputs, query the upstream and map its answer.
package publicsecurity

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/upstream"
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
			Mapping: adapters.Mapping{
				"id_number":            "ryxx.gmsfhm",
				"name":                 "ryxx.xm",
				"id_number_match":      "hyjg.sfzh_yz",
				"name_match":           "hyjg.xm_yz",
				"sex":                  "ryxx.xb",
				"birth_date":           "ryxx.csrq",
				"nation":               "?ryxx.mz",
				"address":              "ryxx.zz",
				"document_issuer":      "?zjxx.qfjg",
				"document_valid_from":  "?zjxx.yxqx_qsrq",
				"document_valid_until": "zjxx.yxqx_jzrq",
				"document_status":      "zjxx.zjzt",
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

func kind(name string) adapters.Kind { return adapters.MustKind(Kinds(), name) }

// MaxNameLen bounds a person's name (characters).
const MaxNameLen = 64

// IdentityParams validates the inputs of an identity check and returns the
// upstream's query parameters.
func IdentityParams(idNumber, name string) (url.Values, error) {
	params, err := adapters.ResidentParams(idNumber)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, licensehub.FieldError(licensehub.EINVALID, "name", "name is required")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen:
		return nil, licensehub.FieldError(licensehub.EINVALID, "name", "name must be valid UTF-8 of at most %d characters", MaxNameLen)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, licensehub.FieldError(licensehub.EINVALID, "name", "name contains control characters")
	}
	params.Set("name", name)
	return params, nil
}

// Identity checks that idNumber exists and belongs to name, and returns
// the identity certificate's fields (name_match false when the name
// differs).
func Identity(ctx context.Context, c *upstream.Client, idNumber, name string) (map[string]any, error) {
	params, err := IdentityParams(idNumber, name)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindIdentity), params)
}

// HouseholdParams validates the input of a household query.
func HouseholdParams(idNumber string) (url.Values, error) { return adapters.ResidentParams(idNumber) }

// Household returns the household registration of idNumber's holder:
// address, head and members with their relation to the head (members' ID
// numbers masked by the upstream).
func Household(ctx context.Context, c *upstream.Client, idNumber string) (map[string]any, error) {
	params, err := HouseholdParams(idNumber)
	if err != nil {
		return nil, err
	}
	return adapters.Fetch(ctx, c, kind(KindHousehold), params)
}
