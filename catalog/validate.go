package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signable"
)

// Rule names: Details["rule"] of the errors Validate returns. They are part
// of the API; never rename one. Holder code and format errors keep the rule
// of package ident (length, alphabet, check_digit, region, birth_date).
const (
	RuleUnknownType    = "unknown_type"           // the catalog has no type with the license's type code
	RuleTypeCode       = ident.RuleTypeCode       // the license names another type than the one validating it
	RuleHolderCodeType = ident.RuleHolderCodeType // the license type is not issued to holders of this code type
	RuleRequired       = "required"               // a required face field is missing, null or blank
	RuleUnknownField   = "unknown_field"          // a face field the license type does not define
	RuleType           = "type"                   // the value has the wrong JSON type
	RuleDate           = "date"                   // not a real calendar date written YYYY-MM-DD
	RuleRange          = "range"                  // an integer beyond ±(2^53−1)
	RuleEnum           = "enum"                   // not one of the enum's values
	RuleLength         = ident.RuleLength         // too few or too many characters
	RulePattern        = "pattern"                // does not match the field's pattern
	RuleBinding        = "binding"                // a bound face field differs from the license value it is bound to
)

// maxSafeInteger is the largest integer a license body may carry
// (signing/VERIFY.md): 2^53−1.
const maxSafeInteger = 1<<53 - 1

