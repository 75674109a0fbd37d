package exchange

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/httpretry"
	"github.com/licensehub/licensehub/lease"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// Outbound delivery.
//
// One Deliverer at a time leads (KV lease LeaseKey, renewed every TTL/3,
// released on stop). The leader reads license.OutboxStream after its
// cursor (KV CursorKey, checkpointed to the object CursorObject), loads
// each entry's outbox object and hands every event to a lane chosen by
// its license (hash(identifier) % Concurrency): a lane delivers in order,
// lanes run concurrently. The cursor only moves past entries whose events
// are all delivered or dead-lettered (a low watermark), so a leader killed
// mid-delivery loses nothing: the next one re-sends what was not
// confirmed, and the receiver deduplicates on the event ID.
//
// Each event is POSTed as an envelope to ProvinceURL + "/v1/events":
// retried with backoff (go-retryablehttp; Retry-After honoured up to
// MaxRetryAfter), through a circuit breaker (gobreaker) in the transport.
// While the breaker is open no request is made and no attempt is counted.
// A 4xx other than 408/429 dead-letters at once; MaxAttempts attempts
// without success dead-letter too. A dead letter is the object
// exchange/dlq/<hex sm3(event id)>.json (create-only) plus the member in
// KV set DLQKey; the license is then blocked (KV "exchange:blocked:<id>")
// and its later events are dead-lettered behind it (reason blocked_behind)
// until Replay re-delivers them in order. Parking an event and Replay's
// unblocking both run under the license's lane lock (KV
// "exchange:lane:<id>"), so Replay sees every parked event before it
// unblocks. The dead letter objects are the system of record: a new
// leader rebuilds the KV set and the blocked markers from them.
//
// When the KV cursor is missing (Redis was lost), the leader recovers
// from the durable checkpoint in the object store and re-sends at most
// CheckpointEvents events (checkpoint.go).
const (
	LeaseKey     = "exchange:deliver"
	CursorKey    = "exchange:cursor"
	CursorObject = "exchange/cursor.json"
	DLQKey       = "exchange:dlq"
	DLQPrefix    = "exchange/dlq/"
	blockedKey   = "exchange:blocked:"
	laneLockKey  = "exchange:lane:" // + identifier: held by Replay, and by a lane parking an event behind a dead letter

	// Dead-letter reasons.
	ReasonRejected      = "rejected"       // the province answered 4xx (not 408/429)
	ReasonMaxAttempts   = "max_attempts"   // MaxAttempts attempts failed
	ReasonBlockedBehind = "blocked_behind" // an earlier event of the license is dead-lettered
	ReasonUnbuildable   = "unbuildable"    // the license cannot be read to build the envelope

	recoveryMargin = 2 * time.Minute
)

// LicenseReader reads a license and its metadata (license.Library).
type LicenseReader interface {
	Get(ctx context.Context, identifier string) (*license.Record, error)
}

// DeliverConfig configures a Deliverer. Objects, KV, Licenses, Signers,
// Authority and ProvinceURL are required; zero values take the defaults
// noted.
type DeliverConfig struct {
	Objects     licensehub.ObjectStore
	KV          licensehub.KV
	Licenses    LicenseReader
	Signers     signing.SignerSource
	Authority   string // the hub's authority code: sender and signing key
	ProvinceURL string // events go to ProvinceURL + "/v1/events"

	Concurrency     int           // lanes (16)
	MaxAttempts     int           // per event before dead-lettering (8)
	MaxRetryAfter   time.Duration // cap on Retry-After (60s)
	Timeout         time.Duration // per HTTP attempt (10s)
	LeaseTTL        time.Duration // 30s
	MinBackoff      time.Duration // 200ms
	MaxBackoff      time.Duration // 30s
	BreakerFailures uint32        // consecutive failures that open the breaker (5)
	BreakerOpenFor  time.Duration // 30s
	Poll            time.Duration // how often to look for the lease and new entries (500ms)
	CheckpointEvery time.Duration // cursor object checkpoint (5s)
	OpTimeout       time.Duration // per object store / KV call (10s)

	// CheckpointEvents bounds the events re-sent after a KV loss: at most
	// this many are ever started and not yet in a durable checkpoint (1000;
	// see checkpoint.go).
	CheckpointEvents int

	Clock      func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Transport  http.RoundTripper // nil: a clone of http.DefaultTransport
}

// Deliverer delivers the outbox to the province. Run it on every
// instance; one leads at a time.
type Deliverer struct {
	cfg   DeliverConfig
	url   string
	log   *slog.Logger
	rc    *retryablehttp.Client
	cb    *gobreaker.CircuitBreaker[*http.Response]
	m     *delivererMetrics
	owner string
}

