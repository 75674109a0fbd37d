package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/licensehub/licensehub"
)

// SealedSeqsKey is the object the sealer keeps of which numbered records
// (Record.InstanceID and Record.Seq) the sealed trail holds, as of a
// segment. It is a cache of what the segments say (rebuilt from them when
// missing or behind) and is not signed: Verify does not read it. The
// sealer uses it to seal a record that was published twice only once;
// instances use it to trim their local journals and find what to
// re-publish.
const SealedSeqsKey = "audit/sealed-seqs.json"

// seqSet is a set of record numbers as sorted, disjoint, non-adjacent
// ranges.
type seqSet struct{ r []seqRange }

type seqRange struct{ from, to uint64 }

// add inserts n and reports whether it was absent.
func (s *seqSet) add(n uint64) bool {
	// Fast path: records mostly arrive in order.
	if k := len(s.r); k > 0 && s.r[k-1].to < n {
		if s.r[k-1].to+1 == n {
			s.r[k-1].to = n
		} else {
			s.r = append(s.r, seqRange{n, n})
		}
		return true
	}
	i, found := slices.BinarySearchFunc(s.r, n, func(r seqRange, n uint64) int {
		switch {
		case r.to < n:
			return -1
		case r.from > n:
			return 1
		}
		return 0
	})
	if found {
		return false
	}
	// s.r[i-1].to < n < s.r[i].from
	joinLeft := i > 0 && s.r[i-1].to+1 == n
	joinRight := i < len(s.r) && s.r[i].from == n+1
	switch {
	case joinLeft && joinRight:
		s.r[i-1].to = s.r[i].to
		s.r = slices.Delete(s.r, i, i+1)
	case joinLeft:
		s.r[i-1].to = n
	case joinRight:
		s.r[i].from = n
	default:
		s.r = slices.Insert(s.r, i, seqRange{n, n})
	}
	return true
}

func (s *seqSet) has(n uint64) bool {
	_, found := slices.BinarySearchFunc(s.r, n, func(r seqRange, n uint64) int {
		switch {
		case r.to < n:
			return -1
		case r.from > n:
			return 1
		}
		return 0
	})
	return found
}

// through is the largest n such that 1..n are all in the set (0: none).
func (s *seqSet) through() uint64 {
	if s == nil || len(s.r) == 0 || s.r[0].from != 1 {
		return 0
	}
	return s.r[0].to
}

// top is the largest number in the set (0 when empty).
func (s *seqSet) top() uint64 {
	if s == nil || len(s.r) == 0 {
		return 0
	}
	return s.r[len(s.r)-1].to
}

// missing returns the ranges of 1..upto not in the set.
func (s *seqSet) missing(upto uint64) []seqRange {
	var out []seqRange
	next := uint64(1)
	if s != nil {
		for _, r := range s.r {
			if r.from > upto {
				break
			}
			if r.from > next {
				out = append(out, seqRange{next, r.from - 1})
			}
			next = r.to + 1
		}
	}
	if next <= upto {
		out = append(out, seqRange{next, upto})
	}
	return out
}

func (s *seqSet) clone() *seqSet { return &seqSet{r: slices.Clone(s.r)} }

func (r seqRange) String() string {
	if r.from == r.to {
		return fmt.Sprintf("record %d", r.from)
	}
	return fmt.Sprintf("records %d..%d", r.from, r.to)
}

// sealedSeqs is which numbered records segments 1..segment hold, by
// instance.
type sealedSeqs struct {
	segment int64
	m       map[string]*seqSet
}

func newSealedSeqs() *sealedSeqs { return &sealedSeqs{m: map[string]*seqSet{}} }

func (s *sealedSeqs) set(instance string) *seqSet {
	x := s.m[instance]
	if x == nil {
		x = &seqSet{}
		s.m[instance] = x
	}
	return x
}

func (s *sealedSeqs) has(ref seqRef) bool {
	x := s.m[ref.instance]
	return x != nil && x.has(ref.seq)
}

func (s *sealedSeqs) clone() *sealedSeqs {
	c := &sealedSeqs{segment: s.segment, m: make(map[string]*seqSet, len(s.m))}
	for k, v := range s.m {
		c.m[k] = v.clone()
	}
	return c
}

// sealedSeqsJSON is the form of SealedSeqsKey.
type sealedSeqsJSON struct {
	Segment   int64                  `json:"segment"`
	Instances map[string][][2]uint64 `json:"instances"`
}

func (s *sealedSeqs) MarshalJSON() ([]byte, error) {
	w := sealedSeqsJSON{Segment: s.segment, Instances: map[string][][2]uint64{}}
	for id, x := range s.m {
		rs := make([][2]uint64, len(x.r))
		for i, r := range x.r {
			rs[i] = [2]uint64{r.from, r.to}
		}
		w.Instances[id] = rs
	}
	return json.Marshal(w)
}

func parseSealedSeqs(b []byte) (*sealedSeqs, error) {
	var w sealedSeqsJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	s := newSealedSeqs()
	s.segment = w.Segment
	for id, rs := range w.Instances {
		x := &seqSet{}
		for _, r := range rs {
			if r[0] < 1 || r[1] < r[0] || len(x.r) > 0 && r[0] <= x.r[len(x.r)-1].to+1 {
				return nil, fmt.Errorf("instance %s: ranges are not sorted and disjoint", id)
			}
			x.r = append(x.r, seqRange{r[0], r[1]})
		}
		s.m[id] = x
	}
	return s, nil
}

