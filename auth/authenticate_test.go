package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
)

var (
	approval = client.Credentials{AppID: "approval", Secret: []byte(secret1)}
	issuer   = client.Credentials{AppID: "issuer", Secret: []byte(secretIs)}
	lookup   = sreq{method: "POST", path: "/v1/licenses/lookup", query: "matter=" + matterA + "&type=" + typeA, body: []byte(`{"holder_code":"91330100MA27XL0X1W"}`)}
)

// TestAuthenticate covers every 401 code and what is accepted.
func TestAuthenticate(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	good := func() auth.Request { return sign(t, approval, lookup, t0, "") }
	tests := []struct {
		name    string
		req     func() auth.Request
		code    string         // "" for accepted
		details map[string]any // subset expected in Details
	}{
		{"signed request", good, "", nil},
		{"issuer, GET without body", func() auth.Request {
			return sign(t, issuer, sreq{method: "GET", path: "/v1/licenses/x"}, t0, "")
		}, "", nil},
		{"query order irrelevant", func() auth.Request {
			r := good()
			r.RawQuery = "type=" + typeA + "&matter=" + matterA // signed as matter=...&type=...
			return r
		}, "", nil},
		{"query encoding irrelevant", func() auth.Request {
			r := sign(t, approval, sreq{method: "GET", path: "/v1/x", query: "q=a+b&m=%41"}, t0, "")
			r.RawQuery = "m=A&q=a%20b"
			return r
		}, "", nil},
		{"method case irrelevant", func() auth.Request {
			r := good()
			r.Method = "post"
			return r
		}, "", nil},
		{"10s in the future", func() auth.Request { return sign(t, approval, lookup, t0.Add(10*time.Second), "") }, "", nil},
		{"exactly the skew old", func() auth.Request { return sign(t, approval, lookup, t0.Add(-5*time.Minute), "") }, "", nil},
		{"exactly the skew ahead", func() auth.Request { return sign(t, approval, lookup, t0.Add(5*time.Minute), "") }, "", nil},

		// AUTH_MISSING
		{"no headers", func() auth.Request { r := good(); r.Header = nil; return r },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderAppID}},
		{"no app ID", func() auth.Request { return withHeader(good(), client.HeaderAppID, "") },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderAppID}},
		{"no timestamp", func() auth.Request { return withHeader(good(), client.HeaderTimestamp, "") },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderTimestamp}},
		{"no nonce", func() auth.Request { return withHeader(good(), client.HeaderNonce, "") },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderNonce}},
		{"no signature", func() auth.Request { return withHeader(good(), client.HeaderSignature, "") },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderSignature}},
		{"nonce too short", func() auth.Request { return sign(t, approval, lookup, t0, "short-nonce") },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderNonce, "reason": "malformed"}},
		{"nonce with a bad character", func() auth.Request { return sign(t, approval, lookup, t0, "nonce/with/slashes/0123") },
			licensehub.EAUTHMISSING, map[string]any{"header": client.HeaderNonce, "reason": "malformed"}},

		// AUTH_UNKNOWN_APP
		{"unknown app", func() auth.Request {
			return sign(t, client.Credentials{AppID: "stranger", Secret: []byte(secret1)}, lookup, t0, "")
		}, licensehub.EAUTHUNKNOWNAPP, map[string]any{"app_id": "stranger"}},
		{"unknown app before a stale time", func() auth.Request {
			return sign(t, client.Credentials{AppID: "stranger", Secret: []byte(secret1)}, lookup, t0.Add(-time.Hour), "")
		}, licensehub.EAUTHUNKNOWNAPP, nil},

		// AUTH_STALE
		{"10 minutes old", func() auth.Request { return sign(t, approval, lookup, t0.Add(-10*time.Minute), "") },
			licensehub.EAUTHSTALE, map[string]any{"server_time": t0.Unix(), "max_skew_seconds": int64(300), "skew_seconds": int64(-600)}},
		{"10 minutes in the future", func() auth.Request { return sign(t, approval, lookup, t0.Add(10*time.Minute), "") },
			licensehub.EAUTHSTALE, map[string]any{"skew_seconds": int64(600)}},
		{"one second past the skew", func() auth.Request { return sign(t, approval, lookup, t0.Add(-5*time.Minute-time.Second), "") },
			licensehub.EAUTHSTALE, nil},
		{"timestamp in milliseconds", func() auth.Request {
			return withHeader(good(), client.HeaderTimestamp, "1764144000000")
		}, licensehub.EAUTHSTALE, nil},
		{"timestamp not a number", func() auth.Request { return withHeader(good(), client.HeaderTimestamp, "yesterday") },
			licensehub.EAUTHSTALE, map[string]any{"server_time": t0.Unix()}},
		{"timestamp with a sign", func() auth.Request { return withHeader(good(), client.HeaderTimestamp, "+1764144000") },
			licensehub.EAUTHSTALE, nil},
		{"timestamp RFC 3339", func() auth.Request {
			return withHeader(good(), client.HeaderTimestamp, "2025-11-26T08:00:00Z")
		}, licensehub.EAUTHSTALE, nil},
		{"timestamp overflowing", func() auth.Request { return withHeader(good(), client.HeaderTimestamp, "999999999999999999") },
			licensehub.EAUTHSTALE, nil},

		// AUTH_BAD_SIGNATURE
		{"wrong secret", func() auth.Request {
			return sign(t, client.Credentials{AppID: "approval", Secret: []byte(secret2)}, lookup, t0, "")
		}, licensehub.EAUTHBADSIG, map[string]any{"reason": "mismatch"}},
		{"another member's secret", func() auth.Request {
			return sign(t, client.Credentials{AppID: "approval", Secret: []byte(secretIs)}, lookup, t0, "")
		}, licensehub.EAUTHBADSIG, nil},
		{"tampered body", func() auth.Request { r := good(); r.Body = []byte(`{"holder_code":"110105199001010011"}`); return r },
			licensehub.EAUTHBADSIG, nil},
		{"body dropped", func() auth.Request { r := good(); r.Body = nil; return r },
			licensehub.EAUTHBADSIG, nil},
		{"tampered path", func() auth.Request { r := good(); r.EscapedPath = "/v1/licenses/lookup2"; return r },
			licensehub.EAUTHBADSIG, nil},
		{"path decoded", func() auth.Request {
			r := sign(t, approval, sreq{method: "GET", path: "/v1/licenses/a%2Fb"}, t0, "")
			r.EscapedPath = "/v1/licenses/a/b"
			return r
		}, licensehub.EAUTHBADSIG, nil},
		{"tampered query value", func() auth.Request { r := good(); r.RawQuery = "matter=" + matterB + "&type=" + typeA; return r },
			licensehub.EAUTHBADSIG, nil},
		{"query pair added", func() auth.Request { r := good(); r.RawQuery += "&page=2"; return r },
			licensehub.EAUTHBADSIG, nil},
		{"tampered method", func() auth.Request { r := good(); r.Method = "PUT"; return r },
			licensehub.EAUTHBADSIG, nil},
		{"timestamp changed after signing", func() auth.Request {
			return withHeader(good(), client.HeaderTimestamp, "1764144001")
		}, licensehub.EAUTHBADSIG, nil},
		{"nonce changed after signing", func() auth.Request {
			return withHeader(good(), client.HeaderNonce, "another-nonce-0123456789")
		}, licensehub.EAUTHBADSIG, nil},
		{"signature not base64", func() auth.Request { return withHeader(good(), client.HeaderSignature, "not base64!") },
			licensehub.EAUTHBADSIG, map[string]any{"reason": "encoding"}},
		{"signature too short", func() auth.Request { return withHeader(good(), client.HeaderSignature, "AAAA") },
			licensehub.EAUTHBADSIG, map[string]any{"reason": "encoding"}},
		{"signature in hex", func() auth.Request {
			return withHeader(good(), client.HeaderSignature, strings.Repeat("ab", 32))
		}, licensehub.EAUTHBADSIG, map[string]any{"reason": "encoding"}},
		{"malformed query", func() auth.Request {
			return sign(t, approval, sreq{method: "GET", path: "/v1/x", query: "a=%zz"}, t0, "")
		}, licensehub.EAUTHBADSIG, map[string]any{"reason": "query"}},
		{"line break in the path", func() auth.Request {
			return sign(t, approval, sreq{method: "GET", path: "/v1/x\n"}, t0, "")
		}, licensehub.EAUTHBADSIG, map[string]any{"reason": "request_line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := auth.NewAuthenticator(reg, newKV(t), auth.WithClock(func() time.Time { return t0 }))
			m, err := a.Authenticate(t.Context(), tt.req())
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if m == nil || m.AppID() == "" {
					t.Fatalf("accepted without a member")
				}
				return
			}
			if m != nil {
				t.Errorf("returned member %v with an error", m)
			}
			e := codeOf(t, err)
			if e.Code != tt.code {
				t.Fatalf("code %s (%v), want %s", e.Code, err, tt.code)
			}
			for k, v := range tt.details {
				if got := e.Details[k]; got != v {
					t.Errorf("details[%s] = %v (%T), want %v (%T); all: %v", k, got, got, v, v, e.Details)
				}
			}
			if e.Message == "" {
				t.Error("no message")
			}
		})
	}
}

