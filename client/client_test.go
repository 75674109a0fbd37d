package client_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
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

	"github.com/licensehub/licensehub/client"
)

func hexOfBase64(t *testing.T, s string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(raw)
}

// seen is what a test server received.
type seen struct {
	method, requestURI, rawQuery string
	header                       http.Header
	body                         []byte
}

// recorder is an httptest server that records requests and checks their
// signatures the way the hub does (with the raw request line), answering
// 200 when the signature verifies and 401 otherwise.
type recorder struct {
	mu     sync.Mutex
	got    []seen
	secret []byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.got = append(rec.got, seen{r.Method, r.RequestURI, r.URL.RawQuery, r.Header.Clone(), body})
	rec.mu.Unlock()
	if r.URL.Path == "/redirect" {
		http.Redirect(w, r, "/v1/target?z=1", http.StatusFound)
		return
	}
	path, _, _ := strings.Cut(r.RequestURI, "?")
	canonical := client.CanonicalString(r.Method, path, r.URL.RawQuery,
		r.Header.Get(client.HeaderTimestamp), r.Header.Get(client.HeaderNonce), body)
	if client.Sign(rec.secret, canonical) != r.Header.Get(client.HeaderSignature) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":"AUTH_BAD_SIGNATURE","message":"no","request_id":"r1"}`)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (rec *recorder) last(t *testing.T) seen {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) == 0 {
		t.Fatal("the server received nothing")
	}
	return rec.got[len(rec.got)-1]
}

func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	rec := &recorder{secret: []byte(exampleSecret)}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

func TestClientDo(t *testing.T) {
	rec, srv := newRecorder(t)
	creds := client.Credentials{AppID: "scjg-approval", Secret: []byte(exampleSecret)}
	tests := []struct {
		name, base, method, path string
		query                    url.Values
		body                     []byte
		hdr                      http.Header
		wantURI, wantType        string
	}{
		{"GET", srv.URL, http.MethodGet, "/v1/keys", nil, nil, nil, "/v1/keys", ""},
		{"query encoded", srv.URL + "/", http.MethodGet, "v1/licenses",
			url.Values{"type": {"11100000000013338W011"}, "q": {"a b+c"}}, nil, nil,
			"/v1/licenses?q=a+b%2Bc&type=11100000000013338W011", ""},
		{"JSON body", srv.URL, http.MethodPost, "/v1/licenses", nil, []byte(`{"a":1}`), nil, "/v1/licenses", "application/json"},
		{"own content type", srv.URL, http.MethodPut, "/v1/x", nil, []byte("raw"),
			http.Header{"Content-Type": {"text/plain"}, "X-Request-Id": {"req-1"}}, "/v1/x", "text/plain"},
		{"base path prefix", srv.URL + "/gw", http.MethodGet, "/v1/keys", nil, nil, nil, "/gw/v1/keys", ""},
		{"escaped path", srv.URL, http.MethodGet, "/v1/licenses/a%2Fb", nil, nil, nil, "/v1/licenses/a%2Fb", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &client.Client{BaseURL: tt.base, Credentials: creds}
			resp, err := c.Do(t.Context(), tt.method, tt.path, tt.query, tt.body, tt.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if err := client.ReadError(resp); err != nil {
				t.Fatalf("the server refused the signature: %v", err)
			}
			resp.Body.Close()
			got := rec.last(t)
			if got.requestURI != tt.wantURI {
				t.Errorf("request URI %s, want %s", got.requestURI, tt.wantURI)
			}
			if string(got.body) != string(tt.body) {
				t.Errorf("body %q, want %q", got.body, tt.body)
			}
			if ct := got.header.Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantType)
			}
			for k := range tt.hdr {
				if got.header.Get(k) != tt.hdr.Get(k) {
					t.Errorf("header %s = %q, want %q", k, got.header.Get(k), tt.hdr.Get(k))
				}
			}
		})
	}

	refusals := []struct{ name, base, path string }{
		{"no base URL", "", "/v1/keys"},
		{"query in path", srv.URL, "/v1/keys?a=1"},
		{"fragment in path", srv.URL, "/v1/keys#x"},
		{"not http", "ftp://hub.test", "/v1/keys"},
		{"no host", "http://", "/v1/keys"},
	}
	for _, tt := range refusals {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			c := &client.Client{BaseURL: tt.base, Credentials: creds}
			if resp, err := c.Do(t.Context(), http.MethodGet, tt.path, nil, nil, nil); err == nil {
				resp.Body.Close()
				t.Error("no error")
			}
		})
	}
}

