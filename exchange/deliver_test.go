package exchange

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
)

// checkOrder fails when a license's first deliveries are not new, then
// its status changes in seq order.
func checkOrder(t *testing.T, p *province, ids []string, ops ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		want := []string{id + "/new"}
		for i, op := range ops {
			want = append(want, id+"/"+op+"/"+itoa(i+1))
		}
		if got := p.order[id]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s delivered as %v, want %v", id, got, want)
		}
	}
	if p.overlap {
		t.Error("two events of one license were in flight at once")
	}
}

func TestDeliverOrderUnderConcurrency(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		var ids []string
		for i := range 12 {
			ids = append(ids, f.push(t, i, license.OpSuspend, license.OpRestore))
		}
		p.mu.Lock()
		for i, id := range ids {
			if i%3 == 0 {
				p.failFirst[id+"/new"] = 2 // 5xx, retried
			}
		}
		p.throttle = 3 // 429 with Retry-After 3600: capped at max_retry_after
		p.delay = 2 * time.Millisecond
		p.mu.Unlock()
		want := outboxIDs(t, b.objects)
		if len(want) != 36 {
			t.Fatalf("outbox holds %d events", len(want))
		}
		d := f.deliverer(t, p.srv.URL, nil)
		stop := start(t, d)
		waitDelivered(t, d, p, want, 2*time.Minute)
		cursorPastEverything := func() bool {
			cur, err := b.kv.Get(ctxT(t), CursorKey)
			if err != nil {
				return false
			}
			rest, err := b.kv.XRange(ctxT(t), license.OutboxStream, string(cur), 10)
			return err == nil && len(rest) == 0
		}
		waitFor(t, time.Minute, "the cursor past everything", cursorPastEverything)
		stop()
		checkOrder(t, p, ids, license.OpSuspend, license.OpRestore)
		if dl, err := d.DeadLetters(ctxT(t)); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters: %v %v", dl, err)
		}
		// The cursor is past everything: a new leader sends nothing again.
		// A license pushed after it starts is the barrier: the cursor
		// passes its event only once every entry the leader read before
		// it is settled, so a re-sent event would have arrived by then.
		before := p.delivered()
		stop2 := start(t, f.deliverer(t, p.srv.URL, nil))
		late := f.push(t, 99) + "/new"
		waitFor(t, time.Minute, "the cursor past the late license", cursorPastEverything)
		stop2()
		after := p.delivered()
		if after[late] != 1 {
			t.Errorf("the late license's event was delivered %d times, want 1", after[late])
		}
		for id, n := range after {
			if id != late && before[id] != n {
				t.Errorf("%s re-sent after a clean stop (%d -> %d)", id, before[id], n)
			}
		}
		if _, err := b.objects.Head(ctxT(t), CursorObject); err != nil {
			t.Errorf("cursor checkpoint: %v", err)
		}
	})
}

