// Package adapters holds what the public-security, social-security and tax
// adapters share: the description of a kind of upstream query ([Kind]) and
// the mapping from an upstream's JSON answer to the fields of the
// certificate (证明) the hub derives from it ([Mapping]).
//
// # Mapping format
//
// A Mapping maps a certificate field name to a path in the upstream's
// "data" object:
//
//	"name":           "ryxx.xm"          dotted path; object members by name
//	"first_member":   "hcy.0.xm"         a decimal segment indexes an array
//	"members":        "hcy[]"            "[]" after a segment takes the whole array
//	"members[].name": "hcy[].xm"         per-element mapping: builds an array of
//	                                     objects, one per upstream element
//	"valid_until":    "?zjxx.yxqx_jzrq"  a leading "?" makes the path optional
//
// Field names (and names inside "members[].name") must be ASCII letters,
// digits, '_' or '-'. A required path that is missing, or null, makes
// [Mapping.Apply] fail with UPSTREAM_BAD_RESPONSE naming the path; an
// optional one is left out. Several "x[].y" entries with the same "x[]"
// prefix build one array; their upstream arrays must be the same one.
//
// # Values
//
// The result is a certificate body fragment that will be signed under the
// hub's jq-compatible rules (signing/VERIFY.md): it contains only strings,
// booleans, integers within ±(2^53−1), and objects and arrays of those.
// Apply therefore converts every other number (fractions, exponents, huge
// integers, -0) to its JSON text as a string, removes control characters
// U+0000–U+001F and U+007F from strings (tab, CR and LF become a space),
// and rejects (UPSTREAM_BAD_RESPONSE) objects whose member names are not
// ASCII, invalid UTF-8 and duplicate member names. Nulls inside copied
// objects and arrays are dropped from objects and rejected in arrays.
package adapters

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters/upstream"
)

// Mapping maps certificate field names to paths in an upstream answer's
// data; see the package documentation for the format.
type Mapping map[string]string

// Kind describes one kind of upstream query and the certificate it yields.
type Kind struct {
	Name      string        // e.g. "identity"; unique across adapters
	Title     string        // the certificate's title, e.g. 身份核验证明
	Upstream  string        // the upstream system's name: "publicsecurity", "socialsecurity", "tax"
	ServiceID string        // X-Service-Id, e.g. "ps.identity"
	Path      string        // the endpoint path, e.g. "/ps/identity"
	Params    []string      // query parameters the endpoint needs, all of them required
	CacheTTL  time.Duration // how long an answer may be cached
	Mapping   Mapping
	// Rules are the kind's own parameter rules (ranges, rules across
	// parameters), run by [Kind.Check] after the common ones; nil: none.
	// A refusal names its parameter (see [ParamError]).
	Rules func(q url.Values, now time.Time) error
	// Verifies lists the parameters the kind checks against the
	// upstream's record (核验) rather than reads from it (查询).
	Verifies []Verification
}

// Verification is a parameter the upstream checks against its record: the
// certificate field Param echoes the value asked (never the record's), and
// Result (a mapped field) holds the upstream's verdict, a boolean. When any
// verdict is false the certificate carries only the echoed parameters and
// the verdicts: a check must not disclose what the caller did not know.
type Verification struct {
	Param  string // e.g. "name"
	Result string // e.g. "name_match"
}

// Validate checks k's fields and its mapping's syntax.
func (k Kind) Validate() error {
	switch {
	case k.Name == "":
		return licensehub.FieldError(licensehub.EINVALID, "name", "kind has no name")
	case k.ServiceID == "":
		return licensehub.FieldError(licensehub.EINVALID, "service_id", "kind %s has no service ID", k.Name)
	case !strings.HasPrefix(k.Path, "/"):
		return licensehub.FieldError(licensehub.EINVALID, "path", "kind %s: path %q does not start with /", k.Name, k.Path)
	case k.CacheTTL < 0:
		return licensehub.FieldError(licensehub.EINVALID, "cache_ttl", "kind %s: negative cache TTL", k.Name)
	case !slices.Contains(k.Params, "id_number") && !slices.Contains(k.Params, "credit_code"):
		return licensehub.FieldError(licensehub.EINVALID, "params", "kind %s takes neither id_number nor credit_code: a certificate needs its subject", k.Name)
	}
	if err := k.Mapping.Validate(); err != nil {
		var e *licensehub.Error
		if errors.As(err, &e) {
			e.Message = "kind " + k.Name + ": " + e.Message
		}
		return err
	}
	for _, v := range k.Verifies {
		switch {
		case !slices.Contains(k.Params, v.Param):
			return licensehub.FieldError(licensehub.EINVALID, "verifies", "kind %s verifies %s, which is not one of its parameters", k.Name, v.Param)
		case k.Mapping[v.Result] == "" || strings.HasPrefix(k.Mapping[v.Result], "?"):
			return licensehub.FieldError(licensehub.EINVALID, "mapping."+v.Result,
				"kind %s: the verdict %s on %s must be mapped from the upstream's answer (not optional)", k.Name, v.Result, v.Param)
		case k.Mapping[v.Param] != "":
			return licensehub.FieldError(licensehub.EINVALID, "mapping."+v.Param,
				"kind %s: %s echoes the value asked and cannot be mapped from the upstream's record", k.Name, v.Param)
		}
	}
	return nil
}

