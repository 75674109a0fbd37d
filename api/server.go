// Package api is the hub's HTTP edge: a Fiber server with request IDs,
// JSON errors, panic recovery, access logs, Prometheus metrics, health and
// readiness. Domain services are plugged in by cmd/hub; handlers return
// errors and the one error handler renders them.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/internal/logging"
	"github.com/licensehub/licensehub/signing"
)

// Backend is one dependency that /readyz checks.
type Backend struct {
	Name   string // role: "object_store", "kv"
	Kind   string // implementation: "minio", "filesystem", "redis", "memory"
	Pinger licensehub.Pinger
	// Settings, when not nil, reads the server settings the hub depends
	// on with a verdict on each; /readyz shows them, and a VerdictRefuse
	// makes the backend "misconfigured" (503).
	Settings func(ctx context.Context) []licensehub.BackendSetting
}

// Options configure a Server.
type Options struct {
	Config   config.Server
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics are registered here and served at /metrics
	Backends []Backend
	Version  string
	// Keys and Verifier, when set, publish the key registry (/v1/keys) and
	// the verification endpoint (/v1/verify).
	Keys     signing.KeySource
	Verifier DocumentVerifier
	// Auth and Limiter guard every route under /v1 that is not public;
	// without Auth no such route is served.
	Auth    *auth.Authenticator
	Limiter *auth.Limiter
	// Audit receives a record of every use of license data before the
	// response leaves, and answers the audit and usage queries.
	Audit AuditTrail
	// PrivateMetrics moves /metrics behind authentication (administrators).
	PrivateMetrics bool
	// Catalog, when set, is published at /v1/catalog/types; Library serves
	// the license routes (push, read, status, versions) behind Auth.
	Catalog Catalog
	Library LicenseLibrary
	// Authorities, when set, is published at /v1/authorities.
	Authorities Authorities
	// Gateway, when set, serves derived certificates and adapter status.
	Gateway CertificateGateway
	// Lookups, when set, serves consents, per-matter lookups and materials.
	Lookups *Lookups
	// Conversions, when set, serves stock-license conversion jobs
	// (conversions.go); its upload is streamed, outside server.body_limit.
	Conversions *Conversions
	// Inbound, when set, serves POST /v1/exchange/inbound (the provincial
	// platform's envelopes; exchange.NewInbound).
	Inbound InboundReceiver
	// Exchange, when set, serves the provincial platform's change feed and
	// reconciliation digest (exchange.go).
	Exchange *Exchange
}

// Server is the hub's HTTP server.
type Server struct {
	app         *fiber.App
	log         *slog.Logger
	cfg         config.Server
	backends    []Backend
	metrics     *httpMetrics
	version     string
	auth        *auth.Authenticator
	limiter     *auth.Limiter
	audit       AuditTrail
	library     LicenseLibrary
	gateway     CertificateGateway
	lookups     *Lookups
	conversions *Conversions
	received    sync.Map // *fasthttp.RequestHeader → requestLine, see headerReceived
}

const headerRequestID = "X-Request-Id"

type localsKey int

const localRequestID localsKey = iota

