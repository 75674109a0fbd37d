package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	tjsm2 "github.com/tjfoc/gmsm/sm2"

	"github.com/licensehub/licensehub/internal/testenv"
)

// Interoperability with two independent SM2 implementations: the tagged
// release of github.com/tjfoc/gmsm (test-only) and OpenSSL 3.

func tjfocPublic(priv *sm2.PrivateKey) *tjsm2.PublicKey {
	return &tjsm2.PublicKey{Curve: tjsm2.P256Sm2(), X: priv.X, Y: priv.Y}
}

func tjfocPrivate(priv *sm2.PrivateKey) *tjsm2.PrivateKey {
	return &tjsm2.PrivateKey{PublicKey: *tjfocPublic(priv), D: priv.D}
}

type namedDoc struct {
	name string
	doc  *Document
}

// interopDocs returns the golden documents plus a freshly signed one.
func interopDocs(t *testing.T, priv *sm2.PrivateKey, info KeyInfo) []namedDoc {
	t.Helper()
	var docs []namedDoc
	for _, g := range goldenBodies {
		d, err := ParseDocument(goldenDoc(t, g.name))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, namedDoc{g.name, d})
	}
	d, err := Sign(context.Background(), NewKeySigner(priv, info), json.RawMessage(goldenBodies[0].body), goldenSignedAt.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return append(docs, namedDoc{"fresh", d})
}

