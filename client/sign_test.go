package client_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/internal/testenv"
)

// The worked example of the package documentation.
const (
	exampleSecret    = "demo-secret-0123456789abcdef-0123456789"
	exampleMethod    = "POST"
	examplePath      = "/v1/licenses/lookup"
	exampleQuery     = "type=11100000000013338W011&matter=330100-000-XK-00123&reason=%E5%8A%9E%E4%BB%B6+check&page=2"
	exampleTimestamp = "1764144000"
	exampleNonce     = "3q2-7wEXAMPLE_nonce_0001"
	exampleBody      = `{"holder_code":"91330100MA27XL0X1R"}`

	exampleCanonical = "POST\n" +
		"/v1/licenses/lookup\n" +
		"matter=330100-000-XK-00123&page=2&reason=%E5%8A%9E%E4%BB%B6%20check&type=11100000000013338W011\n" +
		"1764144000\n" +
		"3q2-7wEXAMPLE_nonce_0001\n" +
		"7d1b20953ff803ee623f2e8ba2573ad551713e8c1dd2fcb54f16fb5976b0bbee"
	exampleSignature = "/4Sc4weW5G26jefabGJBOQSu7KKwXGvcHWpkOyNuch0="
)

// TestWorkedExample recomputes the golden values of the package
// documentation and checks that the documentation shows them.
func TestWorkedExample(t *testing.T) {
	got := client.CanonicalString(exampleMethod, examplePath, exampleQuery, exampleTimestamp, exampleNonce, []byte(exampleBody))
	if got != exampleCanonical {
		t.Fatalf("canonical string:\n%s\nwant:\n%s", got, exampleCanonical)
	}
	if sig := client.Sign([]byte(exampleSecret), got); sig != exampleSignature {
		t.Fatalf("signature %s, want %s", sig, exampleSignature)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, want := range append(strings.Split(exampleCanonical, "\n"),
		exampleSecret, exampleQuery, exampleBody, "X-Hub-Signature: "+exampleSignature) {
		if !strings.Contains(text, want) {
			t.Errorf("doc.go does not show %q", want)
		}
	}
}

// TestWorkedExampleOpenSSL checks the example with OpenSSL's SM3 and
// HMAC-SM3, an implementation independent of ours.
func TestWorkedExampleOpenSSL(t *testing.T) {
	testenv.RequireTool(t, "openssl")
	dir := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run(exampleBody, "dgst", "-sm3", "-r"); !strings.HasPrefix(out, client.BodyDigest([]byte(exampleBody))+" ") {
		t.Errorf("openssl SM3 of the body: %s, want %s", out, client.BodyDigest([]byte(exampleBody)))
	}
	if err := os.WriteFile(filepath.Join(dir, "canonical.txt"), []byte(exampleCanonical), 0o600); err != nil {
		t.Fatal(err)
	}
	mac := run("", "mac", "-digest", "SM3", "-macopt", "key:"+exampleSecret, "-in", "canonical.txt", "HMAC")
	raw := client.Sign([]byte(exampleSecret), exampleCanonical)
	if want := strings.ToUpper(hexOfBase64(t, raw)); strings.TrimSpace(mac) != want {
		t.Errorf("openssl HMAC-SM3 %s, want %s", strings.TrimSpace(mac), want)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		name, raw, want string
		malformed       bool
	}{
		{"empty", "", "", false},
		{"one pair", "a=1", "a=1", false},
		{"sorted by key", "b=2&a=1", "a=1&b=2", false},
		{"order irrelevant", "a=1&b=2", "a=1&b=2", false},
		{"sorted by value within a key", "tag=b&tag=a&tag=c", "tag=a&tag=b&tag=c", false},
		{"duplicates kept", "a=1&a=1", "a=1&a=1", false},
		{"empty parts dropped", "&a=1&&b=2&", "a=1&b=2", false},
		{"no = means empty value", "flag&a=1", "a=1&flag=", false},
		{"empty value", "a=", "a=", false},
		{"only the first = splits", "a=b=c", "a=b%3Dc", false},
		{"plus is a space", "q=a+b", "q=a%20b", false},
		{"%20 is a space", "q=a%20b", "q=a%20b", false},
		{"encoded plus stays a plus", "q=a%2Bb", "q=a%2Bb", false},
		{"unreserved characters as they are", "k=AZaz09-._~", "k=AZaz09-._~", false},
		{"unnecessary escapes decoded", "k=%41%7e", "k=A~", false},
		{"lower-case hex upper-cased", "k=%2f", "k=%2F", false},
		{"reserved characters encoded", "k=/?:@!$'()*,;", "k=%2F%3F%3A%40%21%24%27%28%29%2A%2C%3B", false},
		{"semicolon is not a separator", "a=1;b=2", "a=1%3Bb%3D2", false},
		{"UTF-8 as bytes", "reason=办件", "reason=%E5%8A%9E%E4%BB%B6", false},
		{"percent-encoded UTF-8", "reason=%E5%8A%9E%E4%BB%B6", "reason=%E5%8A%9E%E4%BB%B6", false},
		{"keys sort by decoded bytes", "b=1&a%20b=2&a-b=3", "a%20b=2&a-b=3&b=1", false},
		{"encoded key", "%61=1", "a=1", false},
		{"bad escape", "a=%zz", "a=%25zz", true},
		{"truncated escape", "a=1&b=%4", "a=1&b=%254", true},
		{"bad escape in key", "%g1=x", "%25g1=x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.CanonicalQuery(tt.raw)
			if got != tt.want {
				t.Errorf("CanonicalQuery(%q) = %q, want %q", tt.raw, got, tt.want)
			}
			if (err != nil) != tt.malformed {
				t.Errorf("CanonicalQuery(%q) error = %v, want malformed %v", tt.raw, err, tt.malformed)
			}
			if !tt.malformed {
				again, err := client.CanonicalQuery(got)
				if again != got || err != nil {
					t.Errorf("canonical form is not a fixed point: %q -> %q, %v", got, again, err)
				}
			}
		})
	}
}