func TestBadSignatureDetailsHelpDebugging(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	a := auth.NewAuthenticator(reg, newKV(t), auth.WithClock(func() time.Time { return t0 }))
	r := sign(t, approval, lookup, t0, "nonce-0123456789abcdef")
	r.Body = []byte("{}")
	e := codeOf(t, mustFail(a.Authenticate(t.Context(), r)))
	want := client.CanonicalString(lookup.method, lookup.path, lookup.query, r.Header(client.HeaderTimestamp), "nonce-0123456789abcdef", []byte("{}"))
	if e.Details["body_sm3"] != client.BodyDigest([]byte("{}")) {
		t.Errorf("body_sm3 = %v", e.Details["body_sm3"])
	}
	if got, _ := e.Details["canonical_sm3"].(string); got != client.BodyDigest([]byte(want)) {
		t.Errorf("canonical_sm3 = %v, want SM3 of the hub's canonical string", got)
	}
	if strings.Contains(e.Error(), secret1) {
		t.Error("the error shows the secret")
	}
}

func mustFail(_ *auth.Member, err error) error { return err }

// TestReplay sends the same signed request twice.
func TestReplay(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	kv := newKV(t)
	clk := newClock(t0)
	a := auth.NewAuthenticator(reg, kv, auth.WithClock(clk.Now))
	r := sign(t, approval, lookup, t0, "")
	if _, err := a.Authenticate(t.Context(), r); err != nil {
		t.Fatalf("first: %v", err)
	}
	tests := []struct {
		name    string
		later   time.Duration
		another *auth.Authenticator // a second hub sharing the nonce store
	}{
		{"immediately", 0, nil},
		{"a minute later", time.Minute, nil},
		{"on another hub instance", 2 * time.Minute, auth.NewAuthenticator(reg, kv, auth.WithClock(clk.Now))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Add(tt.later)
			hub := a
			if tt.another != nil {
				hub = tt.another
			}
			e := codeOf(t, mustFail(hub.Authenticate(t.Context(), r)))
			if e.Code != licensehub.EAUTHREPLAY || e.Details["nonce"] != r.Header(client.HeaderNonce) {
				t.Fatalf("got %v %v, want AUTH_REPLAY naming the nonce", e, e.Details)
			}
		})
	}
	t.Run("same nonce, another app", func(t *testing.T) {
		r2 := sign(t, issuer, lookup, clk.Now(), r.Header(client.HeaderNonce))
		if _, err := a.Authenticate(t.Context(), r2); err != nil {
			t.Fatalf("nonces are per app, but: %v", err)
		}
	})
	t.Run("a forged request does not use the nonce up", func(t *testing.T) {
		nonce := "fresh-nonce-0123456789"
		forged := sign(t, client.Credentials{AppID: "approval", Secret: []byte(secret2)}, lookup, clk.Now(), nonce)
		if e := codeOf(t, mustFail(a.Authenticate(t.Context(), forged))); e.Code != licensehub.EAUTHBADSIG {
			t.Fatalf("forged: %v", e)
		}
		if _, err := a.Authenticate(t.Context(), sign(t, approval, lookup, clk.Now(), nonce)); err != nil {
			t.Fatalf("genuine request after a forged one with its nonce: %v", err)
		}
	})
}

// TestNonceStore checks the key, value and expiry of the SetNX call, and
// that a failing store gives EUNAVAILABLE.
func TestNonceStore(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	storeErr := errors.New("connection refused")
	tests := []struct {
		name     string
		skew     time.Duration
		fresh    bool
		err      error
		wantCode string
		wantTTL  time.Duration
	}{
		{"default skew", 0, true, nil, "", 10 * time.Minute},
		{"custom skew", 30 * time.Second, true, nil, "", time.Minute},
		{"seen", 0, false, nil, licensehub.EAUTHREPLAY, 10 * time.Minute},
		{"store down", 0, false, storeErr, licensehub.EUNAVAILABLE, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotKey, gotValue string
			var gotTTL time.Duration
			store := nonceStoreFunc(func(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
				gotKey, gotValue, gotTTL = key, string(value), ttl
				return tt.fresh, tt.err
			})
			opts := []auth.Option{auth.WithClock(func() time.Time { return t0 })}
			if tt.skew > 0 {
				opts = append(opts, auth.WithMaxSkew(tt.skew))
			}
			a := auth.NewAuthenticator(reg, store, opts...)
			r := sign(t, approval, lookup, t0, "nonce-0123456789abcdef")
			_, err := a.Authenticate(t.Context(), r)
			if code := licensehub.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("the cause %v is not kept in %v", tt.err, err)
			}
			if gotKey != "nonce:approval:nonce-0123456789abcdef" || gotValue != "1764144000" || gotTTL != tt.wantTTL {
				t.Errorf("SetNX(%q, %q, %s), want nonce:approval:nonce-0123456789abcdef, the timestamp, %s", gotKey, gotValue, gotTTL, tt.wantTTL)
			}
		})
	}
}

