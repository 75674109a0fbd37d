package lookup

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/licensehub/licensehub"
)

// Matters is the set of service matters (政务服务事项) the hub serves,
// loaded from configs/matters.yaml. Immutable once loaded.
type Matters struct {
	byCode map[string]*Matter
	codes  []string
}

// Matter is one service matter and the materials it requires.
type Matter struct {
	Code      string     // 事项编码, e.g. 330100-000-XK-00123
	Name      string     // 事项名称
	Materials []Material // in file order
}

// Material is one material a matter requires: either a license type from
// the library (LicenseType set) or a certificate from an adapter
// (Certificate set).
type Material struct {
	Name        string // e.g. 营业执照; unique within the matter
	LicenseType string // 21-character license type code
	Certificate string // certificate kind, e.g. identity, tax_registration
	// Fields are the face fields (licenses) or data fields (certificates)
	// the matter may see; every other field is left out of a view.
	Fields []string
	// Params (certificates only): certificate parameter → its source.
	Params map[string]ParamSource
	// Optional materials are looked up but never listed as missing.
	Optional bool
}

// IsLicense reports whether the material is a license type.
func (m Material) IsLicense() bool { return m.LicenseType != "" }

// ParamSource says where a certificate parameter's value comes from.
type ParamSource struct {
	Kind  string // ParamHolder, ParamHolderName, ParamFixed, ParamInput
	Value string // the fixed value (ParamFixed) or the input's name (ParamInput)
}

// Parameter sources, as written in matters.yaml.
const (
	ParamHolder     = "holder"      // the applicant's holder code
	ParamHolderName = "holder_name" // the applicant's name
	ParamFixed      = "fixed"       // "=VALUE": a value fixed in the file
	ParamInput      = "input"       // "input:NAME": given by the approval system with the request
)

// Matter returns the matter with code.
func (ms *Matters) Matter(code string) (*Matter, bool) {
	if ms == nil {
		return nil, false
	}
	m, ok := ms.byCode[code]
	return m, ok
}

// Codes lists every matter code, sorted.
func (ms *Matters) Codes() []string {
	if ms == nil {
		return nil
	}
	return slices.Clone(ms.codes)
}

// LicenseTypes lists the license types the matter needs, in file order.
func (m *Matter) LicenseTypes() []string {
	var out []string
	for _, mat := range m.Materials {
		if mat.IsLicense() && !slices.Contains(out, mat.LicenseType) {
			out = append(out, mat.LicenseType)
		}
	}
	return out
}

// materialFor returns the license material of typeCode.
func (m *Matter) materialFor(typeCode string) (Material, bool) {
	for _, mat := range m.Materials {
		if mat.LicenseType == typeCode {
			return mat, true
		}
	}
	return Material{}, false
}

// NewMatters builds Matters from values (tests, or a wiring that does not
// read a file); every matter is checked like LoadMatters does.
func NewMatters(list []Matter) (*Matters, error) {
	ms := &Matters{byCode: map[string]*Matter{}}
	var ps licensehub.Problems
	for i := range list {
		m := list[i]
		where := fmt.Sprintf("matters[%d]", i)
		for _, p := range checkMatter(&m, where) {
			ps = append(ps, licensehub.Problem{Field: where, Msg: where + ": " + p})
		}
		if _, dup := ms.byCode[m.Code]; dup {
			ps = append(ps, licensehub.Problem{Field: where + ".code", Msg: fmt.Sprintf("%s: matter %s is defined twice", where, m.Code)})
		}
		ms.byCode[m.Code] = &m
		ms.codes = append(ms.codes, m.Code)
	}
	if err := ps.Err("matters"); err != nil {
		return nil, err
	}
	sort.Strings(ms.codes)
	return ms, nil
}

