package audit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensehub/licensehub"
)

// MaxEntrySize bounds one file journal entry, in bytes.
const MaxEntrySize = 1 << 20

const (
	// defaultMaxFileSize is the size at which the file journal starts a
	// new file. Read scans the file that holds its starting point from the
	// beginning, so this bounds the cost of a Read too.
	defaultMaxFileSize = 4 << 20

	journalExt  = ".journal"
	lockName    = "LOCK"
	frameHeader = 24 // length u32, crc32c u32, ms u64, seq u64 (little-endian)

	// maxReadHints bounds the remembered Read positions.
	maxReadHints = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FileJournal is the Journal of the embedded (single-process) mode: an
// append-only log in a directory of files.
//
// Layout: <dir>/LOCK (held with flock while open, so a second process
// cannot open the journal) and <dir>/<ms 20 digits>-<seq 20 digits>.journal
// files, each named by a lower bound of the IDs it holds; the newest is the
// one appended to. A file is a sequence of frames:
//
//	length u32 | crc32c u32 | id.ms u64 | id.seq u64 | data   (little-endian)
//
// where the CRC (Castagnoli) covers the two ID words and the data.
//
// IDs are "<ms>-<seq>" like Redis stream IDs: the append time in Unix
// milliseconds and a sequence within the millisecond, strictly increasing
// even if the clock steps back (the last ID is recovered from the files on
// open, and an emptied journal keeps a file named after the next ID).
//
// Append writes the frame and returns once an fsync covering it has
// completed. Concurrent appenders share fsyncs (group commit): while one
// fsync runs, later frames are written and the next fsync covers all of
// them. Read returns only entries that are durable. Trim deletes whole
// files whose entries are all trimmed; when every entry of the file being
// appended to is trimmed it first starts a new file. A file grows to about
// 4 MiB before a new one is started.
//
// Open recovers from a crash: a torn frame at the end of the newest file
// (a write that never completed, so an Append that never returned) is cut
// off (TornTail reports how many bytes). A bad frame anywhere else is
// corruption and Open refuses the journal naming the file and offset.
//
// After a failed write or fsync the journal refuses further appends (the
// state of the file is unknown, see fsync(2)); Close it and open it again.
type FileJournal struct {
	dir      string
	lockFile *os.File
	maxSize  int64
	clock    func() time.Time

	mu        sync.Mutex
	cond      *sync.Cond
	files     []*journalFile // ordered by first; the last is the active one
	active    *os.File       // write handle of the last file
	floor     journalID      // every future ID is >= floor
	writeSeq  uint64         // frames written since open
	syncedSeq uint64         // frames known durable
	syncing   bool
	failed    error
	closed    bool
	hints     map[journalID]readHint // Read positions: entry ID -> where the next frame starts
	tornTail  int64
	syncs     atomic.Int64 // group-commit fsyncs run by Append (tests count them)

	// beforeSync, when set (tests), runs before each group-commit fsync,
	// without the lock.
	beforeSync func()
}

type journalFile struct {
	name  string
	first journalID // lower bound of its IDs (from the name)
	last  journalID // ID of its last entry, when n > 0
	n     int
	size  int64 // bytes written
	dur   int64 // bytes known durable (all of size for every file but the active one)
}

type readHint struct {
	file   string
	offset int64
}

var _ Journal = (*FileJournal)(nil)

// OpenFileJournal opens (creating if needed) the journal in dir.
func OpenFileJournal(dir string) (*FileJournal, error) {
	return openFileJournal(dir, defaultMaxFileSize, time.Now)
}

func openFileJournal(dir string, maxSize int64, clock func() time.Time) (_ *FileJournal, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: create %s", dir)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: open lock file in %s", dir)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal %s is in use by another process", dir)
	}
	j := &FileJournal{dir: dir, lockFile: lf, maxSize: maxSize, clock: clock, hints: map[journalID]readHint{}}
	j.cond = sync.NewCond(&j.mu)
	defer func() {
		if err != nil {
			if j.active != nil {
				j.active.Close()
			}
			unlockFile(lf)
			lf.Close()
		}
	}()
	if err := j.recover(); err != nil {
		return nil, err
	}
	return j, nil
}

