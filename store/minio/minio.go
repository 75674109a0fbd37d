// Package minio is the licensehub.ObjectStore backed by a MinIO server (or
// another S3-compatible one), through minio-go's S3 API.
//
// Open creates the bucket when it is missing and turns versioning on, so
// overwritten and deleted objects keep their history. Create is a PUT with
// "If-None-Match: *", which the server evaluates atomically: among
// concurrent Creates of one key exactly one succeeds.
//
// Every call is bounded by Config.OpTimeout on top of the caller's context;
// for Get the bound covers reading the body too and ends when the reader is
// closed. Errors are *licensehub.Error values:
//
//	EINVALID      a bad key or bad options, or a request the server rejected as malformed
//	ENOTFOUND     Get or Head of a missing object
//	ECONFLICT     Create of an existing key (412 Precondition Failed)
//	ETIMEOUT      the deadline expired or the context ended
//	EUNAVAILABLE  the server cannot be reached, failed (5xx) or refused (403)
//
// The cause is always kept, so errors.Is(err, context.Canceled) works.
package minio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/licensehub/licensehub"
)

const (
	// DefaultOpTimeout bounds each call when Config.OpTimeout is zero.
	DefaultOpTimeout = 10 * time.Second

	// pingTimeout bounds Ping, shorter than most operations: /readyz must
	// answer quickly when the server is gone.
	pingTimeout = 2 * time.Second

	// maxRetries is minio-go's attempts per request. Its default of 10 with
	// backoff would spend the whole OpTimeout on a server that is down.
	maxRetries = 3

	// partSize is the part size of uploads of unknown length. Bodies up to
	// one part are read into memory and sent in one PUT; longer ones go up
	// as a multipart upload of parts this size (at most 10,000 parts, so
	// 160 GiB). Without it minio-go would buffer 537 MiB parts.
	partSize = 16 << 20
)

// Config says where the bucket is.
type Config struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Secure    bool // https
	Bucket    string
	Region    string        // empty: the server's default
	OpTimeout time.Duration // per call; zero means DefaultOpTimeout
}

// Store is a MinIO licensehub.ObjectStore. It is safe for concurrent use.
type Store struct {
	client    *miniogo.Client
	core      miniogo.Core
	transport *http.Transport
	bucket    string
	opTimeout time.Duration
}

var (
	_ licensehub.ObjectStore = (*Store)(nil)
	_ licensehub.Pinger      = (*Store)(nil)
)

// Open connects to the server, creates the bucket when it is missing
// (tolerating a concurrent creator) and enables versioning on it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "endpoint", "minio: the endpoint is empty")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, &licensehub.Error{Code: licensehub.EINVALID, Field: "bucket", Message: fmt.Sprintf("minio: bucket %q", cfg.Bucket), Err: err}
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	transport, err := miniogo.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "minio: transport")
	}
	client, err := miniogo.New(cfg.Endpoint, &miniogo.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  transport,
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "minio: endpoint %q", cfg.Endpoint)
	}
	s := &Store{
		client:    client,
		core:      miniogo.Core{Client: client},
		transport: transport,
		bucket:    cfg.Bucket,
		opTimeout: cfg.OpTimeout,
	}
	if err := s.setupBucket(ctx, cfg.Region); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) setupBucket(ctx context.Context, region string) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrap(ctx, err, "open bucket", s.bucket)
	}
	if !exists {
		err := s.client.MakeBucket(ctx, s.bucket, miniogo.MakeBucketOptions{Region: region})
		if err != nil && errorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return s.wrap(ctx, err, "create bucket", s.bucket)
		}
	}
	v, err := s.client.GetBucketVersioning(ctx, s.bucket)
	if err != nil {
		return s.wrap(ctx, err, "get versioning of bucket", s.bucket)
	}
	if !v.Enabled() {
		if err := s.client.EnableVersioning(ctx, s.bucket); err != nil {
			return s.wrap(ctx, err, "enable versioning of bucket", s.bucket)
		}
	}
	return nil
}