// Clone returns a copy of k whose Params, Verifies and Mapping can be
// changed without touching k's.
func (k Kind) Clone() Kind {
	k.Params = slices.Clone(k.Params)
	k.Verifies = slices.Clone(k.Verifies)
	m := make(Mapping, len(k.Mapping))
	for f, p := range k.Mapping {
		m[f] = p
	}
	k.Mapping = m
	return k
}

// WithMapping returns a copy of k whose mapping is k's overridden by
// override: an entry with an empty path removes the field.
func (k Kind) WithMapping(override Mapping) Kind {
	k = k.Clone()
	for f, p := range override {
		if p == "" {
			delete(k.Mapping, f)
		} else {
			k.Mapping[f] = p
		}
	}
	return k
}

// Querier is what Fetch needs of an upstream client; *upstream.Client is one.
type Querier interface {
	Query(ctx context.Context, q upstream.Query) (json.RawMessage, error)
}

// Query builds the upstream query of k with params.
func (k Kind) Query(params url.Values) upstream.Query {
	return upstream.Query{ServiceID: k.ServiceID, Path: k.Path, Params: params, CacheTTL: k.CacheTTL}
}

// Answer is an upstream's answer mapped to certificate fields.
type Answer struct {
	Query url.Values     // the checked parameters that were asked
	Data  map[string]any // the certificate's fields
	// Mismatched lists the verified parameters (Kind.Verifies) the
	// upstream's record does not match; Data then holds only the echoed
	// parameters and the verdicts.
	Mismatched []string
}

// Fetch checks params ([Kind.Check]), asks the upstream for k and maps its
// answer. The upstream client's errors pass through (UPSTREAM_UNAVAILABLE,
// NOT_FOUND, INVALID_ARGUMENT, TIMEOUT…); a mapping failure is
// UPSTREAM_BAD_RESPONSE with Details["upstream"] and ["service_id"].
func Fetch(ctx context.Context, c Querier, k Kind, params map[string]string, now time.Time) (*Answer, error) {
	q, err := k.Check(params, now)
	if err != nil {
		return nil, err
	}
	return k.ask(ctx, c, q)
}

// ask queries the upstream with checked parameters, maps the answer and
// applies k.Verifies.
func (k Kind) ask(ctx context.Context, c Querier, q url.Values) (*Answer, error) {
	data, err := c.Query(ctx, k.Query(q))
	if err != nil {
		return nil, err
	}
	badAnswer := func(err error) error {
		var e *licensehub.Error
		if errors.As(err, &e) && e.Code == licensehub.EUPSTREAMBAD {
			if e.Details == nil {
				e.Details = map[string]any{}
			}
			e.Details["upstream"], e.Details["service_id"] = k.Upstream, k.ServiceID
			e.Message = k.Upstream + " " + k.ServiceID + ": " + e.Message
		}
		return err
	}
	out, err := k.Mapping.Apply(data)
	if err != nil {
		return nil, badAnswer(err)
	}
	a := &Answer{Query: q, Data: out}
	for _, v := range k.Verifies {
		match, ok := out[v.Result].(bool)
		if !ok {
			return nil, badAnswer(&licensehub.Error{Code: licensehub.EUPSTREAMBAD, Field: k.Mapping[v.Result],
				Message: fmt.Sprintf("upstream answer's verdict on %s is not true or false", v.Param)})
		}
		out[v.Param] = q.Get(v.Param)
		if !match {
			a.Mismatched = append(a.Mismatched, v.Param)
		}
	}
	if len(a.Mismatched) > 0 {
		only := make(map[string]any, 2*len(k.Verifies))
		for _, v := range k.Verifies {
			only[v.Param], only[v.Result] = out[v.Param], out[v.Result]
		}
		a.Data = only
	}
	return a, nil
}

