package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/internal/logging"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp keeps one process-wide goroutine refreshing the Date header.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's worker-pool janitor notices the stop only after its
		// current sleep (at most the idle-worker duration, 10s); it exits then.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

// syncBuffer is a log sink safe for the server's goroutines.
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

// harness is a real server on a loopback port.
type harness struct {
	srv  *Server
	url  string
	logs *syncBuffer
	done chan error
}

func start(t testing.TB, backends []Backend, mount func(fiber.Router)) *harness {
	return startWith(t, Options{Backends: backends}, mount)
}

// startWith serves o (Config, Logger, Registry and Version filled in).
func startWith(t testing.TB, o Options, mount func(fiber.Router)) *harness {
	t.Helper()
	logs := &syncBuffer{}
	if o.Config.BodyLimit == 0 {
		o.Config = config.Default().Server
	}
	o.Logger = logging.New(logs, "debug", "json")
	o.Registry = prometheus.NewRegistry()
	o.Version = "test"
	srv := New(o)
	if mount != nil {
		mount(srv.Router())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, url: "http://" + ln.Addr().String(), logs: logs, done: make(chan error, 1)}
	go func() { h.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-h.done
		http.DefaultClient.CloseIdleConnections()
	})
	return h
}

func (h *harness) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// send sends req and reads the whole response.
func send(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decodeError(t *testing.T, b []byte) ErrorBody {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body is not JSON: %q", b)
	}
	return e
}

