package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

// Mapping describes one legacy source (configs/conversion/<name>.yaml).
// LoadMapping reads and checks one; Request turns a row into a push
// request. A Mapping must not be changed after Validate (LoadMapping
// calls it): Validate compiles what Request uses.
type Mapping struct {
	Name        string        `yaml:"name"`         // the legacy source, e.g. "scjg-2015-register"; the file's base name when empty
	Description string        `yaml:"description"`  // free text
	LicenseType string        `yaml:"license_type"` // catalog type code
	Authority   license.Party `yaml:"authority"`    // the issuing authority {name, code}
	AreaCode    string        `yaml:"area_code"`    // default area code when no column gives one
	// Format is csv, xlsx or jsonl; empty: from the file name's extension.
	Format string `yaml:"format"`
	// Encoding of CSV files: auto (default: UTF-8 if the bytes are valid
	// UTF-8, a UTF-8 BOM is skipped; otherwise GB18030), utf-8, gb18030.
	Encoding string `yaml:"encoding"`
	Sheet    string `yaml:"sheet"` // XLSX sheet; empty: the first
	// Columns maps license fields to source columns. Keys: number,
	// holder.name, holder.code, holder.code_type, issue_date, valid_from,
	// valid_until, area_code, name, and fields.<catalog field>.
	Columns map[string]string `yaml:"columns"`
	// Fixed gives a value to a field whatever the row says (e.g.
	// holder.code_type: "001").
	Fixed map[string]string `yaml:"fixed"`
	// DateFormats are Go layouts tried in order, e.g. "2006年01月02日",
	// "20060102", "2006/1/2", "2006-01-02". Absent: DefaultDateFormats.
	DateFormats []string `yaml:"date_formats"`
	// ValueMaps rewrite a field's source value ("有限" → "有限责任公司");
	// a field with a map and strict: true rejects values outside it.
	ValueMaps map[string]ValueMap `yaml:"value_maps"`
	// DefaultValidity applies when valid_until is empty: "long_term"
	// (license.LongTerm), a duration in years like "5y" counted from
	// valid_from, or "catalog" (the catalog's rule; the default).
	DefaultValidity string `yaml:"default_validity"`
	// NumberColumn is the column with the legacy license number (the
	// natural key with type and authority); the same as Columns["number"]
	// when that is set.
	NumberColumn string `yaml:"number_column"`

	// File is the file the mapping was read from ("" for a Mapping built
	// in Go); problems name it with the line.
	File string `yaml:"-"`
	// Clock gives "today" for the date checks (no issue date in the
	// future, years 1949..this year); nil: time.Now. Tests set it.
	Clock func() time.Time `yaml:"-"`

	top     *yaml.Node    // the parsed file, for line numbers
	badLine map[int]bool  // lines whose value did not decode (no further problems there)
	fieldTy *catalog.Type // the catalog entry given to BindCatalog, nil before
	plan    *plan         // compiled by Validate; Request's fast path
}

// ValueMap rewrites source values of one field.
type ValueMap struct {
	Values map[string]string `yaml:"values"`
	Strict bool              `yaml:"strict"` // a value not in Values is rejected (BAD_VALUE)
}

// DefaultDateFormats are the layouts a mapping without date_formats
// tries, in order. Go's one-digit month and day ("1", "2") also accept
// two digits, so "2006年1月2日" reads 2015年3月4日 and 2015年03月04日 alike,
// and "2006/1/2" reads 2015/03/04.
var DefaultDateFormats = []string{"2006-01-02", "2006/1/2", "20060102", "2006年1月2日", "2006.1.2"}

// Column keys: the license fields a column (or a fixed value) can give.
const (
	KeyNumber         = "number"
	KeyName           = "name"
	KeyHolderName     = "holder.name"
	KeyHolderCode     = "holder.code"
	KeyHolderCodeType = "holder.code_type"
	KeyIssueDate      = "issue_date"
	KeyValidFrom      = "valid_from"
	KeyValidUntil     = "valid_until"
	KeyAreaCode       = "area_code"
	// KeyFieldsPrefix opens the key of a face field: fields.<catalog field>.
	KeyFieldsPrefix = "fields."
)

