package license

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing"
	fsstore "github.com/licensehub/licensehub/store/fs"
	memstore "github.com/licensehub/licensehub/store/mem"
	miniostore "github.com/licensehub/licensehub/store/minio"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

const (
	holderCredit   = "91350100M000100Y43"
	holderResident = "11010519491231002X"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// fieldsValidator stands in for *catalog.Type: legal_representative is a
// required string.
type fieldsValidator struct{}

func (fieldsValidator) Validate(l *License) error {
	v, ok := l.Fields["legal_representative"].(string)
	if !ok || v == "" {
		return licensehub.FieldError(licensehub.EINVALID, "fields.legal_representative", "required")
	}
	return nil
}

var testCatalog = CatalogFunc(func(code string) (Validator, bool) {
	if code == typeCode {
		return fieldsValidator{}, true
	}
	return nil, false
})

// backend is one object store + KV pair under test.
type backend struct {
	name    string
	objects licensehub.ObjectStore
	kv      licensehub.KV
	flushKV func(t testing.TB) // empties the KV (FLUSHALL of this test's keys)
	newKV   func(t testing.TB) licensehub.KV
}

func realBackendsWanted() bool {
	return os.Getenv("HUB_TEST_MINIO_ENDPOINT") != "" || os.Getenv("HUB_TEST_REQUIRE_BACKENDS") == "1"
}

func fsMemBackend(t testing.TB) backend {
	objs, err := fsstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	b := backend{name: "fs+mem", objects: objs}
	b.newKV = func(t testing.TB) licensehub.KV {
		kv := memstore.New()
		t.Cleanup(func() { kv.Close() })
		return kv
	}
	b.kv = b.newKV(t)
	return b
}

func openMinIO(t testing.TB, endpoint string) *miniostore.Store {
	m := testenv.RequireMinIO(t)
	if endpoint == "" {
		endpoint = m.Endpoint
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := miniostore.Open(ctx, miniostore.Config{Endpoint: endpoint, AccessKey: m.AccessKey,
		SecretKey: m.SecretKey, Bucket: m.Bucket(t), OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openRedis(t testing.TB) *redisstore.Store {
	u := testenv.RequireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := testenv.Name(t) + ":"
	s, err := redisstore.Open(ctx, redisstore.Config{URL: u, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		flushRedis(t, s)
		s.Close()
	})
	return s
}

// flushRedis deletes every key of this store's prefix: FLUSHALL for the
// test's namespace without touching other tests' keys.
func flushRedis(t testing.TB, s *redisstore.Store) {
	ctx := context.Background()
	keys, err := s.Client().Keys(ctx, s.Key("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := s.Client().Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func realBackend(t testing.TB) backend {
	objs := openMinIO(t, "")
	kv := openRedis(t)
	return backend{name: "minio+redis", objects: objs, kv: kv,
		flushKV: func(t testing.TB) { flushRedis(t, kv) }}
}

// eachBackend runs f over fs+mem and, when configured, MinIO+Redis.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("fs+mem", func(t *testing.T) { f(t, fsMemBackend(t)) })
	if realBackendsWanted() {
		t.Run("minio+redis", func(t *testing.T) { f(t, realBackend(t)) })
	}
}

var (
	keyringOnce sync.Once
	keyringDir  string
	keyringErr  error
)

// testKeyring has an active key for authorityA (valid 2020-2040).
func testKeyring(t testing.TB) *signing.Keyring {
	t.Helper()
	dir := t.TempDir()
	_, err := signing.Generate(dir, authorityA, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.OpenKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

var libNow = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

type fixture struct {
	lib   *Library
	ring  *signing.Keyring
	clock *testClock
	b     backend
}

func newFixture(t testing.TB, b backend) *fixture {
	t.Helper()
	f := &fixture{ring: testKeyring(t), clock: &testClock{t: libNow}, b: b}
	f.lib = f.library(t, b.kv)
	return f
}

func (f *fixture) library(t testing.TB, kv licensehub.KV) *Library {
	lib, err := NewLibrary(Config{Objects: f.b.objects, KV: kv, Signers: f.ring, Catalog: testCatalog,
		DefaultValidUntil: func(_, from string) (string, error) {
			d, err := time.Parse(DateLayout, from)
			if err != nil {
				return "", err
			}
			return d.AddDate(5, 0, -1).Format(DateLayout), nil
		},
		TypeName:  func(string) string { return "营业执照" },
		Clock:     f.clock.Now,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func sampleRequest(number string) PushRequest {
	return PushRequest{
		App:        "app-market",
		TypeCode:   typeCode,
		Issuer:     Party{Name: "湖南省市场监督管理局", Code: authorityA},
		Number:     number,
		Holder:     Holder{Name: "福州示范科技有限公司", Code: holderCredit, CodeType: ident.HolderCreditCode},
		IssueDate:  "2026-11-20",
		ValidFrom:  "2026-11-20",
		ValidUntil: "2031-11-19",
		AreaCode:   "430100",
		Matter:     &Party{Code: "000105001000", Name: "企业设立登记"},
		Fields:     map[string]any{"legal_representative": "张三", "registered_capital": "100万元"},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPush(t testing.TB, lib *Library, req PushRequest) *PushResult {
	t.Helper()
	res, err := lib.Push(ctxT(t), req)
	if err != nil {
		t.Fatalf("push %s: %v", req.Number, err)
	}
	return res
}

// countObjects counts the objects under prefix.
func countObjects(t testing.TB, objs licensehub.ObjectStore, prefix string) int {
	t.Helper()
	n := 0
	if err := objs.List(ctxT(t), prefix, func(licensehub.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }
