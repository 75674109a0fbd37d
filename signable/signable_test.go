package signable

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/licensehub/licensehub"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		max  int
		rule string
		pos  int
	}{
		{"plain", "杭州某某科技有限公司", 100, "", 0},
		{"ascii", "ACME Ltd. (2024) - No.7", 100, "", 0},
		{"empty", "", 10, "", 0},
		{"invalid utf8 ff fe c3 28", "\xff\xfe\xc3\x28", 0, RuleInvalidUTF8, 1},
		{"invalid utf8 after text", "张三\xff", 0, RuleInvalidUTF8, 3},
		{"replacement character", "张\ufffd三", 0, RuleReplacement, 2},
		{"nfd", "Jose\u0301", 0, RuleNFC, 4},
		{"nfd first char", "e\u0301", 0, RuleNFC, 1},
		{"nfc composed", "Jos\u00e9", 0, "", 0},
		{"nul", "a\x00b", 0, RuleControl, 2},
		{"tab", "a\tb", 0, RuleControl, 2},
		{"newline", "line\nbreak", 0, RuleControl, 5},
		{"del", "x\x7f", 0, RuleControl, 2},
		{"c1", "x\u0085", 0, RuleControl, 2},
		{"rlo U+202E", "张三\u202e公司", 0, RuleBidi, 3},
		{"lri U+2066", "\u2066x", 0, RuleBidi, 1},
		{"lrm U+200E", "a\u200e", 0, RuleBidi, 2},
		{"alm U+061C", "a\u061c", 0, RuleBidi, 2},
		{"zwsp U+200B", "张\u200b三", 0, RuleZeroWidth, 2},
		{"zwj U+200D", "a\u200db", 0, RuleZeroWidth, 2},
		{"word joiner U+2060", "a\u2060", 0, RuleZeroWidth, 2},
		{"bom U+FEFF", "\ufeff张三", 0, RuleZeroWidth, 1},
		{"private use U+E000", "a\ue000", 0, RulePrivateUse, 2},
		{"private use plane 15", "a\U000F0001", 0, RulePrivateUse, 2},
		{"soft hyphen", "张\u00ad三", 0, RuleFormat, 2},
		{"tag character", "ab\U000E0041", 0, RuleFormat, 3},
		{"10 KB name", strings.Repeat("名", 10*1024/3), 200, RuleLength, 201},
		{"exactly max", strings.Repeat("名", 200), 200, "", 0},
		{"one over", strings.Repeat("a", 101), 100, RuleLength, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check("holder.name", tc.s, tc.max)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			e, ok := err.(*licensehub.Error)
			if !ok {
				t.Fatalf("Check = %v, want *licensehub.Error", err)
			}
			if e.Code != licensehub.EINVALID || e.Field != "holder.name" || e.Details["rule"] != tc.rule || e.Details["position"] != tc.pos {
				t.Fatalf("Check = %s %s %v, want %s holder.name rule %s position %d", e.Code, e.Field, e.Details, licensehub.EINVALID, tc.rule, tc.pos)
			}
			if strings.Contains(e.Message, tc.s) && tc.s != "" {
				t.Errorf("message %q repeats the value", e.Message)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	if got := Normalize("Jose\u0301"); got != "Jos\u00e9" {
		t.Errorf("Normalize(NFD) = %q", got)
	}
	if got := Normalize("\xff"); got != "\xff" {
		t.Errorf("Normalize(invalid) = %q, want it unchanged", got)
	}
	if err := Check("x", Normalize("Jose\u0301"), 0); err != nil {
		t.Errorf("normalised text refused: %v", err)
	}
}

// FuzzProblem: whatever Problem accepts is valid UTF-8, NFC, and free of
// every refused character; whatever it refuses is refused at a position
// within the text.
func FuzzProblem(f *testing.F) {
	for _, s := range []string{"", "张三", "\xff\xfe\xc3\x28", "e\u0301", "\u202e", "a\u200b", "\ue000", "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rule, pos := Problem(s)
		if rule != "" {
			if pos < 1 || pos > utf8.RuneCountInString(s)+1 {
				t.Fatalf("Problem(%q) = %s at %d: outside the text", s, rule, pos)
			}
			return
		}
		if !utf8.ValidString(s) || !norm.NFC.IsNormalString(s) {
			t.Fatalf("Problem(%q) accepted text that is not valid UTF-8 NFC", s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f || r != 0xfffd && runeRule(r) != "" || r == 0xfffd || unicode.Is(unicode.Co, r) {
				t.Fatalf("Problem(%q) accepted %U", s, r)
			}
		}
	})
}

// TestSimpleCharactersAreNFC: every character the fast path trusts is
// NFC after any other character, and any other character after it.
func TestSimpleCharactersAreNFC(t *testing.T) {
	neighbours := []rune{'a', 'e', 0x0301, 0x0308, 0x302a, 0x3099, 0x1161, 0x11a8, 0x4e00, 0xac00, 0x0338}
	for r := rune(0); r <= 0xffff; r++ {
		if !isSimple(r) || r >= 0xd800 && r <= 0xdfff {
			continue
		}
		if !norm.NFC.IsNormalString(string(r)) {
			t.Fatalf("%U is not NFC by itself", r)
		}
		for _, n := range neighbours {
			if !isSimple(n) {
				continue
			}
			if s := string(r) + string(n); !norm.NFC.IsNormalString(s) {
				t.Fatalf("%U %U is not NFC", r, n)
			}
			if s := string(n) + string(r); !norm.NFC.IsNormalString(s) {
				t.Fatalf("%U %U is not NFC", n, r)
			}
		}
		// A simple character never combines with a following mark into
		// something Problem would miss: the mark is not simple, so the
		// full check runs.
	}
	for _, r := range []rune{0x0300, 0x302a, 0x2000, 0xf900, 0x1161} {
		if isSimple(r) {
			t.Errorf("%U must take the full NFC check", r)
		}
	}
}
