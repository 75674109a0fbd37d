package runner

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/lease"
	"github.com/licensehub/licensehub/license"
)

// RunOptions adjust one Run.
type RunOptions struct {
	// DryRun validates only: every row is checked as a push would be
	// (Library.Check) and against the library for duplicates
	// (Library.Holds); nothing is written anywhere (no lease, no object,
	// no KV key). The counts say what a real run would do.
	DryRun bool
	// Progress is called with the live state at most every 500ms, and once
	// with the final state.
	Progress func(State)
	// Rejects receives a dry run's rejected rows as CSV (the header, then
	// line order), since a dry run stores nothing. A real run keeps them in
	// the object store: see Runner.Rejects.
	Rejects io.Writer
}

// Backoff of a paused job: the failed call is retried after 200ms,
// doubling to 10s.
const (
	minBackoff     = 200 * time.Millisecond
	maxBackoff     = 10 * time.Second
	reportInterval = 500 * time.Millisecond
)

// Outcome kinds of a row.
const (
	kindConverted = iota + 1
	kindDuplicate
	kindRejected
	kindFatal
)

// item is a row on its way to a worker.
type item struct {
	seq  int64
	line int
	req  license.PushRequest
}

// outcome is what became of a row.
type outcome struct {
	seq  int64
	line int
	kind int
	rej  *convert.Reject
	err  error // kindFatal
}

// How a pass over the source ended.
const (
	endDone    = iota // every row read and accounted for
	endStopped        // the context ended (shutdown, cancel, lost lease)
	endFailed         // cannot go on: err
	endRetry          // the source could not be read (store away): again from the checkpoint
)

type passEnd struct {
	kind int
	err  error
}

// jobRun is one Run of one job.
type jobRun struct {
	r     *Runner
	job   Job
	m     *convert.Mapping
	opts  RunOptions
	lease *lease.Lease // nil for dry runs

	// mu guards st, live, pending, sinceCkpt and sessionRows: the
	// collector writes them, the reporter reads them.
	mu          sync.Mutex
	st          State            // the last checkpoint (as written)
	live        State            // st advanced to the low watermark
	pending     []convert.Reject // rejects committed since the checkpoint, line order
	sinceCkpt   int              // rows committed since the checkpoint
	sessionRows int              // rows committed by this Run
	lastCkpt    time.Time

	paused    atomic.Int32 // calls being retried
	attempts  atomic.Int64 // retries since the job paused
	bytesDone atomic.Int64
	// The rate counts from the first row this Run processes (not the rows
	// a resumed run skips).
	startNanos atomic.Int64
	startBytes atomic.Int64

	// Dry runs: the natural keys seen, as 16-byte SM3 digests, with the
	// line that claimed each. It is the one structure that grows with the
	// rows (about 40-50 bytes per row: 1M rows, ~50 MB); real runs keep no
	// per-row state past its checkpoint, the library's create-only license
	// object being the duplicate check.
	seenMu  sync.Mutex
	seen    map[[16]byte]int32
	rejects *csv.Writer
}