// recover reads every file, cuts a torn tail off the newest and opens it
// for appending (creating the first file of a new journal).
func (j *FileJournal) recover() error {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: list %s", j.dir)
	}
	for _, e := range ents {
		first, ok := parseJournalFileName(e.Name())
		if !ok {
			continue
		}
		j.files = append(j.files, &journalFile{name: e.Name(), first: first})
	}
	slices.SortFunc(j.files, func(a, b *journalFile) int { return a.first.compare(b.first) })

	var prev journalID
	var havePrev bool
	for i, f := range j.files {
		last := i == len(j.files)-1
		good, err := j.scanFile(f, prev, havePrev, last)
		if err != nil {
			return err
		}
		if last && good < f.size {
			if err := truncateFile(filepath.Join(j.dir, f.name), good); err != nil {
				return err
			}
			j.tornTail = f.size - good
			f.size = good
		}
		f.dur = f.size
		if f.n > 0 {
			prev, havePrev = f.last, true
		}
	}

	now := journalID{ms: uint64(max(j.clock().UnixMilli(), 0))}
	if len(j.files) == 0 {
		if err := j.createFile(now); err != nil {
			return err
		}
	} else {
		a := j.files[len(j.files)-1]
		f, err := os.OpenFile(filepath.Join(j.dir, a.name), os.O_WRONLY, 0o600)
		if err != nil {
			return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: open %s", a.name)
		}
		if _, err := f.Seek(a.size, io.SeekStart); err != nil {
			f.Close()
			return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: seek %s", a.name)
		}
		// What a crashed process wrote may still be only in the page
		// cache: make it durable before calling it so.
		if err := f.Sync(); err != nil {
			f.Close()
			return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: fsync %s", a.name)
		}
		j.active = f
		j.floor = a.first
	}
	if havePrev {
		if n, ok := prev.next(); ok && j.floor.less(n) {
			j.floor = n
		}
	}
	return nil
}

// scanFile reads f's frames, setting f.n, f.last and f.size, and returns
// the offset after the last good frame. A bad frame is an error unless the
// file is the newest (a torn tail).
func (j *FileJournal) scanFile(f *journalFile, prev journalID, havePrev, newest bool) (int64, error) {
	path := filepath.Join(j.dir, f.name)
	fh, err := os.Open(path)
	if err != nil {
		return 0, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: open %s", f.name)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return 0, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: stat %s", f.name)
	}
	f.size = st.Size()
	fr := newFrameReader(fh)
	for {
		off := fr.off
		id, _, err := fr.next()
		switch {
		case errors.Is(err, io.EOF):
			return off, nil
		case err != nil && newest:
			return off, nil // a torn write: its Append never returned
		case err == nil && (id.less(f.first) || havePrev && !prev.less(id)):
			err = fmt.Errorf("entry %s is out of order", id)
		}
		if err != nil {
			return 0, licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal %s is corrupt at byte %d: %v", path, off, err)
		}
		f.n++
		f.last = id
		prev, havePrev = id, true
	}
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: open %s", path)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: truncate %s", path)
	}
	if err := f.Sync(); err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: fsync %s", path)
	}
	return nil
}