func TestErrorShapes(t *testing.T) {
	h := start(t, nil, func(r fiber.Router) {
		r.Get("/boom", func(*fiber.Ctx) error { panic("kaboom") })
		r.Get("/field", func(*fiber.Ctx) error {
			return licensehub.FieldError(licensehub.EINVALID, "holder.code", "check digit is wrong")
		})
		r.Get("/plain", func(*fiber.Ctx) error { return errors.New("secret cause") })
		r.Post("/echo", func(c *fiber.Ctx) error { return c.Send(c.Body()) })
	})
	tests := []struct {
		name, method, path string
		body               io.Reader
		status             int
		code               string
		field              string
	}{
		{"unknown route", "GET", "/nope", nil, 404, "NOT_FOUND", ""},
		{"wrong method", "DELETE", "/healthz", nil, 405, "METHOD_NOT_ALLOWED", ""},
		{"panic", "GET", "/boom", nil, 500, "INTERNAL", ""},
		{"field error", "GET", "/field", nil, 400, "INVALID_ARGUMENT", "holder.code"},
		{"bare error", "GET", "/plain", nil, 500, "INTERNAL", ""},
		{"body too large", "POST", "/echo", bytes.NewReader(make([]byte, 2<<20)), 413, "BODY_TOO_LARGE", ""},
		{"chunked body too large", "POST", "/echo", io.MultiReader(bytes.NewReader(make([]byte, 2<<20))), 413, "BODY_TOO_LARGE", ""},
		{"body too large unknown route", "POST", "/nope", bytes.NewReader(make([]byte, 2<<20)), 413, "BODY_TOO_LARGE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.do(t, tt.method, tt.path, tt.body, map[string]string{"X-Request-Id": "rid-" + strings.ReplaceAll(tt.name, " ", "-")})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			e := decodeError(t, b)
			if e.Code != tt.code || e.Message == "" {
				t.Errorf("body %+v, want code %s and a message", e, tt.code)
			}
			if want := "rid-" + strings.ReplaceAll(tt.name, " ", "-"); e.RequestID != want || resp.Header.Get("X-Request-Id") != want {
				t.Errorf("request id %q / header %q, want %q", e.RequestID, resp.Header.Get("X-Request-Id"), want)
			}
			if tt.field != "" && e.Details["field"] != tt.field {
				t.Errorf("details %v, want field %s", e.Details, tt.field)
			}
			if strings.Contains(string(b), "secret cause") || strings.Contains(string(b), "kaboom") {
				t.Errorf("internal cause leaked to the client: %s", b)
			}
		})
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"panic":"kaboom"`) || !strings.Contains(logs, `"request_id":"rid-panic"`) {
		t.Errorf("panic not logged with its request id:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "rid-body-too-large") && strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("413 logged at error level: %s", line)
		}
	}
	// Bodies within the limit pass whole, sized or chunked.
	for _, size := range []int{5, 1 << 20} {
		want := bytes.Repeat([]byte("x"), size)
		for _, r := range []io.Reader{bytes.NewReader(want), io.MultiReader(bytes.NewReader(want))} {
			resp, b := h.do(t, "POST", "/echo", r, nil)
			if resp.StatusCode != 200 || !bytes.Equal(b, want) {
				t.Errorf("body of %d bytes (%T): %d, %d bytes back", size, r, resp.StatusCode, len(b))
			}
		}
	}
}

func TestRequestIDGeneratedWhenMissingOrInvalid(t *testing.T) {
	h := start(t, nil, nil)
	for _, sent := range []string{"", "has space", strings.Repeat("x", 200)} {
		resp, _ := h.do(t, "GET", "/healthz", nil, map[string]string{"X-Request-Id": sent})
		got := resp.Header.Get("X-Request-Id")
		if got == "" || got == sent || len(got) != 36 {
			t.Errorf("sent %q, echoed %q; want a fresh UUID", sent, got)
		}
		if !strings.Contains(h.logs.String(), `"request_id":"`+got+`"`) {
			t.Errorf("access log lacks request id %s", got)
		}
	}
}

func TestReadyzNamesBackends(t *testing.T) {
	var mu sync.Mutex
	objErr := error(nil)
	backends := []Backend{
		{Name: "object_store", Kind: "minio", Pinger: pingFunc(func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return objErr
		})},
		{Name: "kv", Kind: "redis", Pinger: pingFunc(func(context.Context) error { return nil })},
	}
	h := start(t, backends, nil)

	type ready struct {
		Status   string          `json:"status"`
		Down     []string        `json:"down"`
		Backends []backendStatus `json:"backends"`
	}
	check := func(wantStatus int, wantDown []string) {
		t.Helper()
		resp, b := h.do(t, "GET", "/readyz", nil, nil)
		var r ready
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantStatus || strings.Join(r.Down, ",") != strings.Join(wantDown, ",") {
			t.Fatalf("readyz %d %s, want %d down=%v", resp.StatusCode, b, wantStatus, wantDown)
		}
		if len(r.Backends) != 2 || r.Backends[0].Kind != "minio" || r.Backends[1].Kind != "redis" {
			t.Errorf("backends not named: %s", b)
		}
		if resp, _ := h.do(t, "GET", "/healthz", nil, nil); resp.StatusCode != 200 {
			t.Errorf("healthz %d while readyz %d", resp.StatusCode, wantStatus)
		}
	}
	check(200, nil)
	mu.Lock()
	objErr = errors.New("dial tcp: connection refused")
	mu.Unlock()
	check(503, []string{"object_store"})
	mu.Lock()
	objErr = nil
	mu.Unlock()
	check(200, nil)
}

func TestReadyzTimesOutAHungBackend(t *testing.T) {
	h := start(t, []Backend{{Name: "kv", Kind: "redis", Pinger: pingFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})}}, nil)
	resp, b := h.do(t, "GET", "/readyz", nil, nil)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "ready_timeout") {
		t.Errorf("hung backend: %d %s", resp.StatusCode, b)
	}
}

func TestMetricsByRoute(t *testing.T) {
	h := start(t, nil, func(r fiber.Router) {
		r.Get("/v1/things/:id", func(c *fiber.Ctx) error { return c.SendString(c.Params("id")) })
	})
	h.do(t, "GET", "/v1/things/abc", nil, nil)
	h.do(t, "GET", "/v1/things/def", nil, nil)
	h.do(t, "GET", "/random/path/123", nil, nil)
	_, b := h.do(t, "GET", "/metrics", nil, nil)
	m := string(b)
	for _, want := range []string{
		`licensehub_http_requests_total{method="GET",route="/v1/things/:id",status="200"} 2`,
		`licensehub_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`licensehub_http_request_duration_seconds_bucket{method="GET",route="/v1/things/:id",status="200",le="+Inf"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "/random/path") || strings.Contains(m, "things/abc") {
		t.Error("raw paths leaked into metric labels")
	}
}

func TestShutdownLetsInFlightRequestFinish(t *testing.T) {
	logs := &syncBuffer{}
	srv := New(Options{Config: config.Default().Server, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	// The request is held until Shutdown has begun (its listener closed),
	// so it is in flight then whatever the pace of the machine.
	started, release := make(chan struct{}), make(chan struct{})
	srv.Router().Get("/slow", func(c *fiber.Ctx) error {
		close(started)
		<-release
		return c.SendString("done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break // no longer accepting: the shutdown has begun
		}
		c.Close()
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("still accepting connections 30s after Shutdown was called")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-shutdown:
		close(release)
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r := <-got; r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}
