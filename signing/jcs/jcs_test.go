package jcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// RFC 8785 section 3.2.2: the "Sample" object and its canonical form.
func TestRFC8785Sample(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// RFC 8785 section 3.2.3: member names sort by UTF-16 code units, so the
// emoji (a surrogate pair, D83D…) sorts before U+FB33.
func TestRFC8785Sorting(t *testing.T) {
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\"," +
		"\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// RFC 8785 Appendix B: every sample, through AppendNumber and through the
// scanner (as the shortest decimal that round-trips, and as 17 digits).
func TestRFC8785AppendixBNumbers(t *testing.T) {
	cases := []struct{ bits, want string }{
		{"0000000000000000", "0"},
		{"8000000000000000", "0"},
		{"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"},
		{"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"},
		{"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"},
		{"4430000000000000", "295147905179352830000"},
		{"44b52d02c7e14af5", "9.999999999999997e+22"},
		{"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"},
		{"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"},
		{"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"},
		{"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"},
		{"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"},
		{"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"},
		{"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	}
	for _, c := range cases {
		u, err := strconv.ParseUint(c.bits, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		f := math.Float64frombits(u)
		got, err := AppendNumber(nil, f)
		if err != nil || string(got) != c.want {
			t.Errorf("AppendNumber(%s) = %q, %v; want %q", c.bits, got, err, c.want)
		}
		for _, lit := range []string{strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(f, 'e', 16, 64)} {
			got, err := Canonicalize([]byte("[" + lit + "]"))
			if err != nil || string(got) != "["+c.want+"]" {
				t.Errorf("Canonicalize([%s]) = %s, %v; want [%s]", lit, got, err, c.want)
			}
		}
	}
	for _, bits := range []uint64{0x7fffffffffffffff, 0x7ff0000000000000, 0xfff0000000000000} {
		if got, err := AppendNumber(nil, math.Float64frombits(bits)); !errors.Is(err, ErrNumberRange) {
			t.Errorf("AppendNumber(%016x) = %q, %v; want ErrNumberRange", bits, got, err)
		}
	}
}

func TestNumbers(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1e+21", "1e+21"},
		{"1E21", "1e+21"},
		{"1e20", "100000000000000000000"},
		{"1e-7", "1e-7"},
		{"0.0000001", "1e-7"},
		{"0.000001", "0.000001"},
		{"1e-6", "0.000001"},
		{"333333333.3333333", "333333333.3333333"},
		{"-0", "0"},
		{"-0.0", "0"},
		{"0e10", "0"},
		{"-0e-10", "0"},
		{"1e-400", "0"}, // underflow is fine: the nearest double is 0
		{"9007199254740992", "9007199254740992"},
		{"9007199254740993", "9007199254740992"},
		{"123456789012345", "123456789012345"},
		{"1234567890123456", "1234567890123456"},
		{"12345678901234567890", "12345678901234567000"},
		{"5e-324", "5e-324"},
		{"1.7976931348623157e+308", "1.7976931348623157e+308"},
		{"1.0", "1"},
		{"-1.5E+2", "-150"},
		{"0.1", "0.1"},
		{"100", "100"},
		{"-7", "-7"},
		{"1e1", "10"},
		{"123e-2", "1.23"},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestStrings(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"plain"`, `"plain"`},
		{`"\u0041\u00e9\u4e2d"`, `"Aé中"`},
		{`"\/"`, `"/"`},
		{`"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{`"\u0008\u000C\u000A\u000D\u0009"`, `"\b\f\n\r\t"`},
		{`"\u0000\u001F\u001f"`, `"\u0000\u001f\u001f"`},
		{`"\u007f"`, "\"\x7f\""},
		{"\"\x7f\"", "\"\x7f\""},
		{`"\u2028\u2029"`, "\"\u2028\u2029\""},
		{`"\ud83d\ude00"`, `"😀"`},
		{`"\uD83D\uDE00"`, `"😀"`},
		{`"\"\\"`, `"\"\\"`},
		{`"<>&"`, `"<>&"`},
		{`"\u003c"`, `"<"`},
		{`"中文 😀"`, `"中文 😀"`},
		{`""`, `""`},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
		s, err := AppendString(nil, mustUnquote(t, c.in))
		if err != nil || string(s) != c.want {
			t.Errorf("AppendString(%s) = %s, %v; want %s", c.in, s, err, c.want)
		}
	}
	if _, err := AppendString(nil, "a\xffb"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("AppendString(invalid UTF-8): %v", err)
	}
}

func mustUnquote(t *testing.T, lit string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(lit), &s); err != nil {
		t.Fatalf("unquote %s: %v", lit, err)
	}
	return s
}

func TestStructure(t *testing.T) {
	cases := []struct{ in, want string }{
		{" { } ", `{}`},
		{"[ ]", `[]`},
		{"\t[1 ,\n2,\r3 ]\n", `[1,2,3]`},
		{`{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{`{"a":{"d":[{"z":1,"y":2}],"c":3},"A":0}`, `{"A":0,"a":{"c":3,"d":[{"y":2,"z":1}]}}`},
		{`{"aa":1,"a":2,"":3,"ab":4}`, `{"":3,"a":2,"aa":1,"ab":4}`},
		// U+10000 is D800 DC00 in UTF-16, so it sorts before U+E000 and
		// U+FFFF, although its UTF-8 bytes sort after theirs.
		{"{\"\uffff\":1,\"\U00010000\":2,\"\ue000\":3}", "{\"\U00010000\":2,\"\ue000\":3,\"\uffff\":1}"},
		{`[true,false,null]`, `[true,false,null]`},
		{`"x"`, `"x"`},
		{`0`, `0`},
		{`{"a":[],"b":{}}`, `{"a":[],"b":{}}`},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("Canonicalize(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestErrors(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	okDeep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Canonicalize([]byte(okDeep)); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	cases := []struct {
		in   string
		kind error
		path string
	}{
		{``, ErrSyntax, ""},
		{` `, ErrSyntax, ""},
		{`{`, ErrSyntax, ""},
		{`{"a"}`, ErrSyntax, ""},
		{`{"a":1,}`, ErrSyntax, ""},
		{`[1,]`, ErrSyntax, ""},
		{`[01]`, ErrSyntax, ""},
		{`[1.]`, ErrSyntax, ""},
		{`[.5]`, ErrSyntax, ""},
		{`[1e]`, ErrSyntax, ""},
		{`[+1]`, ErrSyntax, ""},
		{`[-]`, ErrSyntax, ""},
		{`[NaN]`, ErrSyntax, ""},
		{`[tru]`, ErrSyntax, ""},
		{`{"a":1} x`, ErrSyntax, ""},
		{`{"a":1}{}`, ErrSyntax, ""},
		{"\"a\tb\"", ErrSyntax, ""},
		{`"\x"`, ErrSyntax, ""},
		{`"\u12"`, ErrSyntax, ""},
		{`"\ud800\u12"`, ErrSyntax, ""},
		{`"abc`, ErrSyntax, ""},
		{"\ufeff{}", ErrSyntax, ""},
		{`{'a':1}`, ErrSyntax, ""},
		{deep, ErrTooDeep, ""},
		{`{"a":1,"a":2}`, ErrDuplicateKey, "a"},
		{`{"b":1,"a":2,"b":3}`, ErrDuplicateKey, "b"},
		{`{"x":{"a":1,"\u0061":2}}`, ErrDuplicateKey, "x.a"},
		{`{"x":[0,{"k":1,"k":1}]}`, ErrDuplicateKey, "x[1].k"},
		{"[\"a\xffb\"]", ErrInvalidUTF8, "[0]"},
		{"{\"a\xc3\":1}", ErrInvalidUTF8, ""},
		{"[\"\xed\xa0\x80\"]", ErrInvalidUTF8, "[0]"}, // a surrogate in UTF-8
		{`["\ud800"]`, ErrLoneSurrogate, "[0]"},
		{`["\udc00"]`, ErrLoneSurrogate, "[0]"},
		{`["\ud800\u0041"]`, ErrLoneSurrogate, "[0]"},
		{`{"n":[1e400]}`, ErrNumberRange, "n[0]"},
		{`{"n":-1.8e308}`, ErrNumberRange, "n"},
		// A syntax error later in the input wins over an I-JSON error.
		{`{"a":1,"a":2`, ErrSyntax, ""},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		var e *Error
		if !errors.Is(err, c.kind) || !errors.As(err, &e) {
			t.Errorf("Canonicalize(%.40q) = %s, %v; want %v", c.in, got, err, c.kind)
			continue
		}
		if c.kind != ErrSyntax && c.kind != ErrTooDeep && e.Path != c.path {
			t.Errorf("Canonicalize(%.40q): path %q, want %q (%v)", c.in, e.Path, c.path, err)
		}
	}
}

func TestOptions(t *testing.T) {
	o := Options{SafeIntegers: true, ASCIIKeys: true, NoControls: true}
	good := `{"n":[0,-1,9007199254740991,-9007199254740991],"s":"中文 😀 \" \\ /","k":{"a-b_c":null}}`
	want := `{"k":{"a-b_c":null},"n":[0,-1,9007199254740991,-9007199254740991],"s":"中文 😀 \" \\ /"}`
	if got, err := o.Canonicalize([]byte(good)); err != nil || string(got) != want {
		t.Errorf("got %s, %v", got, err)
	}
	cases := []struct{ in, path string }{
		{`{"a":{"n":1.5}}`, "a.n"},
		{`{"a":1.0}`, "a"},
		{`{"a":1e2}`, "a"},
		{`{"a":-0}`, "a"},
		{`{"a":[9007199254740992]}`, "a[0]"},
		{`{"a":-9007199254740992}`, "a"},
		{`{"a":12345678901234567}`, "a"},
		{`{"中":1}`, `中`},
		{`{"x":{"é":1}}`, `x.é`},
		{`{"x":{"a b":1.5}}`, `x["a b"]`},
		{`{"a":"x\ny"}`, "a"},
		{`{"a":"\u0000"}`, "a"},
		{`{"a":["\t"]}`, "a[0]"},
		{"{\"a\":\"\x7f\"}", "a"},
		{`{"a":"\u007f"}`, "a"},
		{`{"a\n":1}`, ""},
	}
	for _, c := range cases {
		_, err := o.Canonicalize([]byte(c.in))
		var e *Error
		if !errors.Is(err, ErrRestricted) || !errors.As(err, &e) || e.Path != c.path {
			t.Errorf("%s: %v (path %q); want ErrRestricted at %q", c.in, err, pathOf(err), c.path)
		}
		if _, err := Canonicalize([]byte(c.in)); err != nil {
			t.Errorf("%s without options: %v", c.in, err)
		}
	}
}

func pathOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Path
	}
	return ""
}

func TestJoinPath(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"", "", ""}, {"body", "", "body"}, {"", "a.b", "a.b"},
		{"body", "a.b", "body.a.b"}, {"body", "[0].x", "body[0].x"}, {"body", `["中"]`, `body["中"]`},
	} {
		if got := JoinPath(c.a, c.b); got != c.want {
			t.Errorf("JoinPath(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestMemberPath(t *testing.T) {
	for _, c := range []struct{ prefix, name, want string }{
		{"", "a", "a"}, {"signature", "kid", "signature.kid"}, {"", "a b", `["a b"]`},
		{"x", "", `x[""]`}, {"x", "中文", "x.中文"}, {"x", `a"b`, `x["a\"b"]`},
	} {
		if got := MemberPath(c.prefix, c.name); got != c.want {
			t.Errorf("MemberPath(%q, %q) = %q, want %q", c.prefix, c.name, got, c.want)
		}
	}
}

func TestAppendKeepsDst(t *testing.T) {
	dst := []byte("prefix:")
	out, err := Append(dst, []byte(`{"b":[1,2],"a":"x"}`))
	if err != nil || string(out) != `prefix:{"a":"x","b":[1,2]}` {
		t.Fatalf("got %s, %v", out, err)
	}
	out, err = Append(dst, []byte(`{"b":`))
	if err == nil || string(out) != "prefix:" {
		t.Fatalf("on error got %s, %v", out, err)
	}
}

func TestMarshal(t *testing.T) {
	got, err := Marshal(map[string]any{"z": 1e21, "a": "<&>", "m": []any{0.5, nil}})
	if err != nil || string(got) != `{"a":"<&>","m":[0.5,null],"z":1e+21}` {
		t.Errorf("got %s, %v", got, err)
	}
}

func TestCompareUTF16(t *testing.T) {
	names := []string{"", "\r", "1", "A", "a", "aa", "\u0080", "ö", "€", "\U0001F600", "\U0010FFFF", "\ue000", "\ufb33", "\uffff"}
	for i, a := range names {
		for j, b := range names {
			got := sign(compareUTF16([]byte(a), []byte(b)))
			want := sign(compareRef(a, b))
			if got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", a, b, got, want)
			}
			_, _ = i, j
		}
	}
}

// compareRef compares by UTF-16 code units the slow, obvious way.
func compareRef(a, b string) int {
	ua, ub := utf16Units(a), utf16Units(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return int(ua[i]) - int(ub[i])
		}
	}
	return len(ua) - len(ub)
}

func utf16Units(s string) []uint16 {
	var u []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			u = append(u, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			u = append(u, uint16(r))
		}
	}
	return u
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// FuzzCanonicalize checks, for any input: no panic; output is valid JSON,
// a fixed point (canonicalising it again gives the same bytes) and means
// the same as the input to encoding/json; and validity agrees with
// encoding/json except for what I-JSON adds (duplicate names, invalid
// UTF-8, lone surrogates, numbers overflowing a double).
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,false,null,"x",1.5e300,-0]}`,
		`{"\u20ac":1,"\ud83d\ude00":2,"\ufb33":3}`,
		`[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]`,
		`"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`,
		`{"a":1,"a":2}`, `["\ud800"]`, "[\"\xff\"]", `[1e400]`, `{"a":{"b":{"c":[]}}}`,
		` 1 `, `{"a" : "b" , "c" : [ 1 , 2 ] }`, `[1,]`, `{"x":"\u0000\u007f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		valid := json.Valid(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			switch e.Err {
			case ErrSyntax, ErrTooDeep:
				if valid {
					t.Fatalf("rejected as %v, but encoding/json accepts %q", err, in)
				}
			case ErrDuplicateKey, ErrInvalidUTF8, ErrLoneSurrogate, ErrNumberRange:
				if !valid {
					t.Fatalf("rejected as %v, but it is not even JSON: %q", err, in)
				}
				if e.Err == ErrDuplicateKey && !hasDuplicate(in) {
					t.Fatalf("rejected as %v, but there is no duplicate name: %q", err, in)
				}
				if e.Err == ErrInvalidUTF8 && utf8.Valid(in) {
					t.Fatalf("rejected as %v, but the input is UTF-8: %q", err, in)
				}
			default:
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted %q (-> %q), which encoding/json rejects", in, out)
		}
		if !utf8.Valid(in) {
			t.Fatalf("accepted invalid UTF-8 %q", in)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q", out)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		var vin, vout any
		if err := json.Unmarshal(in, &vin); err != nil {
			t.Fatalf("encoding/json cannot decode accepted input %q: %v", in, err)
		}
		if err := json.Unmarshal(out, &vout); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(vin, vout) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
	})
}

// hasDuplicate reports whether some object in the JSON text in has two
// members with the same (unescaped) name, using encoding/json's tokenizer.
func hasDuplicate(in []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(in))
	type frame struct {
		obj    bool
		names  map[string]bool
		wantKV bool // in an object, the next string token is a name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isName := top != nil && top.obj && top.wantKV
		if isName {
			name := tok.(string)
			if top.names[name] {
				return true
			}
			top.names[name] = true
			top.wantKV = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, names: map[string]bool{}, wantKV: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wantKV = true
		}
	}
}

// TestAgainstReference canonicalises random documents (many members, deep
// nesting, names across the UTF-16/UTF-8 ordering difference, escapes) and
// compares with a slow reference built on encoding/json.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "A", "aa", "ab", "", "\u0080", "é", "€", "\ue000", "\uffff", "\U00010000", "\U0001F600", "x y", "\"q\"", "\\", "\n"}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.IntN(7); {
		case depth > 3 || k == 0:
			return []any{nil, true, false}[rng.IntN(3)]
		case k == 1:
			return float64(rng.IntN(2000000) - 1000000)
		case k == 2:
			return names[rng.IntN(len(names))] + "\u0001\t/" + names[rng.IntN(len(names))]
		case k <= 4:
			m := map[string]any{}
			size := 8
			if depth == 0 {
				size = 60 // more members than the scanner's first stack
			}
			for i, n := 0, rng.IntN(size); i < n; i++ {
				m[names[rng.IntN(len(names))]+strconv.Itoa(rng.IntN(50))] = gen(depth + 1)
			}
			return m
		default:
			a := []any{} // not nil: encoding/json writes a nil slice as null
			for i, n := 0, rng.IntN(5); i < n; i++ {
				a = append(a, gen(depth+1))
			}
			return a
		}
	}
	for i := 0; i < 300; i++ {
		v := gen(0)
		in, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := Canonicalize(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if want := reference(v); string(got) != want {
			t.Fatalf("input %.2000s\n got %.2000s\nwant %.2000s", in, got, want)
		}
	}
}

// reference is a slow, obvious RFC 8785 encoder for the values the test
// generates (integers only).
func reference(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatInt(int64(v), 10)
	case string:
		var sb strings.Builder
		sb.WriteByte('"')
		for _, r := range v {
			switch {
			case r == '"':
				sb.WriteString(`\"`)
			case r == '\\':
				sb.WriteString(`\\`)
			case r == '\b':
				sb.WriteString(`\b`)
			case r == '\f':
				sb.WriteString(`\f`)
			case r == '\n':
				sb.WriteString(`\n`)
			case r == '\r':
				sb.WriteString(`\r`)
			case r == '\t':
				sb.WriteString(`\t`)
			case r < 0x20:
				fmt.Fprintf(&sb, `\u%04x`, r)
			default:
				sb.WriteRune(r)
			}
		}
		sb.WriteByte('"')
		return sb.String()
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = reference(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return compareRef(keys[i], keys[j]) < 0 })
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = reference(k) + ":" + reference(v[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

// TestConcurrentUse: the pooled scanner state does not leak between
// concurrent calls (run with -race).
func TestConcurrentUse(t *testing.T) {
	inputs := []string{`{"b":{"d":1,"c":2},"a":[3,{"f":4,"e":5}]}`, `["x",{"z":"\u00e9","y":null}]`, `{"k":"v"}`}
	want := make([]string, len(inputs))
	for i, in := range inputs {
		out, err := Canonicalize([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want[i] = string(out)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				k := (g + i) % len(inputs)
				out, err := Canonicalize([]byte(inputs[k]))
				if err != nil || string(out) != want[k] {
					t.Errorf("got %s, %v; want %s", out, err, want[k])
					return
				}
			}
		}()
	}
	wg.Wait()
}
