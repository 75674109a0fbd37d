// Package provsim simulates the provincial platform (全省通办) the hub
// exchanges license events with, for the demo, the acceptance tests and
// the benchmark. A [Server] is an http.Handler:
//
//	POST /v1/events                 one envelope (exchange.Seal's bytes), verified
//	                                against the hub's key bundle and applied once
//	                                per event ID: 200 {"applied":true} or
//	                                {"applied":false,"duplicate":true}; an
//	                                envelope that does not verify: 400
//	                                {"code":"SIGNATURE_INVALID"} (not an envelope:
//	                                400 {"code":"MALFORMED"}); the hub's keys
//	                                unreachable: 503 {"code":"KEYS_UNAVAILABLE"}
//	GET  /v1/reconcile?date=D[&ids=1]
//	                                {"date","count","digest"[,"event_ids"]} over the
//	                                distinct events applied whose event time is on
//	                                UTC day D: digest is hex SM3 of the sorted IDs
//	                                joined by "\n" (see Digest)
//	GET|POST /_sim/knobs            the failure knobs (see Knobs)
//	GET|DELETE /_sim/stats          counters (see Stats)
//	GET  /_sim/licenses/{id}        the province's view of a license (see View):
//	                                {"license","status","seq","events"}; 404 when
//	                                no event of it was applied
//
// /events and /reconcile answer too (the design note's names). The
// knobs act on POST /v1/events only, except an outage, which closes the
// connection of every /v1/ request; /_sim/ ignores them. Random choices
// come from a generator seeded with Config.Seed: a sequential client sees
// the same outcomes in every run.
//
// The simulator also pushes: [Pusher] sends foreign licenses and their
// status changes to the hub's POST /v1/exchange/inbound as the provincial
// platform's app, signed with the province's own key.
package provsim

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// DefaultSeed seeds the knobs' random choices when Config.Seed is 0.
const DefaultSeed = 20260901

// MaxEnvelope is the largest request body POST /v1/events reads.
const MaxEnvelope = 8 << 20

// Answer codes.
const (
	CodeSignatureInvalid = "SIGNATURE_INVALID"
	CodeMalformed        = "MALFORMED"
	CodeKeysUnavailable  = "KEYS_UNAVAILABLE"
	CodeUnavailable      = "UNAVAILABLE"
	CodeThrottled        = "THROTTLED"
	CodeInvalid          = "INVALID"
)

// Config configures a Server.
type Config struct {
	// HubKeys verifies the hub's envelopes. When nil, the keys are fetched
	// from HubURL's GET /v1/keys (and fetched again, at most once a
	// second, when an envelope names a key they lack).
	HubKeys signing.KeySource
	HubURL  string
	HTTP    *http.Client // for the key fetch; nil: a client with a 10 s timeout
	Seed    uint64       // 0: DefaultSeed
	Knobs   Knobs
	Now     func() time.Time // nil: time.Now
}

// Stats are the simulator's counters.
type Stats struct {
	Received           int64 `json:"received"`             // POST /v1/events requests
	Applied            int64 `json:"applied"`              // distinct events applied
	Duplicates         int64 `json:"duplicates"`           // events received again after being applied
	Dropped            int64 `json:"dropped"`              // connections closed by drop_rate
	DroppedBeforeApply int64 `json:"dropped_before_apply"` // ... before applying the event
	DroppedAfterApply  int64 `json:"dropped_after_apply"`  // ... after applying it (the answer lost)
	Errors             int64 `json:"errors"`               // 503s by error_rate
	Throttled          int64 `json:"throttled"`            // 429s by throttle_rate
	Refused            int64 `json:"refused"`              // connections closed during an outage
	Invalid            int64 `json:"invalid"`              // envelopes refused (signature, format)
	Licenses           int   `json:"licenses"`             // licenses with at least one event applied
	// OutOfOrder counts applications that broke a license's order: a
	// status change whose seq is not above every seq already applied for
	// that license, or a "new" after one of its status changes. It should
	// stay 0; OutOfOrderLicenses names the licenses concerned.
	OutOfOrder         int64            `json:"out_of_order"`
	OutOfOrderLicenses map[string]int64 `json:"out_of_order_licenses,omitempty"`
	// Gaps counts status changes applied while an earlier seq of their
	// license was missing (a dead-lettered or not yet delivered event).
	Gaps int64 `json:"gaps"`
}

