package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

// FuzzValidate: any face-field map, decoded either way encoding/json
// decodes numbers, with any holder, never panics, and every problem is an
// EINVALID *licensehub.Error with a field and a rule.
func FuzzValidate(f *testing.F) {
	for _, b := range validBodies {
		f.Add([]byte(b.fields), b.holderType, b.holderCode, false)
	}
	f.Add([]byte(`{"title":"样例","issued_on":"2024-02-30","count":1e400,"kind":null,"online":[1]}`), "001", "91350100M000100Y43", true)
	f.Add([]byte(`{"count":-0,"until":"long-term","note":{"a":"b"},"":"","\u0000":"\ud800"}`), "111", "11010519491231002X", false)
	f.Add([]byte(`{"height_cm":9007199254740993,"birth_date":"0000-00-00","sex":"男"}`), "111", "x", true)
	f.Add([]byte(`not json`), "", "", false)

	types := loadShipped(f).Types()
	types = append(types, sampleType(f))

	f.Fuzz(func(t *testing.T, data []byte, holderType, holderCode string, useNumber bool) {
		var fields map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		if useNumber {
			dec.UseNumber()
		}
		if dec.Decode(&fields) != nil {
			// Not a JSON object: the bytes as the value of every field.
			fields = map[string]any{}
			for _, ty := range types {
				for _, fd := range ty.Fields {
					fields[fd.Name] = string(data)
				}
			}
		}
		for _, ty := range types {
			l := &license.License{TypeCode: ty.Code, Holder: license.Holder{CodeType: holderType, Code: holderCode}, Fields: fields}
			errs := ty.ValidateAll(l)
			for _, err := range errs {
				var e *licensehub.Error
				if !errors.As(err, &e) || e.Code != licensehub.EINVALID {
					t.Fatalf("%s: %v is not an EINVALID *licensehub.Error", ty.Code, err)
				}
				if e.Field == "" || ident.Rule(err) == "" || e.Message == "" {
					t.Fatalf("%s: %#v lacks a field, rule or message", ty.Code, e)
				}
				if !strings.HasPrefix(e.Field, "fields.") && !strings.HasPrefix(e.Field, "holder.") {
					t.Fatalf("%s: field %q", ty.Code, e.Field)
				}
			}
			first := ty.Validate(l)
			if (first == nil) != (len(errs) == 0) || (first != nil && first.Error() != errs[0].Error()) {
				t.Fatalf("%s: Validate = %v, ValidateAll = %v", ty.Code, first, errs)
			}
		}
	})
}
