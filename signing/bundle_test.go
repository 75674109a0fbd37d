package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"github.com/licensehub/licensehub"
)

// Both the value and the pointer implement KeySource.
var (
	_ KeySource = Bundle{}
	_ KeySource = (*Bundle)(nil)
	_ KeySource = (*Keyring)(nil)
)

// krBundleKeyring is a keyring with a retired and an active key of krAuthA (the
// active one certified) and an active key of krAuthB.
func krBundleKeyring(t *testing.T) (*Keyring, []*krTestKey) {
	t.Helper()
	dir := t.TempDir()
	old := krNewTestKey(t, krAuthA)
	old.fields["state"] = "retired"
	old.fields["retired_at"] = "2025-06-01T00:00:00Z"
	cur := krNewTestKey(t, krAuthA)
	cur.fields["not_before"] = "2025-06-01T00:00:00Z"
	cur.fields["not_after"] = "2027-01-01T00:00:00Z"
	cur.fields["certificate"] = "cur.crt.pem"
	root := krNewCA(t, "City Root CA", nil)
	krWriteFile(t, filepath.Join(dir, "cur.crt.pem"),
		root.issue(t, &cur.priv.PublicKey, krTime("2025-06-01T00:00:00Z"), krTime("2027-01-01T00:00:00Z")), 0o644)
	b := krNewTestKey(t, krAuthB)
	keys := []*krTestKey{old, cur, b}
	krWriteKeyring(t, dir, keys)
	return krOpen(t, dir, WithClock(func() time.Time { return krTime("2026-02-03T04:05:06+08:00") })), keys
}

