package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/signable"
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
	k := Kind{Name: "x", ServiceID: "s.x", Path: "/s/x", Params: []string{"id_number"}, Mapping: Mapping{"a": "a", "b": "b"}}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	o := k.WithMapping(Mapping{"a": "aa", "b": "", "c": "?c"})
	if !reflect.DeepEqual(o.Mapping, Mapping{"a": "aa", "c": "?c"}) || k.Mapping["a"] != "a" {
		t.Errorf("WithMapping: %v (original %v)", o.Mapping, k.Mapping)
	}
	verifying := Kind{Name: "v", ServiceID: "s.v", Path: "/s/v", Params: []string{"id_number", "name"},
		Verifies: []Verification{{Param: "name", Result: "name_match"}}, Mapping: Mapping{"name_match": "m"}}
	if err := verifying.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Kind{{}, {Name: "x"}, {Name: "x", ServiceID: "s", Path: "rel"},
		{Name: "x", ServiceID: "s", Path: "/p", Params: []string{"id_number"}, Mapping: Mapping{"a b": "x"}},
		{Name: "x", ServiceID: "s", Path: "/p", Params: []string{"name"}, Mapping: Mapping{"a": "x"}}, // no subject
		verifying.WithMapping(Mapping{"name": "ryxx.xm"}),                                             // the echo mapped from the record
		verifying.WithMapping(Mapping{"name_match": ""}),                                              // no verdict
		verifying.WithMapping(Mapping{"name_match": "?m"}),                                            // an optional verdict
		{Name: "v", ServiceID: "s.v", Path: "/s/v", Params: []string{"id_number"}, Verifies: verifying.Verifies, Mapping: verifying.Mapping},
	} {
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
	k := Kind{Name: "x", Upstream: "ps", ServiceID: "s.x", Path: "/s/x", Params: []string{"id_number"}, CacheTTL: 5, Mapping: Mapping{"a": "a"}}
	ctx, now := context.Background(), time.Now()
	f := &fakeQuerier{data: `{"a":"v"}`}
	if _, err := Fetch(ctx, f, k, nil, now); !licensehub.IsCode(err, licensehub.EINVALID) || f.calls != 0 {
		t.Errorf("missing param: %v, %d calls", err, f.calls)
	}
	got, err := Fetch(ctx, f, k, map[string]string{"id_number": id}, now)
	if err != nil || got.Data["a"] != "v" || got.Mismatched != nil || f.last.ServiceID != "s.x" || f.last.Path != "/s/x" || f.last.CacheTTL != 5 ||
		f.last.Params.Encode() != "id_number="+id {
		t.Errorf("Fetch = %v, %v; query %+v", got, err, f.last)
	}
	f.data = `{"b":1}`
	got, err = Fetch(ctx, f, k, map[string]string{"id_number": id}, now)
	var e *licensehub.Error
	if got != nil || !errors.As(err, &e) || e.Code != licensehub.EUPSTREAMBAD || e.Details["service_id"] != "s.x" {
		t.Errorf("bad answer: %v %v", got, err)
	}
	f.err = licensehub.Errorf(licensehub.ENOTFOUND, "no")
	if _, err := Fetch(ctx, f, k, map[string]string{"id_number": id}, now); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Errorf("upstream error: %v", err)
	}
}

const id, credit = "11010519491231002X", "91350100M000100Y43"

