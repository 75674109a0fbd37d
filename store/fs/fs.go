// Package fs is the licensehub.ObjectStore of the embedded first-run mode:
// objects are files below one directory, so the hub runs without MinIO.
//
// Layout of the directory given to Open:
//
//	objects/<key>   one file per object (format: see format.go)
//	.tmp/           files being written, renamed or linked into objects/
//
// A key cannot be both an object and the prefix directory of other keys:
// with "a" stored, writing "a/b" fails with EINVALID, and so does writing "a"
// with "a/b" stored. MinIO stores keys the same way and accepts such pairs,
// but then lists only the parent ("a/b" vanishes from List), so the hub
// must never create them; here the mistake is loud. A key segment longer
// than the filesystem's file name limit (255 bytes) gives EINVALID.
//
// Writes are atomic and durable, also between processes sharing the
// directory: content and header go to a temp file that is fsynced and then
// renamed into place (Put) or hard-linked into place (Create, which fails
// atomically when the name exists), and the parent directory is fsynced.
//
// Errors are *licensehub.Error values: EINVALID for a bad key or bad
// options, ENOTFOUND for a missing object, ECONFLICT for Create of an
// existing key, ETIMEOUT when the context ended (the cause is kept, so
// errors.Is(err, context.Canceled) works) and EUNAVAILABLE when the
// filesystem fails. Errors of the reader passed to Put and Create are
// returned wrapped, keeping their own code.
package fs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/licensehub/licensehub"
)

const (
	objectsDir = "objects"
	tmpDir     = ".tmp"

	dirPerm = 0o750

	// staleTempAge is how old a temp file must be before Open removes it as
	// the leftover of a crashed writer. Other processes may be writing into
	// the directory, but none of their writes goes a day without touching
	// its temp file.
	staleTempAge = 24 * time.Hour

	// maxDirRetries bounds how often a write recreates its parent directory
	// when a concurrent Delete pruned it between mkdir and rename/link.
	maxDirRetries = 100

	copyBufferSize = 64 << 10
)

var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, copyBufferSize)
	return &b
}}

// Store is a filesystem licensehub.ObjectStore. It is safe for concurrent
// use, also by several processes sharing the directory.
type Store struct {
	objects string // absolute path of <dir>/objects
	tmp     string // absolute path of <dir>/.tmp
	closed  atomic.Bool
}

var (
	_ licensehub.ObjectStore = (*Store)(nil)
	_ licensehub.Pinger      = (*Store)(nil)
)

// Open returns the store rooted at dir, creating dir and its layout when
// they do not exist and removing temp files that crashed writers left
// behind.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "dir", "fs: the object store directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "fs: object store directory %q", dir)
	}
	s := &Store{
		objects: filepath.Join(abs, objectsDir),
		tmp:     filepath.Join(abs, tmpDir),
	}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "fs: create %s", d)
		}
	}
	s.removeStaleTemps()
	return s, nil
}

// Kind names the implementation for logs and /readyz.
func (s *Store) Kind() string { return "filesystem" }

// Close marks the store closed; later calls fail with EUNAVAILABLE. Readers
// returned by Get stay usable until they are closed.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// Ping checks that the directory is there and writable by creating and
// removing a probe file.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx, "ping", ""); err != nil {
		return err
	}
	if err := s.probe(); err != nil {
		// The directory goes to the log with the cause, not into the
		// message /readyz shows.
		return licensehub.Wrap(fmt.Errorf("%s: %w", filepath.Dir(s.objects), err), licensehub.EUNAVAILABLE,
			"fs: the object store directory cannot be written")
	}
	return ctxErr(ctx, "ping", "")
}

func (s *Store) probe() error {
	if fi, err := os.Stat(s.objects); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", s.objects)
	}
	f, err := os.CreateTemp(s.tmp, "ping-*")
	if err != nil {
		return err
	}
	err = f.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}

// Put writes key, replacing any previous content atomically.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	return s.write(ctx, "put", key, r, size, opts, false)
}

// Create writes key only if it does not exist yet, else it returns ECONFLICT
// and leaves the object unchanged. Among concurrent Creates of one key, in
// this or other processes, exactly one succeeds.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	return s.write(ctx, "create", key, r, size, opts, true)
}