// Kind names the implementation for logs and /readyz.
func (s *Store) Kind() string { return "minio" }

// Client is the underlying minio-go client (benchmarks compare against it).
func (s *Store) Client() *miniogo.Client { return s.client }

// Bucket is the bucket the store uses.
func (s *Store) Bucket() string { return s.bucket }

// Close releases idle connections. Calls still running finish normally.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Ping checks that the server answers and the bucket exists.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(pingTimeout, s.opTimeout))
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrap(ctx, err, "ping bucket", s.bucket)
	}
	if !ok {
		return licensehub.Errorf(licensehub.EUNAVAILABLE, "minio: bucket %q does not exist", s.bucket)
	}
	return nil
}

// Put writes key, replacing any previous content (the previous version is
// kept by bucket versioning).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	return s.put(ctx, "put", key, r, size, opts, false)
}

// Create writes key only if it does not exist yet, else it returns ECONFLICT
// and leaves the object unchanged.
//
// A key whose last version is a delete marker does not exist. Like every
// conditional write over HTTP, a Create whose response is lost and that
// minio-go retries reports ECONFLICT although its first attempt won.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	return s.put(ctx, "create", key, r, size, opts, true)
}

func (s *Store) put(ctx context.Context, op, key string, r io.Reader, size int64, opts licensehub.PutOptions, createOnly bool) (licensehub.ObjectInfo, error) {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	if err := opts.Validate(); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return licensehub.ObjectInfo{}, s.wrap(ctx, err, op, key)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()

	po := miniogo.PutObjectOptions{
		ContentType:  opts.Normalized().ContentType,
		UserMetadata: opts.Metadata,
	}
	if createOnly {
		po.SetMatchETagExcept("*")
	}

	body := &countingReader{r: r}
	var src io.Reader = body
	if n, ok := seekableSize(r); ok {
		// minio-go sends such a reader as a section it can re-read to retry
		// a request, so pass it as it is, with its size.
		if size < 0 {
			size = n
		} else if n < size {
			return licensehub.ObjectInfo{}, licensehub.Errorf(licensehub.EINVALID,
				"minio: %s %q: body has %d bytes, %d were announced", op, key, n, size)
		}
		src = r
	} else if size < 0 {
		head, err := io.ReadAll(io.LimitReader(body, partSize+1))
		if err != nil {
			return licensehub.ObjectInfo{}, fmt.Errorf("minio: %s %q: read body: %w", op, key, err)
		}
		if len(head) <= partSize {
			// The whole body: one retryable PUT instead of a multipart upload.
			src, size = bytes.NewReader(head), int64(len(head))
		} else {
			src = io.MultiReader(bytes.NewReader(head), body)
			po.PartSize = partSize
		}
	}

	up, err := s.client.PutObject(ctx, s.bucket, key, src, size, po)
	if err != nil {
		switch {
		case body.err != nil && ctx.Err() == nil:
			return licensehub.ObjectInfo{}, fmt.Errorf("minio: %s %q: read body: %w", op, key, body.err)
		case size >= 0 && body.eof && body.n < size:
			return licensehub.ObjectInfo{}, licensehub.Wrap(err, licensehub.EINVALID,
				"minio: %s %q: body has %d bytes, %d were announced", op, key, body.n, size)
		}
		return licensehub.ObjectInfo{}, s.wrap(ctx, err, op, key)
	}
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now() // a single PUT's response carries no Last-Modified
	}
	return licensehub.ObjectInfo{
		Key:         key,
		Size:        up.Size,
		ETag:        trimETag(up.ETag),
		ContentType: po.ContentType,
		Metadata:    opts.Normalized().Metadata,
		ModTime:     mod,
	}, nil
}