// TestSecretRotation: during the overlap both secrets work; once the
// registry is reloaded with next_secret promoted, only the new one does.
func TestSecretRotation(t *testing.T) {
	const overlap = `
members:
  - app_id: approval
    name: Approval
    department: AMR
    roles: [approval_system]
    secret: env:OLD
    next_secret: env:NEW
    grants: [{operations: [license.read]}]
`
	const promoted = `
members:
  - app_id: approval
    name: Approval
    department: AMR
    roles: [approval_system]
    secret: env:NEW
    grants: [{operations: [license.read]}]
`
	e := env{"OLD": secret1, "NEW": secret2}
	oldCreds := client.Credentials{AppID: "approval", Secret: []byte(secret1)}
	newCreds := client.Credentials{AppID: "approval", Secret: []byte(secret2)}
	a := auth.NewAuthenticator(loadRegistry(t, overlap, e), newKV(t), auth.WithClock(func() time.Time { return t0 }))

	steps := []struct {
		name     string
		reload   string
		creds    client.Credentials
		wantCode string
	}{
		{"overlap: old secret", "", oldCreds, ""},
		{"overlap: new secret", "", newCreds, ""},
		{"promoted: new secret", promoted, newCreds, ""},
		{"promoted: old secret refused", "", oldCreds, licensehub.EAUTHBADSIG},
		{"promoted: new secret still", "", newCreds, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.reload != "" {
				a.SetRegistry(loadRegistry(t, st.reload, e))
			}
			_, err := a.Authenticate(t.Context(), sign(t, st.creds, sreq{method: "GET", path: "/v1/licenses/x"}, t0, ""))
			if code := licensehub.ErrorCode(err); code != st.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, st.wantCode)
			}
		})
	}
}

func TestFromHTTP(t *testing.T) {
	tests := []struct {
		name, target, wantPath, wantQuery string
	}{
		{"plain", "/v1/keys", "/v1/keys", ""},
		{"query", "/v1/keys?b=2&a=1", "/v1/keys", "b=2&a=1"},
		{"escaped path as sent", "/v1/licenses/a%2Fb/%41", "/v1/licenses/a%2Fb/%41", ""},
		{"absolute form", "http://hub.test/v1/x?q=1", "/v1/x", "q=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newServerRequest(t, "POST", tt.target)
			r.Header.Set(client.HeaderNonce, "n")
			got := auth.FromHTTP(r, []byte("body"))
			if got.Method != "POST" || got.EscapedPath != tt.wantPath || got.RawQuery != tt.wantQuery ||
				string(got.Body) != "body" || got.Header(client.HeaderNonce) != "n" {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestAuthenticatorAccessors(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	a := auth.NewAuthenticator(reg, newKV(t), auth.WithMaxSkew(time.Minute))
	if a.Registry() != reg || a.MaxSkew() != time.Minute || a.NonceTTL() != 2*time.Minute {
		t.Errorf("Registry %v, MaxSkew %s, NonceTTL %s", a.Registry(), a.MaxSkew(), a.NonceTTL())
	}
	if !strings.HasSuffix(reg.Path(), "members.yaml") || !strings.Contains(reg.String(), "2 members") {
		t.Errorf("Path %s, String %s", reg.Path(), reg)
	}
}

// TestProgrammingErrorsPanic: nil dependencies and nonsense options are
// bugs of the wiring, caught at start-up.
func TestProgrammingErrorsPanic(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	kv := newKV(t)
	tests := map[string]func(){
		"nil registry":    func() { auth.NewAuthenticator(nil, kv) },
		"nil nonce store": func() { auth.NewAuthenticator(reg, nil) },
		"nil counter":     func() { auth.NewLimiter(nil) },
		"zero skew":       func() { auth.WithMaxSkew(0) },
		"nil clock":       func() { auth.WithClock(nil) },
		"set nil":         func() { auth.NewAuthenticator(reg, kv).SetRegistry(nil) },
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}
