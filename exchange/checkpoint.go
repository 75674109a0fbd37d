package exchange

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
)

// The durable delivery checkpoint.
//
// The stream, the KV cursor and the epoch marker live in the KV and are
// lost with it (Redis restarted empty). What survives is in the object
// store, written by the leader:
//
//   - DeliveredPrefix + "<t>-<random>.json" {"events": [event IDs]}: the
//     events processed (delivered or dead-lettered) since the previous
//     such object; <t> is the newest outbox key time among their objects.
//     One is written whenever CheckpointEvents/2 events are processed,
//     every CheckpointEvery, and when the leader stops.
//   - CursorObject {"from": <t>, ...}: every outbox object keyed before
//     <t> was processed. <t> is the older of the oldest object the leader
//     has read but not finished and the last time the leader had read the
//     whole stream less recoveryMargin (an object is announced within the
//     margin of its key time: flush time and clock skew between hubs).
//
// A lane starts an event only while fewer than CheckpointEvents events
// are started and not yet in a written DeliveredPrefix object: at any
// moment at most CheckpointEvents events may have reached the province
// without the object store knowing it.
//
// When a new leader finds the KV cursor or the epoch marker missing, it
// recovers: it deletes what is left of the stream, re-announces every
// outbox object keyed at or after "from", and skips, among their events,
// those the DeliveredPrefix objects name. A Redis loss therefore re-sends
// at most CheckpointEvents events (those in flight or processed since the
// last written checkpoint), never the whole outbox, and skips nothing.
const (
	DeliveredPrefix = "exchange/delivered/"
	cursorEpochKey  = "exchange:cursor-epoch" // set by a leader once the cursor is sound; gone after a KV loss

	gcEvery = 32 // checkpoints between deletions of DeliveredPrefix objects no longer needed
)

// cursorDoc is the checkpoint object CursorObject.
type cursorDoc struct {
	StreamID string `json:"stream_id"`
	Object   string `json:"object"`         // the last confirmed outbox object
	From     string `json:"from,omitempty"` // every outbox object keyed before outboxPrefix+From is processed
	Updated  string `json:"updated"`
}

// checkpointer is one leadership's durable checkpoint state.
type checkpointer struct {
	d     *Deliverer
	limit int // CheckpointEvents

	mu       sync.Mutex
	cond     *sync.Cond
	open     int      // events started and not in a written log object
	done     []string // processed since the last written log object
	maxKey   string   // the newest outbox key among done's objects
	waiting  bool
	from     string    // the last written (or recovered) "from"
	caughtUp time.Time // when the reader last began a read that reached the stream's end
	kick     chan struct{}
	writes   int
}