// Applied is one applied event as the simulator recorded it.
type Applied struct {
	ID      string
	License string
	Seq     int
	Op      string
	Time    string // the event's time
	Day     string // its UTC day, YYYY-MM-DD ("" when Time does not parse)
	At      time.Time
}

type licenseState struct {
	maxSeq int
	order  []string
	// status is the province's view: the license event's initial status
	// (01 when it carries none), then the To of each status change with a
	// higher seq than the last one applied (statusSeq).
	status    string
	statusSeq int
}

// View is the province's view of one license.
type View struct {
	License string   `json:"license"`
	Status  string   `json:"status"` // "" until the license event or a status change is applied
	Seq     int      `json:"seq"`    // the status change the status comes from (0: the license event)
	Events  []string `json:"events"` // the IDs applied, in order
}

// Server is the simulator; it is an http.Handler.
type Server struct {
	cfg      Config
	keys     signing.KeySource
	mux      *http.ServeMux
	closing  chan struct{}
	closeOne sync.Once

	mu       sync.Mutex
	knobs    Knobs
	rnd      *rand.Rand
	stats    Stats
	events   map[string]*Applied
	licenses map[string]*licenseState
}

// New returns a simulator.
func New(cfg Config) *Server {
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Server{
		cfg:      cfg,
		keys:     cfg.HubKeys,
		mux:      http.NewServeMux(),
		closing:  make(chan struct{}),
		knobs:    cfg.Knobs,
		rnd:      rand.New(rand.NewPCG(cfg.Seed, 0x9e0f)),
		events:   map[string]*Applied{},
		licenses: map[string]*licenseState{},
	}
	s.stats.OutOfOrderLicenses = map[string]int64{}
	if s.keys == nil {
		s.keys = &remoteKeys{url: strings.TrimRight(cfg.HubURL, "/") + "/v1/keys", hc: cfg.HTTP, now: cfg.Now}
	}
	for _, p := range []string{"/v1/events", "/events"} {
		s.mux.HandleFunc("POST "+p, s.postEvent)
	}
	for _, p := range []string{"/v1/reconcile", "/reconcile"} {
		s.mux.HandleFunc("GET "+p, s.reconcile)
	}
	s.mux.HandleFunc("GET /_sim/knobs", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Knobs()) })
	s.mux.HandleFunc("POST /_sim/knobs", s.postKnobs)
	s.mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("GET /_sim/licenses/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.View(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, problem{CodeInvalid, "no event of this license was applied"})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	s.mux.HandleFunc("DELETE /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/events" || r.URL.Path == "/reconcile" {
		if k := s.Knobs(); k.Down(s.cfg.Now()) {
			s.mu.Lock()
			s.stats.Refused++
			s.mu.Unlock()
			abort(w)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Close ends pending delays at once. Call it before closing the HTTP
// server.
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

// SetDown starts an outage of d from now (d <= 0 ends any outage).
func (s *Server) SetDown(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		s.knobs.DownFrom, s.knobs.DownUntil = time.Time{}, time.Time{}
		return
	}
	now := s.cfg.Now()
	s.knobs.DownFrom, s.knobs.DownUntil = now, now.Add(d)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.OutOfOrderLicenses = maps.Clone(s.stats.OutOfOrderLicenses)
	st.Licenses = len(s.licenses)
	return st
}

// ResetStats zeroes the counters (the applied events stay).
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats = Stats{Applied: int64(len(s.events)), OutOfOrderLicenses: map[string]int64{}}
	s.mu.Unlock()
}

