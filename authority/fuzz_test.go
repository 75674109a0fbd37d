package authority

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
)

// FuzzParse: any bytes never panic; a refusal is an EINVALID
// *licensehub.Error whose every problem names the file, in valid UTF-8;
// an accepted registry holds only authorities that pass every rule.
func FuzzParse(f *testing.F) {
	f.Add([]byte(baseYAML))
	if raw, err := os.ReadFile(filepath.Join("..", "configs", "authorities.yaml")); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("authorities:\n  - &a {code: 11430000006122244L, name: x, area_code: 430000, level: provincial}\n  - *a\n"))
	f.Add([]byte("authorities:\n  - {code: 11100000000013338W, name: \"\\u0000\", level: national, area_code: ~}\n"))
	f.Add([]byte("authorities:\n  - <<: {code: 1}\n    name: [a, {b: c}]\n"))
	f.Add([]byte("\xff\xfe"))

	f.Fuzz(func(t *testing.T, raw []byte) {
		reg, err := Parse("f.yaml", raw)
		if err != nil {
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != licensehub.EINVALID {
				t.Fatalf("error %v, want EINVALID", err)
			}
			problems, _ := e.Details["problems"].([]string)
			if len(problems) == 0 {
				t.Fatalf("no problems listed: %v", err)
			}
			for _, p := range problems {
				if !strings.HasPrefix(p, "f.yaml") || !utf8.ValidString(p) {
					t.Fatalf("problem %q does not start with the file or is not UTF-8", p)
				}
			}
			return
		}
		for _, a := range reg.Authorities() {
			if ident.ValidateCreditCode(a.Code) != nil || strings.TrimSpace(a.Name) != a.Name || a.Name == "" ||
				!slices.Contains(catalog.Levels, a.Level) || (a.AreaCode == "") != (a.Level == catalog.LevelNational) ||
				(a.AreaCode != "" && !ident.IsAreaCode(a.AreaCode)) {
				t.Fatalf("accepted %+v", *a)
			}
			if a.Parent != "" {
				p, ok := reg.Authority(a.Parent)
				if !ok || !ident.AreaWithin(p.AreaCode, a.AreaCode) {
					t.Fatalf("accepted %+v with parent %v", *a, p)
				}
			}
		}
	})
}
