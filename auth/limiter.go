package auth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/licensehub/licensehub"
)

// Counter counts requests in shared, expiring counters; licensehub.KV
// satisfies it (store/redis shares the counts across hub instances).
type Counter interface {
	// Incr adds delta to the integer at key and returns the new value;
	// when it creates the key it sets ttl.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}

// Limiter enforces each member's rate limit with one counter per app and
// fixed window, key "rl:<app>:<window start, Unix seconds>". Windows are
// aligned to multiples of the member's Per since the Unix epoch, so every
// hub instance sharing the Counter counts into the same key.
//
// Fixed windows are a trade-off: they cost one Incr per request and no
// coordination, but a member can send up to twice its limit in a short
// span straddling a window boundary (a full window's worth at the end of
// one window and again at the start of the next). A sliding window would
// smooth that at the price of more state per app; the limit here protects
// the hub from runaway callers rather than metering them exactly. Requests
// refused still count, so a caller hammering the hub stays refused until
// the window ends.
type Limiter struct {
	counter Counter
	now     func() time.Time
}

// NewLimiter returns a Limiter counting in c (WithClock applies). It
// panics when c is nil.
func NewLimiter(c Counter, opts ...Option) *Limiter {
	if c == nil {
		panic("auth.NewLimiter: nil counter")
	}
	o := buildOptions(opts)
	return &Limiter{counter: c, now: o.now}
}

// Allow counts one request of m. Within m's limit it returns (0, nil).
// Over it, it returns how long until the window ends (whole seconds, at
// least 1s: the Retry-After) and an ERATELIMITED *licensehub.Error with
// Details "retry_after_seconds", "limit" and "per" (e.g. "1s"). A failing
// Counter gives EUNAVAILABLE; whether to let the request through then is
// the caller's choice.
func (l *Limiter) Allow(ctx context.Context, m *Member) (retryAfter time.Duration, err error) {
	rl := m.rateLimit
	per := int64(rl.Per / time.Second)
	if per < 1 || rl.Requests < 1 { // only a Member not made by LoadRegistry
		return 0, licensehub.Errorf(licensehub.EINTERNAL, "rate limit of %s is not set", m.appID)
	}
	now := l.now()
	start := now.Unix() - mod(now.Unix(), per)
	key := "rl:" + m.appID + ":" + strconv.FormatInt(start, 10)
	// The key lives for two windows, not one: a hub whose clock runs a
	// little behind may still count into it after the window ended for
	// the store, and must not recreate it at 1.
	n, err := l.counter.Incr(ctx, key, 1, 2*rl.Per)
	if err != nil {
		return 0, &licensehub.Error{
			Code:    licensehub.EUNAVAILABLE,
			Message: "rate limiting is unavailable: the counter store failed",
			Err:     err,
		}
	}
	if n <= int64(rl.Requests) {
		return 0, nil
	}
	wait := time.Unix(start+per, 0).Sub(now)
	secs := int64((wait + time.Second - 1) / time.Second) // ceil
	if secs < 1 {
		secs = 1
	}
	return time.Duration(secs) * time.Second, &licensehub.Error{
		Code:    licensehub.ERATELIMITED,
		Message: fmt.Sprintf("%s is over its rate limit of %d requests per %s; retry in %ds", m.appID, rl.Requests, rl.Per, secs),
		Details: map[string]any{"retry_after_seconds": secs, "limit": rl.Requests, "per": rl.Per.String()},
	}
}

// mod is the non-negative remainder of a / b (b > 0).
func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}