var (
	matterCodeRe  = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]{0,63}$`)
	typeCodeRe    = regexp.MustCompile(`^[0-9A-Z]{18}[0-9]{3}$`)
	nameRe        = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	fieldNameRe   = regexp.MustCompile(`^[A-Za-z0-9_-]+(\[\])?(\.[A-Za-z0-9_-]+)?$`)
	certificateRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// checkMatter returns the problems of one matter (messages without place).
func checkMatter(m *Matter, _ string) []string {
	var out []string
	if !matterCodeRe.MatchString(m.Code) {
		out = append(out, fmt.Sprintf("code %q must be 1..64 of [0-9A-Za-z-]", m.Code))
	}
	if strings.TrimSpace(m.Name) == "" {
		out = append(out, "name is required")
	}
	if len(m.Materials) == 0 {
		out = append(out, "materials: list at least one material")
	}
	seen := map[string]bool{}
	for j, mat := range m.Materials {
		for _, p := range checkMaterial(mat) {
			out = append(out, fmt.Sprintf("materials[%d]: %s", j, p))
		}
		if seen[mat.Name] {
			out = append(out, fmt.Sprintf("materials[%d].name: %q is listed twice", j, mat.Name))
		}
		seen[mat.Name] = true
	}
	return out
}

func checkMaterial(mat Material) []string {
	var out []string
	if strings.TrimSpace(mat.Name) == "" {
		out = append(out, "name is required")
	}
	switch {
	case mat.LicenseType != "" && mat.Certificate != "":
		out = append(out, "give either license_type or certificate, not both")
	case mat.LicenseType == "" && mat.Certificate == "":
		out = append(out, "give license_type (a license from the library) or certificate (a certificate kind)")
	case mat.LicenseType != "" && !typeCodeRe.MatchString(mat.LicenseType):
		out = append(out, fmt.Sprintf("license_type %q is not a 21-character type code", mat.LicenseType))
	case mat.Certificate != "" && !certificateRe.MatchString(mat.Certificate):
		out = append(out, fmt.Sprintf("certificate %q is not a certificate kind name", mat.Certificate))
	}
	if len(mat.Fields) == 0 {
		out = append(out, "fields: list the fields the matter may see")
	}
	for k, f := range mat.Fields {
		if !fieldNameRe.MatchString(f) {
			out = append(out, fmt.Sprintf("fields[%d] %q is not a field name", k, f))
		}
		if slices.Index(mat.Fields, f) != k {
			out = append(out, fmt.Sprintf("fields[%d] %q is listed twice", k, f))
		}
	}
	if mat.LicenseType != "" && len(mat.Params) > 0 {
		out = append(out, "params are for certificates only")
	}
	if mat.Certificate != "" && len(mat.Params) == 0 {
		out = append(out, "params: a certificate needs its parameters (e.g. id_number: holder)")
	}
	names := make([]string, 0, len(mat.Params))
	for n := range mat.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		src := mat.Params[n]
		if !nameRe.MatchString(n) {
			out = append(out, fmt.Sprintf("params.%s: not a parameter name", n))
		}
		switch src.Kind {
		case ParamHolder, ParamHolderName:
		case ParamFixed:
			if src.Value == "" {
				out = append(out, fmt.Sprintf("params.%s: a fixed value (=VALUE) cannot be empty", n))
			}
		case ParamInput:
			if !nameRe.MatchString(src.Value) {
				out = append(out, fmt.Sprintf("params.%s: input name %q must be 1..64 of [A-Za-z0-9_-]", n, src.Value))
			}
		default:
			out = append(out, fmt.Sprintf("params.%s: source must be holder, holder_name, =VALUE or input:NAME", n))
		}
	}
	return out
}

// ParseParamSource reads a parameter source as written in matters.yaml:
// holder, holder_name, =VALUE or input:NAME.
func ParseParamSource(s string) (ParamSource, bool) {
	switch {
	case s == ParamHolder || s == ParamHolderName:
		return ParamSource{Kind: s}, true
	case strings.HasPrefix(s, "="):
		return ParamSource{Kind: ParamFixed, Value: s[1:]}, true
	case strings.HasPrefix(s, "input:"):
		return ParamSource{Kind: ParamInput, Value: strings.TrimPrefix(s, "input:")}, true
	}
	return ParamSource{}, false
}

// LoadMatters reads and checks a matters file. Unknown keys, wrong types,
// missing or malformed values are refused; every problem names
// file:line and the field (e.g. matters[1].materials[0].license_type), and
// all of them are reported at once (EINVALID, Details["problems"]).
func LoadMatters(path string) (*Matters, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "matters file %s cannot be read", path)
	}
	return ParseMatters(path, raw)
}

// ParseMatters is LoadMatters over bytes; path names the file in messages.
func ParseMatters(path string, raw []byte) (*Matters, error) {
	l := &mattersLoader{path: path}
	list := l.parse(raw)
	if err := l.ps.Err("matters " + path); err != nil {
		return nil, err
	}
	ms := &Matters{byCode: map[string]*Matter{}}
	for i := range list {
		m := list[i]
		ms.byCode[m.Code] = &m
		ms.codes = append(ms.codes, m.Code)
	}
	sort.Strings(ms.codes)
	return ms, nil
}

type mattersLoader struct {
	path string
	ps   licensehub.Problems
}

func (l *mattersLoader) problem(line int, field, format string, args ...any) {
	where := l.path
	if line > 0 {
		where = fmt.Sprintf("%s:%d", l.path, line)
	}
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	l.ps = append(l.ps, licensehub.Problem{Field: field, Msg: where + ": " + msg})
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

func (l *mattersLoader) parse(raw []byte) []Matter {
	if len(bytes.TrimSpace(raw)) == 0 {
		l.problem(0, "", "empty; want matters: with one entry per service matter")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		line := 0
		if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &line)
		}
		l.problem(line, "", "not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.problem(extra.Line, "", "more than one YAML document; the matters file is one document")
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		l.problem(top.Line, "", "the top level must be a mapping with matters:")
		return nil
	}
	var seq *yaml.Node
	l.mapping(top, "", map[string]func(k, v *yaml.Node){
		"matters": func(_, v *yaml.Node) { seq = v },
	})
	if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 {
		line := top.Line
		if seq != nil {
			line = seq.Line
		}
		l.problem(line, "matters", "missing or empty; list at least one service matter")
		return nil
	}
	var out []Matter
	lines := map[string]int{}
	for i, n := range seq.Content {
		field := fmt.Sprintf("matters[%d]", i)
		m, ok := l.matter(n, field)
		if !ok {
			continue
		}
		if prev, dup := lines[m.Code]; dup {
			l.problem(n.Line, field+".code", "matter %s is already defined at line %d", m.Code, prev)
			continue
		}
		lines[m.Code] = n.Line
		out = append(out, m)
	}
	return out
}

// mapping walks a mapping node, calling the handler of each known key and
// reporting unknown and duplicate keys.
func (l *mattersLoader) mapping(n *yaml.Node, field string, keys map[string]func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := join(field, k.Value)
		h, ok := keys[k.Value]
		if !ok {
			known := make([]string, 0, len(keys))
			for name := range keys {
				known = append(known, name)
			}
			sort.Strings(known)
			l.problem(k.Line, f, "unknown key (known: %s)", strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			l.problem(k.Line, f, "given twice")
			continue
		}
		seen[k.Value] = true
		h(k, v)
	}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (l *mattersLoader) str(v *yaml.Node, field string, dst *string) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		l.problem(v.Line, field, "want a string")
		return
	}
	*dst = v.Value
}

func (l *mattersLoader) matter(n *yaml.Node, field string) (Matter, bool) {
	var m Matter
	if n.Kind != yaml.MappingNode {
		l.problem(n.Line, field, "want a mapping (code:, name:, materials:)")
		return m, false
	}
	before := len(l.ps)
	var codeLine, nameLine, matLine int
	l.mapping(n, field, map[string]func(k, v *yaml.Node){
		"code": func(k, v *yaml.Node) { codeLine = k.Line; l.str(v, field+".code", &m.Code) },
		"name": func(k, v *yaml.Node) { nameLine = k.Line; l.str(v, field+".name", &m.Name) },
		"materials": func(k, v *yaml.Node) {
			matLine = k.Line
			if v.Kind != yaml.SequenceNode {
				l.problem(v.Line, field+".materials", "want a list of materials")
				return
			}
			names := map[string]int{}
			for j, mn := range v.Content {
				mf := fmt.Sprintf("%s.materials[%d]", field, j)
				mat, ok := l.material(mn, mf)
				if !ok {
					continue
				}
				if prev, dup := names[mat.Name]; dup {
					l.problem(mn.Line, mf+".name", "%q is already listed at line %d", mat.Name, prev)
					continue
				}
				names[mat.Name] = mn.Line
				m.Materials = append(m.Materials, mat)
			}
		},
	})
	if codeLine == 0 {
		l.problem(n.Line, field+".code", "required")
	} else if !matterCodeRe.MatchString(m.Code) {
		l.problem(codeLine, field+".code", "%q must be 1..64 of [0-9A-Za-z-]", m.Code)
	}
	if nameLine == 0 || strings.TrimSpace(m.Name) == "" {
		l.problem(max(nameLine, n.Line), field+".name", "required")
	}
	if matLine == 0 {
		l.problem(n.Line, field+".materials", "required: list at least one material")
	} else if len(m.Materials) == 0 && len(l.ps) == before {
		l.problem(matLine, field+".materials", "list at least one material")
	}
	return m, len(l.ps) == before
}

func (l *mattersLoader) material(n *yaml.Node, field string) (Material, bool) {
	var mat Material
	if n.Kind != yaml.MappingNode {
		l.problem(n.Line, field, "want a mapping (name:, license_type: or certificate:, fields:)")
		return mat, false
	}
	before := len(l.ps)
	lines := map[string]int{}
	l.mapping(n, field, map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) { lines["name"] = k.Line; l.str(v, field+".name", &mat.Name) },
		"license_type": func(k, v *yaml.Node) {
			lines["license_type"] = k.Line
			l.str(v, field+".license_type", &mat.LicenseType)
		},
		"certificate": func(k, v *yaml.Node) { lines["certificate"] = k.Line; l.str(v, field+".certificate", &mat.Certificate) },
		"optional": func(k, v *yaml.Node) {
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				l.problem(v.Line, field+".optional", "want true or false")
				return
			}
			mat.Optional = v.Value == "true"
		},
		"fields": func(k, v *yaml.Node) {
			lines["fields"] = k.Line
			if v.Kind != yaml.SequenceNode {
				l.problem(v.Line, field+".fields", "want a list of field names")
				return
			}
			for i, fn := range v.Content {
				ff := fmt.Sprintf("%s.fields[%d]", field, i)
				var s string
				l.str(fn, ff, &s)
				switch {
				case s == "":
				case !fieldNameRe.MatchString(s):
					l.problem(fn.Line, ff, "%q is not a field name", s)
				case slices.Contains(mat.Fields, s):
					l.problem(fn.Line, ff, "%q is listed twice", s)
				default:
					mat.Fields = append(mat.Fields, s)
				}
			}
		},
		"params": func(k, v *yaml.Node) {
			lines["params"] = k.Line
			if v.Kind != yaml.MappingNode {
				l.problem(v.Line, field+".params", "want a mapping of parameter: source")
				return
			}
			mat.Params = map[string]ParamSource{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				pk, pv := v.Content[i], v.Content[i+1]
				pf := field + ".params." + pk.Value
				if !nameRe.MatchString(pk.Value) {
					l.problem(pk.Line, pf, "not a parameter name")
					continue
				}
				if _, dup := mat.Params[pk.Value]; dup {
					l.problem(pk.Line, pf, "given twice")
					continue
				}
				var s string
				l.str(pv, pf, &s)
				src, ok := ParseParamSource(s)
				if !ok {
					l.problem(pv.Line, pf, "source %q must be holder, holder_name, =VALUE or input:NAME", s)
					continue
				}
				mat.Params[pk.Value] = src
			}
		},
	})
	if len(l.ps) != before {
		return mat, false
	}
	for _, p := range checkMaterial(mat) {
		key := strings.SplitN(p, " ", 2)[0]
		key = strings.TrimSuffix(strings.SplitN(key, ":", 2)[0], ":")
		line := n.Line
		if ln, ok := lines[strings.SplitN(key, "[", 2)[0]]; ok {
			line = ln
		}
		l.problem(line, field, "%s", p)
	}
	return mat, len(l.ps) == before
}
