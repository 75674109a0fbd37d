// Package upstream is the resilient client for one upstream system (the
// public-security, social-security or tax system). Each Query is a signed
// GET answered by a JSON envelope; the client retries what is safe to retry
// (go-retryablehttp with capped, jittered exponential backoff and a capped
// Retry-After), runs every HTTP attempt through a circuit breaker
// (gobreaker, inside the transport), limits concurrency, collapses identical
// concurrent queries into one upstream call and caches answers in a
// licensehub.KV.
//
// Decisions (see README of the adapters for the operator view):
//   - Retried: transport errors, per-attempt timeouts, HTTP 5xx except 501,
//     and 429 (and 503) honouring Retry-After up to MaxRetryAfter. A longer
//     Retry-After is not waited for: the query fails fast with
//     UPSTREAM_UNAVAILABLE and retry_after_seconds = the upstream's value
//     (at least 1, at most one hour).
//   - Not retried: other 4xx, 3xx, and any HTTP 200 whose body is not a valid
//     envelope (UPSTREAM_BAD_RESPONSE): a contract violation is not transient.
//   - 401/403 mean our app key or secret is wrong: UPSTREAM_UNAVAILABLE with a
//     message saying so (the caller cannot fix it; operators must).
//   - The breaker counts transport errors, timeouts, 5xx and 429 as failures;
//     a caller's cancellation is excluded. While it is open no HTTP request
//     is made and CheckRetry does not retry.
//   - Business codes: 4004 -> NOT_FOUND, 4001 -> INVALID_ARGUMENT, others ->
//     UPSTREAM_BAD_RESPONSE, each with the hub's own message; details name
//     the upstream and its code. The upstream's message is logged (masked),
//     never returned. Only successes are cached.
package upstream

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	licensehub "github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/httpretry"
	"github.com/licensehub/licensehub/internal/logging"
)

// Config describes one upstream system. Zero values take the defaults noted.
type Config struct {
	Name            string        // "publicsecurity", "socialsecurity", "tax": metrics label and error details
	BaseURL         string        // http(s)://host:port
	AppKey          string        // sent as X-App-Key
	Secret          []byte        // HMAC key; never logged
	Algorithm       string        // "sm3" (default) or "sha256"
	Timeout         time.Duration // per attempt (default 3s); the caller's ctx bounds the whole query
	MaxAttempts     int           // default 3 (1 = no retry)
	MinBackoff      time.Duration // default 100ms
	MaxBackoff      time.Duration // default 2s
	MaxRetryAfter   time.Duration // cap on an upstream's Retry-After (default 5s); longer: fail fast
	Concurrency     int           // max in-flight calls to this upstream (default 16)
	BreakerFailures uint32        // consecutive failures that open the breaker (default 5)
	BreakerOpenFor  time.Duration // how long it stays open before half-open (default 30s)
}

// Option configures a Client.
type Option func(*options)

type options struct {
	kv          licensehub.KV
	cachePrefix string
	clock       func() time.Time
	logger      *slog.Logger
	reg         prometheus.Registerer
}

// WithCache caches successful answers in kv under prefix, for Query.CacheTTL.
func WithCache(kv licensehub.KV, prefix string) Option {
	return func(o *options) { o.kv, o.cachePrefix = kv, prefix }
}

// WithClock replaces time.Now for request timestamps and the status window.
// (The breaker's own open period runs on the real clock.)
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.clock = now
		}
	}
}

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithRegisterer registers the client's metrics: queries by
// upstream/service/outcome, HTTP attempts by upstream/service/outcome,
// attempt latency histogram and breaker state gauge (0 closed, 1 half-open,
// 2 open). Several clients may share one registerer.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.reg = r }
}

// Query is one upstream lookup.
type Query struct {
	ServiceID string        // upstream service ID (signed; also the metrics label)
	Path      string        // e.g. "/ps/identity"
	Params    url.Values    // sent as the GET query string
	CacheTTL  time.Duration // 0: not cached
}

