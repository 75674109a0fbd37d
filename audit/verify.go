package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// Problem kinds: the value of Problem.Kind. They are part of the API
// (hubctl prints them, scripts match on them); never rename one.
const (
	// KindModified: a record's content does not match its hash, or two
	// consecutive records no longer link (one was rewritten together with
	// its hash), or a segment's records no longer end at the hash its
	// signed checkpoint names (rewritten with all later hashes).
	KindModified = "modified"
	// KindDeleted: records are missing where the sequence expects them.
	KindDeleted = "deleted"
	// KindInserted: a record line that does not belong: a copy of another
	// record, or one that claims a place already taken.
	KindInserted = "inserted"
	// KindReordered: a record is before one that should precede it.
	KindReordered = "reordered"
	// KindMalformed: a line that is not a record line, or an empty segment.
	KindMalformed = "malformed"
	// KindMissingCheckpoint: a segment's last line is a record, not its
	// checkpoint.
	KindMissingCheckpoint = "missing_checkpoint"
	// KindBadCheckpoint: the checkpoint is malformed or its fields do not
	// match the segment's records or the previous segment.
	KindBadCheckpoint = "bad_checkpoint"
	// KindBadCheckpointSignature: the checkpoint's signature does not
	// verify, its key is unknown or was not usable at sealed_at, or it is
	// not the hub authority's key.
	KindBadCheckpointSignature = "bad_checkpoint_signature"
	// KindMissingSegment: a segment number is absent from the sequence, or
	// head.json names segments that are not there.
	KindMissingSegment = "missing_segment"
	// KindMisplacedSegment: a segment object holds another segment (its
	// validly signed checkpoint names a different number).
	KindMisplacedSegment = "misplaced_segment"
	// KindJournalOverlap: a segment seals journal entries at or before
	// ones an earlier segment sealed (the same record sealed twice).
	KindJournalOverlap = "journal_overlap"
	// KindBadHead: head.json is malformed or disagrees with the segment it
	// names.
	KindBadHead = "bad_head"
	// KindBadHeadSignature: head.json's signature does not verify.
	KindBadHeadSignature = "bad_head_signature"
)

// Problem is the first thing Verify found wrong, located as precisely as
// the kind allows.
type Problem struct {
	Kind    string `json:"kind"`
	Segment int64  `json:"segment,omitempty"` // segment number
	Key     string `json:"key,omitempty"`     // object key
	Line    int    `json:"line,omitempty"`    // 1-based line in the segment
	Seq     int64  `json:"seq,omitempty"`     // the record concerned
	// Instance and SeqFrom..SeqTo name numbered records (Record.Seq) that
	// are missing (KindGap) or sealed twice (KindDuplicate).
	Instance string `json:"instance,omitempty"`
	SeqFrom  uint64 `json:"instance_seq_from,omitempty"`
	SeqTo    uint64 `json:"instance_seq_to,omitempty"`
	Message  string `json:"message"`
}

func (p *Problem) Error() string {
	s := p.Kind
	if p.Segment > 0 {
		s += fmt.Sprintf(" in segment %d", p.Segment)
	}
	if p.Line > 0 {
		s += fmt.Sprintf(" line %d", p.Line)
	}
	if p.Seq > 0 {
		s += fmt.Sprintf(" (record seq %d)", p.Seq)
	}
	return s + ": " + p.Message
}

