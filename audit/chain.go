package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/signing/jcs"
)

// Object keys of the trail in the object store.
const (
	HeadKey       = "audit/head.json"
	SegmentPrefix = "audit/segments/"
)

// Body types of the signed documents, so a checkpoint or head signature
// can never pass for another kind of document.
const (
	CheckpointType = "licensehub.audit.checkpoint"
	HeadType       = "licensehub.audit.head"
)

// ZeroHash is the prev of the first record of the trail.
var ZeroHash = strings.Repeat("0", 2*sm3.Size)

// maxSegmentSize bounds how much of one segment object is read.
const maxSegmentSize = 256 << 20

// SegmentKey is the object key of segment n (1, 2, …).
func SegmentKey(n int64) string { return fmt.Sprintf("%s%012d.jsonl", SegmentPrefix, n) }

// parseSegmentKey returns n for a key SegmentKey(n), or false.
func parseSegmentKey(key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, SegmentPrefix)
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(name, ".jsonl")
	if !ok || len(num) != 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || SegmentKey(n) != key {
		return 0, false
	}
	return n, true
}

// Checkpoint is the body of the signed document that ends a segment.
type Checkpoint struct {
	Type           string `json:"type"`             // CheckpointType
	Authority      string `json:"authority"`        // the hub's authority code: whose key signs
	Segment        int64  `json:"segment"`          // this segment's number
	FirstSeq       int64  `json:"first_seq"`        // seq of its first record
	LastSeq        int64  `json:"last_seq"`         // seq of its last record
	Count          int64  `json:"count"`            // records in it: last_seq - first_seq + 1
	PrevHash       string `json:"prev_hash"`        // hash of the record before it (ZeroHash for the first segment)
	LastHash       string `json:"last_hash"`        // hash of its last record
	SealedAt       string `json:"sealed_at"`        // TimeLayout
	SealedBy       string `json:"sealed_by"`        // instance ID of the sealer
	FirstJournalID string `json:"first_journal_id"` // journal IDs of its first and last records
	LastJournalID  string `json:"last_journal_id"`
}

// HeadState is the body of the signed head document (HeadKey): where the
// sealed chain ends. Segments are the system of record; head.json is the
// pointer that saves listing them, and what Verify compares the end of the
// chain with (a deleted last segment shows up against it).
type HeadState struct {
	Type          string `json:"type"` // HeadType
	Authority     string `json:"authority"`
	Segment       int64  `json:"segment"`         // last sealed segment (0: none yet)
	LastSeq       int64  `json:"last_seq"`        // seq of the last sealed record
	LastHash      string `json:"last_hash"`       // its hash (ZeroHash when none)
	LastJournalID string `json:"last_journal_id"` // journal ID of the last sealed record ("" when none)
	UpdatedAt     string `json:"updated_at"`      // TimeLayout
}

// chainState is where the sealed chain ends.
type chainState struct {
	segment   int64
	lastSeq   int64
	lastHash  string
	journalID string
}

var genesis = chainState{lastHash: ZeroHash}

func (c chainState) head(authority string, at time.Time) HeadState {
	return HeadState{
		Type: HeadType, Authority: authority, Segment: c.segment, LastSeq: c.lastSeq,
		LastHash: c.lastHash, LastJournalID: c.journalID, UpdatedAt: formatTime(at),
	}
}

// ---- lines ----

// chainLine is one record line of a segment.
type chainLine struct {
	Seq    int64           `json:"seq"`
	Prev   string          `json:"prev"`
	Hash   string          `json:"hash"`
	Record json.RawMessage `json:"record"`
}