// NewDeliverer checks cfg and builds a Deliverer.
func NewDeliverer(cfg DeliverConfig) (*Deliverer, error) {
	switch {
	case cfg.Objects == nil || cfg.KV == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Objects", "exchange: a deliverer needs an object store and a KV")
	case cfg.Licenses == nil || cfg.Signers == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Licenses", "exchange: a deliverer needs the license library and the signers")
	case cfg.Authority == "":
		return nil, licensehub.FieldError(licensehub.EINVALID, "signing.hub_authority", "exchange: the hub authority is required")
	case !strings.HasPrefix(cfg.ProvinceURL, "http://") && !strings.HasPrefix(cfg.ProvinceURL, "https://"):
		return nil, licensehub.FieldError(licensehub.EINVALID, "exchange.province_url", "exchange: province URL %q must be an absolute http(s) URL", cfg.ProvinceURL)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxRetryAfter, 60*time.Second)
	def(&cfg.Timeout, 10*time.Second)
	def(&cfg.LeaseTTL, 30*time.Second)
	def(&cfg.MinBackoff, 200*time.Millisecond)
	def(&cfg.MaxBackoff, 30*time.Second)
	def(&cfg.BreakerOpenFor, 30*time.Second)
	def(&cfg.Poll, 500*time.Millisecond)
	def(&cfg.CheckpointEvery, 5*time.Second)
	def(&cfg.OpTimeout, 10*time.Second)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.CheckpointEvents <= 0 {
		cfg.CheckpointEvents = 1000
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newDelivererMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	d := &Deliverer{cfg: cfg, url: strings.TrimRight(cfg.ProvinceURL, "/") + "/v1/events",
		log: cfg.Logger.With("component", "exchange.deliver"), m: m, owner: hex.EncodeToString(tok[:])}
	d.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        "province",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= cfg.BreakerFailures },
		IsExcluded:  func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breaker.Set(breakerValue(to))
			d.log.Warn("exchange: province breaker state changed", "from", from.String(), "to", to.String())
		},
	})
	next := cfg.Transport
	if next == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		tr.ResponseHeaderTimeout = cfg.Timeout
		next = tr
	}
	d.rc = &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: &breakerTransport{d: d, next: next}, Timeout: cfg.Timeout},
		Logger:       nil,
		RetryWaitMin: cfg.MinBackoff,
		RetryWaitMax: cfg.MaxBackoff,
		RetryMax:     cfg.MaxAttempts,
		CheckRetry:   d.checkRetry,
		Backoff:      d.backoff,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	return d, nil
}

// ---- metrics ----

type delivererMetrics struct {
	delivered prometheus.Counter
	failed    prometheus.Counter
	dead      *prometheus.CounterVec
	backlog   prometheus.Gauge
	breaker   prometheus.Gauge
}

func newDelivererMetrics(reg prometheus.Registerer) (*delivererMetrics, error) {
	m := &delivererMetrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "licensehub_exchange_delivered_total",
			Help: "Exchange events delivered to the provincial platform (2xx)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "licensehub_exchange_attempt_failures_total",
			Help: "Failed HTTP attempts to deliver exchange events."}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "licensehub_exchange_dead_lettered_total",
			Help: "Exchange events dead-lettered, by reason (rejected, max_attempts, blocked_behind, unbuildable)."}, []string{"reason"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "licensehub_exchange_backlog",
			Help: "Outbox stream entries not yet confirmed (after the delivery cursor)."}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{Name: "licensehub_exchange_breaker_state",
			Help: "The province breaker: 0 closed, 1 half-open, 2 open."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.delivered, m.failed, m.dead, m.backlog, m.breaker} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// ---- HTTP: retries and breaker ----

type attemptsKey struct{}

// attemptCounter counts the HTTP attempts really made for one event (n)
// and the 429 answers (throttled), which are not attempts: the province
// asked to slow down and did not judge the event, so, like an open
// breaker, throttling delays an event but never dead-letters it.
type attemptCounter struct{ n, throttled atomic.Int64 }

func counterOf(ctx context.Context) *attemptCounter {
	c, _ := ctx.Value(attemptsKey{}).(*attemptCounter)
	return c
}

type breakerTransport struct {
	d    *Deliverer
	next http.RoundTripper
}

type statusFailure struct{ code int }

func (e statusFailure) Error() string { return "HTTP " + strconv.Itoa(e.code) }

func (t *breakerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.d.cb.Execute(func() (*http.Response, error) {
		if c := counterOf(r.Context()); c != nil {
			c.n.Add(1)
		}
		resp, err := t.next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			if c := counterOf(r.Context()); c != nil {
				c.n.Add(-1)
				c.throttled.Add(1)
			}
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			return resp, statusFailure{resp.StatusCode}
		}
		return resp, nil
	})
	var sf statusFailure
	if errors.As(err, &sf) {
		err = nil
	}
	return resp, err
}

func isBreakerOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// retryAfterTooLong: the province asked for a pause longer than the cap;
// the event waits MaxRetryAfter outside retryablehttp and tries again.
type retryAfterTooLong struct{ d time.Duration }

func (e *retryAfterTooLong) Error() string { return "province asked to retry after " + e.d.String() }

