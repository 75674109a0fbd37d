package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/internal/testenv"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// limitedYAML has a member allowed 3 requests per 1s and one allowed 5
// per 10s.
const limitedYAML = `
members:
  - app_id: fast
    name: Fast
    department: D
    roles: [approval_system]
    secret: env:S
    rate_limit: {requests: 3, per: 1s}
  - app_id: slow
    name: Slow
    department: D
    roles: [approval_system]
    secret: env:S
    rate_limit: {requests: 5, per: 10s}
`

// TestLimiter runs the same scenarios over a fake counter and the
// in-memory KV.
func TestLimiter(t *testing.T) {
	reg := loadRegistry(t, limitedYAML, env{"S": secret1})
	fast, _ := reg.Member("fast")
	slow, _ := reg.Member("slow")

	counters := map[string]func(t *testing.T) auth.Counter{
		"fake": func(*testing.T) auth.Counter { return newFakeCounter() },
		"mem":  func(t *testing.T) auth.Counter { return newKV(t) },
	}
	for name, newCounter := range counters {
		t.Run(name, func(t *testing.T) {
			t.Run("limit, retry-after, window reset", func(t *testing.T) {
				clk := newClock(t0.Add(200 * time.Millisecond))
				l := auth.NewLimiter(newCounter(t), auth.WithClock(clk.Now))
				for i := range 3 {
					if ra, err := l.Allow(t.Context(), fast); err != nil || ra != 0 {
						t.Fatalf("request %d: %s, %v", i+1, ra, err)
					}
				}
				ra, err := l.Allow(t.Context(), fast)
				checkLimited(t, ra, err, time.Second, 3, "1s")
				clk.Add(800 * time.Millisecond) // the next window
				if _, err := l.Allow(t.Context(), fast); err != nil {
					t.Fatalf("after the window reset: %v", err)
				}
			})
			t.Run("retry-after rounds up to the window end", func(t *testing.T) {
				clk := newClock(t0.Add(2500 * time.Millisecond)) // t0 is a multiple of 10s
				l := auth.NewLimiter(newCounter(t), auth.WithClock(clk.Now))
				for range 5 {
					if _, err := l.Allow(t.Context(), slow); err != nil {
						t.Fatal(err)
					}
				}
				ra, err := l.Allow(t.Context(), slow)
				checkLimited(t, ra, err, 8*time.Second, 5, "10s") // 7.5s left, rounded up
				clk.Add(7 * time.Second)
				ra, err = l.Allow(t.Context(), slow)
				checkLimited(t, ra, err, time.Second, 5, "10s") // 0.5s left: at least 1s
			})
			t.Run("two hub instances share one counter", func(t *testing.T) {
				clk := newClock(t0)
				c := newCounter(t)
				hub1 := auth.NewLimiter(c, auth.WithClock(clk.Now))
				hub2 := auth.NewLimiter(c, auth.WithClock(clk.Now))
				mustAllow(t, hub1, fast)
				mustAllow(t, hub2, fast)
				mustAllow(t, hub1, fast)
				ra, err := hub2.Allow(t.Context(), fast)
				checkLimited(t, ra, err, time.Second, 3, "1s")
				ra, err = hub1.Allow(t.Context(), fast)
				checkLimited(t, ra, err, time.Second, 3, "1s")
				clk.Add(time.Second)
				mustAllow(t, hub2, fast)
			})
			t.Run("members are counted apart", func(t *testing.T) {
				clk := newClock(t0)
				l := auth.NewLimiter(newCounter(t), auth.WithClock(clk.Now))
				for range 3 {
					mustAllow(t, l, fast)
				}
				mustAllow(t, l, slow)
			})
		})
	}
}

func TestLimiterKeysAndTTL(t *testing.T) {
	reg := loadRegistry(t, limitedYAML, env{"S": secret1})
	slow, _ := reg.Member("slow")
	fc := newFakeCounter()
	l := auth.NewLimiter(fc, auth.WithClock(func() time.Time { return t0.Add(13 * time.Second) }))
	mustAllow(t, l, slow)
	if len(fc.calls) != 1 || fc.calls[0].key != "rl:slow:1764144010" || fc.calls[0].ttl != 20*time.Second {
		t.Fatalf("Incr calls %+v, want rl:slow:1764144010 (the window start) with ttl 20s", fc.calls)
	}
}

