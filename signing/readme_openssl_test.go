package signing

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"github.com/licensehub/licensehub/internal/testenv"
)

// The shell recipe users are told to run (README.md, section "Verifying
// with OpenSSL") must verify hub documents with jq and openssl alone, and
// must fail on tampered ones.

const recipeMarker = "# verify-with-openssl"

// verifyRecipe returns the fenced ```sh block of README.md whose first line
// is recipeMarker.
func verifyRecipe(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := fencedBlock(string(raw), recipeMarker)
	if !ok {
		t.Fatalf("README.md has no ```sh block starting with %q", recipeMarker)
	}
	return s
}

// fencedBlock finds a ```sh fence whose first inner line is marker and
// returns its content up to the closing fence.
func fencedBlock(md, marker string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(md))
	var lines []string
	state := 0 // 0: outside, 1: just after ```sh, 2: inside the block
	for sc.Scan() {
		line := sc.Text()
		switch state {
		case 0:
			if strings.TrimSpace(line) == "```sh" {
				state = 1
			}
		case 1:
			if strings.TrimSpace(line) == marker {
				lines = append(lines, line)
				state = 2
			} else {
				state = 0
			}
		case 2:
			if strings.TrimSpace(line) == "```" {
				return strings.Join(lines, "\n") + "\n", true
			}
			lines = append(lines, line)
		}
	}
	return "", false
}

func TestReadmeOpenSSLRecipe(t *testing.T) {
	for _, tool := range []string{"bash", "jq", "openssl"} {
		testenv.RequireTool(t, tool)
	}
	script := verifyRecipe(t)

	priv, info := goldenKey(t)
	pubPEM := goldenPublicKeyPEM(t, priv)
	otherPriv, _ := newHubKey(t)
	otherPEM := goldenPublicKeyPEM(t, otherPriv)

	// run runs the recipe in a fresh directory holding doc and pub.
	run := func(t *testing.T, doc, pub []byte) (string, error) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{"doc.json": doc, "authority.pub.pem": pub, "verify.sh": []byte(script)})
		cmd := exec.Command("bash", "verify.sh")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	raw := goldenDoc(t, "business-license")
	edge := goldenDoc(t, "edge-cases")
	food := goldenDoc(t, "food-permit")
	d, err := ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Sign(context.Background(), NewKeySigner(priv, info), d.Body, goldenSignedAt)
	if err != nil {
		t.Fatal(err)
	}
	freshRaw, _ := fresh.Marshal()

	// stored re-marshals d after a change.
	stored := func(change func(d *Document)) []byte {
		d2, err := ParseDocument(raw)
		if err != nil {
			t.Fatal(err)
		}
		change(d2)
		out, err := d2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	sig, _ := base64.StdEncoding.DecodeString(d.Signature.Value)
	msg, _ := d.SignedBytes()
	otherUID, err := sm2.SignASN1(rand.Reader, priv, msg, sm2.NewSM2SignerOption(true, []byte("1234567812345679")))
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	_ = json.Indent(&indented, raw, "", "  ")
	// Two "body" members: jq would keep the last, the real one, while a
	// reader of the file sees the first.
	fakeBody := `{"holder":{"name":"冒名顶替有限公司"}}`
	duplicate := []byte(`{"body":` + fakeBody + `,` + strings.TrimPrefix(string(raw), "{"))

	cases := []struct {
		name string
		doc  []byte
		pub  []byte
		ok   bool
	}{
		{"golden business license", raw, pubPEM, true},
		{"golden edge cases", edge, pubPEM, true},
		{"golden food permit", food, pubPEM, true},
		{"freshly signed", freshRaw, pubPEM, true},
		{"with a trailing newline", append(bytes.Clone(raw), '\n'), pubPEM, true},
		{"body changed", bytes.Replace(raw, []byte("张三"), []byte("李四"), 1), pubPEM, false},
		{"signed_at changed", bytes.Replace(raw, []byte("2026-11-26T08:00:00Z"), []byte("2025-11-26T08:00:00Z"), 1), pubPEM, false},
		{"signature bytes appended", stored(func(d *Document) {
			d.Signature.Value = base64.StdEncoding.EncodeToString(append(bytes.Clone(sig), 0))
		}), pubPEM, false},
		{"signature made with another user ID", stored(func(d *Document) {
			d.Signature.Value = base64.StdEncoding.EncodeToString(otherUID)
		}), pubPEM, false},
		{"uid changed", stored(func(d *Document) { d.Signature.UserID = "1234567812345679" }), pubPEM, false},
		{"kid changed", stored(func(d *Document) { d.Signature.KeyID = strings.Repeat("0", KeyIDLen) }), pubPEM, false},
		{"another authority's key", raw, otherPEM, false},
		{"duplicate body member", duplicate, pubPEM, false},
		{"pretty-printed", indented.Bytes(), pubPEM, false},
		{"two documents", append(bytes.Clone(raw), raw...), pubPEM, false},
		{"empty file", nil, pubPEM, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, c.doc, c.pub)
			switch {
			case c.ok && err != nil:
				t.Fatalf("recipe failed: %v\n%s", err, out)
			case !c.ok && err == nil:
				t.Fatalf("recipe accepted a bad document:\n%s", out)
			}
			t.Logf("%s", strings.TrimSpace(out))
		})
	}
	// The hub agrees on the duplicate-member trick.
	if _, err := ParseDocument(duplicate); err == nil {
		t.Error("ParseDocument accepts a document with two body members")
	}
}
