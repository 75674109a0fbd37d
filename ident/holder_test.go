package ident

import (
	"strings"
	"testing"
)

func TestValidateHolderCode(t *testing.T) {
	tests := []struct {
		name, codeType, code string
		want                 *want // nil: accepted
	}{
		{"resident ID", HolderResidentID, "11010519491231002X", nil},
		{"credit code", HolderCreditCode, "91350100M000100Y43", nil},
		{"resident ID given as credit code", HolderCreditCode, "11010519491231002X", &want{RuleCheckDigit, nil}},
		{"credit code given as resident ID", HolderResidentID, "91350100M000100Y43", &want{RuleAlphabet, nil}},
		{"bad resident ID", HolderResidentID, "110105194912310027", &want{RuleCheckDigit, map[string]any{"expected": "X"}}},
		{"bad credit code", HolderCreditCode, "91350100M000100Y4", &want{RuleLength, nil}},
		{"unknown type", "999", "91350100M000100Y43", &want{RuleHolderCodeType, map[string]any{"got": "999"}}},
		{"empty type", "", "91350100M000100Y43", &want{RuleHolderCodeType, map[string]any{"got": ""}}},
		{"type with space", "111 ", "11010519491231002X", &want{RuleHolderCodeType, nil}},
		{"huge type is clipped", strings.Repeat("1", 1000), "x", &want{RuleHolderCodeType, map[string]any{"got": strings.Repeat("1", 16) + "…"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateHolderCode(tt.codeType, tt.code)
			if tt.want == nil {
				if err != nil {
					t.Errorf("ValidateHolderCode(%q, %q) = %v, want nil", tt.codeType, tt.code, err)
				}
				return
			}
			assertInvalid(t, err, *tt.want)
		})
	}
}
