package store_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/store/mem"
	redisstore "github.com/licensehub/licensehub/store/redis"
	"github.com/licensehub/licensehub/store/storetest"
)

func TestKVContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		storetest.KV(t, func(t *testing.T) licensehub.KV {
			s := mem.New()
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	t.Run("redis", func(t *testing.T) {
		url := testenv.RequireRedis(t)
		storetest.KV(t, func(t *testing.T) licensehub.KV {
			return openRedis(t, url, testenv.Name(t)+":")
		})
	})
}

// openRedis opens a store on the test server whose keys all start with
// prefix; cleanup deletes them and closes the client.
func openRedis(t *testing.T, url, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatalf("redis.Open: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := deletePrefix(ctx, s.Client(), prefix); err != nil {
			t.Errorf("deleting test keys %s*: %v", prefix, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("closing redis store: %v", err)
		}
	})
	return s
}

// deletePrefix deletes every key that starts with prefix, using SCAN so it
// never blocks the server the way KEYS would.
func deletePrefix(ctx context.Context, c *goredis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.Unlink(ctx, batch...).Err()
	}
	return nil
}

// globEscape quotes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestRedisPrefixIsolation checks that two stores on one server with
// different prefixes do not see each other's keys, and that the prefix is
// how keys are named on the server.
func TestRedisPrefixIsolation(t *testing.T) {
	url := testenv.RequireRedis(t)
	ctx := t.Context()
	base := testenv.Name(t)
	a := openRedis(t, url, base+"-a:")
	b := openRedis(t, url, base+"-b:")

	if err := a.Set(ctx, "k", []byte("from a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("store b sees store a's key: %v", err)
	}
	raw, err := a.Client().Get(ctx, base+"-a:k").Result()
	if err != nil || raw != "from a" {
		t.Fatalf("raw GET %s-a:k = %q, %v; want %q", base, raw, err, "from a")
	}
	if got := a.Key("k"); got != base+"-a:k" {
		t.Fatalf("Key(k) = %q, want %q", got, base+"-a:k")
	}
	if a.Kind() != "redis" {
		t.Fatalf("Kind = %q, want redis", a.Kind())
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// TestRedisOpenErrors needs no server: it checks how Open reports a bad
// configuration and a server that is not there.
func TestRedisOpenErrors(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "redis://" + l.Addr().String() + "/0"
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		cfg  redisstore.Config
		code string
	}{
		{"server down", redisstore.Config{URL: down, OpTimeout: time.Second}, licensehub.EUNAVAILABLE},
		{"empty URL", redisstore.Config{}, licensehub.EINVALID},
		{"bad scheme", redisstore.Config{URL: "http://127.0.0.1:6379"}, licensehub.EINVALID},
		{"bad db", redisstore.Config{URL: "redis://127.0.0.1:6379/notanumber"}, licensehub.EINVALID},
		{"negative timeout", redisstore.Config{URL: down, OpTimeout: -time.Second}, licensehub.EINVALID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(t.Context(), tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open succeeded, want %s", tc.code)
			}
			if !licensehub.IsCode(err, tc.code) {
				t.Fatalf("Open: %v (code %q), want code %q", err, licensehub.ErrorCode(err), tc.code)
			}
		})
	}

	t.Run("password not echoed", func(t *testing.T) {
		_, err := redisstore.Open(t.Context(), redisstore.Config{URL: "redis://:s3cret@127.0.0.1:6379/%zz"})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("Open with a malformed URL: %v; want an error that does not contain the password", err)
		}
	})
}

// TestMemoryClose checks that a closed memory store refuses calls; goleak
// (TestMain) checks that Close stopped its janitor.
func TestMemoryClose(t *testing.T) {
	s := mem.New()
	if s.Kind() != "memory" {
		t.Fatalf("Kind = %q, want memory", s.Kind())
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(t.Context()); !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		t.Fatalf("Ping after Close: %v, want %s", err, licensehub.EUNAVAILABLE)
	}
	if err := s.Set(t.Context(), "k", []byte("v"), 0); !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		t.Fatalf("Set after Close: %v, want %s", err, licensehub.EUNAVAILABLE)
	}
}
