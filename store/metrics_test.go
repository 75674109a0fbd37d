package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/store"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
)

// The decorators must pass results through unchanged and count only real
// failures: a missing key or a lost create race is an answer.
func TestMetricsCountFailuresNotAnswers(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := store.NewMetrics(reg)
	ctx := context.Background()

	memKV := mem.New()
	defer memKV.Close()
	kv := m.KV(memKV, "memory")
	if _, err := kv.Get(ctx, "missing"); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := kv.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Incr(ctx, "k", 1, 0); err == nil { // WRONGTYPE-like failure
		t.Fatal("Incr on a non-integer succeeded")
	}

	fsStore, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	objs := m.Objects(fsStore, "filesystem")
	if _, err := objs.Create(ctx, "a/b", strings.NewReader("x"), 1, licensehub.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := objs.Create(ctx, "a/b", strings.NewReader("y"), 1, licensehub.PutOptions{}); !licensehub.IsCode(err, licensehub.ECONFLICT) {
		t.Fatalf("second Create: %v", err)
	}
	if _, err := objs.Head(ctx, "../bad"); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Fatalf("Head bad key: %v", err)
	}

	const errs = "licensehub_store_operation_errors_total"
	want := `
# HELP licensehub_store_operation_errors_total Failed storage operations by store, backend, operation and error code.
# TYPE licensehub_store_operation_errors_total counter
licensehub_store_operation_errors_total{backend="filesystem",code="INVALID_ARGUMENT",op="head",store="objects"} 1
licensehub_store_operation_errors_total{backend="memory",code="INVALID_ARGUMENT",op="incr",store="kv"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), errs); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "licensehub_store_operation_duration_seconds"); n != 5 {
		t.Errorf("latency series: %d, want 5 (one per store/backend/op)", n)
	}
}
