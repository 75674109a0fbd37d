// Package sim simulates the three upstream systems the hub's adapters call
// — public security (公安), social security (社保) and tax (税务) — for the
// demo and the tests. One [Server] serves all three under the path prefixes
// /ps, /si and /tax:
//
//	srv := sim.New(sim.Config{Seed: 1})
//	ts := httptest.NewServer(srv)
//	defer ts.Close()
//	defer srv.Close() // releases hanging requests first
//
// # People and companies
//
// Any valid resident ID number is a person and any valid unified social
// credit code a company; everything about them is derived from the seed and
// the code, so the same seed always yields the same data (dates relative to
// "now" move with the calendar). A seed-decided share (Config.NotFoundRate,
// default 3 %) of valid codes are unknown: code "4004". Invalid codes and
// missing or malformed parameters: code "4001". [Server.SamplePeople] and
// [Server.SampleCompanies] return codes that exist.
//
// # Protocol
//
// Requests are GET with X-App-Key, X-Request-Id, X-Timestamp (Unix ms,
// within ±Config.MaxSkew), X-Service-Id (the endpoint's service ID) and
// X-Signature (see upstream.Sign); anything else is HTTP 401 code "4010".
// Answers are HTTP 200 {"code","message","request_id","data"}; business
// errors ("4001", "4004") are HTTP 200 envelopes without data.
//
// # Endpoints and their fields (the upstream's own names)
//
// GET /ps/identity?id_number=&name= (ps.identity):
//
//	hyjg.sfzh_yz bool      the ID number exists      核验结果·身份号码一致
//	hyjg.xm_yz bool        the name matches          核验结果·姓名一致
//	ryxx.gmsfhm            ID number                 公民身份号码
//	ryxx.xm                name                      姓名
//	ryxx.xb / ryxx.xbdm    sex 男/女, code 1/2        性别
//	ryxx.csrq              birth date YYYY-MM-DD     出生日期
//	ryxx.mz                nation, e.g. 汉族          民族
//	ryxx.zz                address                   住址
//	zjxx.qfjg              issuing police office     签发机关
//	zjxx.yxqx_qsrq         valid from YYYY-MM-DD     有效期限起始日期
//	zjxx.yxqx_jzrq         valid until YYYY-MM-DD or 长期
//	zjxx.zjzt              document state 有效/过期
//	ryzt                   person state 正常/迁出     人员状态
//
// GET /ps/household?id_number= (ps.household):
//
//	hh                     household number          户号
//	hjdz                   registered address        户籍地址
//	hzxm / hzsfhm          head's name, masked ID    户主姓名/身份号码
//	hcysl int              member count              户成员数量
//	hcy[]                  members: xm, yhzgx (relation to the head: 户主,
//	                       配偶, 子, 女), gmsfhm (masked 430104********123X),
//	                       xb, csrq
//
// GET /si/person?id_number= (si.person):
//
//	grbh                   personal insurance number 个人编号
//	xm, gmsfhm             name, ID number
//	cbzt                   state 正常参保/暂停/终止/未参保 参保状态
//	dwmc / dwtyshxydm      employer name and credit code (absent if 未参保)
//	jfjs                   contribution base, yuan "6500.00" 缴费基数
//	cbxx[]                 per insurance kind: xzdm (110 养老, 310 医疗,
//	                       210 失业, 410 工伤, 510 生育), xzmc, cbzt,
//	                       cbrq (first month YYYY-MM), zhjfny (last month
//	                       paid), ljjfys int (months paid), grjfbl (the
//	                       person's rate, a fraction such as 0.08 — a float)
//
// GET /si/employer?credit_code= (si.employer):
//
//	dwbh, dwmc, tyshxydm   employer number, name, credit code
//	dwcbzt                 正常/注销
//	cbrs int               insured employees         参保人数
//	jfys int               months contributed        缴费月数
//	sfqf bool, qfje        in arrears, amount "0.00" 是否欠费/欠费金额
//	cbxz[]                 insurance kinds (names)
//
// GET /tax/registration?credit_code= (tax.registration):
//
//	nsrsbh, nsrmc          taxpayer ID (the credit code), name
//	nsrzt                  正常/注销                  纳税人状态
//	djrq / zxrq            registered, cancelled (YYYY-MM-DD; zxrq only if 注销)
//	zgswjg                 tax authority             主管税务机关
//	nsrlx                  一般纳税人/小规模纳税人
//	fddbr, scjydz, hy      legal representative, address, sector
//
// GET /tax/payments?credit_code=&from=YYYY-MM&to=YYYY-MM (tax.payments, at
// most 36 months):
//
//	nsrsbh, nsrmc, qsny, jzny
//	jkmx[]                 ssny (period), zsxm (tax item), sjje (amount
//	                       "1234.56"), jkrq (paid on), dzsphm (voucher no.)
//	bs int, hjje           number of payments, total "12345.67"
//
// GET /tax/credit?credit_code=&year=YYYY (tax.credit): nsrsbh, nsrmc,
// pdnd int (year), xydj (A/B/M/C/D), pdrq (rated on). A year not rated
// (before registration, or not yet published in April of the next year)
// is "4004".
//
// # Knobs and admin endpoints
//
// [Knobs] inject latency and failures; they are set in Config, with
// [Server.SetKnobs], or by POST /_sim/knobs (JSON, only the members given
// change; GET shows them). Random choices come from a generator seeded with
// the seed, so a sequential client sees the same sequence of outcomes in
// every run. GET /_sim/stats (and [Server.Stats]) count requests received
// per endpoint and outcomes; DELETE /_sim/stats resets them. The /_sim/
// endpoints need no authentication and ignore the knobs.
package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/ident"
)

