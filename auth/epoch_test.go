package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/store/mem"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// epochBackend is a nonce store that can lose its data: hub opens an
// instance's view of it (a hub process with its own connection), reset
// empties it the way a crash does. For the in-process store a reset is a
// process restart: the store and every hub over it are new.
type epochBackend struct {
	name  string
	open  func(t *testing.T) (hub func() licensehub.KV, reset func())
	after bool // a hub instance survives the reset (Redis), else it restarts
}

func epochBackends() []epochBackend {
	return []epochBackend{
		{name: "memory", open: func(t *testing.T) (func() licensehub.KV, func()) {
			kv := newKV(t)
			return func() licensehub.KV { return kv }, func() { kv = newKV(t) }
		}},
		{name: "redis", after: true, open: func(t *testing.T) (func() licensehub.KV, func()) {
			url := testenv.RequireRedis(t)
			prefix := testenv.Name(t) + ":"
			t.Cleanup(func() { testenv.CleanRedisPrefix(t, url, prefix) })
			return func() licensehub.KV {
					s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
					if err != nil {
						t.Fatalf("redis: %v", err)
					}
					t.Cleanup(func() { _ = s.Close() })
					return s
				}, func() {
					testenv.CleanRedisPrefix(t, url, prefix) // Redis restarted empty
				}
		}},
	}
}

// TestReplayAfterStoreReset captures a signed request, lets a hub accept
// it, empties the nonce store and resends it: 401 AUTH_STALE naming the
// reset, never 200. A fresh request is refused until its timestamp
// reaches the epoch plus the future tolerance, then accepted once, and a
// replay of it is AUTH_REPLAY again. Without the epoch the same steps
// accept the replay: that row shows the test can fail.
func TestReplayAfterStoreReset(t *testing.T) {
	const ahead = 2 * time.Second
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	tests := []struct {
		name     string
		signedAt time.Duration // the captured request's timestamp - its acceptance
		resetIn  time.Duration // acceptance to reset
		replayIn time.Duration // reset to the replay (clock of the replaying hub)
		noEpoch  bool
		want     string // the replay's code; "" means 200
	}{
		{"signed now, replayed at once", 0, time.Second, 0, false, licensehub.EAUTHSTALE},
		{"signed now, replayed four minutes later", 0, time.Second, 4 * time.Minute, false, licensehub.EAUTHSTALE},
		{"signed as far ahead as accepted", ahead, 0, ahead, false, licensehub.EAUTHSTALE},
		{"signed as far behind as accepted", -4*time.Minute - 59*time.Second, 0, 0, false, licensehub.EAUTHSTALE},
		{"reset in the same second", 0, 300 * time.Millisecond, 0, false, licensehub.EAUTHSTALE},
		{"without the epoch (the old hub)", 0, time.Second, 0, true, ""},
	}
	for _, b := range epochBackends() {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				hubStore, reset := b.open(t)
				clk := newClock(t0.Add(123 * time.Millisecond))
				newHub := func() *auth.Authenticator {
					opts := []auth.Option{auth.WithClock(clk.Now)}
					if !tt.noEpoch {
						opts = append(opts, auth.WithReplayEpoch(ahead))
					}
					return auth.NewAuthenticator(reg, hubStore(), opts...)
				}
				hub := newHub()
				ready, err := hub.Prime(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if !tt.noEpoch && !ready.Equal(clk.Now().Add(ahead)) {
					t.Fatalf("Prime on an empty store = %v, want now + %s", ready, ahead)
				}
				clk.Add(time.Hour) // long after the first start
				captured := sign(t, approval, lookup, clk.Now().Add(tt.signedAt), "")
				if _, err := hub.Authenticate(t.Context(), captured); err != nil {
					t.Fatalf("first: %v", err)
				}
				if _, err := hub.Authenticate(t.Context(), captured); licensehub.ErrorCode(err) != licensehub.EAUTHREPLAY {
					t.Fatalf("replay before the reset: %v, want AUTH_REPLAY", err)
				}

				clk.Add(tt.resetIn)
				reset()
				if !b.after {
					hub = newHub() // the process restarted with its store
				}
				resetAt := clk.Now()
				clk.Add(tt.replayIn)
				_, err = hub.Authenticate(t.Context(), captured)
				if code := licensehub.ErrorCode(err); code != tt.want {
					t.Fatalf("replay after the reset: %v (code %q), want %q", err, code, tt.want)
				}
				if tt.want == "" {
					return
				}
				e := codeOf(t, err)
				if e.Details["reason"] != "replay_store_reset" || e.Details["replay_store_reset"] != resetAt.Add(tt.replayIn).Unix() {
					t.Fatalf("details %v, want reason replay_store_reset at %d", e.Details, resetAt.Add(tt.replayIn).Unix())
				}

				// A fresh request signed now, right after the reset, may
				// not be older than the epoch plus the tolerance either.
				minTS, _ := e.Details["min_timestamp"].(int64)
				if at := time.Unix(minTS, 0); at.Before(clk.Now().Add(ahead)) || !at.Add(-time.Second).Before(clk.Now().Add(ahead)) {
					t.Fatalf("min_timestamp %d, want the first second at or after %d + %s", minTS, clk.Now().Unix(), ahead)
				}
				early := sign(t, approval, lookup, time.Unix(minTS-1, 0), "")
				if _, err := hub.Authenticate(t.Context(), early); licensehub.ErrorCode(err) != licensehub.EAUTHSTALE {
					t.Fatalf("a request signed a second before min_timestamp: %v, want AUTH_STALE", err)
				}
				clk.Add(time.Unix(minTS, 0).Sub(clk.Now()))
				fresh := sign(t, approval, lookup, clk.Now(), "")
				if _, err := hub.Authenticate(t.Context(), fresh); err != nil {
					t.Fatalf("a request signed at min_timestamp: %v", err)
				}
				// ... and replaying that one, on another instance too, is
				// the ordinary replay.
				for _, h := range []*auth.Authenticator{hub, newHub()} {
					if _, err := h.Authenticate(t.Context(), fresh); licensehub.ErrorCode(err) != licensehub.EAUTHREPLAY {
						t.Fatalf("replay of a request signed after the reset: %v, want AUTH_REPLAY", err)
					}
				}
			})
		}
	}
}

