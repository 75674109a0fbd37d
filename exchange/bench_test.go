package exchange_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/license"
)

const benchConcurrency = 16

// BenchmarkDelivery: events delivered per second to the province
// simulator (no knobs). "hub" is the Deliverer reading the outbox the
// library wrote (stream, outbox objects, license reads, signing, per-
// license lanes, cursor); "raw-http-post" POSTs the same envelopes with
// net/http at the same concurrency. b.N is the number of events; the
// licenses are pushed before the timer starts.
func BenchmarkDelivery(b *testing.B) {
	bk := accFsMem(b)
	ring := accKeyring(b)
	lib := accLibrary(b, bk, ring)
	sim := provsim.New(provsim.Config{HubKeys: ring.Export()})
	ts := httptest.NewServer(sim)
	tr := &http.Transport{MaxIdleConnsPerHost: benchConcurrency}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		sim.Close()
		ts.Close()
	})
	ctx := context.Background()
	pushed := 0
	var envelopes [][]byte // the "raw" envelopes, sealed like the hub's
	push := func(n int) {
		for ; pushed < n; pushed++ {
			res, err := lib.Push(ctx, accPush(pushed))
			if err != nil {
				b.Fatal(err)
			}
			signer, err := ring.SignerFor(accHub, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			// Its own event ID, so that the simulator applies it (as it does
			// the hub's) rather than answering a duplicate.
			ev := exchange.Event{Sender: accHub, ID: res.Identifier + "/" + license.OpNew + "/raw", License: "raw/" + res.Identifier,
				Op: license.OpNew, Time: time.Now().UTC().Format("2006-01-02T15:04:05Z"), Document: res.Document}
			raw, err := exchange.Seal(ctx, signer, &ev, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			envelopes = append(envelopes, raw)
		}
	}

	b.Run("hub", func(b *testing.B) {
		base := sim.Stats().Applied
		push(pushed + b.N)
		b.ResetTimer()
		cfg := accDelivery(bk, lib, ring, ts.URL, tr)
		cfg.Concurrency = benchConcurrency
		stop := accStart(b, cfg)
		for sim.Stats().Applied < base+int64(b.N) {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		stop()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("raw-http-post", func(b *testing.B) {
		if len(envelopes) < b.N {
			push(b.N)
		}
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		b.ResetTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range benchConcurrency {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
					resp, err := hc.Post(ts.URL+"/v1/events", "application/json", bytes.NewReader(envelopes[i]))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Error(fmt.Errorf("HTTP %d", resp.StatusCode))
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
