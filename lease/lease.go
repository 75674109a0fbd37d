// Package lease is the one lock every background job of the hub uses to
// run on one instance at a time (the license sweeper, the audit sealer,
// the exchange leader and its lane locks, the conversion runner).
//
// A lease is a KV key holding "<owner>/<random>" with a TTL, taken with
// SetNX, renewed with CompareAndExpire (the expiry is extended only while
// the key still holds this holder's value, in one atomic step, so a lease
// that expired and was taken by another holder is never extended by the
// old one) and released with CompareAndDelete. Hold renews it in the
// background and cancels the holder's context the moment a renewal finds
// the lease gone or cannot prove it in time, so the holder steps down.
//
// A fenced lease also carries a fencing token: Incr of a counter key
// beside the lease (FenceKey), taken after the lease and proven with a
// renewal, so every holder's token is larger than any earlier holder's.
// Writes that a stale holder could make after losing its lease store the
// token and refuse to overwrite work done under a larger one. When the
// KV loses the counter (a Redis restarted empty), Raise lifts the token
// above the largest one the holder finds in durable storage.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensehub/licensehub"
)

// KV is what a lease needs of the shared store; licensehub.KV has it.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, error)
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error)
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}

var (
	// ErrHeld is Acquire's error when another holder has the lease.
	ErrHeld = errors.New("lease: held by another holder")
	// ErrLost says the lease is no longer this holder's (it expired, and
	// may have been taken), or could not be proven in time: the holder
	// must stop. Hold's context ends with it as its cause.
	ErrLost = errors.New("lease: lost")
)

// Options configure Acquire.
type Options struct {
	// Owner names the holder (an instance ID); Holder reports it. It may
	// contain any character.
	Owner string
	// TTL is the lease's expiry; Hold renews it every third of it.
	TTL time.Duration
	// OpTimeout bounds each KV call; 0 or more than TTL/3 means TTL/3.
	OpTimeout time.Duration
	// Fenced takes a fencing token (Token) from the counter FenceKey(key).
	// The counter has no expiry: use it for a bounded set of keys.
	Fenced bool
	// Patient rides out a KV outage: a Hold goes on while renewals fail
	// with KV errors, and a renewal that finds the lease expired (not
	// taken) takes it again, keeping its token; only a lease held by
	// another ends it. Without it, Hold steps down once the lease can no
	// longer be proven for another renewal interval, and an expired lease
	// is lost. Use it only for a fenced lease whose writes check the
	// token: during the outage another holder may have taken (and left)
	// the lease, and only its larger token stops this one's late writes.
	Patient bool
}

// Lease is one holding of a lease key. Its methods are safe for
// concurrent use.
type Lease struct {
	kv      KV
	key     string
	value   []byte
	ttl     time.Duration
	every   time.Duration // renewal interval
	op      time.Duration
	fence   bool
	patient bool

	token  atomic.Int64
	proven atomic.Int64 // UnixNano until which the lease is known to be ours
	lost   atomic.Bool
}

// FenceKey is the counter beside key that fencing tokens come from.
func FenceKey(key string) string { return key + ":fence" }

// Acquire takes the lease at key if it is free; ErrHeld when it is not.
// A fenced lease costs two more KV calls (Incr, CompareAndExpire).
func Acquire(ctx context.Context, kv KV, key string, o Options) (*Lease, error) {
	if o.TTL <= 0 {
		return nil, licensehub.FieldError(licensehub.EINVALID, "TTL", "a lease needs a positive expiry")
	}
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	l := &Lease{kv: kv, key: key, ttl: o.TTL, every: o.TTL / 3, fence: o.Fenced, patient: o.Patient,
		value: []byte(o.Owner + "/" + hex.EncodeToString(rnd[:]))}
	l.op = l.every
	if o.OpTimeout > 0 && o.OpTimeout < l.op {
		l.op = o.OpTimeout
	}
	start := time.Now()
	var ok bool
	err := l.call(ctx, func(c context.Context) (err error) {
		ok, err = kv.SetNX(c, key, l.value, l.ttl)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrHeld
	}
	l.proven.Store(start.Add(l.ttl).UnixNano())
	if !o.Fenced {
		return l, nil
	}
	var n int64
	err = l.call(ctx, func(c context.Context) (err error) {
		n, err = kv.Incr(c, FenceKey(key), 1, 0)
		return err
	})
	if err == nil {
		l.token.Store(n)
		// A token is ours only if the lease was still ours after it was
		// drawn: a holder that lost the lease before its Incr must not
		// use a token larger than the next holder's.
		err = l.Keep(ctx)
	}
	if errors.Is(err, ErrLost) {
		return nil, ErrHeld
	}
	if err != nil {
		_ = l.Release(ctx)
		return nil, err
	}
	return l, nil
}

// Key is the lease's KV key.
func (l *Lease) Key() string { return l.key }

// Token is the fencing token (0 for a lease that is not fenced). It grows
// with every holder of the key; Raise may lift it.
func (l *Lease) Token() int64 { return l.token.Load() }

// Lost reports whether the lease is known to be no longer this holder's.
func (l *Lease) Lost() bool { return l.lost.Load() }

// Keep renews the lease for another TTL if it is still this holder's: nil
// when it is, ErrLost when it is not (it expired, and may have been taken
// by another holder), another error when the KV did not answer (ownership
// unknown).
func (l *Lease) Keep(ctx context.Context) error {
	if l.lost.Load() {
		return ErrLost
	}
	start := time.Now()
	var ok bool
	err := l.call(ctx, func(c context.Context) (err error) {
		ok, err = l.kv.CompareAndExpire(c, l.key, l.value, l.ttl)
		return err
	})
	if err == nil && !ok && l.patient {
		// Expired while the KV was away (or the KV lost it): ours again
		// if nobody holds it. The token stays: a holder in between drew a
		// larger one, and its writes refuse ours.
		err = l.call(ctx, func(c context.Context) (err error) {
			ok, err = l.kv.SetNX(c, l.key, l.value, l.ttl)
			return err
		})
	}
	if err != nil {
		return err
	}
	if !ok {
		l.lost.Store(true)
		return ErrLost
	}
	l.proven.Store(start.Add(l.ttl).UnixNano())
	return nil
}

// Raise makes the fencing token larger than floor (the largest token the
// holder found on durable work: the counter lives in the KV and starts
// over when the KV is lost) and returns it. It proves the lease is still
// ours afterwards, like Acquire.
func (l *Lease) Raise(ctx context.Context, floor int64) (int64, error) {
	if !l.fence {
		return 0, licensehub.Errorf(licensehub.EINTERNAL, "lease %s is not fenced", l.key)
	}
	tok := l.token.Load()
	if tok > floor {
		return tok, nil
	}
	var n int64
	err := l.call(ctx, func(c context.Context) (err error) {
		n, err = l.kv.Incr(c, FenceKey(l.key), floor-tok+1, 0)
		return err
	})
	if err != nil {
		return tok, err
	}
	if err := l.Keep(ctx); err != nil {
		return tok, err
	}
	l.token.Store(n)
	return n, nil
}

// Release deletes the lease if it is still this holder's. It runs with its
// own deadline even when ctx has ended; a failure is harmless (the lease
// expires by itself) and returned for logging.
func (l *Lease) Release(ctx context.Context) error {
	l.lost.Store(true) // no longer ours to renew or write under
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.op)
	defer cancel()
	_, err := l.kv.CompareAndDelete(c, l.key, l.value)
	return err
}

