package auth_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
)

// newServerRequest parses a request line as a net/http server does.
func newServerRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: hub.test\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testHub is a minimal net/http hub: authenticate, rate-limit, authorise
// the operation named by the query parameter op on the resource named by
// type, authority and matter, answer the hub's error JSON on failure.
type testHub struct {
	authn   *auth.Authenticator
	limiter *auth.Limiter
}

var testStatus = map[string]int{
	licensehub.EAUTHMISSING: 401, licensehub.EAUTHUNKNOWNAPP: 401, licensehub.EAUTHSTALE: 401,
	licensehub.EAUTHBADSIG: 401, licensehub.EAUTHREPLAY: 401,
	licensehub.EFORBIDDENROLE: 403, licensehub.EFORBIDDENOPERATION: 403, licensehub.EFORBIDDENTYPE: 403,
	licensehub.EFORBIDDENAUTHORITY: 403, licensehub.EFORBIDDENMATTER: 403,
	licensehub.ERATELIMITED: 429, licensehub.EUNAVAILABLE: 503,
}

func (h *testHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(err error, retryAfter time.Duration) {
		var e *licensehub.Error
		if !errors.As(err, &e) {
			e = &licensehub.Error{Code: licensehub.EINTERNAL}
		}
		status, ok := testStatus[e.Code]
		if !ok {
			status = 500
		}
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": e.Code, "message": e.Message, "request_id": "req-1", "details": e.Details})
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail(err, 0)
		return
	}
	m, err := h.authn.Authenticate(r.Context(), auth.FromHTTP(r, body))
	if err != nil {
		fail(err, 0)
		return
	}
	if ra, err := h.limiter.Allow(r.Context(), m); err != nil {
		fail(err, ra)
		return
	}
	q := r.URL.Query()
	op := q.Get("op")
	if op == "" {
		op = auth.OpLicenseRead
	}
	if err := m.Authorize(op, auth.Resource{LicenseType: q.Get("type"), Authority: q.Get("authority"), Matter: q.Get("matter")}); err != nil {
		fail(err, 0)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"app_id": m.AppID(), "body": string(body)})
}

func newTestHub(t *testing.T) *httptest.Server {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	kv := newKV(t)
	srv := httptest.NewServer(&testHub{authn: auth.NewAuthenticator(reg, kv), limiter: auth.NewLimiter(kv)})
	t.Cleanup(srv.Close)
	return srv
}

