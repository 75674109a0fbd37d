package adapters

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signable"
)

// MaxParamLen bounds every parameter value (characters): a person's name
// is the longest a kind takes.
const MaxParamLen = 64

// Check validates params for k and returns the upstream query; nothing
// reaches an upstream without it. The rules common to every kind come
// first: only k.Params, each one given; every value valid UTF-8 of at most
// MaxParamLen characters once trimmed and brought to Unicode NFC, without
// control, bidi, zero-width or private-use characters; id_number a
// resident ID number and credit_code a unified social credit code (check
// characters included). Then k.Rules, if any (ranges, cross-parameter
// rules), with now for rules relative to today. A refusal is
// INVALID_ARGUMENT naming the parameter as params.NAME.
func (k Kind) Check(params map[string]string, now time.Time) (url.Values, error) {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(k.Params, name) {
			field := "params"
			if plainName(name) {
				field += "." + name
			}
			return nil, licensehub.FieldError(licensehub.EINVALID, field, "%s takes the parameters %s, not %s",
				k.Name, strings.Join(k.Params, ", "), printable(name))
		}
	}
	q := url.Values{}
	for _, name := range k.Params {
		v, err := cleanParam(name, params[name])
		if err != nil {
			return nil, err
		}
		q.Set(name, v)
	}
	if v := q.Get("id_number"); v != "" {
		if err := ident.ValidateResidentID(v); err != nil {
			return nil, ident.WithField(err, "params.id_number")
		}
	}
	if v := q.Get("credit_code"); v != "" {
		if err := ident.ValidateCreditCode(v); err != nil {
			return nil, ident.WithField(err, "params.credit_code")
		}
	}
	if k.Rules != nil {
		if err := k.Rules(q, now); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// ParamError is the refusal of the parameter name (field params.NAME).
func ParamError(name, format string, args ...any) error {
	return licensehub.FieldError(licensehub.EINVALID, "params."+name, format, args...)
}

// cleanParam trims v and brings it to NFC, or says why it cannot be a
// parameter value: the text rules of what the hub signs (package
// signable), as a certificate repeats what it was asked.
func cleanParam(name, v string) (string, error) {
	v = signable.Normalize(strings.TrimSpace(v))
	if v == "" {
		return "", ParamError(name, "the parameter %s is required", name)
	}
	if err := signable.Check("params."+name, v, MaxParamLen); err != nil {
		return "", err
	}
	return v, nil
}

// printable quotes a caller's parameter name for a message without
// repeating whatever it holds: at most 32 characters, invisible ones
// escaped.
func printable(s string) string {
	if utf8.RuneCountInString(s) > 32 {
		s = string([]rune(s)[:32]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// plainName reports whether a caller's parameter name can name the field
// of its refusal as it is: 1 to 64 ASCII letters, digits, '_' or '-'.
func plainName(s string) bool { return len(s) <= 64 && validName(s) }