// createFile starts a new, empty active file named first, and makes its
// name durable. j.active must be nil or closed by the caller.
func (j *FileJournal) createFile(first journalID) error {
	name := journalFileName(first)
	f, err := os.OpenFile(filepath.Join(j.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: create %s", name)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.active = f
	j.files = append(j.files, &journalFile{name: name, first: first})
	if j.floor.less(first) {
		j.floor = first
	}
	return nil
}

// rotateLocked makes the active file durable, closes it and starts a new
// one. j.mu is held and no fsync is running.
func (j *FileJournal) rotateLocked() error {
	if err := j.active.Sync(); err != nil {
		j.failed = err
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: fsync")
	}
	a := j.files[len(j.files)-1]
	a.dur = a.size
	j.syncedSeq = j.writeSeq
	if err := j.active.Close(); err != nil {
		j.failed = err
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: close")
	}
	j.active = nil
	if err := j.createFile(j.nextIDLocked()); err != nil {
		j.failed = err
		return err
	}
	return nil
}

// nextIDLocked is the ID the next entry would get: the current time, or
// just after the last ID if the clock is behind it.
func (j *FileJournal) nextIDLocked() journalID {
	now := journalID{ms: uint64(max(j.clock().UnixMilli(), 0))}
	if now.less(j.floor) {
		return j.floor
	}
	return now
}

func (j *FileJournal) usableLocked() error {
	switch {
	case j.closed:
		return licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal %s is closed", j.dir)
	case j.failed != nil:
		return licensehub.Wrap(j.failed, licensehub.EUNAVAILABLE, "audit journal %s failed earlier; reopen it", j.dir)
	}
	return nil
}

// Append writes data and returns after an fsync that covers it. ctx is
// checked before writing; once written, Append waits for the fsync.
func (j *FileJournal) Append(ctx context.Context, data []byte) (string, error) {
	if len(data) == 0 || len(data) > MaxEntrySize {
		return "", licensehub.Errorf(licensehub.EINVALID, "audit journal: an entry is 1..%d bytes, got %d", MaxEntrySize, len(data))
	}
	return j.appendBuilt(ctx, func() ([]byte, error) { return data, nil })
}

// appendBuilt is Append of the data build returns; build runs under the
// journal's lock just before the write, so entries are written in the
// order build is called (LocalJournal numbers records with it).
func (j *FileJournal) appendBuilt(ctx context.Context, build func() ([]byte, error)) (string, error) {
	if err := ctxError(ctx, "audit journal append"); err != nil {
		return "", err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for {
		if err := j.usableLocked(); err != nil {
			return "", err
		}
		a := j.files[len(j.files)-1]
		if a.size < j.maxSize || a.n == 0 {
			break
		}
		if j.syncing { // the fsync in flight is on the file to rotate
			j.cond.Wait()
			continue
		}
		if err := j.rotateLocked(); err != nil {
			return "", err
		}
	}
	data, err := build()
	if err != nil {
		return "", err
	}
	if len(data) == 0 || len(data) > MaxEntrySize {
		return "", licensehub.Errorf(licensehub.EINVALID, "audit journal: an entry is 1..%d bytes, got %d", MaxEntrySize, len(data))
	}
	id := j.nextIDLocked()
	frame := appendFrame(make([]byte, 0, frameHeader+len(data)), id, data)
	if _, err := j.active.Write(frame); err != nil {
		// Part of the frame may be in the file: nothing may follow it.
		j.failed = err
		return "", licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: write")
	}
	a := j.files[len(j.files)-1]
	a.size += int64(len(frame))
	a.n++
	a.last = id
	if n, ok := id.next(); ok {
		j.floor = n
	}
	j.writeSeq++
	mine := j.writeSeq

	// Group commit: the first waiter without an fsync in flight runs one
	// for everything written so far; the others wait for it.
	for j.syncedSeq < mine {
		if j.failed != nil {
			return "", licensehub.Wrap(j.failed, licensehub.EUNAVAILABLE, "audit journal: fsync")
		}
		if j.closed {
			return "", licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal %s was closed before the entry was durable", j.dir)
		}
		if j.syncing {
			j.cond.Wait()
			continue
		}
		// No rotation runs while syncing is set, so the active file
		// stays the same until the fsync is done.
		j.syncing = true
		af := j.files[len(j.files)-1]
		target, f, size := j.writeSeq, j.active, af.size
		j.mu.Unlock()
		if j.beforeSync != nil {
			j.beforeSync()
		}
		err := f.Sync()
		j.syncs.Add(1)
		j.mu.Lock()
		j.syncing = false
		if err != nil {
			j.failed = err
		} else if target > j.syncedSeq {
			j.syncedSeq = target
			af.dur = size
		}
		j.cond.Broadcast()
	}
	return id.String(), nil
}

// Read returns up to n durable entries after afterID.
func (j *FileJournal) Read(ctx context.Context, afterID string, n int) ([]Entry, error) {
	after, start, err := parseAfter(afterID)
	if err != nil {
		return nil, err
	}
	if err := ctxError(ctx, "audit journal read"); err != nil {
		return nil, err
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal %s is closed", j.dir)
	}
	// A snapshot: files are only appended to, and only up to dur bytes of
	// each are read, so what Read sees cannot change under it.
	files := make([]journalFile, len(j.files))
	for i, f := range j.files {
		files[i] = *f
	}
	hint, haveHint := j.hints[after]
	j.mu.Unlock()

	r := journalRead{j: j, after: after, start: start, n: n, out: []Entry{}}
	for _, f := range files {
		if f.n == 0 || f.dur == 0 || !start && !after.less(f.last) {
			continue // nothing (durable) after afterID in this file
		}
		var from int64
		if haveHint && !start && hint.file == f.name && hint.offset <= f.dur {
			from = hint.offset
		}
		done, err := r.file(ctx, f, from)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	if len(r.out) > 0 {
		j.remember(r.lastID, r.lastHint)
	}
	return r.out, nil
}

// journalRead is one Read in progress.
type journalRead struct {
	j        *FileJournal
	after    journalID
	start    bool
	n        int
	out      []Entry
	lastID   journalID
	lastHint readHint
}

// file appends the entries of f (from byte from up to f.dur) after r.after
// to r.out, and reports whether Read is done (n entries).
func (r *journalRead) file(ctx context.Context, f journalFile, from int64) (bool, error) {
	path := filepath.Join(r.j.dir, f.name)
	fh, err := os.Open(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil // trimmed meanwhile: everything in it was trimmed
	}
	if err != nil {
		return false, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: open %s", f.name)
	}
	defer fh.Close()
	if _, err := fh.Seek(from, io.SeekStart); err != nil {
		return false, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: seek %s", f.name)
	}
	fr := newFrameReader(io.LimitReader(fh, f.dur-from))
	fr.off = from
	for {
		if err := ctxError(ctx, "audit journal read"); err != nil {
			return false, err
		}
		off := fr.off
		id, data, err := fr.next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, licensehub.Errorf(licensehub.EUNAVAILABLE, "audit journal %s is corrupt at byte %d: %v", path, off, err)
		}
		if !r.start && !r.after.less(id) {
			continue
		}
		r.out = append(r.out, Entry{ID: id.String(), Data: data})
		r.lastID, r.lastHint = id, readHint{file: f.name, offset: fr.off}
		if r.n > 0 && len(r.out) >= r.n {
			return true, nil
		}
	}
}

// remember notes where the entry after id starts, for the next Read.
func (j *FileJournal) remember(id journalID, h readHint) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.hints) >= maxReadHints {
		clear(j.hints)
	}
	j.hints[id] = h
}

// Trim deletes the files whose entries all have IDs up to throughID,
// starting a new file first when that includes the one appended to.
func (j *FileJournal) Trim(ctx context.Context, throughID string) error {
	through, start, err := parseAfter(throughID)
	if err != nil || start {
		return err
	}
	if err := ctxError(ctx, "audit journal trim"); err != nil {
		return err
	}
	j.mu.Lock()
	for {
		if err := j.usableLocked(); err != nil {
			j.mu.Unlock()
			return err
		}
		a := j.files[len(j.files)-1]
		if a.n == 0 || through.less(a.last) {
			break
		}
		if j.syncing {
			j.cond.Wait()
			continue
		}
		if err := j.rotateLocked(); err != nil {
			j.mu.Unlock()
			return err
		}
		break
	}
	var drop []string
	keep := j.files[:0]
	for i, f := range j.files {
		if i < len(j.files)-1 && (f.n == 0 || !through.less(f.last)) {
			drop = append(drop, f.name)
			continue
		}
		keep = append(keep, f)
	}
	clear(j.files[len(keep):])
	j.files = keep
	if len(drop) > 0 {
		clear(j.hints)
	}
	j.mu.Unlock()

	for _, name := range drop {
		if err := os.Remove(filepath.Join(j.dir, name)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: remove %s", name)
		}
	}
	if len(drop) > 0 {
		return syncDir(j.dir)
	}
	return nil
}

// TornTail reports how many bytes of an incomplete write Open cut off the
// end of the journal (0 after a clean shutdown).
func (j *FileJournal) TornTail() int64 { return j.tornTail }

// Close makes everything written durable and releases the journal.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	for j.syncing {
		j.cond.Wait()
	}
	j.cond.Broadcast()
	var errs []error
	if j.active != nil {
		if j.failed == nil {
			if err := j.active.Sync(); err != nil {
				j.failed = err
				errs = append(errs, err)
			} else {
				// Appenders still waiting for an fsync are covered by this one.
				a := j.files[len(j.files)-1]
				a.dur = a.size
				j.syncedSeq = j.writeSeq
			}
		}
		errs = append(errs, j.active.Close())
	}
	errs = append(errs, unlockFile(j.lockFile), j.lockFile.Close())
	if err := errors.Join(errs...); err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: close %s", j.dir)
	}
	return nil
}

