package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	licensehub "github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/store/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("upstream-test-secret")

// fake is an httptest upstream that verifies the signature and counts calls.
type fake struct {
	*httptest.Server
	calls   atomic.Int64
	alg     string
	handler func(n int64, w http.ResponseWriter, r *http.Request) // n: 1-based call number
	mu      sync.Mutex
	reqIDs  []string
	sigErrs []string
}

func newFake(t testing.TB, alg string, h func(n int64, w http.ResponseWriter, r *http.Request)) *fake {
	f := &fake{alg: alg, handler: h}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.calls.Add(1)
		id, ts, svc, sig := r.Header.Get(HeaderRequestID), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderServiceID), r.Header.Get(HeaderSignature)
		f.mu.Lock()
		f.reqIDs = append(f.reqIDs, id)
		if r.Header.Get(HeaderAppKey) != "app-1" || id == "" || ts == "" || svc == "" || !Verify(f.alg, testSecret, id, ts, svc, sig) {
			f.sigErrs = append(f.sigErrs, fmt.Sprintf("call %d: app=%q id=%q ts=%q svc=%q sig=%q", n, r.Header.Get(HeaderAppKey), id, ts, svc, sig))
		}
		f.mu.Unlock()
		f.handler(n, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func ok(w http.ResponseWriter, data string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"code":"0000","message":"ok","data":%s}`, data)
}

func newClient(t testing.TB, cfg Config, opts ...Option) *Client {
	t.Helper()
	cfg.Name = "publicsecurity"
	cfg.AppKey = "app-1"
	cfg.Secret = testSecret
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 5 * time.Millisecond
		cfg.MaxBackoff = 20 * time.Millisecond
	}
	opts = append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	c, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var q1 = Query{ServiceID: "ps.identity", Path: "/ps/identity", Params: url.Values{"id": {"330102199001011234"}, "name": {"张三"}}}

func details(err error) map[string]any {
	var e *licensehub.Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}

func TestQueryOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		handler   func(n int64, w http.ResponseWriter, r *http.Request)
		wantCode  string // "" = success
		wantCalls int64
		wantData  string
		maxTime   time.Duration
		check     func(t *testing.T, err error)
	}{
		{
			name: "503 then success is retried",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					w.WriteHeader(503)
					return
				}
				ok(w, `{"match":true}`)
			},
			wantCalls: 2, wantData: `{"match":true}`,
		},
		{
			name: "connection dropped then success",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
					return
				}
				ok(w, `{"a":1}`)
			},
			wantCalls: 2, wantData: `{"a":1}`,
		},
		{
			name:      "400 is not retried",
			handler:   func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) },
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name:      "404 is not retried",
			handler:   func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) },
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name:      "401 means our credentials are wrong",
			handler:   func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) },
			wantCode:  licensehub.EUPSTREAM,
			wantCalls: 1,
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "credentials") || details(err)["http_status"] != 401 {
					t.Errorf("err = %v, details %v", err, details(err))
				}
			},
		},
		{
			name:      "5xx out of attempts",
			cfg:       Config{MaxAttempts: 3},
			handler:   func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			wantCode:  licensehub.EUPSTREAM,
			wantCalls: 3,
			check: func(t *testing.T, err error) {
				d := details(err)
				if d["upstream"] != "publicsecurity" || d["retry_after_seconds"].(int64) < 1 {
					t.Errorf("details = %v", d)
				}
			},
		},
		{
			name: "429 with a short Retry-After is waited for",
			cfg:  Config{MaxRetryAfter: 2 * time.Second},
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(429)
					return
				}
				ok(w, `{}`)
			},
			wantCalls: 2, wantData: `{}`,
		},
		{
			name: "Retry-After of one hour is not waited for",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(503)
			},
			wantCode: licensehub.EUPSTREAM, wantCalls: 1, maxTime: time.Second,
			check: func(t *testing.T, err error) {
				if got := details(err)["retry_after_seconds"]; got != int64(3600) {
					t.Errorf("retry_after_seconds = %v, want 3600", got)
				}
			},
		},
		{
			name: "Retry-After as an HTTP date far ahead",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", time.Now().Add(2*time.Hour).UTC().Format(http.TimeFormat))
				w.WriteHeader(429)
			},
			wantCode: licensehub.EUPSTREAM, wantCalls: 1, maxTime: time.Second,
			check: func(t *testing.T, err error) {
				if got := details(err)["retry_after_seconds"]; got != int64(3600) {
					t.Errorf("retry_after_seconds = %v, want 3600 (capped)", got)
				}
			},
		},
		{
			name:      "malformed body",
			handler:   func(n int64, w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>oops</html>`) },
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name: "truncated JSON",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"code":"0000","data":{"a":`)
			},
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name: "data not an object",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"code":"0000","data":[1,2]}`)
			},
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name:      "no code",
			handler:   func(n int64, w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"data":{}}`) },
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name: "body over 1 MiB",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"code":"0000","data":{"x":"`+strings.Repeat("a", MaxResponseBody)+`"}}`)
			},
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name: "business 4004 is not found",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"code":"4004","message":"no such person"}`)
			},
			wantCode:  licensehub.ENOTFOUND,
			wantCalls: 1,
			check: func(t *testing.T, err error) {
				d := details(err)
				if d["upstream_code"] != "4004" || d["upstream"] != "publicsecurity" || len(d) != 2 {
					t.Errorf("details = %v", d)
				}
			},
		},
		{
			name: "business 4001 is invalid",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"code":"4001","message":"bad id"}`)
			},
			wantCode:  licensehub.EINVALID,
			wantCalls: 1,
		},
		{
			name: "other business code is a bad response",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"code":"9999","message":"internal"}`)
			},
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
		{
			name: "redirect is a bad response",
			handler: func(n int64, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://example.invalid/", 302)
			},
			wantCode:  licensehub.EUPSTREAMBAD,
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, alg := range []string{AlgSM3, AlgSHA256} {
				f := newFake(t, alg, tt.handler)
				cfg := tt.cfg
				cfg.BaseURL = f.URL
				cfg.Algorithm = alg
				c := newClient(t, cfg)
				start := time.Now()
				data, err := c.Query(context.Background(), q1)
				el := time.Since(start)
				if got := licensehub.ErrorCode(err); got != tt.wantCode {
					t.Fatalf("%s: code = %q (%v), want %q", alg, got, err, tt.wantCode)
				}
				if tt.wantData != "" && string(data) != tt.wantData {
					t.Errorf("%s: data = %s, want %s", alg, data, tt.wantData)
				}
				if got := f.calls.Load(); got != tt.wantCalls {
					t.Errorf("%s: upstream calls = %d, want %d", alg, got, tt.wantCalls)
				}
				if got := c.Status().UpstreamCalls; got != tt.wantCalls {
					t.Errorf("%s: Status().UpstreamCalls = %d, want %d", alg, got, tt.wantCalls)
				}
				if tt.maxTime > 0 && el > tt.maxTime {
					t.Errorf("%s: took %s, want < %s", alg, el, tt.maxTime)
				}
				if tt.check != nil && err != nil {
					tt.check(t, err)
				}
				f.mu.Lock()
				if len(f.sigErrs) > 0 {
					t.Errorf("%s: bad signature headers: %v", alg, f.sigErrs)
				}
				for _, id := range f.reqIDs {
					if id != f.reqIDs[0] {
						t.Errorf("%s: request IDs differ across retries: %v", alg, f.reqIDs)
						break
					}
				}
				f.mu.Unlock()
			}
		})
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// Fixed vectors so the simulator (and any other implementation) can
	// check itself: HMAC over "req-1\n1700000000000\nps.identity".
	for _, alg := range []string{"", AlgSM3, AlgSHA256, "SHA256"} {
		s, err := Sign(alg, []byte("k"), "req-1", "1700000000000", "ps.identity")
		if err != nil || len(s) != 64 || strings.ToLower(s) != s {
			t.Fatalf("Sign(%q) = %q, %v", alg, s, err)
		}
		if !Verify(alg, []byte("k"), "req-1", "1700000000000", "ps.identity", s) {
			t.Errorf("Verify(%q) rejects its own signature", alg)
		}
		if Verify(alg, []byte("k"), "req-1", "1700000000001", "ps.identity", s) {
			t.Errorf("Verify(%q) accepts another timestamp", alg)
		}
	}
	a, _ := Sign(AlgSM3, []byte("k"), "r", "1", "s")
	b, _ := Sign(AlgSHA256, []byte("k"), "r", "1", "s")
	if a == b {
		t.Error("sm3 and sha256 signatures are equal")
	}
	if _, err := Sign("md5", nil, "r", "1", "s"); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("Sign(md5) err = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	good := Config{Name: "tax", BaseURL: "http://127.0.0.1:1", AppKey: "a", Secret: []byte("s")}
	tests := []struct {
		field string
		mod   func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"base_url", func(c *Config) { c.BaseURL = "" }},
		{"base_url", func(c *Config) { c.BaseURL = "ftp://x" }},
		{"base_url", func(c *Config) { c.BaseURL = "http://" }},
		{"app_key", func(c *Config) { c.AppKey = "" }},
		{"secret", func(c *Config) { c.Secret = nil }},
		{"algorithm", func(c *Config) { c.Algorithm = "md5" }},
		{"timeout", func(c *Config) { c.Timeout = -1 }},
		{"max_attempts", func(c *Config) { c.MaxAttempts = -1 }},
		{"max_backoff", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }},
		{"concurrency", func(c *Config) { c.Concurrency = -3 }},
	}
	for _, tt := range tests {
		cfg := good
		tt.mod(&cfg)
		_, err := New(cfg)
		var e *licensehub.Error
		if !errors.As(err, &e) || e.Code != licensehub.EINVALID || e.Field != tt.field {
			t.Errorf("%s: err = %v, want EINVALID naming %s", tt.field, err, tt.field)
		}
	}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.cfg.Timeout != 3*time.Second || c.cfg.MaxAttempts != 3 || c.cfg.Concurrency != 16 || c.cfg.BreakerFailures != 5 ||
		c.cfg.MaxRetryAfter != 5*time.Second || c.cfg.BreakerOpenFor != 30*time.Second || c.cfg.Algorithm != AlgSM3 {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}
	if _, err := c.Query(context.Background(), Query{Path: "/x"}); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("missing service ID: %v", err)
	}
	if _, err := c.Query(context.Background(), Query{ServiceID: "s", Path: "x"}); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("relative path: %v", err)
	}
}

// TestBreaker: the breaker opens after BreakerFailures, fails fast while
// open, half-opens after BreakerOpenFor, and a probe closes or re-opens
// it. The open-state checks run on a breaker open for an hour, so no
// pause of the machine can let it half-open under them; the half-open
// ones wait for OpenFor to pass, and only their last check (open again
// right after a failed probe) needs OpenFor (1s) not to elapse.
func TestBreaker(t *testing.T) {
	var healthy atomic.Bool
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			ok(w, `{"ok":true}`)
			return
		}
		w.WriteHeader(503)
	})
	c := newClient(t, Config{BaseURL: f.URL, MaxAttempts: 6, BreakerFailures: 3, BreakerOpenFor: time.Hour})

	// Retries stop as soon as the breaker opens: 3 calls, not 6.
	_, err := c.Query(context.Background(), q1)
	if !licensehub.IsCode(err, licensehub.EUPSTREAM) || f.calls.Load() != 3 {
		t.Fatalf("err = %v, calls = %d, want EUPSTREAM after 3 calls", err, f.calls.Load())
	}
	if st := c.Status(); st.Breaker != "open" || st.Requests != 3 || st.ErrorRate != 1 {
		t.Fatalf("status = %+v", st)
	}
	// Open: fails fast without an HTTP call, with the remaining open time.
	_, err = c.Query(context.Background(), Query{ServiceID: "ps.identity", Path: "/ps/identity", Params: url.Values{"id": {"2"}}})
	if !licensehub.IsCode(err, licensehub.EUPSTREAM) || f.calls.Load() != 3 {
		t.Fatalf("open breaker: err = %v, calls = %d", err, f.calls.Load())
	}
	if ra := details(err)["retry_after_seconds"]; ra != int64(3600) {
		t.Errorf("retry_after_seconds = %v, want 3600 (just under an hour, rounded up)", ra)
	}

	const openFor = time.Second
	f.calls.Store(0)
	c = newClient(t, Config{BaseURL: f.URL, MaxAttempts: 6, BreakerFailures: 3, BreakerOpenFor: openFor})
	c.Query(context.Background(), q1) // opens it
	// Half-open after OpenFor; one successful probe closes it.
	healthy.Store(true)
	time.Sleep(openFor + 50*time.Millisecond)
	if st := c.Status(); st.Breaker != "half-open" {
		t.Errorf("after OpenFor: breaker = %s, want half-open", st.Breaker)
	}
	if _, err := c.Query(context.Background(), q1); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if st := c.Status(); st.Breaker != "closed" || f.calls.Load() != 4 {
		t.Fatalf("after recovery: status %+v, calls %d", st, f.calls.Load())
	}
	// A failed probe re-opens it.
	healthy.Store(false)
	for range 3 {
		c.Query(context.Background(), q1)
	}
	time.Sleep(openFor + 50*time.Millisecond)
	before := f.calls.Load()
	if _, err := c.Query(context.Background(), q1); !licensehub.IsCode(err, licensehub.EUPSTREAM) {
		t.Fatalf("failed probe: %v", err)
	}
	if got := f.calls.Load() - before; got != 1 {
		t.Errorf("half-open probe made %d calls, want 1", got)
	}
	if st := c.Status(); st.Breaker != "open" {
		t.Errorf("after a failed probe breaker = %s, want open", st.Breaker)
	}
}

func TestCollapse(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		<-release
		ok(w, `{"n":`+strconv.FormatInt(n, 10)+`}`)
	})
	c := newClient(t, Config{BaseURL: f.URL})
	const N = 100
	var wg sync.WaitGroup
	errs := make(chan error, N)
	for i := range N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Same query, params built in another order: same canonical key.
			p := url.Values{}
			if i%2 == 0 {
				p.Set("name", "张三")
				p.Set("id", "330102199001011234")
			} else {
				p.Set("id", "330102199001011234")
				p.Set("name", "张三")
			}
			data, err := c.Query(context.Background(), Query{ServiceID: q1.ServiceID, Path: q1.Path, Params: p})
			if err == nil && string(data) != `{"n":1}` {
				err = fmt.Errorf("data %s", data)
			}
			errs <- err
		}()
	}
	waitFor(t, func() bool { return c.waiters(c.key(q1)) == N })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("upstream calls = %d, want 1", got)
	}
}

// One caller giving up does not fail the others sharing its call.
func TestCollapseCallerCancel(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		<-release
		ok(w, `{"x":1}`)
	})
	c := newClient(t, Config{BaseURL: f.URL})
	ctx1, cancel1 := context.WithCancel(context.Background())
	res1, res2 := make(chan error, 1), make(chan error, 1)
	go func() { _, err := c.Query(ctx1, q1); res1 <- err }()
	waitFor(t, func() bool { return c.waiters(c.key(q1)) == 1 })
	go func() { _, err := c.Query(context.Background(), q1); res2 <- err }()
	waitFor(t, func() bool { return c.waiters(c.key(q1)) == 2 })
	cancel1()
	if err := <-res1; !licensehub.IsCode(err, licensehub.ETIMEOUT) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(release)
	if err := <-res2; err != nil {
		t.Errorf("other caller: %v", err)
	}
	if f.calls.Load() != 1 {
		t.Errorf("calls = %d", f.calls.Load())
	}
}

func TestConcurrencyLimit(t *testing.T) {
	var inflight, peak atomic.Int64
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		v := inflight.Add(1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		inflight.Add(-1)
		ok(w, `{}`)
	})
	c := newClient(t, Config{BaseURL: f.URL, Concurrency: 3})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Query(context.Background(), Query{ServiceID: "s", Path: "/p", Params: url.Values{"i": {strconv.Itoa(i)}}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 1 {
		t.Errorf("peak in-flight = %d, want <= 3", p)
	}
}

func TestHangingUpstream(t *testing.T) {
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	const timeout = 200 * time.Millisecond
	c := newClient(t, Config{BaseURL: f.URL, Timeout: timeout, MaxAttempts: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})

	start := time.Now()
	_, err := c.Query(context.Background(), q1)
	el := time.Since(start)
	if !licensehub.IsCode(err, licensehub.EUPSTREAM) {
		t.Fatalf("err = %v, want EUPSTREAM", err)
	}
	if el < 2*timeout || el > 2*timeout+20*time.Millisecond+300*time.Millisecond {
		t.Errorf("took %s, want about 2 x %s", el, timeout)
	}
	if f.calls.Load() != 2 {
		t.Errorf("calls = %d, want 2", f.calls.Load())
	}

	// The caller's deadline bounds the whole query: ETIMEOUT.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Query(ctx, Query{ServiceID: "s", Path: "/p"})
	el = time.Since(start)
	if !licensehub.IsCode(err, licensehub.ETIMEOUT) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ETIMEOUT", err)
	}
	if el > 100*time.Millisecond+200*time.Millisecond {
		t.Errorf("took %s, want about 100ms", el)
	}
}

func TestCache(t *testing.T) {
	kv := mem.New()
	defer kv.Close()
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("id") == "missing" {
			io.WriteString(w, `{"code":"4004","message":"no"}`)
			return
		}
		ok(w, `{"n":`+strconv.FormatInt(n, 10)+`}`)
	})
	c := newClient(t, Config{BaseURL: f.URL}, WithCache(kv, "lh:up:"))
	q := q1
	q.CacheTTL = time.Minute
	for i := range 3 {
		data, err := c.Query(context.Background(), q)
		if err != nil || string(data) != `{"n":1}` {
			t.Fatalf("query %d: %s, %v", i, data, err)
		}
	}
	if f.calls.Load() != 1 {
		t.Fatalf("calls = %d, want 1 (cache hits make no call)", f.calls.Load())
	}
	// Not cached: CacheTTL 0, and errors.
	if _, err := c.Query(context.Background(), q1); err != nil || f.calls.Load() != 2 {
		t.Fatalf("uncached query: %v, calls %d", err, f.calls.Load())
	}
	miss := Query{ServiceID: "s", Path: "/p", Params: url.Values{"id": {"missing"}}, CacheTTL: time.Minute}
	for range 2 {
		if _, err := c.Query(context.Background(), miss); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			t.Fatal(err)
		}
	}
	if f.calls.Load() != 4 {
		t.Errorf("calls = %d, want 4 (errors are not cached)", f.calls.Load())
	}
	if _, err := kv.Get(context.Background(), "lh:up:"+c.key(q)); err != nil {
		t.Errorf("cache key not under the prefix: %v", err)
	}
}

func TestCloseAndStatus(t *testing.T) {
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n%2 == 0 {
			w.WriteHeader(500)
			return
		}
		ok(w, `{}`)
	})
	reg := prometheus.NewRegistry()
	c := newClient(t, Config{BaseURL: f.URL, MaxAttempts: 1, BreakerFailures: 100}, WithRegisterer(reg))
	c2 := newClient(t, Config{BaseURL: f.URL}, WithRegisterer(reg)) // shares the collectors
	_ = c2
	for i := range 10 {
		c.Query(context.Background(), Query{ServiceID: "s", Path: "/p", Params: url.Values{"i": {strconv.Itoa(i)}}})
	}
	st := c.Status()
	if st.Name != "publicsecurity" || st.BaseURL != f.URL || st.Breaker != "closed" || st.Requests != 10 || st.ErrorRate != 0.5 || st.UpstreamCalls != 10 || st.LatencyP95MS < st.LatencyP50MS {
		t.Errorf("status = %+v", st)
	}
	b, _ := json.Marshal(st)
	for _, k := range []string{`"latency_p50_ms"`, `"latency_p95_ms"`, `"upstream_calls_total"`, `"error_rate"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("status JSON %s lacks %s", b, k)
		}
	}
	if got := testutil.ToFloat64(c.m.queries.WithLabelValues("publicsecurity", "s", "ok")); got != 5 {
		t.Errorf("ok queries metric = %v", got)
	}
	if got := testutil.ToFloat64(c.m.attempts.WithLabelValues("publicsecurity", "s", "http_5xx")); got != 5 {
		t.Errorf("5xx attempts metric = %v", got)
	}
	c.Close()
	c.Close()
	if _, err := c.Query(context.Background(), q1); !licensehub.IsCode(err, licensehub.EUPSTREAM) {
		t.Errorf("after Close: %v", err)
	}
}

