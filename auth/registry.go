package auth

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"
	"gopkg.in/yaml.v3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/ident"
)

// DefaultRegistryPath is where the hub looks for the member registry.
const DefaultRegistryPath = "configs/members.yaml"

// MinSecretLen is the shortest secret the registry accepts, in bytes.
const MinSecretLen = 32

// Limits of a rate_limit entry.
const (
	maxRateRequests = 1_000_000
	maxRatePer      = time.Hour
)

// Registry is the set of member systems, loaded from members.yaml. It is
// immutable; to change it, load a new one (Authenticator.SetRegistry swaps
// it in).
type Registry struct {
	path    string
	byAppID map[string]*Member
	members []*Member // ordered by app ID
}

// Member returns the member with the given app ID.
func (r *Registry) Member(appID string) (*Member, bool) {
	m, ok := r.byAppID[appID]
	return m, ok
}

// Members returns every member, ordered by app ID.
func (r *Registry) Members() []*Member { return slices.Clone(r.members) }

// Path is the file the registry was loaded from.
func (r *Registry) Path() string { return r.path }

// String describes the registry without secrets.
func (r *Registry) String() string {
	return fmt.Sprintf("auth.Registry(%s: %d members)", r.path, len(r.members))
}

// LogValue describes the registry without secrets.
func (r *Registry) LogValue() slog.Value {
	ids := make([]string, len(r.members))
	for i, m := range r.members {
		ids[i] = m.appID
	}
	return slog.GroupValue(slog.String("path", r.path), slog.Any("app_ids", ids))
}

// LoadOption changes how LoadRegistry reads secrets.
type LoadOption func(*loadOptions)

type loadOptions struct {
	allowDemo bool
	lookupEnv func(string) (string, bool)
}

// AllowDemoSecrets accepts "demo:<label>" secrets (see DemoSecret). The hub
// passes it only in demo mode; anywhere else such a secret is refused.
func AllowDemoSecrets() LoadOption { return func(o *loadOptions) { o.allowDemo = true } }

// WithLookupEnv replaces os.LookupEnv for "env:NAME" secrets (tests, or a
// secrets manager that is not the environment).
func WithLookupEnv(lookup func(name string) (string, bool)) LoadOption {
	return func(o *loadOptions) { o.lookupEnv = lookup }
}

// DemoSecret is the secret "demo:<label>" stands for: the 64 ASCII bytes of
// hex(SM3("licensehub demo secret " + label)). Anyone can compute it, which
// is why only demo mode accepts it.
func DemoSecret(label string) []byte {
	sum := sm3.Sum([]byte("licensehub demo secret " + label))
	return []byte(hex.EncodeToString(sum[:]))
}

// LoadRegistry reads the member registry at path (DefaultRegistryPath in
// the hub), refusing with an *licensehub.Error (EINVALID; one line per
// problem, each naming file:line, the member and the field) when:
//
//   - the file is not one YAML document with a non-empty members: list, or
//     has a key the format does not know;
//   - it is writable by others (anyone could add an administrator);
//   - app_id is missing, not [a-z0-9-]{3,64} or used twice;
//   - name or department is missing; roles is empty, or has an unknown or
//     repeated role;
//   - secret is missing, or it or next_secret is shorter than MinSecretLen
//     bytes, has leading or trailing white space, or the two are equal;
//   - "env:NAME" names a variable that is unset or empty, is not a variable
//     name, or starts with HUB_ (those configure the hub itself);
//   - "demo:LABEL" is used without AllowDemoSecrets;
//   - a literal secret sits in a file that group or others can read (not
//     checked on Windows);
//   - a grant has no operations, an unknown one, or one that none of the
//     member's roles allows; a license type that is not a 21-character
//     type code; an authority that is not a unified social credit code; a
//     matter code outside [0-9A-Za-z-]{1,64};
//   - rate_limit.requests is outside 1..1000000 or rate_limit.per is not a
//     whole number of seconds in 1s..1h.
//
// Messages never contain secrets.
func LoadRegistry(path string, opts ...LoadOption) (*Registry, error) {
	o := loadOptions{lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &licensehub.Error{Code: licensehub.EINVALID, Field: "members",
				Message: fmt.Sprintf("no member registry at %s", path), Err: err}
		}
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "open member registry %s", path)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "stat member registry %s", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, licensehub.Errorf(licensehub.EINVALID, "member registry %s is not a regular file", path)
	}
	perm := fi.Mode().Perm()
	if runtime.GOOS == "windows" {
		perm = 0o600 // Windows has no such mode bits; ACLs are the operator's business
	}
	if perm&0o002 != 0 {
		return nil, licensehub.Errorf(licensehub.EINVALID,
			"member registry %s is writable by others (mode %04o): anyone could add a member; chmod o-w it", path, perm)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "read member registry %s", path)
	}
	return parseRegistry(path, raw, perm, &o)
}

