// Package simtest serves the upstream simulator on a loopback port for
// tests, with a resilient client of the hub already pointed at it.
package simtest

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/upstream"
)

// Start serves sim.New(cfg) and returns it with an upstream client named
// name that reaches it (short backoffs, 2 attempts, 2 s per attempt; tune
// adjusts the client's configuration). Everything stops when tb ends.
func Start(tb testing.TB, cfg sim.Config, name string, tune func(*upstream.Config)) (*sim.Server, *upstream.Client) {
	tb.Helper()
	s := sim.New(cfg)
	ts := httptest.NewServer(s)
	c := Client(tb, s, ts.URL, name, tune)
	tb.Cleanup(func() {
		s.Close() // release hanging requests before the server waits for them
		ts.Close()
	})
	return s, c
}

// Client returns another upstream client named name for the simulator s
// served at url; it is closed when tb ends.
func Client(tb testing.TB, s *sim.Server, url, name string, tune func(*upstream.Config)) *upstream.Client {
	tb.Helper()
	ucfg := s.UpstreamConfig(name, url)
	ucfg.Timeout, ucfg.MaxAttempts, ucfg.MinBackoff, ucfg.MaxBackoff = 2*time.Second, 2, time.Millisecond, 5*time.Millisecond
	if tune != nil {
		tune(&ucfg)
	}
	c, err := upstream.New(ucfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}