// With the upstream failing 30 % of calls at random, 1,000 sequential
// queries all succeed through retries.
func TestFlakyUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 queries")
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(2024, 6))
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail, kind := rng.Float64() < 0.30, rng.IntN(3)
		mu.Unlock()
		if fail {
			switch kind {
			case 0:
				w.WriteHeader(503)
			case 1:
				w.WriteHeader(500)
			default:
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(429)
			}
			return
		}
		ok(w, `{"id":"`+r.URL.Query().Get("id")+`"}`)
	})
	// 0.3^10 ≈ 6e-6 per query that all attempts fail; a breaker threshold of
	// 5 would open on the runs of 5 failures that 1,000 queries produce.
	c := newClient(t, Config{BaseURL: f.URL, MaxAttempts: 10, BreakerFailures: 50, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	for i := range 1000 {
		id := strconv.Itoa(i)
		data, err := c.Query(context.Background(), Query{ServiceID: "s", Path: "/p", Params: url.Values{"id": {id}}})
		if err != nil || string(data) != `{"id":"`+id+`"}` {
			t.Fatalf("query %d: %s, %v", i, data, err)
		}
	}
	calls := f.calls.Load()
	t.Logf("1000 queries succeeded with %d upstream calls (%d retries); status %+v", calls, calls-1000, c.Status())
	if calls <= 1000 {
		t.Errorf("upstream calls = %d, want > 1000", calls)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"x", 0, false}, {"-1", 0, false}, {"0", 0, true}, {"3", 3 * time.Second, true},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999999", 1 << 31 * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffCappedWithJitter(t *testing.T) {
	c := &Client{cfg: Config{MaxRetryAfter: 5 * time.Second}, opt: options{clock: time.Now}}
	for attempt := range 40 {
		d := c.backoff(100*time.Millisecond, 2*time.Second, attempt, nil)
		want := min(2*time.Second, 100*time.Millisecond<<min(attempt, 30))
		if d < want/2 || d > want {
			t.Errorf("attempt %d: %s outside [%s, %s]", attempt, d, want/2, want)
		}
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"3"}}}
	if d := c.backoff(time.Millisecond, time.Millisecond, 0, resp); d != 3*time.Second {
		t.Errorf("Retry-After 3: %s", d)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"code":"0000","message":"ok","data":{"a":1}}`, `{"code":"4004"}`, `{"code":0}`, `[]`, `null`, ``,
		`{"code":"0000","data":null}`, `{"code":"0000","data":"x"}`, " {\"code\":\"0000\",\"data\":{}} ", `{"code":"0000","data":{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnvelope(b)
		if err != nil {
			if !licensehub.IsCode(err, licensehub.EUPSTREAMBAD) {
				t.Fatalf("error code %q", licensehub.ErrorCode(err))
			}
			return
		}
		if env.Code == "" {
			t.Fatal("empty code accepted")
		}
		if env.Code == CodeOK {
			var m map[string]json.RawMessage
			if json.Unmarshal(env.Data, &m) != nil || m == nil {
				t.Fatalf("success data %q is not an object", env.Data)
			}
		}
	})
}

