package redis

import (
	"context"
	"runtime"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Automatic pipelining. Hub requests make several short Redis calls each
// (nonce, rate counter, consent, status, use record, audit append), and
// dozens of requests are in flight at once. Sent one by one, every call
// costs a write and a read system call on both sides, and those calls, not
// Redis's work, bound the hub's rate. The batcher is a go-redis process
// hook: a single command from any goroutine is queued, and a few flusher
// goroutines each take whatever is queued (up to maxBatch) and send it as
// one pipeline on one connection. A flusher that wakes for a command
// yields once (runtime.Gosched) before it drains the queue, so the
// goroutines about to queue join the batch: on the lookup benchmark that
// took batches from ~5 to ~18 commands and the hub's rate up by a third.
// There is no timer: a lone command on an idle hub goes out at once, and
// under load commands share round trips. Pipelining keeps each command's own semantics and reply; it is
// not a transaction.
//
// Only the commands the Store itself sends are batched: blocking commands
// (XREAD BLOCK, BLPOP, ...) would stall every command queued behind them,
// so anything not on the list goes straight to the connection pool.

const maxBatch = 128

var batchable = map[string]bool{
	"get": true, "set": true, "del": true, "exists": true, "pexpire": true,
	"incrby": true, "evalsha": true, "eval": true,
	"sadd": true, "srem": true, "smembers": true, "sismember": true, "scard": true,
	"zadd": true, "zrem": true, "zrange": true, "zrangebyscore": true, "zcard": true, "zscore": true,
	"xadd": true, "xrange": true, "xlen": true, "xtrim": true,
}

type queued struct {
	ctx  context.Context
	cmd  goredis.Cmder
	done chan struct{}
}

type batcher struct {
	c       *goredis.Client
	timeout time.Duration // bounds one pipeline's round trip
	queue   chan *queued
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// newBatcher starts flushers goroutines sending c's queued commands;
// close stops them.
func newBatcher(c *goredis.Client, flushers int, timeout time.Duration) *batcher {
	b := &batcher{c: c, timeout: timeout, queue: make(chan *queued, 4*maxBatch), stop: make(chan struct{})}
	b.wg.Add(flushers)
	for range flushers {
		go b.flush()
	}
	return b
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

func (b *batcher) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (b *batcher) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// ProcessHook queues a batchable command and waits for its reply. The
// wait is bounded: the flusher's pipeline has its own deadline, and a
// command whose context ended while queued is answered with that error
// without being sent.
func (b *batcher) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !batchable[cmd.Name()] {
			return next(ctx, cmd)
		}
		q := &queued{ctx: ctx, cmd: cmd, done: make(chan struct{})}
		select {
		case b.queue <- q:
		case <-b.stop:
			return next(ctx, cmd)
		case <-ctx.Done():
			return ctx.Err()
		}
		// The flusher owns cmd until done is closed: wait for it even if
		// ctx ends (the pipeline's deadline bounds the wait).
		<-q.done
		return cmd.Err()
	}
}

// flush sends what is queued, a pipeline at a time, until stop; then it
// answers whatever is still queued the same way, so no caller waits on a
// stopped batcher.
func (b *batcher) flush() {
	defer b.wg.Done()
	batch := make([]*queued, 0, maxBatch)
	for {
		select {
		case q := <-b.queue:
			batch = append(batch[:0], q)
		case <-b.stop:
			for {
				select {
				case q := <-b.queue:
					b.send([]*queued{q})
				default:
					return
				}
			}
		}
		runtime.Gosched() // let the goroutines that are about to queue do so
	fill:
		for len(batch) < maxBatch {
			select {
			case q := <-b.queue:
				batch = append(batch, q)
			default:
				break fill
			}
		}
		b.send(batch)
		clear(batch)
	}
}

// send runs one pipeline of the live commands in batch and releases every
// waiter.
func (b *batcher) send(batch []*queued) {
	live := make([]goredis.Cmder, 0, len(batch))
	var deadline time.Time
	for _, q := range batch {
		if err := q.ctx.Err(); err != nil {
			q.cmd.SetErr(err)
			continue
		}
		live = append(live, q.cmd)
		if d, ok := q.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	if len(live) > 0 {
		// The pipeline lives as long as its most patient command, and no
		// longer than the store's timeout.
		limit := time.Now().Add(b.timeout)
		if deadline.IsZero() || deadline.After(limit) {
			deadline = limit
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		pipe := b.c.Pipeline()
		for _, cmd := range live {
			_ = pipe.Process(ctx, cmd)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		cancel()
	}
	for _, q := range batch {
		close(q.done)
	}
}
