package ident

import (
	"strings"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
)

// CreditCodeAlphabet is the character set of unified social credit codes
// (GB 32100): digits and the upper-case letters other than I, O, S, V and
// Z. A character's value is its position in this string (0 to 30).
const CreditCodeAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// CreditCodeLen is the length of a unified social credit code.
const CreditCodeLen = 18

// creditCodeWeights are the GB 32100 weights of characters 1 to 17:
// 3^(i-1) mod 31.
var creditCodeWeights = [CreditCodeLen - 1]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// ValidateCreditCode checks a unified social credit code (统一社会信用代码,
// GB 32100): 18 characters of [CreditCodeAlphabet] whose last one is the
// check character of the first 17. It does not check the meaning of the
// registration-authority, organisation-type or region parts. Lower-case
// letters are rejected, not folded: the code is written in upper case.
//
// Rules: length, alphabet, check_digit.
func ValidateCreditCode(s string) error {
	if err := validateCreditCode(s); err != nil {
		return err
	}
	return nil
}

// CreditCodeCheck returns the check character for the first 17 characters
// of a unified social credit code: with a_i the values and w_i the weights
// 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28, the check value is
// (31 − Σ a_i·w_i mod 31) mod 31, written as the character of that value.
//
// Rules: length, alphabet.
func CreditCodeCheck(first17 string) (byte, error) {
	if n := utf8.RuneCountInString(first17); n != CreditCodeLen-1 {
		return 0, invalid(RuleLength, map[string]any{"got": n, "min": CreditCodeLen - 1, "max": CreditCodeLen - 1},
			"credit code body has %d characters, want %d", n, CreditCodeLen-1)
	}
	if err := creditCodeAlphabetError(first17); err != nil {
		return 0, err
	}
	return creditCodeCheck(first17), nil
}

func validateCreditCode(s string) *licensehub.Error {
	if n := utf8.RuneCountInString(s); n != CreditCodeLen {
		return invalid(RuleLength, map[string]any{"got": n, "min": CreditCodeLen, "max": CreditCodeLen},
			"credit code has %d characters, want %d", n, CreditCodeLen)
	}
	if err := creditCodeAlphabetError(s); err != nil {
		return err
	}
	want, got := creditCodeCheck(s[:CreditCodeLen-1]), s[CreditCodeLen-1]
	if got != want {
		return invalid(RuleCheckDigit, map[string]any{"expected": string(want), "got": string(got)},
			"credit code check character is %c, expected %c", got, want)
	}
	return nil
}

// creditCodeAlphabetError reports the first character of s outside
// CreditCodeAlphabet.
func creditCodeAlphabetError(s string) *licensehub.Error {
	pos, r, found := firstOutside(s, func(r rune) bool { return creditCodeValue(r) >= 0 })
	if !found {
		return nil
	}
	return invalid(RuleAlphabet, map[string]any{"position": pos, "got": string(r)},
		"credit code character %d is %q; only digits and the upper-case letters A-H J-N P-R T U W-Y are used (never I, O, S, V, Z)", pos, r)
}

// creditCodeValue returns the GB 32100 value of r, or -1 when r is not in
// CreditCodeAlphabet.
func creditCodeValue(r rune) int {
	if r >= utf8.RuneSelf {
		return -1
	}
	return strings.IndexByte(CreditCodeAlphabet, byte(r))
}

// creditCodeCheck computes the check character of body, 17 characters
// already known to be in CreditCodeAlphabet.
func creditCodeCheck(body string) byte {
	sum := 0
	for i, w := range creditCodeWeights {
		sum += creditCodeValue(rune(body[i])) * w
	}
	return CreditCodeAlphabet[(31-sum%31)%31]
}
