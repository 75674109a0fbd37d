package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
	"github.com/licensehub/licensehub/store/redis"
)

const hubAuthority = "11330100MB1234567E"

// Members of the test registry; each secret is its app ID repeated.
var testMembers = map[string]string{
	"supervisor": "supervisor", "citizen": "citizen_app", "limited": "supervisor", "narrow": "supervisor",
	"bench": "supervisor", "issuer": "issuing_department", "other-issuer": "issuing_department",
	"approval": "approval_system",
}

func secretOf(app string) []byte { return []byte(strings.Repeat(app+"-secret-", 4)) }

func writeRegistry(t testing.TB) *auth.Registry {
	t.Helper()
	var b strings.Builder
	b.WriteString("members:\n")
	for app, role := range testMembers {
		ops := map[string]string{"supervisor": "[audit.read, usage.read]", "citizen_app": "[usage.read, consent.create, consent.revoke]",
			"issuing_department": "[license.create, license.change, license.read]",
			"approval_system":    "[license.read, license.lookup]\n        matters: [\"330100-000-XK-00123\"]"}[role]
		switch app {
		case "narrow":
			ops = "[usage.read]" // a supervisor whose grants leave audit.read out
		case "issuer":
			ops += "\n        license_types: [\"11100000000013338W011\"]\n        authorities: [\"11430000006122244L\"]"
		case "other-issuer":
			ops += "\n        authorities: [\"91350100M000100Y43\"]"
		}
		limit := "{requests: 100, per: 1s}"
		switch app {
		case "limited":
			limit = "{requests: 2, per: 1h}"
		case "bench":
			limit = "{requests: 1000000, per: 1s}"
		}
		b.WriteString("  - app_id: " + app + "\n    name: " + app + "\n    department: test\n    roles: [" + role + "]\n" +
			"    secret: " + string(secretOf(app)) + "\n    grants:\n      - operations: " + ops + "\n    rate_limit: " + limit + "\n")
	}
	reg := loadRegistry(t, b.String())
	return reg
}

// newTrail is a real audit trail on a filesystem store and local journal.
func newTrail(t testing.TB, kv licensehub.KV) *audit.Trail {
	t.Helper()
	now := time.Now().UTC()
	ring := testkeys.Keyring(t, now.Add(-time.Minute), now.AddDate(1, 0, 0), hubAuthority)
	objects, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	journal, err := audit.OpenFileJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { journal.Close() })
	trail, err := audit.New(audit.Config{Journal: journal, Objects: objects, Signers: ring, Authority: hubAuthority,
		Lock: kv, HolderKey: []byte("test-holder-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return trail
}

func startSecured(t testing.TB, reg *auth.Registry, kv licensehub.KV, trail AuditTrail) *harness {
	t.Helper()
	keys := signing.Bundle{}
	return startWith(t, Options{Auth: auth.NewAuthenticator(reg, kv), Limiter: auth.NewLimiter(kv), Audit: trail,
		Keys: keys, Verifier: &license.Verifier{Keys: keys}}, nil)
}

// call sends a request signed as app (secret: secretOf(app)) at time at.
func (h *harness) call(t *testing.T, app, method, path string, body string, at time.Time, edit func(*http.Request)) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json") // as client.Client sends a body
	}
	if app != "" {
		if err := client.SignRequest(req, []byte(body), client.Credentials{AppID: app, Secret: secretOf(app)}, at); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(req)
	}
	return send(t, req)
}