// New builds the server and its routes; call Serve to start it.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Server{log: o.Logger, cfg: o.Config, backends: o.Backends, version: o.Version,
		metrics: newHTTPMetrics(o.Registry), auth: o.Auth, limiter: o.Limiter, audit: o.Audit,
		library: o.Library, gateway: o.Gateway, lookups: o.Lookups, conversions: o.Conversions}
	s.app = fiber.New(fiber.Config{
		AppName:               "licensehub",
		BodyLimit:             int(o.Config.BodyLimit),
		ReadTimeout:           o.Config.ReadTimeout.D(),
		WriteTimeout:          o.Config.WriteTimeout.D(),
		IdleTimeout:           o.Config.IdleTimeout.D(),
		ErrorHandler:          s.serverError,
		DisableStartupMessage: true,
		CaseSensitive:         true,
		StrictRouting:         true,
		// Values from the context outlive the handler in goroutines and
		// stores; copying them costs little and removes a class of bugs.
		Immutable: true,
		// Bodies up to BodyLimit are read whole before routing; larger or
		// chunked ones arrive as a stream that limitBody drains and rejects,
		// so the client always reads a 413 instead of a reset connection.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// The request line and headers are read into this buffer: room
		// for a request target of maxRequestTarget and generous headers.
		ReadBufferSize: readBufferSize,
	})
	// A request fasthttp gives up on before any handler (a body that
	// stalls within its first 8 KiB, headers too large) reaches
	// serverError with the request already reset; this keeps its method
	// and path for the log.
	s.app.Server().HeaderReceived = s.headerReceived
	s.app.Use(s.observe, s.limitBody)
	metrics := adaptor.HTTPHandler(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))

	// 1. Public routes (see auth.go for why the order matters).
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	if !o.PrivateMetrics {
		s.app.Get("/metrics", metrics)
	}
	if o.Keys != nil && o.Verifier != nil {
		s.mountVerification(o.Keys, o.Verifier)
	}
	if o.Catalog != nil {
		s.mountCatalog(o.Catalog)
	}
	if o.Authorities != nil {
		s.mountAuthorities(o.Authorities)
	}
	if o.Auth == nil {
		return s
	}
	// 2. Authentication and rate limits for the rest of /v1.
	s.app.Use("/v1", s.authenticate)
	// 3. Authenticated routes.
	if o.PrivateMetrics {
		s.app.Get("/v1/metrics", func(c *fiber.Ctx) error {
			if m := member(c); !m.HasRole(auth.RoleAdministrator) {
				return licensehub.Errorf(licensehub.EFORBIDDENROLE, "metrics are for administrators")
			}
			return metrics(c)
		})
	}
	if o.Audit != nil {
		s.mountAudit()
	}
	if o.Library != nil {
		s.mountLicenses()
	}
	if o.Gateway != nil {
		s.mountAdapters()
	}
	if o.Lookups != nil {
		s.mountLookups()
	}
	if o.Conversions != nil {
		s.mountConversions()
	}
	if o.Exchange != nil {
		s.mountExchange(o.Exchange)
	}
	if o.Inbound != nil {
		s.mountInbound(o.Inbound)
	}
	return s
}

// Router returns the root router, for cmd/hub to mount domain handlers.
func (s *Server) Router() fiber.Router { return s.app }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

const (
	// readBufferSize bounds the request line and headers together
	// (431 HEADERS_TOO_LARGE beyond it).
	readBufferSize = 16 << 10
	// maxRequestTarget bounds the request target, path and query
	// (414 URI_TOO_LONG beyond it).
	maxRequestTarget = 8 << 10
)

// requestLine is what headerReceived keeps of a request.
type requestLine struct{ method, path string }

// headerReceived runs once a request's headers are read, before its body
// is: it notes the method and path for serverError (see New). observe
// forgets them when the request reaches the handlers.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 {
		return fasthttp.RequestConfig{} // no body to stall on (every GET): nothing to keep
	}
	path, _, _ := strings.Cut(string(h.RequestURI()), "?")
	s.received.Store(h, requestLine{method: string(h.Method()), path: path})
	return fasthttp.RequestConfig{}
}

// observe is the outermost middleware: request ID, panic recovery, error
// rendering, metrics and the access log for every request.
func (s *Server) observe(c *fiber.Ctx) (err error) {
	start := time.Now()
	id := requestID(c)
	ctx := logging.WithRequestID(context.Background(), id)
	// Fiber does not cancel a request whose client went away: this deadline
	// bounds every store and upstream call a handler makes.
	reqCtx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout.D())
	defer cancel()
	c.SetUserContext(reqCtx)
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = &licensehub.Error{Code: licensehub.EINTERNAL, Err: fmt.Errorf("panic: %v", r)}
		}
		if err != nil {
			s.writeError(c, err)
			err = nil
		}
		s.finish(c, ctx, start, routeOf(c))
	}()
	if c.Request().Header.ContentLength() != 0 {
		s.received.Delete(&c.Request().Header)
	}
	if n := len(c.Request().Header.RequestURI()); n > maxRequestTarget {
		c.Response().SetConnectionClose()
		return uriTooLong(n)
	}
	return c.Next()
}

func uriTooLong(n int) error {
	d := map[string]any{"max_bytes": maxRequestTarget}
	if n > 0 {
		d["got_bytes"] = n
	}
	return &licensehub.Error{Code: licensehub.EURITOOLONG, Details: d,
		Message: fmt.Sprintf("the request target (path and query) is longer than %d bytes", maxRequestTarget)}
}