func TestTransport(t *testing.T) {
	rec, srv := newRecorder(t)
	creds := client.Credentials{AppID: "scjg-approval", Secret: []byte(exampleSecret)}
	hc := &http.Client{Transport: client.NewTransport(creds, nil)}

	tests := []struct {
		name, method, path string
		body               string
		wantURI            string
	}{
		{"GET", http.MethodGet, "/v1/keys?b=2&a=1", "", "/v1/keys?b=2&a=1"},
		{"POST body signed and delivered", http.MethodPost, "/v1/licenses", `{"x":"证照"}`, "/v1/licenses"},
		{"redirect signed afresh", http.MethodGet, "/redirect", "", "/v1/target?z=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if err := client.ReadError(resp); err != nil {
				t.Fatalf("the server refused the signature: %v", err)
			}
			resp.Body.Close()
			got := rec.last(t)
			if got.requestURI != tt.wantURI || string(got.body) != tt.body {
				t.Errorf("server got %s %q, want %s %q", got.requestURI, got.body, tt.wantURI, tt.body)
			}
			if req.Header.Get(client.HeaderSignature) != "" {
				t.Error("the caller's request was modified")
			}
		})
	}

	t.Run("signature covers the body", func(t *testing.T) {
		// A transport that changes the body after signing: the server must refuse.
		tamper := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r.Body = io.NopCloser(strings.NewReader(`{"x":"tampered"}`))
			r.ContentLength = int64(len(`{"x":"tampered"}`))
			return http.DefaultTransport.RoundTrip(r)
		})
		hc := &http.Client{Transport: client.NewTransport(creds, tamper)}
		resp, err := hc.Post(srv.URL+"/v1/licenses", "application/json", strings.NewReader(`{"x":"original"}`))
		if err != nil {
			t.Fatal(err)
		}
		var apiErr *client.APIError
		if err := client.ReadError(resp); !errors.As(err, &apiErr) || apiErr.Code != "AUTH_BAD_SIGNATURE" {
			t.Fatalf("ReadError = %v, want AUTH_BAD_SIGNATURE", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestReadError(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		wantNil bool
		want    client.APIError
	}{
		{name: "2xx", status: 200, body: `{"code":"X"}`, wantNil: true},
		{name: "204", status: 204, wantNil: true},
		{name: "hub error", status: 401,
			body: `{"code":"AUTH_STALE","message":"too old","request_id":"abc","details":{"server_time":1764144000}}`,
			want: client.APIError{Status: 401, Code: "AUTH_STALE", Message: "too old", RequestID: "abc",
				Details: map[string]any{"server_time": float64(1764144000)}}},
		{name: "rate limited", status: 429, header: http.Header{"Retry-After": {"3"}},
			body: `{"code":"RATE_LIMITED","message":"slow down","request_id":"r"}`,
			want: client.APIError{Status: 429, Code: "RATE_LIMITED", Message: "slow down", RequestID: "r", RetryAfter: 3 * time.Second}},
		{name: "request ID from the header", status: 403, header: http.Header{"X-Request-Id": {"hdr"}},
			body: `{"code":"FORBIDDEN_MATTER","message":"m"}`,
			want: client.APIError{Status: 403, Code: "FORBIDDEN_MATTER", Message: "m", RequestID: "hdr"}},
		{name: "not JSON", status: 502, body: "<html>Bad Gateway</html>",
			want: client.APIError{Status: 502, Message: "<html>Bad Gateway</html>"}},
		{name: "JSON without a code", status: 500, body: `{"error":"x"}`,
			want: client.APIError{Status: 500, Message: `{"error":"x"}`}},
		{name: "empty body", status: 503, want: client.APIError{Status: 503, Message: "Service Unavailable"}},
		{name: "redirect is an error", status: 302, want: client.APIError{Status: 302, Message: "Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			body := &closeRecorder{Reader: strings.NewReader(tt.body)}
			err := client.ReadError(&http.Response{StatusCode: tt.status, Header: h, Body: body})
			if tt.wantNil {
				if err != nil || body.closed {
					t.Fatalf("ReadError = %v (body closed %v), want nil and the body untouched", err, body.closed)
				}
				return
			}
			var got *client.APIError
			if !errors.As(err, &got) {
				t.Fatalf("ReadError = %v, want an *APIError", err)
			}
			if !body.closed {
				t.Error("the body was not closed")
			}
			if got.Status != tt.want.Status || got.Code != tt.want.Code || got.Message != tt.want.Message ||
				got.RequestID != tt.want.RequestID || got.RetryAfter != tt.want.RetryAfter ||
				len(got.Details) != len(tt.want.Details) {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
			for k, v := range tt.want.Details {
				if got.Details[k] != v {
					t.Errorf("details[%s] = %v, want %v", k, got.Details[k], v)
				}
			}
			if s := err.Error(); !strings.Contains(s, strconv.Itoa(tt.status)) || !strings.Contains(s, tt.want.Code) {
				t.Errorf("Error() = %q names neither status nor code", s)
			}
		})
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestDoHonoursContext checks that a cancelled context stops the call.
func TestDoHonoursContext(t *testing.T) {
	_, srv := newRecorder(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := &client.Client{BaseURL: srv.URL, Credentials: client.Credentials{AppID: "a-b", Secret: []byte(exampleSecret)}}
	if resp, err := c.Do(ctx, http.MethodGet, "/v1/keys", nil, nil, nil); err == nil {
		resp.Body.Close()
		t.Fatal("no error with a cancelled context")
	}
}

func FuzzCanonicalString(f *testing.F) {
	f.Add("GET", "/v1/keys", "", "1764144000", "nonce-nonce-nonce", []byte(nil))
	f.Add(exampleMethod, examplePath, exampleQuery, exampleTimestamp, exampleNonce, []byte(exampleBody))
	f.Add("post", "/a%2Fb", "a=%zz&&b=+&c", "x", "", []byte("abc"))
	f.Add("GET", "/", "%", "", "", []byte{0xff})
	f.Add("GET", "/", "a=%E5%8A&=&==&;", "", "", []byte{})
	f.Fuzz(func(t *testing.T, method, path, query, ts, nonce string, body []byte) {
		canonical := client.CanonicalString(method, path, query, ts, nonce, body)
		q, err := client.CanonicalQuery(query)
		// Only unreserved characters, escapes and the separators '=' and
		// '&' may appear in a canonical query.
		for i := 0; i < len(q); i++ {
			c := q[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~%=&", c) >= 0) {
				t.Fatalf("canonical query %q has an unencoded %q", q, c)
			}
		}
		if err == nil {
			if again, err := client.CanonicalQuery(q); again != q || err != nil {
				t.Fatalf("not a fixed point: %q -> %q, %v", q, again, err)
			}
		}
		if !strings.ContainsAny(method+path+ts+nonce, "\n") {
			lines := strings.Split(canonical, "\n")
			if len(lines) != 6 || lines[2] != q || lines[5] != client.BodyDigest(body) {
				t.Fatalf("canonical string %q does not have the six lines", canonical)
			}
		}
		_ = client.Sign([]byte("k"), canonical)
	})
}