func (s *Store) write(ctx context.Context, op, key string, r io.Reader, size int64, opts licensehub.PutOptions, createOnly bool) (licensehub.ObjectInfo, error) {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	if err := opts.Validate(); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	if err := s.check(ctx, op, key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	temp, info, err := s.writeTemp(ctx, op, key, r, size, opts)
	if err != nil {
		return licensehub.ObjectInfo{}, err
	}
	// The last chance to give up: once committed, the write has happened and
	// must not be reported as failed because the context ended meanwhile.
	if err := ctxErr(ctx, op, key); err != nil {
		os.Remove(temp)
		return licensehub.ObjectInfo{}, err
	}
	final := s.path(key)
	commit := os.Rename
	if createOnly {
		commit = os.Link
	}
	err = s.commit(commit, temp, final)
	if createOnly || err != nil {
		// The temp name is ours until a rename moves it: after a link it is
		// a second name of the object, after a failure a leftover.
		os.Remove(temp)
	}
	if err != nil {
		switch {
		case isCollision(err, final):
			return licensehub.ObjectInfo{}, &licensehub.Error{
				Code:  licensehub.EINVALID,
				Field: "key",
				Message: fmt.Sprintf("fs: key %q collides with a stored key: "+
					"a key cannot be both an object and the prefix of other keys", key),
				Err: err,
			}
		case createOnly && errors.Is(err, iofs.ErrExist):
			return licensehub.ObjectInfo{}, &licensehub.Error{
				Code:    licensehub.ECONFLICT,
				Message: fmt.Sprintf("fs: object %q already exists", key),
				Field:   "key",
			}
		}
		return licensehub.ObjectInfo{}, s.fsErr(err, op, key)
	}
	if err := syncDir(filepath.Dir(final)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		// (A directory that is gone was pruned after a concurrent Delete
		// removed the object again: nothing of ours is left to sync.)
		return licensehub.ObjectInfo{}, s.fsErr(err, op, key)
	}
	return info, nil
}

// writeTemp streams the header and content of a new object into a fsynced
// temp file and returns its path and the object's info.
func (s *Store) writeTemp(ctx context.Context, op, key string, r io.Reader, size int64, opts licensehub.PutOptions) (path string, info licensehub.ObjectInfo, err error) {
	hdr, etagOffset, err := encodeHeader(opts)
	if err != nil {
		return "", info, licensehub.Wrap(err, licensehub.EINVALID, "fs: %s %q: encode header", op, key)
	}
	f, err := os.CreateTemp(s.tmp, "obj-*")
	if err != nil {
		return "", info, s.fsErr(err, op, key)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	if _, err := f.Write(hdr); err != nil {
		return "", info, s.fsErr(err, op, key)
	}
	sum := sha256.New()
	n, err := copyBody(ctx, io.MultiWriter(f, sum), r, size)
	if err != nil {
		var werr writeError
		if cerr := ctxErr(ctx, op, key); cerr != nil {
			return "", info, cerr
		}
		switch {
		case errors.As(err, &werr):
			return "", info, s.fsErr(werr.err, op, key)
		case errors.Is(err, errShortBody):
			return "", info, licensehub.Wrap(err, licensehub.EINVALID, "fs: %s %q: body has %d bytes, %d were announced", op, key, n, size)
		default:
			return "", info, fmt.Errorf("fs: %s %q: read body: %w", op, key, err)
		}
	}
	etag := hex.EncodeToString(sum.Sum(nil))
	if _, err := f.WriteAt([]byte(etag), etagOffset); err != nil {
		return "", info, s.fsErr(err, op, key)
	}
	if err := f.Sync(); err != nil {
		return "", info, s.fsErr(err, op, key)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", info, s.fsErr(err, op, key)
	}
	if err := f.Close(); err != nil {
		return "", info, s.fsErr(err, op, key)
	}
	norm := opts.Normalized()
	return f.Name(), licensehub.ObjectInfo{
		Key:         key,
		Size:        n,
		ETag:        etag,
		ContentType: norm.ContentType,
		Metadata:    norm.Metadata,
		ModTime:     fi.ModTime(),
	}, nil
}

// commit moves temp to final with rename or link, creating final's parent
// directory and recreating it when a concurrent Delete pruned it in between.
func (s *Store) commit(op func(oldname, newname string) error, temp, final string) error {
	dir := filepath.Dir(final)
	for attempt := 0; ; attempt++ {
		if err := s.ensureDir(dir); err != nil {
			return err
		}
		err := op(temp, final)
		if err == nil || attempt == maxDirRetries {
			return err
		}
		if isCollision(err, final) && syscall.Rmdir(final) == nil {
			// An empty directory that a Delete had yet to prune was in
			// the way; rmdir never removes an object or a non-empty one.
			continue
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
		if _, serr := os.Lstat(temp); serr != nil {
			return err // the temp file vanished, not the directory
		}
	}
}

// ensureDir creates dir and its missing parents below the objects
// directory, fsyncing each parent that gains an entry. It retries when a
// concurrent Delete prunes a parent it just created.
func (s *Store) ensureDir(dir string) error {
	var err error
	for attempt := 0; attempt <= maxDirRetries; attempt++ {
		if err = s.mkdirs(dir); err == nil || !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	return err
}

func (s *Store) mkdirs(dir string) error {
	if dir == s.objects {
		return nil
	}
	if fi, err := os.Lstat(dir); err == nil {
		return isDir(fi, dir)
	}
	parent := filepath.Dir(dir)
	if err := s.mkdirs(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, dirPerm); err != nil {
		if !errors.Is(err, iofs.ErrExist) {
			return err
		}
		fi, err := os.Lstat(dir) // made by a concurrent writer, or an object?
		if err != nil {
			return err
		}
		return isDir(fi, dir)
	}
	return syncDir(parent)
}

// isDir fails with ENOTDIR unless fi, the info of path, is a directory: an
// object is in the way of a key below it.
func isDir(fi iofs.FileInfo, path string) error {
	if fi.IsDir() {
		return nil
	}
	return &iofs.PathError{Op: "mkdir", Path: path, Err: syscall.ENOTDIR}
}

// isCollision reports a write that failed because its key is stored as a
// directory (the prefix of other keys) or a parent of it is an object.
func isCollision(err error, final string) bool {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return true
	}
	if errors.Is(err, iofs.ErrExist) { // link(2) onto a directory
		fi, serr := os.Lstat(final)
		return serr == nil && fi.IsDir()
	}
	return false
}

// Get opens key for reading. The reader fails once ctx ends, as a network
// body would; the caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, licensehub.ObjectInfo, error) {
	f, br, info, err := s.open(ctx, "get", key)
	if err != nil {
		return nil, licensehub.ObjectInfo{}, err
	}
	return &objectReader{ctx: ctx, key: key, r: io.LimitReader(br, info.Size), f: f}, info, nil
}

// Head returns key's info.
func (s *Store) Head(ctx context.Context, key string) (licensehub.ObjectInfo, error) {
	f, _, info, err := s.open(ctx, "head", key)
	if err != nil {
		return licensehub.ObjectInfo{}, err
	}
	f.Close()
	return info, nil
}

// open opens key's file and reads its header; the returned bufio.Reader is
// positioned at the content.
func (s *Store) open(ctx context.Context, op, key string) (*os.File, *bufio.Reader, licensehub.ObjectInfo, error) {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return nil, nil, licensehub.ObjectInfo{}, err
	}
	if err := s.check(ctx, op, key); err != nil {
		return nil, nil, licensehub.ObjectInfo{}, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, nil, licensehub.ObjectInfo{}, s.fsErr(err, op, key)
	}
	br := bufio.NewReaderSize(f, 4<<10)
	info, err := readHeader(f, br, key)
	if errors.Is(err, errIsDir) {
		err = iofs.ErrNotExist // a prefix of other keys, not an object
	}
	if err == nil {
		err = ctxErr(ctx, op, key)
	}
	if err != nil {
		f.Close()
		return nil, nil, licensehub.ObjectInfo{}, s.fsErr(err, op, key)
	}
	return f, br, info, nil
}

// Delete removes key; deleting a missing key is not an error. Directories
// left empty are removed too, best-effort.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return err
	}
	if err := s.check(ctx, "delete", key); err != nil {
		return err
	}
	final := s.path(key)
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return nil // a prefix of other keys, not an object
	}
	if err := os.Remove(final); err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
			return nil
		}
		return s.fsErr(err, "delete", key)
	}
	dir := filepath.Dir(final)
	if err := syncDir(dir); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil // a concurrent Delete already pruned the emptied directory
		}
		return s.fsErr(err, "delete", key)
	}
	s.pruneDirs(dir)
	return nil
}