func (d *Deliverer) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if c := counterOf(ctx); c != nil && c.n.Load() >= int64(d.cfg.MaxAttempts) {
		return false, err
	}
	if err != nil {
		if isBreakerOpen(err) {
			return false, err
		}
		return true, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		if ra, ok := httpretry.RetryAfter(resp, d.cfg.Clock()); ok && ra > d.cfg.MaxRetryAfter {
			return false, nil
		}
		return d.cb.State() != gobreaker.StateOpen, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return d.cb.State() != gobreaker.StateOpen, nil
	}
	return false, nil
}

func (d *Deliverer) backoff(minD, maxD time.Duration, attempt int, resp *http.Response) time.Duration {
	return httpretry.Backoff(minD, maxD, attempt, resp, d.cfg.Clock(), d.cfg.MaxRetryAfter)
}

// sendResult is how one event's delivery ended.
type sendResult struct {
	delivered bool
	rejected  bool // 4xx other than 408/429: dead-letter now
	attempts  int
	lastErr   string
}

// send POSTs one envelope until it is delivered, rejected or out of
// attempts; ctx.Err() when ctx ends first. Breaker-open periods are
// waited out without counting attempts.
func (d *Deliverer) send(ctx context.Context, eventID string, body []byte, attempts int) (sendResult, error) {
	res := sendResult{attempts: attempts}
	for round := 0; ; round++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if d.cb.State() == gobreaker.StateOpen {
			if err := sleep(ctx, min(d.cfg.BreakerOpenFor/4+time.Millisecond, time.Second)); err != nil {
				return res, err
			}
			continue
		}
		ctr := &attemptCounter{}
		ctr.n.Store(int64(res.attempts))
		budget := d.cfg.Timeout*time.Duration(d.cfg.MaxAttempts) + d.cfg.MaxRetryAfter*time.Duration(d.cfg.MaxAttempts) + time.Second
		rctx, cancel := context.WithTimeout(context.WithValue(ctx, attemptsKey{}, ctr), budget)
		req, err := retryablehttp.NewRequestWithContext(rctx, http.MethodPost, d.url, body)
		if err != nil {
			cancel()
			return res, licensehub.Wrap(err, licensehub.EINTERNAL, "exchange: building the request")
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Event-ID", eventID)
		resp, err := d.rc.Do(req)
		made := int(ctr.n.Load()) - res.attempts
		throttled := int(ctr.throttled.Load())
		res.attempts = int(ctr.n.Load())
		var retryAfter time.Duration
		if resp != nil {
			snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			switch code := resp.StatusCode; {
			case code >= 200 && code < 300:
				cancel()
				res.delivered = true
				return res, nil
			case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
				cancel()
				res.rejected = true
				res.lastErr = fmt.Sprintf("HTTP %d: %s", code, strings.TrimSpace(string(snippet)))
				d.m.failed.Add(float64(made + throttled))
				return res, nil
			default:
				res.lastErr = fmt.Sprintf("HTTP %d: %s", code, strings.TrimSpace(string(snippet)))
				if ra, ok := httpretry.ParseRetryAfter(resp.Header.Get("Retry-After"), d.cfg.Clock()); ok {
					retryAfter = min(ra, d.cfg.MaxRetryAfter)
				}
			}
		} else if err != nil && !isBreakerOpen(err) {
			res.lastErr = err.Error()
		}
		cancel()
		d.m.failed.Add(float64(made + throttled))
		if cerr := ctx.Err(); cerr != nil {
			return res, cerr
		}
		if res.attempts >= d.cfg.MaxAttempts {
			return res, nil
		}
		wait := retryAfter
		if wait == 0 {
			wait = httpretry.Jitter(d.cfg.MinBackoff, d.cfg.MaxBackoff, res.attempts)
		}
		if made == 0 && throttled == 0 {
			wait = min(wait, d.cfg.Poll) // breaker half-open: another lane is probing
		}
		if err := sleep(ctx, wait); err != nil {
			return res, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- envelopes ----

// envelope builds and signs the envelope of ev.
func (d *Deliverer) envelope(ctx context.Context, ev OutboxEvent, batch string) ([]byte, error) {
	e := &Event{Sender: d.cfg.Authority, ID: ev.EventID, License: ev.Identifier, Seq: ev.Seq, Op: ev.Op,
		Time: ev.At, Batch: batch}
	if ev.Op == OpCatalog {
		e.Catalog = ev.Catalog
	} else {
		octx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout*3)
		rec, err := d.cfg.Licenses.Get(octx, ev.Identifier)
		cancel()
		if err != nil {
			return nil, err
		}
		e.Meta = metaOf(rec.License)
		if isStatusOp(ev.Op) {
			e.Status = &StatusChange{From: ev.From, To: ev.To, SupersededBy: ev.SupersededBy}
			for _, h := range rec.History {
				if h.Seq == ev.Seq {
					e.Status.Reason = h.Reason
				}
			}
		} else {
			e.Document = json.RawMessage(rec.Document)
			// From the license object (the system of record), so every
			// delivery of the event says it, whenever it was recorded.
			if rec.Initial != "" && rec.Initial != license.StatusValid {
				e.InitialStatus = string(rec.Initial)
			}
		}
	}
	now := d.cfg.Clock()
	signer, err := d.cfg.Signers.SignerFor(d.cfg.Authority, now)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
	defer cancel()
	return Seal(sctx, signer, e, now)
}

func metaOf(l *license.License) *Meta {
	if l == nil {
		return nil
	}
	return &Meta{HolderName: l.Holder.Name, HolderCode: l.Holder.Code, HolderCodeType: l.Holder.CodeType,
		Name: l.Name, Number: l.Number, TypeCode: l.TypeCode, IssueDate: l.IssueDate,
		Department: l.Issuer.Name, DepartmentCode: l.Issuer.Code, AreaCode: l.AreaCode,
		Version: l.Version, Previous: l.Previous}
}

// permanent reports whether building an envelope failed for good.
func permanent(err error) bool {
	switch licensehub.ErrorCode(err) {
	case licensehub.ELICNOTFOUND, licensehub.EINVALID, licensehub.EMALFORMED, licensehub.EKEYNOTFOUND, licensehub.EINTERNAL:
		return true
	}
	return false
}

// ---- dead letters ----

// DeadLetter is one dead-lettered event (exchange/dlq/<hex sm3(id)>.json).
type DeadLetter struct {
	EventID  string      `json:"event_id"`
	Event    OutboxEvent `json:"event"`
	Batch    string      `json:"batch"`
	Reason   string      `json:"reason"`
	Error    string      `json:"error,omitempty"`
	Attempts int         `json:"attempts"`
	Time     string      `json:"time"`
}

// DLQObject is the dead letter object key of an event ID.
func DLQObject(eventID string) string { return DLQPrefix + sm3Hex(eventID) + ".json" }

// retryStore runs fn until it succeeds or ctx ends, each call bounded by
// OpTimeout (a store outage delays delivery; it loses nothing).
func (d *Deliverer) retryStore(ctx context.Context, what string, fn func(context.Context) error) error {
	for i := 0; ; i++ {
		c, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
		err := fn(c)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i%10 == 0 {
			d.log.WarnContext(ctx, "exchange: store call failed; retrying", "what", what, "err", err.Error())
		}
		if err := sleep(ctx, httpretry.Jitter(d.cfg.MinBackoff, 5*time.Second, i)); err != nil {
			return err
		}
	}
}

func (d *Deliverer) deadLetter(ctx context.Context, ev OutboxEvent, batch, reason, lastErr string, attempts int) error {
	dl := DeadLetter{EventID: ev.EventID, Event: ev, Batch: batch, Reason: reason, Error: lastErr,
		Attempts: attempts, Time: d.cfg.Clock().UTC().Format(time.RFC3339Nano)}
	raw, _ := json.Marshal(dl)
	key := DLQObject(ev.EventID)
	if err := d.retryStore(ctx, "dead letter", func(c context.Context) error {
		_, err := d.cfg.Objects.Create(c, key, bytes.NewReader(raw), int64(len(raw)), licensehub.PutOptions{ContentType: "application/json"})
		if licensehub.IsCode(err, licensehub.ECONFLICT) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	if err := d.retryStore(ctx, "dead letter set", func(c context.Context) error { return d.cfg.KV.SAdd(c, DLQKey, ev.EventID) }); err != nil {
		return err
	}
	if ev.Identifier != "" && reason != ReasonBlockedBehind {
		if err := d.retryStore(ctx, "block license", func(c context.Context) error {
			return d.cfg.KV.Set(c, blockedKey+ev.Identifier, []byte(ev.EventID), 0)
		}); err != nil {
			return err
		}
	}
	d.m.dead.WithLabelValues(reason).Inc()
	d.log.WarnContext(ctx, "exchange: event dead-lettered", "event_id", ev.EventID, "reason", reason, "attempts", attempts, "err", lastErr)
	return nil
}

// process delivers or dead-letters one event; an error means ctx ended
// first (the event is then neither).
func (d *Deliverer) process(ctx context.Context, ev OutboxEvent, batch string) error {
	if ev.Identifier != "" {
		blocked, err := d.blockedBy(ctx, ev.Identifier)
		if err != nil {
			return err
		}
		if blocked != "" && blocked != ev.EventID {
			parked, err := d.park(ctx, ev, batch)
			if err != nil || parked {
				return err
			}
		}
	}
	res, err := d.deliver(ctx, ev, batch, 0)
	if err != nil {
		return err
	}
	switch {
	case res.delivered:
		return nil
	case res.rejected:
		return d.deadLetter(ctx, ev, batch, ReasonRejected, res.lastErr, res.attempts)
	case res.lastErr != "" && res.attempts == 0:
		return d.deadLetter(ctx, ev, batch, ReasonUnbuildable, res.lastErr, 0)
	}
	return d.deadLetter(ctx, ev, batch, ReasonMaxAttempts, res.lastErr, res.attempts)
}

// blockedBy returns the event a license is blocked behind ("" when it is
// not blocked).
func (d *Deliverer) blockedBy(ctx context.Context, lic string) (string, error) {
	var blocked string
	err := d.retryStore(ctx, "blocked check", func(c context.Context) error {
		v, err := d.cfg.KV.Get(c, blockedKey+lic)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			blocked = ""
			return nil
		}
		blocked = string(v)
		return err
	})
	return blocked, err
}

// park dead-letters ev behind its license's dead letter, under the
// license's lane lock: when a Replay holds it, park waits, and delivers
// nothing (parked false) when the Replay unblocked the license meanwhile.
func (d *Deliverer) park(ctx context.Context, ev OutboxEvent, batch string) (bool, error) {
	ctx, release, err := d.lockLicense(ctx, ev.Identifier)
	if err != nil {
		return false, err
	}
	defer release()
	blocked, err := d.blockedBy(ctx, ev.Identifier)
	if err != nil || blocked == "" || blocked == ev.EventID {
		return false, err
	}
	return true, d.deadLetter(ctx, ev, batch, ReasonBlockedBehind, "blocked behind "+blocked, 0)
}

// lockLicense takes the license's lane lock (a lease, package lease,
// renewed while held), waiting while someone else holds it. The returned
// context ends when the lock is lost; release frees it.
func (d *Deliverer) lockLicense(ctx context.Context, lic string) (held context.Context, release func(), err error) {
	o := lease.Options{Owner: d.owner, TTL: d.cfg.LeaseTTL, OpTimeout: d.cfg.OpTimeout}
	for i := 0; ; i++ {
		l, err := lease.Acquire(ctx, d.cfg.KV, laneLockKey+lic, o)
		if err == nil {
			held, release := l.Hold(ctx)
			return held, release, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if !errors.Is(err, lease.ErrHeld) && i%10 == 0 {
			d.log.WarnContext(ctx, "exchange: taking a license lock failed; retrying", "license", lic, "err", err.Error())
		}
		if err := sleep(ctx, min(d.cfg.Poll, 250*time.Millisecond)); err != nil {
			return nil, nil, err
		}
	}
}

// deliver builds ev's envelope and sends it. An envelope that cannot be
// built for good gives a result with lastErr and no attempts.
func (d *Deliverer) deliver(ctx context.Context, ev OutboxEvent, batch string, attempts int) (sendResult, error) {
	var body []byte
	for i := 0; ; i++ {
		var err error
		body, err = d.envelope(ctx, ev, batch)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return sendResult{}, ctx.Err()
		}
		if permanent(err) {
			return sendResult{lastErr: err.Error()}, nil
		}
		d.log.WarnContext(ctx, "exchange: building an envelope failed; retrying", "event_id", ev.EventID, "err", err.Error())
		if err := sleep(ctx, httpretry.Jitter(d.cfg.MinBackoff, 5*time.Second, i)); err != nil {
			return sendResult{}, err
		}
	}
	res, err := d.send(ctx, ev.EventID, body, attempts)
	if err == nil && res.delivered {
		d.m.delivered.Inc()
	}
	return res, err
}

// DeadLetters lists the dead letters (from the object store, the system
// of record), ordered by license and seq.
func (d *Deliverer) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	lctx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout*3)
	keys, err := listKeys(lctx, d.cfg.Objects, DLQPrefix)
	cancel()
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(keys))
	for _, k := range keys {
		rctx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
		raw, err := readObject(rctx, d.cfg.Objects, k)
		cancel()
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var dl DeadLetter
		if json.Unmarshal(raw, &dl) != nil || dl.EventID == "" {
			d.log.WarnContext(ctx, "exchange: unreadable dead letter", "key", k)
			continue
		}
		out = append(out, dl)
	}
	sortEvents(out, func(dl DeadLetter) OutboxEvent { return dl.Event })
	return out, nil
}