// Run runs or resumes job: open gives a fresh Reader from the start of
// the source (it is called again when a pass has to start over, e.g.
// after the object store failed while the source was being read). It
// takes the job's lease (ECONFLICT with Details["owner"] when another
// runner holds it), skips the rows up to the checkpoint, converts the
// rest and returns the final State: done, or failed with the error. A
// job already done returns its state without work. When ctx ends, the
// job checkpoints, goes back to queued and Run returns ctx's error.
func (r *Runner) Run(ctx context.Context, job Job, open func() (convert.Reader, error), opts RunOptions) (*State, error) {
	if !ValidID(job.ID) {
		return nil, licensehub.FieldError(licensehub.EINVALID, "id", "a conversion job ID is 32 lower-case hex digits, got %q", clip(job.ID))
	}
	if open == nil {
		return nil, licensehub.FieldError(licensehub.EINVALID, "open", "conversion: no source to read")
	}
	j := &jobRun{r: r, job: job, opts: opts}
	j.startBytes.Store(-1)
	if opts.DryRun {
		return j.dryRun(ctx, open)
	}
	ls, err := r.acquire(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	j.lease = ls
	ctx, release := ls.Hold(ctx)
	defer release()
	return j.run(ctx, open)
}

func (j *jobRun) run(ctx context.Context, open func() (convert.Reader, error)) (*State, error) {
	r, id := j.r, j.job.ID
	var st State
	err := j.retry(ctx, func(c context.Context) error {
		err := r.getJSON(c, stateKey(id), &st)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			st = State{}
			return nil
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, j.ctxErr(ctx)
		}
		return nil, err
	}
	if st.State == StateDone {
		return &st, nil
	}
	if j.lease != nil {
		// The token counter lives in the KV and starts over when the KV is
		// lost: lift ours above the one the durable state carries.
		if st.Fence, err = j.lease.Raise(ctx, st.Fence); err != nil {
			if errors.Is(err, errLeaseLost) {
				return nil, leaseLostError(j.job.ID)
			}
			if ctx.Err() != nil {
				return nil, j.ctxErr(ctx)
			}
			return nil, err
		}
	}
	st.Job = j.job
	if st.Counts.RejectedBy == nil {
		st.Counts.RejectedBy = map[string]int{}
	}
	j.st, j.live = st, cloneState(st)
	if j.m, err = r.mapping(j.job.Mapping); err != nil {
		return j.fail(ctx, err)
	}

	stopReport := j.startReporter(ctx)
	defer stopReport()
	backoff := minBackoff
	for {
		j.mu.Lock()
		j.st.State, j.st.Owner, j.st.Error, j.st.FinishedAt = StateRunning, r.cfg.Owner, "", time.Time{}
		if j.st.StartedAt.IsZero() {
			j.st.StartedAt = r.now()
		}
		j.st.BytesTotal, j.st.ETASeconds, j.st.UpdatedAt = j.job.Size, -1, r.now()
		next := cloneState(j.st)
		j.live.State, j.live.Owner, j.live.StartedAt = next.State, next.Owner, next.StartedAt
		j.mu.Unlock()
		if err := j.retry(ctx, func(c context.Context) error { return r.putJSON(c, stateKey(id), &next) }); err != nil {
			if ctx.Err() != nil {
				return j.stop(ctx, stopReport)
			}
			stopReport()
			return j.fail(ctx, err)
		}
		lineBefore := j.st.Line
		end := j.pass(ctx, open)
		switch end.kind {
		case endDone:
			stopReport()
			return j.finish(ctx)
		case endStopped:
			return j.stop(ctx, stopReport)
		case endFailed:
			stopReport()
			return j.fail(ctx, end.err)
		}
		// endRetry: checkpoint what the pass did, wait, read again.
		if err := j.checkpoint(ctx, StatePaused, false); err != nil && ctx.Err() == nil {
			stopReport()
			return j.fail(ctx, err)
		}
		if j.st.Line > lineBefore {
			backoff = minBackoff // the pass got somewhere: a new outage
		}
		j.paused.Add(1)
		j.attempts.Add(1)
		r.log.WarnContext(ctx, "conversion paused: the source could not be read; reading again from the checkpoint",
			"job", id, "line", j.st.Line, "err", licensehub.ErrorCode(end.err), "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		if j.paused.Add(-1) == 0 {
			j.attempts.Store(0)
		}
		backoff = min(2*backoff, maxBackoff)
		if ctx.Err() != nil {
			return j.stop(ctx, stopReport)
		}
	}
}

// ctxErr is the error Run returns when ctx ended.
func (j *jobRun) ctxErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errLeaseLost) || j.lease != nil && j.lease.Lost() {
		return leaseLostError(j.job.ID)
	}
	return ctx.Err()
}

func leaseLostError(id string) error {
	return &licensehub.Error{Code: licensehub.ECONFLICT, Field: "id", Err: errLeaseLost,
		Message: "conversion " + id + ": the lease was taken by another runner; this one stopped",
		Details: map[string]any{"reason": "lease_lost"}}
}