// EventIDs returns the IDs of every applied event, sorted.
func (s *Server) EventIDs() []string {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.events))
	s.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Event returns the applied event with the given ID.
func (s *Server) Event(id string) (Applied, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.events[id]
	if !ok {
		return Applied{}, false
	}
	return *a, true
}

// Order returns the IDs of a license's events in the order applied.
func (s *Server) Order(license string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ls := s.licenses[license]; ls != nil {
		return slices.Clone(ls.order)
	}
	return nil
}

// View returns the province's view of a license: its status as the
// events applied say it (the initial status of its license event, 01 when
// the event carries none, 05 for a historic license; then each status
// change in seq order), and the events applied. ok is false when no event
// of the license was applied.
func (s *Server) View(license string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.licenses[license]
	if ls == nil {
		return View{}, false
	}
	return View{License: license, Status: ls.status, Seq: ls.statusSeq, Events: slices.Clone(ls.order)}, true
}

// Reconciliation is the answer of GET /v1/reconcile.
type Reconciliation struct {
	Date     string   `json:"date"`
	Count    int      `json:"count"`
	Digest   string   `json:"digest"`
	EventIDs []string `json:"event_ids,omitempty"`
}

// Reconcile is the reconciliation of UTC day date (YYYY-MM-DD), with
// the IDs.
func (s *Server) Reconcile(date string) Reconciliation {
	s.mu.Lock()
	var ids []string
	for id, a := range s.events {
		if a.Day == date {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	slices.Sort(ids)
	return Reconciliation{Date: date, Count: len(ids), Digest: Digest(ids), EventIDs: ids}
}

// Digest is the reconciliation digest of a set of event IDs: lower-case
// hex SM3 of the sorted, distinct IDs joined by "\n" (of "" for none).
// ids is not modified.
func Digest(ids []string) string {
	sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
	sum := sm3.Sum([]byte(strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:])
}

// EventDay is the UTC day (YYYY-MM-DD) of an event time, or "".
func EventDay(t string) string {
	for _, layout := range []string{signing.SignedAtLayout, time.RFC3339Nano} {
		if v, err := time.Parse(layout, t); err == nil {
			return v.UTC().Format(time.DateOnly)
		}
	}
	return ""
}

// draws are one request's random choices, all drawn every time so that
// the sequence of outcomes does not depend on the knobs' values.
type draws struct{ jitter, fail, throttle, drop, after float64 }

func (s *Server) draw() (Knobs, draws) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rnd
	return s.knobs, draws{r.Float64(), r.Float64(), r.Float64(), r.Float64(), r.Float64()}
}

func (s *Server) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// abort closes the connection without an answer.
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
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

type problem struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.Received++ })
	k, d := s.draw()
	if !s.wait(r, k.Delay+time.Duration(d.jitter*float64(k.Jitter))) {
		abort(w)
		return
	}
	if d.fail < k.ErrorRate {
		s.count(func(st *Stats) { st.Errors++ })
		writeJSON(w, http.StatusServiceUnavailable, problem{CodeUnavailable, "service temporarily unavailable"})
		return
	}
	if d.throttle < k.ThrottleRate {
		s.count(func(st *Stats) { st.Throttled++ })
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, problem{CodeThrottled, "too many requests"})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEnvelope))
	if err != nil {
		s.count(func(st *Stats) { st.Invalid++ })
		writeJSON(w, http.StatusBadRequest, problem{CodeMalformed, "reading the envelope: " + err.Error()})
		return
	}
	drop := d.drop < k.DropRate
	if drop && d.after < 0.5 {
		s.count(func(st *Stats) { st.Dropped++; st.DroppedBeforeApply++ })
		abort(w)
		return
	}
	ev, err := exchange.Open(raw, s.keys)
	if err != nil {
		s.count(func(st *Stats) { st.Invalid++ })
		switch licensehub.ErrorCode(err) {
		case licensehub.EUNAVAILABLE:
			writeJSON(w, http.StatusServiceUnavailable, problem{CodeKeysUnavailable, licensehub.Message(err)})
		case licensehub.EMALFORMED:
			writeJSON(w, http.StatusBadRequest, problem{CodeMalformed, licensehub.Message(err)})
		default:
			writeJSON(w, http.StatusBadRequest, problem{CodeSignatureInvalid, licensehub.Message(err)})
		}
		return
	}
	applied := s.apply(ev)
	if drop {
		s.count(func(st *Stats) { st.Dropped++; st.DroppedAfterApply++ })
		abort(w)
		return
	}
	if applied {
		writeJSON(w, http.StatusOK, map[string]any{"applied": true})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"applied": false, "duplicate": true})
}

