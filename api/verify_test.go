package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

func TestKeyRegistryAndVerify(t *testing.T) {
	priv, err := signing.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := signing.KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	info := signing.KeyInfo{KeyID: kid, Authority: "11430000006122244L", Algorithm: signing.Algorithm,
		PublicKey: &priv.PublicKey, NotBefore: now.AddDate(0, 0, -1), NotAfter: now.AddDate(1, 0, 0), State: signing.StateActive}
	// Exporting fills PublicKeyPEM the way the keyring does.
	keys := signing.ExportBundle(signing.Bundle{KeyInfos: []signing.KeyInfo{info}}, now)
	h := startWith(t, Options{Keys: keys, Verifier: &license.Verifier{Keys: keys}}, nil)

	body := `{"identifier":"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",` +
		`"issuer":{"name":"x","code":"11430000006122244L"},"type_code":"11100000000013338W011","valid_from":"2023-01-01","valid_until":"long-term"}`
	doc, err := signing.Sign(context.Background(), signing.NewKeySigner(priv, info), []byte(body), now)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	resp, b := h.do(t, "GET", "/v1/keys", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), kid) || !strings.Contains(string(b), "BEGIN PUBLIC KEY") {
		t.Errorf("/v1/keys: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do(t, "GET", "/v1/keys/"+kid, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"state":"active"`) {
		t.Errorf("/v1/keys/kid: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do(t, "GET", "/v1/keys/0123456789abcdef0123456789abcdef", nil, nil)
	if e := decodeError(t, b); resp.StatusCode != 404 || e.Code != "KEY_NOT_FOUND" {
		t.Errorf("unknown kid: %d %s", resp.StatusCode, b)
	}

	tests := []struct {
		name    string
		body    string
		status  int
		verdict string
		code    string
	}{
		{"signed document", string(raw), 200, license.VerdictIndeterminate, ""},
		{"tampered document", strings.Replace(string(raw), "20230000403", "20230000404", 1), 200, license.VerdictInvalid, ""},
		{"not JSON", "hello", 400, "", "MALFORMED_REQUEST"},
		{"empty", "", 400, "", "MALFORMED_REQUEST"},
		{"not a document", `{"a":1}`, 400, "", "MALFORMED_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.do(t, "POST", "/v1/verify", strings.NewReader(tt.body), map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.code != "" {
				if e := decodeError(t, b); e.Code != tt.code {
					t.Errorf("code %s, want %s", e.Code, tt.code)
				}
				return
			}
			var v license.Verdict
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			if v.Verdict != tt.verdict || len(v.Checks) != 6 {
				t.Errorf("verdict %+v, want %s with 6 checks", v, tt.verdict)
			}
		})
	}
}
