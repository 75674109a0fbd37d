package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/convert"
)

// Where a job lives.
//
//	object store (the system of record):
//	  conversions/<id>/job.json                 Job, create-only
//	  conversions/<id>/source/<%08d>            the uploaded file in parts of sourcePartSize bytes, create-only
//	  conversions/<id>/state.json               State, put at each checkpoint
//	  conversions/<id>/rejects/<line %012d>.csv the rejects of one checkpoint (no header), named by its first line
//	  conversions/<id>/report.json              the final State
//	KV (rebuildable):
//	  conversion:jobs                           set of unfinished API jobs (Serve's queue)
//	  conversion:lease:<id>                     the Owner running the job, with LeaseTTL
//	  conversion:progress:<id>                  the live State while running, with LeaseTTL
//
// The source is stored in parts because every store call is bounded by
// the store's own timeout (minio.timeout): one object for a 2 GiB upload
// would have to be written, and read back, within it.
const (
	objPrefix        = "conversions/"
	kvJobs           = "conversion:jobs"
	kvLeasePrefix    = "conversion:lease:"
	kvProgressPrefix = "conversion:progress:"
	jsonType         = "application/json"
	csvType          = "text/csv"
)

// sourcePartSize is the size of a stored source part (a variable for
// tests).
var sourcePartSize = 8 << 20

func jobKey(id string) string      { return objPrefix + id + "/job.json" }
func stateKey(id string) string    { return objPrefix + id + "/state.json" }
func reportKey(id string) string   { return objPrefix + id + "/report.json" }
func sourceKey(id string) string   { return objPrefix + id + "/source" }
func leaseKey(id string) string    { return kvLeasePrefix + id }
func progressKey(id string) string { return kvProgressPrefix + id }
func sourcePartKey(id string, n int) string {
	return fmt.Sprintf("%s%s/source/%08d", objPrefix, id, n)
}
func rejectPartKey(id string, line int) string {
	return fmt.Sprintf("%s%s/rejects/%012d.csv", objPrefix, id, line)
}

// RejectsHeader is the first line of Rejects.
var RejectsHeader = []string{"line", "field", "code", "message", "number"}

// ValidID reports whether id is a job ID: 32 lower-case hex digits.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func unknownJob(id string) error {
	return licensehub.FieldError(licensehub.ENOTFOUND, "id", "no conversion job %q", clip(id))
}

// mapping returns the configured mapping called name.
func (r *Runner) mapping(name string) (*convert.Mapping, error) {
	m, ok := r.cfg.Mappings[name]
	if !ok || m == nil {
		return nil, licensehub.FieldError(licensehub.EINVALID, "mapping", "no conversion mapping %q is configured", clip(name))
	}
	return m, nil
}

func checkFormat(format string) error {
	switch format {
	case convert.FormatCSV, convert.FormatXLSX, convert.FormatJSONL:
		return nil
	case "":
		return licensehub.FieldError(licensehub.EINVALID, "format", "the file's format is not known: give csv, xlsx or jsonl")
	}
	return licensehub.FieldError(licensehub.EINVALID, "format", "format must be csv, xlsx or jsonl, got %q", clip(format))
}

// Create stores an uploaded legacy file as a new job and queues it for
// Serve: the source under conversions/<id>/source/ (create-only parts),
// job.json (create-only), a queued state.json, then the ID in the KV
// queue; id is random (32 hex). format
// "" is the mapping's. size is the announced length (-1 unknown); a body
// that ends before it, or fails, leaves nothing behind.
func (r *Runner) Create(ctx context.Context, mapping, format string, src io.Reader, size int64, createdBy string) (*Job, error) {
	m, err := r.mapping(mapping)
	if err != nil {
		return nil, err
	}
	if format == "" {
		format = m.Format
	}
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "conversion: no randomness for a job ID")
	}
	id := hex.EncodeToString(rnd[:])
	n, parts, err := r.storeSource(ctx, id, src, size)
	if err == nil && n == 0 {
		err = licensehub.FieldError(licensehub.EINVALID, "body", "the legacy file is empty")
	}
	if err == nil && size >= 0 && n != size {
		err = licensehub.FieldError(licensehub.EMALFORMED, "body", "the file has %d bytes, %d were announced", n, size)
	}
	if err == nil && format == convert.FormatXLSX {
		// A zip bomb is refused now, from the zip's directory, rather
		// than failing the job later.
		err = convert.CheckWorkbook(&partsAt{ctx: ctx, r: r, id: id, size: n, part: -1}, n, r.cfg.XLSXMaxUnzipped)
	}
	job := &Job{ID: id, Mapping: mapping, Source: sourceKey(id), Format: format, Size: n,
		CreatedAt: r.now(), CreatedBy: createdBy}
	if err == nil {
		err = r.createJSON(ctx, jobKey(id), job)
	}
	if err == nil {
		err = r.putJSON(ctx, stateKey(id), &State{Job: *job, State: StateQueued, BytesTotal: n, ETASeconds: -1,
			Counts: Counts{RejectedBy: map[string]int{}}, UpdatedAt: r.now()})
	}
	if err == nil {
		// Queued last: a runner that starts it at once finds its state.
		err = r.kv(ctx, func(c context.Context) error { return r.cfg.KV.SAdd(c, kvJobs, id) })
	}
	if err != nil {
		r.discard(ctx, id, parts)
		return nil, err
	}
	r.log.InfoContext(ctx, "conversion job created", "job", id, "mapping", mapping, "format", format, "bytes", n, "by", createdBy)
	return job, nil
}