// maxDrain bounds how much of an oversized body is read and discarded so
// that the client sees the 413; beyond it the connection is simply closed.
const maxDrain = 64 << 20

// limitBody enforces server.body_limit on every request, including chunked
// ones whose size is unknown until read.
func (s *Server) limitBody(c *fiber.Ctx) error {
	if s.isUpload(c) {
		return s.passUpload(c) // conversion.max_upload instead, streamed
	}
	req := c.Request()
	limit := int64(s.cfg.BodyLimit)
	stream := req.BodyStream()
	cl := int64(req.Header.ContentLength())
	switch {
	case stream == nil:
		return c.Next()
	case cl > limit:
		return tooLarge(c, stream)
	}
	// The body is read here, whole, before any handler: fasthttp has read
	// at most its first 8 KiB, and reading the rest later (c.Body) would
	// turn a read error into the body's text. Chunked: up to the limit,
	// and one byte more to know.
	var body []byte
	var err error
	if cl >= 0 {
		body = make([]byte, cl)
		_, err = io.ReadFull(stream, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(stream, limit+1))
	}
	if err != nil {
		c.Response().SetConnectionClose()
		return s.readFailed(err)
	}
	if int64(len(body)) > limit {
		return tooLarge(c, stream)
	}
	req.SetBody(body)
	return c.Next()
}

// readFailed is the error of a request body that could not be read.
func (s *Server) readFailed(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || errors.Is(err, fasthttp.ErrTimeout) {
		return s.requestTimeout(err)
	}
	return licensehub.Wrap(err, licensehub.EMALFORMED, "the request body could not be read to its end")
}

// requestTimeout: the client stalled.
func (s *Server) requestTimeout(err error) error {
	return &licensehub.Error{Code: licensehub.EREQUESTTIMEOUT, Err: err,
		Message: fmt.Sprintf("the request did not arrive whole within %s (server.read_timeout); send it again",
			licensehub.HumanDuration(s.cfg.ReadTimeout.D()))}
}

func tooLarge(c *fiber.Ctx, rest io.Reader) error {
	_, _ = io.CopyN(io.Discard, rest, maxDrain)
	// Done with the stream: without this fasthttp waits for more of a
	// chunked body that has already ended.
	c.Request().SetBody(nil)
	c.Response().SetConnectionClose()
	return &licensehub.Error{Code: licensehub.EBODYTOOLARGE,
		Message: "request body is larger than the configured limit (server.body_limit)"}
}

// serverError is Fiber's error handler. Requests reach it directly only when
// fasthttp rejects them before routing (a body that stalls or is over the
// limit, headers that do not fit the read buffer); those get the same
// treatment as everything else, and are logged with the method and path
// headerReceived kept (fasthttp has reset the request by now).
func (s *Server) serverError(c *fiber.Ctx, err error) error {
	start := time.Now()
	ctx := logging.WithRequestID(context.Background(), requestID(c))
	line := requestLine{method: c.Method(), path: c.Path()}
	if v, ok := s.received.LoadAndDelete(&c.Request().Header); ok {
		line = v.(requestLine)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusRequestTimeout:
			err = s.requestTimeout(err)
		case fiber.StatusRequestHeaderFieldsTooLarge:
			// fasthttp's read buffer is full before the headers end.
			// (Whether the request line alone filled it cannot be told
			// apart: fasthttp keeps nothing of a line it did not finish.)
			err = &licensehub.Error{Code: licensehub.EHEADERSTOOLARGE, Err: err,
				Details: map[string]any{"max_bytes": readBufferSize, "max_target_bytes": maxRequestTarget},
				Message: fmt.Sprintf("the request line and headers are larger than %d bytes together (the path and query at most %d)",
					readBufferSize, maxRequestTarget)}
		}
	}
	s.writeError(c, err)
	s.finishAs(c, ctx, start, "unmatched", line)
	return nil
}

func (s *Server) writeError(c *fiber.Ctx, err error) {
	e := toError(c, err)
	status := StatusOf(e.Code)
	id, _ := c.Locals(localRequestID).(string)
	if status >= 500 {
		s.log.ErrorContext(logging.WithRequestID(context.Background(), id), "request failed",
			"code", e.Code, "error", err.Error(), "method", c.Method(), "path", logging.MaskPath(c.Path()))
	}
	if e.Code == licensehub.ERATELIMITED || e.Code == licensehub.EUPSTREAM || e.Code == licensehub.EUNAVAILABLE {
		if ra, ok := e.Details["retry_after_seconds"]; ok {
			c.Set(fiber.HeaderRetryAfter, fmt.Sprint(ra))
		}
	}
	if jerr := c.Status(status).JSON(body(e, id)); jerr != nil {
		c.Status(fiber.StatusInternalServerError)
	}
}

