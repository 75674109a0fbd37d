package ident

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
)

// Root is the fixed object-identifier arc that opens every GB/T 36904
// license identifier.
const Root = "1.2.156.3005.2"

// Sizes of the identifier's parts.
const (
	TypeCodeLen   = CreditCodeLen + 3 // defining authority's credit code + 3-digit sequence
	IssuerCodeLen = CreditCodeLen     // issuing authority's credit code
	MaxSerialLen  = 64
	MinVersion    = 1
	MaxVersion    = 999
)

// segmentCount is the number of dot-separated parts of an identifier: the
// five arcs of Root, then type code, issuer code, serial, version, check.
const segmentCount = 10

// mod3736Alphabet maps ISO/IEC 7064 MOD 37,36 values 0-35 to characters.
const mod3736Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Identifier is a GB/T 36904 electronic-license identifier (电子证照标识).
// Build one with New or Parse; a literal is only as valid as Validate says.
//
// Requiring the type code's first 18 characters and the issuer code to be
// valid unified social credit codes (check character included) is
// deliberate: in the worked example of the domain reference,
// 1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U,
// both embedded codes, 11100000000013338W and 11430000006122244L, carry the
// GB 32100 check character that recomputes (W and L), so real identifiers
// follow the rule, and a bad authority code is caught when the license is
// issued rather than when it is exchanged.
type Identifier struct {
	TypeCode   string // 证照类型代码, 21 characters
	IssuerCode string // 颁发机构代码, 18 characters
	Serial     string // 流水号, 1 to 64 digits and upper-case letters
	Version    int    // 版本号, 1 to 999, written with 3 digits
	Check      byte   // 校验位, MOD 37,36 over Payload()
}

// New validates the parts of an identifier and computes its check
// character.
//
// Rules: type_code, issuer_code, serial, version.
func New(typeCode, issuerCode, serial string, version int) (Identifier, error) {
	id := Identifier{TypeCode: typeCode, IssuerCode: issuerCode, Serial: serial, Version: version}
	if err := id.validateParts(); err != nil {
		return Identifier{}, err
	}
	id.Check = mod3736(id.Payload())
	return id, nil
}

// Parse parses and fully validates an identifier, check character
// included. The input must be in canonical form: no surrounding space,
// upper-case letters, version with exactly 3 digits.
//
// Rules: root, segments, type_code, issuer_code, serial, version,
// check_character. A wrong check character gives Details
// {"rule": "check_character", "expected": "U", "got": "X"}.
func Parse(s string) (Identifier, error) {
	id, err := parse(s)
	if err != nil {
		return Identifier{}, err
	}
	if err := id.checkMatches(); err != nil {
		return Identifier{}, err
	}
	return id, nil
}

// ParseIgnoringCheck is Parse without comparing the check character with
// the one computed: the check part must still be one character 0-9 or A-Z.
// It is for importing legacy records, whose check characters were
// sometimes computed with non-standard routines; an importer reports those
// (id.Validate returns the check_character error) and never rewrites them.
func ParseIgnoringCheck(s string) (Identifier, error) {
	id, err := parse(s)
	if err != nil {
		return Identifier{}, err
	}
	return id, nil
}

// CheckCharacter computes the ISO/IEC 7064 MOD 37,36 (hybrid system) check
// character of payload, the concatenation of type code, issuer code,
// serial and version. With digits 0-9 and letters A-Z valued 0 to 35:
// P = 36; for each character value a, S = (P + a) mod 36, with S = 36 when
// that is 0, and P = 2S mod 37; the check value is (37 − P) mod 36.
//
// Rules: length (empty payload), alphabet.
func CheckCharacter(payload string) (byte, error) {
	if payload == "" {
		return 0, invalid(RuleLength, map[string]any{"got": 0, "min": 1},
			"check character payload is empty")
	}
	if pos, r, found := firstOutside(payload, isDigitOrUpper); found {
		return 0, invalid(RuleAlphabet, map[string]any{"position": pos, "got": string(r)},
			"check character payload character %d is %q; only 0-9 and A-Z are used", pos, r)
	}
	return mod3736(payload), nil
}