// Report is the outcome of Verify.
type Report struct {
	OK        bool       `json:"ok"`
	Segments  int64      `json:"segments"`  // segments verified
	Records   int64      `json:"records"`   // records verified
	LastSeq   int64      `json:"last_seq"`  // of the last verified record
	LastHash  string     `json:"last_hash"` // of the last verified record
	Authority string     `json:"authority,omitempty"`
	KeyIDs    []string   `json:"kids,omitempty"` // keys that signed the checkpoints
	Head      *HeadState `json:"head,omitempty"` // head.json as read
	Problem   *Problem   `json:"problem,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
	// Instances summarizes the numbered records of each instance (sealed
	// and acknowledged), Gaps lists the ones missing from the trail.
	Instances []InstanceSummary `json:"instances,omitempty"`
	Gaps      []Gap             `json:"gaps,omitempty"`
}

// VerifyOption adjusts Verify.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	authority string
	grace     time.Duration
	graceSet  bool
	now       time.Time
}

// ExpectAuthority makes Verify require that every checkpoint and the head
// are signed by a key of this authority (the hub's own). Without it the
// authority of the first checkpoint is required of all the others.
func ExpectAuthority(code string) VerifyOption {
	return func(o *verifyOptions) { o.authority = code }
}

// Verify re-reads the sealed trail in objects and checks it end to end:
// every segment from 1 on is present; every record line is canonical, its
// hash is SM3(previous hash ‖ its content), its seq continues the
// sequence and its prev is the previous record's hash (across segments
// too); each checkpoint is validly signed (signing.VerifySignature) by a
// key of the hub authority usable at sealed_at (KeyInfo.CheckAt), names
// its own segment, and matches the records (first/last seq, count, prev
// and last hash) and the journal order; head.json is validly signed and
// agrees with the segment it names, and no segment it names is missing.
//
// It stops at the first problem and reports it in Report.Problem (with
// OK false and a nil error); the error is for failures to read. Only
// sealed records are verified: records still in the journal (not yet
// sealed) are not part of the chain yet. Warnings note what is not
// tampering: head.json lagging behind the last segment (a sealer stopped
// between writing a segment and the head; the next Seal repairs it),
// objects under the segment prefix that are not segments.
//
// What it cannot see: the removal of the newest segments together with a
// rollback of head.json to an older signed version (keep object
// versioning or an external copy of recent heads to rule that out).
func Verify(ctx context.Context, objects licensehub.ObjectStore, keys signing.KeySource, opts ...VerifyOption) (*Report, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	rep := &Report{LastHash: ZeroHash}
	// head.json before the listing: a sealer writes a segment before the
	// head that names it, so a Seal running meanwhile cannot make the head
	// name a segment the listing misses.
	authority := o.authority
	head, headFound, headProb, err := readHead(ctx, objects, keys, authority)
	if err != nil {
		return nil, err
	}
	if headFound {
		rep.Head = &head
	}
	nums, others, err := listSegments(ctx, objects)
	if err != nil {
		return nil, err
	}
	for _, k := range others {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s is not a segment key; ignored", k))
	}

	st := genesis
	var atHead *chainState // the state after the segment head.json names
	if headFound && head.Segment == 0 {
		atHead = &chainState{lastHash: ZeroHash}
	}
	kids := map[string]bool{}
	seqs := newSeqTracker()
	for _, n := range nums {
		if n != st.segment+1 {
			return rep.fail(&Problem{Kind: KindMissingSegment, Segment: st.segment + 1, Key: SegmentKey(st.segment + 1),
				Message: fmt.Sprintf("segment %d is missing (the next one present is %d)", st.segment+1, n)}), nil
		}
		data, err := readObject(ctx, objects, SegmentKey(n), maxSegmentSize)
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return rep.fail(&Problem{Kind: KindMissingSegment, Segment: n, Key: SegmentKey(n),
				Message: fmt.Sprintf("segment %d disappeared while being verified", n)}), nil
		}
		if err != nil {
			return nil, err
		}
		cp, info, next, prob := checkSegment(keys, authority, n, data, st)
		if prob != nil {
			return rep.fail(prob), nil
		}
		if authority == "" {
			authority = cp.Authority
		}
		if prob := seqs.fold(n, data); prob != nil {
			return rep.fail(prob), nil
		}
		if !kids[info.KeyID] {
			kids[info.KeyID] = true
			rep.KeyIDs = append(rep.KeyIDs, info.KeyID)
		}
		st = next
		rep.Segments++
		rep.Records += cp.Count
		rep.LastSeq, rep.LastHash = st.lastSeq, st.lastHash
		if headFound && head.Segment == n {
			s := st
			atHead = &s
		}
	}
	rep.Authority = authority

	switch {
	case !headFound && st.segment > 0:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s is missing although %d segments exist (a sealer stopped after writing the first segment, or it was deleted); the next Seal rewrites it", HeadKey, st.segment))
	case !headFound:
	case headProb != nil:
		return rep.fail(headProb), nil
	case head.Authority != authority && authority != "":
		return rep.fail(&Problem{Kind: KindBadHead, Key: HeadKey, Message: fmt.Sprintf("head.json names authority %s, the checkpoints %s", head.Authority, authority)}), nil
	case head.Segment > st.segment:
		return rep.fail(&Problem{Kind: KindMissingSegment, Segment: st.segment + 1, Key: SegmentKey(st.segment + 1),
			Message: fmt.Sprintf("head.json says the chain ends with segment %d (record seq %d), but the last segment present is %d (seq %d): %s deleted",
				head.Segment, head.LastSeq, st.segment, st.lastSeq, segmentRange(st.segment+1, head.Segment))}), nil
	case atHead == nil:
		return rep.fail(&Problem{Kind: KindBadHead, Key: HeadKey, Message: fmt.Sprintf("head.json names segment %d, which is not in the chain", head.Segment)}), nil
	case atHead.lastSeq != head.LastSeq || atHead.lastHash != head.LastHash || atHead.journalID != head.LastJournalID:
		return rep.fail(&Problem{Kind: KindBadHead, Segment: head.Segment, Key: HeadKey,
			Message: fmt.Sprintf("head.json (seq %d, hash %s, journal ID %q) disagrees with segment %d (seq %d, hash %s, journal ID %q)",
				head.LastSeq, head.LastHash, head.LastJournalID, head.Segment, atHead.lastSeq, atHead.lastHash, atHead.journalID)}), nil
	case head.Segment < st.segment:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("head.json names segment %d but the chain continues to segment %d (a sealer stopped before updating it); the next Seal catches up", head.Segment, st.segment))
	}
	prob, err := seqs.finish(ctx, objects, keys, authority, &o, rep)
	if err != nil {
		return nil, err
	}
	if prob != nil {
		return rep.fail(prob), nil
	}
	rep.OK = true
	return rep, nil
}

func segmentRange(a, b int64) string {
	if a == b {
		return fmt.Sprintf("segment %d was", a)
	}
	return fmt.Sprintf("segments %d..%d were", a, b)
}

func (r *Report) fail(p *Problem) *Report {
	r.Problem = p
	r.OK = false
	return r
}

// listSegments returns the segment numbers present, in order, and the
// other keys under the prefix.
func listSegments(ctx context.Context, objects licensehub.ObjectStore) ([]int64, []string, error) {
	var nums []int64
	var others []string
	err := objects.List(ctx, SegmentPrefix, func(info licensehub.ObjectInfo) error {
		if n, ok := parseSegmentKey(info.Key); ok {
			nums = append(nums, n)
		} else {
			others = append(others, info.Key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(nums)
	slices.Sort(others)
	return nums, others, nil
}

// readHead reads and checks head.json. found is false when there is none;
// prob says what is wrong with it (err is for failures to read).
func readHead(ctx context.Context, objects licensehub.ObjectStore, keys signing.KeySource, authority string) (h HeadState, found bool, prob *Problem, err error) {
	raw, err := readObject(ctx, objects, HeadKey, signing.MaxDocumentSize)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return h, false, nil, nil
	}
	if err != nil {
		return h, false, nil, err
	}
	h, prob = checkHead(raw, keys, authority)
	return h, true, prob, nil
}

func checkHead(raw []byte, keys signing.KeySource, authority string) (HeadState, *Problem) {
	var h HeadState
	bad := func(kind, format string, args ...any) (HeadState, *Problem) {
		return h, &Problem{Kind: kind, Key: HeadKey, Message: fmt.Sprintf(format, args...)}
	}
	doc, err := signing.ParseDocument(bytes.TrimSpace(raw))
	if err != nil {
		return bad(KindBadHead, "not a signed document: %v", err)
	}
	if err := strictDecode(doc.Body, &h); err != nil {
		return bad(KindBadHead, "body: %v", err)
	}
	if h.Type != HeadType {
		return bad(KindBadHead, "type is %q, not %q", h.Type, HeadType)
	}
	at, err := parseTime(h.UpdatedAt)
	if err != nil {
		return bad(KindBadHead, "updated_at: %v", err)
	}
	if _, msg := checkSigner(doc, keys, h.Authority, authority, at); msg != "" {
		return bad(KindBadHeadSignature, "%s", msg)
	}
	if h.Segment < 0 || h.LastSeq < 0 || !isHexHash(h.LastHash) {
		return bad(KindBadHead, "segment %d, last_seq %d, last_hash %q are not a chain position", h.Segment, h.LastSeq, h.LastHash)
	}
	return h, nil
}

// checkSigner verifies doc's signature and that its key belongs to the
// authority the body names (and the expected one, if any) and was usable
// at the body's time. It returns "" or what is wrong.
func checkSigner(doc *signing.Document, keys signing.KeySource, bodyAuthority, expected string, at time.Time) (signing.KeyInfo, string) {
	info, err := signing.VerifySignature(doc, keys)
	switch {
	case err != nil:
		return info, "signature: " + err.Error()
	case info.Authority != bodyAuthority:
		return info, fmt.Sprintf("signed by key %s of authority %s, but the body names authority %s", info.KeyID, info.Authority, bodyAuthority)
	case expected != "" && bodyAuthority != expected:
		return info, fmt.Sprintf("signed for authority %s, expected the hub authority %s", bodyAuthority, expected)
	}
	if err := info.CheckAt(at); err != nil {
		return info, fmt.Sprintf("key %s was not usable at %s: %v", info.KeyID, formatTime(at), err)
	}
	if st, err := doc.SignedTime(); err != nil || !st.Equal(at.UTC().Truncate(time.Second)) {
		return info, fmt.Sprintf("signed_at %s is not the body's time %s", doc.Signature.SignedAt, formatTime(at))
	}
	return info, ""
}

// strictDecode decodes a signed body, refusing unknown members.
func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkSegment checks that data, the bytes of segment n, continues the
// chain at st. It returns the segment's checkpoint, the key that signed it
// and the chain state after it, or the first problem.
func checkSegment(keys signing.KeySource, authority string, n int64, data []byte, st chainState) (Checkpoint, signing.KeyInfo, chainState, *Problem) {
	key := SegmentKey(n)
	at := func(kind string, line int, seq int64, format string, args ...any) *Problem {
		return &Problem{Kind: kind, Segment: n, Key: key, Line: line, Seq: seq, Message: fmt.Sprintf(format, args...)}
	}
	lines := splitLines(data)
	if len(lines) == 0 {
		return Checkpoint{}, signing.KeyInfo{}, st, at(KindMalformed, 0, 0, "the segment is empty")
	}
	// The checkpoint is the last line, or else the last line that is a
	// signed document (lines after it do not belong).
	cpIdx := len(lines) - 1
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte(`{"body":`)) {
			if _, err := signing.ParseDocument(lines[i]); err == nil {
				cpIdx = i
				break
			}
		}
	}
	recLines := lines[:cpIdx]
	cpLineNo := cpIdx + 1

	// The checkpoint first: when it is validly signed, its fields help
	// name what happened to the records.
	var cp Checkpoint
	var info signing.KeyInfo
	var cpProb *Problem
	doc, err := signing.ParseDocument(lines[cpIdx])
	switch {
	case err != nil:
		if pl := parseLine(cpLineNo, lines[cpIdx]); pl.bad == "" {
			cpProb = at(KindMissingCheckpoint, cpLineNo, pl.Seq, "the last line is record %d, not the signed checkpoint", pl.Seq)
		} else {
			cpProb = at(KindBadCheckpoint, cpLineNo, 0, "the last line is not a signed checkpoint: %v", err)
		}
	case strictDecode(doc.Body, &cp) != nil || cp.Type != CheckpointType:
		cpProb = at(KindBadCheckpoint, cpLineNo, 0, "the signed document on the last line is not a checkpoint")
	default:
		sealedAt, err := parseTime(cp.SealedAt)
		if err != nil {
			cpProb = at(KindBadCheckpoint, cpLineNo, 0, "sealed_at: %v", err)
			break
		}
		var msg string
		if info, msg = checkSigner(doc, keys, cp.Authority, authority, sealedAt); msg != "" {
			cpProb = at(KindBadCheckpointSignature, cpLineNo, 0, "%s", msg)
		}
	}
	trusted := cpProb == nil
	if trusted && cp.Segment != n {
		return cp, info, st, at(KindMisplacedSegment, 0, 0, "the object holds segment %d (records %d..%d), validly signed: segments were moved or swapped", cp.Segment, cp.FirstSeq, cp.LastSeq)
	}

	recs := make([]parsedLine, len(recLines))
	count := map[int64]int{}
	lineOf := map[int64]int{}
	for i, raw := range recLines {
		recs[i] = parseLine(i+1, raw)
		if recs[i].bad == "" {
			count[recs[i].Seq]++
			if _, ok := lineOf[recs[i].Seq]; !ok {
				lineOf[recs[i].Seq] = i + 1
			}
		}
	}
	e, p := st.lastSeq+1, st.lastHash
	for i := range recs {
		l := &recs[i]
		if l.bad != "" {
			return cp, info, st, at(KindMalformed, l.line, 0, "%s", l.bad)
		}
		switch {
		case l.Seq == e:
			if !l.hashOK {
				if i+1 < len(recs) && recs[i+1].bad == "" && recs[i+1].hashOK && recs[i+1].Seq == e && recs[i+1].Prev == p {
					return cp, info, st, at(KindInserted, l.line, e, "a forged record %d precedes the genuine one (line %d)", e, l.line+1)
				}
				return cp, info, st, at(KindModified, l.line, e, "record %d does not match its hash: its content was changed", e)
			}
			if l.Prev != p {
				if i == 0 {
					return cp, info, st, at(KindModified, l.line, e, "record %d does not link to record %d, the last of segment %d: it was rewritten together with its hash", e, e-1, n-1)
				}
				// Record e-1 rewritten with its hash breaks only this link;
				// record e rewritten with its prev and hash breaks the next
				// one too.
				nextLinks := i+1 < len(recs) && recs[i+1].bad == "" && recs[i+1].Prev == l.Hash ||
					i+1 == len(recs) && trusted && cp.LastHash == l.Hash
				if nextLinks {
					return cp, info, st, at(KindModified, l.line-1, e-1, "record %d was rewritten together with its hash: record %d (line %d) still links to its original hash", e-1, e, l.line)
				}
				return cp, info, st, at(KindModified, l.line, e, "record %d was rewritten together with its hash: its prev no longer names record %d (line %d)", e, e-1, l.line-1)
			}
			p = l.Hash
			e++
		case l.Seq > e:
			later := -1
			for j := i + 1; j < len(recs); j++ {
				if recs[j].bad == "" && recs[j].Seq == e {
					later = j
					break
				}
			}
			if later < 0 {
				if l.Seq-1 == e {
					return cp, info, st, at(KindDeleted, l.line, e, "record %d is missing: line %d holds record %d", e, l.line, l.Seq)
				}
				return cp, info, st, at(KindDeleted, l.line, e, "records %d..%d are missing: line %d holds record %d", e, l.Seq-1, l.line, l.Seq)
			}
			if count[l.Seq] > 1 || !l.hashOK || trusted && l.Seq > cp.LastSeq {
				return cp, info, st, at(KindInserted, l.line, l.Seq, "line %d holds a record %d that does not belong here (record %d follows at line %d)", l.line, l.Seq, e, recs[later].line)
			}
			return cp, info, st, at(KindReordered, l.line, l.Seq, "record %d at line %d comes before record %d at line %d", l.Seq, l.line, e, recs[later].line)
		default: // l.Seq < e: a position already taken
			if i > 0 && l.Seq == e-1 && recs[i-1].Seq == l.Seq && recs[i-1].Hash != l.Hash {
				// Two lines claim record e-1; the genuine one is the one
				// the next record (or the checkpoint) links to.
				succ := ""
				switch {
				case i+1 < len(recs) && recs[i+1].bad == "" && recs[i+1].Seq == e:
					succ = recs[i+1].Prev
				case i+1 == len(recs) && trusted:
					succ = cp.LastHash
				}
				if succ == l.Hash {
					return cp, info, st, at(KindInserted, recs[i-1].line, l.Seq, "a forged record %d at line %d precedes the genuine one (line %d)", l.Seq, recs[i-1].line, l.line)
				}
			}
			return cp, info, st, at(KindInserted, l.line, l.Seq, "line %d repeats record %d (first at line %d)", l.line, l.Seq, lineOf[l.Seq])
		}
	}
	last := e - 1
	next := chainState{segment: n, lastSeq: last, lastHash: p}
	if !trusted {
		return cp, info, st, cpProb
	}
	next.journalID = cp.LastJournalID
	switch {
	case last < cp.LastSeq:
		if last+1 == cp.LastSeq {
			return cp, info, st, at(KindDeleted, cpLineNo, cp.LastSeq, "record %d, the last of the segment, is missing", cp.LastSeq)
		}
		return cp, info, st, at(KindDeleted, cpLineNo, last+1, "records %d..%d at the end of the segment are missing", last+1, cp.LastSeq)
	case last > cp.LastSeq:
		line := lineOf[cp.LastSeq+1]
		return cp, info, st, at(KindInserted, line, cp.LastSeq+1, "the checkpoint ends at record %d; line %d adds record %d", cp.LastSeq, line, cp.LastSeq+1)
	case cp.FirstSeq != st.lastSeq+1 || cp.PrevHash != st.lastHash:
		return cp, info, st, at(KindBadCheckpoint, cpLineNo, 0, "the checkpoint starts at record %d after hash %s, the chain at record %d after hash %s", cp.FirstSeq, cp.PrevHash, st.lastSeq+1, st.lastHash)
	case cp.Count != int64(len(recs)) || cp.Count != cp.LastSeq-cp.FirstSeq+1:
		return cp, info, st, at(KindBadCheckpoint, cpLineNo, 0, "the checkpoint counts %d records (%d..%d), the segment has %d", cp.Count, cp.FirstSeq, cp.LastSeq, len(recs))
	case cp.LastHash != p:
		return cp, info, st, at(KindModified, 0, 0, "the records chain consistently but end at hash %s, not at %s that the signed checkpoint names: records of this segment were rewritten together with their hashes", p, cp.LastHash)
	}
	if c, ok := compareJournalIDs(cp.FirstJournalID, cp.LastJournalID); !ok || c > 0 {
		return cp, info, st, at(KindBadCheckpoint, cpLineNo, 0, "journal IDs %q..%q are not an ordered range", cp.FirstJournalID, cp.LastJournalID)
	}
	if st.journalID != "" {
		if c, ok := compareJournalIDs(st.journalID, cp.FirstJournalID); ok && c >= 0 {
			return cp, info, st, at(KindJournalOverlap, 1, cp.FirstSeq, "the segment seals journal entries from %s, but segment %d already sealed up to %s", cp.FirstJournalID, n-1, st.journalID)
		}
	}
	if cpIdx < len(lines)-1 {
		extra := parseLine(cpLineNo+1, lines[cpIdx+1])
		return cp, info, st, at(KindInserted, cpLineNo+1, extra.Seq, "line %d follows the segment's checkpoint (line %d)", cpLineNo+1, cpLineNo)
	}
	return cp, info, next, nil
}