func (s *Server) finish(c *fiber.Ctx, ctx context.Context, start time.Time, route string) {
	s.finishAs(c, ctx, start, route, requestLine{method: c.Method(), path: c.Path()})
}

// finishAs is finish for a request whose method and path are line.
func (s *Server) finishAs(c *fiber.Ctx, ctx context.Context, start time.Time, route string, line requestLine) {
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.metrics.observe(route, line.method, status, elapsed)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(ctx, level, "request", "method", line.method, "route", route, "path", logging.MaskPath(line.path),
		"status", status, "duration_ms", float64(elapsed.Microseconds())/1000, "bytes_in", len(c.Request().Body()),
		"remote", c.IP())
}

// requestID accepts a well-formed X-Request-Id or makes one, echoes it in
// the response and remembers it for the error body and logs.
func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(localRequestID).(string); ok {
		return id
	}
	id := c.Get(headerRequestID)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Locals(localRequestID, id)
	c.Set(headerRequestID, id)
	return id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if ch < 0x21 || ch > 0x7e { // printable ASCII, no spaces: safe in logs and headers
			return false
		}
	}
	return true
}

// routeOf returns the matched route pattern, or "unmatched", so that
// metrics never carry raw paths.
func routeOf(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || r.Method == "USE" || c.Response().StatusCode() == fiber.StatusNotFound && r.Path == "/" {
		return "unmatched"
	}
	return r.Path
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "alive", "version": s.version})
}

type backendStatus struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Status    string  `json:"status"` // up | down | misconfigured
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	// Settings are the server settings the hub depends on (Redis).
	Settings []licensehub.BackendSetting `json:"settings,omitempty"`
}

// readyz checks every backend in parallel, each within ready_timeout.
func (s *Server) readyz(c *fiber.Ctx) error {
	results := make([]backendStatus, len(s.backends))
	var wg sync.WaitGroup
	for i, b := range s.backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.ReadyTimeout.D())
			defer cancel()
			start := time.Now()
			err := b.Pinger.Ping(ctx)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			results[i] = backendStatus{Name: b.Name, Kind: b.Kind, Status: "up",
				LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				results[i].Status, results[i].Error = "down", pingError(err)
				// The cause (a directory, an address) is for the operators.
				s.log.WarnContext(c.UserContext(), "backend not ready", "backend", b.Name, "kind", b.Kind, "error", err.Error())
				return
			}
			if b.Settings != nil {
				results[i].Settings = b.Settings(ctx)
				if refused := refusedSettings(results[i].Settings); refused != "" {
					results[i].Status, results[i].Error = "misconfigured", "the hub does not run on this server's "+refused
					s.log.WarnContext(c.UserContext(), "backend misconfigured", "backend", b.Name, "kind", b.Kind, "settings", refused)
				}
			}
		}()
	}
	wg.Wait()
	var down []string
	for _, r := range results {
		if r.Status != "up" {
			down = append(down, r.Name)
		}
	}
	if len(down) > 0 {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not_ready", "down": down, "backends": results})
	}
	return c.JSON(fiber.Map{"status": "ready", "backends": results})
}

// refusedSettings names the settings whose verdict is refuse ("" when
// none is).
func refusedSettings(settings []licensehub.BackendSetting) string {
	var names []string
	for _, st := range settings {
		if st.Verdict == licensehub.VerdictRefuse {
			names = append(names, st.Name)
		}
	}
	return strings.Join(names, ", ")
}

// pingError is what /readyz (a public route) says of a backend's failure:
// the hub's message, without the cause it wraps.
func pingError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within server.ready_timeout"
	}
	return licensehub.Message(err)
}

// httpMetrics are the request metrics, labelled by route pattern (never the
// raw path), method and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "licensehub", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "licensehub", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	st := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, st).Inc()
	m.latency.WithLabelValues(route, method, st).Observe(d.Seconds())
}
