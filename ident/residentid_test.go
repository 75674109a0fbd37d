package ident

import (
	"strings"
	"testing"
	"time"
)

// testNow is the clock of the table tests: 2025-06-15 20:00 in China.
var testNow = time.Date(2025, time.June, 15, 12, 0, 0, 0, time.UTC)

func TestValidateResidentIDAccepts(t *testing.T) {
	tests := []struct {
		name, id string
	}{
		// Domain reference example. Check by hand: digits
		// 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2 × weights
		// 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 =
		// 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167;
		// 167 mod 11 = 2 → "10X98765432"[2] = X.
		{"domain example", "11010519491231002X"},
		{"leap day 2000", withResidentCheck(t, "44030420000229123")},
		{"leap day 2024", withResidentCheck(t, "31011520240229001")},
		{"first accepted date", withResidentCheck(t, "65010219000101002")},
		{"born today in China", withResidentCheck(t, "11010520250615001")},
		{"Taiwan", withResidentCheck(t, "71000019800101001")},
		{"Hong Kong residence permit", withResidentCheck(t, "81000019800101001")},
		{"Macao residence permit", withResidentCheck(t, "82000019800101001")},
		{"Taiwan residence permit", withResidentCheck(t, "83000019800101001")},
		{"foreigner, Beijing", withResidentCheck(t, "91184019800101001")},
		{"foreigner, Shanghai", withResidentCheck(t, "93184019800101001")},
		{"foreigner, Xinjiang", withResidentCheck(t, "96584019800101001")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateResidentID(tt.id, testNow); err != nil {
				t.Errorf("validateResidentID(%q) = %v, want nil", tt.id, err)
			}
		})
	}
	if err := ValidateResidentID("11010519491231002X"); err != nil {
		t.Errorf("ValidateResidentID(domain example) = %v", err)
	}
}