// TestCheck: the rules every kind shares, and a kind's own, each refusal
// naming its parameter and made before any upstream call.
func TestCheck(t *testing.T) {
	ruled := func(q url.Values, _ time.Time) error {
		if q.Get("n") == "0" {
			return ParamError("n", "n must not be 0")
		}
		return nil
	}
	person := Kind{Name: "p", Upstream: "ps", ServiceID: "s.p", Path: "/s/p", Params: []string{"id_number", "name"}, Mapping: Mapping{"a": "a"}}
	org := Kind{Name: "o", Upstream: "tax", ServiceID: "s.o", Path: "/s/o", Params: []string{"credit_code", "n"}, Mapping: Mapping{"a": "a"}, Rules: ruled}
	for _, tc := range []struct {
		name   string
		kind   Kind
		params map[string]string
		field  string // "" = accepted
		want   url.Values
	}{
		{"accepted", person, map[string]string{"id_number": id, "name": "张三"}, "", url.Values{"id_number": {id}, "name": {"张三"}}},
		{"trimmed and NFC", person, map[string]string{"id_number": id, "name": " 张三é "}, "", url.Values{"id_number": {id}, "name": {"张三é"}}},
		{"minority name with a middle dot", person, map[string]string{"id_number": id, "name": "阿依古丽·买买提"}, "", url.Values{"id_number": {id}, "name": {"阿依古丽·买买提"}}},
		{"unknown parameter", person, map[string]string{"id_number": id, "name": "张三", "age": "3"}, "params.age", nil},
		{"unknown parameter with a hostile name", person, map[string]string{"id_number": id, "name": "张三", "a\u202eb" + strings.Repeat("x", 100): "1"}, "params", nil},
		{"missing parameter", person, map[string]string{"id_number": id}, "params.name", nil},
		{"blank parameter", person, map[string]string{"id_number": id, "name": " \t"}, "params.name", nil},
		{"name of 65 characters", person, map[string]string{"id_number": id, "name": strings.Repeat("张", 65)}, "params.name", nil},
		{"name of 10 KB", person, map[string]string{"id_number": id, "name": strings.Repeat("x", 10240)}, "params.name", nil},
		{"invalid UTF-8", person, map[string]string{"id_number": id, "name": "\xff\xfe\xc3\x28"}, "params.name", nil},
		{"replacement characters", person, map[string]string{"id_number": id, "name": "\ufffd\ufffd\ufffd("}, "params.name", nil},
		{"control character", person, map[string]string{"id_number": id, "name": "张\n三"}, "params.name", nil},
		{"right-to-left override", person, map[string]string{"id_number": id, "name": "张\u202e三"}, "params.name", nil},
		{"zero-width space", person, map[string]string{"id_number": id, "name": "张\u200b三"}, "params.name", nil},
		{"private use", person, map[string]string{"id_number": id, "name": "张\ue000"}, "params.name", nil},
		{"bad check digit", person, map[string]string{"id_number": id[:17] + "1", "name": "张三"}, "params.id_number", nil},
		{"lower-case x", person, map[string]string{"id_number": strings.ToLower(id), "name": "张三"}, "params.id_number", nil},
		{"bad credit code", org, map[string]string{"credit_code": credit[:17] + "4", "n": "1"}, "params.credit_code", nil},
		{"the kind's own rule", org, map[string]string{"credit_code": credit, "n": "0"}, "params.n", nil},
		{"the kind's own rule passes", org, map[string]string{"credit_code": credit, "n": "1"}, "", url.Values{"credit_code": {credit}, "n": {"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeQuerier{data: `{"a":"v"}`}
			a, err := Fetch(context.Background(), f, tc.kind, tc.params, time.Now())
			if tc.field == "" {
				if err != nil || !reflect.DeepEqual(a.Query, tc.want) || !reflect.DeepEqual(f.last.Params, tc.want) {
					t.Fatalf("Fetch = %+v, %v; asked %v, want %v", a, err, f.last.Params, tc.want)
				}
				return
			}
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != licensehub.EINVALID || e.Field != tc.field {
				t.Fatalf("err = %v, want INVALID_ARGUMENT on %s", err, tc.field)
			}
			if f.calls != 0 {
				t.Errorf("%d upstream calls for a refused parameter", f.calls)
			}
			if strings.ContainsAny(e.Message, "\u202e\u200b\ue000\n") || strings.Contains(e.Message, strings.Repeat("x", 100)) {
				t.Errorf("the message repeats what it refuses: %q", e.Message)
			}
		})
	}
}

// TestVerifies: a verifying kind echoes what was asked, never the record's
// value; a false verdict leaves only the echoes and the verdicts.
func TestVerifies(t *testing.T) {
	k := Kind{Name: "identity", Upstream: "ps", ServiceID: "ps.identity", Path: "/ps/identity", Params: []string{"id_number", "name"},
		Verifies: []Verification{{Param: "id_number", Result: "id_number_match"}, {Param: "name", Result: "name_match"}},
		Mapping:  Mapping{"id_number_match": "hy.id", "name_match": "hy.name", "status": "zt"}}
	params := map[string]string{"id_number": id, "name": "李四"}
	for _, tc := range []struct {
		name, data string
		mismatched []string
		want       map[string]any
		code       string
	}{
		{"match", `{"hy":{"id":true,"name":true},"zt":"正常","xm":"李四"}`, nil,
			map[string]any{"id_number": id, "name": "李四", "id_number_match": true, "name_match": true, "status": "正常"}, ""},
		{"name mismatch", `{"hy":{"id":true,"name":false},"zt":"正常","xm":"张三"}`, []string{"name"},
			map[string]any{"id_number": id, "name": "李四", "id_number_match": true, "name_match": false}, ""},
		{"both mismatch", `{"hy":{"id":false,"name":false},"zt":"正常"}`, []string{"id_number", "name"},
			map[string]any{"id_number": id, "name": "李四", "id_number_match": false, "name_match": false}, ""},
		{"verdict not a boolean", `{"hy":{"id":true,"name":"1"},"zt":"正常"}`, nil, nil, licensehub.EUPSTREAMBAD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Fetch(context.Background(), &fakeQuerier{data: tc.data}, k, params, time.Now())
			if licensehub.ErrorCode(err) != tc.code {
				t.Fatalf("err = %v, want %q", err, tc.code)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(a.Data, tc.want) || !reflect.DeepEqual(a.Mismatched, tc.mismatched) {
				t.Errorf("data %v mismatched %v, want %v %v", a.Data, a.Mismatched, tc.want, tc.mismatched)
			}
		})
	}
}

// FuzzCheck: whatever the parameters, Check refuses them naming a params
// field, or returns values that pass it again unchanged: valid UTF-8, NFC,
// trimmed, at most MaxParamLen characters, nothing forbidden.
func FuzzCheck(f *testing.F) {
	k := Kind{Name: "p", Upstream: "ps", ServiceID: "s.p", Path: "/s/p", Params: []string{"id_number", "name"}, Mapping: Mapping{"a": "a"}}
	f.Add(id, "张三")
	f.Add(id, " 张三e\u0301 ")
	f.Add(id, "\xff\xfe\xc3\x28")
	f.Add(id[:17]+"1", "张\u202e三")
	f.Fuzz(func(t *testing.T, idNumber, name string) {
		q, err := k.Check(map[string]string{"id_number": idNumber, "name": name}, time.Now())
		if err != nil {
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != licensehub.EINVALID || !strings.HasPrefix(e.Field, "params.") {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		v := q.Get("name")
		if !utf8.ValidString(v) || !norm.NFC.IsNormalString(v) || strings.TrimSpace(v) != v || utf8.RuneCountInString(v) > MaxParamLen ||
			signable.Check("v", v, 0) != nil {
			t.Fatalf("accepted %q", v)
		}
		again, err := k.Check(map[string]string{"id_number": q.Get("id_number"), "name": v}, time.Now())
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("checked values %v do not pass again: %v %v", q, again, err)
		}
	})
}