func TestAuthenticationErrors(t *testing.T) {
	kv := mem.New()
	defer kv.Close()
	h := startSecured(t, writeRegistry(t), kv, newTrail(t, kv))
	now := time.Now()

	replayed := func() func(*http.Request) {
		var first http.Header
		return func(r *http.Request) {
			if first == nil {
				first = r.Header.Clone()
				return
			}
			r.Header = first
		}
	}()
	h.call(t, "supervisor", "GET", "/v1/audit", "", now, replayed) // first use of the nonce: accepted

	tests := []struct {
		name string
		app  string
		at   time.Time
		edit func(*http.Request)
		code string
	}{
		{"no headers", "", now, nil, licensehub.EAUTHMISSING},
		{"no signature", "supervisor", now, func(r *http.Request) { r.Header.Del(client.HeaderSignature) }, licensehub.EAUTHMISSING},
		{"unknown app", "supervisor", now, func(r *http.Request) { r.Header.Set(client.HeaderAppID, "nobody") }, licensehub.EAUTHUNKNOWNAPP},
		{"wrong secret", "supervisor", now, func(r *http.Request) { r.Header.Set(client.HeaderAppID, "citizen") }, licensehub.EAUTHBADSIG},
		{"tampered query", "supervisor", now, func(r *http.Request) { r.URL.RawQuery = "app=someone" }, licensehub.EAUTHBADSIG},
		{"ten minutes old", "supervisor", now.Add(-10 * time.Minute), nil, licensehub.EAUTHSTALE},
		{"ten minutes ahead", "supervisor", now.Add(10 * time.Minute), nil, licensehub.EAUTHSTALE},
		{"replayed", "supervisor", now, replayed, licensehub.EAUTHREPLAY},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.call(t, tt.app, "GET", "/v1/audit", "", tt.at, tt.edit)
			if e := decodeError(t, b); resp.StatusCode != 401 || e.Code != tt.code {
				t.Errorf("%d %s, want 401 %s", resp.StatusCode, b, tt.code)
			}
		})
	}
	// Public routes need no signature.
	for _, path := range []string{"/healthz", "/v1/keys", "/metrics"} {
		if resp, b := h.call(t, "", "GET", path, "", now, nil); resp.StatusCode != 200 {
			t.Errorf("public %s: %d %s", path, resp.StatusCode, b)
		}
	}
}

func TestAuthorisationErrors(t *testing.T) {
	kv := mem.New()
	defer kv.Close()
	h := startSecured(t, writeRegistry(t), kv, newTrail(t, kv))
	tests := []struct {
		app, path, code string
	}{
		{"citizen", "/v1/audit", licensehub.EFORBIDDENROLE},
		{"narrow", "/v1/audit", licensehub.EFORBIDDENOPERATION},
	}
	for _, tt := range tests {
		resp, b := h.call(t, tt.app, "GET", tt.path, "", time.Now(), nil)
		if e := decodeError(t, b); resp.StatusCode != 403 || e.Code != tt.code {
			t.Errorf("%s %s: %d %s, want 403 %s", tt.app, tt.path, resp.StatusCode, b, tt.code)
		}
	}
}

