// Package httpretry holds the pieces of retryablehttp policy that the
// upstream client (adapters/upstream) and the exchange's deliverer share:
// reading Retry-After and capped exponential backoff with equal jitter.
package httpretry

import (
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After value: delta-seconds (capped at
// 2^31) or an HTTP date (a past one is 0).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<31)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// RetryAfter is the wait a 429 or 503 response asks for in Retry-After;
// false for other responses and when the header is missing or unreadable.
func RetryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	return ParseRetryAfter(resp.Header.Get("Retry-After"), now)
}

// Jitter is capped exponential backoff with equal jitter: half of
// min(maxD, minD·2^attempt) plus a random share of the other half.
func Jitter(minD, maxD time.Duration, attempt int) time.Duration {
	d := maxD
	if attempt < 30 {
		d = min(maxD, minD<<uint(attempt))
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + time.Duration(mrand.Int64N(int64(d-half)+1))
}

// Backoff is a retryablehttp.Backoff: the Retry-After of a 429 or 503
// (at most maxRetryAfter) when it gives one, else Jitter.
func Backoff(minD, maxD time.Duration, attempt int, resp *http.Response, now time.Time, maxRetryAfter time.Duration) time.Duration {
	if d, ok := RetryAfter(resp, now); ok {
		return min(d, maxRetryAfter)
	}
	return Jitter(minD, maxD, attempt)
}
