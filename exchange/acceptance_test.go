package exchange_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

const (
	accHub      = "11100000000013338W"
	accTypeCode = "11100000000013338W011"
	accHolder   = "91350100M000100Y43"
)

type accFields struct{}

func (accFields) Validate(*license.License) error { return nil }

var accCatalog = license.CatalogFunc(func(string) (license.Validator, bool) { return accFields{}, true })

type accBackend struct {
	name    string
	objects licensehub.ObjectStore
	kv      licensehub.KV
}

func accFsMem(t testing.TB) accBackend {
	objs, kv := exchange.OpenTestFsMem(t)
	return accBackend{"fs+mem", objs, kv}
}

func accEachBackend(t *testing.T, f func(t *testing.T, b accBackend)) {
	exchange.EachTestBackend(t, 10*time.Second, func(t *testing.T, name string, objects licensehub.ObjectStore, kv licensehub.KV) {
		f(t, accBackend{name, objects, kv})
	})
}

func accKeyring(t testing.TB) *signing.Keyring {
	t.Helper()
	return testkeys.Keyring(t, time.Now().Add(-24*time.Hour), time.Now().AddDate(2, 0, 0), accHub)
}

func accLibrary(t testing.TB, b accBackend, ring *signing.Keyring) *license.Library {
	lib, err := license.NewLibrary(license.Config{Objects: b.objects, KV: b.kv, Signers: ring, Catalog: accCatalog,
		TypeName: func(string) string { return "营业执照" },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)), OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func accPush(i int) license.PushRequest {
	return license.PushRequest{
		App: "app-market", TypeCode: accTypeCode,
		Issuer:    license.Party{Name: "湖南省市场监督管理局", Code: accHub},
		Number:    fmt.Sprintf("ACC%07d", i),
		Holder:    license.Holder{Name: "福州示范科技有限公司", Code: accHolder, CodeType: ident.HolderCreditCode},
		IssueDate: "2026-11-20", ValidFrom: "2026-11-20", ValidUntil: "2031-11-19", AreaCode: "430100",
		Fields: map[string]any{"legal_representative": "张三"},
	}
}

// accDelivery is a deliverer configuration with short backoffs, so the
// test's outage and drops cost seconds, not minutes.
func accDelivery(b accBackend, lib *license.Library, ring *signing.Keyring, url string, tr http.RoundTripper) exchange.DeliverConfig {
	return exchange.DeliverConfig{Objects: b.objects, KV: b.kv, Licenses: lib, Signers: ring, Authority: accHub,
		ProvinceURL: url, Concurrency: 16, MaxAttempts: 100, Timeout: 2 * time.Second, LeaseTTL: 3 * time.Second,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, BreakerFailures: 20,
		BreakerOpenFor: 200 * time.Millisecond, Poll: 20 * time.Millisecond, CheckpointEvery: 100 * time.Millisecond,
		OpTimeout: 10 * time.Second, Transport: tr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// accStart runs a deliverer until the returned stop is called.
func accStart(t testing.TB, cfg exchange.DeliverConfig) (stop func()) {
	t.Helper()
	d, err := exchange.NewDeliverer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("the deliverer did not stop within 30s of its cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func accWait(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAcceptanceExactlyOnce is issue 9's acceptance: 5,000 events (2,500
// licenses pushed through a real license.Library, then a status change of
// each) reach a province that drops 30 % of the requests (half of them
// after applying) and is down for a stretch in the middle; the deliverer
// is cancelled mid-way and a new one started. Every event ends up applied
// exactly once, each license's events in order, nothing dead-lettered, and
// the hub's reconciliation digest of the day equals the province's.
func TestAcceptanceExactlyOnce(t *testing.T) {
	n := 2500
	if testing.Short() {
		n = 300
	}
	accEachBackend(t, func(t *testing.T, b accBackend) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ring := accKeyring(t)
		lib := accLibrary(t, b, ring)
		sim := provsim.New(provsim.Config{HubKeys: ring.Export(), Seed: 9, Knobs: provsim.Knobs{DropRate: 0.3}})
		ts := httptest.NewServer(sim)
		tr := &http.Transport{MaxIdleConnsPerHost: 32}
		defer func() {
			tr.CloseIdleConnections()
			sim.Close()
			ts.Close()
		}()
		start := time.Now()
		stop1 := accStart(t, accDelivery(b, lib, ring, ts.URL, tr))
		// Kill the first deliverer mid-way (once half the events are
		// applied, whatever the production has reached), start a new one.
		var killedAt atomic.Int64
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			for sim.Stats().Applied < int64(n) {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop1()
			killedAt.Store(sim.Stats().Applied)
		}()

		// Produce: the licenses, then their status changes, 16 at a time,
		// while the first deliverer delivers.
		ids := make([]string, n)
		var produced atomic.Int64
		work := func(f func(i int) error) {
			var wg sync.WaitGroup
			next := atomic.Int64{}
			for range 16 {
				wg.Go(func() {
					for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
						if err := f(i); err != nil {
							t.Error(err)
							return
						}
						produced.Add(1)
					}
				})
			}
			wg.Wait()
		}
		work(func(i int) error {
			res, err := lib.Push(ctx, accPush(i))
			if err == nil {
				ids[i] = res.Identifier
			}
			return err
		})
		if t.Failed() {
			return
		}
		// The outage, in the middle: from the start of the status changes
		// until 10 requests were refused, whichever deliverer sends them
		// (not for a wall-clock stretch a deliverer might sit out).
		sim.SetDown(time.Hour)
		outageOver := make(chan struct{})
		go func() {
			defer close(outageOver)
			for sim.Stats().Refused < 10 && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			sim.SetDown(0)
		}()
		work(func(i int) error {
			_, err := lib.ChangeStatus(ctx, ids[i], license.OpSuspend, "acceptance", "app-market")
			return err
		})
		if t.Failed() {
			return
		}
		t.Logf("%s: produced %d events in %v; %d applied so far", b.name, produced.Load(), time.Since(start).Round(time.Millisecond), sim.Stats().Applied)

		select {
		case <-killed:
		case <-time.After(time.Minute):
			t.Fatal("half the events were not applied within a minute")
		}
		stop2 := accStart(t, accDelivery(b, lib, ring, ts.URL, tr))

		want := 2 * n
		accWait(t, "every event applied", 2*time.Minute, func() bool { return sim.Stats().Applied >= int64(want) })
		<-outageOver
		stop2() // nothing in flight: the counts are final
		st := sim.Stats()
		t.Logf("%s: all %d applied after %v (first deliverer killed at %d): %+v", b.name, want, time.Since(start).Round(time.Millisecond), killedAt.Load(), st)

		if st.Applied != int64(want) || len(sim.EventIDs()) != want {
			t.Errorf("applied %d (distinct %d), want %d", st.Applied, len(sim.EventIDs()), want)
		}
		if st.OutOfOrder != 0 || st.Gaps != 0 {
			t.Errorf("out of order %d (%v), gaps %d", st.OutOfOrder, st.OutOfOrderLicenses, st.Gaps)
		}
		if st.Dropped == 0 || st.Refused == 0 || st.DroppedAfterApply == 0 {
			t.Errorf("the knobs did not bite: %+v", st)
		}
		for _, id := range ids[:min(n, 50)] {
			if got := sim.Order(id); len(got) != 2 || got[0] != id+"/new" || got[1] != id+"/suspend/1" {
				t.Errorf("%s applied as %v", id, got)
			}
		}
		d, err := exchange.NewDeliverer(accDelivery(b, lib, ring, ts.URL, tr))
		if err != nil {
			t.Fatal(err)
		}
		if dl, err := d.DeadLetters(ctx); err != nil || len(dl) != 0 {
			t.Errorf("dead letters %d %v", len(dl), err)
		}

		// Reconciliation: per day the events fall on (today; two days
		// across midnight).
		sim.SetKnobs(provsim.Knobs{})
		rec := &exchange.Reconciler{Objects: b.objects, ProvinceURL: ts.URL, HTTP: &http.Client{Transport: tr}}
		days := map[string]bool{}
		for _, id := range sim.EventIDs() {
			a, _ := sim.Event(id)
			days[a.Day] = true
		}
		total := 0
		for day := range days {
			hub, err := rec.Digest(ctx, day)
			if err != nil {
				t.Fatal(err)
			}
			prov, err := rec.ProvinceDigest(ctx, day)
			if err != nil {
				t.Fatal(err)
			}
			if hub.Digest != prov.Digest || hub.Count != prov.Count || prov.Digest != sim.Reconcile(day).Digest {
				t.Errorf("%s: hub %d %s, province %d %s", day, hub.Count, hub.Digest, prov.Count, prov.Digest)
			}
			total += hub.Count
		}
		if total != want {
			t.Errorf("the hub's days hold %d events, want %d", total, want)
		}
	})
}
