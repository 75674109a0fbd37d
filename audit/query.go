package audit

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// Filter selects records for Query. Empty fields match everything.
type Filter struct {
	App        string    // Record.AppID
	HolderCode string    // the plain holder code; hashed with the holder key, never kept
	License    string    // one of Record.Licenses
	Matter     string    // Record.Matter
	From, To   time.Time // From <= Record.Time < To; a zero bound is open
	Cursor     string    // Page.Next of the previous page; "" for the first page
	Limit      int       // records per page: 1..MaxQueryLimit, 0 for DefaultQueryLimit
}

// Page is one page of Query: Records newest first (by position in the
// chain, which is append order), and Next, the cursor of the following
// page ("" when there is none).
//
// A page may hold fewer than Limit records while Next is not empty: one
// call examines at most QueryScanLimit records; continue with Next.
type Page struct {
	Records []Record
	Next    string
}

// Query returns the records that match f, newest first, from the pending
// journal (records appended but not sealed yet) and the sealed segments.
//
// Every record has a position: its seq in the chain, or for a pending
// record the seq it will be sealed with (the journal order is the chain
// order). The cursor is that position, so pages neither skip nor repeat
// records while sealing moves them from the journal to segments.
//
// Cost: there is no index. A call reads head.json, the pending journal
// (when the page starts there; more than QueryScanLimit pending records is
// EUNAVAILABLE: sealing is behind) and then whole segments, newest first,
// until the page is full or QueryScanLimit records were examined. With
// From set it stops at the first segment whose newest record is older
// than From minus QueryTimeSlack. Segment seq ranges and time spans are
// cached in memory, so segments outside the time window or before the
// cursor are skipped without reading them once seen. A filter that few
// records match (one holder, one license) therefore scans the whole
// history over many calls: fine for supervision at the volumes of one
// city hub for now; a KV index (holder hash and license -> seqs, rebuilt
// from the segments) is the next step when it is not.
//
// Query reads records as stored; it does not verify the chain (Verify
// does).
func (t *Trail) Query(ctx context.Context, f Filter) (Page, error) {
	page := Page{Records: []Record{}}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultQueryLimit
	case limit < 0 || limit > MaxQueryLimit:
		return page, licensehub.FieldError(licensehub.EINVALID, "limit", "limit must be 1..%d, got %d", MaxQueryLimit, limit)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return page, nil
	}
	cur, err := parseCursor(f.Cursor)
	if err != nil {
		return page, err
	}
	if cur.bound == 1 {
		return page, nil // nothing before the first record
	}
	var holderHash string
	if f.HolderCode != "" {
		holderHash = t.HolderHash(f.HolderCode)
	}
	q := &query{t: t, f: &f, holderHash: holderHash, limit: limit, budget: t.scanLimit, page: &page}

	seg := cur.segment
	bound := cur.bound // positions >= bound are done (0: none yet)
	if seg == 0 {
		// The page starts at the newest records, or among records that
		// were pending when the previous page was made.
		st, pending, err := t.snapshot(ctx)
		if err != nil {
			return page, err
		}
		for i := len(pending) - 1; i >= 0; i-- {
			pos := st.lastSeq + 1 + int64(i)
			if bound > 0 && pos >= bound {
				continue
			}
			q.budget--
			r, err := decodeRecord(pending[i].Data)
			if err != nil {
				r, _ = decodeRecord(unreadableRecord(pending[i]))
			}
			if q.add(r) {
				page.Next = formatCursor(pos, 0)
				return page, nil
			}
		}
		seg = st.segment
		if bound == 0 || bound > st.lastSeq+1 {
			bound = st.lastSeq + 1
		}
	}
	for ; seg >= 1; seg-- {
		if q.budget <= 0 {
			page.Next = formatCursor(bound, seg)
			return page, nil
		}
		meta, cached := t.segments.get(seg)
		if cached {
			if meta.firstSeq >= bound {
				continue
			}
			if q.stopBefore(meta) {
				return page, nil
			}
			if q.outside(meta) {
				bound = meta.firstSeq
				continue
			}
		}
		full, m, err := q.segment(ctx, seg, bound)
		if err != nil {
			return page, err
		}
		if full {
			return page, nil
		}
		bound = m.firstSeq
		if q.stopBefore(m) {
			return page, nil
		}
	}
	return page, nil
}

// HolderUsage returns who used the licenses of the holder with this code:
// every record whose holder it is (app, time, operation, matter, reason,
// operator, result), newest first, paginated as Query.
func (t *Trail) HolderUsage(ctx context.Context, holderCode, cursor string, limit int) (Page, error) {
	if NormalizeHolder(holderCode) == "" {
		return Page{Records: []Record{}}, licensehub.FieldError(licensehub.EINVALID, "holder", "a holder code is required")
	}
	return t.Query(ctx, Filter{HolderCode: holderCode, Cursor: cursor, Limit: limit})
}

// query is one Query call in progress.
type query struct {
	t          *Trail
	f          *Filter
	holderHash string
	limit      int
	budget     int
	page       *Page
}