// Hold renews the lease every third of its TTL until release is called
// or ctx ends. The returned context ends, with cause ErrLost, the moment a
// renewal finds the lease gone, or when renewals failed for so long that
// less than one renewal interval of the lease is left to prove. release
// stops the renewal, waits for it, ends the context and releases the
// lease; call it exactly once (more calls do nothing). No goroutine
// outlives release.
func (l *Lease) Hold(ctx context.Context) (held context.Context, release func()) {
	hctx, cancel := context.WithCancelCause(ctx)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-hctx.Done():
				return
			case <-t.C:
			}
			if err := l.renew(hctx); err != nil {
				cancel(err)
				return
			}
		}
	}()
	var once sync.Once
	return hctx, func() {
		once.Do(func() {
			close(stop)
			<-done
			cancel(context.Canceled)
			_ = l.Release(ctx)
		})
	}
}

// renew is one of Hold's renewals: nil while the lease is (or may still
// provably be) ours, an error wrapping ErrLost when the holder must stop.
func (l *Lease) renew(ctx context.Context) error {
	until := time.Unix(0, l.proven.Load())
	c, cancel := ctx, context.CancelFunc(func() {})
	if !l.patient {
		c, cancel = context.WithDeadline(ctx, until)
	}
	defer cancel()
	err := l.Keep(c)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLost):
		return ErrLost
	case ctx.Err() != nil:
		return nil // the holder is stopping anyway
	case l.patient:
		return nil // retried at the next renewal; the token guards the writes
	case time.Until(until) > l.every:
		return nil // still ours for more than the next renewal needs: retry then
	default:
		l.lost.Store(true)
		return fmt.Errorf("%w: it could not be renewed before it may expire: %w", ErrLost, err)
	}
}

// call runs f with the lease's per-call deadline.
func (l *Lease) call(ctx context.Context, f func(context.Context) error) error {
	c, cancel := context.WithTimeout(ctx, l.op)
	defer cancel()
	return f(c)
}

// Run takes the lease at key and, if it got it, calls fn with a context
// that ends when the lease is lost (Hold), then releases the lease. ran is
// false (and err nil) when another holder has it. When the lease was lost
// while fn ran, err is ErrLost unless fn returned another error.
func Run(ctx context.Context, kv KV, key string, o Options, fn func(ctx context.Context, l *Lease) error) (ran bool, err error) {
	l, err := Acquire(ctx, kv, key, o)
	if errors.Is(err, ErrHeld) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	hctx, release := l.Hold(ctx)
	err = fn(hctx, l)
	lost := errors.Is(context.Cause(hctx), ErrLost)
	release()
	if lost && (err == nil || errors.Is(err, context.Canceled)) {
		err = context.Cause(hctx)
	}
	return true, err
}

// Holder names who holds the lease at key ("" when nobody does).
func Holder(ctx context.Context, kv KV, key string) (string, error) {
	v, err := kv.Get(ctx, key)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return ownerOf(v), nil
}

// Break deletes the lease at key if owner holds it, for an operator who
// knows that owner is dead, and reports whether it did.
func Break(ctx context.Context, kv KV, key, owner string) (bool, error) {
	v, err := kv.Get(ctx, key)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return false, nil
	}
	if err != nil || ownerOf(v) != owner {
		return false, err
	}
	return kv.CompareAndDelete(ctx, key, v)
}

// ownerOf is the owner part of a lease value "<owner>/<random>" (the
// random part has no '/'); a value without one is all owner.
func ownerOf(v []byte) string {
	s := string(v)
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// DefaultOwner names this process for Options.Owner: host name and
// process ID.
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}
