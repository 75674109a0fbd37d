package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
	miniostore "github.com/licensehub/licensehub/store/minio"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testAuthority is the hub's own authority in these tests.
const testAuthority = "11430000006122244L"

var testHolderKey = []byte("0123456789abcdef-holder-key")

// keyring returns a keyring (in t.TempDir) with an active key of
// testAuthority, valid from an hour ago for a year.
func keyring(t testing.TB) *signing.Keyring {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	if _, err := signing.Generate(dir, testAuthority, now.Add(-time.Hour), now.Add(365*24*time.Hour), nil); err != nil {
		t.Fatalf("signing.Generate: %v", err)
	}
	k, err := signing.OpenKeyring(dir)
	if err != nil {
		t.Fatalf("signing.OpenKeyring: %v", err)
	}
	return k
}

// objectStores are the object stores the sealing tests run on.
var objectStores = []struct {
	name string
	open func(t testing.TB) licensehub.ObjectStore
}{
	{"fs", openFS},
	{"minio", openMinIO},
}

func openFS(t testing.TB) licensehub.ObjectStore {
	t.Helper()
	s, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatalf("fs.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openMinIO(t testing.TB) licensehub.ObjectStore {
	t.Helper()
	m := testenv.RequireMinIO(t)
	bucket := m.Bucket(t)
	s, err := miniostore.Open(t.Context(), miniostore.Config{
		Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket,
	})
	if err != nil {
		t.Fatalf("minio.Open(bucket %s): %v", bucket, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openMem(t testing.TB) licensehub.KV {
	t.Helper()
	s := mem.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openRedis opens the test Redis under a fresh prefix and deletes the
// prefix's keys when the test ends.
func openRedis(t testing.TB) licensehub.KV {
	t.Helper()
	url := testenv.RequireRedis(t)
	prefix := testenv.Name(t) + ":"
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatalf("redis.Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := deletePrefix(ctx, s.Client(), prefix); err != nil {
			t.Errorf("deleting test keys %s*: %v", prefix, err)
		}
		_ = s.Close()
	})
	return s
}

func deletePrefix(ctx context.Context, c *goredis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		return err
	}
	return c.Unlink(ctx, keys...).Err()
}

// hub is one hub instance's trail and what it runs on.
type hub struct {
	*Trail
	journal Journal
	objects licensehub.ObjectStore
	keys    *signing.Keyring
	lock    licensehub.KV
}

type hubOption func(*Config)

func withSegmentSize(n int) hubOption  { return func(c *Config) { c.SegmentSize = n } }
func withInstance(id string) hubOption { return func(c *Config) { c.InstanceID = id } }
func withScanLimit(n int) hubOption    { return func(c *Config) { c.QueryScanLimit = n } }
func withInterval(d time.Duration) hubOption {
	return func(c *Config) { c.SealInterval = d }
}

// newHub builds a Trail over the given stores.
func newHub(t testing.TB, objects licensehub.ObjectStore, j Journal, keys *signing.Keyring, lock licensehub.KV, opts ...hubOption) *hub {
	t.Helper()
	cfg := Config{
		Journal: j, Objects: objects, Signers: keys, Authority: testAuthority, Lock: lock,
		HolderKey: testHolderKey, InstanceID: "hub-test", SegmentSize: 5,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	return &hub{Trail: tr, journal: j, objects: objects, keys: keys, lock: lock}
}

// newStreamHub builds a hub over objects with a stream journal on a fresh
// in-memory KV, which also holds the lock.
func newStreamHub(t testing.TB, objects licensehub.ObjectStore, opts ...hubOption) *hub {
	kv := openMem(t)
	return newHub(t, objects, NewStreamJournal(kv, "audit:journal"), keyring(t), kv, opts...)
}

var reqCounter atomic.Int64

// record returns a valid record with a unique request ID.
func record(app, op string) Record {
	return Record{
		AppID: app, Operation: op, Matter: "matter-1", Reason: "审批办理",
		Licenses: []string{"1.2.156.3005.2.11100000000000001X.11430000006122244L.000001.001.K"},
		Result:   ResultOK, RequestID: fmt.Sprintf("req-%d", reqCounter.Add(1)),
	}
}

func mustAppend(t testing.TB, h *hub, n int) []Record {
	t.Helper()
	var out []Record
	for range n {
		r := record("app-a", "license.read")
		if err := h.Append(t.Context(), r); err != nil {
			t.Fatalf("Append: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func mustSeal(t testing.TB, h *hub) SealResult {
	t.Helper()
	res, err := h.Seal(t.Context())
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if res.Busy {
		t.Fatalf("Seal: busy")
	}
	return res
}

func mustVerify(t testing.TB, objects licensehub.ObjectStore, keys signing.KeySource) *Report {
	t.Helper()
	rep, err := Verify(t.Context(), objects, keys, ExpectAuthority(testAuthority))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func wantOK(t testing.TB, rep *Report, segments, records int64) {
	t.Helper()
	if !rep.OK || rep.Problem != nil {
		t.Fatalf("Verify: not OK: %v", rep.Problem)
	}
	if rep.Segments != segments || rep.Records != records {
		t.Fatalf("Verify: %d segments, %d records; want %d, %d", rep.Segments, rep.Records, segments, records)
	}
}

func getObject(t testing.TB, objects licensehub.ObjectStore, key string) []byte {
	t.Helper()
	b, err := readObject(t.Context(), objects, key, maxSegmentSize)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

func putObject(t testing.TB, objects licensehub.ObjectStore, key string, data []byte) {
	t.Helper()
	if _, err := objects.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), licensehub.PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// segmentLines returns the lines of a segment (without newlines).
func segmentLines(t testing.TB, objects licensehub.ObjectStore, n int64) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range splitLines(getObject(t, objects, SegmentKey(n))) {
		out = append(out, bytes.Clone(l))
	}
	return out
}

func putLines(t testing.TB, objects licensehub.ObjectStore, n int64, lines [][]byte) {
	t.Helper()
	putObject(t, objects, SegmentKey(n), append(bytes.Join(lines, []byte("\n")), '\n'))
}

// allRecords pages through Query with f and returns every record.
func allRecords(t testing.TB, h *hub, f Filter) []Record {
	t.Helper()
	var out []Record
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("Query never ends")
		}
		p, err := h.Query(t.Context(), f)
		if err != nil {
			t.Fatalf("Query(%+v): %v", f, err)
		}
		out = append(out, p.Records...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

func requestIDs(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.RequestID
	}
	return out
}

// syncedClock is a settable clock for tests.
type syncedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *syncedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *syncedClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func asError(err error, e **licensehub.Error) bool { return errors.As(err, e) }

func contextWithCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
