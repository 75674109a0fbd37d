package lease_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/lease"
	"github.com/licensehub/licensehub/store/mem"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// TestMain fails the package if a Hold's renewal outlives its release.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// eachKV runs fn on the in-process KV and on Redis.
func eachKV(t *testing.T, fn func(t *testing.T, kv licensehub.KV)) {
	t.Run("memory", func(t *testing.T) {
		s := mem.New()
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		url := testenv.RequireRedis(t)
		prefix := testenv.Name(t) + ":"
		s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if keys, err := s.Client().Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
				s.Client().Del(ctx, keys...)
			}
			_ = s.Close()
		})
		fn(t, s)
	})
}

const key = "job:lease"

// opts is a lease long enough that no test depends on it expiring; the
// tests that need an expiry force it (delete the key) at a chosen call.
func opts(owner string, fenced bool) lease.Options {
	return lease.Options{Owner: owner, TTL: time.Minute, Fenced: fenced}
}

func TestAcquireRelease(t *testing.T) {
	eachKV(t, func(t *testing.T, kv licensehub.KV) {
		ctx := t.Context()
		a, err := lease.Acquire(ctx, kv, key, opts("host-a:1/x", false))
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		if _, err := lease.Acquire(ctx, kv, key, opts("host-b:2", false)); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("second Acquire: %v, want ErrHeld", err)
		}
		if who, err := lease.Holder(ctx, kv, key); err != nil || who != "host-a:1/x" {
			t.Fatalf("Holder = %q, %v; want the owner with its '/'", who, err)
		}
		if a.Token() != 0 {
			t.Fatalf("Token of an unfenced lease = %d, want 0", a.Token())
		}
		if err := a.Keep(ctx); err != nil {
			t.Fatalf("Keep: %v", err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if err := a.Keep(ctx); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Keep after Release: %v, want ErrLost", err)
		}
		if who, err := lease.Holder(ctx, kv, key); err != nil || who != "" {
			t.Fatalf("Holder after Release = %q, %v; want nobody", who, err)
		}
		b, err := lease.Acquire(ctx, kv, key, opts("host-b:2", false))
		if err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		// a's late release must not free b's lease.
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if who, _ := lease.Holder(ctx, kv, key); who != "host-b:2" {
			t.Fatalf("Holder after the old holder's second Release = %q, want host-b:2", who)
		}
		_ = b.Release(ctx)
	})
}

