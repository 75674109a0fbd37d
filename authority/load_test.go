package authority

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
)

// Codes of the cases: valid unified social credit codes.
const (
	province = "11430000006122244L"
	city     = "11430100MB1K32010B"
)

// baseYAML is a small valid registry; the refusal cases edit it. Line
// numbers matter: the golden messages name them.
const baseYAML = `authorities:
  - code: 11430000006122244L
    name: 湖南省市场监督管理局
    area_code: "430000"
    level: provincial
  - code: 11430100MB1K32010B
    name: 长沙市市场监督管理局
    area_code: "430100"
    level: city
    parent: 11430000006122244L
`

// edit applies old→new replacements to baseYAML, failing when one does not
// apply.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := baseYAML
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q is not in the base YAML", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestParseBase(t *testing.T) {
	reg, err := Parse("a.yaml", []byte(baseYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := []*Authority{
		{Code: province, Name: "湖南省市场监督管理局", AreaCode: "430000", Level: catalog.LevelProvincial},
		{Code: city, Name: "长沙市市场监督管理局", AreaCode: "430100", Level: catalog.LevelCity, Parent: province},
	}
	got := reg.Authorities()
	if len(got) != len(want) {
		t.Fatalf("%d authorities, want %d", len(got), len(want))
	}
	for i := range want {
		if *got[i] != *want[i] {
			t.Errorf("authorities[%d] = %+v, want %+v", i, *got[i], *want[i])
		}
	}
	if a, ok := reg.Registered(city); !ok || a.Name != "长沙市市场监督管理局" || a.AreaCode != "430100" {
		t.Errorf("Registered(city) = %+v, %v", a, ok)
	}
	if _, ok := reg.Registered("91350100M000100Y43"); ok {
		t.Error("Registered found an authority that is not listed")
	}
}

// TestParseRefusals: every problem is refused with its golden message
// (file:line: field (code): words) and its Field.
func TestParseRefusals(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // messages, in order
	}{
		{"empty file", "  \n", []string{
			"a.yaml: empty; list the issuing authorities under authorities: (code, name, area_code, level)"}},
		{"not YAML", "authorities: [\n", []string{
			"a.yaml:1: not valid YAML: did not find expected node content"}},
		{"two documents", baseYAML + "---\nauthorities: []\n", []string{
			"a.yaml:11: more than one YAML document (a second ---?); the registry is one document"}},
		{"top level a list", "- code: x\n", []string{
			"a.yaml:1: the top level must be a mapping with authorities:"}},
		{"no authorities", "authorities: []\n", []string{
			"a.yaml:1: authorities: missing or empty; list at least one issuing authority"}},
		{"unknown top key", edit(t, "authorities:\n", "authority:\n  - x\nauthorities:\n"), []string{
			"a.yaml:1: authority: unknown key; the keys here are authorities"}},
		{"entry not a mapping", edit(t, "  - code: 11430000006122244L\n", "  - just text\n  - code: 11430000006122244L\n"), []string{
			"a.yaml:2: authorities[0]: want a mapping (code:, name:, area_code:, level:)"}},
		{"unknown key", edit(t, "    level: city\n", "    level: city\n    website: x\n"), []string{
			"a.yaml:10: authorities[1].website (11430100MB1K32010B): unknown key; the keys here are code, name, area_code, level, parent"}},
		{"key twice", edit(t, "    level: city\n", "    level: city\n    level: county\n"), []string{
			"a.yaml:10: authorities[1].level (11430100MB1K32010B): given twice (first at line 9)"}},
		{"name is a list", edit(t, "    name: 长沙市市场监督管理局\n", "    name: [长沙]\n"), []string{
			"a.yaml:7: authorities[1].name (11430100MB1K32010B): want a single value, not a list or mapping"}},
		{"name is a number", edit(t, "    name: 长沙市市场监督管理局\n", "    name: 12\n"), []string{
			"a.yaml:7: authorities[1].name (11430100MB1K32010B): want a string, not a number"}},
		{"code missing", edit(t, "  - code: 11430100MB1K32010B\n    name", "  - name"), []string{
			"a.yaml:6: authorities[1].code: missing; write the authority's unified social credit code (18 characters)"}},
		{"code check character", edit(t, "  - code: 11430100MB1K32010B", "  - code: 11430100MB1K32010C"), []string{
			`a.yaml:6: authorities[1].code (11430100MB1K32010C): "11430100MB1K32010C" is not a unified social credit code: ` +
				"credit code check character is C, expected B (11430100MB1K32010B is the valid code)"}},
		{"code twice", edit(t, "  - code: 11430100MB1K32010B", "  - code: 11430000006122244L", "    parent: 11430000006122244L\n", ""), []string{
			"a.yaml:6: authorities[1].code (11430000006122244L): already listed as authorities[0] (line 2)"}},
		{"name missing", edit(t, "    name: 长沙市市场监督管理局\n", ""), []string{
			"a.yaml:6: authorities[1].name (11430100MB1K32010B): missing; write the authority's name as its licenses print it"}},
		{"name with spaces", edit(t, "    name: 长沙市市场监督管理局\n", "    name: \" 长沙市市场监督管理局\"\n"), []string{
			`a.yaml:7: authorities[1].name (11430100MB1K32010B): " 长沙市市场监督管理局" has leading or trailing white space`}},
		{"name with bidi override", edit(t, "    name: 长沙市市场监督管理局\n", "    name: \"长沙\\u202E局\"\n"), []string{
			"a.yaml:7: authorities[1].name (11430100MB1K32010B): character 3 is an invisible control or format character (U+202E)"}},
		{"name too long", edit(t, "    name: 长沙市市场监督管理局\n", "    name: "+strings.Repeat("局", 101)+"\n"), []string{
			"a.yaml:7: authorities[1].name (11430100MB1K32010B): 101 characters; at most 100"}},
		{"name twice", edit(t, "    name: 长沙市市场监督管理局\n", "    name: 湖南省市场监督管理局\n"), []string{
			"a.yaml:7: authorities[1].name (11430100MB1K32010B): 湖南省市场监督管理局 is already the name of authorities[0] (11430000006122244L, line 3)"}},
		{"level missing", edit(t, "    level: city\n", ""), []string{
			"a.yaml:6: authorities[1].level (11430100MB1K32010B): missing; one of national, provincial, city, county, township"}},
		{"level unknown", edit(t, "    level: city\n", "    level: municipal\n"), []string{
			`a.yaml:9: authorities[1].level (11430100MB1K32010B): "municipal" is not a level; levels are national, provincial, city, county, township`}},
		{"area missing", edit(t, "    area_code: \"430100\"\n", ""), []string{
			`a.yaml:6: authorities[1].area_code (11430100MB1K32010B): missing; write the 6-digit code of the authority's area (GB/T 2260), e.g. "430100"`}},
		{"area not digits", edit(t, "    area_code: \"430100\"\n", "    area_code: \"4301\"\n"), []string{
			`a.yaml:8: authorities[1].area_code (11430100MB1K32010B): "4301" is not an area code: 6 digits (GB/T 2260), e.g. "430100"`}},
		{"area of a province for a city", edit(t, "    area_code: \"430100\"\n", "    area_code: \"430000\"\n"), []string{
			"a.yaml:8: authorities[1].area_code (11430100MB1K32010B): 430000 is not a city's code (PPCC00) but the level is city"}},
		{"area of a city for a province", edit(t, "    area_code: \"430000\"\n", "    area_code: \"430100\"\n"), []string{
			"a.yaml:4: authorities[0].area_code (11430000006122244L): 430100 is not a province's code (PP0000) but the level is provincial"}},
		{"area of a province for a county", edit(t, "    area_code: \"430100\"\n    level: city\n", "    area_code: \"430000\"\n    level: county\n"), []string{
			"a.yaml:8: authorities[1].area_code (11430100MB1K32010B): 430000 is a province's code but the level is county; give the county's code (PPCCDD)"}},
		{"area for a national authority", edit(t, "    level: provincial\n", "    level: national\n"), []string{
			"a.yaml:4: authorities[0].area_code (11430000006122244L): a national authority covers the whole country; leave area_code out"}},
		{"parent not a code", edit(t, "    parent: 11430000006122244L\n", "    parent: 湖南省局\n"), []string{
			`a.yaml:10: authorities[1].parent (11430100MB1K32010B): "湖南省局" is not a unified social credit code: ` +
				"credit code has 4 characters, want 18"}},
		{"parent is itself", edit(t, "    parent: 11430000006122244L\n", "    parent: 11430100MB1K32010B\n"), []string{
			"a.yaml:10: authorities[1].parent (11430100MB1K32010B): is the authority itself"}},
		{"parent not listed", edit(t, "    parent: 11430000006122244L\n", "    parent: 91350100M000100Y43\n"), []string{
			"a.yaml:10: authorities[1].parent (11430100MB1K32010B): 91350100M000100Y43 is not in the registry; list it, or leave parent out"}},
		{"parent below", edit(t, "    level: provincial\n", "    level: provincial\n    parent: 11430100MB1K32010B\n", "    parent: 11430000006122244L\n", ""), []string{
			"a.yaml:6: authorities[0].parent (11430000006122244L): 11430100MB1K32010B (长沙市市场监督管理局) is at level city, not above this authority's level provincial"}},
		{"parent elsewhere", edit(t, "    area_code: \"430100\"\n", "    area_code: \"440100\"\n"), []string{
			"a.yaml:10: authorities[1].parent (11430100MB1K32010B): 11430000006122244L (湖南省市场监督管理局) covers area 430000, which does not hold this authority's area 440100"}},
		{"every problem at once", edit(t, "    name: 湖南省市场监督管理局\n", "", "    level: city\n", "    level: town\n"), []string{
			"a.yaml:2: authorities[0].name (11430000006122244L): missing; write the authority's name as its licenses print it",
			`a.yaml:8: authorities[1].level (11430100MB1K32010B): "town" is not a level; levels are national, provincial, city, county, township`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(tt.yaml))
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != licensehub.EINVALID {
				t.Fatalf("error %v, want a *licensehub.Error %s", err, licensehub.EINVALID)
			}
			got, _ := e.Details["problems"].([]string)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if wantField := fieldOf(tt.want[0]); e.Field != wantField {
				t.Errorf("Field %q, want %q", e.Field, wantField)
			}
		})
	}
}