// BenchmarkQuery compares a hub query (signing, breaker, retry machinery,
// semaphore, singleflight, envelope parsing; no cache) with a plain
// net/http GET of the same URL with the same headers.
func BenchmarkQuery(b *testing.B) {
	f := newFake(b, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
		ok(w, `{"id_number":"330102199001011234","name":"张三","match":true,"valid_until":"2030-01-01"}`)
	})
	c := newClient(b, Config{BaseURL: f.URL})
	b.Run("hub", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Query(context.Background(), q1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct-http", func(b *testing.B) {
		b.ReportAllocs()
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 3 * time.Second}
		u := f.URL + q1.Path + "?" + q1.Params.Encode()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
			sig, _ := Sign(AlgSM3, testSecret, "bench-req", ts, q1.ServiceID)
			req.Header.Set(HeaderAppKey, "app-1")
			req.Header.Set(HeaderRequestID, "bench-req")
			req.Header.Set(HeaderTimestamp, ts)
			req.Header.Set(HeaderServiceID, q1.ServiceID)
			req.Header.Set(HeaderSignature, sig)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var env Envelope
			if resp.StatusCode != 200 || json.Unmarshal(body, &env) != nil || env.Code != CodeOK {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	})
}

// waiters reports how many callers wait on key's flight.
func (c *Client) waiters(key string) int {
	g := &c.flights
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.m[key]; f != nil {
		return f.waiters
	}
	return 0
}