func TestFencingTokens(t *testing.T) {
	eachKV(t, func(t *testing.T, kv licensehub.KV) {
		ctx := t.Context()
		var last int64
		for i := range 3 {
			l, err := lease.Acquire(ctx, kv, key, opts("h", true))
			if err != nil {
				t.Fatal(err)
			}
			if l.Token() <= last {
				t.Fatalf("holder %d got token %d, not above the previous %d", i, l.Token(), last)
			}
			last = l.Token()
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}

		// The counter was lost (a KV restarted empty): Raise lifts the
		// token above what the durable work carries.
		if err := kv.Delete(ctx, lease.FenceKey(key)); err != nil {
			t.Fatal(err)
		}
		l, err := lease.Acquire(ctx, kv, key, opts("h", true))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		if l.Token() != 1 {
			t.Fatalf("token after the counter was lost = %d, want 1", l.Token())
		}
		cases := []struct {
			floor, want int64
		}{
			{0, 1},   // already above
			{41, 42}, // lifted
			{41, 42}, // again: no change
			{42, 43},
		}
		for _, tc := range cases {
			got, err := l.Raise(ctx, tc.floor)
			if err != nil || got != tc.want || l.Token() != tc.want {
				t.Fatalf("Raise(%d) = %d, %v (Token %d); want %d", tc.floor, got, err, l.Token(), tc.want)
			}
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := lease.Acquire(ctx, kv, key, opts("h", true))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Release(ctx)
		if n.Token() != 44 {
			t.Fatalf("next holder's token = %d, want 44", n.Token())
		}
	})
}

// raceKV forces the lease to expire at a chosen call: on the renewal
// (CompareAndExpire) number `at` of key, before passing it on, it deletes
// the key, as an expiry would, and lets the next holder take it.
type raceKV struct {
	licensehub.KV
	at     int64
	calls  atomic.Int64
	steal  func()    // runs once, at call `at`
	denied chan bool // receives each renewal's answer after call `at`
}

func (k *raceKV) CompareAndExpire(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	n := k.calls.Add(1)
	if n == k.at {
		k.steal()
	}
	ok, err := k.KV.CompareAndExpire(ctx, key, v, ttl)
	if n >= k.at && err == nil {
		select {
		case k.denied <- !ok:
		default:
		}
	}
	return ok, err
}

// TestRenewalRace is the race of issue 14: the old holder's lease expires
// between its check and its renewal and a new holder takes it. The old
// holder's renewal must fail, its context must end with ErrLost (it steps
// down), and the new holder's lease must be intact: still its value, still
// renewable, and its fencing token larger.
func TestRenewalRace(t *testing.T) {
	for _, tc := range []struct {
		name            string
		fenced, patient bool
	}{
		{"unfenced", false, false},
		{"fenced", true, false},
		{"fenced patient", true, true}, // an expired lease it may take again, not a taken one
	} {
		fenced := tc.fenced
		t.Run(tc.name, func(t *testing.T) {
			eachKV(t, func(t *testing.T, kv licensehub.KV) {
				ctx := t.Context()
				var b *lease.Lease
				rk := &raceKV{KV: kv, denied: make(chan bool, 1)}
				// Acquire's own proof is call 1 of a fenced lease: the
				// race is at the first renewal Hold makes.
				rk.at = 1
				if fenced {
					rk.at = 2
				}
				rk.steal = func() {
					if err := kv.Delete(ctx, key); err != nil {
						t.Error(err)
						return
					}
					var err error
					if b, err = lease.Acquire(ctx, kv, key, opts("host-b", fenced)); err != nil {
						t.Errorf("new holder's Acquire: %v", err)
					}
				}
				// A short TTL only makes Hold renew soon; nothing depends
				// on when: the expiry is forced at the call.
				a, err := lease.Acquire(ctx, rk, key, lease.Options{Owner: "host-a", TTL: 300 * time.Millisecond, Fenced: fenced, Patient: tc.patient})
				if err != nil {
					t.Fatal(err)
				}
				held, release := a.Hold(ctx)
				defer release()
				waitDone(t, held, "the old holder to step down")
				if cause := context.Cause(held); !errors.Is(cause, lease.ErrLost) {
					t.Fatalf("old holder's context ended with %v, want ErrLost", cause)
				}
				if denied := <-rk.denied; !denied {
					t.Fatal("the old holder's renewal after the expiry succeeded")
				}
				if !a.Lost() {
					t.Fatal("old holder does not know it lost the lease")
				}
				release() // must not free the new holder's lease
				if t.Failed() || b == nil {
					return
				}
				defer b.Release(context.Background())
				if who, err := lease.Holder(ctx, kv, key); err != nil || who != "host-b" {
					t.Fatalf("Holder after the race = %q, %v; want host-b", who, err)
				}
				if err := b.Keep(ctx); err != nil {
					t.Fatalf("new holder's Keep: %v", err)
				}
				if err := a.Keep(ctx); !errors.Is(err, lease.ErrLost) {
					t.Fatalf("old holder's Keep after the race: %v, want ErrLost", err)
				}
				if fenced && b.Token() <= a.Token() {
					t.Fatalf("new holder's token %d is not above the old holder's %d", b.Token(), a.Token())
				}
			})
		})
	}
}

// downKV fails every renewal after the first `ok` calls.
type downKV struct {
	licensehub.KV
	ok    int64
	calls atomic.Int64
}

func (k *downKV) CompareAndExpire(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	if k.calls.Add(1) > k.ok {
		return false, licensehub.Errorf(licensehub.EUNAVAILABLE, "test: KV down")
	}
	return k.KV.CompareAndExpire(ctx, key, v, ttl)
}

// TestHoldStepsDownWhenUnproven: a holder whose renewals keep failing
// cannot prove the lease is still its own, and steps down before it may
// have expired.
func TestHoldStepsDownWhenUnproven(t *testing.T) {
	eachKV(t, func(t *testing.T, kv licensehub.KV) {
		dk := &downKV{KV: kv, ok: 2}
		l, err := lease.Acquire(t.Context(), dk, key, lease.Options{Owner: "a", TTL: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		held, release := l.Hold(t.Context())
		defer release()
		waitDone(t, held, "the holder to step down")
		if cause := context.Cause(held); !errors.Is(cause, lease.ErrLost) || !licensehub.IsCode(cause, licensehub.EUNAVAILABLE) {
			t.Fatalf("context ended with %v, want ErrLost and the KV's error", cause)
		}
		if n := dk.calls.Load(); n < 3 {
			t.Fatalf("stepped down after %d renewals, before any failed", n)
		}
		if !l.Lost() {
			t.Fatal("Lost = false after stepping down")
		}
	})
}

// TestPatientRetakesAnExpiredLease: a patient lease whose key expired
// (the KV was away, or lost it) and that nobody took is taken again by the
// next renewal, with the same token; an impatient one is lost.
func TestPatientRetakesAnExpiredLease(t *testing.T) {
	eachKV(t, func(t *testing.T, kv licensehub.KV) {
		ctx := t.Context()
		for _, patient := range []bool{false, true} {
			l, err := lease.Acquire(ctx, kv, key, lease.Options{Owner: "a", TTL: time.Minute, Fenced: true, Patient: patient})
			if err != nil {
				t.Fatal(err)
			}
			tok := l.Token()
			if err := kv.Delete(ctx, key); err != nil { // expired
				t.Fatal(err)
			}
			err = l.Keep(ctx)
			switch {
			case patient && err != nil:
				t.Fatalf("patient Keep of an expired lease: %v, want it taken again", err)
			case !patient && !errors.Is(err, lease.ErrLost):
				t.Fatalf("Keep of an expired lease: %v, want ErrLost", err)
			}
			if patient {
				if who, _ := lease.Holder(ctx, kv, key); who != "a" || l.Token() != tok {
					t.Fatalf("after the retake: holder %q token %d, want a and %d", who, l.Token(), tok)
				}
			}
			_ = l.Release(ctx)
		}
	})
}

func TestRun(t *testing.T) {
	eachKV(t, func(t *testing.T, kv licensehub.KV) {
		ctx := t.Context()
		o := opts("a", false)
		ran, err := lease.Run(ctx, kv, key, o, func(ctx context.Context, l *lease.Lease) error {
			// While fn runs, the lease is held.
			inner, err := lease.Run(ctx, kv, key, o, func(context.Context, *lease.Lease) error {
				t.Error("ran under a lease someone holds")
				return nil
			})
			if inner || err != nil {
				t.Errorf("nested Run = %v, %v; want false, nil", inner, err)
			}
			return errors.New("fn's error")
		})
		if !ran || err == nil || err.Error() != "fn's error" {
			t.Fatalf("Run = %v, %v; want true and fn's error", ran, err)
		}
		if who, _ := lease.Holder(ctx, kv, key); who != "" {
			t.Fatalf("Holder after Run = %q, want the lease released", who)
		}

		// The lease is lost while fn runs: fn's context ends (Hold's next
		// renewal finds the key gone) and Run reports ErrLost.
		short := lease.Options{Owner: "a", TTL: 300 * time.Millisecond}
		ran, err = lease.Run(ctx, kv, key, short, func(ctx context.Context, l *lease.Lease) error {
			if err := kv.Delete(ctx, key); err != nil {
				return err
			}
			waitDone(t, ctx, "fn's context to end")
			return ctx.Err()
		})
		if !ran || !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Run that lost its lease = %v, %v; want true, ErrLost", ran, err)
		}
	})
}

func TestBreak(t *testing.T) {
	eachKV(t, func(t *testing.T, kv licensehub.KV) {
		ctx := t.Context()
		l, err := lease.Acquire(ctx, kv, key, opts("dead-host:12", false))
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := lease.Break(ctx, kv, key, "dead-host:1"); ok || err != nil {
			t.Fatalf("Break by another owner name = %v, %v; want false, nil", ok, err)
		}
		if ok, err := lease.Break(ctx, kv, key, "dead-host:12"); !ok || err != nil {
			t.Fatalf("Break = %v, %v; want true, nil", ok, err)
		}
		if err := l.Keep(ctx); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Keep after Break: %v, want ErrLost", err)
		}
		if ok, err := lease.Break(ctx, kv, "missing", "x"); ok || err != nil {
			t.Fatalf("Break of a missing lease = %v, %v", ok, err)
		}
		// A value written by something else than Acquire is all owner.
		if err := kv.Set(ctx, key, []byte("thief"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if ok, err := lease.Break(ctx, kv, key, "thief"); !ok || err != nil {
			t.Fatalf("Break(thief) = %v, %v", ok, err)
		}
	})
}

// waitDone waits for ctx to end; the bound only turns a hang into a
// failure, nothing depends on it.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatalf("gave up waiting for %s", what)
	}
}
