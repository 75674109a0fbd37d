package auth_test

import (
	"crypto/hmac"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/internal/testenv"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// BenchmarkAuthenticate compares a full Authenticate (headers, registry,
// clock, canonical string, HMAC-SM3, nonce in the in-memory KV) with the
// bare HMAC-SM3 over the same canonical string; "hub+epoch" adds the nonce
// epoch read (WithReplayEpoch), and the redis cases do both over a real
// Redis (HUB_TEST_REDIS_URL), where the epoch GET shares the nonce SetNX's
// round trip.
func BenchmarkAuthenticate(b *testing.B) {
	reg := loadRegistry(b, testRegistryYAML, testEnv)
	cases := []struct {
		name  string
		redis bool
		opts  []auth.Option
	}{
		{"hub", false, nil},
		{"hub+epoch", false, []auth.Option{auth.WithReplayEpoch(auth.DefaultMaxAhead)}},
		{"redis/hub", true, nil},
		{"redis/hub+epoch", true, []auth.Option{auth.WithReplayEpoch(auth.DefaultMaxAhead)}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) { benchAuthenticate(b, reg, bc.redis, bc.opts) })
	}
	b.Run("hmac-sm3", func(b *testing.B) {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		canonical := []byte(client.CanonicalString(lookup.method, lookup.path, lookup.query, ts, client.NewNonce(), lookup.body))
		secret := []byte(secret1)
		b.ReportAllocs()
		for b.Loop() {
			mac := hmac.New(sm3.New, secret)
			mac.Write(canonical)
			_ = mac.Sum(nil)
		}
	})
}

func benchAuthenticate(b *testing.B, reg *auth.Registry, redis bool, opts []auth.Option) {
	var kv licensehub.KV = newKV(b)
	if redis {
		url := os.Getenv("HUB_TEST_REDIS_URL")
		if url == "" {
			b.Skip("HUB_TEST_REDIS_URL is not set")
		}
		prefix := testenv.Name(b) + ":"
		s, err := redisstore.Open(b.Context(), redisstore.Config{URL: url, Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close(); testenv.CleanRedisPrefix(b, url, prefix) })
		kv = s
	}
	// Complete since 1970: the benchmark measures the steady state.
	if err := kv.Set(b.Context(), auth.EpochKey, []byte("0"), 0); err != nil {
		b.Fatal(err)
	}
	a := auth.NewAuthenticator(reg, kv, opts...)
	// Every request needs its own nonce; sign them in batches outside
	// the timer so that only the verifying side is measured.
	const batch = 4096
	reqs := make([]auth.Request, 0, batch)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			reqs = reqs[:0]
			now := time.Now()
			for range min(batch, b.N-i) {
				reqs = append(reqs, sign(b, approval, lookup, now, ""))
			}
			b.StartTimer()
		}
		if _, err := a.Authenticate(ctx, reqs[i%batch]); err != nil {
			b.Fatal(err)
		}
	}
}
