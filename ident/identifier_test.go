package ident

import (
	"strings"
	"testing"
)

const (
	workedExample = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"
	exampleType   = "11100000000013338W011"
	exampleIssuer = "11430000006122244L"
	exampleSerial = "20230000403"
)

// TestCheckCharacterGolden pins MOD 37,36 check characters computed
// independently of this package.
//
// By hand, payload "AB12" (A=10, B=11):
//
//	P=36  A: S=(36+10) mod 36=10  P=20 mod 37=20
//	      B: S=(20+11) mod 36=31  P=62 mod 37=25
//	      1: S=(25+1)  mod 36=26  P=52 mod 37=15
//	      2: S=(15+2)  mod 36=17  P=34 mod 37=34
//	check = (37-34) mod 36 = 3 → '3'
//
// Payload "0": S=(36+0) mod 36=0 → 36, P=72 mod 37=35, check=(37-35)=2.
//
// The worked example's payload, one P per character (P starts at 36):
//
//	type code 11100000000013338W011: 2 6 14 28 19 1 2 4 8 16 32 27 19 7 20 9 34
//	  23 9 20 5 (W=32: S=(34+32) mod 36=30, P=60 mod 37=23)
//	issuer 11430000006122244L: 12 26 23 15 30 23 9 18 36 35 10 22 11 26 19 9 26
//	  22 (L=21: S=(26+21) mod 36=11, P=22)
//	serial 20230000403: 11 22 11 28 19 1 2 4 16 32 33
//	version 001: 29 21 7
//
// check = (37-7) mod 36 = 30 → 'U', the example's check character.
func TestCheckCharacterGolden(t *testing.T) {
	tests := []struct {
		payload string
		want    byte
	}{
		{"0", '2'},
		{"A", 'H'},
		{"Z", '4'},
		{"AB12", '3'},
		{exampleType + exampleIssuer + exampleSerial + "001", 'U'},
		{exampleType + exampleIssuer + exampleSerial + "002", 'S'},
		{exampleType + exampleIssuer + exampleSerial + "999", '9'},
	}
	for _, tt := range tests {
		got, err := CheckCharacter(tt.payload)
		if err != nil || got != tt.want {
			t.Errorf("CheckCharacter(%q) = %q, %v; want %q", tt.payload, got, err, tt.want)
		}
	}
}

