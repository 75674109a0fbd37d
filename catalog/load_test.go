package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
)

// baseYAML is a small valid type; the refusal cases edit it. Line numbers
// matter: the cases name them.
const baseYAML = `code: 11100000000013338W099
name: 测试证
defining_authority:
  name: 国家市场监督管理总局
  code: 11100000000013338W
holder_code_types: ["001"]
issuing_level: city
validity: {years: 5}
matters:
  - {code: M-1, name: 测试事项}
fields:
  - name: title
    label: 标题
    type: string
    required: true
    pattern: '[A-Z]+'
    max_length: 10
  - name: kind
    label: 种类
    type: enum
    enum: [a, b]
`

const baseCode = "11100000000013338W099"

func writeCatalog(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

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

func loadError(t *testing.T, dir string) *licensehub.Error {
	t.Helper()
	c, err := Load(dir)
	if err == nil {
		t.Fatalf("Load succeeded with %d types", c.Len())
	}
	var e *licensehub.Error
	if !errors.As(err, &e) || e.Code != licensehub.EINVALID {
		t.Fatalf("Load error %v (%T), want a *licensehub.Error %s", err, err, licensehub.EINVALID)
	}
	return e
}

func TestLoadBase(t *testing.T) {
	c, err := Load(writeCatalog(t, map[string]string{"test.yaml": baseYAML, "notes.txt": "ignored", "README.md": "# ignored"}))
	if err != nil {
		t.Fatal(err)
	}
	ty, ok := c.Type(baseCode)
	if !ok || len(ty.Fields) != 2 || ty.Validity.Years != 5 || ty.IssuingLevel != LevelCity {
		t.Fatalf("loaded %+v", ty)
	}
	if f, ok := ty.Field("title"); !ok || f.re == nil || f.MaxLength != 10 {
		t.Errorf("field title: %+v", f)
	}
	if p := ty.Policy(); p.EarliestYear != 1949 || p.ValidFromBeforeIssue || p.RecordExpired {
		t.Errorf("default policy %+v", p)
	}
}

// TestLoadPolicyAndBindings: the type attributes and field bindings are
// read as written.
func TestLoadPolicyAndBindings(t *testing.T) {
	y := edit(t, "validity: {years: 5}\n", "validity: {years: 5}\nearliest_year: 1980\nvalid_from_before_issue: true\nrecord_expired: true\n",
		"    max_length: 10\n", "    max_length: 10\n    bind: holder.name\n")
	c, err := Load(writeCatalog(t, map[string]string{"test.yaml": y}))
	if err != nil {
		t.Fatal(err)
	}
	ty, _ := c.Type(baseCode)
	if p := ty.Policy(); p.EarliestYear != 1980 || !p.ValidFromBeforeIssue || !p.RecordExpired {
		t.Errorf("policy %+v", p)
	}
	if f, _ := ty.Field("title"); f.Bind != BindHolderName {
		t.Errorf("title bind %q", f.Bind)
	}
}

// TestLoadRefuses: each broken file is refused with a message that names
// the file and line, the type code and the key (with the face field's
// name for keys under fields).
func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name  string
		yaml  func(t *testing.T) string
		code  string // the type code the message names; "" for none
		line  int    // 0: no line
		field string // the key path in the message
		want  string // a fragment of the message
	}{
		{"check character", func(t *testing.T) string {
			return edit(t, "code: 11100000000013338W099", "code: 11100000000013338X099")
		}, "11100000000013338X099", 1, "code", "check character is X, expected W (11100000000013338W is the valid code)"},
		{"code length", func(t *testing.T) string {
			return edit(t, "code: 11100000000013338W099", "code: 11100000000013338W09")
		}, "11100000000013338W09", 1, "code", "has 20 characters; a type code has 21"},
		{"code sequence not digits", func(t *testing.T) string {
			return edit(t, "code: 11100000000013338W099", "code: 11100000000013338WA99")
		}, "11100000000013338WA99", 1, "code", "characters 19-21"},
		{"code not ASCII", func(t *testing.T) string {
			return edit(t, "code: 11100000000013338W099", "code: 11100000000013338W09码")
		}, "11100000000013338W09码", 1, "code", "other than digits and upper-case letters"},
		{"code missing", func(t *testing.T) string {
			return edit(t, "code: 11100000000013338W099\n", "")
		}, "", 1, "code", "missing"},
		{"name missing", func(t *testing.T) string {
			return edit(t, "name: 测试证\n", "")
		}, baseCode, 1, "name", "missing"},
		{"authority code mismatch", func(t *testing.T) string {
			return edit(t, "  code: 11100000000013338W", "  code: 11430000006122244L")
		}, baseCode, 5, "defining_authority.code", "does not match the type code"},
		{"authority level unknown", func(t *testing.T) string {
			return edit(t, "  code: 11100000000013338W", "  code: 11100000000013338W\n  level: ministry")
		}, baseCode, 6, "defining_authority.level", `"ministry" is not a level`},
		{"holder code type unknown", func(t *testing.T) string {
			return edit(t, `holder_code_types: ["001"]`, `holder_code_types: ["002"]`)
		}, baseCode, 6, "holder_code_types[0]", `"002" is not a holder code type`},
		{"holder code type twice", func(t *testing.T) string {
			return edit(t, `holder_code_types: ["001"]`, `holder_code_types: ["001", "001"]`)
		}, baseCode, 6, "holder_code_types[1]", "listed twice"},
		{"holder code types missing", func(t *testing.T) string {
			return edit(t, `holder_code_types: ["001"]`, `holder_code_types: []`)
		}, baseCode, 6, "holder_code_types", "missing"},
		{"issuing level unknown", func(t *testing.T) string {
			return edit(t, "issuing_level: city", "issuing_level: district")
		}, baseCode, 7, "issuing_level", `"district" is not a level`},
		{"validity both", func(t *testing.T) string {
			return edit(t, "validity: {years: 5}", "validity: {years: 5, long_term: true}")
		}, baseCode, 8, "validity", "exclude each other"},
		{"validity zero years", func(t *testing.T) string {
			return edit(t, "validity: {years: 5}", "validity: {years: 0}")
		}, baseCode, 8, "validity.years", "0 is outside 1..100"},
		{"validity long_term false", func(t *testing.T) string {
			return edit(t, "validity: {years: 5}", "validity: {long_term: false}")
		}, baseCode, 8, "validity.long_term", "false"},
		{"validity missing", func(t *testing.T) string {
			return edit(t, "validity: {years: 5}\n", "")
		}, baseCode, 1, "validity", "missing"},
		{"matter code", func(t *testing.T) string {
			return edit(t, "{code: M-1, name: 测试事项}", "{code: M 1, name: 测试事项}")
		}, baseCode, 10, "matters[0].code", "is not a service matter code"},
		{"matter twice", func(t *testing.T) string {
			return edit(t, "  - {code: M-1, name: 测试事项}", "  - {code: M-1, name: 测试事项}\n  - {code: M-1, name: 又一个}")
		}, baseCode, 11, "matters[1].code", "already listed as matters[0]"},
		{"no fields", func(t *testing.T) string {
			s := edit(t)
			return s[:strings.Index(s, "fields:")] + "fields: []\n"
		}, baseCode, 11, "fields", "at least one face field"},
		{"unknown field type", func(t *testing.T) string {
			return edit(t, "type: string", "type: text")
		}, baseCode, 14, "fields[0].type (title)", `"text" is not a field type`},
		{"bad regexp", func(t *testing.T) string {
			return edit(t, "pattern: '[A-Z]+'", "pattern: '[A-Z'")
		}, baseCode, 16, "fields[0].pattern (title)", "is not a Go regular expression: missing closing ]: `[A-Z`"},
		{"enum without values", func(t *testing.T) string {
			return edit(t, "    enum: [a, b]\n", "")
		}, baseCode, 18, "fields[1].enum (kind)", "an enum field lists its values"},
		{"enum value twice", func(t *testing.T) string {
			return edit(t, "enum: [a, b]", "enum: [a, b, a]")
		}, baseCode, 21, "fields[1].enum[2] (kind)", `"a" is listed twice`},
		{"enum on a string", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "    max_length: 10\n    enum: [x]\n")
		}, baseCode, 18, "fields[0].enum (title)", "only enum fields have values"},
		{"pattern on non-string", func(t *testing.T) string {
			return edit(t, "    enum: [a, b]\n", "    enum: [a, b]\n    pattern: 'a'\n")
		}, baseCode, 22, "fields[1].pattern (kind)", "only string fields have a pattern, and this field's type is enum"},
		{"length on non-string", func(t *testing.T) string {
			return edit(t, "    enum: [a, b]\n", "    enum: [a, b]\n    max_length: 3\n")
		}, baseCode, 22, "fields[1].max_length (kind)", "only string fields have a length bound"},
		{"format on non-string", func(t *testing.T) string {
			return edit(t, "    enum: [a, b]\n", "    enum: [a, b]\n    format: credit_code\n")
		}, baseCode, 22, "fields[1].format (kind)", "only string fields have a format"},
		{"format unknown", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "    max_length: 10\n    format: uuid\n")
		}, baseCode, 18, "fields[0].format (title)", `"uuid" is not a format; formats are credit_code, resident_id`},
		{"allow_long_term on a string", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "    max_length: 10\n    allow_long_term: true\n")
		}, baseCode, 18, "fields[0].allow_long_term (title)", "only date fields can be long-term"},
		{"min above max", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "    max_length: 10\n    min_length: 20\n")
		}, baseCode, 18, "fields[0].min_length (title)", "20 is more than max_length 10"},
		{"max_length zero", func(t *testing.T) string {
			return edit(t, "max_length: 10", "max_length: 0")
		}, baseCode, 17, "fields[0].max_length (title)", "a length bound is at least 1"},
		{"string without max_length", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "")
		}, baseCode, 12, "fields[0].max_length (title)", "missing; every string field has a maximum length"},
		{"max_length too large", func(t *testing.T) string {
			return edit(t, "max_length: 10", "max_length: 10001")
		}, baseCode, 17, "fields[0].max_length (title)", "10001 is more than 10000"},
		{"bind unknown", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "    max_length: 10\n    bind: holder.address\n")
		}, baseCode, 18, "fields[0].bind (title)", `"holder.address" is not a binding; bindings are holder.code, holder.name`},
		{"bind on an enum", func(t *testing.T) string {
			return edit(t, "    enum: [a, b]\n", "    enum: [a, b]\n    bind: holder.name\n")
		}, baseCode, 22, "fields[1].bind (kind)", "only string fields can be bound"},
		{"bound resident ID on a credit-code type", func(t *testing.T) string {
			return edit(t, "    max_length: 10\n", "    max_length: 18\n    format: resident_id\n    bind: holder.code\n")
		}, baseCode, 19, "fields[0].bind (title)", `needs holder_code_types: ["111"]`},
		{"earliest_year out of range", func(t *testing.T) string {
			return edit(t, "validity: {years: 5}\n", "validity: {years: 5}\nearliest_year: 1700\n")
		}, baseCode, 9, "earliest_year", "1700 is outside 1800..2100"},
		{"enum value with a zero-width space", func(t *testing.T) string {
			return edit(t, "enum: [a, b]", "enum: [a, \"b\u200b\"]")
		}, baseCode, 21, "fields[1].enum[1] (kind)", "zero-width character"},
		{"type name with a bidi override", func(t *testing.T) string {
			return edit(t, "name: 测试证", "name: \"测试\u202e证\"")
		}, baseCode, 2, "name", "bidirectional control character"},
		{"duplicate field name", func(t *testing.T) string {
			return edit(t, "  - name: kind", "  - name: title")
		}, baseCode, 18, "fields[1].name (title)", "already the name of fields[0] (line 12)"},
		{"non-ASCII field name", func(t *testing.T) string {
			return edit(t, "  - name: title", "  - name: 标题")
		}, baseCode, 12, "fields[0].name (标题)", "is not ASCII; license bodies carry only ASCII keys"},
		{"field name not snake_case", func(t *testing.T) string {
			return edit(t, "  - name: title", "  - name: Title")
		}, baseCode, 12, "fields[0].name (Title)", "is not snake_case"},
		{"field name missing", func(t *testing.T) string {
			return edit(t, "  - name: title\n    label: 标题", "  - label: 标题")
		}, baseCode, 12, "fields[0].name", "missing"},
		{"label missing", func(t *testing.T) string {
			return edit(t, "    label: 种类\n", "")
		}, baseCode, 18, "fields[1].label (kind)", "missing"},
		{"unknown key", func(t *testing.T) string {
			return edit(t, "    required: true", "    requird: true")
		}, baseCode, 15, "fields[0].requird (title)", "unknown key requird; the keys here are name, label, type, required, pattern"},
		{"unknown top-level key", func(t *testing.T) string {
			return edit(t, "issuing_level: city", "issuing_level: city\nissuer: 某局")
		}, baseCode, 8, "issuer", "unknown key issuer; the keys here are code, name, defining_authority"},
		{"wrong YAML type", func(t *testing.T) string {
			return edit(t, "    required: true", "    required: maybe")
		}, baseCode, 15, "fields[0].required (title)", "cannot unmarshal a string `maybe` into bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeCatalog(t, map[string]string{"bad.yaml": tt.yaml(t)})
			e := loadError(t, dir)
			file := filepath.Join(dir, "bad.yaml")
			where := file
			if tt.line > 0 {
				where += ":" + strconv.Itoa(tt.line)
			}
			if tt.code != "" {
				where += ": type " + tt.code
			}
			if want := where + ": " + tt.field + ": "; !strings.HasPrefix(e.Message, want) {
				t.Errorf("message\n  %s\ndoes not start with\n  %s", e.Message, want)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Errorf("message\n  %s\ndoes not contain\n  %s", e.Message, tt.want)
			}
			if field, _, _ := strings.Cut(tt.field, " ("); e.Field != field {
				t.Errorf("Field = %q, want %q", e.Field, field)
			}
			if ps, _ := e.Details["problems"].([]string); len(ps) != 1 {
				t.Errorf("Details[problems] = %v, want the one problem", e.Details["problems"])
			}
		})
	}
}