// storeSource copies src into source parts; it returns the bytes and
// parts written.
func (r *Runner) storeSource(ctx context.Context, id string, src io.Reader, size int64) (int64, int, error) {
	partLen := sourcePartSize
	if size >= 0 && size < int64(partLen) {
		partLen = int(size) + 1 // read one byte more to see the end
	}
	buf := make([]byte, partLen)
	var total int64
	parts := 0
	for {
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			if err := r.create(ctx, sourcePartKey(id, parts), buf[:n], "application/octet-stream"); err != nil {
				return total, parts + 1, err // the failed part may exist (a lost answer): discard tries it too
			}
			parts++
			total += int64(n)
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return total, parts, nil
		case rerr != nil:
			var e *licensehub.Error
			if errors.As(rerr, &e) {
				return total, parts, rerr
			}
			return total, parts, licensehub.Wrap(rerr, licensehub.EMALFORMED, "reading the legacy file failed after %d bytes", total)
		}
		if size >= 0 && total > size {
			return total, parts, licensehub.FieldError(licensehub.EMALFORMED, "body", "the file is longer than the %d bytes announced", size)
		}
	}
}

// discard removes what a failed Create wrote (best effort; nothing refers
// to it).
func (r *Runner) discard(ctx context.Context, id string, parts int) {
	ctx = context.WithoutCancel(ctx)
	keys := []string{jobKey(id), stateKey(id)}
	for i := range parts {
		keys = append(keys, sourcePartKey(id, i))
	}
	for _, k := range keys {
		c, cancel := r.opCtx(ctx)
		if err := r.cfg.Objects.Delete(c, k); err != nil {
			r.log.WarnContext(ctx, "conversion: removing a failed upload's object failed", "key", k, "err", err)
		}
		cancel()
	}
	c, cancel := r.opCtx(ctx)
	_ = r.cfg.KV.SRem(c, kvJobs, id)
	cancel()
}

// LocalJob is the job of a local file for mapping, as JobFor makes it,
// without storing anything (dry runs). Its ID is the first 16 bytes of
// SM3(mapping ‖ 0x00 ‖ the file's bytes), in hex.
func (r *Runner) LocalJob(ctx context.Context, mapping, path string) (*Job, error) {
	m, err := r.mapping(mapping)
	if err != nil {
		return nil, err
	}
	format := m.Format
	if format == "" {
		format = convert.DetectFormat(path)
	}
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "conversion: cannot open %s", path)
	}
	defer f.Close()
	h := sm3.New()
	h.Write([]byte(mapping))
	h.Write([]byte{0})
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "conversion: cannot read %s", path)
	}
	return &Job{ID: hex.EncodeToString(h.Sum(nil)[:16]), Mapping: mapping, Source: filepath.Base(path),
		Format: format, Size: n, CreatedAt: r.now(), CreatedBy: "hubctl"}, nil
}

