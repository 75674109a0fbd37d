package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/lease"
)

// errLeaseLost is the cause of a run's context when its lease went to
// another runner (or could not be renewed in time).
var errLeaseLost = lease.ErrLost

// acquire takes the job's lease, conversion:lease:<id> (package lease:
// renewed by Hold, fenced: State.Fence carries the token, see
// checkFence); another holder gives ECONFLICT with Details["owner"].
func (r *Runner) acquire(ctx context.Context, id string) (*lease.Lease, error) {
	l, err := lease.Acquire(ctx, r.cfg.KV, leaseKey(id),
		lease.Options{Owner: r.cfg.Owner, TTL: r.cfg.LeaseTTL, OpTimeout: r.cfg.OpTimeout, Fenced: true, Patient: true})
	if !errors.Is(err, lease.ErrHeld) {
		return l, err
	}
	var holder string
	_ = r.kv(ctx, func(c context.Context) (err error) { holder, err = lease.Holder(c, r.cfg.KV, leaseKey(id)); return err })
	return nil, &licensehub.Error{Code: licensehub.ECONFLICT, Field: "id",
		Message: fmt.Sprintf("conversion %s is being run by %s", id, holder),
		Details: map[string]any{"owner": holder, "reason": "job_leased"}}
}

// checkFence refuses a checkpoint over state.json written under a larger
// fencing token than ours: a runner that lost its lease (paused past its
// TTL, say) must not overwrite the progress of the runner that took the
// job over. It reads state.json, so it narrows the window to the time
// between that read and the write; the object store has no conditional
// write to close it.
func (j *jobRun) checkFence(ctx context.Context) error {
	var cur State
	err := j.retry(ctx, func(c context.Context) error {
		err := j.r.getJSON(c, stateKey(j.job.ID), &cur)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if cur.Fence > j.lease.Token() {
		j.r.log.WarnContext(ctx, "conversion: state.json was written by a later holder of the job's lease: stopping without a checkpoint",
			"job", j.job.ID, "ours", j.lease.Token(), "theirs", cur.Fence)
		_ = j.lease.Release(ctx) // marks it lost: Hold's next renewal ends the run
		return errLeaseLost
	}
	return nil
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
		ok, err = lease.Break(c, r.cfg.KV, leaseKey(id), owner)
		return err
	})
	if ok {
		r.log.InfoContext(ctx, "conversion lease broken", "job", id, "owner", owner)
	}
	return ok, err
}
