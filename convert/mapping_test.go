package convert

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
)

// minimalYAML is a valid mapping file.
const minimalYAML = `license_type: 11100000000013338W011
authority:
  name: 湖南省市场监督管理局（演示）
  code: 11430000006122244L
area_code: "430100"
columns:
  number: 注册号
  holder.name: 企业名称
  holder.code: 统一社会信用代码
  issue_date: 发证日期
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadMappingDefaults(t *testing.T) {
	path := writeFile(t, t.TempDir(), "old-register.yaml", minimalYAML)
	m, err := LoadMapping(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "old-register" || m.File != path {
		t.Errorf("name %q file %q", m.Name, m.File)
	}
	if !slices.Equal(m.DateFormats, DefaultDateFormats) {
		t.Errorf("date formats %q", m.DateFormats)
	}
	if m.plan == nil {
		t.Error("not compiled")
	}
}

// TestLoadMappingProblems: each broken file is refused with every
// problem naming file:line and the key.
func TestLoadMappingProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings, each of one problem, in order
	}{
		{"unknown top key", minimalYAML + "colums: {}\n", []string{"x.yaml:11: unknown key colums; the keys here are name, description"}},
		{"unknown authority key", strings.Replace(minimalYAML, "  code: 1143", "  cod: x\n  code: 1143", 1),
			[]string{"x.yaml:4: unknown key cod; the keys here are name, code"}},
		{"unknown value map key", minimalYAML + "value_maps:\n  holder.name:\n    value: {a: b}\n",
			[]string{"x.yaml:13: unknown key value; the keys here are values, strict"}},
		{"wrong type", minimalYAML + "date_formats: yes\n", []string{"x.yaml:11: cannot unmarshal a string `yes` into []string"}},
		{"duplicate key", minimalYAML + "area_code: \"430100\"\n", []string{`x.yaml:11: mapping key "area_code" already defined at line 5`}},
		{"not YAML", "license_type: [\n", []string{"x.yaml:"}},
		{"empty", "  \n", []string{"x.yaml: empty"}},
		{"list", "- a\n", []string{"x.yaml:1: the top level must be a mapping"}},
		{"two documents", minimalYAML + "---\nname: b\n", []string{"more than one YAML document"}},
		{"bad date format", minimalYAML + "date_formats:\n  - \"2006-01-02\"\n  - \"YYYY-MM-DD\"\n  - \"2006-01\"\n",
			[]string{"x.yaml:13: date_formats[1]: \"YYYY-MM-DD\" is not a date layout", "x.yaml:14: date_formats[2]: \"2006-01\""}},
		{"empty date formats", minimalYAML + "date_formats: []\n", []string{"x.yaml:11: date_formats: empty"}},
		{"required", "license_type: 11100000000013338W011\n", []string{
			"x.yaml:1: authority.name: required", "x.yaml:1: authority.code: required", "area_code: required",
			"x.yaml:1: columns: number is required", "columns: holder.name is required", "columns: holder.code is required", "columns: issue_date is required"}},
		{"bad authority code", strings.Replace(minimalYAML, "11430000006122244L", "11430000006122244M", 1),
			[]string{"x.yaml:4: authority.code: \"11430000006122244M\" is not a unified social credit code: credit code check character is M, expected L"}},
		{"bad license type", strings.Replace(minimalYAML, "11100000000013338W011", "营业执照", 1), []string{"x.yaml:1: license_type:"}},
		{"bad column key", minimalYAML + "  holder.phone: 电话\n  fields.Bad-Name: x\n",
			[]string{"x.yaml:12: columns.fields.Bad-Name: unknown key", "x.yaml:11: columns.holder.phone: unknown key"}},
		{"number twice", minimalYAML + "number_column: 编号\n", []string{"x.yaml:11: number_column: \"编号\" differs from columns.number"}},
		{"number_column instead", strings.Replace(minimalYAML, "  number: 注册号\n", "", 1) + "number_column: 编号\n", nil},
		{"fixed conflicts", minimalYAML + "fixed:\n  holder.code: x\n  fields.name: y\n  area_code: \"430100\"\n  holder.code_type: \"001\"\n  colour: red\n",
			[]string{"x.yaml:16: fixed.colour: unknown key", "x.yaml:12: fixed.holder.code: differs from license to license"}},
		{"fixed and column", minimalYAML + "  fields.name: 企业名称\nfixed:\n  fields.name: y\n", []string{"x.yaml:13: fixed.fields.name: also given in columns"}},
		{"value maps", minimalYAML + "value_maps:\n  colour: {values: {a: b}}\n  valid_until: {values: {长期: long-term}}\n  holder.name: {strict: true}\n  issue_date: {values: {\" x\": y}}\n",
			[]string{"x.yaml:14: value_maps.holder.name: values: list at least one", "x.yaml:15: value_maps.issue_date.values. x: a source value is matched trimmed",
				"x.yaml:12: value_maps.colour: unknown key", "x.yaml:13: value_maps.valid_until: no column or fixed value gives valid_until"}},
		{"enums", minimalYAML + "format: xls\nencoding: gbk\ndefault_validity: 5 years\n", []string{
			"x.yaml:11: format: \"xls\" is not a format", "x.yaml:12: encoding: \"gbk\" is not an encoding", "x.yaml:13: default_validity: \"5 years\""}},
		{"validity too long", minimalYAML + "default_validity: 101y\n", []string{"default_validity: \"101y\""}},
		{"name", minimalYAML + "name: 营业执照\n", []string{"x.yaml:11: name: \"营业执照\" must be"}},
		{"area code", strings.Replace(minimalYAML, `"430100"`, `"4301"`, 1), []string{"x.yaml:5: area_code: \"4301\" is not an area code"}},
		{"area code from column", strings.Replace(minimalYAML, "area_code: \"430100\"\n", "", 1) + "  area_code: 区划\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "x.yaml", tt.yaml)
			m, err := LoadMapping(path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded %+v", m)
			}
			if !licensehub.IsCode(err, licensehub.EINVALID) {
				t.Errorf("code %s", licensehub.ErrorCode(err))
			}
			problems := problemsOf(err)
			t.Logf("%v", err)
			if len(problems) < len(tt.want) {
				t.Fatalf("%d problems, want %d: %v", len(problems), len(tt.want), err)
			}
			for _, w := range tt.want {
				found := false
				for _, p := range problems {
					if strings.Contains(p.Msg, w) && strings.Contains(p.Msg, filepath.Base(path)) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem contains %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValidateInGo(t *testing.T) {
	m := bizMapping(t)
	m.Columns["holder.phone"] = "电话"
	m.DateFormats = []string{"2006"}
	err := m.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"columns.holder.phone: unknown key", "date_formats[0]: \"2006\" is not a date layout"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v lacks %q", err, w)
		}
	}
}

func TestLoadMappingsDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", minimalYAML+"name: same\n")
	writeFile(t, dir, "b.yaml", minimalYAML+"name: same\n")
	writeFile(t, dir, "c.yaml", minimalYAML)
	writeFile(t, dir, "notes.txt", "not a mapping")
	_, err := LoadMappings(dir)
	if err == nil || !strings.Contains(err.Error(), `b.yaml:11: name: "same" is already the name of `+filepath.Join(dir, "a.yaml")) {
		t.Fatalf("err = %v", err)
	}
	// Problems of several files are reported together.
	writeFile(t, dir, "b.yaml", minimalYAML+"name: other\nformat: xls\n")
	writeFile(t, dir, "d.yaml", "colour: red\n")
	_, err = LoadMappings(dir)
	for _, w := range []string{"b.yaml:12: format", "d.yaml:1: unknown key colour"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want %q", err, w)
		}
	}
	if _, err := LoadMappings(filepath.Join(dir, "missing")); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("missing dir: %v", err)
	}
	empty := t.TempDir()
	if ms, err := LoadMappings(empty); err != nil || len(ms) != 0 {
		t.Errorf("empty dir: %v %v", ms, err)
	}
}

func TestBindCatalogProblems(t *testing.T) {
	cat := testCatalog(t)
	path := writeFile(t, t.TempDir(), "x.yaml", minimalYAML+"  fields.colour: 颜色\nfixed:\n  holder.code_type: \"111\"\n")
	m, err := LoadMapping(path)
	if err != nil {
		t.Fatal(err)
	}
	err = m.BindCatalog(cat)
	for _, w := range []string{
		"x.yaml:11: columns.fields.colour: 营业执照 (11100000000013338W011) has no face field \"colour\"",
		"x.yaml:6: columns: 营业执照 requires the face field legal_representative",
		"x.yaml:13: fixed.holder.code_type: 营业执照 is issued to holders with code types 001, not \"111\"",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v\nwant %q", err, w)
		}
	}
	m.LicenseType = "11100000000013338W099"
	if err := m.BindCatalog(cat); err == nil || !strings.Contains(err.Error(), "x.yaml:1: license_type: \"11100000000013338W099\" is not a license type of the catalog") {
		t.Errorf("unknown type: %v", err)
	}
}

// TestConfigsConversion loads every sample mapping of the repository and
// binds it to the repository's catalog.
func TestConfigsConversion(t *testing.T) {
	ms, err := LoadMappings("../configs/conversion")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d sample mappings", len(ms))
	}
	cat := testCatalog(t)
	for name, m := range ms {
		if err := m.BindCatalog(cat); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if m.Format == "" {
			t.Errorf("%s: sample mappings should say their format", name)
		}
	}
}
