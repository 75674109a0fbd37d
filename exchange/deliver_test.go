package exchange

import (
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
		waitFor(t, 30*time.Second, "every event delivered", allDelivered(p, want))
		waitFor(t, 10*time.Second, "the cursor past everything", func() bool {
			cur, err := b.kv.Get(ctxT(t), CursorKey)
			if err != nil {
				return false
			}
			rest, err := b.kv.XRange(ctxT(t), license.OutboxStream, string(cur), 10)
			return err == nil && len(rest) == 0
		})
		stop()
		checkOrder(t, p, ids, license.OpSuspend, license.OpRestore)
		if dl, err := d.DeadLetters(ctxT(t)); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters: %v %v", dl, err)
		}
		// The cursor is past everything: a new leader sends nothing again.
		before := p.delivered()
		stop2 := start(t, f.deliverer(t, p.srv.URL, nil))
		time.Sleep(300 * time.Millisecond)
		stop2()
		after := p.delivered()
		for id, n := range after {
			if before[id] != n {
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
