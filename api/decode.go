package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing/jcs"
)

// This file is the hub's one way of reading a JSON request body. Every
// handler that takes JSON calls decodeBody (or jsonBody for a body it
// passes on whole, such as a signed document), so that every body is held
// to the same rules:
//
//   - Content-Type application/json (charset=utf-8 allowed):
//     415 UNSUPPORTED_MEDIA_TYPE otherwise;
//   - no byte order mark, valid UTF-8 (never replaced), no lone surrogate,
//     no duplicate member, nothing after the value, each refused naming the
//     member's JSON path (signing/jcs's scanner finds them);
//   - member names exactly as documented (no unknown members, no other
//     spelling of a known one: encoding/json would take "OP" for "op");
//   - every value of the type the field wants, said in user words;
//   - every string at most the characters its field's maxlen tag allows.
//
// Request types declare their limits with a struct tag on each field that
// holds text: `maxlen:"200"` bounds the field's string, or each string
// inside it (list elements, map values, any nested value of a map[string]any
// such as a license's face fields). Map keys are at most maxKeyChars. A type
// with a text field and no limit is a bug that limitsOf reports (and
// TestRequestTypesHaveLimits catches before a request does).

const (
	// maxKeyChars bounds the member names of free-form objects (face
	// fields, adapter parameters, material inputs).
	maxKeyChars = 64
	// maxAnyDepth bounds the nesting inside a free-form value: fields.x is
	// depth 1; face fields are scalars, so anything deeper is refused long
	// before it costs anything.
	maxAnyDepth = 4
)

// dateTimeExample is how request date-times are written.
const dateTimeExample = "2026-12-07T09:30:00+08:00"

// decodeBody checks c's JSON body (jsonBody) and decodes it into v, a
// pointer to a request struct (decodeStrict).
func decodeBody(c *fiber.Ctx, v any) error {
	body, err := jsonBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// jsonBody returns c's body after the checks every JSON body passes: it
// is present, declared application/json, and one I-JSON value.
func jsonBody(c *fiber.Ctx) ([]byte, error) {
	body := c.Body()
	if len(body) == 0 {
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body", "the request body is empty; send a JSON object")
	}
	if err := checkContentType(c.Get(fiber.HeaderContentType)); err != nil {
		return nil, err
	}
	return body, checkJSON(body)
}

// checkContentType accepts application/json, with at most a charset
// parameter of utf-8.
func checkContentType(ct string) error {
	bad := func(format string, args ...any) error {
		return &licensehub.Error{Code: licensehub.EMEDIATYPE, Field: "Content-Type", Message: fmt.Sprintf(format, args...),
			Details: map[string]any{"expected": fiber.MIMEApplicationJSON}}
	}
	if strings.TrimSpace(ct) == "" {
		return bad("the request has no Content-Type; a JSON body is sent as application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return bad("Content-Type %q is not application/json", licensehub.Clip(ct, 64))
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return bad("Content-Type %q: a JSON body is UTF-8 and takes no other parameter than charset=utf-8", licensehub.Clip(ct, 64))
		}
	}
	return nil
}

// scratch recycles jcs's output buffers: the canonical form is not kept,
// only the verdict on the input.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// checkJSON refuses a body that is not one I-JSON value (RFC 7493):
// a BOM, invalid UTF-8, a lone surrogate, a duplicate member, a syntax
// error or data after the value, naming where.
func checkJSON(body []byte) error {
	if bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		return licensehub.FieldError(licensehub.EMALFORMED, "body",
			"the body starts with a byte order mark (BOM); send UTF-8 JSON without one")
	}
	buf := scratch.Get().(*[]byte)
	_, err := jcs.Append((*buf)[:0], body)
	if cap(*buf) <= 1<<20 {
		scratch.Put(buf)
	}
	if err == nil {
		return nil
	}
	var je *jcs.Error
	if !errors.As(err, &je) {
		return licensehub.Wrap(err, licensehub.EMALFORMED, "not valid JSON")
	}
	field := je.Path
	if field == "" {
		field = "body"
	}
	e := &licensehub.Error{Code: licensehub.EMALFORMED, Field: field, Err: err,
		Details: map[string]any{"offset": je.Offset}}
	switch {
	case errors.Is(err, jcs.ErrInvalidUTF8):
		e.Message = fmt.Sprintf("is not valid UTF-8 (%s at byte offset %d); text must be sent as UTF-8", je.Msg, je.Offset)
	case errors.Is(err, jcs.ErrLoneSurrogate):
		e.Message = fmt.Sprintf("holds a \\u escape of half a surrogate pair, which is no character (byte offset %d)", je.Offset)
	case errors.Is(err, jcs.ErrDuplicateKey):
		e.Message = "appears twice in its object; each member may appear once"
	case errors.Is(err, jcs.ErrNumberRange):
		e.Message = "is a number too large to represent"
	case errors.Is(err, jcs.ErrTooDeep):
		e.Field, e.Message = "body", "nests arrays and objects too deeply"
	default:
		e.Field, e.Message = "body", fmt.Sprintf("not valid JSON at byte offset %d: %s", je.Offset, je.Msg)
	}
	return e
}

