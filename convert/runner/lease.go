package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/licensehub/licensehub"
)

// errLeaseLost is the cause of a run's context when its lease went to
// another runner.
var errLeaseLost = errors.New("conversion: the job's lease was lost")

// lease is a job's KV lease: conversion:lease:<id> = Owner with LeaseTTL,
// taken with SetNX, renewed at a third of the TTL (Get == Owner, then Set
// with the TTL: the audit sealer's style), released with
// CompareAndDelete.
type lease struct {
	r     *Runner
	id    string
	value []byte
	lost  atomic.Bool
	stop  chan struct{}
	done  chan struct{}
}

// acquire takes the job's lease; another holder gives ECONFLICT with
// Details["owner"].
func (r *Runner) acquire(ctx context.Context, id string) (*lease, error) {
	value := []byte(r.cfg.Owner)
	var ok bool
	err := r.kv(ctx, func(c context.Context) (err error) {
		ok, err = r.cfg.KV.SetNX(c, leaseKey(id), value, r.cfg.LeaseTTL)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		var holder []byte
		_ = r.kv(ctx, func(c context.Context) (err error) { holder, err = r.cfg.KV.Get(c, leaseKey(id)); return err })
		return nil, &licensehub.Error{Code: licensehub.ECONFLICT, Field: "id",
			Message: fmt.Sprintf("conversion %s is being run by %s", id, holder),
			Details: map[string]any{"owner": string(holder), "reason": "job_leased"}}
	}
	return &lease{r: r, id: id, value: value, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// keep renews the lease until release or ctx ends; when the lease is
// found taken by another runner it calls cancel(errLeaseLost) and stops.
func (l *lease) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.r.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !l.renew(ctx) {
				l.lost.Store(true)
				l.r.log.WarnContext(ctx, "conversion lease lost to another runner: stopping without further checkpoints", "job", l.id)
				cancel(errLeaseLost)
				return
			}
		}
	}()
}

// renew reports false only when the lease is known to be another's.
func (l *lease) renew(ctx context.Context) bool {
	r, key := l.r, leaseKey(l.id)
	var cur []byte
	err := r.kv(ctx, func(c context.Context) (err error) { cur, err = r.cfg.KV.Get(c, key); return err })
	switch {
	case err == nil && bytes.Equal(cur, l.value):
		if err := r.kv(ctx, func(c context.Context) error { return r.cfg.KV.Set(c, key, l.value, r.cfg.LeaseTTL) }); err != nil {
			r.log.DebugContext(ctx, "conversion lease renewal failed; retrying", "job", l.id, "err", err)
		}
		return true
	case err == nil:
		return false
	case licensehub.IsCode(err, licensehub.ENOTFOUND):
		// Expired while the KV was away: ours again if nobody took it.
		var ok bool
		err := r.kv(ctx, func(c context.Context) (err error) {
			ok, err = r.cfg.KV.SetNX(c, key, l.value, r.cfg.LeaseTTL)
			return err
		})
		return err != nil || ok
	default:
		// The KV is away: nobody else can take the lease meanwhile, and the
		// pushes (whose indexes live there) are paused anyway.
		r.log.DebugContext(ctx, "conversion lease renewal failed; retrying", "job", l.id, "err", err)
		return true
	}
}

// release stops the renewal and, unless the lease was lost, deletes it.
func (l *lease) release(ctx context.Context) {
	close(l.stop)
	<-l.done
	if l.lost.Load() {
		return
	}
	c, cancel := l.r.opCtx(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := l.r.cfg.KV.CompareAndDelete(c, leaseKey(l.id), l.value); err != nil {
		l.r.log.WarnContext(ctx, "conversion: releasing the job's lease failed; it expires by itself", "job", l.id, "err", err)
	}
}

// BreakLease deletes the job's lease if owner still holds it: for an
// operator who knows that owner is dead (hubctl convert does it for a
// hubctl process of the same host that no longer exists), so that the
// job need not wait for the lease to expire. It reports whether it did.
func (r *Runner) BreakLease(ctx context.Context, id, owner string) (bool, error) {
	if !ValidID(id) {
		return false, unknownJob(id)
	}
	var ok bool
	err := r.kv(ctx, func(c context.Context) (err error) {
		ok, err = r.cfg.KV.CompareAndDelete(c, leaseKey(id), []byte(owner))
		return err
	})
	if ok {
		r.log.InfoContext(ctx, "conversion lease broken", "job", id, "owner", owner)
	}
	return ok, err
}