// Status is the operator view of one upstream (GET /v1/adapters).
type Status struct {
	Name          string  `json:"name"`
	BaseURL       string  `json:"base_url"`
	Breaker       string  `json:"breaker"`  // closed | half-open | open
	Requests      int64   `json:"requests"` // HTTP attempts in the recent window (last 5 min, at most the last 1000)
	ErrorRate     float64 `json:"error_rate"`
	LatencyP50MS  float64 `json:"latency_p50_ms"`
	LatencyP95MS  float64 `json:"latency_p95_ms"`
	UpstreamCalls int64   `json:"upstream_calls_total"` // HTTP attempts since start
}

// Client is the resilient client for one upstream. Safe for concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	opt     options
	log     *slog.Logger
	rc      *retryablehttp.Client
	hc      *http.Client
	tr      *http.Transport
	cb      *gobreaker.CircuitBreaker[*http.Response]
	sem     chan struct{}
	flights flightGroup
	win     *window
	m       *metrics
	calls   atomic.Int64
	budget  time.Duration

	openedAt atomic.Int64 // UnixNano (real clock) when the breaker last opened

	ctx    context.Context // cancelled by Close; parent of shared calls
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New validates cfg and builds a Client. Invalid fields give EINVALID
// naming the field.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "base_url", "upstream %s: base URL %q must be http(s)://host[:port]", cfg.Name, cfg.BaseURL)
	}
	o := options{clock: time.Now, logger: slog.Default()}
	for _, fn := range opts {
		if fn != nil {
			fn(&o)
		}
	}
	c := &Client{cfg: cfg, base: base, opt: o, log: o.logger.With("upstream", cfg.Name)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.sem = make(chan struct{}, cfg.Concurrency)
	c.win = newWindow(1000, 5*time.Minute)
	m, err := newMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	c.m = m
	c.m.breaker.WithLabelValues(cfg.Name).Set(0)

	c.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= cfg.BreakerFailures },
		IsExcluded:  func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				c.openedAt.Store(time.Now().UnixNano())
			}
			c.m.breaker.WithLabelValues(cfg.Name).Set(stateValue(to))
			c.log.Warn("upstream breaker state changed", "from", from.String(), "to", to.String())
		},
	})

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	tr.MaxConnsPerHost = 0
	tr.ResponseHeaderTimeout = cfg.Timeout
	tr.DialContext = (&net.Dialer{Timeout: min(cfg.Timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext
	c.tr = tr
	c.hc = &http.Client{
		Transport: &breakerTransport{c: c, next: tr},
		Timeout:   cfg.Timeout, // per attempt, body read included
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // an upstream never redirects; 3xx is a bad response
		},
	}
	c.rc = &retryablehttp.Client{
		HTTPClient:   c.hc,
		Logger:       nil, // silenced: its messages carry the URL, whose query holds personal data
		RetryWaitMin: cfg.MinBackoff,
		RetryWaitMax: cfg.MaxBackoff,
		RetryMax:     cfg.MaxAttempts - 1,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
		PrepareRetry: c.sign,
	}
	wait := max(cfg.MaxBackoff, cfg.MaxRetryAfter)
	c.budget = cfg.Timeout*time.Duration(cfg.MaxAttempts) + wait*time.Duration(cfg.MaxAttempts-1) + time.Second
	return c, nil
}

func (cfg *Config) defaults() error {
	bad := func(field, format string, args ...any) error {
		return licensehub.FieldError(licensehub.EINVALID, field, "upstream %q: "+format, append([]any{cfg.Name}, args...)...)
	}
	if cfg.Name == "" {
		return bad("name", "name is required")
	}
	if cfg.BaseURL == "" {
		return bad("base_url", "base URL is required")
	}
	if cfg.AppKey == "" {
		return bad("app_key", "app key is required")
	}
	if len(cfg.Secret) == 0 {
		return bad("secret", "secret is required")
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = AlgSM3
	}
	cfg.Algorithm = strings.ToLower(cfg.Algorithm)
	if _, err := hashFor(cfg.Algorithm); err != nil {
		return bad("algorithm", "algorithm %q must be sm3 or sha256", cfg.Algorithm)
	}
	durs := []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"timeout", &cfg.Timeout, 3 * time.Second},
		{"min_backoff", &cfg.MinBackoff, 100 * time.Millisecond},
		{"max_backoff", &cfg.MaxBackoff, 2 * time.Second},
		{"max_retry_after", &cfg.MaxRetryAfter, 5 * time.Second},
		{"breaker_open_for", &cfg.BreakerOpenFor, 30 * time.Second},
	}
	for _, d := range durs {
		if *d.v < 0 {
			return bad(d.field, "%s must not be negative, got %s", d.field, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return bad("max_backoff", "max backoff %s is below min backoff %s", cfg.MaxBackoff, cfg.MinBackoff)
	}
	switch {
	case cfg.MaxAttempts < 0 || cfg.MaxAttempts > 20:
		return bad("max_attempts", "max attempts must be 1..20, got %d", cfg.MaxAttempts)
	case cfg.MaxAttempts == 0:
		cfg.MaxAttempts = 3
	}
	switch {
	case cfg.Concurrency < 0 || cfg.Concurrency > 10000:
		return bad("concurrency", "concurrency must be 1..10000, got %d", cfg.Concurrency)
	case cfg.Concurrency == 0:
		cfg.Concurrency = 16
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 5
	}
	return nil
}

// Close cancels in-flight shared calls, waits for them and closes idle
// connections. Queries after Close fail with UPSTREAM_UNAVAILABLE.
func (c *Client) Close() {
	if c == nil || !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.cancel()
	c.wg.Wait()
	c.tr.CloseIdleConnections()
}

// Status reports the breaker state and the recent window's figures.
func (c *Client) Status() Status {
	n, errRate, p50, p95 := c.win.summary(c.opt.clock())
	return Status{
		Name:          c.cfg.Name,
		BaseURL:       c.base.String(),
		Breaker:       stateName(c.cb.State()),
		Requests:      n,
		ErrorRate:     errRate,
		LatencyP50MS:  p50,
		LatencyP95MS:  p95,
		UpstreamCalls: c.calls.Load(),
	}
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half-open"
	}
	return "closed"
}

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateOpen:
		return 2
	case gobreaker.StateHalfOpen:
		return 1
	}
	return 0
}

