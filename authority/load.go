package authority

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
)

// MaxNameLen bounds a registered name, in characters.
const MaxNameLen = 100

// entryKeys are the keys of an entry, in the order messages list them.
var entryKeys = []string{"code", "name", "area_code", "level", "parent"}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Load reads the registry at path and checks it. Any problem stops
// loading: the error (licensehub.EINVALID) lists every problem, each
// naming file:line, the entry (authorities[2].area_code) and the
// authority's code; Details["problems"] holds them as a []string. The
// file is refused when:
//
//   - it is not one YAML document whose top level is a mapping with a
//     non-empty authorities: list (and no other key);
//   - an entry has a key other than code, name, area_code, level and
//     parent, or one of them twice;
//   - code is missing, is not a unified social credit code, or is listed
//     twice;
//   - name is missing, longer than MaxNameLen characters, has leading or
//     trailing white space or a control or format character, or is the
//     name of another entry;
//   - level is missing or not a level (national, provincial, city,
//     county, township);
//   - area_code is not 6 digits, is given for a national authority or
//     missing for any other, or does not fit the level: PP0000 for a
//     provincial authority, PPCC00 for a city, PPCCDD (CC not 00) for a
//     county or township;
//   - parent is not a unified social credit code, is the entry itself, is
//     not in the file, is not at a higher level, or its area does not
//     hold the entry's area.
func Load(path string) (*Registry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &licensehub.Error{Code: licensehub.EINVALID, Field: "authorities",
			Message: fmt.Sprintf("authority registry %s cannot be read: %s", path, readProblem(err)), Err: err}
	}
	return Parse(path, raw)
}