// Apply applies a verified event as POST /v1/events does (for tests);
// it reports whether the event was new.
func (s *Server) Apply(ev *exchange.Event) bool { return s.apply(ev) }

func (s *Server) apply(ev *exchange.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.events[ev.ID]; dup {
		s.stats.Duplicates++
		return false
	}
	s.events[ev.ID] = &Applied{ID: ev.ID, License: ev.License, Seq: ev.Seq, Op: ev.Op, Time: ev.Time,
		Day: EventDay(ev.Time), At: s.cfg.Now()}
	s.stats.Applied++
	if ev.License == "" {
		return true
	}
	ls := s.licenses[ev.License]
	if ls == nil {
		ls = &licenseState{}
		s.licenses[ev.License] = ls
	}
	ooo := false
	switch {
	case ev.Seq > 0:
		if ev.Seq <= ls.maxSeq {
			ooo = true
		} else {
			if ev.Seq > ls.maxSeq+1 {
				s.stats.Gaps++
			}
			ls.maxSeq = ev.Seq
		}
	case ev.Op == "new" && ls.maxSeq > 0:
		ooo = true
	}
	if ooo {
		s.stats.OutOfOrder++
		s.stats.OutOfOrderLicenses[ev.License]++
	}
	switch {
	case ev.Status != nil && ev.Seq > ls.statusSeq:
		ls.status, ls.statusSeq = ev.Status.To, ev.Seq
	case ev.Seq == 0 && isLicenseOp(ev.Op) && ls.statusSeq == 0:
		ls.status = ev.InitialStatus
		if ls.status == "" {
			ls.status = "01"
		}
	}
	ls.order = append(ls.order, ev.ID)
	return true
}

// isLicenseOp reports whether op brings a license or version (not a
// status change).
func isLicenseOp(op string) bool {
	return op == license.OpNew || op == license.OpRenew || op == license.OpChange
}

func (s *Server) reconcile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	date := q.Get("date")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		writeJSON(w, http.StatusBadRequest, problem{CodeInvalid, "date: want YYYY-MM-DD"})
		return
	}
	rec := s.Reconcile(date)
	switch q.Get("ids") {
	case "1", "true":
		if rec.EventIDs == nil {
			rec.EventIDs = []string{}
		}
		b, _ := json.Marshal(struct {
			Reconciliation
			EventIDs []string `json:"event_ids"`
		}{rec, rec.EventIDs})
		writeRaw(w, http.StatusOK, b)
	default:
		rec.EventIDs = nil
		writeJSON(w, http.StatusOK, rec)
	}
}

func (s *Server) postKnobs(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, problem{CodeInvalid, err.Error()})
		return
	}
	s.mu.Lock()
	k, err := s.knobs.apply(body, s.cfg.Now())
	if err == nil {
		s.knobs = k
	}
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, problem{CodeInvalid, err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var errNoHubURL = errors.New("provsim: no hub keys and no hub URL to fetch them from")