// fieldOf is the field a golden message names: the part after
// "file:line: " up to ": " or " (" when it is one word, "" (a problem of
// the whole file) otherwise.
func fieldOf(msg string) string {
	_, rest, _ := strings.Cut(msg, ": ")
	if i := strings.Index(rest, ": "); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.Index(rest, " ("); i >= 0 {
		rest = rest[:i]
	}
	if strings.Contains(rest, " ") {
		return ""
	}
	return rest
}

// TestParseAcceptsUnquotedAreaAndNational: area_code: 430100 unquoted
// (a YAML integer) keeps its digits; a national authority has no area.
func TestParseAcceptsUnquotedAreaAndNational(t *testing.T) {
	reg, err := Parse("a.yaml", []byte(`authorities:
  - {code: 11100000000013338W, name: 国家市场监督管理总局, level: national}
  - {code: 11430000006122244L, name: 湖南省市场监督管理局, area_code: 430000, level: provincial, parent: 11100000000013338W}
`))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := reg.Authority("11430000006122244L"); a.AreaCode != "430000" {
		t.Errorf("area %q", a.AreaCode)
	}
	if a, _ := reg.Authority("11100000000013338W"); a.AreaCode != "" || a.Level != catalog.LevelNational {
		t.Errorf("national: %+v", a)
	}
}

// TestLoadShipped loads configs/authorities.yaml.
func TestLoadShipped(t *testing.T) {
	reg, err := Load(filepath.Join("..", "configs", "authorities.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{province, city} {
		if _, ok := reg.Authority(code); !ok {
			t.Errorf("%s is not in the shipped registry", code)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	var e *licensehub.Error
	if !errors.As(err, &e) || e.Code != licensehub.EINVALID || e.Field != "authorities" || !strings.HasSuffix(e.Message, ": no such file") {
		t.Fatalf("error %v", err)
	}
	if dir := t.TempDir(); os.Chmod(dir, 0o755) == nil {
		if _, err := Load(dir); err == nil {
			t.Error("a directory loaded")
		}
	}
}