func TestDeadLetterBlockedBehindAndReplay(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		rejected := f.push(t, 1, license.OpSuspend, license.OpRestore)
		failing := f.push(t, 2, license.OpSuspend)
		fine := f.push(t, 3, license.OpSuspend)
		p.mu.Lock()
		p.reject[rejected+"/suspend/1"] = true
		p.failFirst[failing+"/new"] = 1 << 30 // always 5xx
		p.mu.Unlock()
		d := f.deliverer(t, p.srv.URL, nil)
		stop := start(t, d)
		waitFor(t, 30*time.Second, "dead letters", func() bool {
			dl, err := d.DeadLetters(ctxT(t))
			return err == nil && len(dl) == 4
		})
		waitFor(t, 10*time.Second, "the fine license", allDelivered(p, map[string]bool{fine + "/new": true, fine + "/suspend/1": true}))
		stop()
		dl, _ := d.DeadLetters(ctxT(t))
		reasons := map[string]DeadLetter{}
		for _, x := range dl {
			reasons[x.EventID] = x
		}
		check := func(id, reason string) {
			t.Helper()
			x, ok := reasons[id]
			if !ok || x.Reason != reason {
				t.Errorf("%s: dead letter %+v, want reason %s", id, x, reason)
			}
		}
		check(rejected+"/suspend/1", ReasonRejected)
		check(rejected+"/restore/2", ReasonBlockedBehind)
		check(failing+"/new", ReasonMaxAttempts)
		check(failing+"/suspend/1", ReasonBlockedBehind)
		if x := reasons[failing+"/new"]; x.Attempts != 4 || !strings.Contains(x.Error, "500") {
			t.Errorf("max attempts dead letter: %+v", x)
		}
		if _, err := b.objects.Head(ctxT(t), DLQObject(rejected+"/suspend/1")); err != nil {
			t.Error(err)
		}
		if m, _ := b.kv.SMembers(ctxT(t), DLQKey); len(m) != 4 {
			t.Errorf("dlq set %v", m)
		}
		if got := p.delivered(); got[rejected+"/restore/2"] != 0 || got[failing+"/suspend/1"] != 0 {
			t.Error("an event behind a dead letter was delivered")
		}

		// Replay one license while the other still fails: it stays blocked.
		p.mu.Lock()
		p.reject = map[string]bool{}
		p.mu.Unlock()
		rep, err := d.Replay(ctxT(t), []string{rejected + "/suspend/1", rejected + "/restore/2", failing + "/new"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Replayed) != 2 || len(rep.Failed) != 1 || len(rep.Unblocked) != 1 || rep.Unblocked[0] != rejected {
			t.Errorf("replay %+v", rep)
		}
		if _, err := b.kv.Get(ctxT(t), blockedKey+failing); err != nil {
			t.Errorf("%s unblocked: %v", failing, err)
		}
		// Then the province recovers: replay all, in order.
		p.mu.Lock()
		p.failFirst = map[string]int{}
		p.mu.Unlock()
		if rep, err = d.Replay(ctxT(t), nil, true); err != nil || len(rep.Replayed) != 2 || rep.Failed != nil {
			t.Fatalf("replay all %+v %v", rep, err)
		}
		checkOrder(t, p, []string{rejected}, license.OpSuspend, license.OpRestore)
		checkOrder(t, p, []string{failing}, license.OpSuspend)
		if dl, _ := d.DeadLetters(ctxT(t)); len(dl) != 0 {
			t.Errorf("dead letters left: %v", dl)
		}
		if _, err := b.kv.Get(ctxT(t), blockedKey+failing); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			t.Errorf("still blocked: %v", err)
		}
		// Later events of a replayed license flow again.
		if _, err := f.lib.ChangeStatus(ctxT(t), rejected, license.OpRevoke, "x", "app"); err != nil {
			t.Fatal(err)
		}
		start(t, d)
		waitFor(t, 10*time.Second, "after unblocking", allDelivered(p, map[string]bool{rejected + "/revoke/3": true}))
	})
}

func TestOneLeaderAtATime(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		for i := range 10 {
			f.push(t, i, license.OpSuspend)
		}
		var mu sync.Mutex
		senders := map[string]int{}
		tag := func(name string) func(*DeliverConfig) {
			return func(c *DeliverConfig) {
				c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
					mu.Lock()
					senders[name]++
					mu.Unlock()
					return http.DefaultTransport.RoundTrip(r)
				})
			}
		}
		p.mu.Lock()
		p.delay = 5 * time.Millisecond
		p.mu.Unlock()
		want := outboxIDs(t, b.objects)
		start(t, f.deliverer(t, p.srv.URL, tag("a")))
		start(t, f.deliverer(t, p.srv.URL, tag("b")))
		waitFor(t, 30*time.Second, "every event", allDelivered(p, want))
		mu.Lock()
		defer mu.Unlock()
		if len(senders) != 1 {
			t.Errorf("both deliverers sent: %v", senders)
		}
		for id, n := range p.delivered() {
			if n != 1 {
				t.Errorf("%s delivered %d times", id, n)
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestKilledLeaderLosesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		var ids []string
		for i := range 30 {
			ids = append(ids, f.push(t, i, license.OpSuspend))
		}
		want := outboxIDs(t, b.objects)
		p.mu.Lock()
		p.delay = 10 * time.Millisecond
		p.mu.Unlock()
		stopA := start(t, f.deliverer(t, p.srv.URL, func(c *DeliverConfig) { c.Concurrency = 2 }))
		waitFor(t, 20*time.Second, "some deliveries", func() bool { return len(p.delivered()) >= 10 })
		stopA() // mid-run: lanes abandon what they hold
		if len(p.delivered()) == len(want) {
			t.Log("everything was delivered before the stop")
		}
		stopB := start(t, f.deliverer(t, p.srv.URL, nil))
		waitFor(t, 30*time.Second, "every event after the takeover", allDelivered(p, want))
		stopB()
		checkOrder(t, p, ids, license.OpSuspend)
	})
}