func TestBundleRoundTrip(t *testing.T) {
	kr, keys := krBundleKeyring(t)
	b := kr.Export()
	if b.Version != BundleVersion || !b.GeneratedAt.Equal(krTime("2026-02-03T04:05:06+08:00")) || len(b.KeyInfos) != 3 {
		t.Fatalf("Export: %+v", b)
	}
	raw, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	krAssertNoSecret(t, string(raw), keys...)
	for _, field := range []string{`"version": 1`, `"generated_at": "2026-02-02T20:05:06Z"`, `"kid"`, `"public_key_pem"`, `"certificate_pem"`, `"retired_at"`, `"alg": "SM2-SM3"`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("bundle JSON lacks %s:\n%s", field, raw)
		}
	}

	parsed, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := kr.Keys()
	got := parsed.Keys()
	if len(got) != len(want) {
		t.Fatalf("%d keys, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.KeyID != w.KeyID || g.Authority != w.Authority || g.State != w.State || !g.NotBefore.Equal(w.NotBefore) ||
			!g.NotAfter.Equal(w.NotAfter) || g.PublicKeyPEM != w.PublicKeyPEM || g.CertificatePEM != w.CertificatePEM ||
			(w.RetiredAt == nil) != (g.RetiredAt == nil) || (w.RetiredAt != nil && !g.RetiredAt.Equal(*w.RetiredAt)) {
			t.Errorf("key %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for _, k := range keys {
		info, err := parsed.Key(k.kid)
		if err != nil {
			t.Fatal(err)
		}
		if info.PublicKey == nil || !info.PublicKey.Equal(&k.priv.PublicKey) {
			t.Errorf("Key(%s).PublicKey is not the key's public key", k.kid)
		}
	}
	_, err = parsed.Key("ffffffffffffffffffffffffffffffff")
	krWantErr(t, err, licensehub.EKEYNOTFOUND, "ffffffffffffffffffffffffffffffff")

	// Offline verification: sign with the keyring, verify with the bundle.
	at := krTime("2026-01-01T00:00:00Z")
	s, err := kr.SignerFor(krAuthA, at)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the license body")
	sig, err := s.Sign(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := parsed.Key(s.Key().KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := info.CheckAt(at); err != nil {
		t.Error(err)
	}
	if err := VerifyMessage(info.PublicKey, msg, sig); err != nil {
		t.Errorf("signature does not verify with the bundle's key: %v", err)
	}

	// Exporting a parsed bundle gives the same JSON.
	again, err := json.MarshalIndent(ExportBundle(parsed, b.GeneratedAt), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(raw) {
		t.Errorf("re-export differs:\n%s\nvs\n%s", again, raw)
	}
}

func TestParseBundleRefusals(t *testing.T) {
	kr, keys := krBundleKeyring(t)
	good, err := json.Marshal(kr.Export())
	if err != nil {
		t.Fatal(err)
	}
	other := krNewSM2(t)
	otherPEM, _ := encodePublicKeyPEM(&other.PublicKey)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := smx509.MarshalPKIXPublicKey(&p256.PublicKey)
	p256PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p256DER}))
	root := krNewCA(t, "Root", nil)
	otherCert := string(root.issue(t, &other.PublicKey, krTime("2020-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z")))

	// edit changes the decoded good bundle; key i is Keys()[i], ordered
	// krAuthB, then authA's retired and active keys.
	type obj = map[string]any
	keyAt := func(b obj, i int) obj { return b["keys"].([]any)[i].(obj) }
	tests := []struct {
		name string
		edit func(b obj)
		raw  string // instead of edit
		code string
		want []string
	}{
		{"kid of another key", func(b obj) { keyAt(b, 0)["kid"] = keys[0].kid }, "", licensehub.EINVALID,
			[]string{"keys[0].kid", "does not match the key"}},
		{"public key swapped", func(b obj) { keyAt(b, 1)["public_key_pem"] = otherPEM }, "", licensehub.EINVALID,
			[]string{"keys[1].kid", keys[0].kid, "does not match the key"}},
		{"kid altered by one digit", func(b obj) {
			k := keyAt(b, 2)
			kid := k["kid"].(string)
			last := "0"
			if kid[31] == '0' {
				last = "1"
			}
			k["kid"] = kid[:31] + last
		}, "", licensehub.EINVALID, []string{"does not match the key"}},
		{"duplicate key", func(b obj) { b["keys"] = append(b["keys"].([]any), keyAt(b, 1)) }, "", licensehub.EINVALID,
			[]string{"keys[3].kid", "duplicate: keys[1]"}},
		{"not an SM2 key", func(b obj) { keyAt(b, 0)["public_key_pem"] = p256PEM }, "", licensehub.EINVALID,
			[]string{"keys[0].public_key_pem", "not an SM2 public key"}},
		{"public key not PEM", func(b obj) { keyAt(b, 0)["public_key_pem"] = "MFkw..." }, "", licensehub.EINVALID,
			[]string{"no PEM block"}},
		{"two public keys", func(b obj) { keyAt(b, 0)["public_key_pem"] = keyAt(b, 0)["public_key_pem"].(string) + otherPEM }, "", licensehub.EINVALID,
			[]string{"extra data after the PUBLIC KEY block"}},
		{"certificate of another key", func(b obj) { keyAt(b, 2)["certificate_pem"] = otherCert }, "", licensehub.EINVALID,
			[]string{"keys[2].certificate_pem", "is for another key"}},
		{"other algorithm", func(b obj) { keyAt(b, 0)["alg"] = "ES256" }, "", licensehub.EINVALID, []string{"keys[0].alg", `"ES256"`}},
		{"bad authority", func(b obj) { keyAt(b, 0)["authority"] = "91350100M000100Y4X" }, "", licensehub.EINVALID,
			[]string{"keys[0].authority", "91350100M000100Y4X"}},
		{"retired without retired_at", func(b obj) { delete(keyAt(b, 1), "retired_at") }, "", licensehub.EINVALID,
			[]string{"keys[1].retired_at", "missing"}},
		{"dates reversed", func(b obj) { keyAt(b, 0)["not_after"] = "2000-01-01T00:00:00Z" }, "", licensehub.EINVALID,
			[]string{"keys[0].not_after", "is not after not_before"}},
		{"unknown state", func(b obj) { keyAt(b, 0)["state"] = "paused" }, "", licensehub.EINVALID, []string{"keys[0].state"}},
		{"version 2", func(b obj) { b["version"] = 2 }, "", licensehub.EINVALID, []string{"version 2 is not supported"}},
		{"no generated_at", func(b obj) { delete(b, "generated_at") }, "", licensehub.EINVALID, []string{"generated_at"}},
		{"unknown top-level field", func(b obj) { b["signature"] = "x" }, "", licensehub.EMALFORMED, []string{"signature"}},
		{"unknown key field", func(b obj) { keyAt(b, 0)["private_key"] = "x" }, "", licensehub.EMALFORMED, []string{"private_key"}},
		{"trailing data", nil, string(good) + `{"version":1}`, licensehub.EMALFORMED, []string{"data after"}},
		{"not JSON", nil, "version: 1", licensehub.EMALFORMED, nil},
		{"empty", nil, "", licensehub.EMALFORMED, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if tc.edit != nil {
				var b obj
				if err := json.Unmarshal(good, &b); err != nil {
					t.Fatal(err)
				}
				tc.edit(b)
				var err error
				if raw, err = json.Marshal(b); err != nil {
					t.Fatal(err)
				}
			}
			b, err := ParseBundle(raw)
			if b != nil {
				t.Error("ParseBundle returned a bundle with the error")
			}
			krWantErr(t, err, tc.code, tc.want...)
		})
	}
}

func TestEmptyBundle(t *testing.T) {
	raw, err := json.Marshal(ExportBundle(Bundle{}, krTime("2026-01-01T00:00:00Z")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Keys()) != 0 {
		t.Errorf("keys %v", b.Keys())
	}
	if !strings.Contains(string(raw), `"keys":[]`) {
		t.Errorf("empty bundle JSON %s: keys should be [] not null", raw)
	}
}