// decodeJSON decodes a body that passed checkJSON into v, a pointer to a
// request struct, after checking its members, types and lengths against
// v's type.
func decodeJSON(body []byte, v any) error {
	rt := reflect.TypeOf(v)
	if rt == nil || rt.Kind() != reflect.Pointer {
		return licensehub.Errorf(licensehub.EINTERNAL, "decodeJSON needs a pointer, got %v", rt)
	}
	if err := limitsOf(rt.Elem()); err != nil {
		return &licensehub.Error{Code: licensehub.EINTERNAL, Message: "internal error", Err: err}
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil { // checkJSON passed: cannot happen
		return licensehub.Wrap(err, licensehub.EMALFORMED, "not valid JSON")
	}
	if !holdsRaw(rt.Elem()) {
		// The tree is checked and stored in one walk.
		return setValue(rt.Elem(), reflect.ValueOf(v).Elem(), tree, "", 0, 0)
	}
	// A json.RawMessage keeps its bytes, which the tree has lost: check
	// the tree, then let encoding/json store the body.
	if err := checkValue(rt.Elem(), tree, "", 0, 0); err != nil {
		return err
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil { // checkValue passed: cannot happen either
		return &licensehub.Error{Code: licensehub.EMALFORMED, Field: "body", Message: "the body does not have the request's form", Err: err}
	}
	return nil
}

// decodeStrict is decodeJSON for a body that has not passed checkJSON
// (the Content-Type aside): everything but the media type.
func decodeStrict(body []byte, v any) error {
	if len(body) == 0 {
		return licensehub.FieldError(licensehub.EMALFORMED, "body", "the request body is empty; send a JSON object")
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// structField is one JSON member of a request struct.
type structField struct {
	index  int
	name   string // JSON member name
	maxLen int    // the maxlen tag; 0 when the field holds no text
}

// structInfo is what a request struct type accepts, built once per type.
type structInfo struct {
	fields []structField
	byName map[string]*structField
}

var structInfos sync.Map // reflect.Type → *structInfo

var (
	anyMapType     = reflect.TypeFor[map[string]any]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
)

// infoOf returns t's members (t a struct type), checked by limitsOf.
func infoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]*structField{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		sf := structField{index: i, name: name}
		if tag := f.Tag.Get("maxlen"); tag != "" {
			sf.maxLen, _ = strconv.Atoi(tag)
		}
		si.fields = append(si.fields, sf)
	}
	for i := range si.fields {
		si.byName[si.fields[i].name] = &si.fields[i]
	}
	actual, _ := structInfos.LoadOrStore(t, si)
	return actual.(*structInfo)
}

var rawHolders sync.Map // reflect.Type → bool

// holdsRaw reports whether t has a json.RawMessage anywhere inside.
func holdsRaw(t reflect.Type) bool {
	if v, ok := rawHolders.Load(t); ok {
		return v.(bool)
	}
	var walk func(t reflect.Type, seen map[reflect.Type]bool) bool
	walk = func(t reflect.Type, seen map[reflect.Type]bool) bool {
		if t == rawMessageType {
			return true
		}
		if seen[t] {
			return false
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			return walk(t.Elem(), seen)
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				if walk(t.Field(i).Type, seen) {
					return true
				}
			}
		}
		return false
	}
	raw := walk(t, map[reflect.Type]bool{})
	rawHolders.Store(t, raw)
	return raw
}

var limitsChecked sync.Map // reflect.Type → error (nil when fine)

// limitsOf reports a member of request type t (and of the structs inside
// it) that can hold text but has no maxlen tag, or a kind of field this
// decoder does not read.
func limitsOf(t reflect.Type) error {
	if err, ok := limitsChecked.Load(t); ok {
		if err == nil {
			return nil
		}
		return err.(error)
	}
	err := checkLimits(t, t.String(), 0)
	limitsChecked.Store(t, err)
	return err
}

func checkLimits(t reflect.Type, path string, maxLen int) error {
	switch {
	case t == rawMessageType:
		return nil // passed on whole to a parser of its own, within server.body_limit
	case t == timeType:
		return fmt.Errorf("%s: time.Time reads Go's error text to clients; take a string and parse it with parseDateTime", path)
	}
	switch t.Kind() {
	case reflect.String, reflect.Interface:
		if maxLen <= 0 {
			return fmt.Errorf("%s holds text but has no maxlen tag", path)
		}
		return nil
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return nil
	case reflect.Pointer:
		return checkLimits(t.Elem(), path, maxLen)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // base64 bytes, within server.body_limit
		}
		return checkLimits(t.Elem(), path+"[]", maxLen)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("%s: map keys must be strings", path)
		}
		return checkLimits(t.Elem(), path+"{}", maxLen)
	case reflect.Struct:
		for _, f := range infoOf(t).fields {
			if t.Field(f.index).Anonymous {
				return fmt.Errorf("%s: embedded structs are not read by the strict decoder", path)
			}
			if err := checkLimits(t.Field(f.index).Type, path+"."+f.name, f.maxLen); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s: a %s field is not read by the strict decoder", path, t.Kind())
}

// checkValue checks v, a value decoded with UseNumber, against type t at
// JSON path path: members, types and lengths. maxLen is the limit of the
// enclosing field; depth counts levels inside a free-form (any) value.
func checkValue(t reflect.Type, v any, path string, maxLen, depth int) error {
	return setValue(t, reflect.Value{}, v, path, maxLen, depth)
}

// setValue is checkValue that also stores v in dst (of type t, settable
// and zero) the way encoding/json with UseNumber would; an invalid dst
// only checks.
func setValue(t reflect.Type, dst reflect.Value, v any, path string, maxLen, depth int) error {
	if v == nil {
		return nil // null leaves the field at its zero value
	}
	set := dst.IsValid()
	if t == rawMessageType {
		if set { // its bytes are what counts: decodeJSON decodes such types with encoding/json
			return licensehub.Errorf(licensehub.EINTERNAL, "%s: setValue cannot keep the bytes of a json.RawMessage", path)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if !set {
			return setValue(t.Elem(), dst, v, path, maxLen, depth)
		}
		p := reflect.New(t.Elem())
		if err := setValue(t.Elem(), p.Elem(), v, path, maxLen, depth); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return typeError(path, "a text string", v)
		}
		if err := checkLength(path, s, maxLen); err != nil {
			return err
		}
		if set {
			dst.SetString(s)
		}
		return nil
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return typeError(path, "true or false", v)
		}
		if set {
			dst.SetBool(b)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a whole number", v)
		}
		i, err := strconv.ParseInt(string(n), 10, t.Bits())
		if err != nil {
			return licensehub.FieldError(licensehub.EMALFORMED, fieldOrBody(path), "must be a whole number within ±%d, got %s",
				int64(1)<<(t.Bits()-1)-1, licensehub.Clip(string(n), 32))
		}
		if set {
			dst.SetInt(i)
		}
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a whole number", v)
		}
		u, err := strconv.ParseUint(string(n), 10, t.Bits())
		if err != nil {
			return licensehub.FieldError(licensehub.EMALFORMED, fieldOrBody(path), "must be a whole number from 0 to %d, got %s",
				uint64(1)<<t.Bits()-1, licensehub.Clip(string(n), 32))
		}
		if set {
			dst.SetUint(u)
		}
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a number", v)
		}
		f, err := strconv.ParseFloat(string(n), t.Bits())
		if err != nil {
			return licensehub.FieldError(licensehub.EMALFORMED, fieldOrBody(path), "is a number out of range")
		}
		if set {
			dst.SetFloat(f)
		}
		return nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s, ok := v.(string)
			if !ok {
				return typeError(path, "base64 text", v)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return licensehub.FieldError(licensehub.EMALFORMED, fieldOrBody(path),
					"is not valid base64 (standard alphabet with = padding, RFC 4648 section 4)")
			}
			if set {
				dst.SetBytes(b)
			}
			return nil
		}
		list, ok := v.([]any)
		if !ok {
			return typeError(path, "a list", v)
		}
		var out reflect.Value
		if set {
			out = reflect.MakeSlice(t, len(list), len(list))
		}
		for i, e := range list {
			var d reflect.Value
			if set {
				d = out.Index(i)
			}
			if err := setValue(t.Elem(), d, e, path+"["+strconv.Itoa(i)+"]", maxLen, depth); err != nil {
				return err
			}
		}
		if set {
			dst.Set(out)
		}
		return nil
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return typeError(path, "an object", v)
		}
		if t == anyMapType { // a free-form object (face fields): checked, then taken as is
			if err := checkMembers(obj, path, func(_ string, e any, p string) error { return checkAny(e, p, maxLen, depth+1) }); err != nil {
				return err
			}
			if set {
				dst.Set(reflect.ValueOf(obj))
			}
			return nil
		}
		var out reflect.Value
		if set {
			out = reflect.MakeMapWithSize(t, len(obj))
		}
		err := checkMembers(obj, path, func(k string, e any, p string) error {
			if !set {
				return setValue(t.Elem(), reflect.Value{}, e, p, maxLen, depth)
			}
			d := reflect.New(t.Elem()).Elem()
			if err := setValue(t.Elem(), d, e, p, maxLen, depth); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), d)
			return nil
		})
		if err == nil && set {
			dst.Set(out)
		}
		return err
	case reflect.Interface:
		if err := checkAny(v, path, maxLen, depth+1); err != nil {
			return err
		}
		if set {
			dst.Set(reflect.ValueOf(v))
		}
		return nil
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return typeError(path, "an object", v)
		}
		si := infoOf(t)
		unknown, found := "", false // the first unknown member by name ("" is a name too)
		for k := range obj {
			if _, ok := si.byName[k]; !ok && (!found || k < unknown) {
				unknown, found = k, true
			}
		}
		if found {
			return licensehub.FieldError(licensehub.EMALFORMED, licensehub.Clip(jcs.MemberPath(path, unknown), 200), "unknown field")
		}
		for _, f := range si.fields {
			e, ok := obj[f.name]
			if !ok {
				continue
			}
			var d reflect.Value
			if set {
				d = dst.Field(f.index)
			}
			if err := setValue(t.Field(f.index).Type, d, e, jcs.MemberPath(path, f.name), f.maxLen, depth); err != nil {
				return err
			}
		}
		return nil
	}
	return licensehub.Errorf(licensehub.EINTERNAL, "%s: the strict decoder does not read %s", path, t.Kind())
}

