package auth_test

import (
	"crypto/hmac"
	"strconv"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
)

// BenchmarkAuthenticate compares a full Authenticate (headers, registry,
// clock, canonical string, HMAC-SM3, nonce in the in-memory KV) with the
// bare HMAC-SM3 over the same canonical string.
func BenchmarkAuthenticate(b *testing.B) {
	reg := loadRegistry(b, testRegistryYAML, testEnv)
	b.Run("hub", func(b *testing.B) {
		a := auth.NewAuthenticator(reg, newKV(b))
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
	})
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