// ---- frames and names ----

func appendFrame(dst []byte, id journalID, data []byte) []byte {
	var h [frameHeader]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint64(h[8:16], id.ms)
	binary.LittleEndian.PutUint64(h[16:24], id.seq)
	crc := crc32.Update(0, castagnoli, h[8:24])
	crc = crc32.Update(crc, castagnoli, data)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	dst = append(dst, h[:]...)
	return append(dst, data...)
}

// frameReader reads frames from a file.
type frameReader struct {
	r   io.Reader
	off int64
	hdr [frameHeader]byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next frame: io.EOF at a clean end, another error for a
// short or bad frame.
func (fr *frameReader) next() (journalID, []byte, error) {
	n, err := io.ReadFull(fr.r, fr.hdr[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return journalID{}, nil, io.EOF
		}
		return journalID{}, nil, errors.New("short frame header")
	}
	h := fr.hdr[:]
	size := binary.LittleEndian.Uint32(h[0:4])
	id := journalID{binary.LittleEndian.Uint64(h[8:16]), binary.LittleEndian.Uint64(h[16:24])}
	if size == 0 || size > MaxEntrySize {
		return id, nil, fmt.Errorf("frame length %d", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(fr.r, data); err != nil {
		return id, nil, errors.New("short frame")
	}
	crc := crc32.Update(0, castagnoli, h[8:24])
	crc = crc32.Update(crc, castagnoli, data)
	if crc != binary.LittleEndian.Uint32(h[4:8]) {
		return id, nil, errors.New("checksum mismatch")
	}
	fr.off += frameHeader + int64(size)
	return id, data, nil
}

func journalFileName(first journalID) string {
	return fmt.Sprintf("%020d-%020d%s", first.ms, first.seq, journalExt)
}

func parseJournalFileName(name string) (journalID, bool) {
	base, ok := strings.CutSuffix(name, journalExt)
	if !ok || len(base) != 41 {
		return journalID{}, false
	}
	id, ok := parseJournalID(base)
	return id, ok && journalFileName(id) == name
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: open %s", dir)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "audit journal: fsync %s", dir)
	}
	return nil
}

// ctxError reports an ended context as ETIMEOUT, keeping the cause.
func ctxError(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "%s: context ended", what)
	}
	return nil
}
