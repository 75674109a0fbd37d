package ident

import (
	"testing"
	"time"
)

// FuzzParse: Parse never panics and every rejection is a well-formed
// EINVALID error; anything accepted is canonical (String reproduces the
// input byte for byte), carries the right check character, and stops
// parsing when any one character is replaced by another of 0-9A-Z (see
// TestMOD3736DetectsSingleSubstitutions for why that must hold).
// ParseIgnoringCheck agrees with Parse except on the check character.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		workedExample,
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
		"1.2.156.3005.2.11100000000013338W000.91350100M000100Y43.1.001.U",
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.X", // wrong check
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.000.U", // version 000
		"1.2.156.3005.2.11100000000013338W011.11430000006122244K.20230000403.001.U", // issuer USCC
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.2023.0000403.001.U",
		"1.2.156.3005.2.11100000000013338w011.11430000006122244L.20230000403.001.U",
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.码",
		"1.2.156.3005.2",
		"1.2.156.3005.2.",
		"1.2.156.3005.21",
		"",
		"......",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		loose, looseErr := ParseIgnoringCheck(s)

		if looseErr != nil {
			assertWellFormed(t, looseErr)
			if err == nil {
				t.Fatalf("Parse accepts %q but ParseIgnoringCheck rejects it: %v", s, looseErr)
			}
		} else {
			if got := loose.String(); got != s {
				t.Fatalf("ParseIgnoringCheck(%q).String() = %q", s, got)
			}
			want, cerr := CheckCharacter(loose.Payload())
			if cerr != nil {
				t.Fatalf("CheckCharacter of accepted payload %q: %v", loose.Payload(), cerr)
			}
			if (loose.Check == want) != (err == nil) {
				t.Fatalf("%q: check %c, computed %c, but Parse error is %v", s, loose.Check, want, err)
			}
			if err != nil && Rule(err) != RuleCheckCharacter {
				t.Fatalf("%q: only the check character differs, but Parse says %v", s, err)
			}
		}

		if err != nil {
			assertWellFormed(t, err)
			if id != (Identifier{}) {
				t.Fatalf("Parse(%q) returned %+v with an error", s, id)
			}
			return
		}

		if got := id.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		if loose != id {
			t.Fatalf("Parse and ParseIgnoringCheck disagree on %q: %+v, %+v", s, id, loose)
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted what Validate rejects: %v", s, err)
		}
		rebuilt, err := New(id.TypeCode, id.IssuerCode, id.Serial, id.Version)
		if err != nil || rebuilt != id {
			t.Fatalf("New from the parts of %q = %+v, %v", s, rebuilt, err)
		}
		if id.Version < MaxVersion {
			next, err := id.Next()
			if err != nil {
				t.Fatalf("Next of %q: %v", s, err)
			}
			if _, err := Parse(next.String()); err != nil {
				t.Fatalf("Next of %q = %q does not parse: %v", s, next, err)
			}
		}
		for i := 0; i < len(s); i++ {
			for _, c := range []byte(mod3736Alphabet) {
				if c == s[i] {
					continue
				}
				if changed := replaceAt(s, i, c); parses(changed) {
					t.Fatalf("%q parses, and so does %q (byte %d changed)", s, changed, i)
				}
			}
		}
	})
}

// parses reports whether s parses strictly.
func parses(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// FuzzValidateResidentID: never panics; rejections are well formed; an
// accepted number stays accepted, yields a birth date and a sex, and any
// single character replaced by another of 0-9X is rejected (see
// TestResidentIDDetectsSingleSubstitutions).
func FuzzValidateResidentID(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X",
		"440304200002291234",
		"110105194912310027",
		"11010519491231002x",
		"11010519491331002X",
		"99010519491231002X",
		"110105491231002",
		"公民身份号码",
		"",
	} {
		f.Add(s)
	}
	f.Add(withResidentCheck(f, "44030420000229123"))
	f.Add(withResidentCheck(f, "93184019800101001"))

	f.Fuzz(func(t *testing.T, s string) {
		now := time.Now()
		if err := validateResidentID(s, now); err != nil {
			assertWellFormed(t, err)
			return
		}
		if err := validateResidentID(s, now); err != nil {
			t.Fatalf("%q accepted once, then rejected: %v", s, err)
		}
		birth, err := ResidentIDBirthDate(s)
		if err != nil || birth.Format("20060102") != s[6:14] {
			t.Fatalf("ResidentIDBirthDate(%q) = %v, %v", s, birth, err)
		}
		if sex, err := ResidentIDSex(s); err != nil || (sex != SexMale && sex != SexFemale) {
			t.Fatalf("ResidentIDSex(%q) = %v, %v", s, sex, err)
		}
		for i := 0; i < len(s); i++ {
			for _, c := range []byte("0123456789X") {
				if c == s[i] {
					continue
				}
				if changed := replaceAt(s, i, c); validateResidentID(changed, now) == nil {
					t.Fatalf("%q is valid, and so is %q (position %d changed)", s, changed, i+1)
				}
			}
		}
	})
}

// FuzzValidateCreditCode: never panics; rejections are well formed; an
// accepted code stays accepted, agrees with CreditCodeCheck, and any
// single character replaced by another of the alphabet is rejected (see
// TestCreditCodeDetectsSingleSubstitutions).
func FuzzValidateCreditCode(f *testing.F) {
	for _, s := range []string{
		"91350100M000100Y43",
		"11430000006122244L",
		"11100000000013338W",
		"91350100M000100Y44",
		"91350100I000100Y43",
		"91350100m000100y43",
		"91350100M000100Y4",
		"统一社会信用",
		"",
	} {
		f.Add(s)
	}
	f.Add(withCreditCheck(f, "YYYYYYYYYYYYYYYYY"))

	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateCreditCode(s); err != nil {
			assertWellFormed(t, err)
			return
		}
		if err := ValidateCreditCode(s); err != nil {
			t.Fatalf("%q accepted once, then rejected: %v", s, err)
		}
		if c, err := CreditCodeCheck(s[:CreditCodeLen-1]); err != nil || c != s[CreditCodeLen-1] {
			t.Fatalf("CreditCodeCheck(%q) = %q, %v; the code ends in %q", s[:CreditCodeLen-1], c, err, s[CreditCodeLen-1])
		}
		if err := ValidateHolderCode(HolderCreditCode, s); err != nil {
			t.Fatalf("ValidateHolderCode(001, %q) = %v", s, err)
		}
		for i := 0; i < len(s); i++ {
			for _, c := range []byte(CreditCodeAlphabet) {
				if c == s[i] {
					continue
				}
				if changed := replaceAt(s, i, c); ValidateCreditCode(changed) == nil {
					t.Fatalf("%q is valid, and so is %q (position %d changed)", s, changed, i+1)
				}
			}
		}
	})
}
