package exchange

import (
	"context"
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
)

// Feed is the pull feed (GET /v1/exchange/changes): the outbox objects in
// key (time) order, their events flattened, as unsigned Event bodies
// (no Meta, no Document: a consumer reads the license itself with
// GET /v1/licenses/{id}; the push path carries the signed envelopes).
//
// The cursor is base64url("<object key>#<index>"), the last event served;
// the next page starts after it. Only objects whose key time is older than
// Settle are served, so an object written late (its key is its flush
// time, and a flush takes at most the store's operation timeout) is never
// skipped by a cursor that moved past its key. Events are deduplicated
// by event ID within one page; an event recorded twice in different
// pages appears twice (consumers deduplicate on the ID, as for pushes).
type Feed struct {
	Objects   licensehub.ObjectStore
	Authority string        // the Sender of the events
	Settle    time.Duration // exchange.feed_settle (15s)
	Clock     func() time.Time
}

// Page is one page of the feed.
type Page struct {
	Changes []Event `json:"changes"`
	Next    string  `json:"next"` // the cursor to pass as after; unchanged when nothing new
	More    bool    `json:"more"` // more settled changes follow
}

const (
	DefaultFeedLimit = 100
	MaxFeedLimit     = 1000
)

// EncodeCursor makes a feed cursor.
func EncodeCursor(key string, index int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key + "#" + strconv.Itoa(index)))
}

// DecodeCursor reads a feed cursor; "" is the start.
func DecodeCursor(c string) (key string, index int, err error) {
	if c == "" {
		return "", -1, nil
	}
	raw, derr := base64.RawURLEncoding.DecodeString(c)
	// The index follows the last '#' (a key could hold one).
	sep := strings.LastIndexByte(string(raw), '#')
	ok := sep >= 0
	k, i := string(raw), ""
	if ok {
		k, i = string(raw[:sep]), string(raw[sep+1:])
	}
	n, nerr := strconv.Atoi(i)
	if derr != nil || !ok || nerr != nil || n < 0 || !strings.HasPrefix(k, outboxPrefix) {
		return "", 0, licensehub.FieldError(licensehub.EINVALID, "after", "not a feed cursor")
	}
	return k, n, nil
}

// Changes returns up to limit events after the cursor after.
func (f *Feed) Changes(ctx context.Context, after string, limit int) (Page, error) {
	if limit == 0 {
		limit = DefaultFeedLimit
	}
	if limit < 1 || limit > MaxFeedLimit {
		return Page{}, licensehub.FieldError(licensehub.EINVALID, "limit", "limit must be 1..%d, got %d", MaxFeedLimit, limit)
	}
	afterKey, afterIdx, err := DecodeCursor(after)
	if err != nil {
		return Page{}, err
	}
	now := time.Now
	if f.Clock != nil {
		now = f.Clock
	}
	settle := f.Settle
	if settle <= 0 {
		settle = 15 * time.Second
	}
	horizon := now().UTC().Add(-settle)
	page := Page{Changes: []Event{}, Next: after}

	keys, err := f.keysAfter(ctx, afterKey, horizon)
	if err != nil {
		return page, err
	}
	seen := map[string]bool{}
	for _, k := range keys {
		events, err := readOutbox(ctx, f.Objects, k)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) || licensehub.IsCode(err, licensehub.EMALFORMED) {
			continue
		}
		if err != nil {
			return page, err
		}
		start := 0
		if k == afterKey {
			start = afterIdx + 1
		}
		for i := start; i < len(events); i++ {
			if len(page.Changes) == limit {
				page.More = true
				return page, nil
			}
			ev := events[i]
			page.Next = EncodeCursor(k, i)
			if seen[ev.EventID] {
				continue
			}
			seen[ev.EventID] = true
			page.Changes = append(page.Changes, f.event(ev, k))
		}
	}
	return page, nil
}

func (f *Feed) event(ev OutboxEvent, batch string) Event {
	e := Event{Type: EventType, Sender: f.Authority, ID: ev.EventID, License: ev.Identifier, Seq: ev.Seq,
		Op: ev.Op, Time: ev.At, Batch: batch, Catalog: ev.Catalog}
	if isStatusOp(ev.Op) {
		e.Status = &StatusChange{From: ev.From, To: ev.To, SupersededBy: ev.SupersededBy}
	} else {
		e.InitialStatus = ev.InitialStatus
	}
	return e
}

// keysAfter lists the settled outbox keys at or after afterKey, sorted:
// day by day from the cursor's day (the whole outbox for the start).
func (f *Feed) keysAfter(ctx context.Context, afterKey string, horizon time.Time) ([]string, error) {
	var prefixes []string
	if t, ok := outboxKeyTime(afterKey); ok {
		for day := t.UTC().Truncate(24 * time.Hour); !day.After(horizon); day = day.Add(24 * time.Hour) {
			prefixes = append(prefixes, outboxPrefix+day.Format("20060102"))
		}
	} else {
		prefixes = []string{outboxPrefix}
	}
	var out []string
	for _, p := range prefixes {
		keys, err := listKeys(ctx, f.Objects, p)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			t, ok := outboxKeyTime(k)
			if !ok || !t.Before(horizon) || (afterKey != "" && k < afterKey) {
				continue
			}
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}
