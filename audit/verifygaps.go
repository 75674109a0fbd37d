package audit

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// Problem kinds of numbered records (Record.Seq).
const (
	// KindGap: records of an instance are missing from the sealed trail:
	// numbers below one that is sealed, or up to the number its AckedMark
	// says it acknowledged, for longer than the gap grace (GapGrace).
	KindGap = "gap"
	// KindDuplicate: the same record (instance and number) is sealed
	// twice.
	KindDuplicate = "duplicate"
	// KindBadAckedMark: an AckedMark is malformed, not validly signed by
	// the hub authority, or stored under another instance's key.
	KindBadAckedMark = "bad_acked_mark"
)

// DefaultGapGrace is how long records may be missing before Verify calls
// it a gap rather than records on their way to a segment.
const DefaultGapGrace = 10 * time.Minute

// GapGrace sets how long numbered records may be missing from the sealed
// trail before Verify reports a gap (default DefaultGapGrace): a record
// acknowledged less than this ago may still be on its way (journaled,
// not sealed yet). 0 reports every missing record.
func GapGrace(d time.Duration) VerifyOption {
	return func(o *verifyOptions) { o.grace, o.graceSet = d, true }
}

// VerifyAt sets the time Verify judges gaps at (default now).
func VerifyAt(t time.Time) VerifyOption {
	return func(o *verifyOptions) { o.now = t }
}

// Gap is a range of an instance's numbered records missing from the
// sealed trail.
type Gap struct {
	Instance string `json:"instance"`
	From     uint64 `json:"from"` // first missing Record.Seq
	To       uint64 `json:"to"`   // last missing Record.Seq
	// Since is when the records were acknowledged at the latest: the time
	// of the sealed record that follows them, or of the AckedMark.
	Since string `json:"since"`
	// Overdue: missing for longer than the gap grace (a Problem).
	Overdue bool `json:"overdue"`
}

func (g Gap) String() string {
	return fmt.Sprintf("instance %s: %s acknowledged by %s %s not in the sealed trail", g.Instance, seqRange{g.From, g.To}, g.Since, plural(g.From == g.To, "is", "are"))
}

func plural(one bool, a, b string) string {
	if one {
		return a
	}
	return b
}

// InstanceSummary is what the sealed trail holds of one instance's
// numbered records.
type InstanceSummary struct {
	Instance string `json:"instance"`
	Sealed   uint64 `json:"sealed"`          // numbered records sealed
	Top      uint64 `json:"top"`             // the highest number sealed
	Acked    uint64 `json:"acked,omitempty"` // the number its AckedMark names (0: none)
}

// seqTracker folds the numbered records of the segments Verify reads.
type seqTracker struct {
	seqs   *sealedSeqs
	counts map[string]uint64
	// starts holds the time of the sealed records that follow a missing
	// one (those are the only times gaps need), pruned after each segment.
	starts map[string]map[uint64]string
}

func newSeqTracker() *seqTracker {
	return &seqTracker{seqs: newSealedSeqs(), counts: map[string]uint64{}, starts: map[string]map[uint64]string{}}
}

// fold adds segment n's numbered records, or reports one sealed twice.
func (g *seqTracker) fold(n int64, data []byte) *Problem {
	touched := map[string]bool{}
	for _, lr := range segmentRefs(data) {
		set := g.seqs.set(lr.ref.instance)
		top := set.top()
		if !set.add(lr.ref.seq) {
			return &Problem{Kind: KindDuplicate, Segment: n, Key: SegmentKey(n), Line: lr.line, Instance: lr.ref.instance, SeqFrom: lr.ref.seq, SeqTo: lr.ref.seq,
				Message: fmt.Sprintf("record %d of instance %s is sealed twice (again at line %d)", lr.ref.seq, lr.ref.instance, lr.line)}
		}
		g.counts[lr.ref.instance]++
		if lr.ref.seq != top+1 {
			m := g.starts[lr.ref.instance]
			if m == nil {
				m = map[uint64]string{}
				g.starts[lr.ref.instance] = m
			}
			m[lr.ref.seq] = lr.time
			touched[lr.ref.instance] = true
		}
	}
	for id := range g.starts {
		set := g.seqs.m[id]
		for s := range g.starts[id] {
			if s > 1 && set.has(s-1) {
				delete(g.starts[id], s)
			}
		}
	}
	return nil
}

