package auth_test

import (
	"slices"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
)

// TestAuthorize covers every 403 code. The approval member has two grants:
// read+lookup of typeA for matterA (any authority), and read of typeB from
// authB (any matter).
func TestAuthorize(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	approvalM, _ := reg.Member("approval")
	issuerM, _ := reg.Member("issuer")
	tests := []struct {
		name    string
		m       *auth.Member
		op      string
		res     auth.Resource
		code    string
		missing string
		value   any
	}{
		{name: "lookup within the grant", m: approvalM, op: auth.OpLicenseLookup,
			res: auth.Resource{LicenseType: typeA, Authority: authA, Matter: matterA}},
		{name: "any authority when the grant lists none", m: approvalM, op: auth.OpLicenseLookup,
			res: auth.Resource{LicenseType: typeA, Authority: authB, Matter: matterA}},
		{name: "second grant: any matter", m: approvalM, op: auth.OpLicenseRead,
			res: auth.Resource{LicenseType: typeB, Authority: authB, Matter: matterB}},
		{name: "empty resource fields are not checked", m: approvalM, op: auth.OpLicenseRead},
		{name: "only the type known", m: approvalM, op: auth.OpLicenseRead, res: auth.Resource{LicenseType: typeB}},
		{name: "issuer creates for its authority", m: issuerM, op: auth.OpLicenseCreate,
			res: auth.Resource{LicenseType: typeA, Authority: authA}},

		{name: "role does not allow", m: approvalM, op: auth.OpLicenseCreate, res: auth.Resource{LicenseType: typeA},
			code: licensehub.EFORBIDDENROLE, missing: "role", value: []string{"approval_system"}},
		{name: "role does not allow keys.admin", m: issuerM, op: auth.OpKeysAdmin,
			code: licensehub.EFORBIDDENROLE, missing: "role", value: []string{"issuing_department"}},
		{name: "role allows, no grant", m: issuerM, op: auth.OpConversionRun,
			code: licensehub.EFORBIDDENOPERATION, missing: "operation", value: auth.OpConversionRun},
		{name: "license type not granted", m: approvalM, op: auth.OpLicenseLookup,
			res:  auth.Resource{LicenseType: typeB, Matter: matterA},
			code: licensehub.EFORBIDDENTYPE, missing: "license_type", value: typeB},
		{name: "authority not granted", m: issuerM, op: auth.OpLicenseCreate,
			res:  auth.Resource{LicenseType: typeA, Authority: authB},
			code: licensehub.EFORBIDDENAUTHORITY, missing: "authority", value: authB},
		{name: "authority not granted for that type", m: approvalM, op: auth.OpLicenseRead,
			res:  auth.Resource{LicenseType: typeB, Authority: authA},
			code: licensehub.EFORBIDDENAUTHORITY, missing: "authority", value: authA},
		{name: "matter not granted", m: approvalM, op: auth.OpLicenseLookup,
			res:  auth.Resource{LicenseType: typeA, Matter: matterB},
			code: licensehub.EFORBIDDENMATTER, missing: "matter", value: matterB},
		{name: "grants do not combine", m: approvalM, op: auth.OpLicenseRead,
			// typeA is granted (grant 1, matterA only), authB too (grant 2,
			// typeB only): no single grant covers typeA from authB for matterB.
			res:  auth.Resource{LicenseType: typeA, Authority: authB, Matter: matterB},
			code: licensehub.EFORBIDDENMATTER, missing: "matter", value: matterB},
		{name: "unknown operation is a bug", m: approvalM, op: "license.delete", code: licensehub.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Authorize(tt.op, tt.res)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := codeOf(t, err)
			if e.Code != tt.code {
				t.Fatalf("code %s (%v), want %s", e.Code, err, tt.code)
			}
			if tt.missing == "" {
				return
			}
			if e.Details["operation"] != tt.op || e.Details["missing"] != tt.missing {
				t.Errorf("details %v, want operation %s, missing %s", e.Details, tt.op, tt.missing)
			}
			switch want := tt.value.(type) {
			case []string:
				if got, _ := e.Details["value"].([]string); !slices.Equal(got, want) {
					t.Errorf("details[value] = %v, want %v", e.Details["value"], want)
				}
			default:
				if e.Details["value"] != want {
					t.Errorf("details[value] = %v, want %v", e.Details["value"], want)
				}
			}
		})
	}
}

// TestRoleTable pins the role table of the issue.
func TestRoleTable(t *testing.T) {
	want := map[auth.Role][]string{
		auth.RoleIssuingDepartment:  {"license.create", "license.change", "license.read", "conversion.run"},
		auth.RoleApprovalSystem:     {"license.read", "license.lookup"},
		auth.RoleCitizenApp:         {"consent.create", "consent.revoke", "usage.read", "license.read"},
		auth.RoleProvincialPlatform: {"exchange.inbound", "exchange.read", "license.read"},
		auth.RoleSupervisor:         {"audit.read", "usage.read"},
		auth.RoleAdministrator: {"license.create", "license.change", "license.read", "license.lookup",
			"consent.create", "consent.revoke", "audit.read", "usage.read",
			"exchange.inbound", "exchange.read", "exchange.admin", "conversion.run", "keys.admin"},
	}
	if len(auth.Roles()) != len(want) {
		t.Fatalf("%d roles, want %d", len(auth.Roles()), len(want))
	}
	for _, r := range auth.Roles() {
		got := r.Operations()
		if !slices.Equal(got, want[r]) {
			t.Errorf("%s allows %v, want %v", r, got, want[r])
		}
		for _, op := range auth.Operations() {
			if r.Allows(op) != slices.Contains(want[r], op) {
				t.Errorf("%s.Allows(%s) = %v", r, op, r.Allows(op))
			}
		}
	}
	if auth.Role("root").Valid() || auth.Role("root").Allows(auth.OpKeysAdmin) {
		t.Error("an unknown role is valid or allows something")
	}
	if !slices.Equal(auth.Operations(), want[auth.RoleAdministrator]) {
		t.Errorf("Operations() = %v", auth.Operations())
	}
}

func TestMemberAccessors(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	m, ok := reg.Member("approval")
	if !ok {
		t.Fatal("no member approval")
	}
	if m.AppID() != "approval" || m.Name() != "Approval" || m.Department() != "AMR" {
		t.Errorf("member %v", m)
	}
	if !m.HasRole(auth.RoleApprovalSystem) || m.HasRole(auth.RoleAdministrator) {
		t.Errorf("roles %v", m.Roles())
	}
	if got := m.RateLimit(); got.Requests != 3 || got.Per.Seconds() != 1 {
		t.Errorf("rate limit %+v", got)
	}
	if is, _ := reg.Member("issuer"); is.RateLimit() != (auth.RateLimit{Requests: auth.DefaultRateRequests, Per: auth.DefaultRatePer}) {
		t.Errorf("issuer rate limit %+v, want the default", is.RateLimit())
	}
	// Copies: changing them does not change the member.
	m.Roles()[0] = auth.RoleAdministrator
	g := m.Grants()
	g[0].Operations[0] = auth.OpKeysAdmin
	if m.HasRole(auth.RoleAdministrator) || m.Grants()[0].Operations[0] == auth.OpKeysAdmin {
		t.Error("Roles or Grants returned the member's own slices")
	}
	if ids := []string{reg.Members()[0].AppID(), reg.Members()[1].AppID()}; !slices.Equal(ids, []string{"approval", "issuer"}) {
		t.Errorf("Members() in order %v", ids)
	}
	if _, ok := reg.Member("nobody"); ok {
		t.Error("found a member that does not exist")
	}
}
