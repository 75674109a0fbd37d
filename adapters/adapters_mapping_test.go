package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters/upstream"
)

const sample = `{
  "ryxx": {"xm": "张三", "gmsfhm": "11010519491231002X", "nl": 76, "sg": 1.75, "big": 9007199254740993, "exp": 1e3, "neg0": -0},
  "hyjg": {"xm_yz": true},
  "bz": "第一行\n第二行\t\u0000end\u007f",
  "kong": null,
  "hcy": [
    {"xm": "张三", "yhzgx": "户主", "nl": 76},
    {"xm": "李四", "yhzgx": "配偶"}
  ],
  "tags": ["a", 2, 2.5, {"k": "v", "n": null}]
}`

func TestApply(t *testing.T) {
	m := Mapping{
		"name":              "ryxx.xm",
		"age":               "ryxx.nl",
		"height":            "ryxx.sg",
		"big":               "ryxx.big",
		"exp":               "ryxx.exp",
		"neg0":              "ryxx.neg0",
		"match":             "hyjg.xm_yz",
		"note":              "bz",
		"first_member":      "hcy.0.xm",
		"members[].name":    "hcy[].xm",
		"members[].rel":     "hcy[].yhzgx",
		"members[].age":     "?hcy[].nl",
		"tags":              "tags[]",
		"raw_members":       "hcy[]",
		"missing_optional":  "?nope.nope",
		"null_optional":     "?kong",
		"third_member_name": "?hcy.2.xm",
	}
	got, err := m.Apply(json.RawMessage(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name":         "张三",
		"age":          int64(76),
		"height":       "1.75",
		"big":          "9007199254740993",
		"exp":          "1e3",
		"neg0":         "-0",
		"match":        true,
		"note":         "第一行 第二行 end",
		"first_member": "张三",
		"members": []any{
			map[string]any{"name": "张三", "rel": "户主", "age": int64(76)},
			map[string]any{"name": "李四", "rel": "配偶"},
		},
		"tags": []any{"a", int64(2), "2.5", map[string]any{"k": "v"}},
		"raw_members": []any{
			map[string]any{"xm": "张三", "yhzgx": "户主", "nl": int64(76)},
			map[string]any{"xm": "李四", "yhzgx": "配偶"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("Apply:\n got %s\nwant %s", gb, wb)
	}
	// The result encodes as a body the hub can sign: no floats.
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "1.75,") || strings.Contains(string(b), "\\u0000") {
		t.Errorf("unsafe body %s", b)
	}
}

func TestApplyFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     Mapping
		data  string
		code  string
		field string
	}{
		{"missing member", Mapping{"a": "ryxx.xm", "b": "ryxx.zz"}, sample, licensehub.EUPSTREAMBAD, "ryxx.zz"},
		{"null required", Mapping{"a": "kong"}, sample, licensehub.EUPSTREAMBAD, "kong"},
		{"index out of range", Mapping{"a": "hcy.5.xm"}, sample, licensehub.EUPSTREAMBAD, "hcy.5.xm"},
		{"element lacks field", Mapping{"m[].age": "hcy[].nl"}, sample, licensehub.EUPSTREAMBAD, "hcy.1.nl"},
		{"not an array", Mapping{"a": "ryxx[]"}, sample, licensehub.EUPSTREAMBAD, "ryxx[]"},
		{"into a scalar", Mapping{"a": "bz.x"}, sample, licensehub.EUPSTREAMBAD, "bz"},
		{"non-index into array", Mapping{"a": "hcy.first"}, sample, licensehub.EUPSTREAMBAD, "hcy.first"},
		{"non-ASCII key copied", Mapping{"a": "obj"}, `{"obj":{"姓名":"x"}}`, licensehub.EUPSTREAMBAD, "obj"},
		{"null element", Mapping{"a": "arr[]"}, `{"arr":["x",null]}`, licensehub.EUPSTREAMBAD, "arr[]"},
		{"truncated", Mapping{"a": "x"}, `{"x":"`, licensehub.EUPSTREAMBAD, ""},
		{"duplicate member", Mapping{"a": "x"}, `{"x":1,"x":2}`, licensehub.EUPSTREAMBAD, ""},
		{"not an object", Mapping{"a": "x"}, `["x"]`, licensehub.EUPSTREAMBAD, ""},
		{"trailing data", Mapping{"a": "x"}, `{"x":1} {}`, licensehub.EUPSTREAMBAD, ""},
		{"invalid UTF-8", Mapping{"a": "x"}, "{\"x\":\"\xff\"}", licensehub.EUPSTREAMBAD, ""},
		{"bad field name", Mapping{"姓名": "x"}, `{"x":1}`, licensehub.EINVALID, "姓名"},
		{"empty path", Mapping{"a": ""}, `{"x":1}`, licensehub.EINVALID, "a"},
		{"empty segment", Mapping{"a": "x..y"}, `{"x":1}`, licensehub.EINVALID, "a"},
		{"[] in the middle", Mapping{"a": "x[].y"}, `{"x":1}`, licensehub.EINVALID, "a"},
		{"element field without []", Mapping{"m[].a": "x.y"}, `{"x":1}`, licensehub.EINVALID, "m[].a"},
		{"plain and array field", Mapping{"m": "x", "m[].a": "x[].y"}, `{"x":1}`, licensehub.EINVALID, "m"},
		{"two source arrays", Mapping{"m[].a": "x[].y", "m[].b": "z[].y"}, `{"x":[],"z":[]}`, licensehub.EINVALID, "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.m.Apply(json.RawMessage(tc.data))
			if got != nil {
				t.Errorf("partial map %v", got)
			}
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			if tc.field != "" && e.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", e.Field, tc.field, err)
			}
		})
	}
}

