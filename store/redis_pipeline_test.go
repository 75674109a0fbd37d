package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
)

// TestRedisPipelining: the store sends concurrent commands as shared
// pipelines (store/redis/pipeline.go). Every caller must still get its own
// reply, a caller whose context ends while its command waits gets its own
// error (and the others are unaffected), and Close leaves no flusher
// running (goleak in TestMain).
func TestRedisPipelining(t *testing.T) {
	url := testenv.RequireRedis(t)
	s := openRedis(t, url, testenv.Name(t)+":")
	ctx := t.Context()

	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, val := fmt.Sprintf("k%d", i), fmt.Sprintf("value-%d", i)
			if err := s.Set(ctx, key, []byte(val), time.Minute); err != nil {
				errs <- err
				return
			}
			got, err := s.Get(ctx, key)
			switch {
			case err != nil:
				errs <- err
			case string(got) != val:
				errs <- fmt.Errorf("GET %s answered %q, want %q: replies crossed", key, got, val)
			}
			if c, err := s.Incr(ctx, "counter", 1, time.Minute); err != nil || c < 1 {
				errs <- fmt.Errorf("INCR: %d %v", c, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if raw, err := s.Get(ctx, "counter"); err != nil || string(raw) != fmt.Sprint(n) {
		t.Errorf("counter = %s %v, want %d", raw, err, n)
	}

	// A missing key is still ENOTFOUND, alone in its pipeline or not.
	if _, err := s.Get(ctx, "absent"); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Errorf("GET absent: %v", err)
	}
	// An ended context is the caller's error, not the batch's.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(done, "k1"); !licensehub.IsCode(err, licensehub.ETIMEOUT) {
		t.Errorf("GET with an ended context: %v", err)
	}
	if got, err := s.Get(ctx, "k1"); err != nil || string(got) != "value-1" {
		t.Errorf("GET after a cancelled one: %q %v", got, err)
	}
}