// Per-attempt timeouts count as breaker failures (a caller's cancel does not).
func TestTimeoutsTripBreaker(t *testing.T) {
	f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := newClient(t, Config{BaseURL: f.URL, Timeout: 50 * time.Millisecond, MaxAttempts: 2, BreakerFailures: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Query(ctx, Query{ServiceID: "s", Path: "/cancelled"}); !licensehub.IsCode(err, licensehub.ETIMEOUT) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Query(context.Background(), q1); !licensehub.IsCode(err, licensehub.EUPSTREAM) {
		t.Fatalf("err = %v", err)
	}
	if st := c.Status(); st.Breaker != "open" {
		t.Errorf("breaker = %s after 2 timed-out attempts, want open", st.Breaker)
	}
}

// TestBusinessErrorsInTheHubsWords: an upstream's own error text (which may
// quote the query's personal data) never reaches the error a client sees;
// it is logged, masked.
func TestBusinessErrorsInTheHubsWords(t *testing.T) {
	const raw = "身份号码11010519491231002X与姓名张三不一致 <script>"
	for _, tt := range []struct {
		name, code, wantCode, wantMsg string
		wantDetailCode                any
	}{
		{"not found", "4004", licensehub.ENOTFOUND, "upstream publicsecurity has no record matching the query", "4004"},
		{"bad params", "4001", licensehub.EINVALID, "upstream publicsecurity refused the query's parameters", "4001"},
		{"unknown code", "9999", licensehub.EUPSTREAMBAD, "upstream publicsecurity answered with an error code the hub does not know", "9999"},
		{"code holding text", "E<b>11010519491231002X", licensehub.EUPSTREAMBAD, "upstream publicsecurity answered with an error code the hub does not know", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, AlgSM3, func(n int64, w http.ResponseWriter, r *http.Request) {
				b, _ := json.Marshal(map[string]string{"code": tt.code, "message": raw})
				w.Write(b)
			})
			var logs syncBuffer
			c := newClient(t, Config{BaseURL: f.URL, Algorithm: AlgSM3}, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			_, err := c.Query(context.Background(), q1)
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Fatalf("error %v, want %s %q", err, tt.wantCode, tt.wantMsg)
			}
			if e.Details["upstream_code"] != tt.wantDetailCode {
				t.Errorf("upstream_code %v, want %v", e.Details["upstream_code"], tt.wantDetailCode)
			}
			if all := fmt.Sprint(e.Error(), e.Details); strings.Contains(all, "张三") || strings.Contains(all, "1101051949") || strings.Contains(all, "script") {
				t.Errorf("the upstream's text reached the error: %s", all)
			}
			log := logs.String()
			if !strings.Contains(log, "110*************2X") || strings.Contains(log, "11010519491231002X") {
				t.Errorf("log does not hold the upstream's message masked: %s", log)
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
