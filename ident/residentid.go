package ident

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
)

// ResidentIDLen is the length of a resident ID number. The 15-digit numbers
// of first-generation cards (before 1999) are not accepted.
const ResidentIDLen = 18

// residentIDWeights are the GB 11643 weights of digits 1 to 17:
// 2^(18-i) mod 11.
var residentIDWeights = [ResidentIDLen - 1]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// residentIDCheckChars maps Σ(digit × weight) mod 11 to the check
// character (ISO/IEC 7064 MOD 11-2).
const residentIDCheckChars = "10X98765432"

// provinceCodes are the province-level codes of GB/T 2260 that open a
// resident ID number: the 31 mainland provinces, autonomous regions and
// municipalities, 71 Taiwan, and 81 Hong Kong, 82 Macao and 83 Taiwan as
// used by the residence permits for residents of those regions
// (港澳台居民居住证, numbers 810000…, 820000…, 830000…).
var provinceCodes = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true,
	"81": true, "82": true, "83": true,
}

// foreignerMark opens the number of a foreigner's permanent residence ID
// card (外国人永久居留身份证) issued since 2023-12-01. Those numbers follow
// GB 11643 (same length, birth date position and MOD 11-2 check) and put
// the province-level code of the issuing office in digits 2-3, so "91…" is
// only the north-China part of them: the hub accepts 9 followed by any
// mainland province-level code.
const foreignerMark = '9'

// chinaTime is China Standard Time. China has not observed daylight saving
// time since 1991, so a fixed zone is exact and needs no tzdata.
var chinaTime = time.FixedZone("CST", 8*60*60)

// earliestBirthDate is the first birth date accepted.
var earliestBirthDate = time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC)

// Causes of a birth_date rejection (Details["cause"]).
const (
	causeNotADate   = "not_a_date"
	causeBefore1900 = "before_1900"
	causeInFuture   = "in_future"
)

// ValidateResidentID checks a resident ID number (公民身份号码, GB 11643):
//
//   - 18 characters: 17 digits and a check character, a digit or X;
//     a lower-case x is rejected (rule alphabet): the standard writes the
//     check character X in upper case and the hub stores the canonical
//     form, so normalising user input is the caller's decision;
//   - digits 1-2 a province-level region code (see provinceCodes), or 9
//     and a mainland province code for foreigners' permanent residence IDs;
//   - digits 7-14 a real calendar date YYYYMMDD, not before 1900-01-01 and
//     not after today in China (UTC+8);
//   - the check character equal to ResidentIDCheck of the first 17 digits.
//
// Rules: length, alphabet, region, birth_date, check_digit. Error messages
// name the offending part but never repeat the number.
func ValidateResidentID(s string) error {
	if err := validateResidentID(s, time.Now()); err != nil {
		return err
	}
	return nil
}

// ResidentIDCheck returns the check character for the first 17 digits of a
// resident ID number: Σ(digit × weight) mod 11, with the weights
// 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, mapped through "10X98765432".
//
// Rules: length, alphabet.
func ResidentIDCheck(first17 string) (byte, error) {
	if n := utf8.RuneCountInString(first17); n != ResidentIDLen-1 {
		return 0, invalid(RuleLength, map[string]any{"got": n, "min": ResidentIDLen - 1, "max": ResidentIDLen - 1},
			"resident ID body has %d characters, want %d", n, ResidentIDLen-1)
	}
	if pos, r, found := firstOutside(first17, isDigit); found {
		return 0, invalid(RuleAlphabet, map[string]any{"position": pos, "got": string(r)},
			"resident ID character %d is %q; the first 17 characters are digits", pos, r)
	}
	return residentIDCheck(first17), nil
}

// ResidentIDBirthDate returns the birth date of a valid resident ID number
// as midnight UTC of that calendar day (the location carries no meaning).
// It validates s fully first.
func ResidentIDBirthDate(s string) (time.Time, error) {
	if err := validateResidentID(s, time.Now()); err != nil {
		return time.Time{}, err
	}
	d, _ := parseBirthDate(s[6:14])
	return d, nil
}

// Sex is a person's sex as coded by GB/T 2261.1.
type Sex int

// Sex values; the numbers are the GB/T 2261.1 codes.
const (
	SexMale   Sex = 1
	SexFemale Sex = 2
)