// hashedBytes appends the bytes a record's hash covers after the previous
// hash: the canonical JSON of the line without its hash member,
// {"prev":"<hex>","record":<canonical record>,"seq":<n>}.
func hashedBytes(dst []byte, seq int64, prev string, record []byte) []byte {
	dst = append(dst, `{"prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `","record":`...)
	dst = append(dst, record...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, '}')
}

// chainHash is hash_i = SM3(hash_{i-1} (32 bytes) ‖ hashedBytes), hex.
// prev must be 64 hex digits and record canonical JSON.
func chainHash(seq int64, prev string, record []byte) string {
	p, _ := hex.DecodeString(prev)
	h := sm3.New()
	h.Write(p)
	h.Write(hashedBytes(make([]byte, 0, len(record)+120), seq, prev, record))
	return hex.EncodeToString(h.Sum(nil))
}

// appendLine appends the canonical line {"hash","prev","record","seq"}
// and a newline.
func appendLine(dst []byte, seq int64, prev, hash string, record []byte) []byte {
	dst = append(dst, `{"hash":"`...)
	dst = append(dst, hash...)
	dst = append(dst, `","prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `","record":`...)
	dst = append(dst, record...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, "}\n"...)
}

// parsedLine is a record line as Verify reads it.
type parsedLine struct {
	line int // 1-based line number in the segment
	chainLine
	bad    string // why the line is malformed ("" if it is not)
	hashOK bool   // the stored hash is the hash of its content
}

// parseLine reads one record line. It must be the canonical form of an
// object with exactly seq (>= 1), prev and hash (64 lower-case hex) and
// record (an object).
func parseLine(n int, raw []byte) parsedLine {
	p := parsedLine{line: n}
	canon, err := jcs.Canonicalize(raw)
	if err != nil {
		p.bad = "not JSON: " + err.Error()
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(canon))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&p.chainLine); err != nil {
		p.bad = "not a record line: " + err.Error()
		return p
	}
	switch {
	case p.Seq < 1:
		p.bad = "seq is missing or not positive"
	case !isHexHash(p.Prev):
		p.bad = "prev is not a hex SM3 hash"
	case !isHexHash(p.Hash):
		p.bad = "hash is not a hex SM3 hash"
	case len(p.Record) == 0 || p.Record[0] != '{':
		p.bad = "record is not an object"
	}
	if p.bad != "" {
		return p
	}
	// The content is hashed in canonical form; a line in any other form
	// (even one that means the same) was not written by the sealer.
	p.hashOK = bytes.Equal(canon, raw) && chainHash(p.Seq, p.Prev, p.Record) == p.Hash
	return p
}

// ---- segments ----

// sealedRecord is one record ready to be chained.
type sealedRecord struct {
	journalID string
	record    []byte // canonical JSON
}

// buildSegment chains recs after st and returns the segment's bytes (record
// lines and the signed checkpoint line), its checkpoint and the new state.
func buildSegment(ctx context.Context, st chainState, recs []sealedRecord, signer signing.Signer, authority, instance string, at time.Time) ([]byte, Checkpoint, chainState, error) {
	var buf []byte
	prev := st.lastHash
	seq := st.lastSeq
	for _, r := range recs {
		seq++
		h := chainHash(seq, prev, r.record)
		buf = appendLine(buf, seq, prev, h, r.record)
		prev = h
	}
	cp := Checkpoint{
		Type: CheckpointType, Authority: authority, Segment: st.segment + 1,
		FirstSeq: st.lastSeq + 1, LastSeq: seq, Count: int64(len(recs)),
		PrevHash: st.lastHash, LastHash: prev, SealedAt: formatTime(at), SealedBy: instance,
		FirstJournalID: recs[0].journalID, LastJournalID: recs[len(recs)-1].journalID,
	}
	doc, err := signBody(ctx, signer, cp, at)
	if err != nil {
		return nil, cp, st, err
	}
	buf = append(buf, doc...)
	buf = append(buf, '\n')
	return buf, cp, chainState{segment: cp.Segment, lastSeq: seq, lastHash: prev, journalID: cp.LastJournalID}, nil
}

// signBody signs body (a checkpoint or head) and returns the document's
// stored form.
func signBody(ctx context.Context, signer signing.Signer, body any, at time.Time) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "audit: encode signed body")
	}
	doc, err := signing.Sign(ctx, signer, raw, at)
	if err != nil {
		return nil, err
	}
	return doc.Marshal()
}

// splitLines splits a segment into its lines (without newlines). A
// segment ends with a newline; a missing final newline is tolerated, an
// empty line is kept (and is malformed).
func splitLines(data []byte) [][]byte {
	data = bytes.TrimSuffix(data, []byte("\n"))
	if len(data) == 0 {
		return nil
	}
	return bytes.Split(data, []byte("\n"))
}

// readObject reads at most limit bytes of key.
func readObject(ctx context.Context, objects licensehub.ObjectStore, key string, limit int64) ([]byte, error) {
	rc, _, err := objects.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit: read %s", key)
	}
	if int64(len(b)) > limit {
		return nil, licensehub.Errorf(licensehub.EINVALID, "audit: %s is larger than %d bytes", key, limit)
	}
	return b, nil
}