// columnKeys are the keys other than fields.<name>, in push-request order.
var columnKeys = []string{KeyNumber, KeyName, KeyHolderName, KeyHolderCode, KeyHolderCodeType,
	KeyIssueDate, KeyValidFrom, KeyValidUntil, KeyAreaCode}

// requiredKeys must be mapped to a column: every license has its own.
var requiredKeys = []string{KeyNumber, KeyHolderName, KeyHolderCode, KeyIssueDate}

// Values of Format, Encoding and DefaultValidity.
const (
	FormatCSV   = "csv"
	FormatXLSX  = "xlsx"
	FormatJSONL = "jsonl"

	EncodingAuto    = "auto"
	EncodingUTF8    = "utf-8"
	EncodingGB18030 = "gb18030"

	ValidityCatalog  = "catalog"
	ValidityLongTerm = "long_term"
)

// maxValidityYears bounds default_validity "<n>y".
const maxValidityYears = 100

var (
	mappingNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	fieldNameRe   = regexp.MustCompile(`^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$`)
	typeCodeRe    = regexp.MustCompile(`^[0-9A-Z]{18}[0-9]{3}$`)
	validityRe    = regexp.MustCompile(`^([1-9][0-9]{0,2})y$`)
	yamlLineRe    = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownRe = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	yamlTags      = strings.NewReplacer("!!str", "a string", "!!int", "an integer", "!!bool", "a boolean",
		"!!float", "a number", "!!seq", "a list", "!!map", "a mapping", "!!null", "null")
)

// yamlKeys maps the Go type names yaml.v3 puts in "field x not found in
// type T" to the keys allowed there, for messages.
var yamlKeys = func() map[string]string {
	m := map[string]string{}
	for _, v := range []any{Mapping{}, ValueMap{}, license.Party{}} {
		t := reflect.TypeOf(v)
		var keys []string
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			k := f.Tag.Get("yaml")
			if k == "-" {
				continue
			}
			if k == "" {
				k = strings.ToLower(f.Name)
			}
			keys = append(keys, k)
		}
		m[t.String()] = strings.Join(keys, ", ")
	}
	return m
}()

// LoadMapping reads, decodes strictly and checks one mapping file. Unknown
// keys, values of the wrong type and every problem Validate finds are
// refused at once (EINVALID, Details["problems"]), each naming
// file:line and the key (e.g. date_formats[1], columns.holder.code). Name
// defaults to the file's base name without extension.
func LoadMapping(path string) (*Mapping, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "mapping file %s cannot be read", path)
	}
	return ParseMapping(path, raw)
}

// ParseMapping is LoadMapping over bytes; path names the file in messages
// and gives the default name.
func ParseMapping(path string, raw []byte) (*Mapping, error) {
	m := &Mapping{File: path}
	c := &checker{m: m}
	if !m.decode(c, raw) {
		return nil, c.ps.Err("mapping " + path)
	}
	if m.Name == "" {
		base := filepath.Base(path)
		m.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	m.check(c)
	if err := c.ps.Err("mapping " + path); err != nil {
		return nil, err
	}
	return m, nil
}

// LoadMappings loads every *.yaml file of dir (not its subdirectories),
// keyed by Name. Every problem of every file is reported at once; two
// files with the same name are a problem. A directory without mapping
// files gives an empty map.
func LoadMappings(dir string) (map[string]*Mapping, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "mapping directory %s cannot be read", dir)
	}
	out := map[string]*Mapping{}
	var ps licensehub.Problems
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		m, err := LoadMapping(path)
		if err != nil {
			ps = append(ps, problemsOf(err)...)
			continue
		}
		if prev, dup := out[m.Name]; dup {
			ps = append(ps, licensehub.Problem{Field: "name",
				Msg: fmt.Sprintf("%s:%d: name: %q is already the name of %s", path, m.line("name"), m.Name, prev.File)})
			continue
		}
		out[m.Name] = m
	}
	if err := ps.Err("mappings " + dir); err != nil {
		return nil, err
	}
	return out, nil
}

