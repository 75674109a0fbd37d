package ident

import "github.com/licensehub/licensehub"

// Holder code types (持证主体代码类型) as used in practice by license
// exchange specifications.
const (
	HolderResidentID = "111" // resident ID number, GB 11643
	HolderCreditCode = "001" // unified social credit code, GB 32100
)

// ValidateHolderCode validates a holder code (持证主体代码) by its type:
// ValidateResidentID for HolderResidentID, ValidateCreditCode for
// HolderCreditCode.
//
// Rules: holder_code_type for any other type, and those of the validator.
func ValidateHolderCode(codeType, code string) error {
	switch codeType {
	case HolderResidentID:
		return ValidateResidentID(code)
	case HolderCreditCode:
		return ValidateCreditCode(code)
	}
	got := licensehub.Clip(codeType, 16)
	return invalid(RuleHolderCodeType, map[string]any{"got": got, "expected": []string{HolderResidentID, HolderCreditCode}},
		"holder code type %q is not known; want %s (resident ID) or %s (unified social credit code)", got, HolderResidentID, HolderCreditCode)
}