// sortEvents orders by license, then seq (the license itself first), then
// time, then event ID.
func sortEvents[T any](s []T, ev func(T) OutboxEvent) {
	sort.SliceStable(s, func(i, j int) bool {
		a, b := ev(s[i]), ev(s[j])
		if a.Identifier != b.Identifier {
			return a.Identifier < b.Identifier
		}
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if a.At != b.At {
			return a.At < b.At
		}
		return a.EventID < b.EventID
	})
}

// ReplayReport says what Replay did.
type ReplayReport struct {
	Replayed  []string          `json:"replayed"`            // delivered, removed from the dead letters
	Failed    map[string]string `json:"failed,omitempty"`    // still dead: event ID -> last error
	Unblocked []string          `json:"unblocked,omitempty"` // licenses whose events flow again
}

// Replay re-delivers dead letters (those named by eventIDs, or all when
// all is set) in (license, seq) order. A license's replay stops at its
// first failure (the rest stay dead, in order); a license with no dead
// letter left is unblocked. Each license is replayed under its lane lock
// and its dead letters are listed again under it, so an event parked
// while the replay ran is replayed too (all) or keeps the license blocked.
func (d *Deliverer) Replay(ctx context.Context, eventIDs []string, all bool) (ReplayReport, error) {
	rep := ReplayReport{Failed: map[string]string{}}
	dls, err := d.DeadLetters(ctx)
	if err != nil {
		return rep, err
	}
	want := map[string]bool{}
	for _, id := range eventIDs {
		want[id] = true
	}
	for id := range want {
		found := false
		for _, dl := range dls {
			found = found || dl.EventID == id
		}
		if !found {
			rep.Failed[id] = "not a dead letter"
		}
	}
	var lics []string
	seen := map[string]bool{}
	for _, dl := range dls {
		if lic := dl.Event.Identifier; !seen[lic] && (all || want[dl.EventID]) {
			seen[lic] = true
			lics = append(lics, lic)
		}
	}
	for _, lic := range lics {
		if err := d.replayLicense(ctx, lic, want, all, &rep); err != nil {
			return rep, err
		}
	}
	if len(rep.Failed) == 0 {
		rep.Failed = nil
	}
	return rep, nil
}

