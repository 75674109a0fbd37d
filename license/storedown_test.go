package license

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// TestObjectStoreDownDuringPushes stops MinIO (a proxy in front of it) in
// the middle of a stream of pushes (once 20 have ended, with others in
// flight), then brings it back (once 8 have failed): every push that
// succeeded is readable, every failure is "object store unavailable" or
// (after the license object was written) OUTCOME_UNKNOWN, no
// index entry points at nothing, and retrying the failed pushes completes
// them.
func TestObjectStoreDownDuringPushes(t *testing.T) {
	m := testenv.RequireMinIO(t)
	proxy := testenv.NewProxy(t, m.Endpoint)
	objs := openMinIO(t, proxy.Addr())
	kv := openRedis(t)
	b := backend{name: "minio-via-proxy+redis", objects: objs, kv: kv}
	f := newFixture(t, b)
	f.lib.cfg.OpTimeout = 2 * time.Second
	ctx := ctxT(t)

	const workers, perWorker = 4, 30
	type outcome struct {
		req PushRequest
		res *PushResult
		err error
	}
	const downAfter, upAfterFailures = 20, 8
	var mu sync.Mutex
	var outcomes []outcome
	failures := 0
	down, up := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				req := sampleRequest(fmt.Sprintf("DOWN-%d-%d", w, i))
				if i%3 == 0 {
					req.IdempotencyKey = req.Number
					req.Attachment = &AttachmentData{MediaType: "application/pdf", Data: []byte("scan " + req.Number)}
				}
				t0 := time.Now()
				res, err := f.lib.Push(ctx, req)
				if err != nil && testing.Verbose() {
					t.Logf("%s %v after %v: %v", t0.Format("05.000"), req.Number, time.Since(t0), err)
				}
				mu.Lock()
				outcomes = append(outcomes, outcome{req, res, err})
				if err != nil {
					failures++
				}
				if len(outcomes) == downAfter {
					close(down)
				}
				if failures == upAfterFailures && err != nil {
					close(up)
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // pace
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for _, step := range []struct {
		at   chan struct{}
		what string
		do   func()
	}{{down, "stop", proxy.Stop}, {up, "restart", func() { proxy.Start(t) }}} {
		select {
		case <-step.at:
			step.do()
		case <-finished:
			t.Fatalf("the pushes ended before the store's %s (%d ended, %d failed)", step.what, len(outcomes), failures) // no worker left
		}
	}
	<-finished

	ok, failed := 0, 0
	for _, o := range outcomes {
		if o.err == nil {
			ok++
			continue
		}
		failed++
		// Failing before the license object: OBJECT_STORE_UNAVAILABLE;
		// after it (the outbox object): OUTCOME_UNKNOWN.
		var e *licensehub.Error
		switch {
		case !errors.As(o.err, &e):
			t.Errorf("push %s failed with %v, want a licensehub error", o.req.Number, o.err)
		case e.Code == licensehub.EOBJECTSTORE && strings.Contains(e.Message, "object store unavailable"):
		case e.Code == licensehub.EOUTCOMEUNKNOWN && strings.Contains(e.Message, "retry with the same Idempotency-Key"):
		default:
			t.Errorf("push %s failed with %v, want OBJECT_STORE_UNAVAILABLE or OUTCOME_UNKNOWN", o.req.Number, o.err)
		}
	}
	t.Logf("%d pushes succeeded, %d failed while the object store was down", ok, failed)
	if failed == 0 || ok == 0 {
		t.Fatalf("the outage did not fall in the middle of the stream (%d ok, %d failed)", ok, failed)
	}
	for _, o := range outcomes {
		if o.err != nil {
			continue
		}
		rec, err := f.lib.Get(ctx, o.res.Identifier)
		if err != nil || string(rec.Document) != string(o.res.Document) {
			t.Fatalf("acknowledged %s not readable: %v", o.res.Identifier, err)
		}
	}
	checkIndexResolves(t, kv, objs)

	// Retrying the failed pushes completes them.
	for _, o := range outcomes {
		if o.err == nil {
			continue
		}
		res, err := f.lib.Push(ctx, o.req)
		if err != nil {
			t.Fatalf("retry of %s: %v", o.req.Number, err)
		}
		if _, err := f.lib.Get(ctx, res.Identifier); err != nil {
			t.Fatal(err)
		}
	}
	checkIndexResolves(t, kv, objs)
	if n := countObjects(t, objs, licensesPrefix); n != workers*perWorker {
		t.Fatalf("%d license objects, want %d", n, workers*perWorker)
	}
	sums, err := f.lib.ByHolder(ctx, holderCredit)
	if err != nil || len(sums) != workers*perWorker {
		t.Fatalf("ByHolder finds %d of %d: %v", len(sums), workers*perWorker, err)
	}
}

// checkIndexResolves: every lic:id entry and every lic:holder member names
// a license object that exists. While the store is unreachable the HEADs
// fail; then only the entries are listed.
func checkIndexResolves(t *testing.T, rs *redisstore.Store, objs licensehub.ObjectStore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	redis := rs
	idKeys, err := redis.Client().Keys(ctx, rs.Key(kvID+"*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string) {
		_, err := objs.Head(ctx, licenseKey(id))
		switch {
		case licensehub.IsCode(err, licensehub.ENOTFOUND):
			t.Errorf("index entry %s points at nothing", id)
		case err != nil:
			// store down: cannot check now
		}
	}
	for _, k := range idKeys {
		check(strings.TrimPrefix(k, rs.Key(kvID)))
	}
	holderKeys, err := redis.Client().Keys(ctx, rs.Key(kvHolder+"*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, hk := range holderKeys {
		members, err := redis.Client().SMembers(ctx, hk).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range members {
			check(id)
		}
	}
}
