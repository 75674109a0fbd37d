package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
)

// FuzzDecodeStrict: whatever the bytes, the decoder answers a client error
// (never a panic, never INTERNAL) naming a field, or a value that is valid
// UTF-8 throughout, within its limits, and that decodes again the same way
// once re-encoded (to the same encoding), and is what encoding/json
// makes of it.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		pushBody, `{"op":"suspend","reason":"检查"}`, `{"op":"suspend","op":"revoke"}`, `{"op":"suspend","OP":"revoke"}`,
		"\xef\xbb\xbf{}", "{\"op\":\"\xff\xfe\xc3\x28\"}", `{"op":"\ud800"}`, `{"params":{"a":"b"}}`, `{"params":{"a":1}}`,
		`{"holder_code":"x","inputs":{"k":"v"}}`, `{"envelopes":[{"a":1}]}`, `{"attachment":{"data":"!!"}}`,
		`{"fields":{"x":{"a":{"b":{"c":{"d":1}}}}}}`, `{} {}`, `[]`, `null`, `{"number":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&license.PushRequest{}, &statusBody{}, &consentBody{}, &materialsBody{}, &certifyBody{}, &inboundBatch{}} {
			err := decodeStrict(body, v)
			if err != nil {
				var e *licensehub.Error
				if !errors.As(err, &e) || e.Code != licensehub.EMALFORMED && e.Code != licensehub.EINVALID || e.Field == "" || e.Message == "" {
					t.Fatalf("%T: error %#v: want a client error naming a field", v, err)
				}
				continue
			}
			if !utf8.Valid(body) {
				t.Fatalf("%T: accepted invalid UTF-8 %q", v, body)
			}
			checkStrings(t, reflect.ValueOf(v), "")
			// What the decoder stored is what encoding/json stores.
			ref := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(ref); err != nil || !reflect.DeepEqual(v, ref) {
				t.Fatalf("%T: %s decoded as %#v; encoding/json: %#v, %v", v, body, v, ref, err)
			}
			again, merr := json.Marshal(v)
			if merr != nil {
				t.Fatalf("%T: re-encoding: %v", v, merr)
			}
			w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := decodeStrict(again, w); err != nil {
				t.Fatalf("%T: %s decoded, its re-encoding %s does not: %v", v, body, again, err)
			}
			if twice, _ := json.Marshal(w); string(twice) != string(again) {
				t.Fatalf("%T: %s re-encodes as %s, then as %s", v, body, again, twice)
			}
		}
	})
}

// checkStrings fails on a string in v that is not valid UTF-8 or longer
// than its field's maxlen.
func checkStrings(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkStrings(t, v.Elem(), path)
		}
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			t.Fatalf("%s: invalid UTF-8 %q accepted", path, v.String())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if max := f.Tag.Get("maxlen"); max != "" && f.Type.Kind() == reflect.String {
				if n := utf8.RuneCountInString(v.Field(i).String()); len(max) > 0 && n > atoi(max) {
					t.Fatalf("%s.%s: %d characters accepted, maxlen %s", path, f.Name, n, max)
				}
			}
			checkStrings(t, v.Field(i), path+"."+f.Name)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := 0; i < v.Len(); i++ {
				checkStrings(t, v.Index(i), path+"[]")
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if utf8.RuneCountInString(k.String()) > maxKeyChars || !utf8.ValidString(k.String()) {
				t.Fatalf("%s: member name %q accepted", path, k.String())
			}
			checkStrings(t, v.MapIndex(k), path+"."+k.String())
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestDecodeMessages: the decoder's refusals in user words, naming the
// field, without a server round trip.
func TestDecodeMessages(t *testing.T) {
	type inner struct {
		N    int      `json:"n"`
		F    float64  `json:"f"`
		B    bool     `json:"b"`
		List []string `json:"list" maxlen:"3"`
	}
	type body struct {
		Name  string `json:"name" maxlen:"3"`
		Inner inner  `json:"inner"`
		Data  []byte `json:"data"`
	}
	tests := []struct {
		in, field, want string
	}{
		{`{"name":"abcd"}`, "name", "at most 3 characters long, got 4"},
		{`{"name":"名字很长"}`, "name", "at most 3 characters long, got 4"},
		{`{"name":"名字长"}`, "", ""},
		{`{"inner":{"n":1.5}}`, "inner.n", "must be a whole number within"},
		{`{"inner":{"n":"1"}}`, "inner.n", "must be a whole number, not a text string"},
		{`{"inner":{"f":"1"}}`, "inner.f", "must be a number, not a text string"},
		{`{"inner":{"b":"yes"}}`, "inner.b", "must be true or false, not a text string"},
		{`{"inner":{"list":"x"}}`, "inner.list", "must be a list, not a text string"},
		{`{"inner":{"list":["abcd"]}}`, "inner.list[0]", "at most 3 characters"},
		{`{"inner":[]}`, "inner", "must be an object, not a list"},
		{`{"data":"%%%"}`, "data", "not valid base64"},
		{`{"data":"aGk="}`, "", ""},
		{`{"name":null,"inner":null}`, "", ""},
		{`{"a b":1}`, `["a b"]`, "unknown field"},
		{`{"name":"a"} x`, "body", "not valid JSON"},
	}
	for _, tt := range tests {
		var v body
		err := decodeStrict([]byte(tt.in), &v)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.in, err)
			}
			continue
		}
		var e *licensehub.Error
		if !errors.As(err, &e) || e.Field != tt.field || !strings.Contains(e.Message, tt.want) {
			t.Errorf("%s: %v; want field %s, %q", tt.in, err, tt.field, tt.want)
		}
	}
}

// BenchmarkDecode: the strict decoding of a push body (the I-JSON check,
// exact member names, types in user words, maxlen on every string) beside
// what it replaced in the same run, encoding/json with unknown members
// refused (encoding-json-strict).
func BenchmarkDecode(b *testing.B) {
	body := []byte(pushBody)
	b.Run("hub", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req license.PushRequest
			if err := decodeJSON(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json-strict", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req license.PushRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if err := dec.Decode(&req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