// deadLettersOf lists the dead letters of one license, in seq order.
func (d *Deliverer) deadLettersOf(ctx context.Context, lic string) ([]DeadLetter, error) {
	dls, err := d.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := dls[:0]
	for _, dl := range dls {
		if dl.Event.Identifier == lic {
			out = append(out, dl)
		}
	}
	return out, nil
}

func (d *Deliverer) replayLicense(ctx context.Context, lic string, want map[string]bool, all bool, rep *ReplayReport) error {
	if lic != "" {
		held, release, err := d.lockLicense(ctx, lic)
		if err != nil {
			return err
		}
		defer release()
		ctx = held
	}
	tried := map[string]bool{}
	for {
		dls, err := d.deadLettersOf(ctx, lic)
		if err != nil {
			return err
		}
		var todo []DeadLetter
		for _, dl := range dls {
			if (all || want[dl.EventID]) && !tried[dl.EventID] {
				todo = append(todo, dl)
			}
		}
		if len(todo) == 0 {
			break
		}
		for _, dl := range todo {
			tried[dl.EventID] = true
			res, err := d.deliver(ctx, dl.Event, dl.Batch, 0)
			if err != nil {
				return err
			}
			if !res.delivered {
				rep.Failed[dl.EventID] = res.lastErr
				dl.Attempts += res.attempts
				dl.Error = res.lastErr
				raw, _ := json.Marshal(dl)
				_ = d.retryStore(ctx, "dead letter update", func(c context.Context) error {
					_, err := d.cfg.Objects.Put(c, DLQObject(dl.EventID), bytes.NewReader(raw), int64(len(raw)), licensehub.PutOptions{ContentType: "application/json"})
					return err
				})
				return nil // the license's replay stops here; it stays blocked
			}
			rep.Replayed = append(rep.Replayed, dl.EventID)
			if err := d.retryStore(ctx, "dead letter removal", func(c context.Context) error {
				return d.cfg.Objects.Delete(c, DLQObject(dl.EventID))
			}); err != nil {
				return err
			}
			_ = d.retryStore(ctx, "dead letter set", func(c context.Context) error { return d.cfg.KV.SRem(c, DLQKey, dl.EventID) })
		}
	}
	if lic == "" {
		return nil
	}
	// Listed again under the lock: unblock only when none is left.
	left, err := d.deadLettersOf(ctx, lic)
	if err != nil || len(left) > 0 {
		return err
	}
	if err := d.retryStore(ctx, "unblock", func(c context.Context) error { return d.cfg.KV.Delete(c, blockedKey+lic) }); err != nil {
		return err
	}
	rep.Unblocked = append(rep.Unblocked, lic)
	return nil
}