// problemsOf unpacks the problems of an error built by Problems.Err.
func problemsOf(err error) licensehub.Problems {
	var e *licensehub.Error
	if errors.As(err, &e) {
		if msgs, ok := e.Details["problems"].([]string); ok {
			ps := make(licensehub.Problems, len(msgs))
			for i, msg := range msgs {
				ps[i] = licensehub.Problem{Field: e.Field, Msg: msg}
			}
			return ps
		}
	}
	return licensehub.Problems{{Msg: err.Error()}}
}

// Validate checks the mapping and compiles it for Request. It applies the
// defaults (DefaultDateFormats when DateFormats is nil). Every problem is
// reported at once (EINVALID, Details["problems"]), each naming the key
// and, for a mapping read from a file, file:line.
func (m *Mapping) Validate() error {
	c := &checker{m: m}
	m.check(c)
	return c.ps.Err("mapping " + m.where())
}

// BindCatalog checks the mapping against the catalog entry of its license
// type and makes Request give face fields their catalog type: integers
// become int64, booleans bool ("true"/"false", 是/否), dates are parsed
// with the mapping's date formats (and long-term words where the field
// allows long-term). Without it every face field is a string. It also
// refuses face fields the type does not define, required face fields the
// mapping does not give, and a fixed holder code type the type is not
// issued to.
func (m *Mapping) BindCatalog(cat *catalog.Catalog) error {
	if cat == nil {
		return licensehub.FieldError(licensehub.EINVALID, "catalog", "mapping %s: no catalog", m.where())
	}
	t, ok := cat.Type(m.LicenseType)
	c := &checker{m: m}
	if !ok {
		c.add([]any{"license_type"}, "%q is not a license type of the catalog", clip(m.LicenseType))
		return c.ps.Err("mapping " + m.where())
	}
	for _, key := range m.keys() {
		name, isField := strings.CutPrefix(key, KeyFieldsPrefix)
		if _, ok := t.Field(name); isField && !ok {
			c.add(m.keyPath(key), "%s (%s) has no face field %q", t.Name, t.Code, name)
		}
	}
	for _, f := range t.Fields {
		if f.Required && !m.given(KeyFieldsPrefix+f.Name) {
			c.add([]any{"columns"}, "%s requires the face field %s (%s): map columns.%s%s or give it in fixed",
				t.Name, f.Name, f.Label, KeyFieldsPrefix, f.Name)
		}
	}
	if ct, ok := m.Fixed[KeyHolderCodeType]; ok && !t.AllowsHolder(strings.TrimSpace(ct)) {
		c.add([]any{"fixed", KeyHolderCodeType}, "%s is issued to holders with code types %s, not %q",
			t.Name, strings.Join(t.HolderCodeTypes, ", "), clip(ct))
	}
	if err := c.ps.Err("mapping " + m.where()); err != nil {
		return err
	}
	m.fieldTy = t
	return m.Validate()
}

// where names the mapping in messages: its file, else its name.
func (m *Mapping) where() string {
	if m.File != "" {
		return m.File
	}
	if m.Name != "" {
		return m.Name
	}
	return "(unnamed)"
}

// keys lists the keys the mapping gives a value (columns, number_column,
// fixed), sorted.
func (m *Mapping) keys() []string {
	keys := slices.Collect(maps.Keys(m.Columns))
	for k := range m.Fixed {
		if _, dup := m.Columns[k]; !dup {
			keys = append(keys, k)
		}
	}
	if _, dup := m.Columns[KeyNumber]; !dup && m.NumberColumn != "" {
		keys = append(keys, KeyNumber)
	}
	slices.Sort(keys)
	return keys
}