// Query performs q and returns the envelope's data (a JSON object).
func (c *Client) Query(ctx context.Context, q Query) (json.RawMessage, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if c.closed.Load() {
		return nil, c.unavailable("client is closed", 1, nil)
	}
	if q.ServiceID == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "service_id", "upstream %s: service ID is required", c.cfg.Name)
	}
	if !strings.HasPrefix(q.Path, "/") || strings.ContainsAny(q.Path, "?#") {
		return nil, licensehub.FieldError(licensehub.EINVALID, "path", "upstream %s: path %q must start with / and hold no query", c.cfg.Name, q.Path)
	}
	if err := ctx.Err(); err != nil {
		return nil, c.ctxError(err)
	}
	key := c.key(q)
	if q.CacheTTL > 0 && c.opt.kv != nil {
		if b, err := c.opt.kv.Get(ctx, c.opt.cachePrefix+key); err == nil {
			c.m.queries.WithLabelValues(c.cfg.Name, q.ServiceID, "cache_hit").Inc()
			return json.RawMessage(b), nil
		} else if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			c.log.Warn("upstream cache read failed; asking the upstream", "service", q.ServiceID, "err", err)
		}
	}
	data, err := c.flights.do(ctx, key, func() *flight {
		f := &flight{done: make(chan struct{})}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.budget)
		stop := context.AfterFunc(c.ctx, cancel) // Close cancels shared calls
		f.cancel = cancel
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer close(f.done)
			defer c.flights.forget(key, f)
			defer stop()
			defer cancel()
			f.val, f.err = c.call(sctx, q)
			if f.err == nil && q.CacheTTL > 0 && c.opt.kv != nil {
				if err := c.opt.kv.Set(sctx, c.opt.cachePrefix+key, f.val, q.CacheTTL); err != nil {
					c.log.Warn("upstream cache write failed", "service", q.ServiceID, "err", err)
				}
			}
		}()
		return f
	})
	if err != nil {
		if ce := ctx.Err(); ce != nil && !errors.As(err, new(*licensehub.Error)) {
			err = c.ctxError(ce)
		}
		c.m.queries.WithLabelValues(c.cfg.Name, q.ServiceID, outcome(err)).Inc()
		return nil, err
	}
	c.m.queries.WithLabelValues(c.cfg.Name, q.ServiceID, "ok").Inc()
	// Each caller gets its own copy: the shared answer must not be mutated.
	out := make(json.RawMessage, len(data))
	copy(out, data)
	return out, nil
}

