package auth

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/client"
)

// Member is one registered member system, as loaded from members.yaml. It
// is immutable and safe to share; its secrets are not reachable from
// outside the package.
type Member struct {
	appID      string
	name       string
	department string
	roles      []Role
	grants     []Grant
	rateLimit  RateLimit

	// keys returns the HMAC-SM3 keys: the current one and the one being
	// rotated in (nil when none). They live in a closure rather than in
	// fields because reflection-based printers (fmt on a Member value or
	// with a non-%v verb, spew, go-cmp) show unexported fields byte by byte
	// without calling their methods, but show a func only as an address.
	keys func() (current, next client.Secret)
}

// Grant allows some operations, optionally only on some license types,
// for some issuing authorities and for some service matters. An empty list
// means "any".
type Grant struct {
	Operations   []string
	LicenseTypes []string // 证照类型代码, 21 characters
	Authorities  []string // issuing authorities' unified social credit codes
	Matters      []string // 事项编码
}

// RateLimit is a member's allowance: Requests per Per, per app, across
// every hub instance.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// The rate limit of members whose rate_limit is omitted: 20 per 1s.
const (
	DefaultRateRequests = 20
	DefaultRatePer      = time.Second
)

// AppID is the member's app ID (X-Hub-App-Id).
func (m *Member) AppID() string { return m.appID }

// Name is the member system's name.
func (m *Member) Name() string { return m.name }

// Department is the department that runs it.
func (m *Member) Department() string { return m.department }

// Roles returns the member's roles.
func (m *Member) Roles() []Role { return slices.Clone(m.roles) }

// HasRole reports whether the member has role r.
func (m *Member) HasRole(r Role) bool { return slices.Contains(m.roles, r) }

// Grants returns a copy of the member's grants.
func (m *Member) Grants() []Grant {
	out := make([]Grant, len(m.grants))
	for i, g := range m.grants {
		out[i] = Grant{
			Operations:   slices.Clone(g.Operations),
			LicenseTypes: slices.Clone(g.LicenseTypes),
			Authorities:  slices.Clone(g.Authorities),
			Matters:      slices.Clone(g.Matters),
		}
	}
	return out
}

// RateLimit returns the member's rate limit.
func (m *Member) RateLimit() RateLimit { return m.rateLimit }

// String names the member without secrets.
func (m *Member) String() string { return fmt.Sprintf("%s (%s, %s)", m.appID, m.name, m.department) }

// GoString is String, so that %#v prints no secret either.
func (m *Member) GoString() string { return "auth.Member(" + m.String() + ")" }

// LogValue logs the member without secrets.
func (m *Member) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("app_id", m.appID),
		slog.String("name", m.name),
		slog.String("department", m.department),
		slog.Any("roles", m.roles),
	)
}

// Resource is what an operation is about. Empty fields are not checked:
// an endpoint fills in what it knows (the license type and issuing
// authority of the license, the service matter of the request).
type Resource struct {
	LicenseType string
	Authority   string
	Matter      string
}

// Authorize reports whether the member may perform op on res, or returns
// a 403 *licensehub.Error naming what is missing, checked in this order:
//
//   - FORBIDDEN_ROLE: none of the member's roles allows op;
//   - FORBIDDEN_OPERATION: no grant lists op;
//   - FORBIDDEN_LICENSE_TYPE: grants list op, but none covers
//     res.LicenseType;
//   - FORBIDDEN_AUTHORITY: ... none of those also covers res.Authority;
//   - FORBIDDEN_MATTER: ... none of those also covers res.Matter.
//
// One grant must cover everything: a grant for type A and another for
// matter M do not together allow type A for matter M. Details carry
// "operation", "missing" (role, operation, license_type, authority,
// matter) and "value" (the value not covered; the member's roles for
// FORBIDDEN_ROLE). An unknown op is a bug of the caller: EINTERNAL.
func (m *Member) Authorize(op string, res Resource) error {
	if !KnownOperation(op) {
		return licensehub.Errorf(licensehub.EINTERNAL, "authorize: unknown operation %q", op)
	}
	forbidden := func(code, missing string, value any, format string, args ...any) error {
		return &licensehub.Error{
			Code:    code,
			Message: fmt.Sprintf(format, args...),
			Details: map[string]any{"operation": op, "missing": missing, "value": value},
		}
	}
	if !slices.ContainsFunc(m.roles, func(r Role) bool { return r.Allows(op) }) {
		roles := make([]string, len(m.roles))
		for i, r := range m.roles {
			roles[i] = string(r)
		}
		return forbidden(licensehub.EFORBIDDENROLE, "role", roles,
			"%s may not %s: its roles %v do not allow it (roles that do: %v)", m.appID, op, roles, rolesAllowing(op))
	}
	var gs []*Grant
	for i := range m.grants {
		if slices.Contains(m.grants[i].Operations, op) {
			gs = append(gs, &m.grants[i])
		}
	}
	if len(gs) == 0 {
		return forbidden(licensehub.EFORBIDDENOPERATION, "operation", op,
			"%s has no grant for %s", m.appID, op)
	}
	narrow := func(value string, list func(*Grant) []string) {
		if value == "" {
			return
		}
		gs = slices.DeleteFunc(gs, func(g *Grant) bool {
			l := list(g)
			return len(l) > 0 && !slices.Contains(l, value)
		})
	}
	narrow(res.LicenseType, func(g *Grant) []string { return g.LicenseTypes })
	if len(gs) == 0 {
		return forbidden(licensehub.EFORBIDDENTYPE, "license_type", res.LicenseType,
			"%s has no grant for %s on license type %s", m.appID, op, res.LicenseType)
	}
	narrow(res.Authority, func(g *Grant) []string { return g.Authorities })
	if len(gs) == 0 {
		return forbidden(licensehub.EFORBIDDENAUTHORITY, "authority", res.Authority,
			"%s has no grant for %s on licenses of authority %s%s", m.appID, op, res.Authority, ofType(res))
	}
	narrow(res.Matter, func(g *Grant) []string { return g.Matters })
	if len(gs) == 0 {
		return forbidden(licensehub.EFORBIDDENMATTER, "matter", res.Matter,
			"%s has no grant for %s for service matter %s%s", m.appID, op, res.Matter, ofType(res))
	}
	return nil
}

// ofType completes a message with the license type, when there is one.
func ofType(res Resource) string {
	if res.LicenseType == "" {
		return ""
	}
	return " (license type " + res.LicenseType + ")"
}