// ---------------------------------------------------------------------
// members.yaml

type registryFile struct {
	Members []memberEntry `yaml:"members"`
}

type memberEntry struct {
	AppID      string          `yaml:"app_id"`
	Name       string          `yaml:"name"`
	Department string          `yaml:"department"`
	Roles      []string        `yaml:"roles"`
	Secret     string          `yaml:"secret"`
	NextSecret string          `yaml:"next_secret"`
	Grants     []grantEntry    `yaml:"grants"`
	RateLimit  *rateLimitEntry `yaml:"rate_limit"`
}

type grantEntry struct {
	Operations   []string `yaml:"operations"`
	LicenseTypes []string `yaml:"license_types"`
	Authorities  []string `yaml:"authorities"`
	Matters      []string `yaml:"matters"`
}

type rateLimitEntry struct {
	Requests int    `yaml:"requests"`
	Per      string `yaml:"per"`
}

var (
	appIDPattern   = regexp.MustCompile(`^[a-z0-9-]{3,64}$`)
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	labelPattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	matterPattern  = regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)
	yamlLinePrefix = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownKey = regexp.MustCompile(`^line \d+: field (\S+) not found in type`)
)

// registryDoc is members.yaml being checked: the strict decode and the node
// tree, for line numbers.
type registryDoc struct {
	path    string
	perm    fs.FileMode
	opts    *loadOptions
	file    registryFile
	members *yaml.Node // the members: sequence
	ps      licensehub.Problems
}

// parseRegistry checks raw, the content of path with permissions perm, and
// builds the registry.
func parseRegistry(path string, raw []byte, perm fs.FileMode, o *loadOptions) (*Registry, error) {
	d := &registryDoc{path: path, perm: perm, opts: o}
	if !d.decode(raw) {
		return nil, d.ps.Err("member registry " + path)
	}
	reg := &Registry{path: path, byAppID: make(map[string]*Member, len(d.file.Members))}
	firstIndex := make(map[string]int, len(d.file.Members))
	for i := range d.file.Members {
		e := &d.file.Members[i]
		if j, dup := firstIndex[e.AppID]; dup && e.AppID != "" {
			d.problem(i, e, []any{"app_id"}, "%s is already the app_id of members[%d] (line %d)", e.AppID, j, d.line(j, "app_id"))
			continue
		}
		firstIndex[e.AppID] = i
		if m := d.member(i, e); m != nil {
			reg.byAppID[m.appID] = m
			reg.members = append(reg.members, m)
		}
	}
	if err := d.ps.Err("member registry " + path); err != nil {
		return nil, err
	}
	slices.SortFunc(reg.members, func(a, b *Member) int { return strings.Compare(a.appID, b.appID) })
	return reg, nil
}

