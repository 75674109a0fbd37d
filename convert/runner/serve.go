package runner

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/convert"
)

// Serve runs the jobs uploaded over the API (Create) until ctx ends: the
// queued ones, the paused ones and the orphaned ones (running, but their
// runner died and its lease expired), oldest first, one at a time per
// instance. Several instances may serve the same store: a job's lease
// gives it to one of them. At start, and every recoverEvery while the
// queue (the KV set conversion:jobs) is empty, it also looks for
// unfinished jobs in the object store, the system of record, so a lost
// KV loses no job. It returns when ctx is done and the job it was
// running has checkpointed.
func (r *Runner) Serve(ctx context.Context, poll time.Duration) {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	r.log.InfoContext(ctx, "conversion runner serving", "owner", r.cfg.Owner, "poll", poll)
	r.recover(ctx)
	recovered := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := poll
		ran, empty := r.serveOne(ctx)
		if ran {
			next = 0 // look for the next job at once
		}
		if empty && time.Since(recovered) >= recoverEvery {
			r.recover(ctx)
			recovered = time.Now()
		}
		t.Reset(next)
	}
}

// recoverEvery is how often an idle Serve lists the object store for
// jobs the KV queue lost.
const recoverEvery = 5 * time.Minute

// recover puts every unfinished API job of the object store back into
// the queue.
func (r *Runner) recover(ctx context.Context) {
	var ids []string
	lctx, cancel := context.WithTimeout(ctx, 6*r.cfg.OpTimeout) // a listing takes several round trips
	defer cancel()
	err := r.cfg.Objects.List(lctx, objPrefix, func(oi licensehub.ObjectInfo) error {
		rest, ok := strings.CutPrefix(oi.Key, objPrefix)
		if id, ok2 := strings.CutSuffix(rest, "/job.json"); ok && ok2 && ValidID(id) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "conversion: listing the jobs in the object store failed; serving the KV queue only", "err", err)
		}
		return
	}
	queued := 0
	for _, id := range ids {
		// state.json, not job.json alone: an upload still being created
		// (or one that failed) has none.
		var st State
		if err := r.getJSON(ctx, stateKey(id), &st); err != nil || !st.runnable() {
			continue
		}
		if err := r.kv(ctx, func(c context.Context) error { return r.cfg.KV.SAdd(c, kvJobs, id) }); err != nil {
			r.log.WarnContext(ctx, "conversion: queueing a job found in the object store failed", "job", id, "err", err)
			return
		}
		queued++
	}
	if queued > 0 {
		r.log.InfoContext(ctx, "conversion: unfinished jobs found in the object store", "jobs", queued)
	}
}

// runnable reports whether Serve should run the job: an uploaded job not
// finished.
func (s *State) runnable() bool {
	return s.Job.Source == sourceKey(s.Job.ID) && s.State != StateDone && s.State != StateFailed
}

// serveOne runs the oldest runnable job whose lease it gets; it reports
// whether it ran one, and whether the queue was empty.
func (r *Runner) serveOne(ctx context.Context) (ran, empty bool) {
	var ids []string
	if err := r.kv(ctx, func(c context.Context) (err error) { ids, err = r.cfg.KV.SMembers(c, kvJobs); return err }); err != nil {
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "conversion: reading the job queue failed", "err", err)
		}
		return false, false
	}
	var jobs []Job
	for _, id := range ids {
		if ctx.Err() != nil {
			return false, false
		}
		st, err := r.stored(ctx, id)
		switch {
		case licensehub.IsCode(err, licensehub.ENOTFOUND) || err == nil && !st.runnable():
			_ = r.kv(ctx, func(c context.Context) error { return r.cfg.KV.SRem(c, kvJobs, id) })
			continue
		case err != nil:
			r.log.WarnContext(ctx, "conversion: reading a queued job failed", "job", id, "err", err)
			continue
		}
		jobs = append(jobs, st.Job)
	}
	slices.SortFunc(jobs, func(a, b Job) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, job := range jobs {
		if ctx.Err() != nil {
			return false, false
		}
		st, err := r.Run(ctx, job, func() (convert.Reader, error) { return r.OpenSource(ctx, job) }, RunOptions{})
		if licensehub.IsCode(err, licensehub.ECONFLICT) && st == nil {
			continue // another instance runs it
		}
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "conversion job ended with an error", "job", job.ID, "code", licensehub.ErrorCode(err))
		}
		return true, false
	}
	return false, len(ids) == 0
}