// Defaults of Config.
const (
	DefaultSeed         = 20260101
	DefaultAppKey       = "licensehub"
	DefaultSecret       = "sim-secret-change-me"
	DefaultAlgorithm    = upstream.AlgSM3
	DefaultMaxSkew      = 5 * time.Minute
	DefaultNotFoundRate = 0.03
)

// Business and error codes of the simulated upstreams' envelopes.
const (
	CodeOK          = upstream.CodeOK
	CodeBadParams   = upstream.CodeBadParams
	CodeNotFound    = upstream.CodeNotFound
	CodeAuthFailed  = "4010"
	CodeRateLimited = "4290"
	CodeUnavailable = "5030"
	CodeNoEndpoint  = "4040"
)

// Config configures a Server. Zero values take the defaults.
type Config struct {
	Seed         uint64        // 0: DefaultSeed
	AppKey       string        // the one app key accepted; "": DefaultAppKey
	Secret       []byte        // nil: DefaultSecret
	Algorithm    string        // "sm3" or "sha256"; "": sm3
	MaxSkew      time.Duration // tolerated X-Timestamp difference; 0: 5 min
	NotFoundRate float64       // share of valid codes unknown; 0: 3 %; negative: none
	Knobs        Knobs
	Now          func() time.Time // nil: time.Now
}

// Knobs inject latency and failures. Rates are shares of requests, 0 to 1,
// drawn independently in this order: hang, error (503), rate limit (429),
// and — for an answer that would have succeeded — malformed.
type Knobs struct {
	Latency         time.Duration // added to every answer
	Jitter          time.Duration // plus a random 0..Jitter
	ErrorRate       float64       // HTTP 503 code 5030 (with Retry-After when RetryAfter > 0)
	RateLimitedRate float64       // HTTP 429 code 4290 with Retry-After
	RetryAfter      int           // seconds in Retry-After; 0: no header on 503, "1" on 429
	HangRate        float64       // never answer until the client goes away (or Close)
	MalformedRate   float64       // a 200 whose body is not a valid answer
	// Malformed chooses the broken body: "truncated" (JSON cut short),
	// "html" (not JSON: a proxy's error page), "partial" (a valid envelope
	// whose data lacks the endpoint's fields); "" picks one at random.
	Malformed string
	Down      bool // close every connection without answering
}

// knobsJSON is Knobs on the wire; durations are Go duration strings.
type knobsJSON struct {
	Latency         *string  `json:"latency,omitempty"`
	Jitter          *string  `json:"jitter,omitempty"`
	ErrorRate       *float64 `json:"error_rate,omitempty"`
	RateLimitedRate *float64 `json:"rate_limited_rate,omitempty"`
	RetryAfter      *int     `json:"retry_after,omitempty"`
	HangRate        *float64 `json:"hang_rate,omitempty"`
	MalformedRate   *float64 `json:"malformed_rate,omitempty"`
	Malformed       *string  `json:"malformed,omitempty"`
	Down            *bool    `json:"down,omitempty"`
}

// MarshalJSON writes every knob.
func (k Knobs) MarshalJSON() ([]byte, error) {
	l, j := k.Latency.String(), k.Jitter.String()
	return json.Marshal(knobsJSON{&l, &j, &k.ErrorRate, &k.RateLimitedRate, &k.RetryAfter, &k.HangRate,
		&k.MalformedRate, &k.Malformed, &k.Down})
}