// String returns the dotted form of id. For an id from New or Parse it is
// the canonical identifier.
func (id Identifier) String() string {
	return Root + "." + id.TypeCode + "." + id.IssuerCode + "." + id.Serial + "." +
		formatVersion(id.Version) + "." + string([]byte{id.Check})
}

// Payload returns what the check character is computed over: type code,
// issuer code, serial and the 3-digit version, without dots.
func (id Identifier) Payload() string {
	return id.TypeCode + id.IssuerCode + id.Serial + formatVersion(id.Version)
}

// Validate checks every part of id and that Check is the check character
// of its payload.
//
// Rules: type_code, issuer_code, serial, version, check_character.
func (id Identifier) Validate() error {
	if err := id.validateParts(); err != nil {
		return err
	}
	if err := validateCheckFormat(id.Check); err != nil {
		return err
	}
	if err := id.checkMatches(); err != nil {
		return err
	}
	return nil
}

// Next returns the identifier of the next version of the same license
// (002 after 001), with its check character recomputed.
//
// Rules: version (cause "exhausted" after 999), and those of New.
func (id Identifier) Next() (Identifier, error) {
	if id.Version >= MaxVersion {
		return Identifier{}, invalid(RuleVersion, map[string]any{"cause": causeExhausted, "got": id.Version, "max": MaxVersion},
			"identifier version %s is the last one; there is no version after %03d", formatVersion(id.Version), MaxVersion)
	}
	return New(id.TypeCode, id.IssuerCode, id.Serial, id.Version+1)
}

// parse splits s and validates every rule but the check character match.
func parse(s string) (Identifier, *licensehub.Error) {
	rest, ok := strings.CutPrefix(s, Root)
	if !ok || (rest != "" && rest[0] != '.') {
		return Identifier{}, invalid(RuleRoot, map[string]any{"expected": Root},
			"identifier does not start with %s.", Root)
	}
	// rest is "" or ".<type>.<issuer>.<serial>.<version>.<check>"; SplitN
	// bounds the work on input with many dots.
	const parts = segmentCount - 5
	segs := strings.SplitN(rest, ".", parts+2)
	if len(segs) != parts+1 {
		n := strings.Count(s, ".") + 1
		return Identifier{}, invalid(RuleSegments, map[string]any{"expected": segmentCount, "got": n},
			"identifier has %d dot-separated parts, want %d (the root's 5, type code, issuer code, serial, version, check)", n, segmentCount)
	}
	segs = segs[1:]

	id := Identifier{TypeCode: segs[0], IssuerCode: segs[1], Serial: segs[2]}
	if err := validateTypeCode(id.TypeCode); err != nil {
		return Identifier{}, err
	}
	if err := validateIssuerCode(id.IssuerCode); err != nil {
		return Identifier{}, err
	}
	if err := validateSerial(id.Serial); err != nil {
		return Identifier{}, err
	}
	v, err := parseVersion(segs[3])
	if err != nil {
		return Identifier{}, err
	}
	id.Version = v
	if n := utf8.RuneCountInString(segs[4]); n != 1 {
		return Identifier{}, invalid(RuleCheckCharacter, map[string]any{"cause": RuleLength, "got": n, "min": 1, "max": 1},
			"identifier check part has %d characters, want 1", n)
	}
	id.Check = segs[4][0]
	if err := validateCheckFormat(id.Check); err != nil {
		return Identifier{}, err
	}
	return id, nil
}

func (id Identifier) validateParts() *licensehub.Error {
	if err := validateTypeCode(id.TypeCode); err != nil {
		return err
	}
	if err := validateIssuerCode(id.IssuerCode); err != nil {
		return err
	}
	if err := validateSerial(id.Serial); err != nil {
		return err
	}
	return validateVersion(id.Version)
}

// checkMatches compares Check with the check character of the payload,
// whose parts are known to be valid.
func (id Identifier) checkMatches() *licensehub.Error {
	want := mod3736(id.Payload())
	if id.Check != want {
		return invalid(RuleCheckCharacter, map[string]any{"expected": string(want), "got": string([]byte{id.Check})},
			"identifier check character is %q, expected %c", rune(id.Check), want)
	}
	return nil
}