// Validate checks a license body against the catalog entry of its type
// code and returns the first problem (see Type.ValidateAll), or nil.
func (c *Catalog) Validate(l *license.License) error {
	if errs := c.ValidateAll(l); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// ValidateAll checks a license body against the catalog entry of its type
// code and returns every problem; an unknown type code is one problem
// (field type_code, rule unknown_type).
func (c *Catalog) ValidateAll(l *license.License) []error {
	t, ok := c.Type(l.TypeCode)
	if !ok {
		return []error{invalid("type_code", RuleUnknownType, map[string]any{"got": licensehub.Clip(l.TypeCode, 32)},
			"%q is not a license type of the catalog", licensehub.Clip(l.TypeCode, 32))}
	}
	return t.ValidateAll(l)
}

// Validate checks a license body against the type and returns the first
// problem ValidateAll finds, or nil.
func (t *Type) Validate(l *license.License) error {
	if errs := t.ValidateAll(l); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// ValidateAll checks the parts of a license body that its type governs and
// returns every problem, in this order:
//
//   - type_code is the type's code (rule type_code);
//   - holder.code_type is one the type is issued to (rule holder_code_type);
//   - holder.code is a valid code of that type, when the type is allowed
//     (package ident's rules: length, alphabet, check_digit, region,
//     birth_date);
//   - every face field of the type, in the type's order, as fields.<name>:
//     a required field is present, not null and, for strings, not blank
//     (required); an optional one may be left out or be ""; a present
//     value has the field's JSON type (type), is a real date YYYY-MM-DD
//     (date) or, with allow_long_term, license.LongTerm; is an integer
//     within ±(2^53−1) (type, range); is one of the enum's values (enum);
//     for strings, follows package signable's text rules (valid UTF-8,
//     NFC, no control, bidi, zero-width or private-use characters:
//     invalid_utf8, replacement_character, nfc, control_character,
//     bidi_control, zero_width, private_use, with Details["position"]);
//     holds a valid code of the field's format (ident's rules); has
//     min_length to max_length characters (length); matches the pattern
//     (pattern); and, bound with bind:, equals holder.code or
//     holder.name (binding);
//   - face fields the type does not define, by name (unknown_field).
//
// Each problem is a *licensehub.Error with Code licensehub.EINVALID, Field
// its JSON path, a Message naming the printed label, and Details["rule"].
// Messages never repeat a face value (they can be personal data), except
// a value that is not one of an enum's.
//
// Values are those of a body decoded by encoding/json (string, float64 or
// json.Number, bool, nil, map, slice) or built in Go (any integer type).
func (t *Type) ValidateAll(l *license.License) []error {
	var errs []error
	if l.TypeCode != t.Code {
		errs = append(errs, invalid("type_code", RuleTypeCode, map[string]any{"expected": t.Code, "got": licensehub.Clip(l.TypeCode, 32)},
			"the license's type code is %q, but it is being checked as %s (%s)", licensehub.Clip(l.TypeCode, 32), t.Name, t.Code))
	}
	// The holder code is checked only against a code type the license
	// type allows: against any other, its errors would only echo that one.
	switch ct := l.Holder.CodeType; {
	case !t.AllowsHolder(ct):
		errs = append(errs, invalid("holder.code_type", RuleHolderCodeType, map[string]any{"expected": slices.Clone(t.HolderCodeTypes), "got": licensehub.Clip(ct, 16)},
			"%s is issued to holders with code type %s, not %q", t.Name, holderTypesText(t.HolderCodeTypes), licensehub.Clip(ct, 16)))
	default:
		if err := ident.ValidateHolderCode(ct, l.Holder.Code); err != nil {
			errs = append(errs, ident.WithField(err, "holder.code"))
		}
	}
	for _, f := range t.Fields {
		v, present := l.Fields[f.Name]
		err := f.check(t, v, present)
		if err == nil && f.Bind != "" {
			err = f.checkBinding(l, v)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.Fields)) {
		if _, ok := t.byName[name]; !ok {
			errs = append(errs, invalid("fields."+licensehub.Clip(name, 64), RuleUnknownField, nil, "not a field of %s", t.Name))
		}
	}
	return errs
}

// check checks the value of face field f; present says whether the key
// was there at all.
func (f *Field) check(t *Type, v any, present bool) error {
	path := "fields." + f.Name
	what := f.Label + " (" + f.Name + ")"
	if !present || v == nil {
		if f.Required {
			return invalid(path, RuleRequired, nil, "%s is required on %s", what, t.Name)
		}
		if present {
			return invalid(path, RuleType, map[string]any{"expected": f.jsonType(), "got": "null"},
				"%s is null; leave an empty optional field out", what)
		}
		return nil
	}

	switch f.Type {
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return f.wrongType(what, v)
		}
		return nil
	case TypeInteger:
		return f.checkInteger(what, v)
	}

	// string, date and enum: a JSON string.
	s, ok := v.(string)
	if !ok {
		return f.wrongType(what, v)
	}
	if strings.TrimSpace(s) == "" {
		if f.Required {
			return invalid(path, RuleRequired, nil, "%s is required on %s and is blank", what, t.Name)
		}
		return nil
	}
	switch f.Type {
	case TypeDate:
		if f.AllowLongTerm && s == license.LongTerm {
			return nil
		}
		if _, err := time.Parse(license.DateLayout, s); err != nil {
			want := "YYYY-MM-DD"
			if f.AllowLongTerm {
				want += " or " + strconv.Quote(license.LongTerm)
			}
			return invalid(path, RuleDate, map[string]any{"expected": want},
				"%s is not a real date written %s", what, want)
		}
		return nil
	case TypeEnum:
		if !slices.Contains(f.Enum, s) {
			return invalid(path, RuleEnum, map[string]any{"expected": slices.Clone(f.Enum), "got": licensehub.Clip(s, 32)},
				"%s is %q; want one of %s", what, licensehub.Clip(s, 32), strings.Join(f.Enum, ", "))
		}
		return nil
	}

	// string: text rules first (they say what is wrong with a value
	// every other check would only call malformed)
	if rule, pos := signable.Problem(s); rule != "" {
		e := signable.Error(path, rule, pos).(*licensehub.Error)
		e.Message = strings.Replace(e.Message, path, what, 1)
		return e
	}
	switch f.Format {
	case FormatCreditCode:
		if err := ident.ValidateCreditCode(s); err != nil {
			return ident.WithField(err, path)
		}
	case FormatResidentID:
		if err := ident.ValidateResidentID(s); err != nil {
			return ident.WithField(err, path)
		}
	}
	if n := utf8.RuneCountInString(s); (f.MinLength > 0 && n < f.MinLength) || (f.MaxLength > 0 && n > f.MaxLength) {
		d := map[string]any{"got": n}
		var want string
		switch {
		case f.MinLength > 0 && f.MaxLength > 0:
			d["min"], d["max"] = f.MinLength, f.MaxLength
			want = fmt.Sprintf("%d to %d", f.MinLength, f.MaxLength)
		case f.MinLength > 0:
			d["min"] = f.MinLength
			want = fmt.Sprintf("at least %d", f.MinLength)
		default:
			d["max"] = f.MaxLength
			want = fmt.Sprintf("at most %d", f.MaxLength)
		}
		return invalid(path, RuleLength, d, "%s has %d characters; want %s", what, n, want)
	}
	if f.re != nil && !f.re.MatchString(s) {
		return invalid(path, RulePattern, map[string]any{"pattern": f.re.String()},
			"%s does not match the pattern %s", what, f.re.String())
	}
	return nil
}

// checkBinding checks that a bound field's value (present, a string, and
// otherwise valid) equals the license value it is bound to.
func (f *Field) checkBinding(l *license.License, v any) error {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil
	}
	var want string
	switch f.Bind {
	case BindHolderCode:
		want = l.Holder.Code
	case BindHolderName:
		want = l.Holder.Name
	}
	if s == want {
		return nil
	}
	return invalid("fields."+f.Name, RuleBinding, map[string]any{"bound_to": f.Bind},
		"%s (%s) must equal the license's %s", f.Label, f.Name, f.Bind)
}