func TestCanonicalString(t *testing.T) {
	const emptySM3 = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
	tests := []struct {
		name                           string
		method, path, query, ts, nonce string
		body                           []byte
		want                           string
	}{
		{"no body, no query", "GET", "/v1/keys", "", "1", "nonce-nonce-nonce", nil,
			"GET\n/v1/keys\n\n1\nnonce-nonce-nonce\n" + emptySM3},
		{"empty body is no body", "GET", "/v1/keys", "", "1", "nonce-nonce-nonce", []byte{},
			"GET\n/v1/keys\n\n1\nnonce-nonce-nonce\n" + emptySM3},
		{"method upper-cased", "post", "/x", "b=2&a=1", "2", "n", []byte("abc"),
			"POST\n/x\na=1&b=2\n2\nn\n66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
		{"escaped path kept as sent", "GET", "/v1/licenses/a%2Fb/%41", "", "3", "n", nil,
			"GET\n/v1/licenses/a%2Fb/%41\n\n3\nn\n" + emptySM3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := client.CanonicalString(tt.method, tt.path, tt.query, tt.ts, tt.nonce, tt.body); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestQueryOrderDoesNotChangeTheSignature(t *testing.T) {
	a := client.Sign([]byte(exampleSecret), client.CanonicalString("GET", "/v1/x", "a=1&b=2", "1", "nonce", nil))
	b := client.Sign([]byte(exampleSecret), client.CanonicalString("GET", "/v1/x", "b=2&a=1", "1", "nonce", nil))
	if a != b {
		t.Fatalf("a=1&b=2 signs as %s, b=2&a=1 as %s", a, b)
	}
}

func TestValidNonce(t *testing.T) {
	tests := []struct {
		nonce string
		ok    bool
	}{
		{strings.Repeat("a", 15), false},
		{strings.Repeat("a", 16), true},
		{strings.Repeat("Z", 64), true},
		{strings.Repeat("9", 65), false},
		{"abcdefgh-_ABCD0123", true},
		{"abcdefgh ABCD0123", false},
		{"abcdefgh+ABCD0123", false},
		{"abcdefgh/ABCD0123", false},
		{"abcdefgh=ABCD0123", false},
		{"abcdefgh\nABCD0123", false},
		{"abcdefghéABCD0123", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := client.ValidNonce(tt.nonce); got != tt.ok {
			t.Errorf("ValidNonce(%q) = %v, want %v", tt.nonce, got, tt.ok)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		n := client.NewNonce()
		if !client.ValidNonce(n) {
			t.Fatalf("NewNonce() = %q is not valid", n)
		}
		if seen[n] {
			t.Fatalf("NewNonce() repeated %q", n)
		}
		seen[n] = true
	}
}

func TestSignRequest(t *testing.T) {
	creds := client.Credentials{AppID: "scjg-approval", Secret: []byte(exampleSecret)}
	now := time.Unix(1764144000, 0)
	tests := []struct {
		name, url, method string
		body              []byte
		wantPath          string
	}{
		{"GET with query", "http://hub.test/v1/licenses?b=2&a=1", http.MethodGet, nil, "/v1/licenses"},
		{"empty method is GET", "http://hub.test/v1/keys", "", nil, "/v1/keys"},
		{"no path is /", "http://hub.test", http.MethodGet, nil, "/"},
		{"escaped path as sent", "http://hub.test/v1/licenses/a%2Fb", http.MethodGet, nil, "/v1/licenses/a%2Fb"},
		{"POST with body", "http://hub.test/v1/licenses", http.MethodPost, []byte(`{"a":1}`), "/v1/licenses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := client.SignRequest(req, tt.body, creds, now); err != nil {
				t.Fatal(err)
			}
			h := req.Header
			if h.Get(client.HeaderAppID) != creds.AppID || h.Get(client.HeaderTimestamp) != "1764144000" {
				t.Errorf("headers %v", h)
			}
			nonce := h.Get(client.HeaderNonce)
			if !client.ValidNonce(nonce) {
				t.Errorf("nonce %q is not valid", nonce)
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			want := client.Sign(creds.Secret, client.CanonicalString(method, tt.wantPath, req.URL.RawQuery, "1764144000", nonce, tt.body))
			if got := h.Get(client.HeaderSignature); got != want {
				t.Errorf("signature %s, want %s (path %s)", got, want, tt.wantPath)
			}
		})
	}

	t.Run("fresh nonce each time", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://hub.test/v1/keys", nil)
		_ = client.SignRequest(req, nil, creds, now)
		first := req.Header.Get(client.HeaderNonce)
		_ = client.SignRequest(req, nil, creds, now)
		if req.Header.Get(client.HeaderNonce) == first {
			t.Error("the nonce did not change")
		}
	})

	refusals := []struct {
		name  string
		creds client.Credentials
		req   *http.Request
	}{
		{"no app ID", client.Credentials{Secret: []byte(exampleSecret)}, mustRequest(t)},
		{"no secret", client.Credentials{AppID: "x"}, mustRequest(t)},
		{"nil request", creds, nil},
	}
	for _, tt := range refusals {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			if err := client.SignRequest(tt.req, nil, tt.creds, now); err == nil {
				t.Error("no error")
			}
		})
	}
}

func mustRequest(t *testing.T) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "http://hub.test/v1/keys", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestSecretsNeverPrint formats credentials every way a log line might.
func TestSecretsNeverPrint(t *testing.T) {
	const secret = "THE-SECRET-VALUE-0123456789abcdefXYZ"
	creds := client.Credentials{AppID: "scjg-approval", Secret: []byte(secret)}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "creds", creds, "secret", creds.Secret)
	js, err := json.Marshal(creds)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"slog": logged.String(),
		"json": string(js),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs["creds "+verb] = fmt.Sprintf(verb, creds)
		outputs["secret "+verb] = fmt.Sprintf(verb, creds.Secret)
		outputs["pointer "+verb] = fmt.Sprintf(verb, &creds)
	}
	forms := []string{secret, fmt.Sprintf("%x", secret), fmt.Sprintf("%X", secret), strconv.Itoa(int(secret[0])) + " "}
	for name, out := range outputs {
		for _, form := range forms {
			if strings.Contains(out, form) {
				t.Errorf("%s prints the secret: %s", name, out)
			}
		}
		if !strings.Contains(out, "redacted") && !strings.Contains(out, "72656461637465") && !strings.Contains(out, "5245444143544544") {
			t.Errorf("%s shows no [redacted] marker: %s", name, out)
		}
	}
}