// validateTypeCode checks the 21-character type code: a valid credit code
// (the defining authority's) and 3 digits.
func validateTypeCode(tc string) *licensehub.Error {
	if n := utf8.RuneCountInString(tc); n != TypeCodeLen {
		return invalid(RuleTypeCode, map[string]any{"cause": RuleLength, "got": n, "min": TypeCodeLen, "max": TypeCodeLen},
			"type code has %d characters, want %d (an 18-character credit code and 3 digits)", n, TypeCodeLen)
	}
	// Non-ASCII first, so that the slicing below cuts whole characters.
	if pos, r, found := firstOutside(tc, func(r rune) bool { return r < utf8.RuneSelf }); found {
		return invalid(RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": pos, "got": string(r)},
			"type code character %d is %q; only digits and upper-case letters are used", pos, r)
	}
	if err := validateCreditCode(tc[:CreditCodeLen]); err != nil {
		return within(RuleTypeCode, "type code's defining authority code (characters 1-18)", err)
	}
	if pos, r, found := firstOutside(tc[CreditCodeLen:], isDigit); found {
		pos += CreditCodeLen
		return invalid(RuleTypeCode, map[string]any{"cause": RuleAlphabet, "position": pos, "got": string(r)},
			"type code character %d is %q; characters 19-21 are digits", pos, r)
	}
	return nil
}

func validateIssuerCode(ic string) *licensehub.Error {
	if err := validateCreditCode(ic); err != nil {
		return within(RuleIssuerCode, "issuer code", err)
	}
	return nil
}

func validateSerial(serial string) *licensehub.Error {
	if n := utf8.RuneCountInString(serial); n < 1 || n > MaxSerialLen {
		return invalid(RuleSerial, map[string]any{"cause": RuleLength, "got": n, "min": 1, "max": MaxSerialLen},
			"serial has %d characters, want 1 to %d", n, MaxSerialLen)
	}
	if pos, r, found := firstOutside(serial, isDigitOrUpper); found {
		return invalid(RuleSerial, map[string]any{"cause": RuleAlphabet, "position": pos, "got": string(r)},
			"serial character %d is %q; only digits and upper-case letters are used", pos, r)
	}
	return nil
}

// parseVersion parses the version part: exactly 3 digits, 001 to 999.
func parseVersion(seg string) (int, *licensehub.Error) {
	if n := utf8.RuneCountInString(seg); n != 3 {
		return 0, invalid(RuleVersion, map[string]any{"cause": RuleLength, "got": n, "min": 3, "max": 3},
			"version has %d characters, want 3 digits", n)
	}
	if pos, r, found := firstOutside(seg, isDigit); found {
		return 0, invalid(RuleVersion, map[string]any{"cause": RuleAlphabet, "position": pos, "got": string(r)},
			"version character %d is %q; the version is 3 digits", pos, r)
	}
	v, _ := strconv.Atoi(seg)
	if err := validateVersion(v); err != nil {
		return 0, err
	}
	return v, nil
}

func validateVersion(v int) *licensehub.Error {
	if v < MinVersion || v > MaxVersion {
		return invalid(RuleVersion, map[string]any{"cause": causeRange, "got": v, "min": MinVersion, "max": MaxVersion},
			"version %d is outside %03d to %03d", v, MinVersion, MaxVersion)
	}
	return nil
}

func validateCheckFormat(c byte) *licensehub.Error {
	if !isDigitOrUpper(rune(c)) {
		return invalid(RuleCheckCharacter, map[string]any{"cause": RuleAlphabet, "got": string([]byte{c})},
			"identifier check character is %q; it must be 0-9 or A-Z", rune(c))
	}
	return nil
}

func formatVersion(v int) string { return fmt.Sprintf("%03d", v) }

// mod3736 computes the MOD 37,36 check character of payload, which is
// known to hold only 0-9 and A-Z.
func mod3736(payload string) byte {
	p := 36
	for i := 0; i < len(payload); i++ {
		s := (p + strings.IndexByte(mod3736Alphabet, payload[i])) % 36
		if s == 0 {
			s = 36
		}
		p = (2 * s) % 37
	}
	return mod3736Alphabet[(37-p)%36]
}