// pruneDirs removes dir and its parents below the objects directory while
// they are empty. rmdir fails on a directory that is not empty and on a
// file (an object written where a pruned directory was), so this never
// removes anything a concurrent writer put there; a writer whose directory
// vanished before its rename or link recreates it (see commit).
func (s *Store) pruneDirs(dir string) {
	for dir != s.objects && strings.HasPrefix(dir, s.objects+string(filepath.Separator)) {
		if syscall.Rmdir(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// List calls fn for every object whose key starts with prefix. It walks
// only the directory that holds the keys with that prefix. The infos carry
// Key, Size, ETag and ModTime, as a MinIO listing does; ContentType and
// Metadata are left empty (use Head).
func (s *Store) List(ctx context.Context, prefix string, fn func(licensehub.ObjectInfo) error) error {
	if err := s.check(ctx, "list", prefix); err != nil {
		return err
	}
	root := s.objects
	switch i := strings.LastIndexByte(prefix, '/'); {
	case i == 0:
		return nil // no valid key starts with '/'
	case i > 0:
		dir := prefix[:i]
		if licensehub.ValidateObjectKey(dir) != nil {
			return nil // no valid key starts with prefix
		}
		root = filepath.Join(s.objects, filepath.FromSlash(dir))
	}

	var fnErr error
	err := filepath.WalkDir(root, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // nothing there, or pruned by a concurrent Delete
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, s.objects+string(filepath.Separator)))
		if d.IsDir() {
			sub := rel + "/"
			if licensehub.ValidateObjectKey(rel) != nil ||
				!strings.HasPrefix(sub, prefix) && !strings.HasPrefix(prefix, sub) {
				return filepath.SkipDir
			}
			return nil
		}
		key := rel
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || licensehub.ValidateObjectKey(key) != nil {
			return nil
		}
		info, err := s.listInfo(path, key)
		if errors.Is(err, iofs.ErrNotExist) {
			return nil // deleted since the directory was read
		}
		if err != nil {
			return err
		}
		if err := fn(info); err != nil {
			fnErr = err
			return filepath.SkipAll
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ctxErr(ctx, "list", prefix)
	default:
		return s.fsErr(err, "list", prefix)
	}
}

func (s *Store) listInfo(path, key string) (licensehub.ObjectInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return licensehub.ObjectInfo{}, err
	}
	defer f.Close()
	info, err := readHeader(f, bufio.NewReaderSize(f, 1<<10), key)
	if err != nil {
		return licensehub.ObjectInfo{}, err
	}
	info.ContentType, info.Metadata = "", nil
	return info, nil
}

// path is the file of key; key must be valid.
func (s *Store) path(key string) string {
	return filepath.Join(s.objects, filepath.FromSlash(key))
}

// check fails when the store is closed or ctx has ended.
func (s *Store) check(ctx context.Context, op, key string) error {
	if s.closed.Load() {
		return licensehub.Errorf(licensehub.EUNAVAILABLE, "fs: %s %q: store is closed", op, key)
	}
	return ctxErr(ctx, op, key)
}

// removeStaleTemps deletes temp files older than staleTempAge, best-effort.
func (s *Store) removeStaleTemps() {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleTempAge)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(s.tmp, e.Name()))
		}
	}
}

