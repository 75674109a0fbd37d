package ident

import (
	"strings"
	"testing"
)

func TestValidateCreditCodeAccepts(t *testing.T) {
	for _, code := range []string{
		"91350100M000100Y43", // domain reference example (GB 32100)
		"11430000006122244L", // issuer code of the GB/T 36904 worked example
		"11100000000013338W", // defining authority of that example's type code
		"91110000000000000E",
		"12100000000000000F",
		"11330000002482080P",
		"91440300MA5F000007",
		"91110108100000001M",
	} {
		if err := ValidateCreditCode(code); err != nil {
			t.Errorf("ValidateCreditCode(%q) = %v, want nil", code, err)
		}
	}
}

func TestValidateCreditCodeGenerated(t *testing.T) {
	// Every body of the alphabet gets a check character that validates.
	bodies := []string{
		"00000000000000000",
		"YYYYYYYYYYYYYYYYY",
		"0123456789ABCDEFG",
		"HJKLMNPQRTUWXY012",
		"52520000MB1234567",
	}
	for _, body := range bodies {
		code := withCreditCheck(t, body)
		if err := ValidateCreditCode(code); err != nil {
			t.Errorf("ValidateCreditCode(%q) = %v, want nil", code, err)
		}
	}
}

func TestCreditCodeCheck(t *testing.T) {
	tests := []struct {
		first17 string
		want    byte
	}{
		// 9 1 3 5 0 1 0 0 M(21) 0 0 0 1 0 0 Y(30) 4 with weights
		// 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28:
		// 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640;
		// 1640 mod 31 = 28; (31-28) mod 31 = 3 → '3'.
		{"91350100M000100Y4", '3'},
		{"11430000006122244", 'L'},
		{"11100000000013338", 'W'},
		// Σ = 0 → (31-0) mod 31 = 0 → '0'.
		{"00000000000000000", '0'},
	}
	for _, tt := range tests {
		got, err := CreditCodeCheck(tt.first17)
		if err != nil || got != tt.want {
			t.Errorf("CreditCodeCheck(%q) = %q, %v; want %q", tt.first17, got, err, tt.want)
		}
	}
}

func TestCreditCodeCheckRejects(t *testing.T) {
	tests := []struct {
		name, in string
		want     want
	}{
		{"short", "91350100M000100Y", want{RuleLength, map[string]any{"got": 16}}},
		{"full code", "91350100M000100Y43", want{RuleLength, map[string]any{"got": 18}}},
		{"letter I", "91350100I000100Y4", want{RuleAlphabet, map[string]any{"position": 9, "got": "I"}}},
		{"lower case", "91350100m000100Y4", want{RuleAlphabet, map[string]any{"position": 9, "got": "m"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CreditCodeCheck(tt.in)
			assertInvalid(t, err, tt.want)
		})
	}
}

func TestValidateCreditCodeRejects(t *testing.T) {
	tests := []struct {
		name, in string
		want     want
		message  string
	}{
		{"empty", "", want{RuleLength, map[string]any{"got": 0, "min": 18, "max": 18}}, ""},
		{"17 chars", "91350100M000100Y4", want{RuleLength, map[string]any{"got": 17}}, ""},
		{"19 chars", "91350100M000100Y430", want{RuleLength, map[string]any{"got": 19}}, ""},
		{"18 bytes of 6 CJK chars", "统一社会信用", want{RuleLength, map[string]any{"got": 6}}, ""},
		{"18 chars one of them CJK", "91350100码000100Y43", want{RuleAlphabet, map[string]any{"position": 9, "got": "码"}}, ""},
		{"I", "91350100I000100Y43", want{RuleAlphabet, map[string]any{"position": 9, "got": "I"}}, ""},
		{"O", "91350100O000100Y43", want{RuleAlphabet, map[string]any{"got": "O"}}, ""},
		{"S", "S1350100M000100Y43", want{RuleAlphabet, map[string]any{"position": 1, "got": "S"}}, ""},
		{"V", "91350100M000100V43", want{RuleAlphabet, map[string]any{"position": 16, "got": "V"}}, ""},
		{"Z as check", "91350100M000100Y4Z", want{RuleAlphabet, map[string]any{"position": 18, "got": "Z"}}, ""},
		{"lower case", "91350100m000100y43", want{RuleAlphabet, map[string]any{"position": 9, "got": "m"}}, ""},
		{"space", " 1350100M000100Y43", want{RuleAlphabet, map[string]any{"position": 1, "got": " "}}, ""},
		{"wrong check", "91350100M000100Y44", want{RuleCheckDigit, map[string]any{"expected": "3", "got": "4"}},
			"credit code check character is 4, expected 3"},
		{"transposed", "91351000M000100Y43", want{RuleCheckDigit, nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCreditCode(tt.in)
			assertInvalid(t, err, tt.want)
			if tt.message != "" && !strings.HasSuffix(err.Error(), tt.message) {
				t.Errorf("message %q does not end with %q", err.Error(), tt.message)
			}
		})
	}
}

// TestCreditCodeDetectsSingleSubstitutions proves the property that
// FuzzValidateCreditCode asserts: changing one character of a valid code to
// another character of the alphabet always breaks the check. Changing
// position i (weight w_i) by d ≠ 0 (|d| ≤ 30) changes Σ by w_i·d mod 31,
// which is never 0 because 31 is prime and neither w_i nor d is a multiple
// of it; a different Σ mod 31 gives a different check value. Changing the
// check character itself obviously fails.
func TestCreditCodeDetectsSingleSubstitutions(t *testing.T) {
	for i, w := range creditCodeWeights {
		for d := 1; d < 31; d++ {
			if w*d%31 == 0 {
				t.Errorf("weight %d of position %d times %d is 0 mod 31", w, i+1, d)
			}
		}
	}
	// And exhaustively on the example.
	valid := "91350100M000100Y43"
	for i := range valid {
		for _, c := range []byte(CreditCodeAlphabet) {
			if c == valid[i] {
				continue
			}
			if s := replaceAt(valid, i, c); ValidateCreditCode(s) == nil {
				t.Errorf("%q (position %d changed) validates", s, i+1)
			}
		}
	}
}