// rebuildDeadLetterState restores the KV set DLQKey and the blocked
// markers from the dead letter objects (the system of record), for when
// the KV lost them. Each license's marker is set under its lane lock,
// naming its first dead letter still present, so a concurrent Replay's
// unblocking is not undone.
func (d *Deliverer) rebuildDeadLetterState(ctx context.Context) error {
	var dls []DeadLetter
	if err := d.retryStore(ctx, "dead letter listing", func(context.Context) error {
		var err error
		dls, err = d.DeadLetters(ctx)
		return err
	}); err != nil {
		return err
	}
	byLicense := map[string][]DeadLetter{}
	var lics []string
	for _, dl := range dls {
		lic := dl.Event.Identifier
		if _, ok := byLicense[lic]; !ok {
			lics = append(lics, lic)
		}
		byLicense[lic] = append(byLicense[lic], dl)
	}
	present := map[string]bool{}
	for _, lic := range lics {
		n, err := d.rebuildLicense(ctx, lic, byLicense[lic], present)
		if err != nil {
			return err
		}
		if n > 0 && lic != "" {
			d.log.InfoContext(ctx, "exchange: license blocked behind its dead letters", "license", lic, "dead_letters", n)
		}
	}
	// Drop set members whose dead letter is gone.
	var members []string
	if err := d.retryStore(ctx, "dead letter set", func(c context.Context) error {
		var err error
		members, err = d.cfg.KV.SMembers(c, DLQKey)
		return err
	}); err != nil {
		return err
	}
	for _, id := range members {
		if present[id] {
			continue
		}
		gone := false
		if err := d.retryStore(ctx, "dead letter check", func(c context.Context) error {
			_, err := d.cfg.Objects.Head(c, DLQObject(id))
			gone = licensehub.IsCode(err, licensehub.ENOTFOUND)
			if gone {
				return nil
			}
			return err
		}); err != nil {
			return err
		}
		if gone {
			_ = d.retryStore(ctx, "dead letter set", func(c context.Context) error { return d.cfg.KV.SRem(c, DLQKey, id) })
		}
	}
	return nil
}