func TestKindHelpers(t *testing.T) {
	k := Kind{Name: "x", ServiceID: "s.x", Path: "/s/x", Params: []string{"id"}, Mapping: Mapping{"a": "a", "b": "b"}}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	o := k.WithMapping(Mapping{"a": "aa", "b": "", "c": "?c"})
	if !reflect.DeepEqual(o.Mapping, Mapping{"a": "aa", "c": "?c"}) || k.Mapping["a"] != "a" {
		t.Errorf("WithMapping: %v (original %v)", o.Mapping, k.Mapping)
	}
	for _, bad := range []Kind{{}, {Name: "x"}, {Name: "x", ServiceID: "s", Path: "rel"}, {Name: "x", ServiceID: "s", Path: "/p", Mapping: Mapping{"a b": "x"}}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validates", bad)
		}
	}
}

type fakeQuerier struct {
	data  string
	err   error
	calls int
	last  upstream.Query
}

func (f *fakeQuerier) Query(_ context.Context, q upstream.Query) (json.RawMessage, error) {
	f.calls++
	f.last = q
	return json.RawMessage(f.data), f.err
}

func TestFetch(t *testing.T) {
	k := Kind{Name: "x", Upstream: "ps", ServiceID: "s.x", Path: "/s/x", Params: []string{"id"}, CacheTTL: 5, Mapping: Mapping{"a": "a"}}
	f := &fakeQuerier{data: `{"a":"v"}`}
	if _, err := Fetch(context.Background(), f, k, url.Values{}); !licensehub.IsCode(err, licensehub.EINVALID) || f.calls != 0 {
		t.Errorf("missing param: %v, %d calls", err, f.calls)
	}
	got, err := Fetch(context.Background(), f, k, url.Values{"id": {"1"}})
	if err != nil || got["a"] != "v" || f.last.ServiceID != "s.x" || f.last.Path != "/s/x" || f.last.CacheTTL != 5 {
		t.Errorf("Fetch = %v, %v; query %+v", got, err, f.last)
	}
	f.data = `{"b":1}`
	got, err = Fetch(context.Background(), f, k, url.Values{"id": {"1"}})
	var e *licensehub.Error
	if got != nil || !errors.As(err, &e) || e.Code != licensehub.EUPSTREAMBAD || e.Details["service_id"] != "s.x" {
		t.Errorf("bad answer: %v %v", got, err)
	}
	f.err = licensehub.Errorf(licensehub.ENOTFOUND, "no")
	if _, err := Fetch(context.Background(), f, k, url.Values{"id": {"1"}}); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Errorf("upstream error: %v", err)
	}
}