func TestValidateResidentIDRejects(t *testing.T) {
	tests := []struct {
		name, id string
		want     want
		message  string // exact message, when given
	}{
		{"empty", "", want{RuleLength, map[string]any{"got": 0, "min": 18, "max": 18}}, "resident ID has 0 characters, want 18"},
		{"15-digit first generation", "110105491231002", want{RuleLength, map[string]any{"got": 15}}, ""},
		{"19 chars", "11010519491231002X0", want{RuleLength, map[string]any{"got": 19}}, ""},
		{"6 CJK chars (18 bytes)", "公民身份号码", want{RuleLength, map[string]any{"got": 6}}, ""},
		{"letter in body", "1101051949123100AX", want{RuleAlphabet, map[string]any{"position": 17, "got": "A"}}, ""},
		{"X in body", "11010519491231X02X", want{RuleAlphabet, map[string]any{"position": 15, "got": "X"}}, ""},
		{"CJK in body", "1101051949123100码X", want{RuleAlphabet, map[string]any{"position": 17, "got": "码"}}, ""},
		{"lower-case x", "11010519491231002x", want{RuleAlphabet, map[string]any{"position": 18, "got": "x"}},
			"resident ID check character is a lower-case x; GB 11643 writes it as upper-case X"},
		{"letter check", "11010519491231002Y", want{RuleAlphabet, map[string]any{"position": 18, "got": "Y"}}, ""},
		{"trailing space", "11010519491231002 ", want{RuleAlphabet, map[string]any{"position": 18}}, ""},
		{"region 00", withResidentCheck(t, "00010519491231002"), want{RuleRegion, map[string]any{"got": "00"}}, ""},
		{"region 16", withResidentCheck(t, "16010519491231002"), want{RuleRegion, map[string]any{"got": "16"}}, ""},
		{"region 84", withResidentCheck(t, "84000019800101001"), want{RuleRegion, map[string]any{"got": "84"}}, ""},
		{"region 99", withResidentCheck(t, "99010519491231002"), want{RuleRegion, map[string]any{"got": "990"}}, ""},
		{"foreigner 90", withResidentCheck(t, "90184019800101001"), want{RuleRegion, map[string]any{"got": "901"}}, ""},
		{"foreigner with Taiwan code", withResidentCheck(t, "97184019800101001"), want{RuleRegion, map[string]any{"got": "971"}}, ""},
		{"month 13", withResidentCheck(t, "11010519491331002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}},
			"resident ID birth date (characters 7-14) is not a calendar date"},
		{"month 00", withResidentCheck(t, "11010519490031002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}}, ""},
		{"day 00", withResidentCheck(t, "11010519491200002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}}, ""},
		{"April 31", withResidentCheck(t, "11010519490431002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}}, ""},
		{"Feb 29 2023", withResidentCheck(t, "11010520230229002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}}, ""},
		{"Feb 29 1900 (not leap)", withResidentCheck(t, "11010519000229002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}}, ""},
		{"Feb 30 2024", withResidentCheck(t, "11010520240230002"), want{RuleBirthDate, map[string]any{"cause": "not_a_date"}}, ""},
		{"1899-12-31", withResidentCheck(t, "11010518991231002"), want{RuleBirthDate, map[string]any{"cause": "before_1900"}}, ""},
		{"year 0000", withResidentCheck(t, "11010500000101002"), want{RuleBirthDate, map[string]any{"cause": "before_1900"}}, ""},
		{"tomorrow in China", withResidentCheck(t, "11010520250616001"), want{RuleBirthDate, map[string]any{"cause": "in_future"}},
			"resident ID birth date is in the future"},
		{"year 9999", withResidentCheck(t, "11010599991231002"), want{RuleBirthDate, map[string]any{"cause": "in_future"}}, ""},
		{"wrong check digit", "110105194912310027", want{RuleCheckDigit, map[string]any{"expected": "X", "got": "7"}},
			"resident ID check digit is 7, expected X"},
		{"X where a digit belongs", replaceAt(withResidentCheck(t, "44030420000229123"), 17, 'X'), want{RuleCheckDigit, map[string]any{"got": "X"}}, ""},
		{"one digit changed", "11010519491231003X", want{RuleCheckDigit, nil}, ""},
		{"adjacent digits swapped", "11010519491231020X", want{RuleCheckDigit, nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateResidentID(tt.id, testNow)
			assertInvalid(t, err, tt.want)
			if tt.message != "" && err.Message != tt.message {
				t.Errorf("message = %q, want %q", err.Message, tt.message)
			}
			if len(tt.id) == ResidentIDLen && strings.Contains(err.Message, tt.id[:14]) {
				t.Errorf("message %q repeats the ID number", err.Message)
			}
		})
	}
}

// TestValidateResidentIDToday checks that "today" is the date in China: at
// 00:30 on 2 March in Beijing it is still 1 March in UTC, and a child born
// that night must be registrable.
func TestValidateResidentIDToday(t *testing.T) {
	now := time.Date(2024, time.March, 1, 16, 30, 0, 0, time.UTC) // 2024-03-02 00:30 CST
	if err := validateResidentID(withResidentCheck(t, "11010520240302001"), now); err != nil {
		t.Errorf("born today in China: %v", err)
	}
	assertInvalid(t, validateResidentID(withResidentCheck(t, "11010520240303001"), now),
		want{RuleBirthDate, map[string]any{"cause": "in_future"}})
}

func TestResidentIDCheck(t *testing.T) {
	tests := []struct {
		first17 string
		want    byte
	}{
		{"11010519491231002", 'X'}, // Σ mod 11 = 2, see TestValidateResidentIDAccepts
		{"00000000000000000", '1'}, // Σ = 0 → "10X98765432"[0]
		// 1 × weight 7 at position 1: Σ = 7 → "10X98765432"[7] = 5.
		{"10000000000000000", '5'},
	}
	for _, tt := range tests {
		got, err := ResidentIDCheck(tt.first17)
		if err != nil || got != tt.want {
			t.Errorf("ResidentIDCheck(%q) = %q, %v; want %q", tt.first17, got, err, tt.want)
		}
	}
	assertInvalid(t, second(ResidentIDCheck("1101051949123100")), want{RuleLength, map[string]any{"got": 16}})
	assertInvalid(t, second(ResidentIDCheck("11010519491231002X")), want{RuleLength, map[string]any{"got": 18}})
	assertInvalid(t, second(ResidentIDCheck("1101051949123100X")), want{RuleAlphabet, map[string]any{"position": 17, "got": "X"}})
}

func TestResidentIDBirthDateAndSex(t *testing.T) {
	tests := []struct {
		id    string
		birth time.Time
		sex   Sex
	}{
		{"11010519491231002X", time.Date(1949, time.December, 31, 0, 0, 0, 0, time.UTC), SexFemale}, // digit 17 = 2
		{withResidentCheck(t, "44030420000229123"), time.Date(2000, time.February, 29, 0, 0, 0, 0, time.UTC), SexMale},
		{withResidentCheck(t, "65010219000101000"), time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC), SexFemale}, // 0 is even
	}
	for _, tt := range tests {
		birth, err := ResidentIDBirthDate(tt.id)
		if err != nil || !birth.Equal(tt.birth) || birth.Location() != time.UTC {
			t.Errorf("ResidentIDBirthDate(%q) = %v, %v; want %v", tt.id, birth, err, tt.birth)
		}
		sex, err := ResidentIDSex(tt.id)
		if err != nil || sex != tt.sex {
			t.Errorf("ResidentIDSex(%q) = %v, %v; want %v", tt.id, sex, err, tt.sex)
		}
	}

	bad := "110105194912310027"
	if _, err := ResidentIDBirthDate(bad); Rule(err) != RuleCheckDigit {
		t.Errorf("ResidentIDBirthDate(invalid) error = %v, want rule check_digit", err)
	}
	if _, err := ResidentIDSex(bad); Rule(err) != RuleCheckDigit {
		t.Errorf("ResidentIDSex(invalid) error = %v, want rule check_digit", err)
	}
	if SexMale.String() != "male" || SexFemale.String() != "female" || Sex(9).String() != "Sex(9)" {
		t.Errorf("Sex.String: %v %v %v", SexMale, SexFemale, Sex(9))
	}
}

// TestResidentIDDetectsSingleSubstitutions proves the property that
// FuzzValidateResidentID asserts: changing one digit at position i by
// d ≠ 0 (|d| ≤ 9) changes Σ by w_i·d mod 11, never 0 because 11 is prime
// and w_i is not a multiple of it; "10X98765432" maps distinct Σ mod 11 to
// distinct characters, so the check fails. A digit turned into X fails the
// alphabet rule; a changed check character fails outright.
func TestResidentIDDetectsSingleSubstitutions(t *testing.T) {
	for i, w := range residentIDWeights {
		for d := 1; d <= 9; d++ {
			if w*d%11 == 0 {
				t.Errorf("weight %d of position %d times %d is 0 mod 11", w, i+1, d)
			}
		}
	}
	seen := map[rune]bool{}
	for _, c := range residentIDCheckChars {
		if seen[c] {
			t.Errorf("check character %c appears twice", c)
		}
		seen[c] = true
	}
	valid := "11010519491231002X"
	for i := range valid {
		for _, c := range []byte("0123456789X") {
			if c == valid[i] {
				continue
			}
			if s := replaceAt(valid, i, c); validateResidentID(s, testNow) == nil {
				t.Errorf("%q (position %d changed) validates", s, i+1)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }
