package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signable"
)

// Limits on catalog entries.
const (
	maxValidityYears = 100
	maxFieldName     = 64
	// maxStringLength bounds a string field's max_length: a face value
	// is printed on a license.
	maxStringLength = 10000
	// earliest_year bounds.
	minEarliestYear = 1800
	maxEarliestYear = 2100
)

var (
	// fieldNamePattern is ASCII snake_case.
	fieldNamePattern = regexp.MustCompile(`^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$`)
	// matterPattern is the service matter codes auth grants accept.
	matterPattern  = regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)
	yamlLinePrefix = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownKey = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	// yamlCannotDecode matches "cannot unmarshal !!str `maybe` into bool".
	yamlCannotDecode = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into ")
	yamlTags         = strings.NewReplacer("!!str", "a string", "!!int", "an integer", "!!bool", "a boolean",
		"!!float", "a number", "!!seq", "a list", "!!map", "a mapping", "!!null", "null")
)

// The YAML form of a catalog file: one license type.
type fileType struct {
	Code              string        `yaml:"code"`
	Name              string        `yaml:"name"`
	DefiningAuthority fileAuthority `yaml:"defining_authority"`
	HolderCodeTypes   []string      `yaml:"holder_code_types"`
	IssuingLevel      string        `yaml:"issuing_level"`
	Validity          *fileValidity `yaml:"validity"`
	Matters           []fileMatter  `yaml:"matters"`
	Fields            []fileField   `yaml:"fields"`
	EarliestYear      *int          `yaml:"earliest_year"`
	ValidFromBefore   bool          `yaml:"valid_from_before_issue"`
	RecordExpired     bool          `yaml:"record_expired"`
}

type fileAuthority struct {
	Name  string `yaml:"name"`
	Code  string `yaml:"code"`
	Level string `yaml:"level"`
}

type fileValidity struct {
	Years    *int  `yaml:"years"`
	LongTerm *bool `yaml:"long_term"`
}

type fileMatter struct {
	Code string `yaml:"code"`
	Name string `yaml:"name"`
}

type fileField struct {
	Name          string   `yaml:"name"`
	Label         string   `yaml:"label"`
	Type          string   `yaml:"type"`
	Required      bool     `yaml:"required"`
	Pattern       string   `yaml:"pattern"`
	Enum          []string `yaml:"enum"`
	MinLength     *int     `yaml:"min_length"`
	MaxLength     *int     `yaml:"max_length"`
	Format        string   `yaml:"format"`
	AllowLongTerm bool     `yaml:"allow_long_term"`
	Bind          string   `yaml:"bind"`
}

// knownKeys maps the Go type names that yaml.v3 puts in "field x not found
// in type T" to the keys that are allowed there, for messages.
var knownKeys = func() map[string]string {
	m := map[string]string{}
	for _, v := range []any{fileType{}, fileAuthority{}, fileValidity{}, fileMatter{}, fileField{}} {
		t := reflect.TypeOf(v)
		var keys []string
		for f := range t.Fields() {
			keys = append(keys, f.Tag.Get("yaml"))
		}
		m[t.String()] = strings.Join(keys, ", ")
	}
	return m
}()

// Load reads every *.yaml file of dir, one license type each, and checks
// them all. Any problem stops loading: the error (licensehub.EINVALID)
// lists every problem found in every file, each naming the file and line,
// the type code and the offending key (e.g. fields[3].pattern) with the
// face field's name; Details["problems"] holds them as a []string.
func Load(dir string) (*Catalog, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &licensehub.Error{Code: licensehub.EINVALID, Field: "catalog",
			Message: fmt.Sprintf("catalog directory %s: %v", dir, err), Err: err}
	}
	var paths []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	if len(paths) == 0 {
		return nil, &licensehub.Error{Code: licensehub.EINVALID, Field: "catalog",
			Message: fmt.Sprintf("catalog directory %s has no *.yaml files; write one file per license type", dir)}
	}
	slices.Sort(paths)

	var ps licensehub.Problems
	c := &Catalog{byCode: map[string]*Type{}}
	for _, path := range paths {
		d := &doc{path: path, ps: &ps}
		t := d.load()
		if t == nil {
			continue
		}
		if prev, dup := c.byCode[t.Code]; dup {
			d.add([]any{"code"}, "%s is already the code of %s (%s:%d)", t.Code, prev.Name, prev.File, prev.codeLine)
			continue
		}
		c.byCode[t.Code] = t
		c.sorted = append(c.sorted, t)
	}
	if err := ps.Err("catalog " + dir); err != nil {
		return nil, err
	}
	slices.SortFunc(c.sorted, func(a, b *Type) int { return strings.Compare(a.Code, b.Code) })
	return c, nil
}