func outcome(err error) string {
	switch licensehub.ErrorCode(err) {
	case licensehub.ENOTFOUND:
		return "not_found"
	case licensehub.EINVALID:
		return "invalid"
	case licensehub.EUPSTREAMBAD:
		return "bad_response"
	case licensehub.ETIMEOUT:
		return "timeout"
	case licensehub.EUPSTREAM:
		return "unavailable"
	}
	return "error"
}

// key identifies a query: the same ServiceID, Path and canonical Params give
// the same key (url.Values.Encode sorts by name).
func (c *Client) key(q Query) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s", c.cfg.Name, q.ServiceID, q.Path, q.Params.Encode())
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Client) ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "upstream %s: the query's deadline expired", c.cfg.Name)
	}
	return licensehub.Wrap(err, licensehub.ETIMEOUT, "upstream %s: the query was cancelled", c.cfg.Name)
}

func (c *Client) unavailable(msg string, retryAfter time.Duration, cause error) *licensehub.Error {
	secs := int64(math.Ceil(retryAfter.Seconds()))
	secs = min(max(secs, 1), 3600)
	return &licensehub.Error{
		Code:    licensehub.EUPSTREAM,
		Message: fmt.Sprintf("upstream %s: %s", c.cfg.Name, msg),
		Details: map[string]any{"upstream": c.cfg.Name, "retry_after_seconds": secs},
		Err:     cause,
	}
}

func (c *Client) bad(msg string, cause error, extra map[string]any) *licensehub.Error {
	d := map[string]any{"upstream": c.cfg.Name}
	for k, v := range extra {
		d[k] = v
	}
	return &licensehub.Error{Code: licensehub.EUPSTREAMBAD, Message: fmt.Sprintf("upstream %s: %s", c.cfg.Name, msg), Details: d, Err: cause}
}

// breakerRemaining is how long the breaker stays open (at least 1s).
func (c *Client) breakerRemaining() time.Duration {
	opened := c.openedAt.Load()
	if opened == 0 {
		return time.Second
	}
	return max(time.Until(time.Unix(0, opened).Add(c.cfg.BreakerOpenFor)), time.Second)
}