// keyPath is where key is given: columns, fixed or number_column.
func (m *Mapping) keyPath(key string) []any {
	if _, ok := m.Columns[key]; ok {
		return []any{"columns", key}
	}
	if _, ok := m.Fixed[key]; ok {
		return []any{"fixed", key}
	}
	if key == KeyNumber && m.NumberColumn != "" {
		return []any{"number_column"}
	}
	return []any{"columns"}
}

// column is the source column of key ("" when none); number also reads
// number_column.
func (m *Mapping) column(key string) string {
	if c := strings.TrimSpace(m.Columns[key]); c != "" {
		return c
	}
	if key == KeyNumber {
		return strings.TrimSpace(m.NumberColumn)
	}
	return ""
}

// given reports whether a column or a fixed value gives key.
func (m *Mapping) given(key string) bool {
	_, fixed := m.Fixed[key]
	return fixed || m.column(key) != ""
}

// decode parses raw strictly into m, keeping the node tree for lines. It
// reports whether the checks can go on.
func (m *Mapping) decode(c *checker, raw []byte) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		c.fileProblem(0, "empty; a mapping names license_type, authority, columns, ... (see configs/conversion/)")
		return false
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		c.yamlProblems(err)
		return false
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		c.fileProblem(top.Line, "the top level must be a mapping (license_type:, authority:, columns:, ...)")
		return false
	}
	m.top = top
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(m); err != nil {
		c.yamlProblems(err)
		// After unknown keys and type errors yaml.v3 has decoded the rest,
		// so the checks go on; after anything else (a duplicate key
		// leaves the mapping undecoded) they cannot.
		te := (*yaml.TypeError)(nil)
		if !errors.As(err, &te) || slices.ContainsFunc(te.Errors, func(e string) bool { return strings.Contains(e, "already defined") }) {
			return false
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		c.fileProblem(extra.Line, "more than one YAML document (a second ---?); write one mapping per file")
		return false
	}
	return true
}

// line returns the line of the value at path (strings for mapping keys,
// ints for list indexes), or of the deepest node on the way that exists;
// 0 for a Mapping not read from a file.
func (m *Mapping) line(path ...any) int {
	n := m.top
	if n == nil {
		return 0
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		nextLine := 0
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next, nextLine = n.Content[i+1], n.Content[i].Line // the key's line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
				nextLine = next.Line
			}
		}
		if next == nil {
			break
		}
		n, line = next, nextLine
	}
	return line
}

// checker collects the problems of one mapping.
type checker struct {
	m  *Mapping
	ps licensehub.Problems
}

// add records a problem at path (see Mapping.line), rendered as the key
// (columns.holder.code, date_formats[1]).
func (c *checker) add(path []any, format string, args ...any) {
	line := c.m.line(path...)
	if c.m.badLine[line] {
		return // the value did not decode: that is already reported
	}
	field := renderPath(path)
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	c.ps = append(c.ps, licensehub.Problem{Field: field, Msg: c.place(line) + msg})
}

func (c *checker) fileProblem(line int, format string, args ...any) {
	c.ps = append(c.ps, licensehub.Problem{Msg: c.place(line) + fmt.Sprintf(format, args...)})
}

// place is "file:line: ", "file: " or "" as far as they are known.
func (c *checker) place(line int) string {
	switch {
	case c.m.File == "":
		return ""
	case line > 0:
		return fmt.Sprintf("%s:%d: ", c.m.File, line)
	}
	return c.m.File + ": "
}

func renderPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

