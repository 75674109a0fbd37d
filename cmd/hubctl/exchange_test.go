package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/fs"
	miniostore "github.com/licensehub/licensehub/store/minio"
	"github.com/licensehub/licensehub/store/redis"
)

const (
	exIssuer = "11430000006122244L"
	exHub    = "11330100MB1234567E"
)

// exchangeHub is a hub's stores on the test servers, configured for
// hubctl through HUB_* variables, with a simulated province in front of
// which reject makes POST /v1/events answer 400.
type exchangeHub struct {
	objects licensehub.ObjectStore
	kv      licensehub.KV
	ring    *signing.Keyring
	lib     *license.Library
	sim     *provsim.Server
	url     string
	reject  atomic.Bool
}

func newExchangeHub(t *testing.T, useMinIO bool) *exchangeHub {
	t.Helper()
	redisURL := testenv.RequireRedis(t)
	prefix := testenv.Name(t) + ":"
	data := t.TempDir()
	keys := filepath.Join(data, "keys")
	now := time.Now().UTC()
	ring := testkeys.KeyringIn(t, keys, now.Add(-time.Hour), now.AddDate(1, 0, 0), exIssuer, exHub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := &exchangeHub{ring: ring}
	catDir := filepath.Join("..", "..", "configs", "catalog")
	env := map[string]string{"HUB_REDIS_URL": redisURL, "HUB_REDIS_PREFIX": prefix, "HUB_DATA_DIR": data,
		"HUB_SIGNING_KEYS_DIR": keys, "HUB_CATALOG_DIR": catDir, "HUB_SIGNING_HUB_AUTHORITY": exHub}
	if useMinIO {
		m := testenv.RequireMinIO(t)
		bucket := m.Bucket(t)
		objs, err := miniostore.Open(ctx, miniostore.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey,
			SecretKey: m.SecretKey, Bucket: bucket, OpTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { objs.Close() })
		h.objects = objs
		env["HUB_MINIO_ENDPOINT"] = "http://" + m.Endpoint
		env["HUB_MINIO_ACCESS_KEY"] = m.AccessKey
		env["HUB_MINIO_SECRET_KEY"] = m.SecretKey
		env["HUB_MINIO_BUCKET"] = bucket
	} else {
		objs, err := fs.Open(filepath.Join(data, "objects"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { objs.Close() })
		h.objects = objs
	}
	kv, err := redis.Open(ctx, redis.Config{URL: redisURL, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ks, err := kv.Client().Keys(c, prefix+"*").Result(); err == nil && len(ks) > 0 {
			kv.Client().Del(c, ks...)
		}
		kv.Close()
	})
	h.kv = kv
	cat, err := catalog.Load(catDir)
	if err != nil {
		t.Fatal(err)
	}
	h.lib, err = license.NewLibrary(license.Config{Objects: h.objects, KV: kv, Signers: ring,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName})
	if err != nil {
		t.Fatal(err)
	}
	b := ring.Export()
	h.sim = provsim.New(provsim.Config{HubKeys: &b})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && h.reject.Load() {
			http.Error(w, "rejected", http.StatusBadRequest)
			return
		}
		h.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { h.sim.Close(); srv.Close() })
	h.url = srv.URL
	env["HUB_EXCHANGE_PROVINCE_URL"] = srv.URL
	for k, v := range env {
		t.Setenv(k, v)
	}
	return h
}

func (h *exchangeHub) push(t *testing.T, number string, ops ...string) string {
	t.Helper()
	ctx := context.Background()
	const holder = "91350100M000100Y43"
	out, err := h.lib.Push(ctx, testPush(exIssuer, holder, number))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if _, err := h.lib.ChangeStatus(ctx, out.Identifier, op, "检查", "test"); err != nil {
			t.Fatal(err)
		}
	}
	return out.Identifier
}

