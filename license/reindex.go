package license

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// Reindex rebuilds every KV key of the library from the object store (for
// `hubctl reindex`, after a Redis loss or FLUSHALL): lic:id:*,
// lic:holder:*, lic:natural:*, lic:expiry. It lists licenses/, status/ and
// outbox/, reads every license and the last status record of each, and on
// the way completes what a crash may have left unfinished: a predecessor
// without its supersede record gets it, and a license or last status
// change without its outbox event gets it (and only those are queued on
// the stream again; rebuilding the delivery stream as a whole is the
// exchange's business: it knows what was delivered). Entries for objects
// that no longer exist are not searched for (the KV cannot be scanned);
// ByHolder drops them when it meets them. Objects that cannot be read are
// reported in Errors and skipped; the error is for failures that stop the
// rebuild (the object store unreachable).
func (l *Library) Reindex(ctx context.Context) (ReindexReport, error) {
	start := time.Now()
	var rep ReindexReport
	var licKeys []string
	lastSeq := map[string]int{}
	outbox := map[string]bool{}
	err := firstErr(
		func() error {
			return l.listObjects(ctx, licensesPrefix, func(oi licensehub.ObjectInfo) error {
				if strings.HasSuffix(oi.Key, ".json") {
					licKeys = append(licKeys, oi.Key)
				}
				return nil
			})
		},
		func() error {
			return l.listObjects(ctx, statusPrefix, func(oi licensehub.ObjectInfo) error {
				if id, seq, ok := parseStatusKey(oi.Key); ok && seq > lastSeq[id] {
					lastSeq[id] = seq
				}
				return nil
			})
		},
		func() error {
			ids, err := l.recordedEvents(ctx)
			outbox = ids
			return err
		})
	if err != nil {
		return rep, err
	}

	type item struct {
		s      *stored
		status []StatusChange // the last record, if any
		serial string
		pid    ident.Identifier
	}
	var mu sync.Mutex
	items := map[string]*item{}
	report := func(format string, args ...any) {
		mu.Lock()
		rep.Errors = append(rep.Errors, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// Read every license and its last status record.
	err = l.parallel(ctx, licKeys, func(key string) error {
		raw, info, err := l.getObject(ctx, key)
		if err != nil {
			if isCode(err, licensehub.ENOTFOUND) {
				return nil
			}
			if isCode(err, licensehub.EOBJECTSTORE) || isCode(err, licensehub.EUNAVAILABLE) || isCode(err, licensehub.ETIMEOUT) {
				return err
			}
			report("%s: %v", key, err)
			return nil
		}
		info.Key = key
		s, err := parseStored(raw, info)
		if err != nil {
			report("%s: %v", key, err)
			return nil
		}
		id := s.lic.Identifier
		pid, err := ident.Parse(id)
		if err != nil || licenseKey(id) != key {
			report("%s: identifier %q does not match the key", key, id)
			return nil
		}
		it := &item{s: &stored{lic: s.lic, op: s.op, signed: s.signed, foreign: s.foreign, initial: s.initial}, serial: pid.Serial, pid: pid}
		if seq := lastSeq[id]; seq > 0 {
			rec, err := l.readStatus(ctx, id, seq)
			if err != nil {
				if isCode(err, licensehub.EOBJECTSTORE) || isCode(err, licensehub.EUNAVAILABLE) || isCode(err, licensehub.ETIMEOUT) {
					return err
				}
				report("%s: %v", statusKey(id, seq), err)
			} else {
				it.status = []StatusChange{*rec}
			}
		}
		mu.Lock()
		items[id] = it
		mu.Unlock()
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Licenses = len(items)

	// Predecessors without their supersede record (NewVersion interrupted
	// between its two writes).
	for id, it := range items {
		prev := items[it.s.lic.Previous]
		if prev == nil || it.s.foreign != nil || prev.s.foreign != nil {
			continue // foreign versions are superseded by the province's own events
		}
		if _, _, by := current(prev.status, prev.s.initial); by == id {
			continue
		}
		rec, err := l.supersede(ctx, prev.s.lic.Identifier, id, &prev.s.lic)
		if err != nil {
			report("supersede %s by %s: %v", prev.s.lic.Identifier, id, err)
			continue
		}
		prev.status = []StatusChange{*rec}
		rep.SupersedeRepairs++
	}

	// Natural keys: the latest version of each.
	latest := map[string]ident.Identifier{}
	holders := map[string]bool{}
	ids := make([]string, 0, len(items))
	for id, it := range items {
		ids = append(ids, id)
		k := naturalKV(it.pid.TypeCode, it.pid.IssuerCode, it.pid.Serial)
		if cur, ok := latest[k]; !ok || it.pid.Version > cur.Version {
			latest[k] = it.pid
		}
		holders[it.s.lic.Holder.Code] = true
		if len(it.status) > 0 {
			rep.StatusRecords++
		}
	}
	rep.Holders = len(holders)

	var repairs int
	err = l.parallel(ctx, ids, func(id string) error {
		it := items[id]
		lic := &it.s.lic
		st, seq, by := current(it.status, it.s.initial)
		foreign := it.s.foreign != nil // came from the province: no outbound events, no expiry sweep
		// Missing outbox events of the license and of its last change.
		if !foreign && !outbox[eventID(id, it.s.op, 0)] {
			err := l.emit(ctx, it.s.signed, id, it.s.op, 0, licenseEvent(lic, it.s.op, it.s.signed, it.s.initial))
			if err != nil {
				return err
			}
			mu.Lock()
			repairs++
			mu.Unlock()
		}
		if len(it.status) > 0 && !foreign {
			rec := it.status[0]
			at, _ := time.Parse(signing.SignedAtLayout, rec.At)
			if !outbox[eventID(id, rec.Op, rec.Seq)] {
				err := l.emit(ctx, at, id, rec.Op, rec.Seq, map[string]any{
					"op": rec.Op, "identifier": id, "type_code": lic.TypeCode, "authority": lic.Issuer.Code,
					"number": lic.Number, "from": rec.From, "to": rec.To, "superseded_by": rec.SupersededBy,
					"seq": rec.Seq, "object": statusKey(id, rec.Seq), "at": rec.At,
				})
				if err != nil {
					return err
				}
				mu.Lock()
				repairs++
				mu.Unlock()
			}
		}
		err := firstErr(
			func() error {
				return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.SAdd(c, kvHolder+lic.Holder.Code, id) })
			},
			func() error {
				score, ok := expiryScore(lic.ValidUntil)
				if ok && !foreign && (st == StatusValid || st == StatusSuspended) {
					return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZAdd(c, kvExpiry, score, id) })
				}
				return l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZRem(c, kvExpiry, id) })
			})
		if err != nil {
			return err
		}
		return l.kvSetEntry(ctx, id, &indexEntry{Type: lic.TypeCode, Authority: lic.Issuer.Code, Number: lic.Number,
			Serial: it.serial, Version: it.pid.Version, Status: st, StatusSeq: seq, Previous: lic.Previous,
			SupersededBy: by, ValidUntil: lic.ValidUntil})
	})
	if err != nil {
		return rep, err
	}
	rep.OutboxRepairs = repairs
	naturals := make([]string, 0, len(latest))
	for k := range latest {
		naturals = append(naturals, k)
	}
	err = l.parallel(ctx, naturals, func(k string) error {
		return l.kvDo(ctx, func(c context.Context) error {
			return l.cfg.KV.Set(c, k, []byte(latest[k].String()), 0)
		})
	})
	rep.Took = time.Since(start)
	if err != nil {
		return rep, err
	}
	l.log.InfoContext(ctx, "license index rebuilt", "licenses", rep.Licenses, "status_records", rep.StatusRecords,
		"supersede_repairs", rep.SupersedeRepairs, "outbox_repairs", rep.OutboxRepairs, "errors", len(rep.Errors),
		"took", rep.Took)
	return rep, nil
}

// parallel runs fn over keys with Config.Workers goroutines and returns
// the first error (stopping the others).
func (l *Library) parallel(ctx context.Context, keys []string, fn func(string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	for range l.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if err := fn(k); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, k := range keys {
		select {
		case work <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}