// decode decodes raw strictly into d.file and d.members, recording
// problems; it reports whether the checks can go on.
func (d *registryDoc) decode(raw []byte) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		d.fileProblem(0, "empty; want members: with one entry per member system")
		return false
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		d.yamlProblems(nil, err)
		return false
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&d.file); err != nil {
		d.yamlProblems(&root, err)
		return false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		d.fileProblem(extra.Line, "more than one YAML document (a second --- ?); the registry is one document")
		return false
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		d.fileProblem(top.Line, "the top level must be a mapping with members:")
		return false
	}
	d.members = mappingValue(top, "members")
	if d.members == nil || d.members.Kind != yaml.SequenceNode || len(d.members.Content) == 0 {
		line := top.Line
		if d.members != nil {
			line = d.members.Line
		}
		d.fileProblem(line, "members: missing or empty; list at least one member system")
		return false
	}
	ok := true
	for i, n := range d.members.Content {
		if n = resolveAlias(n); n.Kind != yaml.MappingNode {
			d.ps = append(d.ps, licensehub.Problem{Field: fmt.Sprintf("members[%d]", i),
				Msg: fmt.Sprintf("%s:%d: members[%d]: want a mapping (app_id:, name:, ...)", d.path, n.Line, i),
			})
			ok = false
		}
	}
	if ok && len(d.file.Members) != len(d.members.Content) { // cannot happen; never check a partial list
		d.fileProblem(d.members.Line, "members: decoded %d entries from %d items", len(d.file.Members), len(d.members.Content))
		ok = false
	}
	return ok
}

// member checks members[i] and builds it; nil when it has problems.
func (d *registryDoc) member(i int, e *memberEntry) *Member {
	before := len(d.ps)
	bad := func(field []any, format string, args ...any) { d.problem(i, e, field, format, args...) }

	switch {
	case e.AppID == "":
		bad([]any{"app_id"}, "missing")
	case !appIDPattern.MatchString(e.AppID):
		bad([]any{"app_id"}, "%q must be 3 to 64 characters of a-z, 0-9 and '-'", e.AppID)
	}
	if strings.TrimSpace(e.Name) == "" {
		bad([]any{"name"}, "missing; name the member system")
	}
	if strings.TrimSpace(e.Department) == "" {
		bad([]any{"department"}, "missing; name the department that runs the system")
	}

	m := &Member{appID: e.AppID, name: e.Name, department: e.Department, rateLimit: RateLimit{Requests: DefaultRateRequests, Per: DefaultRatePer}}
	if len(e.Roles) == 0 {
		bad([]any{"roles"}, "missing; give at least one of %s", roleList())
	}
	for j, s := range e.Roles {
		r := Role(s)
		switch {
		case !r.Valid():
			bad([]any{"roles", j}, "%q is not a role; roles are %s", s, roleList())
		case slices.Contains(m.roles, r):
			bad([]any{"roles", j}, "%s is listed twice", s)
		default:
			m.roles = append(m.roles, r)
		}
	}

	current := d.secret(i, e, "secret", e.Secret, true)
	next := d.secret(i, e, "next_secret", e.NextSecret, false)
	m.keys = func() (client.Secret, client.Secret) { return current, next }
	if current != nil && next != nil && hmac.Equal(current, next) {
		bad([]any{"next_secret"}, "is the same as secret; leave next_secret empty when not rotating")
	}

	rolesValid := len(m.roles) == len(e.Roles)
	for j, g := range e.Grants {
		m.grants = append(m.grants, d.grant(i, e, j, g, m.roles, rolesValid))
	}

	if rl := e.RateLimit; rl != nil {
		switch {
		case rl.Requests < 1 || rl.Requests > maxRateRequests:
			bad([]any{"rate_limit", "requests"}, "%d is outside 1..%d", rl.Requests, maxRateRequests)
		default:
			m.rateLimit.Requests = rl.Requests
		}
		per, err := time.ParseDuration(strings.TrimSpace(rl.Per))
		switch {
		case rl.Per == "":
			bad([]any{"rate_limit", "per"}, "missing; write e.g. 1s or 1m")
		case err != nil:
			bad([]any{"rate_limit", "per"}, "%q is not a duration (write e.g. 1s or 1m)", rl.Per)
		case per < time.Second || per > maxRatePer || per%time.Second != 0:
			bad([]any{"rate_limit", "per"}, "%s must be a whole number of seconds from 1s to %s", rl.Per, maxRatePer)
		default:
			m.rateLimit.Per = per
		}
	}
	if len(d.ps) > before {
		return nil
	}
	return m
}

