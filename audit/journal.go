package audit

import (
	"context"
	"math"
	"strconv"
	"strings"

	"github.com/licensehub/licensehub"
)

// Journal is where an audit record becomes durable before the response
// that it audits is sent. It is an ordered log: IDs are "<ms>-<seq>"
// (the Redis stream ID form, for both implementations) and strictly
// increase in append order, so "everything after ID x" is well defined and
// never grows entries below x once x has been returned by Read.
type Journal interface {
	// Append stores data durably and returns its ID.
	Append(ctx context.Context, data []byte) (id string, err error)
	// Read returns up to n entries (n <= 0: all) with an ID greater than
	// afterID ("" or "0": from the start), in ID order. It returns only
	// entries whose Append has made them durable.
	Read(ctx context.Context, afterID string, n int) ([]Entry, error)
	// Trim discards the entries with an ID up to and including throughID.
	// Trimming an ID that is already trimmed is not an error.
	Trim(ctx context.Context, throughID string) error
}

// Entry is one journal entry.
type Entry struct {
	ID   string
	Data []byte
}

// journalID is a parsed "<ms>-<seq>".
type journalID struct{ ms, seq uint64 }

func (a journalID) less(b journalID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func (a journalID) compare(b journalID) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

func (a journalID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// next returns the smallest ID greater than a (false when a is the largest).
func (a journalID) next() (journalID, bool) {
	switch {
	case a.seq < math.MaxUint64:
		return journalID{a.ms, a.seq + 1}, true
	case a.ms < math.MaxUint64:
		return journalID{a.ms + 1, 0}, true
	}
	return a, false
}

// parseJournalID parses "<ms>-<seq>" strictly (both parts decimal).
func parseJournalID(s string) (journalID, bool) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	if !ok {
		return journalID{}, false
	}
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if err1 != nil || err2 != nil {
		return journalID{}, false
	}
	return journalID{ms, seq}, true
}

// parseAfter parses a Read position: "" and "0" mean the start.
func parseAfter(s string) (id journalID, start bool, err error) {
	if s == "" || s == "0" {
		return journalID{}, true, nil
	}
	id, ok := parseJournalID(s)
	if !ok {
		return journalID{}, false, licensehub.FieldError(licensehub.EINVALID, "after", "journal ID %q is not <ms>-<seq>", s)
	}
	return id, false, nil
}

// compareJournalIDs orders two journal IDs; ok is false when either does
// not parse.
func compareJournalIDs(a, b string) (int, bool) {
	x, ok1 := parseJournalID(a)
	y, ok2 := parseJournalID(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return x.compare(y), true
}

// ---------------------------------------------------------------------
// Stream journal

// streamField is the stream entry field that holds the record.
const streamField = "r"

// StreamJournal is a Journal on a stream of a licensehub.KV (Redis in
// production): every hub instance appends to the same stream, and Redis
// orders the entries of all of them in one sequence. An entry is as
// durable as the Redis server makes it: run Redis with appendonly yes and
// appendfsync always (or replicas and WAIT) if an acknowledged record must
// survive the loss of the Redis host.
type StreamJournal struct {
	kv  licensehub.KV
	key string
}

var _ Journal = (*StreamJournal)(nil)

// NewStreamJournal returns the journal on the stream at key of kv.
func NewStreamJournal(kv licensehub.KV, key string) *StreamJournal {
	return &StreamJournal{kv: kv, key: key}
}

// Append adds data to the stream (XADD) and returns the entry's ID.
func (j *StreamJournal) Append(ctx context.Context, data []byte) (string, error) {
	if len(data) == 0 {
		return "", licensehub.Errorf(licensehub.EINVALID, "audit journal: empty entry")
	}
	return j.kv.XAdd(ctx, j.key, map[string]string{streamField: string(data)})
}

// Read returns up to n entries after afterID (XRANGE).
func (j *StreamJournal) Read(ctx context.Context, afterID string, n int) ([]Entry, error) {
	if _, _, err := parseAfter(afterID); err != nil {
		return nil, err
	}
	es, err := j.kv.XRange(ctx, j.key, afterID, n)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		// An entry without the field (written by something else) reads as
		// empty data; the sealer seals it as an unreadable entry.
		out[i] = Entry{ID: e.ID, Data: []byte(e.Fields[streamField])}
	}
	return out, nil
}

// Trim removes the entries up to and including throughID (XTRIM MINID,
// exact, with the ID just after throughID).
func (j *StreamJournal) Trim(ctx context.Context, throughID string) error {
	id, start, err := parseAfter(throughID)
	if err != nil || start {
		return err
	}
	min, ok := id.next()
	if !ok {
		return licensehub.FieldError(licensehub.EINVALID, "through", "journal ID %q is the largest ID", throughID)
	}
	_, err = j.kv.XTrimMinID(ctx, j.key, min.String())
	return err
}