// readProblem says why a file cannot be read, without Go's wording.
func readProblem(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse is Load over the content of a file; path names it in messages.
func Parse(path string, raw []byte) (*Registry, error) {
	d := &doc{path: path}
	entries := d.parse(raw)
	reg := &Registry{path: path, byCode: map[string]*Authority{}}
	if len(d.ps) == 0 {
		d.crossCheck(entries)
	}
	if err := d.ps.Err("authority registry " + path); err != nil {
		return nil, err
	}
	for _, e := range entries {
		reg.byCode[e.a.Code] = e.a
		reg.sorted = append(reg.sorted, e.a)
	}
	slices.SortFunc(reg.sorted, func(a, b *Authority) int { return strings.Compare(a.Code, b.Code) })
	return reg, nil
}

// doc is a registry file being checked.
type doc struct {
	path string
	ps   licensehub.Problems
}

// entry is one parsed authorities[i] with the lines of its keys.
type entry struct {
	i     int
	a     *Authority
	node  *yaml.Node
	lines map[string]int // key → line of the key
}

func (e *entry) line(key string) int {
	if l, ok := e.lines[key]; ok {
		return l
	}
	return e.node.Line
}

// problem records a problem at line; field is the path in the file
// (authorities[1].code), code the authority's code for the reader.
func (d *doc) problem(line int, field, code, format string, args ...any) {
	where := d.path
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	if field != "" {
		where += ": " + field
		if code != "" {
			where += " (" + licensehub.Clip(code, 32) + ")"
		}
	}
	d.ps = append(d.ps, licensehub.Problem{Field: field, Msg: where + ": " + fmt.Sprintf(format, args...)})
}

func (d *doc) bad(e *entry, key, format string, args ...any) {
	d.problem(e.line(key), fmt.Sprintf("authorities[%d].%s", e.i, key), e.a.Code, format, args...)
}

// parse reads the YAML and checks each entry on its own.
func (d *doc) parse(raw []byte) []*entry {
	if len(bytes.TrimSpace(raw)) == 0 {
		d.problem(0, "", "", "empty; list the issuing authorities under authorities: (code, name, area_code, level)")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		line, msg := 0, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		d.problem(line, "", "", "not valid YAML: %s", msg)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		d.problem(extra.Line, "", "", "more than one YAML document (a second ---?); the registry is one document")
		return nil
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		d.problem(top.Line, "", "", "the top level must be a mapping with authorities:")
		return nil
	}
	var list *yaml.Node
	d.mapping(top, "", "", []string{"authorities"}, func(key string, _, v *yaml.Node) { list = v })
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		line := top.Line
		if list != nil {
			line = list.Line
		}
		d.problem(line, "authorities", "", "missing or empty; list at least one issuing authority")
		return nil
	}
	var out []*entry
	for i, n := range list.Content {
		if e := d.entry(i, n); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// mapping calls set for each key of mapping n, reporting unknown and
// repeated keys (field is n's path, code the entry's code).
func (d *doc) mapping(n *yaml.Node, field, code string, known []string, set func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := k.Value
		if field != "" {
			f = field + "." + k.Value
		}
		switch prev, dup := seen[k.Value]; {
		case !slices.Contains(known, k.Value):
			d.problem(k.Line, f, code, "unknown key; the keys here are %s", strings.Join(known, ", "))
		case dup:
			d.problem(k.Line, f, code, "given twice (first at line %d)", prev)
		default:
			seen[k.Value] = k.Line
			set(k.Value, k, v)
		}
	}
}

// entry reads authorities[i] and checks what can be checked within it;
// nil when it has a problem.
func (d *doc) entry(i int, n *yaml.Node) *entry {
	field := fmt.Sprintf("authorities[%d]", i)
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, field, "", "want a mapping (code:, name:, area_code:, level:)")
		return nil
	}
	before := len(d.ps)
	e := &entry{i: i, a: &Authority{}, node: n, lines: map[string]int{}}
	if c := valueOf(n, "code"); c != nil && c.Kind == yaml.ScalarNode {
		e.a.Code = c.Value // for messages about the other keys
	}
	values := map[string]string{}
	d.mapping(n, field, e.a.Code, entryKeys, func(key string, k, v *yaml.Node) {
		e.lines[key] = k.Line
		switch {
		case v.Kind != yaml.ScalarNode:
			d.bad(e, key, "want a single value, not a list or mapping")
		case v.Tag == "!!null":
			d.bad(e, key, "empty")
		case v.Tag != "!!str" && key != "area_code":
			// area_code: 430100 unquoted is an integer to YAML but the
			// digits are all there; anything else must be a string.
			d.bad(e, key, "want a string, not %s", tagName(v.Tag))
		default:
			values[key] = v.Value
		}
	})
	if len(d.ps) > before {
		return nil
	}
	a := e.a
	a.Name, a.AreaCode, a.Level, a.Parent = values["name"], values["area_code"], catalog.Level(values["level"]), values["parent"]

	switch err := ident.ValidateCreditCode(a.Code); {
	case a.Code == "":
		d.bad(e, "code", "missing; write the authority's unified social credit code (18 characters)")
	case err != nil:
		d.bad(e, "code", "%q is not a unified social credit code: %s", licensehub.Clip(a.Code, 32), creditCodeProblem(a.Code, err))
	}
	switch name := a.Name; {
	case strings.TrimSpace(name) == "":
		d.bad(e, "name", "missing; write the authority's name as its licenses print it")
	case utf8.RuneCountInString(name) > MaxNameLen:
		d.bad(e, "name", "%d characters; at most %d", utf8.RuneCountInString(name), MaxNameLen)
	case strings.TrimSpace(name) != name:
		d.bad(e, "name", "%q has leading or trailing white space", licensehub.Clip(name, 64))
	default:
		if i := strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(name[i:])
			d.bad(e, "name", "character %d is an invisible control or format character (U+%04X)", utf8.RuneCountInString(name[:i])+1, r)
		}
	}
	levelOK := false
	switch {
	case a.Level == "":
		d.bad(e, "level", "missing; one of %s", levelList())
	case !slices.Contains(catalog.Levels, a.Level):
		d.bad(e, "level", "%q is not a level; levels are %s", licensehub.Clip(string(a.Level), 32), levelList())
	default:
		levelOK = true
	}
	d.checkArea(e, levelOK)
	if a.Parent != "" {
		switch err := ident.ValidateCreditCode(a.Parent); {
		case err != nil:
			d.bad(e, "parent", "%q is not a unified social credit code: %s", licensehub.Clip(a.Parent, 32), creditCodeProblem(a.Parent, err))
		case a.Parent == a.Code:
			d.bad(e, "parent", "is the authority itself")
		}
	}
	if len(d.ps) > before {
		return nil
	}
	return e
}

