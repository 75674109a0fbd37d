package license

import (
	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
)

// Rule names (Details["rule"]) of a push refused by the authority
// registry. They are part of the API; never rename one.
const (
	RuleUnknownAuthority = "unknown_authority" // issuer.code: not in the registry
	RuleAuthorityName    = "authority_name"    // issuer.name: not the registered name
	RuleAuthorityArea    = "authority_area"    // area_code: outside the authority's area
)

// checkAuthority checks a push's issuer against the registry
// (Config.Authorities), before anything is signed:
//
//   - issuer.code must be a registered authority (unknown_authority);
//   - an empty issuer.name is filled in with the registered name; any
//     other name must equal it exactly (authority_name);
//   - area_code must lie within the authority's area (authority_area):
//     a city authority at 430100 issues for 430100 and 4301xx, a
//     provincial one at 430000 for 43xxxx, a national one for any area.
//
// Without a registry it does nothing (the issuer checks of prepare still
// require a name and a valid code). A license received from the province
// (ProvenanceProvince) is the business of its own authority, elsewhere in
// the province, and is not checked against this city's registry; stock
// conversions are this city's licenses and are.
func (l *Library) checkAuthority(req *PushRequest) error {
	reg := l.cfg.Authorities
	if reg == nil || (req.Provenance != nil && req.Provenance.Kind == ProvenanceProvince) {
		return nil
	}
	if err := ident.ValidateCreditCode(req.Issuer.Code); err != nil {
		return ident.WithField(err, "issuer.code")
	}
	a, ok := reg.Registered(req.Issuer.Code)
	if !ok {
		return ruleError("issuer.code", RuleUnknownAuthority,
			"%s is not a registered issuing authority (GET /v1/authorities lists them)", req.Issuer.Code)
	}
	switch {
	case req.Issuer.Name == "":
		req.Issuer.Name = a.Name
	case req.Issuer.Name != a.Name:
		return ruleError("issuer.name", RuleAuthorityName,
			"%q is not the registered name of authority %s, which is %q; send that name or leave issuer.name out",
			clipText(req.Issuer.Name), req.Issuer.Code, a.Name)
	}
	if len(req.AreaCode) == ident.AreaCodeLen && !ident.AreaWithin(a.AreaCode, req.AreaCode) {
		return ruleError("area_code", RuleAuthorityArea,
			"%s is outside the area of %s (%s): its licenses carry area codes starting with %s",
			clip(req.AreaCode), a.Name, a.AreaCode, ident.AreaPrefix(a.AreaCode))
	}
	return nil
}

func ruleError(field, rule, format string, args ...any) error {
	e := licensehub.FieldError(licensehub.EINVALID, field, format, args...)
	e.Details = map[string]any{"rule": rule}
	return e
}

// clipText shortens a value echoed in a message (licensehub.Clip).
func clipText(s string) string { return licensehub.Clip(s, 64) }