// TestLoadRefusesFiles covers problems of whole files and of several
// files at once.
func TestLoadRefusesFiles(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // fragments, {dir} replaced by the directory
	}{
		{"empty file", map[string]string{"a.yaml": "  \n"}, []string{"{dir}/a.yaml: empty"}},
		{"syntax error", map[string]string{"a.yaml": "code: [\n"}, []string{"{dir}/a.yaml:", "did not find expected node content"}},
		{"top-level list", map[string]string{"a.yaml": "- code: x\n"}, []string{"{dir}/a.yaml:1: the top level must be a mapping"}},
		{"two documents", map[string]string{"a.yaml": baseYAML + "---\ncode: y\n"}, []string{"{dir}/a.yaml:22: type " + baseCode + ": more than one YAML document"}},
		{"duplicate code", map[string]string{"a.yaml": baseYAML, "b.yaml": baseYAML},
			[]string{"{dir}/b.yaml:1: type " + baseCode + ": code: " + baseCode + " is already the code of 测试证 ({dir}/a.yaml:1)"}},
		{"every problem of every file", map[string]string{
			"a.yaml": strings.Replace(baseYAML, "type: string", "type: text", 1),
			"b.yaml": strings.Replace(strings.Replace(baseYAML, baseCode, "11100000000013338W098", 1), "issuing_level: city", "issuing_level: town", 1),
			"c.yaml": strings.Replace(strings.Replace(baseYAML, baseCode, "11100000000013338W097", 1), "name: 测试证", "name: ''", 1),
		}, []string{
			"catalog {dir} has 3 problems:",
			"{dir}/a.yaml:14: type " + baseCode + ": fields[0].type (title):",
			"{dir}/b.yaml:7: type 11100000000013338W098: issuing_level:",
			"{dir}/c.yaml:2: type 11100000000013338W097: name: missing",
		}},
		{"decoding goes on after an unknown key", map[string]string{
			"a.yaml": strings.Replace(strings.Replace(baseYAML, "    required: true", "    requird: true", 1), baseCode, "11100000000013338X099", 1),
		}, []string{"catalog {dir} has 2 problems:",
			"a.yaml:1: type 11100000000013338X099: code: ",
			"a.yaml:15: type 11100000000013338X099: fields[0].requird (title): unknown key requird"}},
		{"nothing more inside a key that did not decode", map[string]string{
			"a.yaml": baseYAML[:strings.Index(baseYAML, "fields:")] + "fields: {title: x}\n",
		}, []string{"{dir}/a.yaml:11: type " + baseCode + ": fields: cannot unmarshal a mapping into []catalog.fileField"}},
		{"several problems in one file", map[string]string{
			"a.yaml": strings.Replace(strings.Replace(baseYAML, "issuing_level: city", "issuing_level: town", 1), "pattern: '[A-Z]+'", "pattern: '('", 1),
		}, []string{"catalog {dir} has 2 problems:", "a.yaml:7: type " + baseCode + ": issuing_level:", "a.yaml:16: type " + baseCode + ": fields[0].pattern (title):"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeCatalog(t, tt.files)
			e := loadError(t, dir)
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "{dir}/", dir+string(filepath.Separator))
				w = strings.ReplaceAll(w, "{dir}", dir)
				if !strings.Contains(e.Message, w) {
					t.Errorf("message\n%s\ndoes not contain\n%s", e.Message, w)
				}
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(empty, "x.yaml.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ dir, want string }{
		{empty, "has no *.yaml files"},
		{filepath.Join(empty, "missing"), "no such file or directory"},
		{file, "not a directory"},
		{filepath.Join(empty, "[x]"), "no such file or directory"},
	}
	for _, tt := range tests {
		e := loadError(t, tt.dir)
		if !strings.Contains(e.Message, tt.dir) || !strings.Contains(e.Message, tt.want) {
			t.Errorf("Load(%s): %s; want it named and %q", tt.dir, e.Message, tt.want)
		}
	}
}