// ctxReader stops a long local read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// JobFor is the CLI's job for a local file (see LocalJob for its ID, so
// that running the same command again resumes it); its job.json is
// created if absent, and the stored job is returned if present.
func (r *Runner) JobFor(ctx context.Context, mapping string, path string) (*Job, error) {
	job, err := r.LocalJob(ctx, mapping, path)
	if err != nil {
		return nil, err
	}
	err = r.createJSON(ctx, jobKey(job.ID), job)
	if licensehub.IsCode(err, licensehub.ECONFLICT) {
		var stored Job
		if err := r.getJSON(ctx, jobKey(job.ID), &stored); err != nil {
			return nil, err
		}
		return &stored, nil
	}
	if err != nil {
		return nil, err
	}
	return job, nil
}

// OpenSource opens an uploaded job's source as a convert.Reader, with
// the job's format and its mapping's encoding and sheet. The parts are
// read one at a time, each whole (one store call each); an XLSX file,
// which needs random access, is first copied to a temporary file that
// Close removes.
func (r *Runner) OpenSource(ctx context.Context, job Job) (convert.Reader, error) {
	m, err := r.mapping(job.Mapping)
	if err != nil {
		return nil, err
	}
	if job.Source != sourceKey(job.ID) {
		return nil, licensehub.FieldError(licensehub.EINVALID, "source", "job %s was not uploaded (its source is the local file %s)", job.ID, clip(job.Source))
	}
	src := &partsReader{ctx: ctx, r: r, id: job.ID, size: job.Size}
	if job.Format != convert.FormatXLSX {
		rd, err := convert.OpenReader(src, job.Size, job.Format, m.Encoding, m.Sheet, r.cfg.XLSXMaxUnzipped)
		if err != nil {
			return nil, err
		}
		return rd, nil
	}
	f, err := os.CreateTemp("", "licensehub-conversion-*.xlsx")
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "conversion: no temporary file for the workbook")
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, src); err != nil {
		cleanup()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "conversion: temporary workbook")
	}
	rd, err := convert.OpenReader(f, job.Size, job.Format, m.Encoding, m.Sheet, r.cfg.XLSXMaxUnzipped)
	if err != nil {
		cleanup()
		return nil, err
	}
	return &tempReader{Reader: rd, cleanup: cleanup}, nil
}

type tempReader struct {
	convert.Reader
	cleanup func()
}

func (t *tempReader) Close() error {
	err := t.Reader.Close()
	t.cleanup()
	return err
}

// partsReader reads the source parts in order, each with one Get.
type partsReader struct {
	ctx  context.Context
	r    *Runner
	id   string
	size int64
	next int
	read int64
	buf  bytes.Reader
	raw  []byte
}

func (p *partsReader) Read(b []byte) (int, error) {
	for p.buf.Len() == 0 {
		if p.read >= p.size {
			return 0, io.EOF
		}
		if err := p.fetch(); err != nil {
			return 0, err
		}
	}
	n, _ := p.buf.Read(b)
	return n, nil
}

func (p *partsReader) fetch() error {
	key := sourcePartKey(p.id, p.next)
	ctx, cancel := p.r.opCtx(p.ctx)
	defer cancel()
	rc, _, err := p.r.cfg.Objects.Get(ctx, key)
	if licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return licensehub.Errorf(licensehub.EINVALID, "conversion %s: source part %d is missing (%d of %d bytes read)", p.id, p.next, p.read, p.size)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	w := bytes.NewBuffer(p.raw[:0])
	if _, err := io.Copy(w, rc); err != nil {
		return err
	}
	p.raw = w.Bytes()
	if len(p.raw) == 0 {
		return licensehub.Errorf(licensehub.EINVALID, "conversion %s: source part %d is empty", p.id, p.next)
	}
	p.buf.Reset(p.raw)
	p.next++
	p.read += int64(len(p.raw))
	return nil
}

// partsAt reads a stored source at any offset (an XLSX's zip directory,
// at its end): the part holding an offset is read whole, and kept until
// another one is needed.
type partsAt struct {
	ctx  context.Context
	r    *Runner
	id   string
	size int64
	part int // the part in raw; -1 none
	raw  bytes.Buffer
}

func (p *partsAt) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, licensehub.Errorf(licensehub.EINTERNAL, "conversion %s: negative source offset", p.id)
	}
	partLen := int64(sourcePartSize)
	read := 0
	for read < len(b) {
		at := off + int64(read)
		if at >= p.size {
			return read, io.EOF
		}
		if n := int(at / partLen); n != p.part {
			p.part = -1
			p.raw.Reset()
			if err := p.r.copyObject(p.ctx, sourcePartKey(p.id, n), &p.raw); err != nil {
				return read, err
			}
			p.part = n
		}
		i := at - int64(p.part)*partLen
		if i >= int64(p.raw.Len()) {
			return read, licensehub.Errorf(licensehub.EINTERNAL, "conversion %s: source part %d is shorter than its neighbours", p.id, p.part)
		}
		read += copy(b[read:], p.raw.Bytes()[i:])
	}
	return read, nil
}