// stop ends a Run whose context ended: unless the lease was lost, the
// last rows are checkpointed (with a fresh deadline) and the job goes
// back to queued for the next runner.
func (j *jobRun) stop(ctx context.Context, stopReport func()) (*State, error) {
	stopReport()
	if j.lease != nil && j.lease.Lost() {
		s := j.snapshot()
		return &s, j.ctxErr(ctx)
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*j.r.cfg.OpTimeout)
	defer cancel()
	if err := j.checkpoint(c, StateQueued, false); err != nil {
		j.r.log.WarnContext(ctx, "conversion: the last checkpoint failed; the job resumes from the one before", "job", j.job.ID, "err", err)
	}
	j.r.unpublish(c, j.job.ID)
	j.r.log.InfoContext(ctx, "conversion stopped; it resumes from its checkpoint", "job", j.job.ID, "line", j.st.Line)
	s := j.final()
	return &s, j.ctxErr(ctx)
}

// fail records the job as failed (after its last rows) and returns err.
func (j *jobRun) fail(ctx context.Context, cause error) (*State, error) {
	if j.lease != nil && j.lease.Lost() {
		return j.stop(ctx, func() {}) // not ours to record any more
	}
	j.mu.Lock()
	j.live.Error = licensehub.ErrorCode(cause) + ": " + licensehub.Message(cause)
	j.mu.Unlock()
	if err := j.checkpoint(ctx, StateFailed, false); err != nil {
		j.r.log.WarnContext(ctx, "conversion: recording the failure failed", "job", j.job.ID, "err", err)
	}
	j.r.dequeue(ctx, j.job.ID)
	j.r.log.ErrorContext(ctx, "conversion failed", "job", j.job.ID, "line", j.st.Line, "code", licensehub.ErrorCode(cause), "err", licensehub.Message(cause))
	s := j.final()
	return &s, cause
}

// finish writes the last checkpoint, report.json and the done state.
func (j *jobRun) finish(ctx context.Context) (*State, error) {
	if err := j.checkpoint(ctx, StateDone, true); err != nil {
		if ctx.Err() != nil {
			return j.stop(ctx, func() {})
		}
		return j.fail(ctx, err)
	}
	j.r.dequeue(ctx, j.job.ID)
	s := j.final()
	c := s.Counts
	j.r.log.InfoContext(ctx, "conversion done", "job", j.job.ID, "mapping", j.job.Mapping, "read", c.Read,
		"converted", c.Converted, "duplicates", c.Duplicates, "rejected", c.Rejected,
		"took", s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond), "rows_per_second", int(s.RowsPerSec))
	return &s, nil
}

// final is the state after the last checkpoint, given to Progress.
func (j *jobRun) final() State {
	j.mu.Lock()
	s := cloneState(j.st)
	j.mu.Unlock()
	if j.opts.Progress != nil {
		j.opts.Progress(s)
	}
	return s
}

// dequeue removes a finished job from Serve's queue and its live state.
func (r *Runner) dequeue(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	if err := r.kv(ctx, func(c context.Context) error { return r.cfg.KV.SRem(c, kvJobs, id) }); err != nil {
		r.log.WarnContext(ctx, "conversion: removing a finished job from the queue failed; Serve drops it when it meets it", "job", id, "err", err)
	}
	r.unpublish(ctx, id)
	// The fencing counter ends with the job; a rerun's tokens start over
	// and Raise lifts them above the one state.json carries.
	_ = r.kv(ctx, func(c context.Context) error { return r.cfg.KV.Delete(c, lease.FenceKey(leaseKey(id))) })
}

func (r *Runner) unpublish(ctx context.Context, id string) {
	_ = r.kv(context.WithoutCancel(ctx), func(c context.Context) error { return r.cfg.KV.Delete(c, progressKey(id)) })
}