// doc is one catalog file being checked.
type doc struct {
	path string
	ps   *licensehub.Problems
	top  *yaml.Node // the top-level mapping, for line numbers
	code string     // the type code as written, for messages
	ft   fileType
	// undecoded are the paths of values that did not decode.
	undecoded []string
}

// load checks the file and builds its type; nil when it has problems.
func (d *doc) load() *Type {
	before := len(*d.ps)
	if !d.decode() {
		return nil
	}
	t := d.check()
	if len(*d.ps) > before {
		return nil
	}
	return t
}

// decode parses the file strictly into d.ft and d.top; it reports whether
// the checks can go on.
func (d *doc) decode() bool {
	raw, err := os.ReadFile(d.path)
	if err != nil {
		d.fileProblem(0, "%v", err)
		return false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		d.fileProblem(0, "empty; a catalog file describes one license type (code:, name:, fields:, ...)")
		return false
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		d.yamlProblems(err)
		return false
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		d.fileProblem(top.Line, "the top level must be a mapping (code:, name:, fields:, ...) describing one license type")
		return false
	}
	d.top = top
	if n := mappingValue(top, "code"); n != nil && n.Kind == yaml.ScalarNode {
		d.code = n.Value
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&d.ft); err != nil {
		d.yamlProblems(err)
		// After type errors and unknown keys yaml.v3 has decoded the rest,
		// so the checks go on (see add: nothing is reported inside a key
		// that did not decode); after anything else they cannot.
		if te := (*yaml.TypeError)(nil); !errors.As(err, &te) {
			return false
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		d.fileProblem(extra.Line, "more than one YAML document (a second ---?); write one license type per file")
		return false
	}
	return true
}

// check validates d.ft and builds the type.
func (d *doc) check() *Type {
	ft := &d.ft
	t := &Type{
		Code:            ft.Code,
		Name:            strings.TrimSpace(ft.Name),
		HolderCodeTypes: slices.Clone(ft.HolderCodeTypes),
		IssuingLevel:    Level(ft.IssuingLevel),
		File:            d.path,
		byName:          map[string]*Field{},
	}
	t.codeLine = d.line("code")
	codeOK := d.checkCode(ft.Code)

	if t.Name == "" {
		d.add([]any{"name"}, "missing; write the license's name as printed (e.g. 营业执照)")
	}

	a := ft.DefiningAuthority
	t.DefiningAuthority = Authority{Name: strings.TrimSpace(a.Name), Code: a.Code, Level: Level(a.Level)}
	if t.DefiningAuthority.Name == "" {
		d.add([]any{"defining_authority", "name"}, "missing; name the authority that defines the license type")
	}
	switch {
	case a.Code == "":
		d.add([]any{"defining_authority", "code"}, "missing; write its unified social credit code, the first %d characters of the type code", ident.CreditCodeLen)
	case codeOK && a.Code != ft.Code[:ident.CreditCodeLen]:
		d.add([]any{"defining_authority", "code"}, "%s does not match the type code %s, whose first %d characters name the defining authority (%s)",
			licensehub.Clip(a.Code, 32), ft.Code, ident.CreditCodeLen, ft.Code[:ident.CreditCodeLen])
	case !codeOK:
		if err := ident.ValidateCreditCode(a.Code); err != nil {
			d.add([]any{"defining_authority", "code"}, "%s is not a unified social credit code: %s", licensehub.Clip(a.Code, 32), licensehub.Message(err))
		}
	}
	if a.Level != "" && !slices.Contains(Levels, Level(a.Level)) {
		d.add([]any{"defining_authority", "level"}, "%q is not a level; levels are %s", licensehub.Clip(a.Level, 32), levelList())
	}

	if len(ft.HolderCodeTypes) == 0 {
		d.add([]any{"holder_code_types"}, "missing; list %q (unified social credit code), %q (resident ID number) or both",
			ident.HolderCreditCode, ident.HolderResidentID)
	}
	for i, ct := range ft.HolderCodeTypes {
		switch {
		case ct != ident.HolderCreditCode && ct != ident.HolderResidentID:
			d.add([]any{"holder_code_types", i}, "%q is not a holder code type; use %q (unified social credit code) or %q (resident ID number)",
				licensehub.Clip(ct, 32), ident.HolderCreditCode, ident.HolderResidentID)
		case slices.Index(ft.HolderCodeTypes, ct) < i:
			d.add([]any{"holder_code_types", i}, "%s is listed twice", ct)
		}
	}

	switch {
	case ft.IssuingLevel == "":
		d.add([]any{"issuing_level"}, "missing; one of %s", levelList())
	case !slices.Contains(Levels, t.IssuingLevel):
		d.add([]any{"issuing_level"}, "%q is not a level; levels are %s", licensehub.Clip(ft.IssuingLevel, 32), levelList())
	}

	t.Validity = d.checkValidity(ft.Validity)

	t.EarliestYear = license.DefaultEarliestYear
	if y := ft.EarliestYear; y != nil {
		if *y < minEarliestYear || *y > maxEarliestYear {
			d.add([]any{"earliest_year"}, "%d is outside %d..%d", *y, minEarliestYear, maxEarliestYear)
		} else {
			t.EarliestYear = *y
		}
	}
	t.ValidFromBeforeIssue, t.RecordExpired = ft.ValidFromBefore, ft.RecordExpired
	if t.Name != "" {
		if err := signable.Check("name", t.Name, license.MaxNameLen); err != nil {
			d.add([]any{"name"}, "%s (it is signed as the license's type_name)", textProblem(err))
		}
	}

	seenMatter := map[string]int{}
	for i, m := range ft.Matters {
		switch {
		case m.Code == "":
			d.add([]any{"matters", i, "code"}, "missing; write the service matter code")
		case !matterPattern.MatchString(m.Code):
			d.add([]any{"matters", i, "code"}, "%q is not a service matter code (1 to 64 characters of 0-9, A-Z, a-z and '-')", licensehub.Clip(m.Code, 80))
		default:
			if j, dup := seenMatter[m.Code]; dup {
				d.add([]any{"matters", i, "code"}, "%s is already listed as matters[%d]", m.Code, j)
			}
			seenMatter[m.Code] = i
		}
		if strings.TrimSpace(m.Name) == "" {
			d.add([]any{"matters", i, "name"}, "missing; write the service matter's name")
		}
		t.Matters = append(t.Matters, Matter{Code: m.Code, Name: strings.TrimSpace(m.Name)})
	}
	if t.Matters == nil {
		t.Matters = []Matter{}
	}

	if len(ft.Fields) == 0 {
		d.add([]any{"fields"}, "missing; a license type has at least one face field")
	}
	for i := range ft.Fields {
		f := d.checkField(i, &ft.Fields[i])
		if f == nil {
			continue
		}
		if prev, dup := t.byName[f.Name]; dup {
			j := slices.Index(t.Fields, prev)
			d.add([]any{"fields", i, "name"}, "%s is already the name of fields[%d] (line %d)", f.Name, j, d.line("fields", j, "name"))
			continue
		}
		t.byName[f.Name] = f
		t.Fields = append(t.Fields, f)
		if f.Bind == BindHolderCode && f.Format != "" {
			want := ident.HolderCreditCode
			if f.Format == FormatResidentID {
				want = ident.HolderResidentID
			}
			if !slices.Equal(ft.HolderCodeTypes, []string{want}) {
				d.add([]any{"fields", i, "bind"}, "a %s field bound to holder.code needs holder_code_types: [\"%s\"], or no holder could match it", f.Format, want)
			}
		}
	}
	return t
}

// textProblem is a signable refusal in the words of a catalog problem.
func textProblem(err error) string {
	var e *licensehub.Error
	if errors.As(err, &e) {
		return strings.TrimPrefix(strings.TrimPrefix(e.Message, e.Field), " ")
	}
	return err.Error()
}

// checkCode checks the type code and reports whether it is well-formed
// (so that its first 18 characters can be compared).
func (d *doc) checkCode(code string) bool {
	at := []any{"code"}
	n := utf8.RuneCountInString(code)
	switch {
	case code == "":
		d.add(at, "missing; write the %d-character type code: the defining authority's unified social credit code and 3 digits", ident.TypeCodeLen)
		return false
	case n != ident.TypeCodeLen:
		d.add(at, "%q has %d characters; a type code has %d: the defining authority's unified social credit code (%d) and 3 digits",
			licensehub.Clip(code, 32), n, ident.TypeCodeLen, ident.CreditCodeLen)
		return false
	case len(code) != n:
		d.add(at, "%q has a character other than digits and upper-case letters", code)
		return false
	}
	if err := ident.ValidateCreditCode(code[:ident.CreditCodeLen]); err != nil {
		msg := licensehub.Message(err)
		if ident.Rule(err) == ident.RuleCheckDigit {
			first17 := code[:ident.CreditCodeLen-1]
			c, _ := ident.CreditCodeCheck(first17)
			msg += fmt.Sprintf(" (%s%c is the valid code)", first17, c)
		}
		d.add(at, "%s: its first %d characters are not a valid unified social credit code: %s", code, ident.CreditCodeLen, msg)
		return false
	}
	for _, r := range code[ident.CreditCodeLen:] {
		if r < '0' || r > '9' {
			d.add(at, "%s: characters %d-%d are the type's sequence number and must be digits", code, ident.CreditCodeLen+1, ident.TypeCodeLen)
			return false
		}
	}
	return true
}

func (d *doc) checkValidity(v *fileValidity) Validity {
	at := []any{"validity"}
	switch {
	case v == nil || (v.Years == nil && v.LongTerm == nil):
		d.add(at, "missing; write years: N (valid N years from issue) or long_term: true")
	case v.Years != nil && v.LongTerm != nil:
		d.add(at, "years and long_term exclude each other; write one")
	case v.LongTerm != nil && !*v.LongTerm:
		d.add(append(at, "long_term"), "false; write long_term: true, or years: N instead")
	case v.LongTerm != nil:
		return Validity{LongTerm: true}
	case *v.Years < 1 || *v.Years > maxValidityYears:
		d.add(append(at, "years"), "%d is outside 1..%d", *v.Years, maxValidityYears)
	default:
		return Validity{Years: *v.Years}
	}
	return Validity{}
}

// checkField checks fields[i]; nil when it has problems.
func (d *doc) checkField(i int, ff *fileField) *Field {
	before := len(*d.ps)
	bad := func(key, format string, args ...any) { d.add([]any{"fields", i, key}, format, args...) }

	switch {
	case ff.Name == "":
		bad("name", "missing; write the key of the value in the license body's fields (ASCII snake_case)")
	case !isASCII(ff.Name):
		bad("name", "%q is not ASCII; license bodies carry only ASCII keys, so write it in snake_case (e.g. legal_representative) and put the printed text in label:",
			licensehub.Clip(ff.Name, 64))
	case len(ff.Name) > maxFieldName:
		bad("name", "%q is %d characters; at most %d", licensehub.Clip(ff.Name, 64), len(ff.Name), maxFieldName)
	case !fieldNamePattern.MatchString(ff.Name):
		bad("name", "%q is not snake_case: lower-case letters, digits and single underscores, starting with a letter", ff.Name)
	}
	if strings.TrimSpace(ff.Label) == "" {
		bad("label", "missing; write the label printed on the license")
	}

	typ := FieldType(ff.Type)
	switch {
	case ff.Type == "":
		bad("type", "missing; one of %s", fieldTypeList())
	case !slices.Contains(FieldTypes, typ):
		bad("type", "%q is not a field type; types are %s", licensehub.Clip(ff.Type, 32), fieldTypeList())
	}
	known := slices.Contains(FieldTypes, typ)
	isString := typ == TypeString

	switch {
	case typ == TypeEnum && len(ff.Enum) == 0:
		bad("enum", "missing; an enum field lists its values (enum: [..])")
	case known && typ != TypeEnum && ff.Enum != nil:
		bad("enum", "only enum fields have values, and this field's type is %s", typ)
	}
	for j, v := range ff.Enum {
		switch {
		case strings.TrimSpace(v) == "":
			d.add([]any{"fields", i, "enum", j}, "empty; an enum value is a non-blank string")
		case slices.Index(ff.Enum, v) < j:
			d.add([]any{"fields", i, "enum", j}, "%q is listed twice", v)
		}
	}

	f := &Field{Name: ff.Name, Label: strings.TrimSpace(ff.Label), Type: typ, Required: ff.Required,
		Pattern: ff.Pattern, Enum: slices.Clone(ff.Enum), Format: Format(ff.Format), AllowLongTerm: ff.AllowLongTerm}

	if ff.Pattern != "" {
		// Compiled as written first, so that an error quotes the author's
		// text rather than the anchored form.
		_, err := regexp.Compile(ff.Pattern)
		if err == nil {
			f.re, err = regexp.Compile(`^(?:` + ff.Pattern + `)$`)
		}
		switch {
		case known && !isString:
			bad("pattern", "only string fields have a pattern, and this field's type is %s", typ)
		case err != nil:
			bad("pattern", "%q is not a Go regular expression: %s", licensehub.Clip(ff.Pattern, 80), strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	for _, l := range []struct {
		key string
		v   *int
		out *int
	}{{"min_length", ff.MinLength, &f.MinLength}, {"max_length", ff.MaxLength, &f.MaxLength}} {
		switch {
		case l.v == nil:
		case known && !isString:
			bad(l.key, "only string fields have a length bound, and this field's type is %s", typ)
		case *l.v < 1:
			bad(l.key, "%d; a length bound is at least 1", *l.v)
		default:
			*l.out = *l.v
		}
	}
	if f.MinLength > 0 && f.MaxLength > 0 && f.MinLength > f.MaxLength {
		bad("min_length", "%d is more than max_length %d", f.MinLength, f.MaxLength)
	}
	switch {
	case ff.Format == "":
	case known && !isString:
		bad("format", "only string fields have a format, and this field's type is %s", typ)
	case !slices.Contains(Formats, f.Format):
		bad("format", "%q is not a format; formats are %s", licensehub.Clip(ff.Format, 32), formatList())
	}
	if ff.AllowLongTerm && known && typ != TypeDate {
		bad("allow_long_term", "only date fields can be long-term, and this field's type is %s", typ)
	}
	switch {
	case isString && ff.MaxLength == nil:
		bad("max_length", "missing; every string field has a maximum length in characters (at most %d)", maxStringLength)
	case isString && *ff.MaxLength > maxStringLength:
		bad("max_length", "%d is more than %d", *ff.MaxLength, maxStringLength)
	}
	switch {
	case ff.Bind == "":
	case known && !isString:
		bad("bind", "only string fields can be bound, and this field's type is %s", typ)
	case !slices.Contains(Bindings, ff.Bind):
		bad("bind", "%q is not a binding; bindings are %s", licensehub.Clip(ff.Bind, 32), strings.Join(Bindings, ", "))
	default:
		f.Bind = ff.Bind
	}
	for j, v := range ff.Enum {
		if err := signable.Check("enum", v, 0); err != nil {
			d.add([]any{"fields", i, "enum", j}, "%s (enum values are signed in license bodies)", textProblem(err))
		}
	}
	if len(*d.ps) > before {
		return nil
	}
	return f
}

// add records a problem at path (keys and indexes from the top mapping),
// unless path is inside a key that failed to decode (already reported,
// and its decoded value is only partial).
func (d *doc) add(path []any, format string, args ...any) {
	field := renderPath(path)
	for _, broken := range d.undecoded {
		if field == broken || strings.HasPrefix(field, broken+".") || strings.HasPrefix(field, broken+"[") {
			return
		}
	}
	d.record(path, field, format, args...)
}

// record records a problem at path, rendered as field.
func (d *doc) record(path []any, field, format string, args ...any) {
	where := field
	if len(path) >= 2 && path[0] == "fields" {
		if i, ok := path[1].(int); ok && i < len(d.ft.Fields) && d.ft.Fields[i].Name != "" {
			where += " (" + licensehub.Clip(d.ft.Fields[i].Name, 64) + ")"
		}
	}
	*d.ps = append(*d.ps, licensehub.Problem{Field: field,
		Msg: fmt.Sprintf("%s: %s: %s", d.prefix(d.line(path...)), where, fmt.Sprintf(format, args...))})
}

// fileProblem records a problem of the file as a whole.
func (d *doc) fileProblem(line int, format string, args ...any) {
	*d.ps = append(*d.ps, licensehub.Problem{Msg: d.prefix(line) + ": " + fmt.Sprintf(format, args...)})
}

// prefix is "file:line: type CODE" (without line when it is 0, without the
// type when the code is not known yet).
func (d *doc) prefix(line int) string {
	s := d.path
	if line > 0 {
		s += ":" + strconv.Itoa(line)
	}
	if d.code != "" {
		s += ": type " + licensehub.Clip(d.code, 32)
	}
	return s
}

// yamlProblems records the problems of a YAML syntax or decoding error.
func (d *doc) yamlProblems(err error) {
	msgs := []string{err.Error()}
	if te := (*yaml.TypeError)(nil); errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, msg := range msgs {
		msg = strings.TrimPrefix(msg, "yaml: ")
		m := yamlLinePrefix.FindStringSubmatch(msg)
		if m == nil {
			d.fileProblem(0, "%s", yamlTags.Replace(msg))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		text, unknownKey, tag, value := m[2], "", "", ""
		if u := yamlUnknownKey.FindStringSubmatch(text); u != nil {
			unknownKey = u[1]
			text = fmt.Sprintf("unknown key %s; the keys here are %s", u[1], knownKeys[u[2]])
		} else {
			if c := yamlCannotDecode.FindStringSubmatch(text); c != nil {
				tag, value = c[1], c[2]
			}
			text = yamlTags.Replace(text)
		}
		if path := pathAtLine(d.top, line, unknownKey, tag, value); path != nil {
			field := renderPath(path)
			d.record(path, field, "%s", text)
			if unknownKey == "" {
				d.undecoded = append(d.undecoded, field)
			}
			continue
		}
		d.fileProblem(line, "%s", text)
	}
}

// line returns the line of the node at path, or of the deepest node on the
// way to it that exists; 0 without a parsed file.
func (d *doc) line(path ...any) int {
	n := d.top
	if n == nil {
		return 0
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				next = mappingValue(n, k)
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = resolveAlias(n.Content[k])
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// pathAtLine returns the path of the node a yaml.v3 error on line is
// about, or nil: the key key when it is not empty (an unknown key),
// otherwise the deepest value with the YAML tag and (a prefix of) the
// value the error quotes (a value that does not decode).
func pathAtLine(n *yaml.Node, line int, key, tag, value string) []any {
	if n == nil {
		return nil
	}
	value = strings.TrimSuffix(value, "...") // yaml.v3 shortens long values
	matches := func(v *yaml.Node) bool {
		v = resolveAlias(v)
		return tag != "" && v.Line == line && v.Tag == tag && strings.HasPrefix(v.Value, value)
	}
	var best []any
	var walk func(n *yaml.Node, path []any)
	walk = func(n *yaml.Node, path []any) {
		switch n.Kind {
		case yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				kn, vn := n.Content[k], n.Content[k+1]
				p := append(slices.Clone(path), kn.Value)
				if (key != "" && kn.Line == line && kn.Value == key) || (key == "" && matches(vn)) {
					best = p
				}
				walk(vn, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := append(slices.Clone(path), i)
				if key == "" && matches(c) {
					best = p
				}
				walk(c, p)
			}
		}
	}
	walk(n, nil)
	return best
}

// renderPath writes path as fields[3].pattern.
func renderPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, k)
		}
	}
	return b.String()
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// mappingValue returns the value node of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == key {
			return resolveAlias(m.Content[k+1])
		}
	}
	return nil
}

func levelList() string      { return joinList(Levels) }
func fieldTypeList() string  { return joinList(FieldTypes) }
func formatList() string     { return joinList(Formats) }
func isASCII(s string) bool  { return !strings.ContainsFunc(s, isNonASCII) }
func isNonASCII(r rune) bool { return r >= utf8.RuneSelf }

func joinList[S ~string](xs []S) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}
