package exchange

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	fsstore "github.com/licensehub/licensehub/store/fs"
	memstore "github.com/licensehub/licensehub/store/mem"
	miniostore "github.com/licensehub/licensehub/store/minio"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

const (
	authorityA   = "11430000006122244L"
	hubAuthority = "11330100MB1234567E"
	typeCode     = "11100000000013338W011"
)

type backend struct {
	name    string
	objects licensehub.ObjectStore
	kv      licensehub.KV
}

func fsMem(t testing.TB) backend {
	objs, err := fsstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	kv := memstore.New()
	t.Cleanup(func() { kv.Close() })
	return backend{name: "fs+mem", objects: objs, kv: kv}
}

func real(t testing.TB) backend { return realWithin(t, 5*time.Second) }

// realWithin is real with the given MinIO operation timeout.
func realWithin(t testing.TB, opTimeout time.Duration) backend {
	m := testenv.RequireMinIO(t)
	u := testenv.RequireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs, err := miniostore.Open(ctx, miniostore.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey,
		SecretKey: m.SecretKey, Bucket: m.Bucket(t), OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	kv, err := redisstore.Open(ctx, redisstore.Config{URL: u, Prefix: testenv.Name(t) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := context.Background()
		if keys, err := kv.Client().Keys(c, kv.Key("*")).Result(); err == nil && len(keys) > 0 {
			kv.Client().Del(c, keys...)
		}
		kv.Close()
	})
	return backend{name: "minio+redis", objects: objs, kv: kv}
}

func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	eachBackendWithin(t, 5*time.Second, f)
}

// eachBackendWithin runs f on fs+mem and, when the test servers are
// configured, on minio+redis with the given MinIO operation timeout.
func eachBackendWithin(t *testing.T, opTimeout time.Duration, f func(t *testing.T, b backend)) {
	t.Run("fs+mem", func(t *testing.T) { f(t, fsMem(t)) })
	if os.Getenv("HUB_TEST_MINIO_ENDPOINT") != "" || os.Getenv("HUB_TEST_REQUIRE_BACKENDS") == "1" {
		t.Run("minio+redis", func(t *testing.T) { f(t, realWithin(t, opTimeout)) })
	}
}

// The exported helpers below hand this file's fixtures to the external
// exchange_test files (acceptance, inbound, bench); they exist only in
// test builds.

// EachTestBackend is eachBackendWithin for the exchange_test package.
func EachTestBackend(t *testing.T, opTimeout time.Duration, f func(t *testing.T, name string, objects licensehub.ObjectStore, kv licensehub.KV)) {
	t.Helper()
	eachBackendWithin(t, opTimeout, func(t *testing.T, b backend) { f(t, b.name, b.objects, b.kv) })
}

// OpenTestFsMem is fsMem for the exchange_test package.
func OpenTestFsMem(t testing.TB) (licensehub.ObjectStore, licensehub.KV) {
	b := fsMem(t)
	return b.objects, b.kv
}

// okValidator accepts every license, and lets the stock conversion record
// historic licenses (expired already: status 05 from the start).
type okValidator struct{}

func (okValidator) Validate(*license.License) error { return nil }

func (okValidator) Policy() license.Policy { return license.Policy{RecordExpired: true} }

type fixture struct {
	b    backend
	ring *signing.Keyring
	lib  *license.Library
}