// call runs one (shared) query: semaphore, retrying HTTP, envelope.
func (c *Client) call(ctx context.Context, q Query) (json.RawMessage, error) {
	if c.cb.State() == gobreaker.StateOpen {
		return nil, c.unavailable("circuit breaker is open", c.breakerRemaining(), gobreaker.ErrOpenState)
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, c.sharedCtxError(ctx.Err())
	}
	defer func() { <-c.sem }()

	u := *c.base
	u.Path = c.base.Path + q.Path
	u.RawQuery = q.Params.Encode()
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, licensehub.FieldError(licensehub.EINVALID, "path", "upstream %s: bad request URL: %v", c.cfg.Name, err)
	}
	req.Header.Set(HeaderAppKey, c.cfg.AppKey)
	req.Header.Set(HeaderRequestID, newRequestID())
	req.Header.Set(HeaderServiceID, q.ServiceID)
	req.Header.Set("Accept", "application/json")
	if err := c.sign(req.Request); err != nil {
		return nil, err
	}
	resp, err := c.rc.Do(req)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		var rae *retryAfterError
		switch {
		case errors.As(err, &rae):
			return nil, c.unavailable(fmt.Sprintf("asked to retry after %s, longer than the %s we wait", rae.d, c.cfg.MaxRetryAfter), rae.d, err)
		case errors.Is(err, gobreaker.ErrOpenState):
			return nil, c.unavailable("circuit breaker is open", c.breakerRemaining(), err)
		case errors.Is(err, gobreaker.ErrTooManyRequests):
			return nil, c.unavailable("circuit breaker is half-open and probing", time.Second, err)
		case ctx.Err() != nil:
			return nil, c.sharedCtxError(ctx.Err())
		case resp != nil:
			// out of attempts on a retryable status
			ra, _ := parseRetryAfter(resp.Header.Get("Retry-After"), c.opt.clock())
			if c.cb.State() == gobreaker.StateOpen {
				ra = c.breakerRemaining()
			}
			return nil, c.unavailable(fmt.Sprintf("HTTP %d after %d attempt(s)", resp.StatusCode, c.cfg.MaxAttempts), ra, err)
		default:
			ra := time.Second
			if c.cb.State() == gobreaker.StateOpen {
				ra = c.breakerRemaining()
			}
			return nil, c.unavailable(fmt.Sprintf("unreachable after %d attempt(s)", c.cfg.MaxAttempts), ra, err)
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		c.log.Error("upstream rejected our credentials: check its app key, secret and algorithm", "status", resp.StatusCode, "service", q.ServiceID)
		e := c.unavailable(fmt.Sprintf("rejected our credentials (HTTP %d): the hub's app key, secret or algorithm for it is wrong", resp.StatusCode), c.cfg.BreakerOpenFor, nil)
		e.Details["http_status"] = resp.StatusCode
		return nil, e
	default:
		return nil, c.bad(fmt.Sprintf("unexpected HTTP %d", resp.StatusCode), nil, map[string]any{"http_status": resp.StatusCode})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.sharedCtxError(ctx.Err())
		}
		return nil, c.unavailable("reading the answer failed", time.Second, err)
	}
	if len(body) > MaxResponseBody {
		return nil, c.bad(fmt.Sprintf("answer larger than %d bytes", MaxResponseBody), nil, nil)
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		var le *licensehub.Error
		if errors.As(err, &le) {
			return nil, c.bad(le.Message, le.Err, nil)
		}
		return nil, c.bad("malformed answer", err, nil)
	}
	if env.Code != CodeOK {
		return nil, c.businessError(ctx, q, env)
	}
	return env.Data, nil
}

// businessError maps an upstream's business error to the hub's words. The
// upstream's own message is another system's text (it may quote the
// query's personal data): it goes to the log, masked, never to a client.
func (c *Client) businessError(ctx context.Context, q Query, env Envelope) *licensehub.Error {
	code, level := licensehub.EUPSTREAMBAD, slog.LevelWarn
	msg := fmt.Sprintf("upstream %s answered with an error code the hub does not know", c.cfg.Name)
	switch env.Code {
	case CodeNotFound:
		code, level = licensehub.ENOTFOUND, slog.LevelInfo
		msg = fmt.Sprintf("upstream %s has no record matching the query", c.cfg.Name)
	case CodeBadParams:
		code = licensehub.EINVALID
		msg = fmt.Sprintf("upstream %s refused the query's parameters", c.cfg.Name)
	}
	d := map[string]any{"upstream": c.cfg.Name}
	if shortCode(env.Code) {
		d["upstream_code"] = env.Code
	}
	c.log.Log(ctx, level, "upstream answered a business error", "service", q.ServiceID,
		"upstream_code", logging.MaskText(env.Code, 16), "upstream_message", logging.MaskText(env.Message, 200))
	e := &licensehub.Error{Code: code, Message: msg, Details: d}
	if code == licensehub.EINVALID {
		e.Field = "params"
	}
	return e
}