// Two hub instances share one counter store: the limit holds across both.
func TestRateLimitSharedByTwoHubs(t *testing.T) {
	stores := map[string]func(t *testing.T) licensehub.KV{
		"memory": func(t *testing.T) licensehub.KV { s := mem.New(); t.Cleanup(func() { s.Close() }); return s },
		"redis": func(t *testing.T) licensehub.KV {
			s, err := redis.Open(context.Background(), redis.Config{URL: testenv.RequireRedis(t), Prefix: testenv.Name(t) + ":"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			kv := open(t)
			reg := writeRegistry(t)
			trail := newTrail(t, kv)
			a, b := startSecured(t, reg, kv, trail), startSecured(t, reg, kv, trail)
			for i, h := range []*harness{a, b} {
				if resp, body := h.call(t, "limited", "GET", "/v1/audit", "", time.Now(), nil); resp.StatusCode != 200 {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
			}
			resp, body := a.call(t, "limited", "GET", "/v1/audit", "", time.Now(), nil)
			if e := decodeError(t, body); resp.StatusCode != 429 || e.Code != licensehub.ERATELIMITED || resp.Header.Get("Retry-After") == "" {
				t.Errorf("third request: %d %s Retry-After=%q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
			}
		})
	}
}

// failingTrail refuses every record.
type failingTrail struct{ AuditTrail }

func (failingTrail) Append(context.Context, audit.Record) error {
	return licensehub.Errorf(licensehub.EUNAVAILABLE, "journal down")
}
func (failingTrail) SetHolder(*audit.Record, string) {}

func TestAuditedBeforeTheResponse(t *testing.T) {
	kv := mem.New()
	defer kv.Close()
	trail := newTrail(t, kv)
	h := startSecured(t, writeRegistry(t), kv, trail)
	doc := `{"body":{},"signature":{"alg":"SM2-SM3","kid":"0123456789abcdef0123456789abcdef","uid":"1234567812345678","signed_at":"2026-01-01T00:00:00Z","value":"AA=="}}`
	resp, _ := h.call(t, "", "POST", "/v1/verify", doc, time.Now(), func(r *http.Request) {
		r.Header.Set("X-Request-Id", "verify-1")
		r.Header.Set(HeaderReason, "%E6%A0%B8%E9%AA%8C") // 核验
	})
	if resp.StatusCode != 200 {
		t.Fatalf("verify: %d", resp.StatusCode)
	}
	// The record is in the trail (journaled, not yet sealed) by the time the answer arrived.
	resp, b := h.call(t, "supervisor", "GET", "/v1/audit?app=public", "", time.Now(), nil)
	var page struct {
		Records []audit.Record `json:"records"`
	}
	if err := json.Unmarshal(b, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("audit query: %d %s", resp.StatusCode, b)
	}
	if len(page.Records) != 1 || page.Records[0].RequestID != "verify-1" || page.Records[0].Operation != "license.verify" ||
		page.Records[0].Reason != "核验" || page.Records[0].Result != audit.ResultOK {
		t.Errorf("audit records: %+v", page.Records)
	}

	// The query itself was audited too.
	resp, b = h.call(t, "supervisor", "GET", "/v1/audit?app=supervisor", "", time.Now(), nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"operation":"audit.read"`) {
		t.Errorf("audit of the audit query: %d %s", resp.StatusCode, b)
	}

	// A trail that cannot record means no answer.
	h2 := startSecured(t, writeRegistry(t), kv, failingTrail{})
	resp, b = h2.call(t, "", "POST", "/v1/verify", doc, time.Now(), nil)
	if e := decodeError(t, b); resp.StatusCode != 503 || e.Code != licensehub.EUNAVAILABLE || strings.Contains(string(b), "verdict") {
		t.Errorf("verify with the trail down: %d %s", resp.StatusCode, b)
	}
}

func TestHolderUsage(t *testing.T) {
	kv := mem.New()
	defer kv.Close()
	trail := newTrail(t, kv)
	h := startSecured(t, writeRegistry(t), kv, trail)
	const holder = "11010519491231002X"
	rec := audit.Record{AppID: "scjg-approval", Operation: auth.OpLicenseRead, Matter: "330100-000-XK-00123",
		Reason: "办理食品经营许可", Result: audit.ResultOK}
	trail.SetHolder(&rec, holder)
	if err := trail.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	resp, b := h.call(t, "citizen", "GET", "/v1/holders/"+holder+"/usage", "", time.Now(), nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "办理食品经营许可") || strings.Contains(string(b), holder) ||
		!strings.Contains(string(b), `"holder":"110*************2X"`) {
		t.Errorf("usage: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(h.logs.String(), holder) || !strings.Contains(h.logs.String(), "/v1/holders/110*************2X/usage") {
		t.Errorf("the holder code reached the logs unmasked:\n%s", h.logs.String())
	}
	resp, b = h.call(t, "citizen", "GET", "/v1/holders/110105194912310021/usage", "", time.Now(), nil)
	if e := decodeError(t, b); resp.StatusCode != 400 || e.Details["field"] != "code" {
		t.Errorf("bad holder code: %d %s", resp.StatusCode, b)
	}
}