// recordingTransport keeps a copy of every request it sends.
type recordingTransport struct {
	mu   sync.Mutex
	sent []*http.Request
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.sent = append(rt.sent, r.Clone(r.Context()))
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestEndToEnd drives client.Client against a net/http hub built on
// Authenticator, Limiter and Authorize.
func TestEndToEnd(t *testing.T) {
	srv := newTestHub(t)
	rec := &recordingTransport{}
	c := &client.Client{BaseURL: srv.URL, Credentials: approval, HTTP: &http.Client{Transport: rec}}
	ctx := t.Context()

	call := func(t *testing.T, c *client.Client, method, path string, q url.Values, body []byte) error {
		t.Helper()
		resp, err := c.Do(ctx, method, path, q, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return client.ReadError(resp)
	}
	apiCode := func(err error) string {
		var e *client.APIError
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}

	t.Run("accepted", func(t *testing.T) {
		q := url.Values{"op": {auth.OpLicenseLookup}, "type": {typeA}, "matter": {matterA}}
		if err := call(t, c, http.MethodPost, "/v1/licenses/lookup", q, []byte(`{"holder_code":"x"}`)); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
	t.Run("replay", func(t *testing.T) {
		rec.mu.Lock()
		sent := rec.sent[len(rec.sent)-1]
		rec.mu.Unlock()
		again, err := http.NewRequestWithContext(ctx, sent.Method, sent.URL.String(), strings.NewReader(`{"holder_code":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		again.Header = sent.Header.Clone()
		resp, err := http.DefaultClient.Do(again)
		if err != nil {
			t.Fatal(err)
		}
		var e *client.APIError
		if err := client.ReadError(resp); !errors.As(err, &e) || e.Status != 401 || e.Code != licensehub.EAUTHREPLAY {
			t.Fatalf("replay answered %v, want 401 AUTH_REPLAY", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := &client.Client{BaseURL: srv.URL, Credentials: client.Credentials{AppID: "approval", Secret: []byte(secret2)}}
		if err := call(t, bad, http.MethodGet, "/v1/licenses/x", nil, nil); apiCode(err) != licensehub.EAUTHBADSIG {
			t.Fatalf("got %v, want AUTH_BAD_SIGNATURE", err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/licenses/x")
		if err != nil {
			t.Fatal(err)
		}
		if err := client.ReadError(resp); apiCode(err) != licensehub.EAUTHMISSING {
			t.Fatalf("got %v, want AUTH_MISSING", err)
		}
	})
	t.Run("forbidden matter", func(t *testing.T) {
		q := url.Values{"op": {auth.OpLicenseLookup}, "type": {typeA}, "matter": {matterB}}
		if err := call(t, c, http.MethodGet, "/v1/licenses", q, nil); apiCode(err) != licensehub.EFORBIDDENMATTER {
			t.Fatalf("got %v, want FORBIDDEN_MATTER", err)
		}
	})
	t.Run("transport with a body and an escaped path", func(t *testing.T) {
		hc := &http.Client{Transport: client.NewTransport(issuer, nil)}
		resp, err := hc.Post(srv.URL+"/v1/licenses/a%2Fb?op=license.create&type="+typeA+"&authority="+authA,
			"application/json", strings.NewReader(`{"n":"证照"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := client.ReadError(resp); err != nil {
			t.Fatalf("refused: %v", err)
		}
		var out map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out["app_id"] != "issuer" || out["body"] != `{"n":"证照"}` {
			t.Fatalf("answer %v, %v", out, err)
		}
	})
}

// TestEndToEndRateLimit: the approval member may send 3 requests a second.
func TestEndToEndRateLimit(t *testing.T) {
	srv := newTestHub(t)
	c := &client.Client{BaseURL: srv.URL, Credentials: approval}
	var limited *client.APIError
	for i := 0; i < 10 && limited == nil; i++ {
		resp, err := c.Do(t.Context(), http.MethodGet, "/v1/licenses/x", nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = client.ReadError(resp)
		resp.Body.Close()
		if err != nil && !errors.As(err, &limited) {
			t.Fatal(err)
		}
	}
	if limited == nil || limited.Status != 429 || limited.Code != licensehub.ERATELIMITED ||
		limited.RetryAfter < time.Second || limited.Details["limit"] != float64(3) {
		t.Fatalf("got %+v, want 429 RATE_LIMITED with Retry-After", limited)
	}
}

// FuzzAuthenticate feeds arbitrary header values, paths, queries and
// bodies. Authenticate never panics, refuses only with 401 codes, and
// accepts whatever it is given correctly signed.
func FuzzAuthenticate(f *testing.F) {
	reg := loadRegistry(f, testRegistryYAML, testEnv)
	f.Add("approval", "1764144000", "nonce-0123456789abcdef", "", "GET", "/v1/keys", "", []byte(nil))
	f.Add("approval", "1764144000", "nonce-0123456789abcdef", "", "POST", lookup.path, lookup.query, lookup.body)
	f.Add("approval", "1764143999", "nonce_0123456789ABCDEF", "AAAA", "get", "/a%2Fb", "a=%zz&b", []byte("x"))
	f.Add("issuer", "+1", "n", "////", "PUT", "/\n", "&&&=", []byte{0})
	f.Add("", "", "", "", "", "", "", []byte(nil))
	f.Add("approval", "99999999999999999999", "nonce-0123456789abcdef", "=", "GET", "/", ";", []byte(nil))
	f.Fuzz(func(t *testing.T, appID, ts, nonce, sig, method, path, query string, body []byte) {
		a := auth.NewAuthenticator(reg,
			nonceStoreFunc(func(context.Context, string, []byte, time.Duration) (bool, error) { return true, nil }),
			auth.WithClock(func() time.Time { return t0 }))
		correct := ""
		if m, ok := reg.Member(appID); ok {
			creds := approval
			if m.AppID() == "issuer" {
				creds = issuer
			}
			correct = client.Sign(creds.Secret, client.CanonicalString(method, path, query, ts, nonce, body))
		}
		if sig == "" {
			sig = correct
		}
		h := http.Header{}
		for name, v := range map[string]string{client.HeaderAppID: appID, client.HeaderTimestamp: ts, client.HeaderNonce: nonce, client.HeaderSignature: sig} {
			h[name] = []string{v}
		}
		_, err := a.Authenticate(context.Background(), auth.Request{Method: method, EscapedPath: path, RawQuery: query, Header: h.Get, Body: body})
		_, qErr := client.CanonicalQuery(query)
		wellFormed := correct != "" && sig == correct && ts == "1764144000" && client.ValidNonce(nonce) && qErr == nil &&
			!strings.ContainsAny(method+path, "\r\n")
		switch code := licensehub.ErrorCode(err); {
		case wellFormed && err != nil:
			t.Fatalf("a correctly signed request is refused: %v", err)
		case err == nil && sig != correct:
			t.Fatalf("accepted signature %q, the correct one is %q", sig, correct)
		case err != nil && testStatus[code] != 401:
			t.Fatalf("refused with %s (%v), not a 401 code", code, err)
		}
	})
}

// TestEndToEndReplayAfterReset sends a captured signed request over HTTP
// to a hub whose nonce store then loses its data (the in-process store
// with the hub process, Redis on its own): 401 AUTH_STALE with reason
// replay_store_reset, where the hub without the epoch answered 200. A
// request signed after the reset is answered 200 once, then AUTH_REPLAY.
func TestEndToEndReplayAfterReset(t *testing.T) {
	const ahead = 2 * time.Second
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	for _, b := range epochBackends() {
		t.Run(b.name, func(t *testing.T) {
			hubStore, reset := b.open(t)
			clk := newClock(t0)
			start := func() string { // a hub process over the store
				kv := hubStore()
				a := auth.NewAuthenticator(reg, kv, auth.WithReplayEpoch(ahead), auth.WithClock(clk.Now))
				if _, err := a.Prime(t.Context()); err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(&testHub{authn: a, limiter: auth.NewLimiter(kv, auth.WithClock(clk.Now))})
				t.Cleanup(srv.Close)
				return srv.URL
			}
			send := func(hub string, r auth.Request) (int, string, map[string]any) {
				t.Helper()
				req, err := http.NewRequestWithContext(t.Context(), r.Method, hub+r.EscapedPath+"?"+r.RawQuery, strings.NewReader(string(r.Body)))
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range []string{client.HeaderAppID, client.HeaderTimestamp, client.HeaderNonce, client.HeaderSignature} {
					req.Header.Set(h, r.Header(h))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct {
					Code    string         `json:"code"`
					Details map[string]any `json:"details"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&body)
				return resp.StatusCode, body.Code, body.Details
			}
			hub := start()
			clk.Add(time.Hour)
			captured := sign(t, approval, lookup, clk.Now(), "")
			if status, code, _ := send(hub, captured); status != 200 {
				t.Fatalf("first: %d %s", status, code)
			}
			if status, code, _ := send(hub, captured); status != 401 || code != licensehub.EAUTHREPLAY {
				t.Fatalf("replay before the reset: %d %s, want 401 AUTH_REPLAY", status, code)
			}
			clk.Add(time.Minute)
			reset()
			if !b.after {
				hub = start() // the embedded hub restarted
			}
			status, code, details := send(hub, captured)
			if status != 401 || code != licensehub.EAUTHSTALE || details["reason"] != "replay_store_reset" {
				t.Fatalf("replay after the reset: %d %s %v, want 401 AUTH_STALE replay_store_reset", status, code, details)
			}
			minTS, _ := details["min_timestamp"].(float64)
			clk.Add(time.Unix(int64(minTS), 0).Sub(clk.Now()))
			fresh := sign(t, approval, lookup, clk.Now(), "")
			if status, code, _ := send(hub, fresh); status != 200 {
				t.Fatalf("a request signed at min_timestamp: %d %s", status, code)
			}
			if status, code, _ := send(hub, fresh); status != 401 || code != licensehub.EAUTHREPLAY {
				t.Fatalf("its replay: %d %s, want 401 AUTH_REPLAY", status, code)
			}
		})
	}
}
