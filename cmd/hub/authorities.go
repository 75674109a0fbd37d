package main

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/authority"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// openAuthorities loads the issuing-authority registry and checks the
// member registry and the keyring against it (checkAuthorities): a
// problem stops the hub (exit 2, like a bad key), a warning is logged.
func openAuthorities(cfg *config.Config, members *auth.Registry, ring *signing.Keyring, log *slog.Logger) (*authority.Registry, error) {
	reg, err := authority.Load(cfg.Authorities.File)
	if err != nil {
		return nil, &configError{fmt.Errorf("authorities.file: %s", plain(err))}
	}
	problems, warnings := checkAuthorities(reg, members, ring, cfg.Signing.HubAuthority, time.Now())
	for _, w := range warnings {
		log.Warn(w)
	}
	if len(problems) > 0 {
		return nil, &configError{fmt.Errorf("authorities.file: %s does not match the other configuration:\n  %s",
			cfg.Authorities.File, strings.Join(problems, "\n  "))}
	}
	log.Info("authority registry loaded", "file", cfg.Authorities.File, "authorities", len(reg.Authorities()))
	return reg, nil
}

// pushOperations are the operations that sign new licenses of the
// authorities a grant names.
var pushOperations = []string{auth.OpLicenseCreate, auth.OpConversionRun}

// checkAuthorities checks the member registry and the keyring against the
// authority registry. It returns problems (the hub must not start) and
// warnings:
//
//   - a grant allowing license.create or conversion.run for an authority
//     the registry does not list is a problem: every push under it would
//     be refused (unknown_authority), so one of the two files is wrong;
//   - a grant allowing only other operations (reading; status changes and
//     new versions of licenses already issued) may name an authority no
//     longer or never listed here, e.g. one whose licenses arrive from the
//     province: a warning;
//   - an active signing key of an authority not listed (other than the
//     hub's own, signing.hub_authority, which signs audit checkpoints and
//     certificates, not licenses) is a warning: its pushes are refused;
//     keys are never deleted, so retired keys are not mentioned;
//   - a listed authority without an active key is a warning: its pushes
//     are refused (KEY_NOT_FOUND) until it has one.
func checkAuthorities(reg *authority.Registry, members *auth.Registry, ring *signing.Keyring, hubAuthority string, now time.Time) (problems, warnings []string) {
	path := reg.Path()
	for _, m := range members.Members() {
		for j, g := range m.Grants() {
			for k, code := range g.Authorities {
				if _, ok := reg.Authority(code); ok {
					continue
				}
				where := fmt.Sprintf("auth.members_file: member %s, grants[%d].authorities[%d]", m.AppID(), j, k)
				if pushes := slices.DeleteFunc(slices.Clone(g.Operations), func(op string) bool { return !slices.Contains(pushOperations, op) }); len(pushes) > 0 {
					problems = append(problems, fmt.Sprintf("%s: %s is not in %s, so %s under this grant would always be refused; list the authority there or correct the grant",
						where, code, path, strings.Join(pushes, " and ")))
					continue
				}
				warnings = append(warnings, fmt.Sprintf("%s: %s is not in %s; fine for licenses it issued before or elsewhere (read, status changes), but it cannot push new ones",
					where, code, path))
			}
		}
	}
	seen := map[string]bool{}
	for _, k := range ring.Keys() {
		if k.State != signing.StateActive || k.Authority == hubAuthority || seen[k.Authority] {
			continue
		}
		seen[k.Authority] = true
		if _, ok := reg.Authority(k.Authority); !ok {
			warnings = append(warnings, fmt.Sprintf("signing.keys_dir: key %s is the active key of %s, which is not in %s: its pushes are refused",
				k.KeyID, k.Authority, path))
		}
	}
	for _, a := range reg.Authorities() {
		if _, err := ring.SignerFor(a.Code, now); err != nil {
			warnings = append(warnings, fmt.Sprintf("authorities.file: %s (%s) has no active signing key: its pushes are refused until it has one (hubctl keys gen --authority %s)",
				a.Code, a.Name, a.Code))
		}
	}
	return problems, warnings
}

// checkMappingAuthorities checks that every conversion mapping names a
// registered authority by its registered name, with a default area code
// within the authority's area: otherwise every row of the source would be
// refused, so the hub does not start.
func checkMappingAuthorities(reg *authority.Registry, mappings map[string]*convert.Mapping) error {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(mappings)) {
		m := mappings[name]
		a, ok := reg.Authority(m.Authority.Code)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: authority.code %s is not in %s; list it there or correct the mapping", name, m.Authority.Code, reg.Path()))
		case m.Authority.Name != a.Name:
			problems = append(problems, fmt.Sprintf("%s: authority.name %q is not the registered name of %s, which is %q", name, m.Authority.Name, a.Code, a.Name))
		case m.AreaCode != "" && !ident.AreaWithin(a.AreaCode, m.AreaCode):
			problems = append(problems, fmt.Sprintf("%s: area_code %s is outside the area of %s (%s)", name, m.AreaCode, a.Name, a.AreaCode))
		}
	}
	if len(problems) > 0 {
		return &configError{fmt.Errorf("conversion.mappings_dir: mappings that do not match the authority registry:\n  %s", strings.Join(problems, "\n  "))}
	}
	return nil
}
