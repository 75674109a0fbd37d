package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensehub/licensehub"
)

// Files of a LocalJournal's directory besides the FileJournal's.
const (
	instanceFileName = "INSTANCE" // the instance ID, written once
	seqFileName      = "SEQ"      // the highest Seq trimmed from the journal
)

// maxInstanceID bounds an instance ID (it is part of object keys).
const maxInstanceID = 100

// LocalJournal is one hub instance's own journal: a FileJournal (fsync
// with group commit) in a directory that also keeps the instance's ID,
// stable across restarts, and numbers the records it journals 1, 2, 3, …
// (Record.Seq) in the order they become durable.
//
// Embedded, it is the trail's only journal. With Redis, Trail.Append
// journals a record here first and then adds it to the shared stream: the
// record is durable on the instance's disk before the response leaves,
// whatever happens to Redis, and Trail.Run re-publishes what the sealed
// trail lacks and trims what it holds (see Config.Local).
//
// The directory is the instance's identity: two processes cannot open it
// at once (flock), and it must be on a disk that survives a restart of
// the process (a container's volume, not its writable layer).
type LocalJournal struct {
	fj  *FileJournal
	dir string
	id  string

	seq   uint64        // the last Seq given; changed only under fj.mu (in appendBuilt's build)
	acked atomic.Uint64 // the highest Seq whose append returned durable

	markMu  sync.Mutex
	mark    uint64 // the value in SEQ
	trimmed string // entries through this ID are trimmed (scans start after it)
}

var _ Journal = (*LocalJournal)(nil)

// OpenLocalJournal opens (creating if needed) the local journal in dir. A
// new directory gets an instance ID made of the host name and 8 random
// hex digits.
func OpenLocalJournal(dir string) (*LocalJournal, error) {
	fj, err := OpenFileJournal(dir)
	if err != nil {
		return nil, err
	}
	l := &LocalJournal{fj: fj, dir: dir}
	if err := l.open(); err != nil {
		fj.Close()
		return nil, err
	}
	return l, nil
}

func (l *LocalJournal) open() error {
	id, err := loadInstanceID(l.dir)
	if err != nil {
		return err
	}
	l.id = id
	if l.mark, err = readSeqFile(l.dir); err != nil {
		return err
	}
	l.seq = l.mark
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = l.scan(ctx, "", func(e Entry, seq uint64) bool {
		l.seq = max(l.seq, seq)
		return true
	})
	if err != nil {
		return err
	}
	l.acked.Store(l.seq)
	return nil
}

// InstanceID is the instance's ID: Record.InstanceID of the records it
// numbers.
func (l *LocalJournal) InstanceID() string { return l.id }

// Acked is the highest Seq journaled durably so far (since the directory
// was created).
func (l *LocalJournal) Acked() uint64 { return l.acked.Load() }

// TornTail is FileJournal.TornTail.
func (l *LocalJournal) TornTail() int64 { return l.fj.TornTail() }

// appendRecord journals the encoded record data (without a Seq), giving
// it the next Seq and this instance's ID, and returns once it is durable,
// with the bytes journaled.
func (l *LocalJournal) appendRecord(ctx context.Context, data []byte) (rec []byte, seq uint64, err error) {
	if len(data) < 2 || data[len(data)-1] != '}' || len(data)+40 > MaxEntrySize {
		return nil, 0, licensehub.Errorf(licensehub.EINVALID, "audit journal: not an encoded record of at most %d bytes", MaxEntrySize-40)
	}
	_, err = l.fj.appendBuilt(ctx, func() ([]byte, error) {
		seq = l.seq + 1
		l.seq = seq
		rec = withSeq(data, seq)
		return rec, nil
	})
	if err != nil {
		return nil, 0, err
	}
	for {
		a := l.acked.Load()
		if a >= seq || l.acked.CompareAndSwap(a, seq) {
			break
		}
	}
	return rec, seq, nil
}