func newFixture(t testing.TB, b backend) *fixture {
	t.Helper()
	ring := testkeys.Fixed(t, authorityA, hubAuthority)
	lib, err := license.NewLibrary(license.Config{Objects: b.objects, KV: b.kv, Signers: ring,
		Catalog: license.CatalogFunc(func(string) (license.Validator, bool) { return okValidator{}, true }),
		Logger:  quiet(), OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{b: b, ring: ring, lib: lib}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// push issues license number n and applies the given status ops; it
// returns the identifier.
func (f *fixture) push(t testing.TB, n int, ops ...string) string {
	t.Helper()
	res, err := f.lib.Push(ctxT(t), license.PushRequest{App: "app", TypeCode: typeCode, Name: "营业执照", TypeName: "营业执照",
		Issuer: license.Party{Name: "市场监督管理局", Code: authorityA}, Number: "N" + strconv.Itoa(n),
		Holder:    license.Holder{Name: "示范科技有限公司", Code: "91350100M000100Y43", CodeType: ident.HolderCreditCode},
		IssueDate: "2026-11-20", ValidFrom: "2026-11-20", ValidUntil: "2031-11-19", AreaCode: "430100",
		Fields: map[string]any{"legal_representative": "张三"}})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	for _, op := range ops {
		if _, err := f.lib.ChangeStatus(ctxT(t), res.Identifier, op, "test", "app"); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	return res.Identifier
}

func (f *fixture) deliverer(t testing.TB, url string, mod func(*DeliverConfig)) *Deliverer {
	t.Helper()
	cfg := DeliverConfig{Objects: f.b.objects, KV: f.b.kv, Licenses: f.lib, Signers: f.ring, Authority: hubAuthority,
		ProvinceURL: url, Concurrency: 4, MaxAttempts: 4, MaxRetryAfter: 50 * time.Millisecond, Timeout: 10 * time.Second,
		LeaseTTL: 3 * time.Second, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		BreakerFailures: 1000, BreakerOpenFor: 100 * time.Millisecond, Poll: 20 * time.Millisecond,
		CheckpointEvery: 50 * time.Millisecond, OpTimeout: 5 * time.Second, Logger: quiet()}
	if mod != nil {
		mod(&cfg)
	}
	d, err := NewDeliverer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs d until the returned stop is called (or the test ends).
func start(t testing.TB, d *Deliverer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// province is a fake provincial platform: it verifies envelopes, counts
// deliveries by event ID, records the order per license, and fails on
// demand.
type province struct {
	t    testing.TB
	keys signing.KeySource
	srv  *httptest.Server

	mu        sync.Mutex
	count     map[string]int
	order     map[string][]string // license -> first deliveries, in arrival order
	events    map[string]*Event
	failFirst map[string]int  // event ID -> 503s still to answer
	reject    map[string]bool // event ID -> answer 400
	throttle  int             // 429s with Retry-After still to answer
	down      bool            // answer 503 to everything
	delay     time.Duration   // per request
	inflight  map[string]bool // license -> a request is being handled
	overlap   bool            // two requests of one license were handled at once
	hook      func(*http.Request)
}

func newProvince(t testing.TB, keys signing.KeySource) *province {
	p := &province{t: t, keys: keys, count: map[string]int{}, order: map[string][]string{}, events: map[string]*Event{},
		failFirst: map[string]int{}, reject: map[string]bool{}, inflight: map[string]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *province) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/reconcile" {
		p.reconcile(w, r)
		return
	}
	if r.URL.Path != "/v1/events" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad route", 404)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	ev, err := Open(raw, p.keys)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	p.mu.Lock()
	if p.hook != nil {
		p.hook(r)
	}
	delay := p.delay
	switch {
	case p.down:
		p.mu.Unlock()
		http.Error(w, "down", 503)
		return
	case p.reject[ev.ID]:
		p.mu.Unlock()
		http.Error(w, "rejected", 400)
		return
	case p.failFirst[ev.ID] > 0:
		p.failFirst[ev.ID]--
		p.mu.Unlock()
		http.Error(w, "try later", 500)
		return
	case p.throttle > 0:
		p.throttle--
		p.mu.Unlock()
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "slow down", 429)
		return
	}
	if ev.License != "" {
		if p.inflight[ev.License] {
			p.overlap = true
		}
		p.inflight[ev.License] = true
	}
	p.mu.Unlock()
	// A sender that gives up (a stopped leader cancels its request) ends
	// the request here: its event is lost in transit, not still in flight
	// when the next leader sends it again.
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
		p.mu.Lock()
		delete(p.inflight, ev.License)
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, ev.License)
	if p.count[ev.ID] == 0 {
		p.order[ev.License] = append(p.order[ev.License], ev.ID)
		p.events[ev.ID] = ev
	}
	p.count[ev.ID]++
	w.WriteHeader(http.StatusAccepted)
}

func (p *province) reconcile(w http.ResponseWriter, r *http.Request) {
	date := r.URL.Query().Get("date")
	p.mu.Lock()
	var ids []string
	for id, ev := range p.events {
		at, err := time.Parse(signing.SignedAtLayout, ev.Time)
		if err == nil && at.UTC().Format(DateLayout) == date {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	dd := DigestIDs(date, ids)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"date":%q,"count":%d,"digest":%q,"event_ids":%s}`, dd.Date, dd.Count, dd.Digest, jsonList(dd.IDs))
}

func jsonList(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += strconv.Quote(v)
	}
	return out + "]"
}

func (p *province) delivered() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.count {
		out[k] = v
	}
	return out
}

// outboxIDs lists every event ID recorded in the outbox.
func outboxIDs(t testing.TB, objs licensehub.ObjectStore) map[string]bool {
	t.Helper()
	keys, err := listKeys(ctxT(t), objs, outboxPrefix)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, k := range keys {
		evs, err := readOutbox(ctxT(t), objs, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			ids[e.EventID] = true
		}
	}
	return ids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDelivered waits (generously: it returns as soon as they are) until
// every event in want is delivered; it fails at once, naming them, when
// dead letters appear, and names the missing events on timeout.
func waitDelivered(t testing.TB, d *Deliverer, p *province, want map[string]bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		if allDelivered(p, want)() {
			return
		}
		if i%20 == 0 {
			if dl, err := d.DeadLetters(ctxT(t)); err == nil && len(dl) > 0 {
				t.Fatalf("dead letters while waiting for delivery: %+v", dl)
			}
		}
		if time.Now().After(deadline) {
			got := p.delivered()
			var missing []string
			for id := range want {
				if got[id] == 0 {
					missing = append(missing, id)
				}
			}
			t.Fatalf("timed out waiting for every event delivered; missing %v", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allDelivered(p *province, want map[string]bool) func() bool {
	return func() bool {
		got := p.delivered()
		for id := range want {
			if got[id] == 0 {
				return false
			}
		}
		return true
	}
}

func fsMemKVOnly(t testing.TB) licensehub.KV {
	kv := memstore.New()
	t.Cleanup(func() { kv.Close() })
	return kv
}