// checkArea checks area_code against the level (when the level is known).
func (d *doc) checkArea(e *entry, levelOK bool) {
	a := e.a
	_, given := e.lines["area_code"]
	switch {
	case !given && (!levelOK || a.Level != catalog.LevelNational):
		d.bad(e, "area_code", "missing; write the 6-digit code of the authority's area (GB/T 2260), e.g. \"430100\"")
	case !given:
	case a.Level == catalog.LevelNational:
		d.bad(e, "area_code", "a national authority covers the whole country; leave area_code out")
	case !ident.IsAreaCode(a.AreaCode):
		d.bad(e, "area_code", "%q is not an area code: 6 digits (GB/T 2260), e.g. \"430100\"", licensehub.Clip(a.AreaCode, 32))
	case !levelOK:
	case a.Level == catalog.LevelProvincial && a.AreaCode[2:] != "0000":
		d.bad(e, "area_code", "%s is not a province's code (PP0000) but the level is provincial", a.AreaCode)
	case a.Level == catalog.LevelCity && (a.AreaCode[2:4] == "00" || a.AreaCode[4:] != "00"):
		d.bad(e, "area_code", "%s is not a city's code (PPCC00) but the level is city", a.AreaCode)
	case (a.Level == catalog.LevelCounty || a.Level == catalog.LevelTownship) && a.AreaCode[2:4] == "00":
		d.bad(e, "area_code", "%s is a province's code but the level is %s; give the county's code (PPCCDD)", a.AreaCode, a.Level)
	}
}

// crossCheck checks what concerns several entries: unique codes and
// names, parents.
func (d *doc) crossCheck(entries []*entry) {
	byCode, byName := map[string]*entry{}, map[string]*entry{}
	for _, e := range entries {
		if prev, dup := byCode[e.a.Code]; dup {
			d.bad(e, "code", "already listed as authorities[%d] (line %d)", prev.i, prev.line("code"))
			continue
		}
		byCode[e.a.Code] = e
		if prev, dup := byName[e.a.Name]; dup {
			d.bad(e, "name", "%s is already the name of authorities[%d] (%s, line %d)", e.a.Name, prev.i, prev.a.Code, prev.line("name"))
		}
		byName[e.a.Name] = e
	}
	for _, e := range entries {
		a := e.a
		if a.Parent == "" {
			continue
		}
		p, ok := byCode[a.Parent]
		switch {
		case !ok:
			d.bad(e, "parent", "%s is not in the registry; list it, or leave parent out", a.Parent)
		case slices.Index(catalog.Levels, p.a.Level) >= slices.Index(catalog.Levels, a.Level):
			d.bad(e, "parent", "%s (%s) is at level %s, not above this authority's level %s", p.a.Code, p.a.Name, p.a.Level, a.Level)
		case !ident.AreaWithin(p.a.AreaCode, a.AreaCode):
			d.bad(e, "parent", "%s (%s) covers area %s, which does not hold this authority's area %s", p.a.Code, p.a.Name, p.a.AreaCode, a.AreaCode)
		}
	}
}

// creditCodeProblem is ident's message, with the valid code when only the
// check character is wrong.
func creditCodeProblem(code string, err error) string {
	msg := licensehub.Message(err)
	if ident.Rule(err) == ident.RuleCheckDigit && len(code) == ident.CreditCodeLen {
		if c, cerr := ident.CreditCodeCheck(code[:ident.CreditCodeLen-1]); cerr == nil {
			msg += fmt.Sprintf(" (%s%c is the valid code)", code[:ident.CreditCodeLen-1], c)
		}
	}
	return msg
}

// valueOf returns the value node of key in mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == key {
			return m.Content[k+1]
		}
	}
	return nil
}

func tagName(tag string) string {
	switch tag {
	case "!!int":
		return "a number"
	case "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	}
	return "a " + strings.TrimPrefix(tag, "!!")
}

func levelList() string {
	s := make([]string, len(catalog.Levels))
	for i, l := range catalog.Levels {
		s[i] = string(l)
	}
	return strings.Join(s, ", ")
}
