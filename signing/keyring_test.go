package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
)

// ---------------------------------------------------------------------
// helpers shared by the signing tests

// krAuthority returns a valid unified social credit code made from a
// 17-character body (check character appended).
func krAuthority(t testing.TB, body string) string {
	t.Helper()
	c, err := ident.CreditCodeCheck(body)
	if err != nil {
		t.Fatalf("credit code body %q: %v", body, err)
	}
	return body + string(c)
}

// Two issuing authorities: domain.md's example code and another valid one.
var (
	krAuthA = "91350100M000100Y43"
	krAuthB = krCreditCode("91110000600000000")
)

func krCreditCode(body string) string {
	c, err := ident.CreditCodeCheck(body)
	if err != nil {
		panic(err)
	}
	return body + string(c)
}

func krName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"licensehub test"}}
}

func krNewSM2(t testing.TB) *sm2.PrivateKey {
	t.Helper()
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func krKID(t testing.TB, pub *ecdsa.PublicKey) string {
	t.Helper()
	kid, err := KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// krCheapEncrypter is keyEncrypter with few PBKDF2 iterations, to keep the
// tests that write encrypted keys themselves fast.
var krCheapEncrypter = pkcs.NewPBESEncrypter(pkcs.SM4CBC, pkcs.NewPBKDF2Opts(pkcs.SM3, 16, 1000))

// krWriteKeyFile writes priv as PKCS#8 PEM (encrypted when password is not
// empty) to dir/name with mode.
func krWriteKeyFile(t testing.TB, dir, name string, priv *sm2.PrivateKey, password []byte, mode os.FileMode) {
	t.Helper()
	typ := "PRIVATE KEY"
	var der []byte
	var err error
	if len(password) > 0 {
		typ = "ENCRYPTED PRIVATE KEY"
		der, err = pkcs8.MarshalPrivateKey(priv, password, krCheapEncrypter)
	} else {
		der, err = pkcs8.MarshalPrivateKey(priv, nil, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	krWriteFile(t, filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func krWriteFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
}

// krTestKey is one key of a test keyring: its material and its entry.
type krTestKey struct {
	priv   *sm2.PrivateKey
	kid    string
	fields map[string]string // keyring.yaml fields; "" values are left out
}

// krNewTestKey makes a key of authority, state active, valid 2025–2027.
func krNewTestKey(t testing.TB, auth string) *krTestKey {
	t.Helper()
	priv := krNewSM2(t)
	kid := krKID(t, &priv.PublicKey)
	return &krTestKey{priv: priv, kid: kid, fields: map[string]string{
		"kid":        kid,
		"authority":  auth,
		"file":       "keys/" + kid[:8] + ".key.pem",
		"not_before": "2025-01-01T00:00:00Z",
		"not_after":  "2027-01-01T00:00:00+08:00",
		"state":      "active",
	}}
}

var krFieldOrder = []string{"kid", "authority", "file", "public_key", "certificate", "not_before", "not_after", "state", "retired_at", "compromised_at"}

// krYAML renders keyring.yaml for keys, with extra lines appended to
// each entry (e.g. an unknown field).
func krYAML(keys []*krTestKey) string {
	var b strings.Builder
	b.WriteString("# test keyring\nversion: 1\nkeys:\n")
	for _, k := range keys {
		prefix := "  - "
		names := slices.Clone(krFieldOrder)
		for f := range k.fields {
			if !slices.Contains(names, f) {
				names = append(names, f) // unknown fields, last
			}
		}
		for _, f := range names {
			v, ok := k.fields[f]
			if !ok || v == "" {
				continue
			}
			fmt.Fprintf(&b, "%s%s: %s\n", prefix, f, v)
			prefix = "    "
		}
	}
	return b.String()
}

// krWriteKeyring writes the keys' files (unencrypted, mode 0600, unless the
// caller already wrote them) and keyring.yaml into dir.
func krWriteKeyring(t testing.TB, dir string, keys []*krTestKey) {
	t.Helper()
	for _, k := range keys {
		p := filepath.Join(dir, k.fields["file"])
		if _, err := os.Stat(p); err != nil && k.priv != nil {
			krWriteKeyFile(t, dir, k.fields["file"], k.priv, nil, 0o600)
		}
	}
	krWriteFile(t, filepath.Join(dir, KeyringFile), []byte(krYAML(keys)), 0o644)
}

func krOpen(t testing.TB, dir string, opts ...Option) *Keyring {
	t.Helper()
	k, err := OpenKeyring(dir, opts...)
	if err != nil {
		t.Fatalf("OpenKeyring: %v", err)
	}
	return k
}

func krTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func krTimePtr(s string) *time.Time { t := krTime(s); return &t }

// krWantErr checks that err has code and mentions every string of want.
func krWantErr(t testing.TB, err error, code string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s mentioning %q", code, want)
	}
	if got := licensehub.ErrorCode(err); got != code {
		t.Errorf("code %s, want %s (%v)", got, code, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

// ---------------------------------------------------------------------
// Opening

func TestOpenKeyringGood(t *testing.T) {
	dir := t.TempDir()
	old := krNewTestKey(t, krAuthA)
	old.fields["not_before"] = "2024-01-01T00:00:00+08:00"
	old.fields["state"] = "retired"
	old.fields["retired_at"] = "2025-06-01T00:00:00Z"
	cur := krNewTestKey(t, krAuthA)
	cur.fields["not_before"] = "2025-06-01T00:00:00Z"
	enc := krNewTestKey(t, krAuthB) // encrypted, with a public_key file
	enc.fields["public_key"] = "keys/b.pub.pem"
	pubPEM, err := encodePublicKeyPEM(&enc.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	krWriteFile(t, filepath.Join(dir, "keys/b.pub.pem"), []byte(pubPEM), 0o644)
	krWriteKeyFile(t, dir, enc.fields["file"], enc.priv, []byte("s3cret"), 0o400)
	krWriteKeyring(t, dir, []*krTestKey{cur, enc, old})

	var asked []string
	k := krOpen(t, dir, WithPassword(func(kid string) ([]byte, error) {
		asked = append(asked, kid)
		return []byte("s3cret"), nil
	}))
	if !slices.Equal(asked, []string{enc.kid}) {
		t.Errorf("password asked for %v, want only the encrypted key %s", asked, enc.kid)
	}

	keys := k.Keys()
	var order []string
	for _, ki := range keys {
		order = append(order, ki.KeyID)
		if ki.PublicKey == nil || ki.PublicKeyPEM == "" || ki.Algorithm != Algorithm {
			t.Errorf("key %s: public key or algorithm not filled: %+v", ki.KeyID, ki)
		}
	}
	if want := []string{enc.kid, old.kid, cur.kid}; !slices.Equal(order, want) { // krAuthB < krAuthA
		t.Errorf("Keys() order %v, want %v (authority, then not_before)", order, want)
	}

	got, err := k.Key(old.kid)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PublicKey.Equal(&old.priv.PublicKey) {
		t.Error("Key(old).PublicKey is not the key file's public key")
	}
	if got.State != StateRetired || got.RetiredAt == nil || !got.RetiredAt.Equal(krTime("2025-06-01T00:00:00Z")) {
		t.Errorf("retired key read as %+v", got)
	}
	if !got.NotBefore.Equal(krTime("2023-12-31T16:00:00Z")) || got.NotBefore.Location() != time.UTC {
		t.Errorf("not_before %v, want 2023-12-31T16:00:00Z in UTC", got.NotBefore)
	}
	// Key returns a copy: changing it does not change the keyring.
	*got.RetiredAt = time.Time{}
	if again, _ := k.Key(old.kid); !again.RetiredAt.Equal(krTime("2025-06-01T00:00:00Z")) {
		t.Error("a caller changed the keyring through Key's RetiredAt")
	}
	_, err = k.Key("00000000000000000000000000000000")
	krWantErr(t, err, licensehub.EKEYNOTFOUND, "00000000000000000000000000000000")

	// Signing: the active key of each authority, verified with the
	// published public key.
	at := krTime("2026-01-01T00:00:00Z")
	for _, tk := range []*krTestKey{cur, enc} {
		s, err := k.SignerFor(tk.fields["authority"], at)
		if err != nil {
			t.Fatalf("SignerFor(%s): %v", tk.fields["authority"], err)
		}
		if s.Key().KeyID != tk.kid {
			t.Errorf("SignerFor(%s) gave key %s, want %s", tk.fields["authority"], s.Key().KeyID, tk.kid)
		}
		msg := []byte("license 1.2.156.3005.2.x")
		sig, err := s.Sign(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := k.Key(tk.kid)
		if err := VerifyMessage(info.PublicKey, msg, sig); err != nil {
			t.Errorf("signature of %s does not verify with the published key: %v", tk.kid, err)
		}
	}
}

func TestOpenKeyringRefusals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	type setup struct {
		dir  string
		keys []*krTestKey
		opts []Option
	}
	tests := []struct {
		name string
		// prepare changes the default keyring (one active key of krAuthA,
		// one of krAuthB) before it is written; after runs once it is.
		prepare func(t *testing.T, s *setup)
		after   func(t *testing.T, s *setup)
		want    func(s *setup) []string
	}{
		{
			name: "world-readable key file",
			after: func(t *testing.T, s *setup) {
				os.Chmod(filepath.Join(s.dir, s.keys[0].fields["file"]), 0o644)
			},
			want: func(s *setup) []string {
				return []string{filepath.Join(s.dir, s.keys[0].fields["file"]), "readable by group/others (mode 0644)", "chmod 600", "keys[0].file", s.keys[0].kid}
			},
		},
		{
			name: "group-readable key file",
			after: func(t *testing.T, s *setup) {
				os.Chmod(filepath.Join(s.dir, s.keys[1].fields["file"]), 0o640)
			},
			want: func(s *setup) []string {
				return []string{filepath.Join(s.dir, s.keys[1].fields["file"]), "mode 0640", s.keys[1].kid}
			},
		},
		{
			name: "kid does not match the key file",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["kid"] = strings.Repeat("ab", 16)
			},
			want: func(s *setup) []string {
				return []string{strings.Repeat("ab", 16), "does not match the key", s.keys[0].kid, "keys[0].kid"}
			},
		},
		{
			name: "kid not hex",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["kid"] = "KEY-1"
			},
			want: func(s *setup) []string { return []string{`"KEY-1" is not a key ID`} },
		},
		{
			name: "bad authority check character",
			prepare: func(t *testing.T, s *setup) {
				s.keys[1].fields["authority"] = "91350100M000100Y44"
			},
			want: func(s *setup) []string {
				return []string{"keys[1]", s.keys[1].kid, "authority", "91350100M000100Y44", "check character"}
			},
		},
		{
			name: "authority with a forbidden letter",
			prepare: func(t *testing.T, s *setup) {
				s.keys[1].fields["authority"] = "91350100M000100O43"
			},
			want: func(s *setup) []string { return []string{"authority", "91350100M000100O43"} },
		},
		{
			name: "two active keys for one authority",
			prepare: func(t *testing.T, s *setup) {
				s.keys[1].fields["authority"] = krAuthA
			},
			want: func(s *setup) []string {
				return []string{"keys[1]", s.keys[1].kid, "already has an active key, keys[0]", s.keys[0].kid, krAuthA}
			},
		},
		{
			name: "compromised without compromised_at",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["state"] = "compromised"
			},
			want: func(s *setup) []string { return []string{s.keys[0].kid, "compromised_at: missing"} },
		},
		{
			name: "retired without retired_at",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["state"] = "retired"
			},
			want: func(s *setup) []string { return []string{s.keys[0].kid, "retired_at: missing"} },
		},
		{
			name: "active with retired_at",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["retired_at"] = "2025-02-01T00:00:00Z"
			},
			want: func(s *setup) []string { return []string{s.keys[0].kid, "retired_at: set on an active key"} },
		},
		{
			name: "unknown state",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["state"] = "revoked"
			},
			want: func(s *setup) []string {
				return []string{"keys[0].state", `"revoked" is not one of active, retired, compromised`}
			},
		},
		{
			name: "not_before after not_after",
			prepare: func(t *testing.T, s *setup) {
				s.keys[1].fields["not_before"] = "2027-01-01T00:00:00Z"
				s.keys[1].fields["not_after"] = "2026-01-01T00:00:00Z"
			},
			want: func(s *setup) []string {
				return []string{s.keys[1].kid, "not_after: 2026-01-01T00:00:00Z is not after not_before 2027-01-01T00:00:00Z"}
			},
		},
		{
			name: "equal dates",
			prepare: func(t *testing.T, s *setup) {
				s.keys[1].fields["not_after"] = s.keys[1].fields["not_before"]
			},
			want: func(s *setup) []string { return []string{"keys[1].not_after", "is not after not_before"} },
		},
		{
			name: "date without time and zone",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["not_after"] = "2027-01-01"
			},
			want: func(s *setup) []string {
				return []string{"keys[0].not_after", `"2027-01-01" is not an RFC 3339 time`}
			},
		},
		{
			name: "missing not_before",
			prepare: func(t *testing.T, s *setup) {
				delete(s.keys[0].fields, "not_before")
			},
			want: func(s *setup) []string {
				return []string{"keys[0].not_before", "not_before: missing: an RFC 3339 time"}
			},
		},
		{
			name: "unknown field in an entry",
			prepare: func(t *testing.T, s *setup) {
				s.keys[1].fields["expires"] = "2027-01-01T00:00:00Z"
			},
			want: func(s *setup) []string {
				return []string{KeyringFile, "line 16", "field expires is not a key field"}
			},
		},
		{
			name: "unknown top-level field",
			after: func(t *testing.T, s *setup) {
				krAppendFile(t, filepath.Join(s.dir, KeyringFile), "password: hunter2\n")
			},
			want: func(s *setup) []string { return []string{"field password is not a keyring field"} },
		},
		{
			name: "second YAML document",
			after: func(t *testing.T, s *setup) {
				krAppendFile(t, filepath.Join(s.dir, KeyringFile), "---\nversion: 1\n")
			},
			want: func(s *setup) []string { return []string{"more than one YAML document"} },
		},
		{
			name: "unsupported version",
			after: func(t *testing.T, s *setup) {
				p := filepath.Join(s.dir, KeyringFile)
				data, _ := os.ReadFile(p)
				krWriteFile(t, p, bytes.Replace(data, []byte("version: 1"), []byte("version: 2"), 1), 0o644)
			},
			want: func(s *setup) []string { return []string{"version: 2 is not supported"} },
		},
		{
			name: "duplicate kid",
			prepare: func(t *testing.T, s *setup) {
				dup := &krTestKey{kid: s.keys[0].kid, fields: map[string]string{}}
				for k, v := range s.keys[0].fields {
					dup.fields[k] = v
				}
				dup.fields["state"] = "retired"
				dup.fields["retired_at"] = "2025-03-01T00:00:00Z"
				s.keys = append(s.keys, dup)
			},
			want: func(s *setup) []string { return []string{"keys[2]", "kid: duplicate: keys[0] has the same kid"} },
		},
		{
			name: "key file missing",
			after: func(t *testing.T, s *setup) {
				os.Remove(filepath.Join(s.dir, s.keys[1].fields["file"]))
			},
			want: func(s *setup) []string {
				return []string{filepath.Join(s.dir, s.keys[1].fields["file"]) + " does not exist", s.keys[1].kid}
			},
		},
		{
			name: "key file outside the directory",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["file"] = "../elsewhere.key.pem"
			},
			want: func(s *setup) []string {
				return []string{"keys[0].file", `"../elsewhere.key.pem" must be a relative path inside`}
			},
		},
		{
			name: "absolute key path",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["file"] = "/etc/ssl/private/x.pem"
			},
			want: func(s *setup) []string { return []string{"keys[0].file", "must be a relative path"} },
		},
		{
			name: "not an SM2 key",
			after: func(t *testing.T, s *setup) {
				p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				der, err := smx509.MarshalPKCS8PrivateKey(p256)
				if err != nil {
					t.Fatal(err)
				}
				krWriteFile(t, filepath.Join(s.dir, s.keys[0].fields["file"]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
			},
			want: func(s *setup) []string { return []string{s.keys[0].kid, "not SM2"} },
		},
		{
			name: "SEC1 instead of PKCS#8",
			after: func(t *testing.T, s *setup) {
				der, err := smx509.MarshalECPrivateKey(&s.keys[0].priv.PrivateKey)
				if err != nil {
					t.Fatal(err)
				}
				krWriteFile(t, filepath.Join(s.dir, s.keys[0].fields["file"]), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
			},
			want: func(s *setup) []string { return []string{`holds a "EC PRIVATE KEY" PEM block`, "openssl pkcs8 -topk8"} },
		},
		{
			name: "two keys in one file",
			after: func(t *testing.T, s *setup) {
				p := filepath.Join(s.dir, s.keys[0].fields["file"])
				other, _ := os.ReadFile(filepath.Join(s.dir, s.keys[1].fields["file"]))
				krAppendFile(t, p, string(other))
			},
			want: func(s *setup) []string { return []string{"data after its first PEM block"} },
		},
		{
			name: "encrypted key without a password",
			after: func(t *testing.T, s *setup) {
				krWriteKeyFile(t, s.dir, s.keys[1].fields["file"], s.keys[1].priv, []byte("right"), 0o600)
			},
			want: func(s *setup) []string {
				return []string{filepath.Join(s.dir, s.keys[1].fields["file"]), "is encrypted; give the keyring its password", s.keys[1].kid}
			},
		},
		{
			name: "encrypted key with the wrong password",
			after: func(t *testing.T, s *setup) {
				krWriteKeyFile(t, s.dir, s.keys[1].fields["file"], s.keys[1].priv, []byte("right"), 0o600)
				s.opts = append(s.opts, WithSinglePassword([]byte("wrong")))
			},
			want: func(s *setup) []string {
				return []string{filepath.Join(s.dir, s.keys[1].fields["file"]), "cannot be decrypted: wrong password", s.keys[1].kid}
			},
		},
		{
			name: "password source fails",
			after: func(t *testing.T, s *setup) {
				krWriteKeyFile(t, s.dir, s.keys[1].fields["file"], s.keys[1].priv, []byte("right"), 0o600)
				s.opts = append(s.opts, WithPassword(func(kid string) ([]byte, error) {
					return nil, errors.New("vault sealed")
				}))
			},
			want: func(s *setup) []string { return []string{"password is unavailable: vault sealed"} },
		},
		{
			name: "public_key file of another key",
			after: func(t *testing.T, s *setup) {
				pub, _ := encodePublicKeyPEM(&s.keys[1].priv.PublicKey)
				krWriteFile(t, filepath.Join(s.dir, "a.pub.pem"), []byte(pub), 0o644)
				p := filepath.Join(s.dir, KeyringFile)
				s.keys[0].fields["public_key"] = "a.pub.pem"
				krWriteFile(t, p, []byte(krYAML(s.keys)), 0o644)
			},
			want: func(s *setup) []string { return []string{"keys[0].public_key", "is not the public key of"} },
		},
		{
			name: "several problems reported together",
			prepare: func(t *testing.T, s *setup) {
				s.keys[0].fields["authority"] = "123"
				s.keys[1].fields["state"] = "compromised"
			},
			after: func(t *testing.T, s *setup) {
				os.Chmod(filepath.Join(s.dir, s.keys[1].fields["file"]), 0o604)
			},
			want: func(s *setup) []string {
				return []string{"3 problems", "keys[0] (kid " + s.keys[0].kid + "): authority", "compromised_at: missing", "mode 0604"}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &setup{dir: t.TempDir(), keys: []*krTestKey{krNewTestKey(t, krAuthA), krNewTestKey(t, krAuthB)}}
			if tc.prepare != nil {
				tc.prepare(t, s)
			}
			krWriteKeyring(t, s.dir, s.keys)
			if tc.after != nil {
				tc.after(t, s)
			}
			k, err := OpenKeyring(s.dir, s.opts...)
			if k != nil {
				t.Errorf("OpenKeyring returned a keyring with the error")
			}
			krWantErr(t, err, licensehub.EINVALID, tc.want(s)...)
			// Key material never appears in errors.
			krAssertNoSecret(t, err.Error(), s.keys...)
		})
	}
}

func krAppendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func TestOpenKeyringFileLevelRefusals(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenKeyring(dir)
	krWantErr(t, err, licensehub.EINVALID, "no keyring at "+filepath.Join(dir, KeyringFile), "hubctl keys gen")

	krWriteFile(t, filepath.Join(dir, KeyringFile), nil, 0o644)
	_, err = OpenKeyring(dir)
	krWantErr(t, err, licensehub.EINVALID, "empty")

	krWriteFile(t, filepath.Join(dir, KeyringFile), []byte("keys:\n  - kid: [\n"), 0o644)
	_, err = OpenKeyring(dir)
	krWantErr(t, err, licensehub.EINVALID, KeyringFile, "line")

	krWriteFile(t, filepath.Join(dir, KeyringFile), []byte("keys: []\n"), 0o644)
	_, err = OpenKeyring(dir)
	krWantErr(t, err, licensehub.EINVALID, "version: missing")

	// An empty keyring opens (verification-only hub) but signs nothing.
	krWriteFile(t, filepath.Join(dir, KeyringFile), []byte("version: 1\nkeys: []\n"), 0o644)
	k := krOpen(t, dir)
	if len(k.Keys()) != 0 {
		t.Errorf("keys %v", k.Keys())
	}
	_, err = k.SignerFor(krAuthA, time.Now())
	krWantErr(t, err, licensehub.EKEYNOTFOUND, krAuthA, "hubctl keys gen")

	_, err = OpenKeyring(dir, WithTrustRoots([]byte("not pem")))
	krWantErr(t, err, licensehub.EINVALID, "trust roots", "no CERTIFICATE")
}

// ---------------------------------------------------------------------
// Management

func TestGenerateRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	t0 := krTime("2025-01-01T00:00:00Z")
	end := krTime("2030-01-01T00:00:00Z")

	first, err := Generate(dir, krAuthA, t0.Add(500*time.Millisecond), end, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.State != StateActive || first.Authority != krAuthA || first.PublicKey == nil || first.PublicKeyPEM == "" {
		t.Errorf("Generate returned %+v", first)
	}
	if !first.NotBefore.Equal(t0) {
		t.Errorf("not_before %v, want %v (whole seconds)", first.NotBefore, t0)
	}
	if runtime.GOOS != "windows" {
		krAssertMode(t, dir, 0o700)
		krAssertMode(t, filepath.Join(dir, first.KeyID+".key.pem"), 0o600)
	}
	keyringYAML := krReadString(t, filepath.Join(dir, KeyringFile))
	if !strings.HasPrefix(keyringYAML, "# licensehub keyring:") {
		t.Errorf("keyring.yaml has no header comment:\n%s", keyringYAML)
	}

	// One active key per authority: Generate refuses a second one.
	_, err = Generate(dir, krAuthA, t0, end, nil)
	krWantErr(t, err, licensehub.ECONFLICT, krAuthA, first.KeyID, "hubctl keys rotate")

	// Another authority is fine; and an operator's comment survives edits.
	second, err := Generate(dir, krAuthB, t0, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	krAppendFile(t, filepath.Join(dir, KeyringFile), "# operator: B's key is on the HSM shortlist\n")

	rotateAt := krTime("2026-03-01T08:00:00Z")
	newKey, retired, err := Rotate(dir, krAuthA, rotateAt, krTime("2031-01-01T00:00:00Z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if newKey.KeyID == first.KeyID || newKey.State != StateActive || !newKey.NotBefore.Equal(rotateAt) {
		t.Errorf("new key %+v", newKey)
	}
	if retired.KeyID != first.KeyID || retired.State != StateRetired || retired.RetiredAt == nil || !retired.RetiredAt.Equal(rotateAt) {
		t.Errorf("retired key %+v", retired)
	}
	if retired.PublicKey == nil || !retired.PublicKey.Equal(first.PublicKey) {
		t.Error("retired key's PublicKey is not filled")
	}
	keyringYAML = krReadString(t, filepath.Join(dir, KeyringFile))
	for _, want := range []string{"# licensehub keyring:", "# operator: B's key is on the HSM shortlist", "retired_at: 2026-03-01T08:00:00Z"} {
		if !strings.Contains(keyringYAML, want) {
			t.Errorf("keyring.yaml after rotate lacks %q:\n%s", want, keyringYAML)
		}
	}

	k := krOpen(t, dir)
	if got := len(k.Keys()); got != 3 {
		t.Fatalf("%d keys, want 3", got)
	}
	// The new key signs…
	after := rotateAt.Add(time.Hour)
	s, err := k.SignerFor(krAuthA, after)
	if err != nil {
		t.Fatal(err)
	}
	if s.Key().KeyID != newKey.KeyID {
		t.Errorf("SignerFor after rotation gave %s, want the new key %s", s.Key().KeyID, newKey.KeyID)
	}
	msg := []byte(`{"license":"x"}`)
	sig, err := s.Sign(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMessage(newKey.PublicKey, msg, sig); err != nil {
		t.Errorf("new key's signature does not verify: %v", err)
	}
	// …the old one does not, not even for a time before the rotation…
	oldInfo, err := k.Key(first.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	err = oldInfo.CanSignAt(rotateAt.Add(-time.Hour))
	krWantErr(t, err, licensehub.EKEYNOTFOUND, first.KeyID, "retired since 2026-03-01T08:00:00Z")
	if errRule(err) != RuleKeyNotActive {
		t.Errorf("rule %q", errRule(err))
	}
	// (SignerFor at a time before the new key's not_before finds nothing.)
	_, err = k.SignerFor(krAuthA, rotateAt.Add(-time.Hour))
	krWantErr(t, err, licensehub.EKEYNOTFOUND, newKey.KeyID, "is valid from 2026-03-01T08:00:00Z")
	if errRule(err) != RuleKeyOutsideValidity {
		t.Errorf("SignerFor's rule %q, want %q", errRule(err), RuleKeyOutsideValidity)
	}
	// …but its old signatures still verify, and newer ones do not.
	if err := oldInfo.CheckAt(rotateAt.Add(-time.Second)); err != nil {
		t.Errorf("old key's signature from before retirement refused: %v", err)
	}
	err = oldInfo.CheckAt(rotateAt)
	krWantErr(t, err, licensehub.ESIGINVALID, "retired at 2026-03-01T08:00:00Z")
	if errRule(err) != RuleKeyRetired {
		t.Errorf("rule %q, want %q", errRule(err), RuleKeyRetired)
	}
	// B is untouched.
	if s, err := k.SignerFor(krAuthB, after); err != nil || s.Key().KeyID != second.KeyID {
		t.Errorf("authority B: %v, %v", s, err)
	}

	// Rotating an authority with no key, or in no keyring, says what to do.
	_, _, err = Rotate(dir, krAuthority(t, "12100000000000000"), rotateAt, end, nil)
	krWantErr(t, err, licensehub.EKEYNOTFOUND, "no active key to rotate", "hubctl keys gen")
	_, _, err = Rotate(t.TempDir(), krAuthA, rotateAt, end, nil)
	krWantErr(t, err, licensehub.EKEYNOTFOUND, "no keyring")

	// Bad arguments.
	_, err = Generate(dir, "91350100M000100Y4", t0, end, nil)
	krWantErr(t, err, licensehub.EINVALID, "91350100M000100Y4", "not a valid unified social credit code")
	_, err = Generate(dir, krAuthority(t, "12100000000000000"), end, t0, nil)
	krWantErr(t, err, licensehub.EINVALID, "is not after not_before")
	_, _, err = Rotate(dir, krAuthA, end, end, nil)
	krWantErr(t, err, licensehub.EINVALID, "is not after not_before")
}

func TestGenerateRefusesBrokenKeyring(t *testing.T) {
	dir := t.TempDir()
	krWriteFile(t, filepath.Join(dir, KeyringFile), []byte("version: 1\nkeys:\n  - kid: x\n"), 0o644)
	_, err := Generate(dir, krAuthA, krTime("2025-01-01T00:00:00Z"), krTime("2026-01-01T00:00:00Z"), nil)
	krWantErr(t, err, licensehub.EINVALID, "refusing to change keys until", "is fixed", "kid")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files were written next to a broken keyring: %v", entries)
	}
}

// A hand-written keyring (no header, "keys:" empty, an operator's
// comment) is extended without losing anything, and gains the header.
func TestGenerateIntoHandWrittenKeyring(t *testing.T) {
	dir := t.TempDir()
	krWriteFile(t, filepath.Join(dir, KeyringFile), []byte("version: 1 # do not change\nkeys:\n"), 0o640)
	info, err := Generate(dir, krAuthA, krTime("2025-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := krReadString(t, filepath.Join(dir, KeyringFile))
	for _, want := range []string{"# licensehub keyring:", "version: 1 # do not change", "  - kid: " + info.KeyID} {
		if !strings.Contains(got, want) {
			t.Errorf("keyring.yaml lacks %q:\n%s", want, got)
		}
	}
	if runtime.GOOS != "windows" {
		krAssertMode(t, filepath.Join(dir, KeyringFile), 0o640) // the operator's mode is kept
	}
	if k := krOpen(t, dir); len(k.Keys()) != 1 {
		t.Errorf("keys %v", k.Keys())
	}
}

func TestGenerateEncrypted(t *testing.T) {
	dir := t.TempDir()
	pw := []byte("correct horse")
	info, err := Generate(dir, krAuthA, krTime("2025-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), pw)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := krReadString(t, filepath.Join(dir, info.KeyID+".key.pem"))
	if !strings.HasPrefix(keyFile, "-----BEGIN ENCRYPTED PRIVATE KEY-----") {
		t.Errorf("key file is not encrypted PKCS#8:\n%.60s", keyFile)
	}
	_, err = OpenKeyring(dir)
	krWantErr(t, err, licensehub.EINVALID, info.KeyID, "is encrypted")
	_, err = OpenKeyring(dir, WithSinglePassword([]byte("wrong")))
	krWantErr(t, err, licensehub.EINVALID, info.KeyID, "wrong password")
	k := krOpen(t, dir, WithSinglePassword(pw))
	s, err := k.SignerFor(krAuthA, krTime("2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMessage(info.PublicKey, []byte("m"), sig); err != nil {
		t.Error(err)
	}

	// Rotating with another password still reports the retired key's
	// public key (from its public_key file).
	_, retired, err := Rotate(dir, krAuthA, krTime("2026-01-01T00:00:00Z"), krTime("2031-01-01T00:00:00Z"), []byte("new password"))
	if err != nil {
		t.Fatal(err)
	}
	if retired.PublicKey == nil || !retired.PublicKey.Equal(info.PublicKey) {
		t.Error("retired key's public key missing")
	}
	pws := map[string][]byte{info.KeyID: pw}
	k = krOpen(t, dir, WithPassword(func(kid string) ([]byte, error) {
		if p, ok := pws[kid]; ok {
			return p, nil
		}
		return []byte("new password"), nil
	}))
	if len(k.Keys()) != 2 {
		t.Errorf("keys: %v", k.Keys())
	}
}

func TestMarkCompromised(t *testing.T) {
	dir := t.TempDir()
	info, err := Generate(dir, krAuthA, krTime("2025-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := krTime("2026-05-01T12:00:00Z")
	if err := MarkCompromised(dir, info.KeyID, at.Add(999*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	k := krOpen(t, dir)
	got, _ := k.Key(info.KeyID)
	if got.State != StateCompromised || got.CompromisedAt == nil || !got.CompromisedAt.Equal(at) {
		t.Errorf("after MarkCompromised: %+v", got)
	}
	if err := got.CheckAt(at.Add(-time.Second)); err != nil {
		t.Errorf("signature from before the compromise refused: %v", err)
	}
	err = got.CheckAt(at)
	krWantErr(t, err, licensehub.ESIGINVALID, "compromised at 2026-05-01T12:00:00Z")
	if errRule(err) != RuleKeyCompromised {
		t.Errorf("rule %q", errRule(err))
	}
	_, err = k.SignerFor(krAuthA, at.Add(-time.Hour))
	krWantErr(t, err, licensehub.EKEYNOTFOUND, "no active key", info.KeyID, "compromised")

	// A later time does not move the compromise; an earlier one does.
	if err := MarkCompromised(dir, info.KeyID, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := krOpen(t, dir).Key(info.KeyID); !got.CompromisedAt.Equal(at) {
		t.Errorf("compromised_at moved later to %v", got.CompromisedAt)
	}
	earlier := at.Add(-24 * time.Hour)
	if err := MarkCompromised(dir, info.KeyID, earlier); err != nil {
		t.Fatal(err)
	}
	if got, _ := krOpen(t, dir).Key(info.KeyID); !got.CompromisedAt.Equal(earlier) {
		t.Errorf("compromised_at %v, want %v", got.CompromisedAt, earlier)
	}

	// The authority can get a new key now.
	if _, err := Generate(dir, krAuthA, krTime("2026-05-02T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), nil); err != nil {
		t.Errorf("Generate after compromise: %v", err)
	}

	err = MarkCompromised(dir, strings.Repeat("0", 32), at)
	krWantErr(t, err, licensehub.EKEYNOTFOUND, strings.Repeat("0", 32))
	err = MarkCompromised(dir, info.KeyID, time.Now().Add(time.Hour))
	krWantErr(t, err, licensehub.EINVALID, "in the future")
	err = MarkCompromised(dir, info.KeyID, time.Time{})
	krWantErr(t, err, licensehub.EINVALID, "missing")
}

func TestRetiredThenCompromised(t *testing.T) {
	dir := t.TempDir()
	first, err := Generate(dir, krAuthA, krTime("2025-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Rotate(dir, krAuthA, krTime("2026-01-01T00:00:00Z"), krTime("2031-01-01T00:00:00Z"), nil); err != nil {
		t.Fatal(err)
	}
	if err := MarkCompromised(dir, first.KeyID, krTime("2025-06-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	got, _ := krOpen(t, dir).Key(first.KeyID)
	if got.State != StateCompromised || got.RetiredAt == nil {
		t.Fatalf("%+v", got)
	}
	if err := got.CheckAt(krTime("2025-05-31T23:59:59Z")); err != nil {
		t.Error(err)
	}
	if err := got.CheckAt(krTime("2025-07-01T00:00:00Z")); errRule(err) != RuleKeyCompromised {
		t.Errorf("rule %q (%v), want %q", errRule(err), err, RuleKeyCompromised)
	}
}

// Concurrent hubctl invocations serialise on the lock file: no edit is
// lost.
func TestConcurrentGenerate(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	auths := make([]string, n)
	for i := range auths {
		auths[i] = krAuthority(t, fmt.Sprintf("9135010000000%04d", i))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Generate(dir, auths[i], krTime("2025-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Generate %d: %v", i, err)
		}
	}
	k := krOpen(t, dir)
	if got := len(k.Keys()); got != n {
		t.Errorf("%d keys after %d concurrent Generates", got, n)
	}
	if _, err := os.Stat(filepath.Join(dir, lockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left behind: %v", err)
	}
}

func TestLockHeld(t *testing.T) {
	dir := t.TempDir()
	krWriteFile(t, filepath.Join(dir, lockFile), []byte("pid 4242 on ops1 since 2026-01-01T00:00:00Z\n"), 0o600)
	defer func(d time.Duration) { lockWait = d }(lockWait)
	lockWait = 100 * time.Millisecond
	_, err := Generate(dir, krAuthA, krTime("2025-01-01T00:00:00Z"), krTime("2030-01-01T00:00:00Z"), nil)
	krWantErr(t, err, licensehub.ETIMEOUT, "locked by another hubctl", "pid 4242 on ops1", filepath.Join(dir, lockFile))
}

// ---------------------------------------------------------------------
// Certificates

type krTestCA struct {
	cert *smx509.Certificate
	priv *sm2.PrivateKey
	pem  []byte
}

func krNewCA(t testing.TB, name string, parent *krTestCA) *krTestCA {
	t.Helper()
	priv := krNewSM2(t)
	tmpl := &smx509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               krName(name),
		NotBefore:             krTime("2020-01-01T00:00:00Z"),
		NotAfter:              krTime("2040-01-01T00:00:00Z"),
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	parentCert, signer := tmpl, priv
	if parent != nil {
		parentCert, signer = parent.cert, parent.priv
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, parentCert, &priv.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &krTestCA{cert: cert, priv: priv, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a signing certificate for pub valid from nb to na.
func (ca *krTestCA) issue(t testing.TB, pub *ecdsa.PublicKey, nb, na time.Time) []byte {
	t.Helper()
	tmpl := &smx509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      krName("issuing authority " + krAuthA),
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCertificates(t *testing.T) {
	root := krNewCA(t, "City Root CA", nil)
	inter := krNewCA(t, "City Issuing CA", root)
	otherRoot := krNewCA(t, "Someone Else's CA", nil)
	nb, na := krTime("2025-01-01T00:00:00Z"), krTime("2027-01-01T00:00:00Z")

	tests := []struct {
		name  string
		cert  func(k *krTestKey) []byte // nil: no certificate
		roots []byte                    // nil: no trust roots
		want  []string                  // nil: opens
	}{
		{"chains to the root", func(k *krTestKey) []byte { return root.issue(t, &k.priv.PublicKey, nb, na) }, root.pem, nil},
		{"chains through an intermediate in the file", func(k *krTestKey) []byte {
			return append(inter.issue(t, &k.priv.PublicKey, nb, na), inter.pem...)
		}, root.pem, nil},
		{"one of several roots", func(k *krTestKey) []byte { return otherRoot.issue(t, &k.priv.PublicKey, nb, na) },
			append(bytes.Clone(root.pem), otherRoot.pem...), nil},
		{"certificate without trust roots is checked against the key", func(k *krTestKey) []byte {
			return otherRoot.issue(t, &k.priv.PublicKey, nb, na)
		}, nil, nil},
		{"from another root", func(k *krTestKey) []byte { return otherRoot.issue(t, &k.priv.PublicKey, nb, na) }, root.pem,
			[]string{"keys[0].certificate", "does not chain to the configured trust roots"}},
		{"intermediate missing", func(k *krTestKey) []byte { return inter.issue(t, &k.priv.PublicKey, nb, na) }, root.pem,
			[]string{"does not chain"}},
		{"for a different key", func(k *krTestKey) []byte { return root.issue(t, &krNewSM2(t).PublicKey, nb, na) }, root.pem,
			[]string{"keys[0].certificate", "is for another key"}},
		{"for a different key, no roots", func(k *krTestKey) []byte { return root.issue(t, &krNewSM2(t).PublicKey, nb, na) }, nil,
			[]string{"is for another key"}},
		{"shorter than the key's validity", func(k *krTestKey) []byte {
			return root.issue(t, &k.priv.PublicKey, nb, na.Add(-24*time.Hour))
		}, root.pem, []string{"does not cover the key's validity"}},
		{"no certificate with trust roots", nil, root.pem,
			[]string{"keys[0].certificate", "missing: trust roots are configured"}},
		{"not a certificate", func(k *krTestKey) []byte { return []byte("hello") }, nil, []string{"no CERTIFICATE PEM block"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			k := krNewTestKey(t, krAuthA)
			k.fields["not_after"] = "2027-01-01T00:00:00Z"
			if tc.cert != nil {
				k.fields["certificate"] = "certs/a.crt.pem"
				krWriteFile(t, filepath.Join(dir, "certs/a.crt.pem"), tc.cert(k), 0o644)
			}
			krWriteKeyring(t, dir, []*krTestKey{k})
			var opts []Option
			if tc.roots != nil {
				opts = append(opts, WithTrustRoots(tc.roots))
			}
			kr, err := OpenKeyring(dir, opts...)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				info, _ := kr.Key(k.kid)
				if tc.cert != nil && !strings.Contains(info.CertificatePEM, "BEGIN CERTIFICATE") {
					t.Error("CertificatePEM not filled")
				}
				return
			}
			krWantErr(t, err, licensehub.EINVALID, append(tc.want, k.kid)...)
		})
	}

	// A trust root must be a CA.
	leafOnly := root.issue(t, &krNewSM2(t).PublicKey, nb, na)
	_, err := OpenKeyring(t.TempDir(), WithTrustRoots(leafOnly))
	krWantErr(t, err, licensehub.EINVALID, "is not a CA certificate")
}

// ---------------------------------------------------------------------
// Secrets

// krAssertNoSecret fails when s contains any form of a key's private
// scalar: hex, decimal, base64 of the PKCS#8 DER (as in the PEM file).
func krAssertNoSecret(t testing.TB, s string, keys ...*krTestKey) {
	t.Helper()
	for _, k := range keys {
		if k.priv == nil {
			continue
		}
		d := k.priv.D
		der, _ := pkcs8.MarshalPrivateKey(k.priv, nil, nil)
		b64 := base64.StdEncoding.EncodeToString(der)
		for _, secret := range []string{hex.EncodeToString(d.Bytes()), strings.ToUpper(hex.EncodeToString(d.Bytes())), d.String(), b64[len(b64)-40:]} {
			if strings.Contains(s, secret) {
				t.Fatalf("output contains private key material of %s:\n%s", k.kid, s)
			}
		}
	}
}

func TestKeyringPrintsNoSecret(t *testing.T) {
	dir := t.TempDir()
	k := krNewTestKey(t, krAuthA)
	krWriteKeyring(t, dir, []*krTestKey{k})
	kr := krOpen(t, dir)
	s, err := kr.SignerFor(krAuthA, krTime("2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		slog.New(h).Info("keys", "keyring", kr, "signer", s, "key", s.Key(), "ring", kr.keys[0])
	}
	fmt.Fprintf(&out, "%v %+v %#v %s\n", kr, kr, kr, kr)
	fmt.Fprintf(&out, "%v %+v %#v\n", *kr, *kr, *kr)
	fmt.Fprintf(&out, "%v %+v\n", kr.keys[0], kr.keys[0])
	fmt.Fprintf(&out, "%v %+v %#v\n", s.Key(), s.Key(), s.Key())
	krAssertNoSecret(t, out.String(), k)
	if !strings.Contains(out.String(), k.kid) {
		t.Errorf("log output does not even name the key:\n%s", out.String())
	}
}

// ---------------------------------------------------------------------
// SignerFor

func TestSignerForErrors(t *testing.T) {
	dir := t.TempDir()
	retiredOnly := krNewTestKey(t, krAuthB)
	retiredOnly.fields["state"] = "retired"
	retiredOnly.fields["retired_at"] = "2025-06-01T00:00:00Z"
	active := krNewTestKey(t, krAuthA)
	krWriteKeyring(t, dir, []*krTestKey{active, retiredOnly})
	kr := krOpen(t, dir)

	tests := []struct {
		name      string
		authority string
		at        time.Time
		want      []string
	}{
		{"unknown authority", krAuthority(t, "12100000000000000"), krTime("2026-01-01T00:00:00Z"), []string{"has no key for authority", "hubctl keys gen"}},
		{"malformed authority", "not-a-code", krTime("2026-01-01T00:00:00Z"), []string{`"not-a-code"`, "not a valid unified social credit code"}},
		{"only a retired key", krAuthB, krTime("2025-03-01T00:00:00Z"), []string{"has no active key", retiredOnly.kid, "retired"}},
		{"before the active key's validity", krAuthA, krTime("2024-12-31T23:59:59Z"), []string{active.kid, "is valid from 2025-01-01T00:00:00Z to 2026-12-31T16:00:00Z", "2024-12-31T23:59:59Z is before"}},
		{"after the active key's validity", krAuthA, krTime("2027-01-01T00:00:00Z"), []string{active.kid, "is after"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := kr.SignerFor(tc.authority, tc.at)
			if s != nil {
				t.Errorf("got a signer with the error")
			}
			krWantErr(t, err, licensehub.EKEYNOTFOUND, tc.want...)
		})
	}
	// Boundaries are inclusive.
	for _, at := range []time.Time{krTime("2025-01-01T00:00:00Z"), krTime("2026-12-31T16:00:00Z")} {
		if _, err := kr.SignerFor(krAuthA, at); err != nil {
			t.Errorf("SignerFor at %v: %v", at, err)
		}
	}
}

// The example keyring in testdata/keyring documents the format; it must
// open (its key files are committed with git's 0644, so copy them first).
func TestExampleKeyring(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("testdata", "keyring")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		krWriteFile(t, filepath.Join(dir, e.Name()), data, 0o600)
	}
	kr := krOpen(t, dir, WithSinglePassword([]byte("example-password")), WithClock(func() time.Time { return krTime("2026-01-01T00:00:00Z") }))
	if len(kr.Keys()) != 3 {
		t.Errorf("example keyring has %d keys, want 3", len(kr.Keys()))
	}
	if _, err := kr.SignerFor(krAuthA, krTime("2026-01-01T00:00:00Z")); err != nil {
		t.Error(err)
	}
	if b := kr.Export(); !b.GeneratedAt.Equal(krTime("2026-01-01T00:00:00Z")) {
		t.Errorf("Export ignores the clock: %v", b.GeneratedAt)
	}
}

func krReadString(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func krAssertMode(t testing.TB, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}