// State is the job's state: the live one while a runner works on it,
// else the last checkpoint (state.json); a job created but never run is
// queued. ENOTFOUND for an unknown id.
func (r *Runner) State(ctx context.Context, id string) (*State, error) {
	if !ValidID(id) {
		return nil, unknownJob(id)
	}
	var raw []byte
	err := r.kv(ctx, func(c context.Context) (err error) { raw, err = r.cfg.KV.Get(c, progressKey(id)); return err })
	if err == nil {
		var st State
		if json.Unmarshal(raw, &st) == nil && st.Job.ID == id {
			return &st, nil
		}
	} else if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		r.log.DebugContext(ctx, "conversion: live progress unavailable, reading the checkpoint", "job", id, "err", err)
	}
	st, err := r.stored(ctx, id)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// stored reads state.json, or makes a queued state from job.json.
func (r *Runner) stored(ctx context.Context, id string) (*State, error) {
	var st State
	err := r.getJSON(ctx, stateKey(id), &st)
	if err == nil {
		return &st, nil
	}
	if !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		return nil, err
	}
	var job Job
	if err := r.getJSON(ctx, jobKey(id), &job); err != nil {
		if licensehub.IsCode(err, licensehub.ENOTFOUND) {
			return nil, unknownJob(id)
		}
		return nil, err
	}
	return &State{Job: job, State: StateQueued, BytesTotal: job.Size, ETASeconds: -1,
		Counts: Counts{RejectedBy: map[string]int{}}, UpdatedAt: job.CreatedAt}, nil
}

// Rejects writes the job's rejected rows as CSV (line, field, code,
// message, number; header first), in line order, as far as its last
// checkpoint.
func (r *Runner) Rejects(ctx context.Context, id string, w io.Writer) error {
	st, err := r.State(ctx, id)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.Write(RejectsHeader)
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	for _, key := range st.RejectParts {
		if err := r.copyObject(ctx, key, w); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) copyObject(ctx context.Context, key string, w io.Writer) error {
	c, cancel := r.opCtx(ctx)
	defer cancel()
	rc, _, err := r.cfg.Objects.Get(c, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// encodeRejects renders rejects as CSV rows (no header).
func encodeRejects(rejects []convert.Reject) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	for _, j := range rejects {
		cw.Write([]string{fmt.Sprint(j.Line), j.Field, j.Code, oneLine(j.Message), j.Number})
	}
	cw.Flush()
	return b.Bytes()
}

// oneLine keeps a message on one CSV line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Store helpers: one call each, bounded by OpTimeout.

func (r *Runner) create(ctx context.Context, key string, data []byte, contentType string) error {
	c, cancel := r.opCtx(ctx)
	defer cancel()
	_, err := r.cfg.Objects.Create(c, key, bytes.NewReader(data), int64(len(data)), licensehub.PutOptions{ContentType: contentType})
	return err
}

func (r *Runner) put(ctx context.Context, key string, data []byte, contentType string) error {
	c, cancel := r.opCtx(ctx)
	defer cancel()
	_, err := r.cfg.Objects.Put(c, key, bytes.NewReader(data), int64(len(data)), licensehub.PutOptions{ContentType: contentType})
	return err
}

func (r *Runner) createJSON(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "conversion: %s", key)
	}
	return r.create(ctx, key, raw, jsonType)
}

func (r *Runner) putJSON(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "conversion: %s", key)
	}
	return r.put(ctx, key, raw, jsonType)
}

func (r *Runner) getJSON(ctx context.Context, key string, v any) error {
	c, cancel := r.opCtx(ctx)
	defer cancel()
	rc, _, err := r.cfg.Objects.Get(c, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return licensehub.Wrap(err, licensehub.EINTERNAL, "conversion: %s is unreadable", key)
	}
	return nil
}

func (r *Runner) kv(ctx context.Context, f func(context.Context) error) error {
	c, cancel := r.opCtx(ctx)
	defer cancel()
	return f(c)
}

// clip shortens a value echoed in a message (licensehub.Clip).
func clip(s string) string { return licensehub.Clip(s, 40) }