// grant checks grants[j] of members[i]. Operations must be allowed by one
// of roles (checked only when the member's roles are all valid, so that a
// bad role is reported once).
func (d *registryDoc) grant(i int, e *memberEntry, j int, g grantEntry, roles []Role, rolesValid bool) Grant {
	bad := func(field []any, format string, args ...any) {
		d.problem(i, e, append([]any{"grants", j}, field...), format, args...)
	}
	if len(g.Operations) == 0 {
		bad([]any{"operations"}, "missing; a grant allows at least one operation")
	}
	for k, op := range g.Operations {
		switch {
		case !KnownOperation(op):
			bad([]any{"operations", k}, "%q is not an operation; operations are %s", op, strings.Join(allOperations, ", "))
		case rolesValid && !slices.ContainsFunc(roles, func(r Role) bool { return r.Allows(op) }):
			bad([]any{"operations", k}, "%s exceeds the member's roles %v (roles that allow it: %s)",
				op, roles, strings.Join(rolesAllowing(op), ", "))
		}
	}
	for k, tc := range g.LicenseTypes {
		if err := validateTypeCode(tc); err != nil {
			bad([]any{"license_types", k}, "%q is not a license type code: %s", tc, err)
		}
	}
	for k, a := range g.Authorities {
		if err := ident.ValidateCreditCode(a); err != nil {
			bad([]any{"authorities", k}, "%q is not a unified social credit code: %s", a, licensehub.Message(err))
		}
	}
	for k, mc := range g.Matters {
		if !matterPattern.MatchString(mc) {
			bad([]any{"matters", k}, "%q is not a service matter code (1 to 64 characters of 0-9, A-Z, a-z and '-')", mc)
		}
	}
	return Grant{
		Operations:   slices.Clone(g.Operations),
		LicenseTypes: slices.Clone(g.LicenseTypes),
		Authorities:  slices.Clone(g.Authorities),
		Matters:      slices.Clone(g.Matters),
	}
}

// validateTypeCode checks a 21-character license type code (证照类型代码):
// the defining authority's unified social credit code and a 3-digit
// sequence.
func validateTypeCode(tc string) error {
	if len(tc) != ident.TypeCodeLen {
		return fmt.Errorf("%d characters, want %d", len(tc), ident.TypeCodeLen)
	}
	if err := ident.ValidateCreditCode(tc[:ident.CreditCodeLen]); err != nil {
		return fmt.Errorf("its first %d characters are not a unified social credit code: %s", ident.CreditCodeLen, licensehub.Message(err))
	}
	for _, c := range tc[ident.CreditCodeLen:] {
		if c < '0' || c > '9' {
			return fmt.Errorf("its last 3 characters must be digits")
		}
	}
	return nil
}