// checkpoint writes the rejects committed since the last checkpoint (one
// create-only part) and state.json at the low watermark, in state; final
// also writes report.json (before state.json, so that a done state always
// has its report). Store failures pause and retry until ctx ends.
func (j *jobRun) checkpoint(ctx context.Context, state string, final bool) error {
	if j.lease != nil && j.lease.Lost() {
		return errLeaseLost
	}
	if j.lease != nil {
		if err := j.checkFence(ctx); err != nil {
			return err
		}
	}
	r, id := j.r, j.job.ID
	j.mu.Lock()
	next := cloneState(j.live)
	pending := j.pending
	n := j.sinceCkpt
	j.mu.Unlock()

	if len(pending) > 0 {
		key := rejectPartKey(id, pending[0].Line)
		data := encodeRejects(pending)
		err := j.retry(ctx, func(c context.Context) error {
			err := r.create(c, key, data, csvType)
			if licensehub.IsCode(err, licensehub.ECONFLICT) {
				// A part no state.json names (every named part ends at or
				// before its Line, and this one starts after it): left by a
				// run that stopped before its checkpoint, or our own create
				// whose answer was lost. Ours replaces it.
				err = r.put(c, key, data, csvType)
			}
			return err
		})
		if err != nil {
			return err
		}
		next.RejectParts = append(next.RejectParts, key)
	}
	now := r.now()
	next.State, next.UpdatedAt, next.Attempts = state, now, 0
	if j.lease != nil {
		next.Fence = j.lease.Token()
	}
	next.BytesTotal = j.job.Size
	j.rates(&next)
	switch state {
	case StateDone:
		next.FinishedAt, next.ETASeconds, next.BytesDone = now, 0, j.job.Size
	case StateFailed:
		next.FinishedAt = now
	}
	if state != StateFailed {
		next.Error = ""
	}
	if final {
		if err := j.retry(ctx, func(c context.Context) error { return r.putJSON(c, reportKey(id), &next) }); err != nil {
			return err
		}
	}
	if err := j.retry(ctx, func(c context.Context) error { return r.putJSON(c, stateKey(id), &next) }); err != nil {
		return err
	}
	j.mu.Lock()
	j.st = next
	j.live.RejectParts = slices.Clone(next.RejectParts)
	j.pending = slices.Delete(j.pending, 0, len(pending))
	j.sinceCkpt -= n
	j.lastCkpt = time.Now()
	j.mu.Unlock()
	c := next.Counts
	r.log.DebugContext(ctx, "conversion checkpoint", "job", id, "state", state, "line", next.Line, "read", c.Read,
		"converted", c.Converted, "duplicates", c.Duplicates, "rejected", c.Rejected)
	return nil
}

// rates fills RowsPerSec and ETASeconds from this Run's progress.
func (j *jobRun) rates(s *State) {
	s.BytesDone = j.bytesDone.Load()
	s.ETASeconds = -1
	start := j.startNanos.Load()
	if start == 0 {
		return
	}
	elapsed := time.Since(time.Unix(0, start)).Seconds()
	if elapsed <= 0 {
		return
	}
	j.mu.Lock()
	rows := j.sessionRows
	j.mu.Unlock()
	s.RowsPerSec = float64(rows) / elapsed
	if b0 := j.startBytes.Load(); b0 >= 0 && s.BytesTotal > 0 {
		if rate := float64(s.BytesDone-b0) / elapsed; rate > 0 {
			s.ETASeconds = max(0, float64(s.BytesTotal-s.BytesDone)/rate)
		}
	}
}

// snapshot is the live state.
func (j *jobRun) snapshot() State {
	j.mu.Lock()
	s := cloneState(j.live)
	j.mu.Unlock()
	s.State = StateRunning
	if j.paused.Load() > 0 {
		s.State = StatePaused
		s.Attempts = int(j.attempts.Load())
	}
	s.Owner = j.r.cfg.Owner
	s.BytesTotal = j.job.Size
	s.UpdatedAt = j.r.now()
	j.rates(&s)
	return s
}