// yamlProblems reports yaml.v3's errors with file:line, naming the keys
// allowed where an unknown key is found.
func (c *checker) yamlProblems(err error) {
	msgs := []string{err.Error()}
	if te := (*yaml.TypeError)(nil); errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, msg := range msgs {
		msg = strings.TrimPrefix(msg, "yaml: ")
		sub := yamlLineRe.FindStringSubmatch(msg)
		if sub == nil {
			c.fileProblem(0, "%s", yamlTags.Replace(msg))
			continue
		}
		line, _ := strconv.Atoi(sub[1])
		text := sub[2]
		if u := yamlUnknownRe.FindStringSubmatch(text); u != nil {
			text = fmt.Sprintf("unknown key %s; the keys here are %s", u[1], yamlKeys[u[2]])
		} else {
			text = yamlTags.Replace(text)
			if c.m.badLine == nil {
				c.m.badLine = map[int]bool{}
			}
			c.m.badLine[line] = true
		}
		c.fileProblem(line, "%s", text)
	}
}

// check validates m, applies the defaults and, without problems, compiles
// the plan.
func (m *Mapping) check(c *checker) {
	before := len(c.ps)
	if m.Name == "" {
		c.add([]any{"name"}, "required for a mapping not read from a file")
	} else if !mappingNameRe.MatchString(m.Name) {
		c.add([]any{"name"}, "%q must be 1..64 of [A-Za-z0-9._-], starting with a letter or digit", clip(m.Name))
	}
	switch lt := m.LicenseType; {
	case lt == "":
		c.add([]any{"license_type"}, "required: the catalog type code (21 characters, e.g. 11100000000013338W011)")
	case !typeCodeRe.MatchString(lt) || ident.ValidateCreditCode(lt[:ident.CreditCodeLen]) != nil:
		c.add([]any{"license_type"}, "%q is not a type code: the defining authority's unified social credit code and 3 digits", clip(lt))
	}
	if strings.TrimSpace(m.Authority.Name) == "" {
		c.add([]any{"authority", "name"}, "required: the issuing authority's name as printed")
	}
	if m.Authority.Code == "" {
		c.add([]any{"authority", "code"}, "required: the issuing authority's unified social credit code")
	} else if err := ident.ValidateCreditCode(m.Authority.Code); err != nil {
		c.add([]any{"authority", "code"}, "%q is not a unified social credit code: %s", clip(m.Authority.Code), licensehub.Message(err))
	}
	if m.AreaCode != "" && !isAreaCode(m.AreaCode) {
		c.add([]any{"area_code"}, "%q is not an area code (6 digits, GB/T 2260)", clip(m.AreaCode))
	}
	if m.AreaCode == "" && !m.given(KeyAreaCode) {
		c.add([]any{"area_code"}, "required: a default area code (6 digits, GB/T 2260) or columns.area_code")
	}
	if !slices.Contains([]string{"", FormatCSV, FormatXLSX, FormatJSONL}, m.Format) {
		c.add([]any{"format"}, "%q is not a format; use csv, xlsx or jsonl (or leave it out: from the file name)", clip(m.Format))
	}
	if !slices.Contains([]string{"", EncodingAuto, EncodingUTF8, EncodingGB18030}, m.Encoding) {
		c.add([]any{"encoding"}, "%q is not an encoding; use auto, utf-8 or gb18030 (GBK files are gb18030)", clip(m.Encoding))
	}
	if _, _, ok := parseValidity(m.DefaultValidity); !ok {
		c.add([]any{"default_validity"}, "%q is not catalog, long_term or a number of years like 5y (1..%d)", clip(m.DefaultValidity), maxValidityYears)
	}
	m.checkColumns(c)
	if m.DateFormats == nil {
		m.DateFormats = slices.Clone(DefaultDateFormats)
	}
	if len(m.DateFormats) == 0 {
		c.add([]any{"date_formats"}, "empty; list Go layouts such as \"2006-01-02\" or leave the key out for the defaults")
	}
	for i, f := range m.DateFormats {
		if !layoutGivesDate(f) {
			c.add([]any{"date_formats", i}, "%q is not a date layout: write the reference date 2006-01-02 as the dates appear (2006 the year, 1 or 01 the month, 2 or 02 the day, e.g. 2006年1月2日)", clip(f))
		}
	}
	if len(c.ps) == before {
		m.plan = m.compile()
	}
}