// secret resolves one secret field of members[i]: nil when it is empty
// (a problem when required) or has problems.
func (d *registryDoc) secret(i int, e *memberEntry, field, spec string, required bool) client.Secret {
	bad := func(format string, args ...any) { d.problem(i, e, []any{field}, format, args...) }
	if spec == "" {
		if required {
			bad("missing; write env:NAME to read it from the environment")
		}
		return nil
	}
	var (
		value  []byte
		source string // for messages: where the value came from
	)
	scheme, rest, hasScheme := strings.Cut(spec, ":")
	switch {
	case hasScheme && scheme == "env":
		switch {
		case !envNamePattern.MatchString(rest):
			bad("env:%s: not an environment variable name (letters, digits and '_', not starting with a digit)", licensehub.Clip(rest, 64))
			return nil
		case strings.HasPrefix(rest, "HUB_"):
			bad("env:%s: HUB_* variables configure the hub itself (an unknown one stops it); name the secret's variable otherwise, e.g. LH_SECRET_...", rest)
			return nil
		}
		v, ok := d.opts.lookupEnv(rest)
		if !ok || v == "" {
			state := "is not set"
			if ok {
				state = "is empty"
			}
			bad("environment variable %s %s", rest, state)
			return nil
		}
		value, source = []byte(v), "environment variable "+rest
	case hasScheme && scheme == "demo":
		if !d.opts.allowDemo {
			bad("demo:%s is a demo secret, accepted only in demo mode; use env:NAME", licensehub.Clip(rest, 64))
			return nil
		}
		if !labelPattern.MatchString(rest) {
			bad("demo:%s: the label must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'", licensehub.Clip(rest, 64))
			return nil
		}
		value, source = DemoSecret(rest), "demo:"+rest
	case hasScheme && (strings.EqualFold(scheme, "env") || strings.EqualFold(scheme, "demo")):
		bad("%s: looks like a reference but references are written in lower case (env:NAME, demo:LABEL)", scheme)
		return nil
	default:
		if d.perm&0o077 != 0 {
			bad("a literal secret needs a file that group and others cannot read, but %s has mode %04o; chmod 600 it, or write env:NAME", d.path, d.perm)
			return nil
		}
		value, source = []byte(spec), "the literal secret"
	}
	if len(value) < MinSecretLen {
		bad("%s is %d bytes; a secret needs at least %d (e.g. openssl rand -base64 48)", source, len(value), MinSecretLen)
		return nil
	}
	first, _ := utf8.DecodeRune(value)
	last, _ := utf8.DecodeLastRune(value)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		bad("%s has leading or trailing white space (a stray newline?); a secret is used byte for byte", source)
		return nil
	}
	return client.Secret(value)
}

// ---------------------------------------------------------------------
// problems and line numbers

// fileProblem records a problem of the whole file at line (0: unknown).
func (d *registryDoc) fileProblem(line int, format string, args ...any) {
	where := d.path
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	d.ps = append(d.ps, licensehub.Problem{Msg: where + ": " + fmt.Sprintf(format, args...)})
}

// problem records a problem of field (a path of mapping keys and list
// indexes below members[i], nil for the entry itself).
func (d *registryDoc) problem(i int, e *memberEntry, field []any, format string, args ...any) {
	f := fmt.Sprintf("members[%d]", i)
	for _, p := range field {
		switch p := p.(type) {
		case string:
			f += "." + p
		case int:
			f += "[" + strconv.Itoa(p) + "]"
		}
	}
	who := ""
	if e.AppID != "" {
		who = " (" + licensehub.Clip(e.AppID, 64) + ")"
	}
	msg := fmt.Sprintf("%s:%d: %s%s: %s", d.path, d.line(i, field...), f, who, fmt.Sprintf(format, args...))
	d.ps = append(d.ps, licensehub.Problem{Field: f, Msg: msg})
}

// line returns the line of field below members[i]: the line of the
// deepest node of the path that exists (a mapping key's own line for the
// last key).
func (d *registryDoc) line(i int, field ...any) int {
	if d.members == nil || i >= len(d.members.Content) {
		return 0
	}
	n := resolveAlias(d.members.Content[i])
	for k, p := range field {
		switch p := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return n.Line
			}
			key := mappingKey(n, p)
			if key == nil {
				return n.Line
			}
			if k == len(field)-1 {
				return key.Line
			}
			n = resolveAlias(mappingValue(n, p))
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return n.Line
			}
			n = resolveAlias(n.Content[p])
		}
	}
	return n.Line
}