func newCheckpointer(d *Deliverer, from string) *checkpointer {
	c := &checkpointer{d: d, limit: d.cfg.CheckpointEvents, from: from, kick: make(chan struct{}, 1)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// begin waits until the event may start (fewer than limit open events);
// false when ctx ended first.
func (c *checkpointer) begin(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.open >= c.limit && ctx.Err() == nil {
		c.waiting = true
		c.signal()
		c.cond.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	c.open++
	return true
}

// finish records a processed event of outbox object key.
func (c *checkpointer) finish(eventID, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = append(c.done, eventID)
	if key > c.maxKey {
		c.maxKey = key
	}
	if len(c.done) >= max(c.limit/2, 1) || c.waiting {
		c.signal()
	}
}

func (c *checkpointer) signal() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// reachedEnd records readAt, when a stream read that returned the
// stream's end began; called once that read's entries are in the
// watermark.
func (c *checkpointer) reachedEnd(readAt time.Time) {
	c.mu.Lock()
	c.caughtUp = readAt
	c.mu.Unlock()
}

// pending reports whether processed events wait for a log object.
func (c *checkpointer) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.done) > 0
}

// write stores the processed events (a DeliveredPrefix object) and then
// the cursor object; on success the lanes may start that many events
// more. wm gives the oldest unfinished object and the confirmed entry.
func (c *checkpointer) write(ctx context.Context, wm *watermark) error {
	// "from" before the snapshot of done: an event finishing in between
	// was unfinished for "from", so it is re-announced, never skipped.
	c.mu.Lock()
	from := c.from
	if !c.caughtUp.IsZero() {
		from = max(from, c.caughtUp.Add(-recoveryMargin).UTC().Format(outboxKeyLayout))
	}
	c.mu.Unlock()
	if oldest := wm.oldestUnfinished(); oldest != "" {
		if t, ok := outboxKeyTime(oldest); ok {
			from = min(from, t.UTC().Format(outboxKeyLayout))
		} else {
			from = min(from, "")
		}
	}
	c.mu.Lock()
	done, maxKey := c.done, c.maxKey
	c.done, c.maxKey = nil, ""
	c.mu.Unlock()
	restore := func() {
		c.mu.Lock()
		c.done = append(done, c.done...)
		c.maxKey = max(c.maxKey, maxKey)
		c.mu.Unlock()
	}
	if len(done) > 0 {
		raw, _ := json.Marshal(map[string][]string{"events": done})
		stamp := "00000000T000000.000000000Z"
		if t, ok := outboxKeyTime(maxKey); ok {
			stamp = t.UTC().Format(outboxKeyLayout)
		}
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		key := DeliveredPrefix + stamp + "-" + hex.EncodeToString(rnd[:]) + ".json"
		oc, cancel := context.WithTimeout(ctx, c.d.cfg.OpTimeout)
		_, err := c.d.cfg.Objects.Create(oc, key, bytes.NewReader(raw), int64(len(raw)), licensehub.PutOptions{ContentType: "application/json"})
		cancel()
		if err != nil {
			restore()
			return err
		}
		c.mu.Lock()
		c.open -= len(done)
		c.waiting = false
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	doc := cursorDoc{From: from, Updated: c.d.cfg.Clock().UTC().Format(time.RFC3339Nano)}
	if e := wm.get(); e != nil {
		doc.StreamID, doc.Object = e.id, e.object
	}
	raw, _ := json.Marshal(doc)
	oc, cancel := context.WithTimeout(ctx, c.d.cfg.OpTimeout)
	_, err := c.d.cfg.Objects.Put(oc, CursorObject, bytes.NewReader(raw), int64(len(raw)), licensehub.PutOptions{ContentType: "application/json"})
	cancel()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.from = from
	c.writes++
	gc := c.writes%gcEvery == 0
	c.mu.Unlock()
	if gc {
		c.d.dropDelivered(ctx, from)
	}
	return nil
}

// dropDelivered deletes the DeliveredPrefix objects whose events all
// belong to outbox objects keyed before from (never re-announced).
func (d *Deliverer) dropDelivered(ctx context.Context, from string) {
	lc, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout*3)
	keys, err := listKeys(lc, d.cfg.Objects, DeliveredPrefix)
	cancel()
	if err != nil {
		return
	}
	for _, k := range keys {
		if deliveredStamp(k) >= from {
			break // sorted
		}
		oc, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
		_ = d.cfg.Objects.Delete(oc, k)
		cancel()
	}
}

func deliveredStamp(key string) string {
	rest := strings.TrimPrefix(key, DeliveredPrefix)
	return rest[:min(len(rest), len(outboxKeyLayout))]
}

// recovery is where a leadership starts.
type recovery struct {
	cursor      string          // the stream position to read after
	from        string          // the checkpoint's "from"
	skip        map[string]bool // events processed before the loss, or dispatched since (by ID)
	reannounced map[string]bool // outbox objects re-announced: each is dispatched once
	dispatched  map[string]bool // the re-announced objects dispatched so far
}

// todo returns the events of outbox object key to dispatch: none of an
// object re-announced and already dispatched (its writer announced it
// too: its flush straddled the recovery), and none processed before the
// loss.
//
// Nor any event already dispatched from another object: a push whose
// outbox object was written while the KV was down got an error (the
// announcement failed) and its client retried it after the restart,
// recording the same event (same ID) in a second object. Recovery
// re-announces the first, the retry announces the second; the province
// would receive the event twice, and a KV loss would re-send one event
// per push retried across it, beyond any checkpoint bound. So the IDs
// dispatched are remembered while re-announced objects remain (the
// retry's object may come first) and for every re-announced object's
// events (the retry may come after); the set is bounded by the outbox
// since "from" and what arrives during the recovery.
func (r *recovery) todo(key string, events []OutboxEvent) []OutboxEvent {
	if r.reannounced == nil {
		return events // no recovery: the stream holds each object once
	}
	recovering := len(r.dispatched) < len(r.reannounced)
	if r.reannounced[key] {
		if r.dispatched[key] {
			return nil
		}
		r.dispatched[key] = true
		recovering = true
	}
	var todo []OutboxEvent
	for _, ev := range events {
		if r.skip[ev.EventID] {
			continue
		}
		if recovering {
			r.skip[ev.EventID] = true
		}
		todo = append(todo, ev)
	}
	return todo
}

// recoverCursor reads the KV cursor; when it or the epoch marker is
// missing (a KV loss, or the first start), it recovers from the
// checkpoint objects (see above).
func (d *Deliverer) recoverCursor(ctx context.Context) (*recovery, error) {
	var cur string
	epoch := false
	if err := d.retryStore(ctx, "cursor", func(c context.Context) error {
		v, err := d.cfg.KV.Get(c, CursorKey)
		if err != nil && !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return err
		}
		cur = string(v)
		_, err = d.cfg.KV.Get(c, cursorEpochKey)
		epoch = err == nil
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			err = nil
		}
		return err
	}); err != nil {
		return nil, err
	}
	var doc *cursorDoc
	if err := d.retryStore(ctx, "cursor checkpoint", func(c context.Context) error {
		raw, err := readObject(c, d.cfg.Objects, CursorObject)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return nil
		}
		if err != nil {
			return err
		}
		doc = &cursorDoc{}
		if json.Unmarshal(raw, doc) != nil {
			doc = nil
		}
		return nil
	}); err != nil {
		return nil, err
	}
	from := ""
	if doc != nil {
		from = doc.From
		if from == "" {
			// A checkpoint of an earlier release: its last object, less the margin.
			if t, ok := outboxKeyTime(doc.Object); ok {
				from = t.Add(-recoveryMargin).UTC().Format(outboxKeyLayout)
			}
		}
	}
	if cur != "" && epoch {
		// The marker names this leader from now on: a former leader that
		// still runs (its lease lapsed) sees another name and stops
		// (stillLeading) before it sends anything more.
		if err := d.retryStore(ctx, "cursor epoch", func(c context.Context) error {
			return d.cfg.KV.Set(c, cursorEpochKey, []byte(d.owner), 0)
		}); err != nil {
			return nil, err
		}
		return &recovery{cursor: cur, from: from}, nil
	}

	rec := &recovery{cursor: "0", from: from, skip: map[string]bool{}, reannounced: map[string]bool{}, dispatched: map[string]bool{}}
	var logs, keys []string
	if err := d.retryStore(ctx, "checkpoint listing", func(c context.Context) error {
		var err error
		logs, err = listKeys(c, d.cfg.Objects, DeliveredPrefix)
		return err
	}); err != nil {
		return nil, err
	}
	for _, k := range logs {
		if deliveredStamp(k) < from {
			continue
		}
		if err := d.retryStore(ctx, "checkpoint", func(c context.Context) error {
			raw, err := readObject(c, d.cfg.Objects, k)
			if licensehub.IsCode(err, licensehub.ENOTFOUND) {
				return nil
			}
			if err != nil {
				return err
			}
			var l struct {
				Events []string `json:"events"`
			}
			if json.Unmarshal(raw, &l) != nil {
				d.log.WarnContext(ctx, "exchange: unreadable delivery checkpoint; its events are sent again", "key", k)
				return nil
			}
			for _, id := range l.Events {
				rec.skip[id] = true
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	// What is left of the stream is re-announced with the rest: the
	// stream is dropped before the outbox is listed, so an object
	// announced before the drop was written before the listing and is in
	// it; one announced after is on the new stream (maybe in both: it is
	// dispatched once, see dispatched).
	// The marker first: a former leader still running stops at its next
	// event (stillLeading) instead of sending what is re-announced below.
	if err := d.retryStore(ctx, "cursor epoch", func(c context.Context) error {
		return d.cfg.KV.Set(c, cursorEpochKey, []byte(d.owner), 0)
	}); err != nil {
		return nil, err
	}
	if err := d.retryStore(ctx, "stream reset", func(c context.Context) error { return d.cfg.KV.Delete(c, license.OutboxStream) }); err != nil {
		return nil, err
	}
	if err := d.retryStore(ctx, "outbox listing", func(c context.Context) error {
		var err error
		keys, err = listKeys(c, d.cfg.Objects, outboxPrefix)
		return err
	}); err != nil {
		return nil, err
	}
	first := outboxPrefix + from
	for _, k := range keys {
		if k < first || !strings.HasSuffix(k, ".json") {
			continue
		}
		if err := d.retryStore(ctx, "re-announce", func(c context.Context) error {
			_, err := d.cfg.KV.XAdd(c, license.OutboxStream, map[string]string{"object": k, "events": "0"})
			return err
		}); err != nil {
			return nil, err
		}
		rec.reannounced[k] = true
	}
	if doc != nil || len(rec.reannounced) > 0 {
		d.log.WarnContext(ctx, "exchange: delivery cursor lost; re-announced the outbox since the durable checkpoint",
			"from", from, "objects", len(rec.reannounced), "already_processed", len(rec.skip))
	}
	return rec, nil
}

// oldestUnfinished is the smallest outbox key among the entries read and
// not yet finished ("" when none).
func (w *watermark) oldestUnfinished() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	oldest := ""
	for _, e := range w.q {
		if e.pending > 0 && (oldest == "" || e.object < oldest) {
			oldest = e.object
		}
	}
	return oldest
}

// stillLeading reports whether the cursor epoch marker still names this
// deliverer: the marker is set by every leader when it starts, so a
// leader whose lease lapsed (or whose KV lost its data) finds another
// name, or none, before its next send. A KV that cannot answer counts as
// not leading: nothing is sent that a successor may send again.
func (d *Deliverer) stillLeading(ctx context.Context) bool {
	c, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
	defer cancel()
	v, err := d.cfg.KV.Get(c, cursorEpochKey)
	return err == nil && string(v) == d.owner
}
