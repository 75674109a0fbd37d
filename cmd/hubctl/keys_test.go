package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

func hubctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestKeysLifecycleAndOfflineVerify: gen, sign, rotate, export, and verify
// offline — the old signature stays valid, the old key can no longer sign.
func TestKeysLifecycleAndOfflineVerify(t *testing.T) {
	const authority = "11430000006122244L"
	dir := filepath.Join(t.TempDir(), "keys")
	if code, _, stderr := hubctl(t, "keys", "gen", "--dir", dir, "--authority", authority); code != 0 {
		t.Fatalf("keys gen: %d %s", code, stderr)
	}
	if code, _, stderr := hubctl(t, "keys", "gen", "--dir", dir, "--authority", authority); code == 0 || !strings.Contains(stderr, "rotate") {
		t.Errorf("second gen for the same authority: %d %s", code, stderr)
	}
	ring, err := signing.OpenKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	oldSigner, err := ring.SignerFor(authority, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	docFile := filepath.Join(t.TempDir(), "license.json")
	writeSignedLicense(t, oldSigner, authority, docFile)

	// Signing and retirement times have whole seconds: rotate in the next one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	code, out, stderr := hubctl(t, "keys", "rotate", "--dir", dir, "--authority", authority)
	if code != 0 || !strings.Contains(out, oldSigner.Key().KeyID+" retired") {
		t.Fatalf("keys rotate: %d %s %s", code, out, stderr)
	}
	ring, err = signing.OpenKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	newSigner, err := ring.SignerFor(authority, time.Now())
	if err != nil || newSigner.Key().KeyID == oldSigner.Key().KeyID {
		t.Fatalf("after rotation the authority signs with %v, %v", newSigner, err)
	}
	if _, out, _ := hubctl(t, "keys", "list", "--dir", dir); !strings.Contains(out, "retired") || !strings.Contains(out, "active") {
		t.Errorf("keys list:\n%s", out)
	}

	bundle := filepath.Join(t.TempDir(), "bundle.json")
	if code, _, stderr := hubctl(t, "keys", "export", "--dir", dir, "--out", bundle); code != 0 {
		t.Fatalf("keys export: %d %s", code, stderr)
	}
	code, out, stderr = hubctl(t, "verify", docFile, "--keys", bundle)
	if code != 0 || !strings.Contains(out, "INDETERMINATE") {
		t.Errorf("verify of a document signed before rotation: %d\n%s%s", code, out, stderr)
	}

	tampered := filepath.Join(t.TempDir(), "tampered.json")
	raw, _ := os.ReadFile(docFile)
	os.WriteFile(tampered, []byte(strings.Replace(string(raw), "张三", "李四", 1)), 0o644)
	if code, out, _ := hubctl(t, "verify", tampered, "--keys", bundle); code != 1 || !strings.Contains(out, "INVALID") {
		t.Errorf("verify of a tampered document: exit %d\n%s", code, out)
	}
	if code, _, stderr := hubctl(t, "verify", filepath.Join(t.TempDir(), "missing.json"), "--keys", bundle); code == 0 {
		t.Errorf("verify of a missing file: exit 0 %s", stderr)
	}
}

func writeSignedLicense(t *testing.T, s signing.Signer, authority, path string) {
	t.Helper()
	id, err := ident.New("11100000000013338W011", authority, "20230000403", 1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(license.License{Identifier: id.String(), TypeCode: "11100000000013338W011",
		Issuer: license.Party{Name: "x", Code: authority}, ValidFrom: "2023-01-01", ValidUntil: license.LongTerm,
		Fields: map[string]any{"legal_representative": "张三"}})
	doc, err := signing.Sign(context.Background(), s, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