// UnmarshalJSON changes only the knobs present in data.
func (k *Knobs) UnmarshalJSON(data []byte) error {
	var w knobsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	n := *k
	for _, d := range []struct {
		s   *string
		dst *time.Duration
	}{{w.Latency, &n.Latency}, {w.Jitter, &n.Jitter}} {
		if d.s != nil {
			v, err := time.ParseDuration(*d.s)
			if err != nil {
				return err
			}
			*d.dst = v
		}
	}
	set := func(src *float64, dst *float64) {
		if src != nil {
			*dst = *src
		}
	}
	set(w.ErrorRate, &n.ErrorRate)
	set(w.RateLimitedRate, &n.RateLimitedRate)
	set(w.HangRate, &n.HangRate)
	set(w.MalformedRate, &n.MalformedRate)
	if w.RetryAfter != nil {
		n.RetryAfter = *w.RetryAfter
	}
	if w.Malformed != nil {
		n.Malformed = *w.Malformed
	}
	if w.Down != nil {
		n.Down = *w.Down
	}
	if err := n.Validate(); err != nil {
		return err
	}
	*k = n
	return nil
}

// Validate checks the ranges of the knobs.
func (k Knobs) Validate() error {
	for name, r := range map[string]float64{"error_rate": k.ErrorRate, "rate_limited_rate": k.RateLimitedRate,
		"hang_rate": k.HangRate, "malformed_rate": k.MalformedRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", name, r)
		}
	}
	if k.Latency < 0 || k.Jitter < 0 || k.RetryAfter < 0 {
		return errors.New("latency, jitter and retry_after must not be negative")
	}
	switch k.Malformed {
	case "", "truncated", "html", "partial":
	default:
		return fmt.Errorf("malformed %q is not truncated, html, partial or empty", k.Malformed)
	}
	return nil
}

// Outcomes counted in Stats.Outcomes.
const (
	OutcomeOK          = "ok"
	OutcomeBadParams   = "bad_params"
	OutcomeNotFound    = "not_found"
	OutcomeAuthFailed  = "auth_failed"
	OutcomeUnavailable = "unavailable_503"
	OutcomeRateLimited = "rate_limited_429"
	OutcomeHang        = "hang"
	OutcomeMalformed   = "malformed"
	OutcomeDown        = "down"
	OutcomeNoEndpoint  = "no_endpoint"
)

// Stats counts requests received (before any knob acts) per endpoint path
// and how they were answered.
type Stats struct {
	Total    int64            `json:"total"`
	Requests map[string]int64 `json:"requests"` // by path, e.g. "/ps/identity"
	Outcomes map[string]int64 `json:"outcomes"`
}

// Server is the simulator; it is an http.Handler.
type Server struct {
	cfg      Config
	w        world
	mux      *http.ServeMux
	closing  chan struct{}
	closeOne sync.Once

	mu    sync.Mutex
	knobs Knobs
	rnd   *rand.Rand
	stats Stats

	inflight atomic.Int64
}

// New returns a simulator.
func New(cfg Config) *Server {
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.AppKey == "" {
		cfg.AppKey = DefaultAppKey
	}
	if cfg.Secret == nil {
		cfg.Secret = []byte(DefaultSecret)
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = DefaultAlgorithm
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	switch {
	case cfg.NotFoundRate == 0:
		cfg.NotFoundRate = DefaultNotFoundRate
	case cfg.NotFoundRate < 0:
		cfg.NotFoundRate = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:     cfg,
		w:       world{seed: cfg.Seed, notFound: cfg.NotFoundRate, now: cfg.Now},
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
		knobs:   cfg.Knobs,
		rnd:     rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		stats:   Stats{Requests: map[string]int64{}, Outcomes: map[string]int64{}},
	}
	for _, e := range s.endpoints() {
		s.mux.Handle("GET "+e.Path, s.upstreamHandler(e))
	}
	s.mux.HandleFunc("GET /_sim/knobs", s.getKnobs)
	s.mux.HandleFunc("POST /_sim/knobs", s.postKnobs)
	s.mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("DELETE /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.count(r.URL.Path, OutcomeNoEndpoint, true)
		writeJSON(w, http.StatusNotFound, envelope{Code: CodeNoEndpoint, Message: "no such endpoint"})
	})
	return s
}

// Endpoint describes one simulated endpoint.
type Endpoint struct {
	System    string // publicsecurity, socialsecurity, tax
	ServiceID string
	Path      string
	Params    []string
	handle    func(s *Server, q map[string]string) (any, string, string) // data, code, message
}