// fsErr maps a filesystem error to the hub's codes. A path through a
// regular file (ENOTDIR) cannot hold an object, so it reads as not found.
func (s *Store) fsErr(err error, op, key string) error {
	var lerr *licensehub.Error
	switch {
	case errors.As(err, &lerr):
		return err
	case errors.Is(err, iofs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return &licensehub.Error{
			Code:    licensehub.ENOTFOUND,
			Message: fmt.Sprintf("fs: object %q not found", key),
			Field:   "key",
		}
	case errors.Is(err, syscall.ENAMETOOLONG):
		return licensehub.Wrap(err, licensehub.EINVALID, "fs: %s %q: a key segment is too long for the filesystem", op, key)
	default:
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "fs: %s %q", op, key)
	}
}

// ctxErr reports an ended ctx as ETIMEOUT, keeping ctx.Err() as the cause.
func ctxErr(ctx context.Context, op, key string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	return licensehub.Wrap(err, licensehub.ETIMEOUT, "fs: %s %q: context ended", op, key)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

var errShortBody = errors.New("body ended before the announced size")

// writeError marks a failure of the destination, so copyBody's caller can
// tell the disk failing from the caller's reader failing.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

// copyBody copies r to dst: exactly size bytes when size >= 0, else all of
// r. It checks ctx between chunks, so a large body stops promptly.
func copyBody(ctx context.Context, dst io.Writer, r io.Reader, size int64) (int64, error) {
	if size >= 0 {
		r = io.LimitReader(r, size)
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := dst.Write(buf[:m]); err != nil {
				return n, writeError{err}
			}
			n += int64(m)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return n, rerr
		}
	}
	if size >= 0 && n < size {
		return n, errShortBody
	}
	return n, nil
}

// objectReader is the content of an object being read.
type objectReader struct {
	ctx  context.Context
	key  string
	r    io.Reader
	f    *os.File
	once sync.Once
}

func (o *objectReader) Read(p []byte) (int, error) {
	if err := ctxErr(o.ctx, "read", o.key); err != nil {
		return 0, err
	}
	return o.r.Read(p)
}

func (o *objectReader) Close() error {
	err := os.ErrClosed
	o.once.Do(func() { err = o.f.Close() })
	return err
}
