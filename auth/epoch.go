package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/client"
)

// Replay protection that survives the loss of the nonce store.
//
// Nonces live in the KV (Redis, or the embedded in-process store) and the
// KV may come back empty: Redis restarted without persistence, FLUSHALL,
// or the embedded hub restarted. A request whose nonce was remembered
// before the loss would then be accepted a second time. The nonce epoch
// closes that: the KV key EpochKey holds the moment (the setter's clock,
// Unix nanoseconds) from which the nonce store is complete. Whoever finds
// it absent (first start, or a store that lost its data) sets it to its
// own clock with SetNX, so every hub instance sharing the store reads the
// same value. A request is accepted only if its timestamp is at least the
// epoch plus the future tolerance (maxAhead): a request accepted before
// the epoch had a timestamp at most its acceptance time plus maxAhead,
// which is before the epoch plus maxAhead, so it cannot pass again, while
// its nonce may have been forgotten. Requests signed after that point are
// covered by nonces stored since the epoch.
//
// The cost: an epoch GET issued together with the nonce SetNX (on Redis
// the automatic pipelining sends them in the same round trip), so no
// round trip is added. After a loss, requests signed in the first
// maxAhead (rounded up to the next second) are refused with AUTH_STALE,
// reason "replay_store_reset": clients sign again with a fresh timestamp.

// EpochKey is the KV key of the nonce epoch: decimal Unix nanoseconds.
const EpochKey = "auth:nonce-epoch"

// DefaultMaxAhead is how far ahead of the hub's clock a timestamp may be
// when the epoch is on (WithReplayEpoch); it is also how long, after the
// nonce store was lost, requests are refused.
const DefaultMaxAhead = 2 * time.Second

// EpochStore is the nonce store of an Authenticator WithReplayEpoch;
// licensehub.KV satisfies it. Get of a missing key gives ENOTFOUND.
type EpochStore interface {
	NonceStore
	Get(ctx context.Context, key string) ([]byte, error)
}

// WithReplayEpoch makes an Authenticator refuse every request that could
// have been accepted before its nonce store was lost (see EpochKey), and
// timestamps more than maxAhead ahead of the hub's clock (the skew behind
// stays WithMaxSkew). maxAhead must be >= 0 and at most the skew;
// DefaultMaxAhead suits NTP-synchronised clients. The nonce store must be
// an EpochStore. Limiters ignore it.
func WithReplayEpoch(maxAhead time.Duration) Option {
	if maxAhead < 0 {
		panic(fmt.Sprintf("auth.WithReplayEpoch(%s): the tolerance must not be negative", maxAhead))
	}
	return func(o *options) { o.epoch, o.maxAhead = true, maxAhead }
}

// epochAt reads the epoch, setting it to now when it is absent.
func epochAt(ctx context.Context, s EpochStore, now time.Time) (time.Time, error) {
	for range 2 { // absent, SetNX lost to another instance: read its value
		b, err := s.Get(ctx, EpochKey)
		if err == nil {
			ns, perr := strconv.ParseInt(string(b), 10, 64)
			if perr != nil || ns < 0 {
				return time.Time{}, fmt.Errorf("the nonce epoch %q is not Unix nanoseconds", licensehub.Clip(string(b), 32))
			}
			return time.Unix(0, ns), nil
		}
		if licensehub.ErrorCode(err) != licensehub.ENOTFOUND {
			return time.Time{}, err
		}
		set, err := s.SetNX(ctx, EpochKey, []byte(strconv.FormatInt(now.UnixNano(), 10)), 0)
		if err != nil {
			return time.Time{}, err
		}
		if set {
			return now, nil
		}
	}
	return time.Time{}, errors.New("the nonce epoch vanished twice while being read")
}

// Prime reads the nonce epoch, setting it when the store has none (a hub
// calls it at start), and returns the first moment a signed request can
// be accepted: the epoch plus the future tolerance. A hub may wait until
// then before it serves. Without WithReplayEpoch it returns the zero time.
func (a *Authenticator) Prime(ctx context.Context) (time.Time, error) {
	if !a.epoch {
		return time.Time{}, nil
	}
	e, err := epochAt(ctx, a.nonces.(EpochStore), a.now())
	if err != nil {
		return time.Time{}, unavailableEpoch(err)
	}
	return e.Add(a.maxAhead), nil
}

func unavailableEpoch(err error) error {
	return &licensehub.Error{
		Code:    licensehub.EUNAVAILABLE,
		Message: "replay protection is unavailable: the nonce store failed",
		Err:     err,
	}
}

// checkEpoch refuses a timestamp (Unix seconds) before epoch + maxAhead.
func (a *Authenticator) checkEpoch(secs int64, epoch, now time.Time) error {
	from := epoch.Add(a.maxAhead)
	if !time.Unix(secs, 0).Before(from) {
		return nil
	}
	first := from.Unix()
	if time.Unix(first, 0).Before(from) {
		first++
	}
	return &licensehub.Error{
		Code: licensehub.EAUTHSTALE,
		Message: fmt.Sprintf("the hub's replay protection was reset at %d (Unix seconds), so a request signed before %d might have been accepted already; sign the request again with a fresh timestamp and nonce (%s at least %d)",
			epoch.Unix(), first, client.HeaderTimestamp, first),
		Details: map[string]any{
			"reason":             "replay_store_reset",
			"replay_store_reset": epoch.Unix(),
			"min_timestamp":      first,
			"server_time":        a.now().Unix(),
			"max_ahead_seconds":  a.maxAhead.Seconds(),
		},
	}
}