func (s *Server) endpoints() []Endpoint {
	return []Endpoint{
		{"publicsecurity", "ps.identity", "/ps/identity", []string{"id_number", "name"}, (*Server).identity},
		{"publicsecurity", "ps.household", "/ps/household", []string{"id_number"}, (*Server).household},
		{"socialsecurity", "si.person", "/si/person", []string{"id_number"}, (*Server).siPerson},
		{"socialsecurity", "si.employer", "/si/employer", []string{"credit_code"}, (*Server).siEmployer},
		{"tax", "tax.registration", "/tax/registration", []string{"credit_code"}, (*Server).taxRegistration},
		{"tax", "tax.payments", "/tax/payments", []string{"credit_code", "from", "to"}, (*Server).taxPayments},
		{"tax", "tax.credit", "/tax/credit", []string{"credit_code", "year"}, (*Server).taxCredit},
	}
}

// Endpoints lists the endpoints the simulator serves.
func (s *Server) Endpoints() []Endpoint { return s.endpoints() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close releases requests that hang (their connections are closed) and
// makes later hangs end at once. Call it before closing the HTTP server.
func (s *Server) Close() { s.closeOne.Do(func() { close(s.closing) }) }

// Knobs returns the current knobs.
func (s *Server) Knobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// SetKnobs replaces the knobs.
func (s *Server) SetKnobs(k Knobs) error {
	if err := k.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.knobs = k
	s.mu.Unlock()
	return nil
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Total: s.stats.Total, Requests: maps.Clone(s.stats.Requests), Outcomes: maps.Clone(s.stats.Outcomes)}
}

// Requests returns how many requests path (e.g. "/ps/identity") received.
func (s *Server) Requests(path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Requests[path]
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats = Stats{Requests: map[string]int64{}, Outcomes: map[string]int64{}}
	s.mu.Unlock()
}

// SamplePeople returns n resident ID numbers this server knows.
func (s *Server) SamplePeople(n int) []string { return s.w.samplePeople(n) }

// SampleCompanies returns n credit codes of companies this server knows,
// all registered and not cancelled.
func (s *Server) SampleCompanies(n int) []string { return s.w.sampleCompanies(n) }

func defaultWorld() world {
	return world{seed: DefaultSeed, notFound: DefaultNotFoundRate, now: time.Now}
}

// SamplePeople returns n resident ID numbers known to a server with the
// default seed and not-found rate.
func SamplePeople(n int) []string { return defaultWorld().samplePeople(n) }

// SampleCompanies returns n credit codes known (and not cancelled) to a
// server with the default seed and not-found rate.
func SampleCompanies(n int) []string { return defaultWorld().sampleCompanies(n) }

// PersonName returns the name this server's record holds for a resident ID
// number ("" for an unknown or invalid one): what an identity check must
// be given to match.
func (s *Server) PersonName(id string) string { return s.w.personName(id) }

// PersonName is [Server.PersonName] for a server with the default seed
// and not-found rate.
func PersonName(id string) string { return defaultWorld().personName(id) }

func (w world) personName(id string) string {
	if ident.ValidateResidentID(id) != nil || !w.exists(id) {
		return ""
	}
	return w.person(id).Name
}

// UpstreamConfig returns an upstream client configuration for the system
// name (publicsecurity, socialsecurity, tax) at baseURL (this server's
// root URL) with this server's app key, secret and algorithm; the other
// fields keep the client's defaults.
func (s *Server) UpstreamConfig(name, baseURL string) upstream.Config {
	return upstream.Config{Name: name, BaseURL: baseURL, AppKey: s.cfg.AppKey,
		Secret: append([]byte(nil), s.cfg.Secret...), Algorithm: s.cfg.Algorithm}
}

// Exists reports whether this server knows a valid holder code (it answers
// "4004" for the others).
func (s *Server) Exists(code string) bool { return s.w.exists(code) }

func (s *Server) count(path, outcome string, received bool) {
	s.mu.Lock()
	if received {
		s.stats.Total++
		s.stats.Requests[path]++
	}
	if outcome != "" {
		s.stats.Outcomes[outcome]++
	}
	s.mu.Unlock()
}

// draws are one request's random choices, all drawn every time so that
// the sequence of outcomes does not depend on the knobs' values.
type draws struct {
	jitter, hang, fail, limited, malformed float64
	kind                                   int
}

func (s *Server) draw() (Knobs, draws) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs, draws{s.rnd.Float64(), s.rnd.Float64(), s.rnd.Float64(), s.rnd.Float64(), s.rnd.Float64(), s.rnd.IntN(3)}
}

