package upstream

import (
	"context"
	"encoding/json"
	"sync"
)

// flight is one shared upstream call. golang.org/x/sync is not a dependency
// of the module, so this is a small singleflight with per-caller contexts:
// a caller that leaves does not fail the others; when the last one leaves,
// the shared call is cancelled.
type flight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	val     json.RawMessage
	err     error
	waiters int
}

type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

// do joins the flight for key or starts one with start; it waits for the
// result or for ctx to end.
func (g *flightGroup) do(ctx context.Context, key string, start func() *flight) (json.RawMessage, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*flight)
	}
	f, ok := g.m[key]
	if !ok {
		f = start()
		g.m[key] = f
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		g.leave(f, false)
		return f.val, f.err
	case <-ctx.Done():
		g.leave(f, true)
		return nil, ctx.Err()
	}
}

// forget removes a landed flight so that later queries start afresh; the
// shared call runs it just before closing f.done.
func (g *flightGroup) forget(key string, f *flight) {
	g.mu.Lock()
	if g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
}

func (g *flightGroup) leave(f *flight, abandon bool) {
	g.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if abandon && last {
		// Nobody wants the answer any more: stop the call, and let the next
		// identical query start afresh instead of joining a dying flight.
		for k, v := range g.m {
			if v == f {
				delete(g.m, k)
			}
		}
	}
	g.mu.Unlock()
	if abandon && last {
		f.cancel()
	}
}