// yamlFriendly rewords yaml.v3's messages about Go types in the
// registry's terms.
var yamlFriendly = strings.NewReplacer(
	"not found in type auth.registryFile", "is not a registry field (known: members)",
	"not found in type auth.memberEntry", "is not a member field (known: app_id, name, department, roles, secret, next_secret, grants, rate_limit)",
	"not found in type auth.grantEntry", "is not a grant field (known: operations, license_types, authorities, matters)",
	"not found in type auth.rateLimitEntry", "is not a rate_limit field (known: requests, per)",
	"into auth.registryFile", "(want a mapping with members:)",
	"into []auth.memberEntry", "(want a list of members)",
	"into auth.memberEntry", "(want a mapping: app_id, name, ...)",
	"into []auth.grantEntry", "(want a list of grants)",
	"into auth.grantEntry", "(want a mapping: operations, license_types, ...)",
	"into auth.rateLimitEntry", "(want {requests: N, per: DURATION})",
	"into []string", "(want a list of strings)",
	"into string", "(want a string)",
	"into int", "(want an integer)",
)

// yamlProblems records the errors of the YAML decoder, each as
// file:line: field: message (root, when parsed, locates the field).
func (d *registryDoc) yamlProblems(root *yaml.Node, err error) {
	msgs := []string{err.Error()}
	if te := (*yaml.TypeError)(nil); errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, msg := range msgs {
		msg = strings.TrimPrefix(msg, "yaml: ")
		unknownKey := ""
		if m := yamlUnknownKey.FindStringSubmatch(msg); m != nil {
			unknownKey = m[1]
		}
		msg = yamlFriendly.Replace(msg)
		m := yamlLinePrefix.FindStringSubmatch(msg)
		if m == nil {
			d.ps = append(d.ps, licensehub.Problem{Msg: d.path + ": " + msg})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		field := ""
		if root != nil {
			field = pathAtLine(root, line, unknownKey)
		}
		text := m[2]
		if field != "" {
			text = field + ": " + text
		}
		d.ps = append(d.ps, licensehub.Problem{Field: field, Msg: fmt.Sprintf("%s:%d: %s", d.path, line, text)})
	}
}

// pathAtLine returns the field path (members[0].rate_limit.requests) of
// the mapping key named key on line or, when key is "", of the deepest node
// that starts on line; "" when there is none.
func pathAtLine(n *yaml.Node, line int, key string) string {
	var walk func(n *yaml.Node, path string, depth int) (string, bool)
	walk = func(n *yaml.Node, path string, depth int) (string, bool) {
		if n == nil || depth > 64 {
			return "", false
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p, ok := walk(c, path, depth+1); ok {
					return p, true
				}
			}
		case yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				kn, val := n.Content[k], n.Content[k+1]
				p := kn.Value
				if path != "" {
					p = path + "." + kn.Value
				}
				if key != "" && kn.Line == line && kn.Value == key {
					return p, true
				}
				if sub, ok := walk(val, p, depth+1); ok {
					return sub, true
				}
				if key == "" && kn.Line == line {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for k, c := range n.Content {
				p := path + "[" + strconv.Itoa(k) + "]"
				if sub, ok := walk(c, p, depth+1); ok {
					return sub, true
				}
			}
		}
		if key == "" && n.Line == line && path != "" && n.Kind != yaml.DocumentNode {
			return path, true
		}
		return "", false
	}
	p, _ := walk(n, "", 0)
	return p
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// mappingKey returns the key node of key in mapping m, or nil.
func mappingKey(m *yaml.Node, key string) *yaml.Node {
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == key {
			return m.Content[k]
		}
	}
	return nil
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

// roleList lists the roles for messages.
func roleList() string {
	s := make([]string, len(allRoles))
	for i, r := range allRoles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