// deliver runs a deliverer (as the hub does) until n dead letters exist.
func (h *exchangeHub) deliverUntilDead(t *testing.T, n int) {
	t.Helper()
	d, err := exchange.NewDeliverer(exchange.DeliverConfig{Objects: h.objects, KV: h.kv, Licenses: h.lib, Signers: h.ring,
		Authority: exHub, ProvinceURL: h.url, Concurrency: 2, MaxAttempts: 2, Timeout: 10 * time.Second,
		LeaseTTL: 3 * time.Second, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Poll: 20 * time.Millisecond, OpTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, cc := context.WithTimeout(context.Background(), 30*time.Second)
		dls, err := d.DeadLetters(c)
		cc()
		if err == nil && len(dls) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d dead letters: %v %v", n, dls, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exchangeBackends(t *testing.T, f func(t *testing.T, useMinIO bool)) {
	t.Run("fs+redis", func(t *testing.T) { f(t, false) })
	if os.Getenv("HUB_TEST_MINIO_ENDPOINT") != "" || os.Getenv("HUB_TEST_REQUIRE_BACKENDS") == "1" {
		t.Run("minio+redis", func(t *testing.T) { f(t, true) })
	}
}

// TestExchangeDLQListAndReplay: events the province rejects are
// dead-lettered; `hubctl exchange dlq list` shows them and `dlq replay`
// re-delivers them in order once the province takes them.
func TestExchangeDLQListAndReplay(t *testing.T) {
	exchangeBackends(t, func(t *testing.T, useMinIO bool) {
		h := newExchangeHub(t, useMinIO)
		one := h.push(t, "A2001")
		two := h.push(t, "A2002", license.OpSuspend)
		h.reject.Store(true)
		h.deliverUntilDead(t, 3)

		code, out, stderr := hubctl(t, "exchange", "dlq", "list")
		if code != 0 {
			t.Fatalf("dlq list: exit %d\n%s%s", code, out, stderr)
		}
		for _, want := range []string{one + "/new\trejected\tattempts=1", two + "/new\trejected", two + "/suspend/1\tblocked_behind", "3 dead letters"} {
			if !strings.Contains(out, want) {
				t.Errorf("dlq list lacks %q:\n%s", want, out)
			}
		}

		tests := []struct {
			name     string
			reject   bool
			args     []string
			wantCode int
			wantOut  []string
			wantErr  string
		}{
			{"nothing named", false, nil, 2, nil, "--event ID"},
			{"bad flag", false, []string{"--frobnicate"}, 2, nil, "frobnicate"},
			{"not a dead letter", false, []string{"--event", "nope/new"}, 1, []string{`"nope/new": "not a dead letter"`}, "still dead-lettered"},
			{"province still rejects", true, []string{"--event", one + "/new"}, 1, []string{`"` + one + `/new": "HTTP 400`}, "1 events are still dead-lettered"},
			{"one event", false, []string{"--event", one + "/new"}, 0, []string{`"replayed": [`, one + "/new", `"unblocked": [`}, ""},
			{"all", false, []string{"--all"}, 0, []string{two + "/new", two + "/suspend/1", `"unblocked": [`}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.reject.Store(tt.reject)
				code, out, stderr := hubctl(t, append([]string{"exchange", "dlq", "replay"}, tt.args...)...)
				if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
					t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s(want %q)", code, tt.wantCode, out, stderr, tt.wantErr)
				}
				for _, w := range tt.wantOut {
					if !strings.Contains(out, w) {
						t.Errorf("stdout lacks %q:\n%s", w, out)
					}
				}
			})
		}
		if code, out, _ := hubctl(t, "exchange", "dlq", "list"); code != 0 || !strings.Contains(out, "0 dead letters") {
			t.Errorf("dlq list after replay: exit %d\n%s", code, out)
		}
		if got, want := h.sim.Order(two), []string{two + "/new", two + "/suspend/1"}; !slices.Equal(got, want) {
			t.Errorf("province order %v, want %v", got, want)
		}
		ctx := context.Background()
		for _, lic := range []string{one, two} {
			if _, err := h.kv.Get(ctx, "exchange:blocked:"+lic); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
				t.Errorf("%s still blocked: %v", lic, err)
			}
		}
		if m, err := h.kv.SMembers(ctx, exchange.DLQKey); err != nil || len(m) != 0 {
			t.Errorf("dead letter set %v %v", m, err)
		}

		// Replay changes the hub's Redis state: an embedded KV is refused.
		t.Setenv("HUB_REDIS_URL", "")
		if code, _, stderr := hubctl(t, "exchange", "dlq", "replay", "--all"); code != 2 || !strings.Contains(stderr, "redis.url") {
			t.Errorf("embedded KV: exit %d, stderr %q", code, stderr)
		}
	})
}

// TestExchangeReconcile: the province lacks an event; `hubctl exchange
// reconcile` lists it, re-sends it, and the day then reconciles equal.
func TestExchangeReconcile(t *testing.T) {
	exchangeBackends(t, func(t *testing.T, useMinIO bool) {
		h := newExchangeHub(t, useMinIO)
		one := h.push(t, "A3001", license.OpSuspend)
		two := h.push(t, "A3002")
		// The province has one's events only (delivered some other way).
		h.reject.Store(true)
		h.deliverUntilDead(t, 3)
		h.reject.Store(false)
		if code, out, stderr := hubctl(t, "exchange", "dlq", "replay", "--event", one+"/new", "--event", one+"/suspend/1"); code != 0 {
			t.Fatalf("replay: exit %d\n%s%s", code, out, stderr)
		}
		date := time.Now().UTC().Format("2006-01-02")

		tests := []struct {
			name     string
			args     []string
			wantCode int
			wantOut  []string
			wantErr  string
		}{
			{"no date", nil, 2, nil, "--date"},
			{"bad date", []string{"--date", "26-11-2026"}, 1, nil, "date"},
			{"missing event re-sent", []string{"--date", date}, 0, []string{"hub       3 ", "province  2 ", "missing at province: " + two + "/new", "re-sent 1 events, 0 failed"}, ""},
			{"equal after re-sending", []string{"--date", date}, 0, []string{"hub       3 ", "province  3 ", "equal"}, ""},
			{"another day", []string{"--date", "2001-01-01"}, 0, []string{"hub       0 ", "province  0 ", "equal"}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, out, stderr := hubctl(t, append([]string{"exchange", "reconcile"}, tt.args...)...)
				if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
					t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s(want %q)", code, tt.wantCode, out, stderr, tt.wantErr)
				}
				for _, w := range tt.wantOut {
					if !strings.Contains(out, w) {
						t.Errorf("stdout lacks %q:\n%s", w, out)
					}
				}
			})
		}
		if _, ok := h.sim.Event(two + "/new"); !ok {
			t.Error("the missing event did not reach the province")
		}

		// The province answers errors: reconcile fails.
		h.sim.SetDown(time.Minute)
		if code, _, _ := hubctl(t, "exchange", "reconcile", "--date", date); code != 1 {
			t.Errorf("province down: exit %d, want 1", code)
		}
	})
}
