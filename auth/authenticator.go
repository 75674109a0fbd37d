package auth

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/client"
)

// DefaultMaxSkew is how far a request's timestamp may be from the hub's
// clock, either way, unless WithMaxSkew says otherwise.
const DefaultMaxSkew = 5 * time.Minute

// NonceStore remembers nonces for replay protection; licensehub.KV
// satisfies it (store/redis across hub instances, store/mem embedded).
type NonceStore interface {
	// SetNX stores value at key only if key is absent, with an expiry,
	// and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
}

// Request is what Authenticate needs of an HTTP request. Build it from the
// request as received: EscapedPath is the path exactly as in the request
// line (not decoded), RawQuery the query after '?', Body the whole body.
type Request struct {
	Method      string
	EscapedPath string
	RawQuery    string
	Header      func(name string) string // e.g. http.Header.Get; nil means no headers
	Body        []byte
	// Admit, when set, is run once the request is known to be authentic
	// (its signature checked), at the same time as the nonce check, e.g.
	// the member's rate limit: the two store round trips overlap. Its
	// error is Authenticate's unless the nonce check fails first.
	Admit func(ctx context.Context, m *Member) error
}

// FromHTTP builds a Request from a net/http server request whose body has
// been read into body.
func FromHTTP(r *http.Request, body []byte) Request {
	path := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") {
		path, _, _ = strings.Cut(r.RequestURI, "?") // the path as sent
	}
	return Request{Method: r.Method, EscapedPath: path, RawQuery: r.URL.RawQuery, Header: r.Header.Get, Body: body}
}

// Option configures an Authenticator or a Limiter.
type Option func(*options)

type options struct {
	maxSkew  time.Duration
	now      func() time.Time
	epoch    bool          // WithReplayEpoch
	maxAhead time.Duration // WithReplayEpoch
}