// startReporter calls Progress and publishes the live state to the KV
// (real runs) every reportInterval; the returned function stops it and
// may be called more than once.
func (j *jobRun) startReporter(ctx context.Context) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(reportInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s := j.snapshot()
			if j.opts.Progress != nil {
				j.opts.Progress(s)
			}
			if j.lease != nil && !j.lease.Lost() {
				j.r.publish(ctx, &s)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

// publish stores the live state for State (best effort, short deadline:
// a KV outage must not hold progress reports up).
func (r *Runner) publish(ctx context.Context, s *State) {
	raw, err := json.Marshal(s)
	if err != nil {
		return
	}
	c, cancel := context.WithTimeout(ctx, min(r.cfg.OpTimeout, time.Second))
	defer cancel()
	if err := r.cfg.KV.Set(c, progressKey(s.Job.ID), raw, r.cfg.LeaseTTL); err != nil {
		r.log.DebugContext(ctx, "conversion: publishing progress failed", "job", s.Job.ID, "err", err)
	}
}

// pass reads the source once, from the row after the checkpoint, and
// runs every row through the pipeline:
//
//	dispatcher ──(per natural key)──▶ Workers ──▶ collector
//
// The dispatcher reads rows in order, turns each into a push request
// (Mapping.Request) and sends it to worker hash(type|authority|serial) %
// Workers, so two rows with the same natural key are pushed in line
// order by one worker: the earlier line wins, in every run. A row is
// numbered (seq) in read order; the collector commits outcomes in seq
// order only, so its watermark is a low watermark: every row up to it is
// done. At most window rows are between the watermark and the
// dispatcher (credits), which bounds memory whatever a slow worker does.
func (j *jobRun) pass(ctx context.Context, open func() (convert.Reader, error)) passEnd {
	var rd convert.Reader
	err := j.retry(ctx, func(context.Context) (err error) { rd, err = open(); return err })
	if err != nil {
		if ctx.Err() != nil {
			return passEnd{kind: endStopped}
		}
		return passEnd{kind: endFailed, err: err}
	}
	defer rd.Close()
	j.mu.Lock()
	from := j.live.Line
	j.mu.Unlock()

	workers := j.r.cfg.Workers
	// The window: CheckpointRows × Workers rows, within 256..65536 (a
	// ring of outcomes, ~64 bytes each, and the rejects among them).
	window := min(max(j.r.cfg.CheckpointRows*workers, 256), 1<<16)
	credits := make(chan struct{}, window)
	out := make(chan outcome, 8*workers)
	work := make([]chan item, workers)
	for i := range work {
		work[i] = make(chan item, 16)
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()

	var wg sync.WaitGroup
	var readErr error
	var eof bool
	var dispatched int64
	wg.Add(1 + workers)
	go func() {
		defer wg.Done()
		dispatched, eof, readErr = j.dispatch(pctx, rd, from, credits, work, out)
	}()
	for i := range work {
		go func() {
			defer wg.Done()
			for it := range work[i] {
				if pctx.Err() != nil {
					continue
				}
				if o, ok := j.process(pctx, it); ok {
					out <- o
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()

	committed, fatal, ckptErr := j.collect(ctx, pcancel, out, credits, window)
	switch {
	case ctx.Err() != nil:
		return passEnd{kind: endStopped}
	case fatal != nil:
		return passEnd{kind: endFailed, err: fatal}
	case ckptErr != nil:
		return passEnd{kind: endFailed, err: ckptErr}
	case readErr != nil && retryable(readErr):
		return passEnd{kind: endRetry, err: readErr}
	case readErr != nil:
		return passEnd{kind: endFailed, err: readErr}
	case !eof || committed != dispatched:
		return passEnd{kind: endFailed, err: licensehub.Errorf(licensehub.EINTERNAL,
			"conversion %s: %d rows dispatched, %d accounted for", j.job.ID, dispatched, committed)}
	}
	return passEnd{kind: endDone}
}

// dispatch reads the rows after line from, and routes them; it closes
// the work channels when it returns.
func (j *jobRun) dispatch(ctx context.Context, rd convert.Reader, from int, credits chan<- struct{}, work []chan item, out chan<- outcome) (n int64, eof bool, err error) {
	defer func() {
		for _, w := range work {
			close(w)
		}
	}()
	send := func(o outcome) bool {
		select {
		case out <- o:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		row, rerr := rd.Next()
		done, _ := rd.Progress()
		j.bytesDone.Store(done)
		if rerr == io.EOF {
			return n, true, nil
		}
		var rowErr *convert.RowError
		line := row.Line
		if errors.As(rerr, &rowErr) {
			line = rowErr.Line
		} else if rerr != nil {
			return n, false, rerr
		}
		if line <= from {
			continue // done before the checkpoint
		}
		if j.startNanos.Load() == 0 {
			j.startBytes.Store(done)
			j.startNanos.Store(time.Now().UnixNano())
		}
		select {
		case credits <- struct{}{}:
		case <-ctx.Done():
			return n, false, nil
		}
		seq := n
		n++
		if rowErr != nil {
			if !send(outcome{seq: seq, line: line, kind: kindRejected, rej: &convert.Reject{Line: line,
				Code: convert.RejectMalformedRow, Message: licensehub.Message(rowErr.Err)}}) {
				return n, false, nil
			}
			continue
		}
		req, rej := j.m.Request(row, j.job.ID)
		if rej != nil {
			rj := *rej
			if rj.Line == 0 {
				rj.Line = line
			}
			if !send(outcome{seq: seq, line: line, kind: kindRejected, rej: &rj}) {
				return n, false, nil
			}
			continue
		}
		select {
		case work[route(&req, len(work))] <- item{seq: seq, line: line, req: req}:
		case <-ctx.Done():
			return n, false, nil
		}
	}
	return n, false, nil
}

// naturalKey is what the library's natural key is made of: type,
// authority and the number reduced to its identifier serial (upper case,
// [0-9A-Z] only; license.serialOf).
func naturalKey(req *license.PushRequest) []byte {
	b := make([]byte, 0, len(req.TypeCode)+len(req.Issuer.Code)+len(req.Number)+2)
	b = append(b, req.TypeCode...)
	b = append(b, '|')
	b = append(b, req.Issuer.Code...)
	b = append(b, '|')
	for i := 0; i < len(req.Number); i++ {
		switch c := req.Number[i]; {
		case c >= '0' && c <= '9' || c >= 'A' && c <= 'Z':
			b = append(b, c)
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		}
	}
	return b
}

// route is the worker of a row's natural key.
func route(req *license.PushRequest, workers int) int {
	h := fnv.New64a()
	h.Write(naturalKey(req))
	return int(h.Sum64() % uint64(workers))
}

// process pushes one row (or checks it, on a dry run); false when ctx
// ended first.
func (j *jobRun) process(ctx context.Context, it item) (outcome, bool) {
	o := outcome{seq: it.seq, line: it.line}
	var err error
	if j.opts.DryRun {
		o.kind, err = j.check(ctx, it)
	} else {
		err = j.retry(ctx, func(c context.Context) error {
			_, err := j.r.cfg.Library.Push(c, it.req)
			return err
		})
		if err == nil {
			// Created, or already made by this job (a resumed row: same
			// content, since the provenance names this job and line).
			o.kind = kindConverted
		}
	}
	if err == nil {
		return o, true
	}
	if ctx.Err() != nil {
		return o, false
	}
	var e *licensehub.Error
	errors.As(err, &e)
	switch code := licensehub.ErrorCode(err); {
	case code == licensehub.ECONFLICT && e != nil && e.Details["reason"] == "natural_key_conflict":
		o.kind = kindDuplicate
	case code == licensehub.EINTERNAL:
		o.kind, o.err = kindFatal, err
	default:
		rj := &convert.Reject{Line: it.line, Code: convert.RejectInvalid, Number: it.req.Number, Message: licensehub.Message(err)}
		if e != nil {
			rj.Field = e.Field
			if code != licensehub.EINVALID {
				rj.Message = code + ": " + rj.Message
			}
		}
		o.kind, o.rej = kindRejected, rj
	}
	return o, true
}

// check is a dry run's push: Library.Check, the in-file duplicate set,
// then Library.Holds.
func (j *jobRun) check(ctx context.Context, it item) (int, error) {
	lib := j.r.cfg.Library
	if err := j.retry(ctx, func(c context.Context) error { _, err := lib.Check(c, it.req); return err }); err != nil {
		return 0, err
	}
	d := sm3.Sum(naturalKey(&it.req))
	var key [16]byte
	copy(key[:], d[:16])
	j.seenMu.Lock()
	first, seen := j.seen[key]
	if !seen {
		j.seen[key] = int32(it.line)
	}
	j.seenMu.Unlock()
	if seen && int(first) < it.line {
		return kindDuplicate, nil
	}
	var held bool
	if err := j.retry(ctx, func(c context.Context) (err error) {
		_, held, err = lib.Holds(c, it.req.TypeCode, it.req.Issuer.Code, it.req.Number)
		return err
	}); err != nil {
		return 0, err
	}
	if held {
		return kindDuplicate, nil
	}
	return kindConverted, nil
}

// retryable reports the errors of a backend that is away: the job pauses
// and retries the same call.
func retryable(err error) bool {
	switch licensehub.ErrorCode(err) {
	case licensehub.EOBJECTSTORE, licensehub.EUNAVAILABLE, licensehub.ETIMEOUT, licensehub.EOUTCOMEUNKNOWN:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// retry calls f (with a deadline per call) until it succeeds, fails for
// a reason other than a backend being away, or ctx ends. While it
// retries the job is paused: backoff 200ms doubling to 10s.
func (j *jobRun) retry(ctx context.Context, f func(context.Context) error) error {
	backoff := minBackoff
	paused := false
	defer func() {
		if paused && j.paused.Add(-1) == 0 {
			j.attempts.Store(0)
			if ctx.Err() == nil {
				j.r.log.InfoContext(ctx, "conversion resumed", "job", j.job.ID)
			}
		}
	}()
	for {
		c, cancel := context.WithTimeout(ctx, 4*j.r.cfg.OpTimeout)
		err := f(c)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return err
		}
		if !paused {
			paused = true
			if j.paused.Add(1) == 1 {
				// The code only: a store error's message may name a KV key
				// made of a holder code.
				j.r.log.WarnContext(ctx, "conversion paused: a backend is unavailable; retrying", "job", j.job.ID,
					"code", licensehub.ErrorCode(err))
			}
		}
		j.attempts.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// collect commits outcomes in seq order and checkpoints every
// CheckpointRows rows or CheckpointEvery; it returns when out is closed.
// A fatal outcome stops the pass (pcancel); its row stays uncommitted.
func (j *jobRun) collect(ctx context.Context, pcancel context.CancelFunc, out <-chan outcome, credits <-chan struct{}, window int) (committed int64, fatal, ckptErr error) {
	ring := make([]outcome, window)
	filled := make([]bool, window)
	var base int64
	every := j.r.cfg.CheckpointEvery
	t := time.NewTicker(min(every, reportInterval))
	defer t.Stop()
	j.mu.Lock()
	j.lastCkpt = time.Now()
	j.mu.Unlock()
	checkpoint := func() {
		if j.opts.DryRun || ckptErr != nil || ctx.Err() != nil {
			return
		}
		if err := j.checkpoint(ctx, StateRunning, false); err != nil && ctx.Err() == nil {
			ckptErr = err
			pcancel()
		}
	}
	for {
		select {
		case o, ok := <-out:
			if !ok {
				return base, fatal, ckptErr
			}
			if o.kind == kindFatal {
				if fatal == nil {
					fatal = o.err
					pcancel()
				}
				continue
			}
			i := int(o.seq % int64(window))
			ring[i], filled[i] = o, true
			for filled[base%int64(window)] {
				k := int(base % int64(window))
				j.commit(ring[k])
				ring[k], filled[k] = outcome{}, false
				base++
				<-credits
			}
			j.mu.Lock()
			due := j.sinceCkpt >= j.r.cfg.CheckpointRows
			j.mu.Unlock()
			if due {
				checkpoint()
			}
		case <-t.C:
			j.mu.Lock()
			due := j.sinceCkpt > 0 && time.Since(j.lastCkpt) >= every
			j.mu.Unlock()
			if due {
				checkpoint()
			}
		}
	}
}

// commit accounts for one row at the watermark.
func (j *jobRun) commit(o outcome) {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := &j.live.Counts
	c.Read++
	switch o.kind {
	case kindConverted:
		c.Converted++
	case kindDuplicate:
		c.Duplicates++
	case kindRejected:
		c.Rejected++
		c.RejectedBy[o.rej.Code]++
		if j.rejects != nil {
			j.rejects.Write([]string{strconv.Itoa(o.rej.Line), o.rej.Field, o.rej.Code, oneLine(o.rej.Message), o.rej.Number})
		} else if !j.opts.DryRun {
			j.pending = append(j.pending, *o.rej)
		}
	}
	j.live.Line = o.line
	j.sinceCkpt++
	j.sessionRows++
}

// dryRun runs the job's rows through Check and Holds; it stores nothing.
func (j *jobRun) dryRun(ctx context.Context, open func() (convert.Reader, error)) (*State, error) {
	m, err := j.r.mapping(j.job.Mapping)
	if err != nil {
		return nil, err
	}
	j.m = m
	j.seen = map[[16]byte]int32{}
	if j.opts.Rejects != nil {
		j.rejects = csv.NewWriter(j.opts.Rejects)
		j.rejects.Write(RejectsHeader)
	}
	start := j.r.now()
	j.live = State{Job: j.job, State: StateRunning, StartedAt: start, Owner: j.r.cfg.Owner,
		BytesTotal: j.job.Size, ETASeconds: -1, Counts: Counts{RejectedBy: map[string]int{}}}
	stopReport := j.startReporter(ctx)
	backoff := minBackoff
	var end passEnd
	for {
		end = j.pass(ctx, open)
		if end.kind != endRetry {
			break
		}
		j.paused.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		j.paused.Add(-1)
		backoff = min(2*backoff, maxBackoff)
	}
	stopReport()
	if j.rejects != nil {
		j.rejects.Flush()
	}
	j.mu.Lock()
	s := cloneState(j.live)
	j.mu.Unlock()
	j.rates(&s)
	s.UpdatedAt = j.r.now()
	var rerr error
	switch end.kind {
	case endDone:
		s.State, s.FinishedAt, s.ETASeconds, s.BytesDone = StateDone, s.UpdatedAt, 0, j.job.Size
	case endStopped:
		s.State, rerr = StateQueued, ctx.Err()
	default:
		s.State, s.FinishedAt, rerr = StateFailed, s.UpdatedAt, end.err
		s.Error = licensehub.ErrorCode(end.err) + ": " + licensehub.Message(end.err)
	}
	if rerr == nil && j.rejects != nil {
		rerr = j.rejects.Error()
	}
	j.mu.Lock()
	j.st = s
	j.mu.Unlock()
	j.final()
	return &s, rerr
}

func cloneState(s State) State {
	s.Counts.RejectedBy = maps.Clone(s.Counts.RejectedBy)
	if s.Counts.RejectedBy == nil {
		s.Counts.RejectedBy = map[string]int{}
	}
	s.RejectParts = slices.Clone(s.RejectParts)
	return s
}

// Summary is a one-line account of counts, for logs and the CLI.
func (c Counts) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read %d, converted %d, duplicates %d, rejected %d", c.Read, c.Converted, c.Duplicates, c.Rejected)
	if len(c.RejectedBy) > 0 {
		b.WriteString(" (")
		for i, code := range slices.Sorted(maps.Keys(c.RejectedBy)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", code, c.RejectedBy[code])
		}
		b.WriteString(")")
	}
	return b.String()
}
