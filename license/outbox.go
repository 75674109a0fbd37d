package license

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
)

// The exchange outbox.
//
// Every exchange event is recorded in an outbox object before the call
// that caused it returns, and only then announced on the KV stream
// OutboxStream. Events are group-committed: concurrent callers' events go
// into one object
//
//	outbox/<yyyymmddThhmmss.nnnnnnnnnZ>-<random>.json  {"events":[{event_id, op, identifier, ...}, ...]}
//
// written create-only by whichever caller finds no flush in progress (the
// others wait for it), followed by one stream entry {object, events}. With
// one push in flight a batch holds one event (no added latency); with many,
// one PUT records many events, which is what keeps the push path near the
// raw PUT rate. Delivery is at-least-once: an event may be recorded twice
// (a retried push re-records it, since it cannot know whether its first
// attempt got that far); consumers deduplicate on event_id, which is
// deterministic: "<identifier>/<op>" for a license, "<identifier>/<op>/<seq>"
// for a status change.

const maxBatch = 256

type outboxReq struct {
	event map[string]any
	done  chan error // the flush's result
	lead  chan struct{}
}

type outboxBatcher struct {
	mu       sync.Mutex
	pending  []*outboxReq
	flushing bool
}

func eventID(id, op string, seq int) string {
	if seq > 0 {
		return id + "/" + op + "/" + strconv.Itoa(seq)
	}
	return id + "/" + op
}

// emit records an exchange event (see above) and returns once its outbox
// object is stored and the stream entry appended.
func (l *Library) emit(ctx context.Context, at time.Time, id, op string, seq int, event map[string]any) error {
	event["event_id"] = eventID(id, op, seq)
	r := &outboxReq{event: event, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	b := &l.outbox
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if b.flushing {
		b.mu.Unlock()
		select {
		case err := <-r.done:
			return err
		case <-r.lead:
			// The previous leader handed over: flush what is pending.
			// (Waiters do not give up on ctx: a handover must always find
			// its taker; each flush is bounded by OpTimeout.)
		}
		b.mu.Lock()
	} else {
		b.flushing = true
	}
	batch := b.pending
	if len(batch) > maxBatch {
		batch = batch[:maxBatch]
	}
	b.pending = append([]*outboxReq(nil), b.pending[len(batch):]...)
	b.mu.Unlock()

	err := l.flushOutbox(context.WithoutCancel(ctx), batch)
	for _, q := range batch {
		q.done <- err
	}

	b.mu.Lock()
	if len(b.pending) == 0 {
		b.flushing = false
	} else {
		b.pending[0].lead <- struct{}{} // hand over; we are done
	}
	b.mu.Unlock()
	return <-r.done
}

func (l *Library) flushOutbox(ctx context.Context, batch []*outboxReq) error {
	events := make([]map[string]any, len(batch))
	for i, q := range batch {
		events[i] = q.event
	}
	raw, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	key := fmt.Sprintf("%s%s-%s.json", outboxPrefix, l.cfg.Clock().UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(rnd[:]))
	if err := l.createObject(ctx, key, raw, docContentType, nil); err != nil {
		// The key is ours alone (time + random): a conflict is minio-go
		// retrying a create whose answer was lost, i.e. it succeeded —
		// if the stored bytes are ours.
		if !isCode(err, licensehub.ECONFLICT) {
			return err
		}
		stored, _, gerr := l.getObject(ctx, key)
		switch {
		case gerr != nil:
			return gerr
		case !bytes.Equal(stored, raw):
			return err
		}
	}
	return l.kvDo(ctx, func(c context.Context) error {
		_, err := l.cfg.KV.XAdd(c, OutboxStream, map[string]string{"object": key, "events": strconv.Itoa(len(batch))})
		return err
	})
}

// recordedEvents reads every outbox object and returns the event_ids they
// hold (for Reindex's repair of missing events).
func (l *Library) recordedEvents(ctx context.Context) (map[string]bool, error) {
	var keys []string
	if err := l.listObjects(ctx, outboxPrefix, func(oi licensehub.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	ids := map[string]bool{}
	err := l.parallel(ctx, keys, func(key string) error {
		raw, _, err := l.getObject(ctx, key)
		if isCode(err, licensehub.ENOTFOUND) {
			return nil
		}
		if err != nil {
			return err
		}
		var doc struct {
			Events []struct {
				EventID string `json:"event_id"`
			} `json:"events"`
		}
		if json.Unmarshal(raw, &doc) != nil {
			l.log.WarnContext(ctx, "unreadable outbox object", "key", key)
			return nil
		}
		mu.Lock()
		for _, e := range doc.Events {
			ids[e.EventID] = true
		}
		mu.Unlock()
		return nil
	})
	return ids, err
}
