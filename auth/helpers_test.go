package auth_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/store/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Fixtures: valid license type codes, authorities and matter codes.
const (
	typeA    = "11100000000013338W011"
	typeB    = "11330000002482141C002"
	authA    = "11430000006122244L"
	authB    = "12330100MB0123456R"
	matterA  = "330100-000-XK-00123"
	matterB  = "330100-000-XK-00999"
	secret1  = "secret-one-0123456789abcdef0123456789"
	secret2  = "secret-two-0123456789abcdef0123456789"
	secretIs = "secret-of-the-issuer-0123456789abcdef"
)

// testRegistryYAML has an issuing department and an approval system whose
// secrets come from env (see testEnv).
const testRegistryYAML = `
members:
  - app_id: issuer
    name: Issuer
    department: AMR
    roles: [issuing_department]
    secret: env:T_ISSUER
    grants:
      - operations: [license.create, license.read]
        license_types: ["` + typeA + `"]
        authorities: ["` + authA + `"]
  - app_id: approval
    name: Approval
    department: AMR
    roles: [approval_system]
    secret: env:T_APPROVAL
    grants:
      - operations: [license.read, license.lookup]
        license_types: ["` + typeA + `"]
        matters: ["` + matterA + `"]
      - operations: [license.read]
        license_types: ["` + typeB + `"]
        authorities: ["` + authB + `"]
    rate_limit: {requests: 3, per: 1s}
`

// env is a fake environment for env: secrets.
type env map[string]string

func (e env) lookup(name string) (string, bool) { v, ok := e[name]; return v, ok }

var testEnv = env{"T_ISSUER": secretIs, "T_APPROVAL": secret1}

// writeFile writes content to a fresh file with mode perm and returns its
// path.
func writeFile(t testing.TB, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "members.yaml")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

// loadRegistry loads content (written 0644) with the fake environment e.
func loadRegistry(t testing.TB, content string, e env, opts ...auth.LoadOption) *auth.Registry {
	t.Helper()
	reg, err := auth.LoadRegistry(writeFile(t, content, 0o644), append(opts, auth.WithLookupEnv(e.lookup))...)
	if err != nil {
		t.Fatalf("LoadRegistry: %v", err)
	}
	return reg
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 is the tests' "now".
var t0 = time.Unix(1764144000, 0)

// newKV returns an in-memory licensehub.KV closed with the test.
func newKV(t testing.TB) *mem.Store {
	t.Helper()
	s := mem.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sreq describes a request to sign.
type sreq struct {
	method, path, query string
	body                []byte
}

// sign builds an auth.Request for s signed by creds at time at with nonce
// (a fresh one when empty).
func sign(t testing.TB, creds client.Credentials, s sreq, at time.Time, nonce string) auth.Request {
	t.Helper()
	if nonce == "" {
		nonce = client.NewNonce()
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	h := http.Header{}
	h.Set(client.HeaderAppID, creds.AppID)
	h.Set(client.HeaderTimestamp, ts)
	h.Set(client.HeaderNonce, nonce)
	h.Set(client.HeaderSignature, client.Sign(creds.Secret, client.CanonicalString(s.method, s.path, s.query, ts, nonce, s.body)))
	return auth.Request{Method: s.method, EscapedPath: s.path, RawQuery: s.query, Header: h.Get, Body: bytes.Clone(s.body)}
}

// withHeader returns r with header name set to value ("" deletes it).
func withHeader(r auth.Request, name, value string) auth.Request {
	h := http.Header{}
	for _, n := range []string{client.HeaderAppID, client.HeaderTimestamp, client.HeaderNonce, client.HeaderSignature} {
		if v := r.Header(n); v != "" {
			h.Set(n, v)
		}
	}
	if value == "" {
		h.Del(name)
	} else {
		h.Set(name, value)
	}
	r.Header = h.Get
	return r
}

// codeOf returns the *licensehub.Error in err, failing the test when err
// is not one.
func codeOf(t testing.TB, err error) *licensehub.Error {
	t.Helper()
	var e *licensehub.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *licensehub.Error", err, err)
	}
	return e
}

// nonceStoreFunc adapts a function to auth.NonceStore.
type nonceStoreFunc func(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)

func (f nonceStoreFunc) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return f(ctx, key, value, ttl)
}
