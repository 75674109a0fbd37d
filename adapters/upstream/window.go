package upstream

import (
	"slices"
	"sync"
	"time"
)

// window keeps the last n attempts no older than age for Status.
type window struct {
	mu   sync.Mutex
	age  time.Duration
	buf  []sample
	next int
	full bool
}

type sample struct {
	at     time.Time
	lat    time.Duration
	failed bool
}

func newWindow(n int, age time.Duration) *window {
	return &window{age: age, buf: make([]sample, n)}
}

func (w *window) add(at time.Time, lat time.Duration, failed bool) {
	w.mu.Lock()
	w.buf[w.next] = sample{at: at, lat: lat, failed: failed}
	w.next++
	if w.next == len(w.buf) {
		w.next, w.full = 0, true
	}
	w.mu.Unlock()
}

// summary returns the count, error rate and latency p50/p95 (ms) of the
// samples newer than now-age.
func (w *window) summary(now time.Time) (int64, float64, float64, float64) {
	w.mu.Lock()
	n := w.next
	if w.full {
		n = len(w.buf)
	}
	cut := now.Add(-w.age)
	lats := make([]time.Duration, 0, n)
	failed := 0
	for i := 0; i < n; i++ {
		s := w.buf[i]
		if s.at.Before(cut) {
			continue
		}
		lats = append(lats, s.lat)
		if s.failed {
			failed++
		}
	}
	w.mu.Unlock()
	if len(lats) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		i := int(p*float64(len(lats)-1) + 0.5)
		return float64(lats[i].Microseconds()) / 1000
	}
	return int64(len(lats)), float64(failed) / float64(len(lats)), pct(0.50), pct(0.95)
}