func buildOptions(opts []Option) options {
	o := options{maxSkew: DefaultMaxSkew, now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithMaxSkew sets the clock skew an Authenticator accepts (default
// DefaultMaxSkew); it must be positive. Limiters ignore it.
func WithMaxSkew(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("auth.WithMaxSkew(%s): the skew must be positive", d))
	}
	return func(o *options) { o.maxSkew = d }
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	if now == nil {
		panic("auth.WithClock(nil)")
	}
	return func(o *options) { o.now = now }
}

// Authenticator checks the HMAC-SM3 signatures of member systems' requests
// (see package client for the signing side). It is safe for concurrent
// use; SetRegistry swaps the registry while requests are being checked.
type Authenticator struct {
	registry atomic.Pointer[Registry]
	nonces   NonceStore
	maxSkew  time.Duration
	now      func() time.Time
	epoch    bool          // refuse requests older than the nonce store (epoch.go)
	maxAhead time.Duration // with epoch: how far ahead a timestamp may be
}

// NewAuthenticator returns an Authenticator over reg that remembers nonces
// in nonces. It panics when either is nil, or WithReplayEpoch is given
// with a nonce store that is no EpochStore or a tolerance above the skew.
func NewAuthenticator(reg *Registry, nonces NonceStore, opts ...Option) *Authenticator {
	if reg == nil || nonces == nil {
		panic("auth.NewAuthenticator: nil registry or nonce store")
	}
	o := buildOptions(opts)
	if _, ok := nonces.(EpochStore); o.epoch && !ok {
		panic("auth.NewAuthenticator: WithReplayEpoch needs a nonce store with Get")
	}
	if o.epoch && o.maxAhead > o.maxSkew {
		panic(fmt.Sprintf("auth.NewAuthenticator: WithReplayEpoch(%s) exceeds the skew %s", o.maxAhead, o.maxSkew))
	}
	a := &Authenticator{nonces: nonces, maxSkew: o.maxSkew, now: o.now, epoch: o.epoch, maxAhead: o.maxAhead}
	a.registry.Store(reg)
	return a
}

// SetRegistry replaces the registry (after reloading members.yaml, e.g. to
// promote a next_secret). Requests being checked finish with the registry
// they started with. It panics when reg is nil.
func (a *Authenticator) SetRegistry(reg *Registry) {
	if reg == nil {
		panic("auth.Authenticator.SetRegistry(nil)")
	}
	a.registry.Store(reg)
}

// Registry returns the registry in use.
func (a *Authenticator) Registry() *Registry { return a.registry.Load() }

// MaxSkew is the clock skew accepted either way.
func (a *Authenticator) MaxSkew() time.Duration { return a.maxSkew }

// NonceTTL is how long a nonce is remembered: twice the skew. A request is
// accepted only while |timestamp - now| <= skew, so by the time a nonce is
// forgotten every request that could carry it has gone stale.
func (a *Authenticator) NonceTTL() time.Duration { return 2 * a.maxSkew }

// maxSignatureHeader bounds the X-Hub-Signature value we decode (base64 of
// 32 bytes is 44 characters).
const maxSignatureHeader = 128

// Authenticate returns the member system that signed r, or a 401
// *licensehub.Error whose Details say what was wrong. Checks, in order:
//
//  1. AUTH_MISSING: a header is absent (details "header": the first,
//     "headers": all), or X-Hub-Nonce is not 16-64 characters of
//     [A-Za-z0-9_-] (details "header", "reason": "malformed");
//  2. AUTH_UNKNOWN_APP: no member has the app ID ("app_id");
//  3. AUTH_STALE: the timestamp is not decimal Unix seconds, or is more
//     than the skew from the hub's clock ("server_time", "max_skew_seconds",
//     and "skew_seconds" = timestamp - server time when it parses);
//  4. AUTH_BAD_SIGNATURE: the signature is not base64 of 32 bytes, the
//     query is not valid percent-encoding, or the HMAC-SM3 matches neither
//     the member's secret nor its next_secret, compared in constant time
//     ("reason"; on a mismatch "canonical_sm3" and "body_sm3", the SM3 of
//     the hub's canonical string and of the body, for the caller to
//     compare with its own);
//  5. AUTH_REPLAY: the nonce was seen for this app within NonceTTL
//     ("nonce"). Only authentic requests reach this step, so forged ones
//     cannot use up nonces.
//  6. With WithReplayEpoch, AUTH_STALE with "reason": "replay_store_reset"
//     ("replay_store_reset", "min_timestamp"): the timestamp is before the
//     nonce store's epoch plus the future tolerance, so the request may
//     have been accepted before the store lost its nonces (epoch.go). The
//     epoch is read together with the nonce check: no extra round trip.
//     In step 3 a timestamp may then be at most that tolerance ahead.
//
// A failing nonce store gives EUNAVAILABLE.
func (a *Authenticator) Authenticate(ctx context.Context, r Request) (*Member, error) {
	get := r.Header
	if get == nil {
		get = func(string) string { return "" }
	}
	appID, ts, nonce, sig := get(client.HeaderAppID), get(client.HeaderTimestamp), get(client.HeaderNonce), get(client.HeaderSignature)

	// 1. All four headers, and a usable nonce.
	var missing []string
	for _, h := range []struct{ name, value string }{
		{client.HeaderAppID, appID}, {client.HeaderTimestamp, ts},
		{client.HeaderNonce, nonce}, {client.HeaderSignature, sig},
	} {
		if h.value == "" {
			missing = append(missing, h.name)
		}
	}
	if len(missing) > 0 {
		return nil, &licensehub.Error{
			Code:    licensehub.EAUTHMISSING,
			Message: fmt.Sprintf("missing %s; sign the request (package client does it)", strings.Join(missing, ", ")),
			Details: map[string]any{"header": missing[0], "headers": missing},
		}
	}
	if !client.ValidNonce(nonce) {
		return nil, &licensehub.Error{
			Code: licensehub.EAUTHMISSING,
			Message: fmt.Sprintf("%s must be %d to %d characters of A-Z, a-z, 0-9, '-' and '_'",
				client.HeaderNonce, client.NonceMinLen, client.NonceMaxLen),
			Details: map[string]any{"header": client.HeaderNonce, "reason": "malformed"},
		}
	}

	// 2. A known member.
	m, ok := a.registry.Load().Member(appID)
	if !ok {
		return nil, &licensehub.Error{
			Code:    licensehub.EAUTHUNKNOWNAPP,
			Message: fmt.Sprintf("no member system has app ID %q", licensehub.Clip(appID, 64)),
			Details: map[string]any{"app_id": licensehub.Clip(appID, 64)},
		}
	}

	// 3. A fresh timestamp.
	now := a.now()
	if err := a.checkTimestamp(ts, now); err != nil {
		return nil, err
	}

	// 4. The signature, by the current or the next secret.
	if err := checkSignature(m, r, ts, nonce, sig); err != nil {
		return nil, err
	}

	// 5. A nonce not seen before and, with the epoch, a timestamp the
	// nonce store covers (and, meanwhile, admission): the store calls
	// overlap (on Redis they share a pipeline).
	var (
		admitted = make(chan error, 1)
		admitErr error
		epoch    chan epochResult
	)
	if r.Admit != nil {
		go func() { admitted <- r.Admit(ctx, m) }()
	}
	if a.epoch {
		epoch = make(chan epochResult, 1)
		go func() {
			e, err := epochAt(ctx, a.nonces.(EpochStore), now)
			epoch <- epochResult{e, err}
		}()
	}
	fresh, err := a.nonces.SetNX(ctx, "nonce:"+appID+":"+nonce, []byte(ts), a.NonceTTL())
	var er epochResult
	if a.epoch {
		er = <-epoch
	}
	if r.Admit != nil {
		admitErr = <-admitted
	}
	if err != nil {
		return nil, unavailableEpoch(err)
	}
	if er.err != nil {
		return nil, unavailableEpoch(er.err)
	}
	if !fresh {
		return nil, &licensehub.Error{
			Code:    licensehub.EAUTHREPLAY,
			Message: fmt.Sprintf("nonce %s was already used by %s; use a fresh nonce for every request", nonce, appID),
			Details: map[string]any{"nonce": nonce},
		}
	}
	if a.epoch {
		secs, _ := parseUnixSeconds(ts) // checked in step 3
		if err := a.checkEpoch(secs, er.at, now); err != nil {
			return nil, err
		}
	}
	if admitErr != nil {
		return nil, admitErr
	}
	return m, nil
}

type epochResult struct {
	at  time.Time
	err error
}

// checkTimestamp accepts decimal Unix seconds within the skew of now.
func (a *Authenticator) checkTimestamp(ts string, now time.Time) error {
	details := map[string]any{
		"server_time":      now.Unix(),
		"max_skew_seconds": int64(a.maxSkew / time.Second),
	}
	secs, ok := parseUnixSeconds(ts)
	if !ok {
		return &licensehub.Error{
			Code:    licensehub.EAUTHSTALE,
			Message: fmt.Sprintf("%s %q is not Unix seconds in decimal", client.HeaderTimestamp, licensehub.Clip(ts, 32)),
			Details: details,
		}
	}
	skew := time.Unix(secs, 0).Sub(now) // saturates for absurd values
	ahead := a.maxSkew
	if a.epoch {
		ahead = a.maxAhead
		details["max_ahead_seconds"] = a.maxAhead.Seconds()
	}
	if skew > ahead || skew < -a.maxSkew {
		details["skew_seconds"] = secs - now.Unix()
		dir := "behind"
		if skew > 0 {
			dir = "ahead of"
		}
		accepted := "at most " + licensehub.HumanDuration(a.maxSkew) + " either way is accepted"
		if ahead != a.maxSkew {
			accepted = "at most " + licensehub.HumanDuration(a.maxSkew) + " behind or " + licensehub.HumanDuration(ahead) + " ahead is accepted"
		}
		return &licensehub.Error{
			Code: licensehub.EAUTHSTALE,
			Message: fmt.Sprintf("%s is %s %s the hub's clock (%d); %s",
				client.HeaderTimestamp, licensehub.HumanDuration(skew.Abs().Truncate(time.Second)), dir, now.Unix(),
				accepted),
			Details: details,
		}
	}
	return nil
}

// parseUnixSeconds parses 1 to 18 decimal digits (no sign, no spaces).
func parseUnixSeconds(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// checkSignature verifies sig over r's canonical string with the member's
// secret, then its next secret. hmac.Equal compares in constant time.
func checkSignature(m *Member, r Request, ts, nonce, sig string) error {
	bad := func(reason, format string, args ...any) *licensehub.Error {
		return &licensehub.Error{
			Code:    licensehub.EAUTHBADSIG,
			Message: fmt.Sprintf(format, args...),
			Details: map[string]any{"reason": reason},
		}
	}
	got, err := base64.StdEncoding.Strict().DecodeString(sig)
	if len(sig) > maxSignatureHeader || err != nil || len(got) != sm3.Size {
		return bad("encoding", "%s must be standard base64 of the %d-byte HMAC-SM3", client.HeaderSignature, sm3.Size)
	}
	if strings.ContainsAny(r.Method, "\r\n") || strings.ContainsAny(r.EscapedPath, "\r\n") {
		return bad("request_line", "the method or path contains a line break")
	}
	if _, err := client.CanonicalQuery(r.RawQuery); err != nil {
		return bad("query", "the query has no canonical form: %v", err)
	}
	canonical := client.CanonicalString(r.Method, r.EscapedPath, r.RawQuery, ts, nonce, r.Body)
	current, next := m.keys()
	for _, secret := range []client.Secret{current, next} {
		if secret != nil && hmac.Equal(macSM3(secret, canonical), got) {
			return nil
		}
	}
	e := bad("mismatch", "the signature does not match; check the secret and the canonical string (compare canonical_sm3 with SM3 of yours)")
	sum := sm3.Sum([]byte(canonical))
	e.Details["canonical_sm3"] = hex.EncodeToString(sum[:])
	e.Details["body_sm3"] = client.BodyDigest(r.Body)
	return e
}

// macSM3 is HMAC-SM3 of canonical keyed with secret.
func macSM3(secret []byte, canonical string) []byte {
	mac := hmac.New(sm3.New, secret)
	mac.Write([]byte(canonical))
	return mac.Sum(nil)
}
