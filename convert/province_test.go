package convert

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/license"
	fsstore "github.com/licensehub/licensehub/store/fs"
	memstore "github.com/licensehub/licensehub/store/mem"
	miniostore "github.com/licensehub/licensehub/store/minio"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// eachStore runs f on an fs object store with an in-memory KV and, when
// the test servers are configured, on MinIO with Redis.
func eachStore(t *testing.T, f func(t *testing.T, objs licensehub.ObjectStore, kv licensehub.KV)) {
	t.Run("fs+mem", func(t *testing.T) {
		objs, err := fsstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { objs.Close() })
		kv := memstore.New()
		t.Cleanup(func() { kv.Close() })
		f(t, objs, kv)
	})
	if os.Getenv("HUB_TEST_MINIO_ENDPOINT") == "" && os.Getenv("HUB_TEST_REQUIRE_BACKENDS") != "1" {
		return
	}
	t.Run("minio+redis", func(t *testing.T) {
		m := testenv.RequireMinIO(t)
		u := testenv.RequireRedis(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		objs, err := miniostore.Open(ctx, miniostore.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey,
			SecretKey: m.SecretKey, Bucket: m.Bucket(t), OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { objs.Close() })
		prefix := testenv.Name(t) + ":"
		kv, err := redisstore.Open(ctx, redisstore.Config{URL: u, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			kv.Close()
			testenv.CleanRedisPrefix(t, u, prefix)
		})
		testenv.CleanRedisPrefix(t, u, prefix)
		f(t, objs, kv)
	})
}

// TestStockExpiredLicenseToProvince: the stock conversion of a food
// business permit that lapsed in 2017 (recorded 05 at once, the type's
// record_expired) reaches the provincial platform as expired: the
// province simulator's view of it is 05 after delivery, from its one
// "new" event (no status event, nothing applied twice), a retry of the
// same push records nothing more, and both sides' day digests agree.
func TestStockExpiredLicenseToProvince(t *testing.T) {
	eachStore(t, func(t *testing.T, objs licensehub.ObjectStore, kv licensehub.KV) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		lib, ring := stockLibraryOn(t, objs, kv)
		req, rj := foodMapping(t).Request(Row{Line: 3, Values: expiredPermitRow()}, "job-1")
		if rj != nil {
			t.Fatalf("reject %+v", rj)
		}
		res, err := lib.Push(ctx, req)
		if err != nil || !res.Created {
			t.Fatalf("push: %+v, %v", res, err)
		}
		id := res.Identifier
		// The runner retries a row whose answer it lost: the same license,
		// no new event.
		again, err := lib.Push(ctx, req)
		if err != nil || again.Created || again.Identifier != id {
			t.Fatalf("retry: %+v, %v", again, err)
		}
		if n, err := kv.XLen(ctx, license.OutboxStream); err != nil || n != 1 {
			t.Fatalf("outbox stream holds %d entries (%v); want the one new event", n, err)
		}

		sim := provsim.New(provsim.Config{HubKeys: ring.Export()})
		ts := httptest.NewServer(sim)
		t.Cleanup(func() { sim.Close(); ts.Close() })
		d, err := exchange.NewDeliverer(exchange.DeliverConfig{Objects: objs, KV: kv, Licenses: lib, Signers: ring,
			Authority: demoAuth, ProvinceURL: ts.URL, Concurrency: 2, MaxAttempts: 4, LeaseTTL: 3 * time.Second,
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 20 * time.Millisecond,
			CheckpointEvery: 50 * time.Millisecond, OpTimeout: 5 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		dctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); d.Run(dctx) }()
		defer func() { stop(); <-done }()

		// Generous: it returns as soon as the province has it.
		var view provsim.View
		for ok := false; !ok; {
			if ctx.Err() != nil {
				t.Fatalf("the province never received %s", id)
			}
			view, ok = sim.View(id)
			time.Sleep(10 * time.Millisecond)
		}
		if view.Status != string(license.StatusExpired) || view.Seq != 0 || len(view.Events) != 1 || view.Events[0] != id+"/new" {
			t.Fatalf("province's view %+v; want 05 from the new event alone", view)
		}
		if st := sim.Stats(); st.Applied != 1 || st.Duplicates != 0 || st.OutOfOrder != 0 {
			t.Fatalf("province stats %+v", st)
		}
		day := testToday.UTC().Format(exchange.DateLayout)
		r := &exchange.Reconciler{Objects: objs, ProvinceURL: ts.URL}
		prov, err := r.ProvinceDigest(ctx, day)
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := r.Reconcile(ctx, day, prov); err != nil || !rep.Equal || rep.Hub.Count != 1 {
			t.Fatalf("reconcile %s: %+v, %v", day, rep, err)
		}
	})
}
