package exchange

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// The hub's outbox, as license/outbox.go writes it: objects
// outbox/<yyyymmddThhmmss.nnnnnnnnnZ>-<random>.json {"events":[...]}, each
// announced on the KV stream license.OutboxStream {object, events}.

const (
	outboxPrefix    = "outbox/"
	outboxKeyLayout = "20060102T150405.000000000Z"
	maxOutboxObject = 64 << 20
)

// OutboxEvent is one event of an outbox object.
type OutboxEvent struct {
	EventID    string `json:"event_id"`
	Op         string `json:"op"`
	Identifier string `json:"identifier,omitempty"`
	TypeCode   string `json:"type_code,omitempty"`
	Authority  string `json:"authority,omitempty"`
	Number     string `json:"number,omitempty"`
	Version    string `json:"version,omitempty"`
	Previous   string `json:"previous,omitempty"`
	// InitialStatus: a license or version stored with a status other
	// than valid ("05", a historic license); see Event.InitialStatus.
	InitialStatus string         `json:"initial_status,omitempty"`
	Seq           int            `json:"seq,omitempty"`
	From          string         `json:"from,omitempty"`
	To            string         `json:"to,omitempty"`
	SupersededBy  string         `json:"superseded_by,omitempty"`
	Object        string         `json:"object,omitempty"`
	At            string         `json:"at"`
	Catalog       *CatalogChange `json:"catalog,omitempty"`
}

// isStatusOp reports whether op is a status change (not a license or
// version, not the catalog).
func isStatusOp(op string) bool {
	switch op {
	case license.OpNew, license.OpRenew, license.OpChange, OpCatalog:
		return false
	}
	return true
}

// outboxKeyTime parses the flush time out of an outbox key.
func outboxKeyTime(key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, outboxPrefix)
	if !ok || len(rest) < len(outboxKeyLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(outboxKeyLayout, rest[:len(outboxKeyLayout)])
	return t, err == nil
}

// readOutbox reads one outbox object's events.
func readOutbox(ctx context.Context, objs licensehub.ObjectStore, key string) ([]OutboxEvent, error) {
	raw, err := readObject(ctx, objs, key)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Events []OutboxEvent `json:"events"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EMALFORMED, "exchange: outbox object %s is unreadable", key)
	}
	return doc.Events, nil
}

func readObject(ctx context.Context, objs licensehub.ObjectStore, key string) ([]byte, error) {
	rc, _, err := objs.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxOutboxObject))
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EOBJECTSTORE, "exchange: reading %s", key)
	}
	return raw, nil
}

// listKeys lists the keys under prefix, sorted.
func listKeys(ctx context.Context, objs licensehub.ObjectStore, prefix string) ([]string, error) {
	var keys []string
	err := objs.List(ctx, prefix, func(oi licensehub.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// RecordCatalogChange records a catalog change event (event ID
// "catalog/<digest>") in the outbox, the way the license library records
// its events, unless the create-only marker exchange/catalog/<digest>.json
// says it was recorded before. It reports whether it recorded one. A crash
// between the outbox write and the marker records the event again at the
// next start: receivers deduplicate on the event ID.
func RecordCatalogChange(ctx context.Context, objs licensehub.ObjectStore, kv licensehub.KV, cat CatalogChange, now time.Time) (bool, error) {
	marker := "exchange/catalog/" + cat.Digest + ".json"
	if _, err := objs.Head(ctx, marker); err == nil {
		return false, nil
	} else if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return false, err
	}
	at := now.UTC()
	ev := OutboxEvent{EventID: OpCatalog + "/" + cat.Digest, Op: OpCatalog, At: at.Format(signing.SignedAtLayout), Catalog: &cat}
	raw, err := json.Marshal(map[string]any{"events": []OutboxEvent{ev}})
	if err != nil {
		return false, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	key := outboxPrefix + at.Format(outboxKeyLayout) + "-" + hex.EncodeToString(rnd[:]) + ".json"
	if _, err := objs.Create(ctx, key, strings.NewReader(string(raw)), int64(len(raw)),
		licensehub.PutOptions{ContentType: "application/json"}); err != nil {
		return false, err
	}
	if _, err := kv.XAdd(ctx, license.OutboxStream, map[string]string{"object": key, "events": "1"}); err != nil {
		return false, err
	}
	mraw, _ := json.Marshal(map[string]any{"event_id": ev.EventID, "object": key, "at": ev.At})
	if _, err := objs.Create(ctx, marker, strings.NewReader(string(mraw)), int64(len(mraw)),
		licensehub.PutOptions{ContentType: "application/json"}); err != nil && !licensehub.IsCode(err, licensehub.ECONFLICT) {
		return true, err
	}
	return true, nil
}

// CatalogDigest is the hex SM3 of a canonical catalog encoding.
func CatalogDigest(canonical []byte) string {
	s := sm3.Sum(canonical)
	return hex.EncodeToString(s[:])
}

func sm3Hex(s string) string {
	h := sm3.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func itoa(n int) string { return strconv.Itoa(n) }