// Get opens key for reading. The returned reader holds the call's timeout
// until it is closed.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, licensehub.ObjectInfo, error) {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return nil, licensehub.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, licensehub.ObjectInfo{}, s.wrap(ctx, err, "get", key)
	}
	ctx, cancel := s.opCtx(ctx)
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, key, miniogo.GetObjectOptions{})
	if err != nil {
		err = s.wrap(ctx, err, "get", key)
		cancel()
		return nil, licensehub.ObjectInfo{}, err
	}
	return &objectReader{s: s, ctx: ctx, cancel: cancel, key: key, body: body}, toInfo(oi), nil
}

// Head returns key's info.
func (s *Store) Head(ctx context.Context, key string) (licensehub.ObjectInfo, error) {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return licensehub.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return licensehub.ObjectInfo{}, s.wrap(ctx, err, "head", key)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	oi, err := s.client.StatObject(ctx, s.bucket, key, miniogo.StatObjectOptions{})
	if err != nil {
		return licensehub.ObjectInfo{}, s.wrap(ctx, err, "head", key)
	}
	return toInfo(oi), nil
}

// Delete removes key: a delete marker hides it and its versions stay.
// Deleting a missing key is not an error (S3 still records a marker).
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := licensehub.ValidateObjectKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.wrap(ctx, err, "delete", key)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.client.RemoveObject(ctx, s.bucket, key, miniogo.RemoveObjectOptions{}); err != nil {
		return s.wrap(ctx, err, "delete", key)
	}
	return nil
}

// List calls fn for every object whose key starts with prefix, in key
// order. The infos carry Key, Size, ETag and ModTime (an S3 listing has no
// content type or user metadata; use Head). Keys that are not valid object
// keys, such as the "dir/" markers other S3 tools create, are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(licensehub.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(ctx, err, "list", prefix)
	}
	query, ok := listPrefix(prefix)
	if !ok {
		return nil // no valid key starts with prefix
	}
	ctx, cancel := s.opCtx(ctx)
	objects := s.client.ListObjects(ctx, s.bucket, miniogo.ListObjectsOptions{Prefix: query, Recursive: true})
	defer func() {
		// Stop the lister and wait for it: it closes the channel once it
		// sees the cancellation, and may block on a send until we drain.
		cancel()
		for range objects {
		}
	}()
	for oi := range objects {
		if oi.Err != nil {
			return s.wrap(ctx, oi.Err, "list", prefix)
		}
		if err := ctx.Err(); err != nil {
			return s.wrap(ctx, err, "list", prefix)
		}
		if !strings.HasPrefix(oi.Key, prefix) || licensehub.ValidateObjectKey(oi.Key) != nil {
			continue
		}
		if err := fn(licensehub.ObjectInfo{
			Key:     oi.Key,
			Size:    oi.Size,
			ETag:    trimETag(oi.ETag),
			ModTime: oi.LastModified,
		}); err != nil {
			return err
		}
	}
	return nil
}

// listPrefix returns the prefix to ask the server for, or false when no
// valid key can start with prefix. The server refuses prefixes it cannot
// resolve to a path ("a//", "a/..", "a/."), although valid keys such as
// "a/..b" start with the last two: for those it lists the enclosing
// "directory" and List filters.
func listPrefix(prefix string) (string, bool) {
	for i := 0; i < len(prefix); i++ {
		if !isKeyByte(prefix[i]) {
			return "", false // a byte no key has
		}
	}
	dir, last := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, last = prefix[:i], prefix[i+1:]
		if licensehub.ValidateObjectKey(dir) != nil {
			return "", false // "", "a//", "a/../"...
		}
		dir += "/"
	}
	if last == "." || last == ".." {
		return dir, true
	}
	return prefix, true
}

// isKeyByte reports the bytes licensehub.ValidateObjectKey allows.
func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '=' || c == '/'
}

func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opTimeout)
}

