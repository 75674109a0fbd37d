package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing/jcs"
)

// wantField fails unless err is an *licensehub.Error with code and field.
func wantField(t *testing.T, err error, code, field string) {
	t.Helper()
	var e *licensehub.Error
	if !errors.As(err, &e) || e.Code != code || e.Field != field {
		t.Errorf("got %v, want %s at %q", err, code, field)
	}
}

func TestSignParseVerify(t *testing.T) {
	priv, info := newHubKey(t)
	keys := keyMap{info.KeyID: info}
	body := `{ "b": [1, 2, {"y": "中文", "x": null}], "a": true }`
	at := time.Date(2026, 11, 26, 16, 30, 59, 999_000_000, time.FixedZone("CST", 8*3600))
	d, err := Sign(context.Background(), NewKeySigner(priv, info), json.RawMessage(body), at)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(d.Body), `{"a":true,"b":[1,2,{"x":null,"y":"中文"}]}`; got != want {
		t.Errorf("Body = %s, want %s", got, want)
	}
	if d.Signature.SignedAt != "2026-11-26T08:30:59Z" {
		t.Errorf("SignedAt = %s, want UTC whole seconds", d.Signature.SignedAt)
	}
	signed, err := d.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"body":{"a":true,"b":[1,2,{"x":null,"y":"中文"}]},"signature":{"alg":"SM2-SM3","kid":"` + info.KeyID +
		`","signed_at":"2026-11-26T08:30:59Z","uid":"1234567812345678"}}`
	if string(signed) != want {
		t.Errorf("SignedBytes =\n%s\nwant\n%s", signed, want)
	}
	// The signed bytes are the JCS of the document without signature.value.
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	delete(generic["signature"].(map[string]any), "value")
	viaJCS, err := jcs.Marshal(generic)
	if err != nil || !bytes.Equal(viaJCS, signed) {
		t.Errorf("JCS(document without value) = %s, %v\nSignedBytes = %s", viaJCS, err, signed)
	}

	parsed, err := ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	if used, err := VerifySignature(parsed, keys); err != nil || used.KeyID != info.KeyID {
		t.Fatalf("VerifySignature = %v, %v", used.KeyID, err)
	}
	// Any layout of the same document parses and verifies.
	var indented bytes.Buffer
	if err := json.Indent(&indented, raw, "", "    "); err != nil {
		t.Fatal(err)
	}
	reordered := fmt.Sprintf(`{"signature": %s, "body": %s}`, mustJSON(t, parsed.Signature), body)
	for _, variant := range []string{indented.String(), reordered, string(raw) + "\n"} {
		d2, err := ParseDocument([]byte(variant))
		if err != nil {
			t.Fatalf("%s: %v", variant, err)
		}
		if _, err := VerifySignature(d2, keys); err != nil {
			t.Errorf("%s: %v", variant, err)
		}
		if again, _ := d2.Marshal(); !bytes.Equal(again, raw) {
			t.Errorf("Marshal of a re-laid-out document differs:\n%s\n%s", again, raw)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSignRejectsBodies(t *testing.T) {
	priv, info := newHubKey(t)
	s := NewKeySigner(priv, info)
	at := goldenSignedAt
	cases := []struct{ body, field string }{
		{``, "body"},
		{`[]`, "body"},
		{`"text"`, "body"},
		{`null`, "body"},
		{`{"a":1}x`, "body"},
		{`{"a":1,"a":2}`, "body.a"},
		{`{"a":{"b":[1,{"c":1.5}]}}`, "body.a.b[1].c"},
		{`{"n":1e3}`, "body.n"},
		{`{"n":-0}`, "body.n"},
		{`{"n":9007199254740992}`, "body.n"},
		{`{"n":-9007199254740992}`, "body.n"},
		{`{"名称":"x"}`, "body.名称"},
		{`{"a":"line\nbreak"}`, "body.a"},
		{`{"a":"tab\there"}`, "body.a"},
		{`{"a":"nul\u0000"}`, "body.a"},
		{"{\"a\":\"del\x7f\"}", "body.a"},
		{`{"a":"\ud800"}`, "body.a"},
		{"{\"a\":\"\xff\"}", "body.a"},
		{`{"a":[1e400]}`, "body.a[0]"},
	}
	for _, c := range cases {
		_, err := Sign(context.Background(), s, json.RawMessage(c.body), at)
		wantField(t, err, licensehub.EINVALID, c.field)
		// ParseDocument refuses the same body as malformed.
		doc := `{"body":` + c.body + `,"signature":{"alg":"SM2-SM3","kid":"` + info.KeyID +
			`","uid":"1234567812345678","signed_at":"2026-11-26T08:00:00Z","value":"MAA="}}`
		if _, err := ParseDocument([]byte(doc)); !licensehub.IsCode(err, licensehub.EMALFORMED) {
			t.Errorf("ParseDocument with body %s: %v", c.body, err)
		}
	}
	if _, err := Sign(context.Background(), s, json.RawMessage(`{}`), time.Time{}); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("zero time: %v", err)
	}
	big := `{"x":"` + strings.Repeat("a", MaxDocumentSize) + `"}`
	wantField(t, func() error { _, err := Sign(context.Background(), s, json.RawMessage(big), at); return err }(), licensehub.EINVALID, "body")
}

// fakeSigner returns what it is told to.
type fakeSigner struct {
	info KeyInfo
	sig  []byte
	err  error
}

func (f fakeSigner) Key() KeyInfo                                 { return f.info }
func (f fakeSigner) Sign(context.Context, []byte) ([]byte, error) { return f.sig, f.err }

func TestSignSignerProblems(t *testing.T) {
	_, info := newHubKey(t)
	ctx := context.Background()
	body := json.RawMessage(`{"a":1}`)
	raw := bytes.Repeat([]byte{1}, 64)
	cause := errors.New("hsm offline")
	cases := []struct {
		name string
		s    Signer
		code string
	}{
		{"nil signer", nil, licensehub.EINTERNAL},
		{"raw r‖s signer", fakeSigner{info: info, sig: raw}, licensehub.EINTERNAL},
		{"bad key ID", fakeSigner{info: KeyInfo{KeyID: "ABC"}}, licensehub.EINTERNAL},
		{"other algorithm", fakeSigner{info: KeyInfo{KeyID: info.KeyID, Algorithm: "RSA"}}, licensehub.EINTERNAL},
		{"plain error", fakeSigner{info: info, err: cause}, licensehub.EINTERNAL},
		{"hub error passes", fakeSigner{info: info, err: licensehub.Errorf(licensehub.EUNAVAILABLE, "hsm")}, licensehub.EUNAVAILABLE},
	}
	for _, c := range cases {
		if _, err := Sign(ctx, c.s, body, goldenSignedAt); !licensehub.IsCode(err, c.code) {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if _, err := Sign(ctx, fakeSigner{info: info, err: cause}, body, goldenSignedAt); !errors.Is(err, cause) {
		t.Errorf("cause lost: %v", err)
	}
}

func TestParseDocumentRefusals(t *testing.T) {
	good := string(goldenDoc(t, "food-permit"))
	var d map[string]json.RawMessage
	if err := json.Unmarshal([]byte(good), &d); err != nil {
		t.Fatal(err)
	}
	body := string(d["body"])
	sig := func(repl ...string) string {
		fields := map[string]string{
			"alg": `"SM2-SM3"`, "kid": `"f9cdcb3cc6484126c17bc2c01549989f"`, "uid": `"1234567812345678"`,
			"signed_at": `"2026-11-26T08:00:00Z"`, "value": `"MEUCIQ=="`,
		}
		for i := 0; i+1 < len(repl); i += 2 {
			if repl[i+1] == "" {
				delete(fields, repl[i])
			} else {
				fields[repl[i]] = repl[i+1]
			}
		}
		var parts []string
		for k, v := range fields {
			parts = append(parts, `"`+k+`":`+v)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	doc := func(sig string) string { return `{"body":` + body + `,"signature":` + sig + `}` }
	if _, err := ParseDocument([]byte(doc(sig()))); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	cases := []struct{ name, raw, field string }{
		{"empty", ``, ""},
		{"not an object", `[1]`, ""},
		{"trailing data", doc(sig()) + `{}`, ""},
		{"unknown top-level member", `{"body":` + body + `,"signature":` + sig() + `,"extra":1}`, "extra"},
		{"upper-case member", `{"BODY":` + body + `,"signature":` + sig() + `}`, "BODY"},
		{"missing body", `{"signature":` + sig() + `}`, "body"},
		{"missing signature", `{"body":` + body + `}`, "signature"},
		{"duplicate body", `{"body":` + body + `,"body":` + body + `,"signature":` + sig() + `}`, "body"},
		{"duplicate inside body", `{"body":{"a":1,"b":{"c":1,"c":2}},"signature":` + sig() + `}`, "body.b.c"},
		{"duplicate in signature", doc(`{"alg":"SM2-SM3","alg":"SM2-SM3"}`), "signature.alg"},
		{"body not an object", `{"body":[1],"signature":` + sig() + `}`, "body"},
		{"float in body", `{"body":{"fee":1.5},"signature":` + sig() + `}`, "body.fee"},
		{"signature not an object", `{"body":` + body + `,"signature":"x"}`, "signature"},
		{"unknown signature member", doc(sig("cert", `"x"`)), "signature.cert"},
		{"missing alg", doc(sig("alg", "")), "signature.alg"},
		{"missing kid", doc(sig("kid", "")), "signature.kid"},
		{"missing uid", doc(sig("uid", "")), "signature.uid"},
		{"missing signed_at", doc(sig("signed_at", "")), "signature.signed_at"},
		{"missing value", doc(sig("value", "")), "signature.value"},
		{"alg not SM2-SM3", doc(sig("alg", `"SM2"`)), "signature.alg"},
		{"alg a number", doc(sig("alg", `1`)), "signature.alg"},
		{"kid upper-case", doc(sig("kid", `"F9CDCB3CC6484126C17BC2C01549989F"`)), "signature.kid"},
		{"kid short", doc(sig("kid", `"f9cd"`)), "signature.kid"},
		{"uid null", doc(sig("uid", `null`)), "signature.uid"},
		{"signed_at local time", doc(sig("signed_at", `"2026-11-26T16:00:00+08:00"`)), "signature.signed_at"},
		{"signed_at fraction", doc(sig("signed_at", `"2026-11-26T08:00:00.5Z"`)), "signature.signed_at"},
		{"signed_at date only", doc(sig("signed_at", `"2026-11-26"`)), "signature.signed_at"},
		{"signed_at bad day", doc(sig("signed_at", `"2026-02-30T08:00:00Z"`)), "signature.signed_at"},
		{"signed_at lower-case t", doc(sig("signed_at", `"2026-11-26t08:00:00z"`)), "signature.signed_at"},
		{"value not base64", doc(sig("value", `"!!!"`)), "signature.value"},
		{"value without padding", doc(sig("value", `"MEUCIQ"`)), "signature.value"},
		{"value URL alphabet", doc(sig("value", `"-_-_"`)), "signature.value"},
		{"value empty", doc(sig("value", `""`)), "signature.value"},
		{"value with newline", doc(sig("value", `"MEUC\nIQ=="`)), "signature.value"},
		{"too large", doc(sig()) + strings.Repeat(" ", MaxDocumentSize), ""},
		{"invalid UTF-8", "{\"body\":{\"a\":\"\xc3\"},\"signature\":" + sig() + "}", "body.a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(c.raw))
			wantField(t, err, licensehub.EMALFORMED, c.field)
		})
	}
}

func TestVerifySignatureKeyProblems(t *testing.T) {
	priv, info := newHubKey(t)
	d, err := Sign(context.Background(), NewKeySigner(priv, info), json.RawMessage(`{"a":1}`), goldenSignedAt)
	if err != nil {
		t.Fatal(err)
	}
	noPub := info
	noPub.PublicKey = nil
	otherAlg := info
	otherAlg.Algorithm = "SM2-SHA256"
	wrongID := info
	wrongID.KeyID = strings.Repeat("a", KeyIDLen)
	if _, err := VerifySignature(d, keyMap{info.KeyID: noPub}); !licensehub.IsCode(err, licensehub.EINTERNAL) {
		t.Errorf("key without public key: %v", err)
	}
	if _, err := VerifySignature(d, keyMap{info.KeyID: wrongID}); !licensehub.IsCode(err, licensehub.EINTERNAL) {
		t.Errorf("key source answering with another key: %v", err)
	}
	_, err = VerifySignature(d, keyMap{info.KeyID: otherAlg})
	wantSigRule(t, err, RuleAlgorithm)
	if _, err := VerifySignature(nil, keyMap{}); !licensehub.IsCode(err, licensehub.EMALFORMED) {
		t.Errorf("nil document: %v", err)
	}
	if _, err := VerifySignature(d, nil); !licensehub.IsCode(err, licensehub.EINTERNAL) {
		t.Errorf("nil key source: %v", err)
	}
	bad := *d
	bad.Signature.Value = "%%%"
	if _, err := VerifySignature(&bad, keyMap{info.KeyID: info}); !licensehub.IsCode(err, licensehub.EMALFORMED) {
		t.Errorf("bad base64: %v", err)
	}
	bad = *d
	bad.Body = json.RawMessage(`{"a":1.5}`)
	if _, err := VerifySignature(&bad, keyMap{info.KeyID: info}); !licensehub.IsCode(err, licensehub.EMALFORMED) {
		t.Errorf("body outside the rules: %v", err)
	}
	bad = *d
	bad.Signature.UserID = "1234567812345678\n"
	if _, err := bad.SignedBytes(); !licensehub.IsCode(err, licensehub.EMALFORMED) {
		t.Errorf("control character in uid: %v", err)
	}
}

// TestJQReproducesSignedBytes: `jq -S -c 'del(.signature.value)'` (the
// shell recipe in README.md) writes exactly SignedBytes, and `jq -S -c .`
// exactly the stored form, for documents with nested objects, arrays,
// Chinese text, an emoji, escapes, booleans, null and the largest safe
// integers.
func TestJQReproducesSignedBytes(t *testing.T) {
	jq := testenv.RequireTool(t, "jq")
	priv, info := newHubKey(t)
	bodies := []string{
		`{"a":{"b":{"c":[1,[2,[3,{"d":[]}]],{}]}},"t":true,"f":false,"n":null}`,
		`{"zh":"中华人民共和国营业执照","emoji":"😀👍🏽","mixed":"é € ß Ω \u2028 \u2029 \ufeff"}`,
		`{"q":"\"quoted\"","bs":"back\\slash","sl":"a/b\/c","all":"\"\\/"}`,
		`{"max":9007199254740991,"min":-9007199254740991,"big":1234567890123456,"zero":0,"neg":-1}`,
		`{"":"empty","~":"tilde","Z":"upper","a":"lower","_":"under","0":"digit","a b":"space"}`,
	}
	dir := t.TempDir()
	check := func(name string, raw, wantSigned []byte) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			filter string
			want   []byte
		}{{"del(.signature.value)", wantSigned}, {".", raw}} {
			out, err := exec.Command(jq, "-S", "-c", c.filter, path).Output()
			if err != nil {
				t.Fatalf("jq: %v", err)
			}
			out = bytes.TrimSuffix(out, []byte("\n"))
			if !bytes.Equal(out, c.want) {
				t.Errorf("%s: jq -S -c '%s' gives\n%s\nwant\n%s", name, c.filter, out, c.want)
			}
		}
	}
	for i, b := range bodies {
		d, err := Sign(context.Background(), NewKeySigner(priv, info), json.RawMessage(b), goldenSignedAt)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		raw, _ := d.Marshal()
		signed, _ := d.SignedBytes()
		check(fmt.Sprintf("doc%d.json", i), raw, signed)
	}
	for _, g := range goldenBodies {
		raw := goldenDoc(t, g.name)
		d, err := ParseDocument(raw)
		if err != nil {
			t.Fatal(err)
		}
		signed, _ := d.SignedBytes()
		check(g.name+".json", raw, signed)
	}
}

// FuzzParseDocument: no input panics; what parses marshals to a canonical
// document that parses back to the same thing and has signed bytes.
func FuzzParseDocument(f *testing.F) {
	for _, g := range goldenBodies {
		if raw, err := os.ReadFile(filepath.Join(goldenDir, g.name+".json")); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"body":{},"signature":{"alg":"SM2-SM3","kid":"f9cdcb3cc6484126c17bc2c01549989f","uid":"","signed_at":"2026-11-26T08:00:00Z","value":"AA=="}}`))
	f.Add([]byte(`{"body":{"a":[1,{"b":"\u00e9"}]},"signature":{}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseDocument(raw)
		if err != nil {
			if !licensehub.IsCode(err, licensehub.EMALFORMED) {
				t.Fatalf("error code %s: %v", licensehub.ErrorCode(err), err)
			}
			return
		}
		stored, err := d.Marshal()
		if err != nil {
			t.Fatalf("parsed document does not marshal: %v", err)
		}
		d2, err := ParseDocument(stored)
		if err != nil {
			t.Fatalf("stored form does not parse: %v\n%s", err, stored)
		}
		if !bytes.Equal(d.Body, d2.Body) || d.Signature != d2.Signature {
			t.Fatalf("round trip changed the document")
		}
		s1, err1 := d.SignedBytes()
		s2, err2 := d2.SignedBytes()
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Fatalf("signed bytes: %v %v", err1, err2)
		}
		_, _ = VerifySignature(d, keyMap{})
	})
}