// checkAny checks a free-form value (a face field): strings within
// maxLen, nesting within maxAnyDepth, member names within maxKeyChars.
func checkAny(v any, path string, maxLen, depth int) error {
	if depth > maxAnyDepth {
		return licensehub.FieldError(licensehub.EINVALID, fieldOrBody(path), "nests more than %d levels of lists and objects", maxAnyDepth)
	}
	switch x := v.(type) {
	case string:
		return checkLength(path, x, maxLen)
	case []any:
		for i, e := range x {
			if err := checkAny(e, path+"["+strconv.Itoa(i)+"]", maxLen, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		return checkMembers(x, path, func(_ string, e any, p string) error { return checkAny(e, p, maxLen, depth+1) })
	}
	return nil
}

// checkMembers runs check on each member of obj (with its JSON path)
// after holding its name to maxKeyChars. Of several bad members it
// reports the first in name order, so that an answer does not depend on
// map order.
func checkMembers(obj map[string]any, path string, check func(k string, e any, p string) error) error {
	one := func(k string) error {
		p := jcs.MemberPath(path, k)
		if n := utf8.RuneCountInString(k); n > maxKeyChars {
			return &licensehub.Error{Code: licensehub.EINVALID, Field: licensehub.Clip(p, 200),
				Message: fmt.Sprintf("member names are at most %d characters, this one has %d", maxKeyChars, n),
				Details: map[string]any{"max_chars": maxKeyChars}}
		}
		return check(k, obj[k], p)
	}
	for k := range obj {
		if one(k) != nil {
			for _, k := range slices.Sorted(maps.Keys(obj)) {
				if err := one(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkLength holds s to maxLen characters (Unicode code points).
func checkLength(path, s string, maxLen int) error {
	if maxLen <= 0 || len(s) <= maxLen { // at least one byte per character
		return nil
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return &licensehub.Error{Code: licensehub.EINVALID, Field: fieldOrBody(path),
			Message: fmt.Sprintf("is at most %d characters long, got %d", maxLen, n),
			Details: map[string]any{"max_chars": maxLen, "got_chars": n}}
	}
	return nil
}

// typeError says in user words what path must be and what it was.
func typeError(path, want string, got any) error {
	return &licensehub.Error{Code: licensehub.EMALFORMED, Field: fieldOrBody(path),
		Message: fmt.Sprintf("must be %s, not %s", want, jsonKind(got)),
		Details: map[string]any{"expected": want}}
}

// jsonKind names the kind of a decoded JSON value in user words.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a text string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func fieldOrBody(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// parseDateTime reads a request's date-time (RFC 3339 with a UTC offset).
func parseDateTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, &licensehub.Error{Code: licensehub.EINVALID, Field: field,
			Message: fmt.Sprintf("must be a date-time like %s, got %q", dateTimeExample, licensehub.Clip(v, 40)),
			Details: map[string]any{"expected": dateTimeExample}}
	}
	return t, nil
}