// checkColumns checks columns, number_column, fixed and value_maps.
func (m *Mapping) checkColumns(c *checker) {
	for _, k := range slices.Sorted(maps.Keys(m.Columns)) {
		if !isColumnKey(k) {
			c.add([]any{"columns", k}, "unknown key; keys are %s and fields.<face field>", strings.Join(columnKeys, ", "))
		} else if strings.TrimSpace(m.Columns[k]) == "" {
			c.add([]any{"columns", k}, "empty column name; name the column as the header writes it, or leave the key out")
		}
	}
	if nc, col := strings.TrimSpace(m.NumberColumn), strings.TrimSpace(m.Columns[KeyNumber]); nc != "" && col != "" && nc != col {
		c.add([]any{"number_column"}, "%q differs from columns.number %q; give one of them", clip(nc), clip(col))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Fixed)) {
		switch {
		case !isColumnKey(k):
			c.add([]any{"fixed", k}, "unknown key; keys are %s and fields.<face field>", strings.Join(columnKeys, ", "))
		case slices.Contains(requiredKeys, k):
			c.add([]any{"fixed", k}, "differs from license to license; map it in columns")
		case m.column(k) != "":
			c.add([]any{"fixed", k}, "also given in columns; a field comes from a column or is fixed, not both")
		}
	}
	for _, k := range requiredKeys {
		if _, fixed := m.Fixed[k]; !fixed && m.column(k) == "" {
			hint := ""
			if k == KeyNumber {
				hint = " (or number_column)"
			}
			c.add([]any{"columns"}, "%s is required: name the column that holds it%s", k, hint)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.ValueMaps)) {
		vm := m.ValueMaps[k]
		switch {
		case !isColumnKey(k):
			c.add([]any{"value_maps", k}, "unknown key; value maps are keyed like columns (%s, fields.<face field>)", strings.Join(columnKeys, ", "))
		case !m.given(k):
			c.add([]any{"value_maps", k}, "no column or fixed value gives %s, so the map would never apply", k)
		case len(vm.Values) == 0:
			c.add([]any{"value_maps", k}, "values: list at least one source value and its replacement")
		}
		for _, from := range slices.Sorted(maps.Keys(vm.Values)) {
			if cleanValue(from) != from || from == "" {
				c.add([]any{"value_maps", k, "values", from}, "a source value is matched trimmed and cannot be empty; write %q", cleanValue(from))
			}
		}
	}
}

// isColumnKey reports whether k is a key of columns, fixed and value_maps.
func isColumnKey(k string) bool {
	if name, ok := strings.CutPrefix(k, KeyFieldsPrefix); ok {
		return len(name) <= 64 && fieldNameRe.MatchString(name)
	}
	return slices.Contains(columnKeys, k)
}

func isAreaCode(s string) bool {
	return len(s) == 6 && strings.Trim(s, "0123456789") == ""
}

// parseValidity reads default_validity: years > 0 for "<n>y", longTerm
// for long_term, neither for catalog or "".
func parseValidity(s string) (years int, longTerm, ok bool) {
	switch s {
	case "", ValidityCatalog:
		return 0, false, true
	case ValidityLongTerm:
		return 0, true, true
	}
	sub := validityRe.FindStringSubmatch(s)
	if sub == nil {
		return 0, false, false
	}
	n, _ := strconv.Atoi(sub[1])
	return n, false, n <= maxValidityYears
}

// layoutGivesDate reports whether a Go layout reads back year, month and
// day: two dates formatted with it parse back to themselves.
func layoutGivesDate(layout string) bool {
	if strings.TrimSpace(layout) == "" {
		return false
	}
	for _, d := range []time.Time{time.Date(2015, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)} {
		t, err := time.Parse(layout, d.Format(layout))
		if err != nil || !t.Equal(d) {
			return false
		}
	}
	return true
}

// clip shortens a value echoed in a message (licensehub.Clip).
func clip(s string) string { return licensehub.Clip(s, 40) }