// lineRef is a numbered record of a segment.
type lineRef struct {
	line int // 1-based
	ref  seqRef
	time string
}

// segmentRefs returns the numbered records of a segment's record lines,
// in order (lines that are not records or carry no number are left out).
func segmentRefs(data []byte) []lineRef {
	var out []lineRef
	for i, l := range splitLines(data) {
		if !bytes.Contains(l, []byte(`"instance_seq"`)) {
			continue
		}
		var line struct {
			Record struct {
				Time       string `json:"time"`
				InstanceID string `json:"instance_id"`
				Seq        uint64 `json:"instance_seq"`
			} `json:"record"`
		}
		if json.Unmarshal(l, &line) != nil || line.Record.InstanceID == "" || line.Record.Seq == 0 {
			continue
		}
		out = append(out, lineRef{line: i + 1, ref: seqRef{line.Record.InstanceID, line.Record.Seq}, time: line.Record.Time})
	}
	return out
}

// fold adds the numbered records of segment n (its bytes) to s.
func (s *sealedSeqs) fold(n int64, data []byte) {
	for _, lr := range segmentRefs(data) {
		s.set(lr.ref.instance).add(lr.ref.seq)
	}
	if n > s.segment {
		s.segment = n
	}
}

// readSealedSeqs reads SealedSeqsKey (nil when missing or unreadable).
func readSealedSeqs(ctx context.Context, objects licensehub.ObjectStore) (*sealedSeqs, error) {
	b, err := readObject(ctx, objects, SealedSeqsKey, 64<<20)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, perr := parseSealedSeqs(b)
	if perr != nil {
		return nil, nil
	}
	return s, nil
}

// sealedSeqsAt returns which numbered records segments 1..st.segment
// hold: the cache of the previous Seal or SealedSeqsKey, brought up to
// st.segment by reading the segments after it (all of them when there is
// neither).
func (t *Trail) sealedSeqsAt(ctx context.Context, st chainState) (*sealedSeqs, error) {
	t.seqMu.Lock()
	s := t.seqCache
	t.seqMu.Unlock()
	if s == nil || s.segment != st.segment {
		// Another instance sealed since (or this one never did): its
		// SealedSeqsKey saves reading the segments again.
		got, err := readSealedSeqs(ctx, t.objects)
		if err != nil {
			return nil, err
		}
		switch {
		case got != nil && got.segment <= st.segment && (s == nil || s.segment > st.segment || got.segment > s.segment):
			s = got
		case s == nil || s.segment > st.segment:
			s = newSealedSeqs()
		default:
			s = s.clone()
		}
	} else {
		s = s.clone()
	}
	for n := s.segment + 1; n <= st.segment; n++ {
		data, err := readObject(ctx, t.objects, SegmentKey(n), maxSegmentSize)
		if err != nil {
			return nil, err
		}
		s.fold(n, data)
	}
	s.segment = st.segment
	return s, nil
}

// unsealed drops from pending journal entries the numbered records
// published more than once, and those this instance's last Seal knows are
// sealed (Query shows each record once).
func (t *Trail) unsealed(pending []Entry) []Entry {
	t.seqMu.Lock()
	s := t.seqCache
	t.seqMu.Unlock()
	if s == nil {
		s = newSealedSeqs()
	}
	keep, _ := s.fresh(pending)
	return keep
}

// keepSealedSeqs remembers s (as of its segment) and writes it to
// SealedSeqsKey; a failure is logged (the next Seal writes it again).
func (t *Trail) keepSealedSeqs(ctx context.Context, s *sealedSeqs) {
	t.seqMu.Lock()
	t.seqCache = s.clone()
	t.seqMu.Unlock()
	b, err := json.Marshal(s)
	if err == nil {
		_, err = t.objects.Put(ctx, SealedSeqsKey, bytes.NewReader(b), int64(len(b)), licensehub.PutOptions{ContentType: "application/json"})
	}
	if err != nil {
		t.log.Warn("audit: writing which records are sealed failed; the next seal writes it again", "err", err)
	}
}

// fresh returns the entries to seal: all but those whose numbered record
// s already holds or that repeat an earlier entry of the batch (a record
// published twice, e.g. re-published after a Redis loss).
func (s *sealedSeqs) fresh(entries []Entry) (keep []Entry, refs []seqRef) {
	seen := map[seqRef]bool{}
	for _, e := range entries {
		ref := entrySeq(e.Data)
		if ref.seq != 0 {
			if s.has(ref) || seen[ref] {
				continue
			}
			seen[ref] = true
		}
		keep = append(keep, e)
		refs = append(refs, ref)
	}
	return keep, refs
}

// addRefs marks refs as sealed.
func (s *sealedSeqs) addRefs(refs []seqRef) {
	for _, r := range refs {
		if r.seq != 0 {
			s.set(r.instance).add(r.seq)
		}
	}
}

// describeRanges lists ranges compactly: "1, 3..5" (tests, messages).
func describeRanges(rs []seqRange) string {
	var parts []string
	for i, r := range rs {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-5))
			break
		}
		if r.from == r.to {
			parts = append(parts, fmt.Sprint(r.from))
		} else {
			parts = append(parts, fmt.Sprintf("%d..%d", r.from, r.to))
		}
	}
	return strings.Join(parts, ", ")
}