func TestInteropTjfoc(t *testing.T) {
	priv, info := goldenKey(t)
	keys := keyMap{info.KeyID: info}
	pub := tjfocPublic(priv)
	for _, nd := range interopDocs(t, priv, info) {
		d := nd.doc
		t.Run(nd.name, func(t *testing.T) {
			msg, err := d.SignedBytes()
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(d.Signature.Value)
			if err != nil {
				t.Fatal(err)
			}
			// Hub → tjfoc: tjfoc's Verify uses the default user ID.
			if !pub.Verify(msg, sig) {
				t.Error("tjfoc rejects the hub's signature")
			}
			// tjfoc → hub: tjfoc's Sign gives DER over the default user ID.
			tsig, err := tjfocPrivate(priv).Sign(rand.Reader, msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			d2 := *d
			d2.Signature.Value = base64.StdEncoding.EncodeToString(tsig)
			if _, err := VerifySignature(&d2, keys); err != nil {
				t.Errorf("the hub rejects tjfoc's signature: %v", err)
			}
			if err := VerifyMessage(&priv.PublicKey, msg, tsig); err != nil {
				t.Errorf("VerifyMessage rejects tjfoc's signature: %v", err)
			}
		})
	}
}

// TestTjfocAcceptsJunk: tjfoc v1.4.1 ignores what follows the DER
// SEQUENCE (asn1.Unmarshal's rest), so a signature with junk appended is
// "valid" there. The hub refuses it.
func TestTjfocAcceptsJunk(t *testing.T) {
	priv, info := goldenKey(t)
	d, err := ParseDocument(goldenDoc(t, "business-license"))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := d.SignedBytes()
	sig, _ := base64.StdEncoding.DecodeString(d.Signature.Value)
	for _, junk := range [][]byte{{0}, []byte("junk"), sig} {
		bad := append(bytes.Clone(sig), junk...)
		t.Logf("tjfoc Verify(signature + %d junk bytes) = %v", len(junk), tjfocPublic(priv).Verify(msg, bad))
		wantSigRule(t, VerifyMessage(&priv.PublicKey, msg, bad), RuleTrailingBytes)
		d2 := *d
		d2.Signature.Value = base64.StdEncoding.EncodeToString(bad)
		_, err := VerifySignature(&d2, keyMap{info.KeyID: info})
		wantSigRule(t, err, RuleTrailingBytes)
	}
}

// openssl runs the openssl command in dir.
func openssl(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	testenv.RequireTool(t, "openssl")
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var opensslVerify = []string{"pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:" + DefaultUserID,
	"-pubin", "-inkey", "pub.pem", "-in", "signed.bin", "-sigfile", "sig.der"}

// TestInteropOpenSSL: hub signatures verify with OpenSSL 3 and OpenSSL's
// verify in the hub, with the key files exactly as emmansun writes them
// (SubjectPublicKeyInfo and PKCS#8, algorithm id-ecPublicKey, parameters
// the SM2 curve OID): OpenSSL 3.0 needs no conversion.
func TestInteropOpenSSL(t *testing.T) {
	needOpenSSL(t)
	priv, info := goldenKey(t)
	keys := keyMap{info.KeyID: info}
	out, _ := exec.Command("openssl", "version").CombinedOutput()
	t.Logf("%s", bytes.TrimSpace(out))
	p8, err := smx509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	pubPEM := goldenPublicKeyPEM(t, priv)

	for _, nd := range interopDocs(t, priv, info) {
		d := nd.doc
		t.Run(nd.name, func(t *testing.T) {
			dir := t.TempDir()
			msg, _ := d.SignedBytes()
			sig, _ := base64.StdEncoding.DecodeString(d.Signature.Value)
			writeFiles(t, dir, map[string][]byte{"pub.pem": pubPEM, "key.pem": keyPEM, "signed.bin": msg, "sig.der": sig})

			// Hub → OpenSSL.
			if out, err := openssl(t, dir, opensslVerify...); err != nil {
				t.Fatalf("openssl rejects the hub's signature: %v\n%s", err, out)
			}
			// Without distid OpenSSL 3 uses an empty ID: the recipe must pass it.
			noID := []string{"pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-inkey", "pub.pem", "-in", "signed.bin", "-sigfile", "sig.der"}
			_, err := openssl(t, dir, noID...)
			t.Logf("openssl verify without -pkeyopt distid: error = %v", err)
			// Tampered bytes fail in OpenSSL too.
			writeFiles(t, dir, map[string][]byte{"signed.bin": append(bytes.Clone(msg), ' ')})
			if _, err := openssl(t, dir, opensslVerify...); err == nil {
				t.Error("openssl accepts tampered signed bytes")
			}
			writeFiles(t, dir, map[string][]byte{"signed.bin": msg})

			// OpenSSL → hub.
			out, err := openssl(t, dir, "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUserID,
				"-inkey", "key.pem", "-in", "signed.bin", "-out", "ossl.sig")
			if err != nil {
				t.Fatalf("openssl sign: %v\n%s", err, out)
			}
			osig, err := os.ReadFile(filepath.Join(dir, "ossl.sig"))
			if err != nil {
				t.Fatal(err)
			}
			d2 := *d
			d2.Signature.Value = base64.StdEncoding.EncodeToString(osig)
			if _, err := VerifySignature(&d2, keys); err != nil {
				t.Errorf("the hub rejects OpenSSL's signature: %v", err)
			}
		})
	}
}

// TestInteropOpenSSLKeyFormats records which key encodings OpenSSL 3 and
// the hub exchange, and that the key ID can be computed with OpenSSL.
func TestInteropOpenSSLKeyFormats(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	msg := []byte(`{"body":{"a":1},"signature":{}}`)
	writeFiles(t, dir, map[string][]byte{"signed.bin": msg})

	// A key OpenSSL generates (PKCS#8, id-ecPublicKey + SM2 curve) loads
	// in emmansun, and OpenSSL's public key PEM is byte-identical to the
	// one emmansun writes, so KeyID can be computed from it with openssl.
	if out, err := openssl(t, dir, "genpkey", "-algorithm", "SM2", "-out", "key.pem"); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	if out, err := openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"); err != nil {
		t.Fatalf("openssl pkey -pubout: %v\n%s", err, out)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "key.pem"))
	block, _ := pem.Decode(keyPEM)
	k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("emmansun cannot read OpenSSL's SM2 PKCS#8 key: %v", err)
	}
	priv, ok := k.(*sm2.PrivateKey)
	if !ok {
		t.Fatalf("OpenSSL's key parses as %T", k)
	}
	pubPEM, _ := os.ReadFile(filepath.Join(dir, "pub.pem"))
	if want := goldenPublicKeyPEM(t, priv); !bytes.Equal(pubPEM, want) {
		t.Errorf("OpenSSL's public key PEM differs from emmansun's:\n%s\n%s", pubPEM, want)
	}
	kid, _ := KeyID(&priv.PublicKey)
	if got, err := opensslKeyID(dir); err != nil || got != kid {
		t.Errorf("key ID via openssl = %s (%v), KeyID = %s", got, err, kid)
	}
	sig, err := SignMessage(rand.Reader, priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string][]byte{"sig.der": sig})
	if out, err := openssl(t, dir, opensslVerify...); err != nil {
		t.Errorf("openssl rejects a hub signature with its own key: %v\n%s", err, out)
	}

	// Some Chinese tools write SubjectPublicKeyInfo with the SM2 OID
	// (1.2.156.10197.1.301) as algorithm instead of id-ecPublicKey. OpenSSL
	// 3.0 reads that too, and `openssl pkey -pubin` normalises it to the
	// id-ecPublicKey form, so the key ID recipe still holds.
	der, _ := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	var spki struct {
		Algo pkix.AlgorithmIdentifier
		Key  asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		t.Fatal(err)
	}
	spki.Algo.Algorithm = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
	alt, err := asn1.Marshal(spki)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string][]byte{"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: alt})})
	if out, err := openssl(t, dir, opensslVerify...); err != nil {
		t.Logf("openssl does not read the SM2-OID SubjectPublicKeyInfo: %v\n%s", err, out)
	} else {
		if got, err := opensslKeyID(dir); err != nil || got != kid {
			t.Errorf("key ID via openssl from the SM2-OID form = %q (%v), want %s", got, err, kid)
		}
	}
	if k, err := smx509.ParsePKIXPublicKey(alt); err != nil || !sm2.IsSM2PublicKey(k) {
		t.Logf("emmansun reads the SM2-OID SubjectPublicKeyInfo: %T, %v", k, err)
	}
}

// opensslKeyID computes the key ID of dir/pub.pem the way VERIFY.md does.
func opensslKeyID(dir string) (string, error) {
	cmd := exec.Command("sh", "-c", "openssl pkey -pubin -in pub.pem -outform DER | openssl dgst -sm3 -r | cut -c1-32")
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