func (x Sex) String() string {
	switch x {
	case SexMale:
		return "male"
	case SexFemale:
		return "female"
	}
	return "Sex(" + strconv.Itoa(int(x)) + ")"
}

// ResidentIDSex returns the sex encoded in a valid resident ID number:
// digit 17 (the last of the sequence code) is odd for men, even for women.
// It validates s fully first.
func ResidentIDSex(s string) (Sex, error) {
	if err := validateResidentID(s, time.Now()); err != nil {
		return 0, err
	}
	if (s[16]-'0')%2 == 1 {
		return SexMale, nil
	}
	return SexFemale, nil
}

// validateResidentID is ValidateResidentID with the current time passed in.
func validateResidentID(s string, now time.Time) *licensehub.Error {
	if n := utf8.RuneCountInString(s); n != ResidentIDLen {
		return invalid(RuleLength, map[string]any{"got": n, "min": ResidentIDLen, "max": ResidentIDLen},
			"resident ID has %d characters, want %d", n, ResidentIDLen)
	}
	pos, r, found := firstOutside(s, isDigit)
	switch {
	case !found:
	case pos < ResidentIDLen:
		return invalid(RuleAlphabet, map[string]any{"position": pos, "got": string(r)},
			"resident ID character %d is %q; the first 17 characters are digits", pos, r)
	case r == 'x':
		return invalid(RuleAlphabet, map[string]any{"position": pos, "got": "x"},
			"resident ID check character is a lower-case x; GB 11643 writes it as upper-case X")
	case r != 'X':
		return invalid(RuleAlphabet, map[string]any{"position": pos, "got": string(r)},
			"resident ID check character is %q; it must be a digit or X", r)
	}
	// s is ASCII from here on.

	if err := checkRegion(s); err != nil {
		return err
	}

	date := s[6:14]
	birth, ok := parseBirthDate(date)
	today := now.In(chinaTime)
	switch {
	case !ok:
		return invalid(RuleBirthDate, map[string]any{"cause": causeNotADate},
			"resident ID birth date (characters 7-14) is not a calendar date")
	case birth.Before(earliestBirthDate):
		return invalid(RuleBirthDate, map[string]any{"cause": causeBefore1900},
			"resident ID birth date is before 1900-01-01")
	case birth.After(time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)):
		return invalid(RuleBirthDate, map[string]any{"cause": causeInFuture},
			"resident ID birth date is in the future")
	}

	want, got := residentIDCheck(s[:ResidentIDLen-1]), s[ResidentIDLen-1]
	if got != want {
		return invalid(RuleCheckDigit, map[string]any{"expected": string(want), "got": string(got)},
			"resident ID check digit is %c, expected %c", got, want)
	}
	return nil
}

// checkRegion checks the leading region code of s, 18 ASCII characters.
func checkRegion(s string) *licensehub.Error {
	if s[0] == foreignerMark {
		if isMainlandProvince(s[1:3]) {
			return nil
		}
		return invalid(RuleRegion, map[string]any{"got": s[:3]},
			"foreigner's permanent residence ID region %s is not 9 followed by a mainland province-level code", s[:3])
	}
	if provinceCodes[s[:2]] {
		return nil
	}
	return invalid(RuleRegion, map[string]any{"got": s[:2]},
		"resident ID region %s is not a province-level code of GB/T 2260", s[:2])
}

// isMainlandProvince reports whether code is the province-level code of a
// mainland province, autonomous region or municipality (11 to 65).
func isMainlandProvince(code string) bool { return provinceCodes[code] && code < "70" }

// parseBirthDate parses YYYYMMDD (8 ASCII digits) as midnight UTC and
// reports whether it is a real calendar date: time.Date normalises
// 2023-02-29 to 2023-03-01, so a date that does not survive the round trip
// does not exist.
func parseBirthDate(yyyymmdd string) (time.Time, bool) {
	y, _ := strconv.Atoi(yyyymmdd[:4])
	m, _ := strconv.Atoi(yyyymmdd[4:6])
	d, _ := strconv.Atoi(yyyymmdd[6:8])
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

// residentIDCheck computes the check character of 17 ASCII digits.
func residentIDCheck(body string) byte {
	sum := 0
	for i, w := range residentIDWeights {
		sum += int(body[i]-'0') * w
	}
	return residentIDCheckChars[sum%11]
}