// add adds r to the page if it matches and reports whether the page is
// full.
func (q *query) add(r Record) bool {
	if !r.matches(q.f, q.holderHash) {
		return false
	}
	q.page.Records = append(q.page.Records, r)
	return len(q.page.Records) >= q.limit
}

// outside reports whether no record of the segment is in the time window.
func (q *query) outside(m segmentMeta) bool {
	if m.minTime.IsZero() {
		return false
	}
	return !q.f.From.IsZero() && m.maxTime.Before(q.f.From) || !q.f.To.IsZero() && !m.minTime.Before(q.f.To)
}

// stopBefore reports whether the segment, and so every earlier one, is
// older than the window (allowing QueryTimeSlack of disorder).
func (q *query) stopBefore(m segmentMeta) bool {
	return !q.f.From.IsZero() && !m.maxTime.IsZero() && m.maxTime.Before(q.f.From.Add(-q.t.timeSlack))
}

// segment reads segment n and adds its matching records below bound,
// newest first. It reports whether the page is full (Next set).
func (q *query) segment(ctx context.Context, n, bound int64) (bool, segmentMeta, error) {
	data, err := readObject(ctx, q.t.objects, SegmentKey(n), maxSegmentSize)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return false, segmentMeta{}, licensehub.Errorf(licensehub.EINTERNAL, "audit: segment %d is missing; run audit verify", n)
	}
	if err != nil {
		return false, segmentMeta{}, err
	}
	lines := splitLines(data)
	var cp Checkpoint
	if len(lines) > 0 {
		if doc, err := signing.ParseDocument(lines[len(lines)-1]); err == nil {
			_ = strictDecode(doc.Body, &cp)
		}
	}
	if cp.Type != CheckpointType {
		return false, segmentMeta{}, licensehub.Errorf(licensehub.EINTERNAL, "audit: segment %d has no checkpoint; run audit verify", n)
	}
	m := segmentMetaFrom(cp, data)
	q.t.segments.put(n, m)
	for i := len(lines) - 2; i >= 0; i-- {
		var l chainLine
		if err := strictDecode(lines[i], &l); err != nil || l.Seq >= bound {
			continue
		}
		q.budget--
		r, err := decodeRecord(l.Record)
		if err != nil {
			continue
		}
		if q.add(r) {
			q.page.Next = formatCursor(l.Seq, n)
			return true, m, nil
		}
	}
	return false, m, nil
}

// snapshot returns the end of the sealed chain and the pending journal
// entries after it, consistently: if a segment was sealed (and the journal
// trimmed) while the journal was read, it reads again.
func (t *Trail) snapshot(ctx context.Context) (chainState, []Entry, error) {
	for range 5 {
		st, err := t.loadState(ctx)
		if err != nil {
			return st, nil, err
		}
		// head.json may lag behind the segments.
		for {
			m, ok := t.segments.get(st.segment + 1)
			if !ok {
				data, err := readObject(ctx, t.objects, SegmentKey(st.segment+1), maxSegmentSize)
				if licensehub.IsCode(err, licensehub.ENOTFOUND) {
					break
				}
				if err != nil {
					return st, nil, err
				}
				_, cp, err := t.selfCheck(st.segment+1, data)
				if err != nil {
					return st, nil, err
				}
				m = segmentMetaFrom(cp, data)
				t.segments.put(st.segment+1, m)
			}
			st = chainState{segment: st.segment + 1, lastSeq: m.lastSeq, journalID: m.journalID}
		}
		var pending []Entry
		after := st.journalID
		for {
			es, err := t.journal.Read(ctx, after, t.segSize)
			if err != nil {
				return st, nil, err
			}
			pending = append(pending, es...)
			if len(pending) > t.scanLimit {
				return st, nil, licensehub.Errorf(licensehub.EUNAVAILABLE,
					"audit: more than %d records await sealing; query again once the sealer has caught up", t.scanLimit)
			}
			if len(es) < t.segSize {
				break
			}
			after = es[len(es)-1].ID
		}
		_, err = t.objects.Head(ctx, SegmentKey(st.segment+1))
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			if t.local != nil {
				pending = t.unsealed(pending)
			}
			return st, pending, nil
		}
		if err != nil {
			return st, nil, err
		}
	}
	return chainState{}, nil, licensehub.Errorf(licensehub.EUNAVAILABLE, "audit: the trail kept changing while it was read; try again")
}

// cursor is a position in the chain: records at positions >= bound were
// returned already; segment is the segment that holds bound-1 (0 when it
// was pending).
type cursor struct {
	bound   int64
	segment int64
}

func formatCursor(bound, segment int64) string {
	return strconv.FormatInt(bound, 10) + "." + strconv.FormatInt(segment, 10)
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	a, b, ok := strings.Cut(s, ".")
	bound, err1 := strconv.ParseInt(a, 10, 64)
	seg, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || bound < 1 || seg < 0 || formatCursor(bound, seg) != s {
		return cursor{}, licensehub.FieldError(licensehub.EINVALID, "cursor", "%q is not a cursor of this trail", s)
	}
	return cursor{bound: bound, segment: seg}, nil
}