func TestCursorRecoveryAfterKVLoss(t *testing.T) {
	f := newFixture(t, fsMem(t))
	p := newProvince(t, f.ring)
	f.push(t, 1)
	d := f.deliverer(t, p.srv.URL, nil)
	stop := start(t, d)
	waitFor(t, 10*time.Second, "first", func() bool { return len(p.delivered()) == 1 })
	stop()
	// Redis is lost: cursor and stream gone; an event written meanwhile
	// never reached the stream.
	fresh := fsMemKVOnly(t)
	f2 := &fixture{b: backend{objects: f.b.objects, kv: fresh}, ring: f.ring}
	lib, err := license.NewLibrary(license.Config{Objects: f.b.objects, KV: fresh, Signers: f.ring,
		Catalog: license.CatalogFunc(func(string) (license.Validator, bool) { return okValidator{}, true }), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f2.lib = lib
	id2 := f2.push(t, 2)
	if err := fresh.Delete(ctxT(t), license.OutboxStream); err != nil {
		t.Fatal(err)
	}
	start(t, f2.deliverer(t, p.srv.URL, nil))
	waitFor(t, 10*time.Second, "the event that missed the stream", allDelivered(p, map[string]bool{id2 + "/new": true}))
}

// TestThrottlingIsNotAnAttempt: 429 answers delay an event but do not
// count towards MaxAttempts (TestDeliverOrderUnderConcurrency's flake: an
// event answered 5xx twice and then 429 twice was dead-lettered).
func TestThrottlingIsNotAnAttempt(t *testing.T) {
	tests := []struct {
		name         string
		failFirst    int
		throttle     int
		wantReason   string // "" means delivered
		wantAttempts int
	}{
		{"5xx twice then throttled longer than max attempts", 2, 6, "", 0},
		{"throttled only", 0, 10, "", 0},
		{"5xx only", 1 << 30, 0, ReasonMaxAttempts, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fsMem(t))
			p := newProvince(t, f.ring)
			lic := f.push(t, 1)
			p.mu.Lock()
			p.failFirst[lic+"/new"] = tt.failFirst
			p.throttle = tt.throttle
			p.mu.Unlock()
			d := f.deliverer(t, p.srv.URL, nil)
			start(t, d)
			if tt.wantReason == "" {
				waitDelivered(t, d, p, map[string]bool{lic + "/new": true}, time.Minute)
				return
			}
			waitFor(t, time.Minute, "the dead letter", func() bool {
				dl, err := d.DeadLetters(ctxT(t))
				return err == nil && len(dl) == 1
			})
			dl, _ := d.DeadLetters(ctxT(t))
			if dl[0].Reason != tt.wantReason || dl[0].Attempts != tt.wantAttempts {
				t.Errorf("dead letter %+v, want reason %s after %d attempts", dl[0], tt.wantReason, tt.wantAttempts)
			}
		})
	}
}