func (d *Deliverer) rebuildLicense(ctx context.Context, lic string, dls []DeadLetter, present map[string]bool) (int, error) {
	if lic != "" {
		held, release, err := d.lockLicense(ctx, lic)
		if err != nil {
			return 0, err
		}
		defer release()
		ctx = held
	}
	first, n := "", 0
	for _, dl := range dls {
		exists := false
		if err := d.retryStore(ctx, "dead letter check", func(c context.Context) error {
			_, err := d.cfg.Objects.Head(c, DLQObject(dl.EventID))
			exists = err == nil
			if licensehub.IsCode(err, licensehub.ENOTFOUND) {
				return nil
			}
			return err
		}); err != nil {
			return 0, err
		}
		if !exists {
			continue // replayed meanwhile
		}
		present[dl.EventID] = true
		n++
		if first == "" {
			first = dl.EventID
		}
		if err := d.retryStore(ctx, "dead letter set", func(c context.Context) error { return d.cfg.KV.SAdd(c, DLQKey, dl.EventID) }); err != nil {
			return 0, err
		}
	}
	if lic == "" || first == "" {
		return n, nil
	}
	return n, d.retryStore(ctx, "block license", func(c context.Context) error {
		_, err := d.cfg.KV.SetNX(c, blockedKey+lic, []byte(first), 0)
		return err
	})
}

// Pending is an event to re-send with its batch (reconciliation).
type Pending struct {
	Event OutboxEvent
	Batch string
}

// Resend delivers events again outside the stream (the province lacks
// them), in (license, seq) order; it returns the IDs it could not
// deliver with their last error.
func (d *Deliverer) Resend(ctx context.Context, events []Pending) (map[string]string, error) {
	sortEvents(events, func(p Pending) OutboxEvent { return p.Event })
	failed := map[string]string{}
	for _, p := range events {
		res, err := d.deliver(ctx, p.Event, p.Batch, 0)
		if err != nil {
			return failed, err
		}
		if !res.delivered {
			failed[p.Event.EventID] = res.lastErr
		}
	}
	return failed, nil
}

// ---- leadership and the stream ----

// Run delivers until ctx ends: it takes the lease when free, leads while
// it holds it (package lease renews it; losing it ends the leadership at
// once) and releases it on return.
func (d *Deliverer) Run(ctx context.Context) {
	o := lease.Options{Owner: d.owner, TTL: d.cfg.LeaseTTL, OpTimeout: d.cfg.OpTimeout}
	for {
		_, err := lease.Run(ctx, d.cfg.KV, LeaseKey, o, func(ctx context.Context, _ *lease.Lease) error {
			d.log.InfoContext(ctx, "exchange: leading delivery")
			d.deliverLoop(ctx)
			return nil
		})
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, lease.ErrLost):
			d.log.WarnContext(ctx, "exchange: the delivery lease was lost; stepping down", "err", err.Error())
		default:
			d.log.WarnContext(ctx, "exchange: taking the delivery lease failed", "err", err.Error())
		}
		if sleep(ctx, d.cfg.Poll) != nil {
			return
		}
	}
}

// watermark tracks the stream entries in flight, in stream order.
type watermark struct {
	mu        sync.Mutex
	q         []*entryState
	confirmed *entryState // the last entry whose predecessors and itself are all confirmed
}

type entryState struct {
	id, object string
	pending    int
}

func (w *watermark) add(id, object string, n int) *entryState {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := &entryState{id: id, object: object, pending: n}
	w.q = append(w.q, e)
	w.advance()
	return e
}

func (w *watermark) done(e *entryState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.pending--
	w.advance()
}

func (w *watermark) advance() {
	for len(w.q) > 0 && w.q[0].pending <= 0 {
		w.confirmed = w.q[0]
		w.q = w.q[1:]
	}
}

func (w *watermark) get() *entryState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.confirmed
}

type job struct {
	ev    OutboxEvent
	batch string
	entry *entryState
}

func laneOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// deliverLoop is the leader's work until ctx ends.
func (d *Deliverer) deliverLoop(ctx context.Context) {
	rec, err := d.recoverCursor(ctx)
	if err != nil {
		return
	}
	cursor := rec.cursor
	if err := d.rebuildDeadLetterState(ctx); err != nil {
		return
	}
	// A lane that finds the epoch marker naming another leader ends this
	// leadership (stillLeading): at most the lanes' sends in flight then
	// overlap with a successor's.
	ctx, stepDown := context.WithCancel(ctx)
	defer stepDown()
	wm := &watermark{}
	cp := newCheckpointer(d, rec.from)
	lanes := make([]chan job, d.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan job, 64)
		wg.Add(1)
		go func(ch <-chan job) {
			defer wg.Done()
			for j := range ch {
				if ctx.Err() != nil {
					continue // not confirmed: the cursor stays behind it
				}
				if !d.stillLeading(ctx) {
					if ctx.Err() == nil {
						d.log.WarnContext(ctx, "exchange: another instance leads delivery now (or the KV lost its data); stepping down")
					}
					stepDown()
					continue
				}
				if !cp.begin(ctx) {
					continue
				}
				if err := d.process(ctx, j.ev, j.batch); err == nil {
					cp.finish(j.ev.EventID, j.batch)
					wm.done(j.entry)
				}
			}
		}(lanes[i])
	}
	commitDone := make(chan struct{})
	stopCommit := make(chan struct{})
	go func() {
		defer close(commitDone)
		d.committer(ctx, wm, cp, stopCommit)
	}()

	readPos := cursor
	for ctx.Err() == nil {
		var entries []licensehub.StreamEntry
		readAt := d.cfg.Clock()
		c, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
		entries, err = d.cfg.KV.XRange(c, license.OutboxStream, readPos, 128)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d.log.WarnContext(ctx, "exchange: reading the outbox stream failed", "err", err.Error())
			}
			_ = sleep(ctx, d.cfg.Poll)
			continue
		}
		if len(entries) == 0 {
			cp.reachedEnd(readAt)
			_ = sleep(ctx, d.cfg.Poll)
			continue
		}
	entries:
		for _, en := range entries {
			key := en.Fields["object"]
			var events []OutboxEvent
			if err := d.retryStore(ctx, "outbox object", func(c context.Context) error {
				var err error
				events, err = readOutbox(c, d.cfg.Objects, key)
				if licensehub.IsCode(err, licensehub.ENOTFOUND) || licensehub.IsCode(err, licensehub.EMALFORMED) {
					d.log.WarnContext(ctx, "exchange: outbox object missing or unreadable; skipped", "object", key, "err", err.Error())
					events, err = nil, nil
				}
				return err
			}); err != nil {
				break entries
			}
			events = rec.todo(key, events)
			e := wm.add(en.ID, key, len(events))
			for _, ev := range events {
				lk := ev.Identifier
				if lk == "" {
					lk = ev.EventID
				}
				select {
				case lanes[laneOf(lk, len(lanes))] <- job{ev: ev, batch: key, entry: e}:
				case <-ctx.Done():
					break entries
				}
			}
			readPos = en.ID
		}
		if len(entries) < 128 && readPos == entries[len(entries)-1].ID {
			cp.reachedEnd(readAt) // the read returned the stream's end and all of it is in the watermark
		}
	}
	for _, ch := range lanes {
		close(ch)
	}
	wg.Wait()
	close(stopCommit)
	<-commitDone
}

// committer stores the watermark: in the KV often, in the checkpoint
// objects (checkpoint.go) when CheckpointEvents/2 events are processed,
// a lane waits for one, or every CheckpointEvery; trims the stream below
// it; updates the backlog gauge. A last commit runs when stop closes.
func (d *Deliverer) committer(ctx context.Context, wm *watermark, cp *checkpointer, stop <-chan struct{}) {
	t := time.NewTicker(min(250*time.Millisecond, d.cfg.Poll))
	defer t.Stop()
	var kvAt, objAt *entryState
	lastObj := time.Now()
	commit := func(c context.Context, final, kicked bool) {
		e := wm.get()
		if e != nil && e != kvAt {
			oc, cancel := context.WithTimeout(c, d.cfg.OpTimeout)
			err := d.cfg.KV.Set(oc, CursorKey, []byte(e.id), 0)
			if err == nil {
				kvAt = e
				_, _ = d.cfg.KV.XTrimMinID(oc, license.OutboxStream, e.id)
			}
			cancel()
		}
		if kicked || cp.pending() && (final || time.Since(lastObj) >= d.cfg.CheckpointEvery) ||
			e != nil && e != objAt && (final || time.Since(lastObj) >= d.cfg.CheckpointEvery) {
			if err := cp.write(c, wm); err == nil {
				objAt, lastObj = e, time.Now()
			} else if c.Err() == nil {
				d.log.WarnContext(c, "exchange: writing the delivery checkpoint failed", "err", err.Error())
			}
		}
		oc, cancel := context.WithTimeout(c, d.cfg.OpTimeout)
		if n, err := d.cfg.KV.XLen(oc, license.OutboxStream); err == nil {
			d.m.backlog.Set(float64(max(n-1, 0)))
		}
		cancel()
	}
	for {
		select {
		case <-stop:
			if errors.Is(context.Cause(ctx), lease.ErrLost) {
				return // a leader that lost its lease writes no cursor: the next leader owns it
			}
			fc, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.OpTimeout*2)
			commit(fc, true, false)
			cancel()
			return
		case <-cp.kick:
			if ctx.Err() == nil {
				commit(ctx, false, true)
			}
		case <-t.C:
			if ctx.Err() == nil {
				commit(ctx, false, false)
			}
		}
	}
}