// TestEpochShared: hub instances sharing the store agree on one epoch,
// the first setter's, whatever their own clocks say; a later Prime keeps
// it.
func TestEpochShared(t *testing.T) {
	const ahead = time.Second
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	for _, b := range epochBackends() {
		t.Run(b.name, func(t *testing.T) {
			hubStore, _ := b.open(t)
			first := auth.NewAuthenticator(reg, hubStore(), auth.WithReplayEpoch(ahead), auth.WithClock(func() time.Time { return t0 }))
			late := auth.NewAuthenticator(reg, hubStore(), auth.WithReplayEpoch(ahead), auth.WithClock(func() time.Time { return t0.Add(-time.Minute) }))
			for i, h := range []*auth.Authenticator{first, late, first} {
				got, err := h.Prime(t.Context())
				if err != nil || !got.Equal(t0.Add(ahead)) {
					t.Fatalf("Prime %d = %v, %v; want the first setter's %v", i, got, err, t0.Add(ahead))
				}
			}
			// The instance whose clock is behind refuses what the epoch
			// does not cover, even though its own clock would allow it.
			r := sign(t, approval, lookup, t0.Add(-time.Minute), "")
			if _, err := late.Authenticate(t.Context(), r); licensehub.ErrorCode(err) != licensehub.EAUTHSTALE {
				t.Fatalf("a request older than the shared epoch: %v, want AUTH_STALE", err)
			}
		})
	}
}

// TestEpochAhead: with the epoch, a timestamp may be at most the
// tolerance ahead of the hub's clock; behind, the skew still applies.
func TestEpochAhead(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	kv := newKV(t)
	if err := kv.Set(t.Context(), auth.EpochKey, []byte("0"), 0); err != nil { // complete since 1970
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(reg, kv, auth.WithReplayEpoch(2*time.Second), auth.WithClock(func() time.Time { return t0 }))
	tests := []struct {
		name string
		at   time.Duration
		want string
	}{
		{"2 seconds ahead", 2 * time.Second, ""},
		{"3 seconds ahead", 3 * time.Second, licensehub.EAUTHSTALE},
		{"5 minutes behind", -5 * time.Minute, ""},
		{"5 minutes 1 second behind", -5*time.Minute - time.Second, licensehub.EAUTHSTALE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(t.Context(), sign(t, approval, lookup, t0.Add(tt.at), ""))
			if code := licensehub.ErrorCode(err); code != tt.want {
				t.Fatalf("code %q (%v), want %q", code, err, tt.want)
			}
			if tt.want != "" && codeOf(t, err).Details["max_ahead_seconds"] != 2.0 {
				t.Errorf("details %v lack max_ahead_seconds 2", codeOf(t, err).Details)
			}
		})
	}
}

// TestEpochStoreErrors: a store whose epoch GET fails, or holds garbage,
// gives EUNAVAILABLE, never a pass.
func TestEpochStoreErrors(t *testing.T) {
	reg := loadRegistry(t, testRegistryYAML, testEnv)
	cause := errors.New("connection reset")
	tests := []struct {
		name  string
		value string
		err   error
	}{
		{"get fails", "", cause},
		{"not a number", "yesterday", nil},
		{"negative", "-5", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := &epochStoreFunc{KV: newKV(t), get: func() ([]byte, error) { return []byte(tt.value), tt.err }}
			a := auth.NewAuthenticator(reg, kv, auth.WithReplayEpoch(time.Second), auth.WithClock(func() time.Time { return t0 }))
			_, err := a.Authenticate(t.Context(), sign(t, approval, lookup, t0, ""))
			if licensehub.ErrorCode(err) != licensehub.EUNAVAILABLE || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("Authenticate: %v, want EUNAVAILABLE", err)
			}
			if _, err := a.Prime(t.Context()); licensehub.ErrorCode(err) != licensehub.EUNAVAILABLE {
				t.Fatalf("Prime: %v, want EUNAVAILABLE", err)
			}
		})
	}
	t.Run("a nonce store without Get", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		auth.NewAuthenticator(reg, nonceStoreFunc(nil), auth.WithReplayEpoch(time.Second))
	})
	t.Run("a tolerance above the skew", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		auth.NewAuthenticator(reg, newKV(t), auth.WithReplayEpoch(time.Hour))
	})
}

// epochStoreFunc is an in-process store whose Get of the epoch key is get.
type epochStoreFunc struct {
	KV  *mem.Store
	get func() ([]byte, error)
}

func (s *epochStoreFunc) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.KV.SetNX(ctx, key, value, ttl)
}

func (s *epochStoreFunc) Get(ctx context.Context, key string) ([]byte, error) {
	if key == auth.EpochKey {
		return s.get()
	}
	return s.KV.Get(ctx, key)
}