func TestCheckCharacterRejects(t *testing.T) {
	tests := []struct {
		name, payload string
		want          want
	}{
		{"empty", "", want{RuleLength, map[string]any{"got": 0}}},
		{"lower case", "AB1c", want{RuleAlphabet, map[string]any{"position": 4, "got": "c"}}},
		{"dot", "AB.1", want{RuleAlphabet, map[string]any{"position": 3, "got": "."}}},
		{"CJK", "AB码1", want{RuleAlphabet, map[string]any{"position": 3, "got": "码"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckCharacter(tt.payload)
			assertInvalid(t, err, tt.want)
		})
	}
}

func TestParseWorkedExample(t *testing.T) {
	id, err := Parse(workedExample)
	if err != nil {
		t.Fatalf("Parse(worked example) = %v", err)
	}
	wantID := Identifier{TypeCode: exampleType, IssuerCode: exampleIssuer, Serial: exampleSerial, Version: 1, Check: 'U'}
	if id != wantID {
		t.Errorf("Parse = %+v, want %+v", id, wantID)
	}
	if got := id.String(); got != workedExample {
		t.Errorf("String = %q, want %q", got, workedExample)
	}
	if got := id.Payload(); got != "11100000000013338W01111430000006122244L20230000403001" {
		t.Errorf("Payload = %q", got)
	}
	if err := id.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

// TestNewGolden is a golden table: New must produce exactly these
// identifiers, whose check characters were computed independently.
func TestNewGolden(t *testing.T) {
	tests := []struct {
		typeCode, issuer, serial string
		version                  int
		want                     string
	}{
		{exampleType, exampleIssuer, exampleSerial, 1, workedExample},
		{exampleType, exampleIssuer, exampleSerial, 2,
			"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S"},
		{exampleType, exampleIssuer, exampleSerial, 999,
			"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.999.9"},
		{"11100000000013338W000", "91350100M000100Y43", "1", 1,
			"1.2.156.3005.2.11100000000013338W000.91350100M000100Y43.1.001.U"},
		{"91110000000000000E123", "12100000000000000F", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 42,
			"1.2.156.3005.2.91110000000000000E123.12100000000000000F.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.042.T"},
		{"11330000002482080P007", "91440300MA5F000007", strings.Repeat("Z", 64), 100,
			"1.2.156.3005.2.11330000002482080P007.91440300MA5F000007." + strings.Repeat("Z", 64) + ".100.3"},
		{"11330000002482080P007", "91440300MA5F000007", "0", 10,
			"1.2.156.3005.2.11330000002482080P007.91440300MA5F000007.0.010.G"},
	}
	for _, tt := range tests {
		id, err := New(tt.typeCode, tt.issuer, tt.serial, tt.version)
		if err != nil {
			t.Errorf("New(%q, %q, %q, %d) = %v", tt.typeCode, tt.issuer, tt.serial, tt.version, err)
			continue
		}
		if got := id.String(); got != tt.want {
			t.Errorf("New(...).String() = %q, want %q", got, tt.want)
		}
		// Round trip: String → Parse gives the same value back.
		parsed, err := Parse(id.String())
		if err != nil || parsed != id {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", id.String(), parsed, err, id)
		}
	}
}

func TestNewRoundTripGenerated(t *testing.T) {
	// Identifiers built from generated authority codes round-trip too.
	for i, body := range []string{"11000000MB0000001", "52520000MB1234567", "Y0000000000000000", "1234567890ABCDEFG"} {
		code := withCreditCheck(t, body)
		for _, version := range []int{1, 7, 999} {
			id, err := New(code+"123", code, "SN"+strings.Repeat("9", i), version)
			if err != nil {
				t.Fatalf("New with generated code %q: %v", code, err)
			}
			parsed, err := Parse(id.String())
			if err != nil || parsed != id {
				t.Errorf("round trip of %q: %+v, %v", id, parsed, err)
			}
		}
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name                     string
		typeCode, issuer, serial string
		version                  int
		want                     want
	}{
		{"type code short", "11100000000013338W01", exampleIssuer, exampleSerial, 1,
			want{RuleTypeCode, map[string]any{"cause": RuleLength, "got": 20, "min": 21, "max": 21}}},
		{"type code bad USCC", "11100000000013338X011", exampleIssuer, exampleSerial, 1,
			want{RuleTypeCode, map[string]any{"cause": RuleCheckDigit, "expected": "W", "got": "X"}}},
		{"type code sequence not digits", "11100000000013338W01A", exampleIssuer, exampleSerial, 1,
			want{RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": 21, "got": "A"}}},
		{"issuer bad USCC", exampleType, "11430000006122244M", exampleSerial, 1,
			want{RuleIssuerCode, map[string]any{"cause": RuleCheckDigit, "expected": "L", "got": "M"}}},
		{"issuer length", exampleType, "1143000000612224L", exampleSerial, 1,
			want{RuleIssuerCode, map[string]any{"cause": RuleLength, "got": 17}}},
		{"empty serial", exampleType, exampleIssuer, "", 1,
			want{RuleSerial, map[string]any{"cause": RuleLength, "got": 0, "min": 1, "max": 64}}},
		{"serial 65", exampleType, exampleIssuer, strings.Repeat("1", 65), 1,
			want{RuleSerial, map[string]any{"cause": RuleLength, "got": 65}}},
		{"serial lower case", exampleType, exampleIssuer, "2023abc", 1,
			want{RuleSerial, map[string]any{"cause": RuleAlphabet, "position": 5, "got": "a"}}},
		{"serial dash", exampleType, exampleIssuer, "2023-1", 1,
			want{RuleSerial, map[string]any{"cause": RuleAlphabet, "position": 5, "got": "-"}}},
		{"version 0", exampleType, exampleIssuer, exampleSerial, 0,
			want{RuleVersion, map[string]any{"cause": "range", "got": 0, "min": 1, "max": 999}}},
		{"version 1000", exampleType, exampleIssuer, exampleSerial, 1000,
			want{RuleVersion, map[string]any{"cause": "range", "got": 1000}}},
		{"version negative", exampleType, exampleIssuer, exampleSerial, -1,
			want{RuleVersion, map[string]any{"cause": "range", "got": -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := New(tt.typeCode, tt.issuer, tt.serial, tt.version)
			assertInvalid(t, err, tt.want)
			if id != (Identifier{}) {
				t.Errorf("New returned %+v with an error", id)
			}
		})
	}
}

// replaceSegment returns the worked example with dot-separated part i
// (0-based, counting the root's five arcs) replaced by seg.
func replaceSegment(i int, seg string) string {
	parts := strings.Split(workedExample, ".")
	parts[i] = seg
	return strings.Join(parts, ".")
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, in string
		want     want
		message  string
	}{
		{"empty", "", want{RuleRoot, map[string]any{"expected": Root}}, ""},
		{"other root", strings.Replace(workedExample, "3005.2", "3005.3", 1), want{RuleRoot, nil}, ""},
		{"root arc extended", strings.Replace(workedExample, "3005.2.", "3005.21.", 1), want{RuleRoot, nil}, ""},
		{"leading space", " " + workedExample, want{RuleRoot, nil}, ""},
		{"URN prefix", "urn:oid:" + workedExample, want{RuleRoot, nil}, ""},
		{"root only", Root, want{RuleSegments, map[string]any{"expected": 10, "got": 5}}, ""},
		{"root and dot", Root + ".", want{RuleSegments, map[string]any{"got": 6}}, ""},
		{"check missing", strings.TrimSuffix(workedExample, ".U"), want{RuleSegments, map[string]any{"got": 9}}, ""},
		{"extra part", workedExample + ".X", want{RuleSegments, map[string]any{"got": 11}}, ""},
		{"dot in serial", replaceSegment(7, "2023.0000403"), want{RuleSegments, map[string]any{"got": 11}}, ""},
		{"trailing dot", workedExample + ".", want{RuleSegments, map[string]any{"got": 11}}, ""},
		{"type code length", replaceSegment(5, "11100000000013338W0111"), want{RuleTypeCode, map[string]any{"cause": RuleLength, "got": 22}}, ""},
		{"type code lower case", replaceSegment(5, "11100000000013338w011"), want{RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": 18, "got": "w"}}, ""},
		{"type code CJK", replaceSegment(5, "码1100000000013338W011"), want{RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": 1, "got": "码"}}, ""},
		{"type code USCC check", replaceSegment(5, "11100000000013339W011"), want{RuleTypeCode, map[string]any{"cause": RuleCheckDigit, "expected": "0", "got": "W"}}, ""},
		{"type code letter I", replaceSegment(5, "1110000000001333IW011"), want{RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": 17, "got": "I"}}, ""},
		{"type code sequence", replaceSegment(5, "11100000000013338W0X1"), want{RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": 20}}, ""},
		{"issuer empty", replaceSegment(6, ""), want{RuleIssuerCode, map[string]any{"cause": RuleLength, "got": 0}}, ""},
		{"issuer letter O", replaceSegment(6, "1143000000612224OL"), want{RuleIssuerCode, map[string]any{"cause": RuleAlphabet, "position": 17, "got": "O"}}, ""},
		{"issuer USCC check", replaceSegment(6, "11430000006122244K"), want{RuleIssuerCode, map[string]any{"cause": RuleCheckDigit, "expected": "L", "got": "K"}},
			"issuer code: credit code check character is K, expected L"},
		{"serial empty", replaceSegment(7, ""), want{RuleSerial, map[string]any{"cause": RuleLength, "got": 0}}, ""},
		{"serial too long", replaceSegment(7, strings.Repeat("9", 65)), want{RuleSerial, map[string]any{"cause": RuleLength, "got": 65, "max": 64}}, ""},
		{"serial lower case", replaceSegment(7, "2023000040x"), want{RuleSerial, map[string]any{"cause": RuleAlphabet, "position": 11, "got": "x"}}, ""},
		{"serial space", replaceSegment(7, "2023 0000403"), want{RuleSerial, map[string]any{"cause": RuleAlphabet, "position": 5, "got": " "}}, ""},
		{"version 2 digits", replaceSegment(8, "01"), want{RuleVersion, map[string]any{"cause": RuleLength, "got": 2}}, ""},
		{"version 4 digits", replaceSegment(8, "0001"), want{RuleVersion, map[string]any{"cause": RuleLength, "got": 4}}, ""},
		{"version sign", replaceSegment(8, "+01"), want{RuleVersion, map[string]any{"cause": RuleAlphabet, "position": 1, "got": "+"}}, ""},
		{"version 000", replaceSegment(8, "000"), want{RuleVersion, map[string]any{"cause": "range", "got": 0}}, ""},
		{"check empty", replaceSegment(9, ""), want{RuleCheckCharacter, map[string]any{"cause": RuleLength, "got": 0}}, ""},
		{"check two chars", replaceSegment(9, "UU"), want{RuleCheckCharacter, map[string]any{"cause": RuleLength, "got": 2}}, ""},
		{"check lower case", replaceSegment(9, "u"), want{RuleCheckCharacter, map[string]any{"cause": RuleAlphabet, "got": "u"}}, ""},
		{"check CJK", replaceSegment(9, "码"), want{RuleCheckCharacter, map[string]any{"cause": RuleAlphabet}}, ""},
		{"check wrong", replaceSegment(9, "X"), want{RuleCheckCharacter, map[string]any{"expected": "U", "got": "X"}},
			"identifier check character is 'X', expected U"},
		{"serial digit changed", replaceSegment(7, "20230000404"), want{RuleCheckCharacter, map[string]any{"expected": "E", "got": "U"}}, ""},
		{"version changed", replaceSegment(8, "002"), want{RuleCheckCharacter, map[string]any{"expected": "S", "got": "U"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.in)
			assertInvalid(t, err, tt.want)
			if tt.message != "" && !strings.HasSuffix(err.Error(), tt.message) {
				t.Errorf("error %q does not end with %q", err.Error(), tt.message)
			}
			if id != (Identifier{}) {
				t.Errorf("Parse returned %+v with an error", id)
			}
		})
	}
}

func TestParseIgnoringCheck(t *testing.T) {
	legacy := replaceSegment(9, "X")

	id, err := ParseIgnoringCheck(legacy)
	if err != nil {
		t.Fatalf("ParseIgnoringCheck(%q) = %v", legacy, err)
	}
	if id.Check != 'X' || id.String() != legacy {
		t.Errorf("ParseIgnoringCheck kept check %q and gave %q, want X and the input", id.Check, id.String())
	}
	// The importer reports the mismatch; nothing fixes it silently.
	assertInvalid(t, id.Validate(), want{RuleCheckCharacter, map[string]any{"expected": "U", "got": "X"}})

	// A correct identifier parses the same either way.
	if id, err := ParseIgnoringCheck(workedExample); err != nil || id.String() != workedExample {
		t.Errorf("ParseIgnoringCheck(worked example) = %v, %v", id, err)
	}

	// Every other rule still holds.
	for _, tt := range []struct {
		in   string
		rule string
	}{
		{strings.Replace(legacy, "1.2.156", "1.2.157", 1), RuleRoot},
		{legacy + ".1", RuleSegments},
		{replaceSegment(6, "11430000006122244K"), RuleIssuerCode},
		{replaceSegment(5, "11100000000013338W01"), RuleTypeCode},
		{replaceSegment(7, "a"), RuleSerial},
		{replaceSegment(8, "000"), RuleVersion},
		{replaceSegment(9, "x"), RuleCheckCharacter},
		{replaceSegment(9, "XY"), RuleCheckCharacter},
	} {
		_, err := ParseIgnoringCheck(tt.in)
		assertInvalid(t, err, want{tt.rule, nil})
	}
}

func TestValidateLiteral(t *testing.T) {
	good := Identifier{TypeCode: exampleType, IssuerCode: exampleIssuer, Serial: exampleSerial, Version: 1, Check: 'U'}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	tests := []struct {
		name string
		id   Identifier
		want want
	}{
		{"zero value", Identifier{}, want{RuleTypeCode, map[string]any{"cause": RuleLength}}},
		{"no check", Identifier{TypeCode: exampleType, IssuerCode: exampleIssuer, Serial: exampleSerial, Version: 1},
			want{RuleCheckCharacter, map[string]any{"cause": RuleAlphabet}}},
		{"wrong check", Identifier{TypeCode: exampleType, IssuerCode: exampleIssuer, Serial: exampleSerial, Version: 2, Check: 'U'},
			want{RuleCheckCharacter, map[string]any{"expected": "S", "got": "U"}}},
		{"version 0", Identifier{TypeCode: exampleType, IssuerCode: exampleIssuer, Serial: exampleSerial, Check: 'U'},
			want{RuleVersion, map[string]any{"cause": "range"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertInvalid(t, tt.id.Validate(), tt.want)
		})
	}
}

func TestNext(t *testing.T) {
	id, err := Parse(workedExample)
	if err != nil {
		t.Fatal(err)
	}
	next, err := id.Next()
	if err != nil {
		t.Fatalf("Next = %v", err)
	}
	if want := "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S"; next.String() != want {
		t.Errorf("Next = %q, want %q", next, want)
	}
	if id.Version != 1 {
		t.Errorf("Next changed its receiver to version %d", id.Version)
	}

	// Walk every version: each is valid and the last has no successor.
	cur := id
	for v := 2; v <= MaxVersion; v++ {
		if cur, err = cur.Next(); err != nil {
			t.Fatalf("Next to %03d: %v", v, err)
		}
		if cur.Version != v || cur.Validate() != nil {
			t.Fatalf("Next gave %q, want a valid version %03d", cur, v)
		}
	}
	if cur.String() != "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.999.9" {
		t.Errorf("version 999 = %q", cur)
	}
	_, err = cur.Next()
	assertInvalid(t, err, want{RuleVersion, map[string]any{"cause": "exhausted", "got": 999, "max": 999}})

	// Next of a broken literal reports what is broken.
	_, err = Identifier{TypeCode: exampleType, IssuerCode: "bad", Serial: exampleSerial, Version: 1}.Next()
	assertInvalid(t, err, want{RuleIssuerCode, nil})
}

// TestMOD3736DetectsSingleSubstitutions proves the property FuzzParse
// asserts, that changing one payload character to another of 0-9A-Z always
// changes the check character. For a fixed state P (1..36), a ↦ S =
// (P+a) mod 36 (0 read as 36) is one-to-one on 0..35, and S ↦ 2S mod 37 is
// one-to-one on 1..36 because 37 is prime; so a changed character gives a
// different P. For a fixed a, P ↦ next P is one-to-one for the same
// reasons, so the difference survives every later step; and P ↦ (37−P) mod
// 36 is one-to-one on 1..36. The test checks each of these maps.
func TestMOD3736DetectsSingleSubstitutions(t *testing.T) {
	step := func(p, a int) int {
		s := (p + a) % 36
		if s == 0 {
			s = 36
		}
		return 2 * s % 37
	}
	for p := 1; p <= 36; p++ {
		seen := map[int]bool{}
		for a := 0; a < 36; a++ {
			n := step(p, a)
			if n < 1 || n > 36 || seen[n] {
				t.Fatalf("state %d: character value %d leads to %d, not one-to-one", p, a, n)
			}
			seen[n] = true
		}
	}
	for a := 0; a < 36; a++ {
		seen := map[int]bool{}
		for p := 1; p <= 36; p++ {
			n := step(p, a)
			if seen[n] {
				t.Fatalf("character value %d: two states lead to %d", a, n)
			}
			seen[n] = true
		}
	}
	seen := map[int]bool{}
	for p := 1; p <= 36; p++ {
		c := (37 - p) % 36
		if seen[c] {
			t.Fatalf("two final states give check value %d", c)
		}
		seen[c] = true
	}

	// And exhaustively on the worked example's payload.
	payload := exampleType + exampleIssuer + exampleSerial + "001"
	for i := range payload {
		for _, c := range []byte(mod3736Alphabet) {
			if c == payload[i] {
				continue
			}
			if got, _ := CheckCharacter(replaceAt(payload, i, c)); got == 'U' {
				t.Errorf("changing position %d to %c keeps the check character", i+1, c)
			}
		}
	}
}