func TestLimiterCounterDown(t *testing.T) {
	reg := loadRegistry(t, limitedYAML, env{"S": secret1})
	fast, _ := reg.Member("fast")
	cause := errors.New("redis: connection refused")
	l := auth.NewLimiter(counterFunc(func(context.Context, string, int64, time.Duration) (int64, error) { return 0, cause }))
	ra, err := l.Allow(t.Context(), fast)
	if licensehub.ErrorCode(err) != licensehub.EUNAVAILABLE || !errors.Is(err, cause) || ra != 0 {
		t.Fatalf("Allow = %s, %v; want EUNAVAILABLE wrapping the cause", ra, err)
	}
}

// TestSharedThroughRedis runs two hub instances, each with its own
// connection to a real Redis server: a rate limit is counted across both,
// and a request accepted by one is a replay for the other.
func TestSharedThroughRedis(t *testing.T) {
	url := testenv.RequireRedis(t)
	prefix := testenv.Name(t) + ":"
	open := func() *redisstore.Store {
		s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatalf("redis: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	kv1, kv2 := open(), open()
	reg := loadRegistry(t, limitedYAML, env{"S": secret1})
	fast, _ := reg.Member("fast")

	t.Run("rate limit", func(t *testing.T) {
		clk := newClock(time.Now().Truncate(time.Second).Add(-time.Hour)) // a window no other run uses
		hub1 := auth.NewLimiter(kv1, auth.WithClock(clk.Now))
		hub2 := auth.NewLimiter(kv2, auth.WithClock(clk.Now))
		// 20 concurrent requests through both hubs: exactly 3 pass.
		var wg sync.WaitGroup
		var mu sync.Mutex
		passed, limited := 0, 0
		for i := range 20 {
			l := hub1
			if i%2 == 1 {
				l = hub2
			}
			wg.Go(func() {
				_, err := l.Allow(context.Background(), fast)
				mu.Lock()
				defer mu.Unlock()
				switch licensehub.ErrorCode(err) {
				case "":
					passed++
				case licensehub.ERATELIMITED:
					limited++
				default:
					t.Errorf("Allow: %v", err)
				}
			})
		}
		wg.Wait()
		if passed != 3 || limited != 17 {
			t.Fatalf("%d passed, %d limited; want 3 and 17", passed, limited)
		}
		clk.Add(time.Second)
		mustAllow(t, hub2, fast)
	})

	t.Run("replay", func(t *testing.T) {
		hub1 := auth.NewAuthenticator(reg, kv1)
		hub2 := auth.NewAuthenticator(reg, kv2)
		creds := client.Credentials{AppID: "fast", Secret: []byte(secret1)}
		r := sign(t, creds, lookup, time.Now(), "")
		if _, err := hub1.Authenticate(t.Context(), r); err != nil {
			t.Fatalf("hub 1: %v", err)
		}
		if _, err := hub2.Authenticate(t.Context(), r); licensehub.ErrorCode(err) != licensehub.EAUTHREPLAY {
			t.Fatalf("hub 2: %v, want AUTH_REPLAY", err)
		}
	})
}

func checkLimited(t *testing.T, ra time.Duration, err error, wantRA time.Duration, limit int, per string) {
	t.Helper()
	e := codeOf(t, err)
	if e.Code != licensehub.ERATELIMITED {
		t.Fatalf("code %s (%v), want RATE_LIMITED", e.Code, err)
	}
	if ra != wantRA {
		t.Errorf("retry after %s, want %s", ra, wantRA)
	}
	if e.Details["retry_after_seconds"] != int64(wantRA/time.Second) || e.Details["limit"] != limit || e.Details["per"] != per {
		t.Errorf("details %v, want retry_after_seconds %d, limit %d, per %s", e.Details, wantRA/time.Second, limit, per)
	}
	if !strings.Contains(e.Message, "rate limit") {
		t.Errorf("message %q", e.Message)
	}
}

func mustAllow(t *testing.T, l *auth.Limiter, m *auth.Member) {
	t.Helper()
	if ra, err := l.Allow(t.Context(), m); err != nil || ra != 0 {
		t.Fatalf("Allow(%s) = %s, %v; want allowed", m.AppID(), ra, err)
	}
}

// fakeCounter is a minimal auth.Counter: counts per key, records calls,
// ignores expiry (the window start in the key resets counts).
type fakeCounter struct {
	mu     sync.Mutex
	counts map[string]int64
	calls  []incrCall
}

type incrCall struct {
	key string
	ttl time.Duration
}

func newFakeCounter() *fakeCounter { return &fakeCounter{counts: map[string]int64{}} }

func (f *fakeCounter) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, incrCall{key, ttl})
	f.counts[key] += delta
	return f.counts[key], nil
}

type counterFunc func(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)

func (f counterFunc) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	return f(ctx, key, delta, ttl)
}