// withSeq returns the encoded record data (an object whose last member is
// not instance_seq) with "instance_seq":seq added as its last member, as
// Record.MarshalJSON writes it.
func withSeq(data []byte, seq uint64) []byte {
	out := make([]byte, 0, len(data)+32)
	out = append(out, data[:len(data)-1]...)
	out = append(out, `,"instance_seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	return append(out, '}')
}

// Append journals data as it is, without a Seq (Trail.Append numbers
// records; this is the plain Journal method).
func (l *LocalJournal) Append(ctx context.Context, data []byte) (string, error) {
	return l.fj.Append(ctx, data)
}

// Read is FileJournal.Read.
func (l *LocalJournal) Read(ctx context.Context, afterID string, n int) ([]Entry, error) {
	return l.fj.Read(ctx, afterID, n)
}

// Trim discards the entries through throughID, first recording the
// highest Seq among them (so that numbering continues after it even when
// the journal is left empty).
func (l *LocalJournal) Trim(ctx context.Context, throughID string) error {
	through, start, err := parseAfter(throughID)
	if err != nil || start {
		return err
	}
	l.markMu.Lock()
	from := l.trimmed
	l.markMu.Unlock()
	var top uint64
	err = l.scan(ctx, from, func(e Entry, seq uint64) bool {
		id, _ := parseJournalID(e.ID)
		if through.less(id) {
			return false
		}
		top = max(top, seq)
		return true
	})
	if err != nil {
		return err
	}
	return l.trimThrough(ctx, throughID, top)
}

// trimThrough trims through throughID, whose entries have numbers up to
// seq.
func (l *LocalJournal) trimThrough(ctx context.Context, throughID string, seq uint64) error {
	if err := l.keepMark(seq); err != nil {
		return err
	}
	if err := l.fj.Trim(ctx, throughID); err != nil {
		return err
	}
	l.markMu.Lock()
	l.trimmed = laterJournalID(l.trimmed, throughID)
	l.markMu.Unlock()
	return nil
}

// keepMark makes SEQ at least seq, durably.
func (l *LocalJournal) keepMark(seq uint64) error {
	l.markMu.Lock()
	defer l.markMu.Unlock()
	if seq <= l.mark {
		return nil
	}
	if err := writeFileDurably(l.dir, seqFileName, []byte(strconv.FormatUint(seq, 10)+"\n")); err != nil {
		return err
	}
	l.mark = seq
	return nil
}

// Close is FileJournal.Close.
func (l *LocalJournal) Close() error { return l.fj.Close() }

// scan calls fn with every durable entry after afterID and its Seq (0 for
// an entry without one) until fn returns false.
func (l *LocalJournal) scan(ctx context.Context, afterID string, fn func(Entry, uint64) bool) error {
	for {
		es, err := l.fj.Read(ctx, afterID, 1000)
		if err != nil {
			return err
		}
		for _, e := range es {
			if !fn(e, entrySeq(e.Data).seq) {
				return nil
			}
		}
		if len(es) < 1000 {
			return nil
		}
		afterID = es[len(es)-1].ID
	}
}

// seqRef is the (instance, seq) identity of a numbered record.
type seqRef struct {
	instance string
	seq      uint64
}

// entrySeq reads the instance and Seq of an encoded record (zero when it
// has none or is not a record).
func entrySeq(data []byte) seqRef {
	if !bytes.Contains(data, []byte(`"instance_seq"`)) {
		return seqRef{}
	}
	var r struct {
		InstanceID string `json:"instance_id"`
		Seq        uint64 `json:"instance_seq"`
	}
	if json.Unmarshal(data, &r) != nil || r.InstanceID == "" {
		return seqRef{}
	}
	return seqRef{r.InstanceID, r.Seq}
}

// loadInstanceID reads dir/INSTANCE, creating it for a new journal.
func loadInstanceID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, instanceFileName))
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !validInstanceID(id) {
			return "", licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal: %s does not hold an instance ID (letters, digits, '-', '_' and '.', at most %d)", filepath.Join(dir, instanceFileName), maxInstanceID)
		}
		return id, nil
	}
	if !errors.Is(err, iofs.ErrNotExist) {
		return "", licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: read the instance ID")
	}
	host, _ := os.Hostname()
	var sb strings.Builder
	for _, c := range host {
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			sb.WriteRune(c)
		}
	}
	h := sb.String()
	if len(h) > 60 {
		h = h[:60]
	}
	if h == "" {
		h = "hub"
	}
	r := make([]byte, 4)
	rand.Read(r)
	id := h + "-" + hex.EncodeToString(r)
	if err := writeFileDurably(dir, instanceFileName, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

func validInstanceID(id string) bool {
	if id == "" || len(id) > maxInstanceID || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func readSeqFile(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, seqFileName))
	if errors.Is(err, iofs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: read %s", seqFileName)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal: %s does not hold a record number", filepath.Join(dir, seqFileName))
	}
	return n, nil
}

// writeFileDurably replaces dir/name with data: a temporary file, fsync,
// rename, fsync of the directory.
func writeFileDurably(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: write %s", name)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: write %s", name)
	}
	return syncDir(dir)
}