// TestReplayRaceWithParkedEvent: an event of the license parked by the
// leader while Replay runs is not left behind when Replay unblocks.
func TestReplayRaceWithParkedEvent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		lic := f.push(t, 1, license.OpSuspend)
		dead, parked := lic+"/suspend/1", lic+"/restore/2"
		p.mu.Lock()
		p.reject[dead] = true
		p.mu.Unlock()
		watch := &lockWatchKV{KV: b.kv, key: laneLockKey + lic, waiting: make(chan struct{})}
		d := f.deliverer(t, p.srv.URL, func(c *DeliverConfig) { c.KV = watch })
		start(t, d)
		waitFor(t, time.Minute, "the dead letter", func() bool {
			_, err := b.objects.Head(ctxT(t), DLQObject(dead))
			return err == nil
		})
		// While Replay delivers the dead letter, the license gets a new
		// event, which the running leader would park behind it.
		var once sync.Once
		p.mu.Lock()
		p.reject = map[string]bool{}
		p.hook = func(r *http.Request) {
			if r.Header.Get("X-Event-ID") != dead {
				return
			}
			once.Do(func() {
				if _, err := f.lib.ChangeStatus(ctxT(t), lic, license.OpRestore, "x", "app"); err != nil {
					t.Error(err)
					return
				}
				// Replay goes on once the leader is parking the new event:
				// waiting for the license's lane, which Replay holds.
				select {
				case <-watch.waiting:
				case <-time.After(time.Minute):
					t.Error("the leader did not try to park the new event within a minute")
				}
			})
		}
		p.mu.Unlock()
		replayer := f.deliverer(t, p.srv.URL, func(c *DeliverConfig) { c.Timeout = 30 * time.Second })
		rep, err := replayer.Replay(ctxT(t), nil, true)
		if err != nil || rep.Failed != nil {
			t.Fatalf("replay %+v %v", rep, err)
		}
		waitFor(t, 20*time.Second, "the event parked during the replay delivered", allDelivered(p, map[string]bool{parked: true}))
		if _, err := f.lib.ChangeStatus(ctxT(t), lic, license.OpRevoke, "x", "app"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "a later event", allDelivered(p, map[string]bool{lic + "/revoke/3": true}))
		checkOrder(t, p, []string{lic}, license.OpSuspend, license.OpRestore, license.OpRevoke)
		if dl, err := d.DeadLetters(ctxT(t)); err != nil || len(dl) != 0 {
			t.Errorf("dead letters left: %+v %v", dl, err)
		}
	})
}

// lockWatchKV closes waiting the first time a SetNX of key finds it taken
// (a deliverer waiting for a license's lane lock).
type lockWatchKV struct {
	licensehub.KV
	key     string
	waiting chan struct{}
	once    sync.Once
}

func (k *lockWatchKV) SetNX(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	ok, err := k.KV.SetNX(ctx, key, v, ttl)
	if err == nil && !ok && key == k.key {
		k.once.Do(func() { close(k.waiting) })
	}
	return ok, err
}

// TestBlockedMarkersRebuiltFromDeadLetters: the KV lost the blocked
// markers and the dead letter set; a new leader rebuilds them from the
// dead letter objects, and a later event is parked, not delivered.
func TestBlockedMarkersRebuiltFromDeadLetters(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		lic := f.push(t, 1, license.OpSuspend)
		p.mu.Lock()
		p.reject[lic+"/new"] = true
		p.mu.Unlock()
		d := f.deliverer(t, p.srv.URL, nil)
		stop := start(t, d)
		waitFor(t, time.Minute, "two dead letters", func() bool {
			dl, err := d.DeadLetters(ctxT(t))
			return err == nil && len(dl) == 2
		})
		stop()
		for _, k := range []string{blockedKey + lic, DLQKey} {
			if err := b.kv.Delete(ctxT(t), k); err != nil {
				t.Fatal(err)
			}
		}
		p.mu.Lock()
		p.reject = map[string]bool{}
		p.mu.Unlock()
		later := lic + "/restore/2"
		if _, err := f.lib.ChangeStatus(ctxT(t), lic, license.OpRestore, "x", "app"); err != nil {
			t.Fatal(err)
		}
		start(t, f.deliverer(t, p.srv.URL, nil))
		waitFor(t, 20*time.Second, "the later event parked", func() bool {
			_, err := b.objects.Head(ctxT(t), DLQObject(later))
			return err == nil || p.delivered()[later] > 0
		})
		if p.delivered()[later] > 0 {
			t.Fatalf("%s delivered past the dead letter %s/new", later, lic)
		}
		if v, err := b.kv.Get(ctxT(t), blockedKey+lic); err != nil || string(v) != lic+"/new" {
			t.Errorf("blocked marker %q %v", v, err)
		}
		waitFor(t, 20*time.Second, "the dead letter set rebuilt", func() bool {
			m, err := b.kv.SMembers(ctxT(t), DLQKey)
			return err == nil && len(m) == 3
		})
	})
}