type envelope struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	Data      any    `json:"data,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// wait sleeps d unless the client goes away or the server closes; it
// reports whether the full time passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

func (s *Server) upstreamHandler(e Endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(e.Path, "", true)
		k, d := s.draw()
		if k.Down {
			s.count(e.Path, OutcomeDown, false)
			panic(http.ErrAbortHandler) // closes the connection without an answer
		}
		if !s.wait(r, k.Latency+time.Duration(d.jitter*float64(k.Jitter))) {
			return
		}
		if d.hang < k.HangRate {
			s.count(e.Path, OutcomeHang, false)
			select {
			case <-r.Context().Done():
				return
			case <-s.closing:
				panic(http.ErrAbortHandler)
			}
		}
		if d.fail < k.ErrorRate {
			s.count(e.Path, OutcomeUnavailable, false)
			if k.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(k.RetryAfter))
			}
			writeJSON(w, http.StatusServiceUnavailable, envelope{Code: CodeUnavailable, Message: "service temporarily unavailable"})
			return
		}
		if d.limited < k.RateLimitedRate {
			s.count(e.Path, OutcomeRateLimited, false)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, k.RetryAfter)))
			writeJSON(w, http.StatusTooManyRequests, envelope{Code: CodeRateLimited, Message: "too many requests"})
			return
		}
		reqID := r.Header.Get(upstream.HeaderRequestID)
		if msg := s.authenticate(r, e.ServiceID); msg != "" {
			s.count(e.Path, OutcomeAuthFailed, false)
			writeJSON(w, http.StatusUnauthorized, envelope{Code: CodeAuthFailed, Message: "authentication failed: " + msg, RequestID: reqID})
			return
		}
		q := map[string]string{}
		for _, p := range e.Params {
			q[p] = r.URL.Query().Get(p)
		}
		data, code, msg := e.handle(s, q)
		switch code {
		case CodeOK:
		case CodeNotFound:
			s.count(e.Path, OutcomeNotFound, false)
			writeJSON(w, http.StatusOK, envelope{Code: code, Message: msg, RequestID: reqID})
			return
		default:
			s.count(e.Path, OutcomeBadParams, false)
			writeJSON(w, http.StatusOK, envelope{Code: code, Message: msg, RequestID: reqID})
			return
		}
		if d.malformed < k.MalformedRate {
			s.count(e.Path, OutcomeMalformed, false)
			kind := k.Malformed
			if kind == "" {
				kind = []string{"truncated", "html", "partial"}[d.kind]
			}
			switch kind {
			case "html":
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
			case "partial":
				writeJSON(w, http.StatusOK, envelope{Code: CodeOK, Message: "ok", RequestID: reqID,
					Data: map[string]any{"cxsj": s.cfg.Now().In(cst).Format(time.DateTime)}})
			default:
				b, _ := json.Marshal(envelope{Code: CodeOK, Message: "ok", RequestID: reqID, Data: data})
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				_, _ = w.Write(b[:len(b)*2/3])
			}
			return
		}
		s.count(e.Path, OutcomeOK, false)
		writeJSON(w, http.StatusOK, envelope{Code: CodeOK, Message: "ok", RequestID: reqID, Data: data})
	})
}

// authenticate checks the wire protocol's headers; it returns why they
// fail, or "".
func (s *Server) authenticate(r *http.Request, serviceID string) string {
	h := r.Header
	appKey, reqID, ts, sid, sig := h.Get(upstream.HeaderAppKey), h.Get(upstream.HeaderRequestID),
		h.Get(upstream.HeaderTimestamp), h.Get(upstream.HeaderServiceID), h.Get(upstream.HeaderSignature)
	switch {
	case appKey == "" || reqID == "" || ts == "" || sid == "" || sig == "":
		return "missing authentication header"
	case appKey != s.cfg.AppKey:
		return "unknown app key"
	case sid != serviceID:
		return "service ID does not match the endpoint"
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "timestamp is not Unix milliseconds"
	}
	if skew := s.cfg.Now().Sub(time.UnixMilli(ms)); skew > s.cfg.MaxSkew || skew < -s.cfg.MaxSkew {
		return "timestamp outside the allowed clock skew"
	}
	if !upstream.Verify(s.cfg.Algorithm, s.cfg.Secret, reqID, ts, sid, sig) {
		return "bad signature"
	}
	return ""
}

// ---- endpoint handlers ----

func badParam(name, why string) (any, string, string) {
	return nil, CodeBadParams, "invalid parameter " + name + ": " + why
}

func notFound(what string) (any, string, string) { return nil, CodeNotFound, what + " not found" }

func (s *Server) residentID(q map[string]string) (person, any, string, string) {
	id := q["id_number"]
	if id == "" {
		d, c, m := badParam("id_number", "required")
		return person{}, d, c, m
	}
	if err := ident.ValidateResidentID(id); err != nil {
		d, c, m := badParam("id_number", "not a valid resident ID number ("+ident.Rule(err)+")")
		return person{}, d, c, m
	}
	if !s.w.exists(id) {
		d, c, m := notFound("person")
		return person{}, d, c, m
	}
	return s.w.person(id), nil, CodeOK, ""
}

func (s *Server) creditCode(q map[string]string) (company, any, string, string) {
	code := q["credit_code"]
	if code == "" {
		d, c, m := badParam("credit_code", "required")
		return company{}, d, c, m
	}
	if err := ident.ValidateCreditCode(code); err != nil {
		d, c, m := badParam("credit_code", "not a valid unified social credit code ("+ident.Rule(err)+")")
		return company{}, d, c, m
	}
	if !s.w.exists(code) {
		d, c, m := notFound("taxpayer")
		return company{}, d, c, m
	}
	return s.w.company(code), nil, CodeOK, ""
}

type identityData struct {
	Hyjg struct {
		SfzhYz bool `json:"sfzh_yz"`
		XmYz   bool `json:"xm_yz"`
	} `json:"hyjg"`
	Ryxx struct {
		Gmsfhm string `json:"gmsfhm"`
		Xm     string `json:"xm"`
		Xb     string `json:"xb"`
		Xbdm   string `json:"xbdm"`
		Csrq   string `json:"csrq"`
		Mz     string `json:"mz"`
		Zz     string `json:"zz"`
	} `json:"ryxx"`
	Zjxx struct {
		Qfjg     string `json:"qfjg"`
		YxqxQsrq string `json:"yxqx_qsrq"`
		YxqxJzrq string `json:"yxqx_jzrq"`
		Zjzt     string `json:"zjzt"`
	} `json:"zjxx"`
	Ryzt string `json:"ryzt"`
	Cxsj string `json:"cxsj"` // 查询时间
}

func (s *Server) identity(q map[string]string) (any, string, string) {
	if strings.TrimSpace(q["name"]) == "" {
		return badParam("name", "required")
	}
	p, d, c, m := s.residentID(q)
	if c != CodeOK {
		return d, c, m
	}
	var out identityData
	out.Hyjg.SfzhYz = true
	out.Hyjg.XmYz = q["name"] == p.Name
	out.Ryxx.Gmsfhm, out.Ryxx.Xm, out.Ryxx.Xb = p.ID, p.Name, sexName(p.Sex)
	out.Ryxx.Xbdm = strconv.Itoa(int(p.Sex))
	out.Ryxx.Csrq, out.Ryxx.Mz, out.Ryxx.Zz = p.Birth.Format(time.DateOnly), p.Nation, p.Address
	out.Zjxx.Qfjg, out.Zjxx.YxqxQsrq, out.Zjxx.YxqxJzrq = p.Region.PoliceOffice(), p.IssuedAt.Format(time.DateOnly), p.ValidUntil
	out.Zjxx.Zjzt = "有效"
	if p.ValidUntil != "长期" && p.ValidUntil < s.w.today().Format(time.DateOnly) {
		out.Zjxx.Zjzt = "过期"
	}
	out.Ryzt = p.Status
	out.Cxsj = s.cfg.Now().In(cst).Format(time.DateTime)
	return out, CodeOK, "ok"
}

type memberData struct {
	Xm     string `json:"xm"`
	Yhzgx  string `json:"yhzgx"`
	Gmsfhm string `json:"gmsfhm"`
	Xb     string `json:"xb"`
	Csrq   string `json:"csrq"`
}

type householdData struct {
	Hh     string       `json:"hh"`
	Hjdz   string       `json:"hjdz"`
	Hzxm   string       `json:"hzxm"`
	Hzsfhm string       `json:"hzsfhm"`
	Hcysl  int          `json:"hcysl"`
	Hcy    []memberData `json:"hcy"`
}

func (s *Server) household(q map[string]string) (any, string, string) {
	p, d, c, m := s.residentID(q)
	if c != CodeOK {
		return d, c, m
	}
	h := s.w.household(p)
	out := householdData{Hh: h.Number, Hjdz: h.Address, Hzxm: h.Head.Name, Hzsfhm: maskID(h.Head.ID), Hcysl: len(h.Members)}
	for _, mb := range h.Members {
		out.Hcy = append(out.Hcy, memberData{mb.Name, mb.Relation, maskID(mb.ID), sexName(mb.Sex), mb.Birth.Format(time.DateOnly)})
	}
	return out, CodeOK, "ok"
}

type insuranceData struct {
	Xzdm   string  `json:"xzdm"`
	Xzmc   string  `json:"xzmc"`
	Cbzt   string  `json:"cbzt"`
	Cbrq   string  `json:"cbrq"`
	Zhjfny string  `json:"zhjfny"`
	Ljjfys int     `json:"ljjfys"`
	Grjfbl float64 `json:"grjfbl"`
}

type siPersonData struct {
	Grbh       string          `json:"grbh"`
	Xm         string          `json:"xm"`
	Gmsfhm     string          `json:"gmsfhm"`
	Cbzt       string          `json:"cbzt"`
	Dwmc       string          `json:"dwmc,omitempty"`
	Dwtyshxydm string          `json:"dwtyshxydm,omitempty"`
	Jfjs       string          `json:"jfjs,omitempty"`
	Cbxx       []insuranceData `json:"cbxx"`
}

func (s *Server) siPerson(q map[string]string) (any, string, string) {
	p, d, c, m := s.residentID(q)
	if c != CodeOK {
		return d, c, m
	}
	rec := s.w.insurance(p)
	out := siPersonData{Grbh: rec.Number, Xm: p.Name, Gmsfhm: p.ID, Cbzt: rec.State, Cbxx: []insuranceData{}}
	if rec.State != "未参保" {
		out.Dwmc, out.Dwtyshxydm, out.Jfjs = rec.Employer.Name, rec.Employer.Code, yuan(rec.BaseFen)
	}
	for _, k := range rec.Kinds {
		out.Cbxx = append(out.Cbxx, insuranceData{k.Code, k.Name, k.State, k.Start.Format("2006-01"),
			k.Last.Format("2006-01"), k.Months, k.Rate})
	}
	return out, CodeOK, "ok"
}

type siEmployerData struct {
	Dwbh     string   `json:"dwbh"`
	Dwmc     string   `json:"dwmc"`
	Tyshxydm string   `json:"tyshxydm"`
	Dwcbzt   string   `json:"dwcbzt"`
	Cbrs     int      `json:"cbrs"`
	Jfys     int      `json:"jfys"`
	Sfqf     bool     `json:"sfqf"`
	Qfje     string   `json:"qfje"`
	Cbxz     []string `json:"cbxz"`
}

func (s *Server) siEmployer(q map[string]string) (any, string, string) {
	co, d, c, m := s.creditCode(q)
	if c != CodeOK {
		return d, c, m
	}
	r := s.w.rng("si-employer", co.Code)
	start := firstOfMonth(co.RegisteredAt).AddDate(0, 1, 0)
	if floor := time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC); start.Before(floor) {
		start = floor
	}
	end := firstOfMonth(s.w.today()).AddDate(0, -1, 0)
	out := siEmployerData{Dwbh: co.Region.Code + fmt.Sprintf("%08d", r.IntN(1e8)), Dwmc: co.Name, Tyshxydm: co.Code,
		Dwcbzt: "正常", Cbrs: co.Employees, Qfje: "0.00", Cbxz: []string{}}
	if co.State == "注销" {
		out.Dwcbzt, out.Cbrs = "注销", 0
		end = firstOfMonth(co.CancelledAt)
	}
	out.Jfys = max(0, monthsBetween(start, end))
	if co.State == "正常" && r.IntN(12) == 0 {
		out.Sfqf = true
		out.Qfje = yuan(int64(co.Employees) * int64(between(r, 500, 3000)) * 100)
	}
	for _, k := range insuranceKinds {
		out.Cbxz = append(out.Cbxz, k.Name)
	}
	return out, CodeOK, "ok"
}

type taxRegistrationData struct {
	Nsrsbh string `json:"nsrsbh"`
	Nsrmc  string `json:"nsrmc"`
	Nsrzt  string `json:"nsrzt"`
	Djrq   string `json:"djrq"`
	Zxrq   string `json:"zxrq,omitempty"`
	Zgswjg string `json:"zgswjg"`
	Nsrlx  string `json:"nsrlx"`
	Fddbr  string `json:"fddbr"`
	Scjydz string `json:"scjydz"`
	Hy     string `json:"hy"`
}

func (s *Server) taxRegistration(q map[string]string) (any, string, string) {
	co, d, c, m := s.creditCode(q)
	if c != CodeOK {
		return d, c, m
	}
	out := taxRegistrationData{Nsrsbh: co.Code, Nsrmc: co.Name, Nsrzt: co.State, Djrq: co.RegisteredAt.Format(time.DateOnly),
		Zgswjg: co.Region.TaxAuthority(), Nsrlx: co.TaxpayerType, Fddbr: co.LegalRep, Scjydz: co.Address, Hy: co.Sector}
	if co.State == "注销" {
		out.Zxrq = co.CancelledAt.Format(time.DateOnly)
	}
	return out, CodeOK, "ok"
}

type paymentData struct {
	Ssny   string `json:"ssny"`
	Zsxm   string `json:"zsxm"`
	Sjje   string `json:"sjje"`
	Jkrq   string `json:"jkrq"`
	Dzsphm string `json:"dzsphm"`
}

type taxPaymentsData struct {
	Nsrsbh string        `json:"nsrsbh"`
	Nsrmc  string        `json:"nsrmc"`
	Qsny   string        `json:"qsny"`
	Jzny   string        `json:"jzny"`
	Jkmx   []paymentData `json:"jkmx"`
	Bs     int           `json:"bs"`
	Hjje   string        `json:"hjje"`
}

// MaxPaymentMonths is the longest period /tax/payments accepts.
const MaxPaymentMonths = 36

func (s *Server) taxPayments(q map[string]string) (any, string, string) {
	from, err1 := time.Parse("2006-01", q["from"])
	to, err2 := time.Parse("2006-01", q["to"])
	switch {
	case err1 != nil:
		return badParam("from", "want YYYY-MM")
	case err2 != nil:
		return badParam("to", "want YYYY-MM")
	case to.Before(from):
		return badParam("to", "before from")
	case monthsBetween(from, to) > MaxPaymentMonths:
		return badParam("to", fmt.Sprintf("the period exceeds %d months", MaxPaymentMonths))
	}
	co, d, c, m := s.creditCode(q)
	if c != CodeOK {
		return d, c, m
	}
	out := taxPaymentsData{Nsrsbh: co.Code, Nsrmc: co.Name, Qsny: q["from"], Jzny: q["to"], Jkmx: []paymentData{}}
	var total int64
	for mo := from; !mo.After(to); mo = mo.AddDate(0, 1, 0) {
		for _, p := range s.w.payments(co, mo) {
			out.Jkmx = append(out.Jkmx, paymentData{p.Period, p.Item, yuan(p.Fen), p.PaidOn, p.Voucher})
			total += p.Fen
		}
	}
	out.Bs, out.Hjje = len(out.Jkmx), yuan(total)
	return out, CodeOK, "ok"
}

type taxCreditData struct {
	Nsrsbh string `json:"nsrsbh"`
	Nsrmc  string `json:"nsrmc"`
	Pdnd   int    `json:"pdnd"`
	Xydj   string `json:"xydj"`
	Pdrq   string `json:"pdrq"`
}

func (s *Server) taxCredit(q map[string]string) (any, string, string) {
	year, err := strconv.Atoi(q["year"])
	if err != nil || len(q["year"]) != 4 || year < 1990 {
		return badParam("year", "want a year YYYY")
	}
	co, d, c, m := s.creditCode(q)
	if c != CodeOK {
		return d, c, m
	}
	grade, on := s.w.creditGrade(co, year)
	if grade == "" {
		return notFound(fmt.Sprintf("credit rating of %d", year))
	}
	return taxCreditData{co.Code, co.Name, year, grade, on.Format(time.DateOnly)}, CodeOK, "ok"
}

// ---- admin ----

func (s *Server) getKnobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Knobs())
}

func (s *Server) postKnobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	k := s.knobs
	s.mu.Unlock()
	body := http.MaxBytesReader(w, r.Body, 1<<16)
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if err := json.Unmarshal(buf.Bytes(), &k); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	// Concurrent posts: last one wins, each applied on the knobs it read.
	_ = s.SetKnobs(k)
	writeJSON(w, http.StatusOK, k)
}

// Describe returns a human-readable list of the endpoints, for the command.
func (s *Server) Describe(base string) string {
	var b strings.Builder
	eps := s.endpoints()
	slices.SortStableFunc(eps, func(a, b Endpoint) int { return strings.Compare(a.System, b.System) })
	for _, e := range eps {
		params := make([]string, len(e.Params))
		for i, p := range e.Params {
			params[i] = p + "="
		}
		fmt.Fprintf(&b, "  %-15s %-17s GET %s%s?%s\n", e.System, e.ServiceID, base, e.Path, strings.Join(params, "&"))
	}
	fmt.Fprintf(&b, "  admin: GET|POST %s/_sim/knobs, GET|DELETE %s/_sim/stats\n", base, base)
	return b.String()
}