// finish reads the AckedMarks and reports the gaps: every one in
// rep.Gaps, the first overdue one as the problem.
func (g *seqTracker) finish(ctx context.Context, objects licensehub.ObjectStore, keys signing.KeySource, authority string, o *verifyOptions, rep *Report) (*Problem, error) {
	marks, prob, err := readAckedMarks(ctx, objects, keys, authority)
	if err != nil || prob != nil {
		return prob, err
	}
	now := o.now
	if now.IsZero() {
		now = time.Now()
	}
	grace := DefaultGapGrace
	if o.graceSet {
		grace = o.grace
	}
	ids := make([]string, 0, len(g.seqs.m)+len(marks))
	for id := range g.seqs.m {
		ids = append(ids, id)
	}
	for id := range marks {
		if g.seqs.m[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var first *Problem
	for _, id := range ids {
		set := g.seqs.m[id]
		mark, hasMark := marks[id]
		sum := InstanceSummary{Instance: id, Sealed: g.counts[id], Top: set.top()}
		if hasMark {
			sum.Acked = mark.AckedSeq
		}
		rep.Instances = append(rep.Instances, sum)
		upto := max(sum.Top, sum.Acked)
		for _, r := range set.missing(upto) {
			gap := Gap{Instance: id, From: r.from, To: r.to}
			var since time.Time
			if t, ok := g.starts[id][r.to+1]; ok && r.to < sum.Top {
				gap.Since = t
				since, _ = parseTime(t)
			} else if hasMark {
				gap.Since = mark.UpdatedAt
				since, _ = parseTime(mark.UpdatedAt)
			}
			gap.Overdue = !since.IsZero() && now.Sub(since) >= grace
			rep.Gaps = append(rep.Gaps, gap)
			if !gap.Overdue {
				rep.Warnings = append(rep.Warnings, gap.String()+" yet (probably still on the way to a segment)")
				continue
			}
			if first == nil {
				first = &Problem{Kind: KindGap, Instance: id, SeqFrom: r.from, SeqTo: r.to, Message: gap.String()}
			}
		}
	}
	return first, nil
}

// readAckedMarks reads every AckedMark under AckedPrefix.
func readAckedMarks(ctx context.Context, objects licensehub.ObjectStore, keys signing.KeySource, authority string) (map[string]AckedMark, *Problem, error) {
	var ks []string
	err := objects.List(ctx, AckedPrefix, func(info licensehub.ObjectInfo) error {
		ks = append(ks, info.Key)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(ks)
	out := map[string]AckedMark{}
	for _, k := range ks {
		raw, err := readObject(ctx, objects, k, signing.MaxDocumentSize)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		m, msg := checkAckedMark(raw, keys, authority)
		if msg == "" && AckedKey(m.Instance) != k {
			msg = fmt.Sprintf("it names instance %s", m.Instance)
		}
		if msg != "" {
			return nil, &Problem{Kind: KindBadAckedMark, Key: k, Message: msg}, nil
		}
		out[m.Instance] = m
	}
	return out, nil, nil
}

func checkAckedMark(raw []byte, keys signing.KeySource, authority string) (AckedMark, string) {
	var m AckedMark
	doc, err := signing.ParseDocument(bytes.TrimSpace(raw))
	if err != nil {
		return m, "not a signed document: " + err.Error()
	}
	if err := strictDecode(doc.Body, &m); err != nil || m.Type != AckedType {
		return m, "the signed document is not an acknowledged-records mark"
	}
	at, err := parseTime(m.UpdatedAt)
	if err != nil {
		return m, "updated_at: " + err.Error()
	}
	if !validInstanceID(m.Instance) {
		return m, fmt.Sprintf("instance %q is not an instance ID", licensehub.Clip(m.Instance, 120))
	}
	if _, msg := checkSigner(doc, keys, m.Authority, authority, at); msg != "" {
		return m, msg
	}
	return m, ""
}