// FindKind returns the kind named name among kinds.
func FindKind(kinds []Kind, name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// maxSafeInt is the largest integer the hub's body rules allow (2^53−1).
const maxSafeInt = 1<<53 - 1

// rule is one parsed mapping entry.
type rule struct {
	field    string // certificate field (top level)
	sub      string // for "field[].sub": the element's field
	path     []string
	elemPath []string // for "x[].y": the path within each element
	whole    bool     // path ends in "[]": take the whole array
	optional bool
	raw      string // the path as written, for error messages
}

// Validate checks the syntax of every entry of m.
func (m Mapping) Validate() error {
	_, err := m.compile()
	return err
}

func (m Mapping) compile() ([]rule, error) {
	fields := make([]string, 0, len(m))
	for f := range m {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	rules := make([]rule, 0, len(m))
	for _, f := range fields {
		r, err := compileRule(f, m[f])
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	// A field is either a plain field or an array built from "field[].x"
	// entries, never both.
	plain := map[string]bool{}
	for _, r := range rules {
		if r.sub == "" {
			plain[r.field] = true
		}
	}
	for _, r := range rules {
		if r.sub != "" && plain[r.field] {
			return nil, licensehub.FieldError(licensehub.EINVALID, r.field,
				"mapping has both %s and %s[].%s", r.field, r.field, r.sub)
		}
	}
	return rules, nil
}

func compileRule(field, path string) (rule, error) {
	bad := func(format string, args ...any) (rule, error) {
		return rule{}, licensehub.FieldError(licensehub.EINVALID, field, format, args...)
	}
	r := rule{field: field, raw: path}
	if f, sub, ok := strings.Cut(field, "[]."); ok {
		r.field, r.sub = f, sub
		if !validName(sub) {
			return bad("mapping field %q: %q is not a field name (ASCII letters, digits, _ and -)", field, sub)
		}
	}
	if !validName(r.field) {
		return bad("mapping field %q is not a field name (ASCII letters, digits, _ and -)", field)
	}
	if p, ok := strings.CutPrefix(path, "?"); ok {
		r.optional, path = true, p
	}
	if path == "" {
		return bad("mapping field %q has an empty path", field)
	}
	if r.sub != "" {
		arr, elem, ok := strings.Cut(path, "[]")
		elem, dotted := strings.CutPrefix(elem, ".")
		if !ok || !dotted || elem == "" || strings.Contains(elem, "[]") {
			return bad("mapping field %q needs a path of the form array[].field, got %q", field, r.raw)
		}
		r.path, r.elemPath = strings.Split(arr, "."), strings.Split(elem, ".")
	} else {
		if p, ok := strings.CutSuffix(path, "[]"); ok {
			r.whole, path = true, p
		}
		if strings.Contains(path, "[]") {
			return bad("mapping field %q: %q may have [] only at its end (or use %s[].x fields)", field, r.raw, field)
		}
		r.path = strings.Split(path, ".")
	}
	for _, seg := range slices.Concat(r.path, r.elemPath) {
		if seg == "" {
			return bad("mapping field %q: path %q has an empty segment", field, r.raw)
		}
	}
	return r, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Apply maps data (an upstream answer's "data") to certificate fields. On
// any error it returns a nil map: never a partly filled one. Errors are
// UPSTREAM_BAD_RESPONSE (with Field naming the missing or bad path) for
// data that does not fit, and INVALID_ARGUMENT for a bad mapping.
func (m Mapping) Apply(data json.RawMessage) (map[string]any, error) {
	rules, err := m.compile()
	if err != nil {
		return nil, err
	}
	root, err := decode(data)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(rules))
	arrays := map[string][]map[string]any{} // field → elements built by field[].x rules
	arraySrc := map[string]string{}         // field → the upstream array path
	for _, r := range rules {
		v, found, err := lookup(root, r.path)
		if err != nil {
			return nil, err
		}
		if r.sub != "" {
			src := strings.Join(r.path, ".")
			if prev, ok := arraySrc[r.field]; ok && prev != src {
				return nil, licensehub.FieldError(licensehub.EINVALID, r.field,
					"mapping builds %s[] from both %s[] and %s[]", r.field, prev, src)
			}
			arraySrc[r.field] = src
			if !found {
				if r.optional {
					continue
				}
				return nil, missing(r.raw)
			}
			arr, ok := v.([]any)
			if !ok {
				return nil, badType(r.raw, "an array", v)
			}
			elems := arrays[r.field]
			if elems == nil {
				elems = make([]map[string]any, len(arr))
				for i := range elems {
					elems[i] = map[string]any{}
				}
				arrays[r.field] = elems
			}
			for i, e := range arr {
				ev, found, err := lookup(e, r.elemPath)
				if err != nil {
					return nil, err
				}
				if !found {
					if r.optional {
						continue
					}
					return nil, missing(fmt.Sprintf("%s.%d.%s", strings.Join(r.path, "."), i, strings.Join(r.elemPath, ".")))
				}
				clean, err := sanitize(ev, r.raw)
				if err != nil {
					return nil, err
				}
				elems[i][r.sub] = clean
			}
			continue
		}
		if !found {
			if r.optional {
				continue
			}
			return nil, missing(r.raw)
		}
		if r.whole {
			if _, ok := v.([]any); !ok {
				return nil, badType(r.raw, "an array", v)
			}
		}
		clean, err := sanitize(v, r.raw)
		if err != nil {
			return nil, err
		}
		out[r.field] = clean
	}
	for f, elems := range arrays {
		arr := make([]any, len(elems))
		for i, e := range elems {
			arr[i] = e
		}
		out[f] = arr
	}
	return out, nil
}

func missing(path string) error {
	return &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Field: path,
		Message: fmt.Sprintf("upstream answer lacks %s", strings.TrimPrefix(path, "?"))}
}

func badType(path, want string, v any) error {
	return &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Field: path,
		Message: fmt.Sprintf("upstream answer's %s is %s, want %s", strings.TrimPrefix(path, "?"), typeName(v), want)}
}

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// decode parses data strictly: one JSON value, numbers kept as text,
// duplicate member names and invalid UTF-8 refused.
func decode(data json.RawMessage) (any, error) {
	bad := func(format string, args ...any) error {
		return &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Message: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(data) {
		return nil, bad("upstream data is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Message: "upstream data is not valid JSON", Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("upstream data has content after its JSON value")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, bad("upstream data is %s, want an object", typeName(v))
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("duplicate member %q", k)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return tok, nil // string, json.Number, bool or nil
	}
}

// lookup follows path from v. A missing member, an index out of range or
// null at the end is "not found"; stepping into a scalar is an error.
func lookup(v any, path []string) (any, bool, error) {
	for i, seg := range path {
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[seg]
			if !ok {
				return nil, false, nil
			}
			v = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || strconv.Itoa(n) != seg {
				return nil, false, &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Field: strings.Join(path[:i+1], "."),
					Message: fmt.Sprintf("upstream answer's %s is an array; %q is not an index", strings.Join(path[:i], "."), seg)}
			}
			if n >= len(c) {
				return nil, false, nil
			}
			v = c[n]
		case nil:
			return nil, false, nil
		default:
			return nil, false, badType(strings.Join(path[:i], "."), "an object or array", v)
		}
	}
	if v == nil {
		return nil, false, nil
	}
	return v, true, nil
}

// sanitize makes v fit the hub's body rules; path names it in errors.
func sanitize(v any, path string) (any, error) {
	switch c := v.(type) {
	case string:
		return cleanString(c), nil
	case bool:
		return c, nil
	case json.Number:
		return number(c), nil
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, e := range c {
			if !asciiKey(k) {
				return nil, &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Field: path,
					Message: fmt.Sprintf("upstream answer's %s has a member name that is not printable ASCII, which certificate bodies require", path)}
			}
			if e == nil {
				continue
			}
			s, err := sanitize(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = s
		}
		return out, nil
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			if e == nil {
				return nil, &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Field: path,
					Message: fmt.Sprintf("upstream answer's %s has a null element", path)}
			}
			s, err := sanitize(e, fmt.Sprintf("%s.%d", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, badType(path, "a JSON value", v)
}

// number returns an integer within ±(2^53−1) written as an integer as
// int64, and any other number as its JSON text.
func number(n json.Number) any {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil && i >= -maxSafeInt && i <= maxSafeInt && s != "-0" {
		return i
	}
	return s
}

func asciiKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// cleanString removes control characters (tab, CR and LF become a space).
func cleanString(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case isControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