// shortCode reports whether an upstream's business code is short and plain
// enough to repeat to a client (e.g. "4004").
func shortCode(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// sharedCtxError maps the end of a shared call's own context: the budget
// running out is the upstream's slowness (UPSTREAM_UNAVAILABLE); a cancel
// means every caller left or the client closed.
func (c *Client) sharedCtxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return c.unavailable("no answer within the query budget", time.Second, err)
	}
	return c.unavailable("query abandoned", time.Second, err)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sign sets X-Timestamp and X-Signature for one attempt (first attempt and
// retryablehttp's PrepareRetry). The header map is cloned because
// retryablehttp's shallow request copies share it.
func (c *Client) sign(r *http.Request) error {
	r.Header = r.Header.Clone()
	ts := strconv.FormatInt(c.opt.clock().UnixMilli(), 10)
	sig, err := Sign(c.cfg.Algorithm, c.cfg.Secret, r.Header.Get(HeaderRequestID), ts, r.Header.Get(HeaderServiceID))
	if err != nil {
		return err
	}
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderSignature, sig)
	return nil
}

// retryAfterError: the upstream asked for a wait longer than MaxRetryAfter.
type retryAfterError struct{ d time.Duration }

func (e *retryAfterError) Error() string { return "upstream asked to retry after " + e.d.String() }

// checkRetry is the retry policy: see the package comment.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return false, err
		}
		return true, err // transport error or per-attempt timeout
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		if d, ok := httpretry.RetryAfter(resp, c.opt.clock()); ok && d > c.cfg.MaxRetryAfter {
			return false, &retryAfterError{d: d}
		}
		if c.cb.State() == gobreaker.StateOpen {
			return false, gobreaker.ErrOpenState
		}
		return true, fmt.Errorf("HTTP %d", resp.StatusCode)
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		if c.cb.State() == gobreaker.StateOpen {
			return false, gobreaker.ErrOpenState
		}
		return true, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return false, nil
}

// backoff: Retry-After (already known to be <= MaxRetryAfter) when given on
// 429/503, else capped exponential backoff with equal jitter.
func (c *Client) backoff(minD, maxD time.Duration, attempt int, resp *http.Response) time.Duration {
	return httpretry.Backoff(minD, maxD, attempt, resp, c.opt.clock(), c.cfg.MaxRetryAfter)
}

// parseRetryAfter reads delta-seconds or an HTTP date.
var parseRetryAfter = httpretry.ParseRetryAfter

// breakerTransport runs every HTTP attempt through the circuit breaker and
// records it (count, window, metrics).
type breakerTransport struct {
	c    *Client
	next http.RoundTripper
}

// statusFailure marks a response the breaker counts as a failure.
type statusFailure struct{ code int }

func (e statusFailure) Error() string { return "HTTP " + strconv.Itoa(e.code) }

func (t *breakerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c := t.c
	svc := r.Header.Get(HeaderServiceID)
	var start time.Time
	resp, err := c.cb.Execute(func() (*http.Response, error) {
		c.calls.Add(1)
		start = time.Now()
		resp, err := t.next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return resp, statusFailure{resp.StatusCode}
		}
		return resp, nil
	})
	var sf statusFailure
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		c.m.attempts.WithLabelValues(c.cfg.Name, svc, "breaker_open").Inc()
		return nil, err
	case errors.As(err, &sf):
		err = nil
	}
	lat := time.Since(start)
	failed := (err != nil && !errors.Is(err, context.Canceled)) || (err == nil && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests))
	out := "ok"
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		out = "cancelled"
	case err != nil:
		out = "error"
	case resp.StatusCode == http.StatusTooManyRequests:
		out = "http_429"
	case resp.StatusCode >= 500:
		out = "http_5xx"
	case resp.StatusCode >= 400:
		out = "http_4xx"
	case resp.StatusCode != http.StatusOK:
		out = "http_other"
	}
	c.m.attempts.WithLabelValues(c.cfg.Name, svc, out).Inc()
	c.m.latency.WithLabelValues(c.cfg.Name, svc).Observe(lat.Seconds())
	c.win.add(c.opt.clock(), lat, failed)
	if failed {
		c.log.Debug("upstream attempt failed", "service", svc, "path", r.URL.Path, "outcome", out, "latency", lat, "err", err)
	}
	return resp, err
}