// checkInteger checks the value of an integer field.
func (f *Field) checkInteger(what string, v any) error {
	path := "fields." + f.Name
	notInteger := func() error {
		return invalid(path, RuleType, map[string]any{"expected": "integer", "got": "number"},
			"%s is not an integer; license bodies carry integers only (no fraction, no exponent, not -0)", what)
	}
	outOfRange := func() error {
		return invalid(path, RuleRange, map[string]any{"min": -maxSafeInteger, "max": maxSafeInteger},
			"%s is beyond ±(2^53−1), the integers a license body can carry", what)
	}
	var big bool // beyond the safe range
	switch n := v.(type) {
	case float64:
		switch {
		case math.IsNaN(n) || math.IsInf(n, 0) || n != math.Trunc(n) || (n == 0 && math.Signbit(n)):
			return notInteger()
		case math.Abs(n) > maxSafeInteger:
			big = true
		}
	case float32:
		return f.checkInteger(what, float64(n))
	case json.Number:
		s := string(n)
		i, err := strconv.ParseInt(s, 10, 64)
		switch {
		case s == "-0" || (err != nil && !errors.Is(err, strconv.ErrRange)):
			return notInteger() // a fraction, an exponent or not a number
		case err != nil:
			big = true
		default:
			big = i > maxSafeInteger || i < -maxSafeInteger
		}
	case int:
		big = n > maxSafeInteger || n < -maxSafeInteger
	case int8, int16, int32, uint8, uint16, uint32:
	case int64:
		big = n > maxSafeInteger || n < -maxSafeInteger
	case uint:
		big = n > maxSafeInteger
	case uint64:
		big = n > maxSafeInteger
	default:
		return f.wrongType(what, v)
	}
	if big {
		return outOfRange()
	}
	return nil
}

// wrongType reports a value of the wrong JSON type.
func (f *Field) wrongType(what string, v any) error {
	want, got := f.jsonType(), jsonType(v)
	article := "a "
	if want == "integer" {
		article = "an "
	}
	return invalid("fields."+f.Name, RuleType, map[string]any{"expected": want, "got": got},
		"%s must be %s%s, not %s", what, article, want, got)
}

// jsonType is the JSON type a field's value has: string (for string, date
// and enum), integer or boolean.
func (f *Field) jsonType() string {
	switch f.Type {
	case TypeInteger:
		return "integer"
	case TypeBoolean:
		return "boolean"
	}
	return "string"
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, float32, json.Number, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("a Go %T", v)
}

func holderTypesText(types []string) string {
	s := make([]string, len(types))
	for i, ct := range types {
		switch ct {
		case ident.HolderCreditCode:
			s[i] = ct + " (unified social credit code)"
		case ident.HolderResidentID:
			s[i] = ct + " (resident ID number)"
		default:
			s[i] = ct
		}
	}
	return strings.Join(s, " or ")
}

// invalid builds the EINVALID error at field for rule; details may be nil.
func invalid(field, rule string, details map[string]any, format string, args ...any) *licensehub.Error {
	d := make(map[string]any, len(details)+1)
	maps.Copy(d, details)
	d["rule"] = rule
	return &licensehub.Error{Code: licensehub.EINVALID, Field: field, Message: fmt.Sprintf(format, args...), Details: d}
}