// wrap maps a minio-go error to the hub's codes.
func (s *Store) wrap(ctx context.Context, err error, op, key string) error {
	where := fmt.Sprintf("minio: %s %q", op, key)
	resp := errorResponse(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "%s: context ended", where)
	case ctx.Err() != nil:
		// The transport sometimes reports an expired deadline as its own
		// error without wrapping the context's: attach it.
		return licensehub.Wrap(errors.Join(ctx.Err(), err), licensehub.ETIMEOUT, "%s: context ended", where)
	case isNetTimeout(err):
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "%s: timed out", where)
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return &licensehub.Error{Code: licensehub.ENOTFOUND, Field: "key", Message: fmt.Sprintf("minio: object %q not found", key), Err: err}
	case resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" || isExistsConflict(resp):
		return &licensehub.Error{Code: licensehub.ECONFLICT, Field: "key", Message: fmt.Sprintf("minio: object %q already exists", key), Err: err}
	case resp.StatusCode == http.StatusBadRequest:
		return licensehub.Wrap(err, licensehub.EINVALID, "%s: rejected", where)
	default:
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "%s: failed", where)
	}
}

// isExistsConflict reports the 409 answers S3 servers give a conditional
// create that met an existing object rather than a failed precondition.
func isExistsConflict(resp miniogo.ErrorResponse) bool {
	if resp.StatusCode != http.StatusConflict {
		return false
	}
	msg := strings.ToLower(resp.Code + " " + resp.Message)
	return strings.Contains(msg, "already exists") || strings.Contains(msg, "objectexists")
}

func errorResponse(err error) miniogo.ErrorResponse {
	var resp miniogo.ErrorResponse
	if errors.As(err, &resp) {
		return resp
	}
	return miniogo.ErrorResponse{}
}

func isNetTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

func toInfo(oi miniogo.ObjectInfo) licensehub.ObjectInfo {
	return licensehub.ObjectInfo{
		Key:         oi.Key,
		Size:        oi.Size,
		ETag:        trimETag(oi.ETag),
		ContentType: licensehub.PutOptions{ContentType: oi.ContentType}.Normalized().ContentType,
		Metadata:    userMetadata(oi.UserMetadata),
		ModTime:     oi.LastModified,
	}
}

// userMetadata turns minio-go's metadata ("Foo-Bar", or "X-Amz-Meta-Foo-Bar"
// from some calls) back into the lower-case keys the hub stored.
func userMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		k = strings.ToLower(k)
		k = strings.TrimPrefix(k, "x-amz-meta-")
		out[k] = v
	}
	return out
}

func trimETag(etag string) string { return strings.Trim(etag, `"`) }

// seekableSize reports how many bytes r holds after its current offset
// when r is an io.ReaderAt and io.Seeker (bytes.Reader, strings.Reader, a
// regular file), leaving the offset where it was.
func seekableSize(r io.Reader) (int64, bool) {
	ras, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	})
	if !ok {
		return 0, false
	}
	cur, err := ras.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, false // a pipe, say: stream it
	}
	end, err := ras.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, false
	}
	if _, err := ras.Seek(cur, io.SeekStart); err != nil {
		return 0, false
	}
	return max(end-cur, 0), true
}

// countingReader tells the caller's reader failing or ending early apart
// from the server failing.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	switch {
	case err == io.EOF:
		c.eof = true
	case err != nil && c.err == nil:
		c.err = err
	}
	return n, err
}

// objectReader is the body of a Get; closing it ends the call's context.
type objectReader struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	key    string
	body   io.ReadCloser
	once   sync.Once
}

func (o *objectReader) Read(p []byte) (int, error) {
	n, err := o.body.Read(p)
	if err != nil && err != io.EOF {
		err = o.s.wrap(o.ctx, err, "read", o.key)
	}
	return n, err
}

func (o *objectReader) Close() error {
	err := errors.New("minio: reader already closed")
	o.once.Do(func() {
		err = o.body.Close()
		o.cancel()
	})
	return err
}
