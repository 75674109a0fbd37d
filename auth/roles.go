package auth

import "slices"

// Operations: what a member system asks the hub to do. The strings are
// stable (they appear in members.yaml, in 403 details and in the audit
// trail); never rename one.
const (
	OpLicenseCreate   = "license.create"   // issue a license
	OpLicenseChange   = "license.change"   // change, suspend, revoke a license
	OpLicenseRead     = "license.read"     // fetch a license by identifier
	OpLicenseLookup   = "license.lookup"   // look licenses up by holder for a service matter
	OpConsentCreate   = "consent.create"   // record a holder's authorisation
	OpConsentRevoke   = "consent.revoke"   // withdraw it
	OpAuditRead       = "audit.read"       // query the audit trail
	OpUsageRead       = "usage.read"       // who used a holder's licenses
	OpExchangeInbound = "exchange.inbound" // licenses pushed by the provincial platform
	OpExchangeRead    = "exchange.read"    // the change feed for the provincial platform
	OpExchangeAdmin   = "exchange.admin"   // replay, pause, inspect the exchange
	OpConversionRun   = "conversion.run"   // convert paper/legacy licenses in bulk
	OpKeysAdmin       = "keys.admin"       // manage the issuing authorities' keys
)

// allOperations lists every operation in a fixed order.
var allOperations = []string{
	OpLicenseCreate, OpLicenseChange, OpLicenseRead, OpLicenseLookup,
	OpConsentCreate, OpConsentRevoke,
	OpAuditRead, OpUsageRead,
	OpExchangeInbound, OpExchangeRead, OpExchangeAdmin,
	OpConversionRun, OpKeysAdmin,
}

// Operations returns every operation.
func Operations() []string { return slices.Clone(allOperations) }

// KnownOperation reports whether op is one of the operations above.
func KnownOperation(op string) bool { return slices.Contains(allOperations, op) }

// Role is what kind of member system a caller is. A member has one or more.
type Role string

// Roles: the stable strings of members.yaml.
const (
	RoleIssuingDepartment  Role = "issuing_department"  // 发证部门: issues and changes its licenses
	RoleApprovalSystem     Role = "approval_system"     // 审批系统: uses licenses for service matters
	RoleCitizenApp         Role = "citizen_app"         // citizen-facing app: consent, own usage
	RoleProvincialPlatform Role = "provincial_platform" // 省级平台: exchange in both directions
	RoleSupervisor         Role = "supervisor"          // 电子监察: reads the audit trail
	RoleAdministrator      Role = "administrator"       // operators of the hub
)

// roleOperations is the one table of what each role allows. A grant in
// members.yaml can narrow this (to license types, authorities, matters)
// but never widen it: the loader refuses a grant listing an operation
// that none of its member's roles allows.
var roleOperations = map[Role][]string{
	RoleIssuingDepartment:  {OpLicenseCreate, OpLicenseChange, OpLicenseRead, OpConversionRun},
	RoleApprovalSystem:     {OpLicenseRead, OpLicenseLookup},
	RoleCitizenApp:         {OpConsentCreate, OpConsentRevoke, OpUsageRead, OpLicenseRead},
	RoleProvincialPlatform: {OpExchangeInbound, OpExchangeRead, OpLicenseRead},
	RoleSupervisor:         {OpAuditRead, OpUsageRead},
	RoleAdministrator:      allOperations,
}

// allRoles lists every role in a fixed order.
var allRoles = []Role{
	RoleIssuingDepartment, RoleApprovalSystem, RoleCitizenApp,
	RoleProvincialPlatform, RoleSupervisor, RoleAdministrator,
}

// Roles returns every role.
func Roles() []Role { return slices.Clone(allRoles) }

// Valid reports whether r is one of the roles above.
func (r Role) Valid() bool { _, ok := roleOperations[r]; return ok }

// Operations returns the operations r allows (none for an unknown role).
func (r Role) Operations() []string { return slices.Clone(roleOperations[r]) }

// Allows reports whether r allows op.
func (r Role) Allows(op string) bool { return slices.Contains(roleOperations[r], op) }

// rolesAllowing returns the roles that allow op, for messages.
func rolesAllowing(op string) []string {
	var out []string
	for _, r := range allRoles {
		if r.Allows(op) {
			out = append(out, string(r))
		}
	}
	return out
}
