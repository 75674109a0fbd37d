package licensehub

import (
	"context"
	"io"
	"strings"
	"time"
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key         string
	Size        int64
	ETag        string            // opaque; changes whenever the content changes
	ContentType string            // empty means application/octet-stream
	Metadata    map[string]string // user metadata; keys are lower-case
	ModTime     time.Time
}

// PutOptions carries what is stored beside the bytes.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string // keys: lower-case ASCII letters, digits, '-'
}

// ObjectStore is the system of record: signed documents, attachments,
// outbox events and job state live here. Implementations: store/fs (embedded)
// and store/minio. Every method honours ctx; callers bound it with a deadline.
type ObjectStore interface {
	// Create writes key only if it does not exist yet; when it does, it
	// returns an *Error with code ECONFLICT and leaves the object unchanged.
	// size may be -1 when unknown.
	Create(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// Put writes key, replacing any previous content.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// Get opens key for reading; the caller closes the reader. A missing key
	// gives ENOTFOUND.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// Head returns key's metadata; a missing key gives ENOTFOUND.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for every object whose key starts with prefix. It stops
	// at the first error fn returns (and returns it) or when ctx ends; it
	// never leaves a listing running behind it. Order is not specified.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// KV is the fast, rebuildable side: indexes, caches, queues, replay
// protection, locks and rate limits. Losing it must lose nothing that the
// ObjectStore does not hold. Implementations: store/redis and store/mem.
// Missing keys give ENOTFOUND from Get; all other reads of missing keys
// return empty results.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value; ttl <= 0 means no expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key is absent and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// CompareAndDelete deletes key only if it holds value (releasing a lock
	// that is still ours) and reports whether it did.
	CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error)
	// CompareAndExpire sets key's expiry to ttl only if it holds value
	// (renewing a lease that is still ours) and reports whether it did;
	// ttl <= 0 means no expiry. Check and expiry are one atomic step.
	CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Delete(ctx context.Context, keys ...string) error
	// Incr adds delta to the integer at key and returns the new value; when it
	// creates the key it sets ttl (fixed-window counters).
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)

	SAdd(ctx context.Context, key string, members ...string) error
	SRem(ctx context.Context, key string, members ...string) error
	SMembers(ctx context.Context, key string) ([]string, error) // sorted
	SIsMember(ctx context.Context, key, member string) (bool, error)

	// ZAdd sets member's score in the sorted set at key.
	ZAdd(ctx context.Context, key string, score float64, member string) error
	ZRem(ctx context.Context, key string, members ...string) error
	// ZRangeByScore returns members with min <= score <= max in ascending
	// score order (ties by member), at most limit of them (limit <= 0: all).
	ZRangeByScore(ctx context.Context, key string, min, max float64, limit int) ([]ScoredMember, error)

	// XAdd appends fields to the stream at key and returns the new entry ID.
	XAdd(ctx context.Context, key string, fields map[string]string) (string, error)
	// XRange returns up to count entries with ID strictly after afterID
	// ("" or "0" for the start), in ID order.
	XRange(ctx context.Context, key, afterID string, count int) ([]StreamEntry, error)
	XLen(ctx context.Context, key string) (int64, error)
	// XTrimMinID removes the entries of the stream at key whose ID is less
	// than minID ("<ms>-<seq>", or "<ms>" meaning "<ms>-0"; exact, like
	// Redis XTRIM key MINID minID without ~) and returns how many it
	// removed; a missing stream gives 0. The stream keeps its last ID even
	// when it becomes empty, so later XAdd IDs still exceed every ID it
	// ever returned.
	XTrimMinID(ctx context.Context, key, minID string) (int64, error)
}

// ScoredMember is one element of a sorted set.
type ScoredMember struct {
	Member string
	Score  float64
}

// StreamEntry is one entry of an append-only stream. IDs are
// "<milliseconds>-<sequence>" and strictly increase within a stream.
type StreamEntry struct {
	ID     string
	Fields map[string]string
}

// Pinger is implemented by every backend; /readyz calls it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ValidateObjectKey enforces the key rules shared by every ObjectStore, so
// a key that works on the filesystem works on MinIO and the other way round:
// 1..512 bytes of ASCII letters, digits and "-_.=/", segments separated by
// '/', none of them empty, "." or "..".
func ValidateObjectKey(key string) error {
	if key == "" || len(key) > 512 {
		return FieldError(EINVALID, "key", "object key must be 1..512 bytes, got %d", len(key))
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '=' || c == '/'
		if !ok {
			return FieldError(EINVALID, "key", "object key %q has a character outside [A-Za-z0-9-_.=/] at byte %d", key, i)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return FieldError(EINVALID, "key", "object key %q has an empty, '.' or '..' segment", key)
		}
	}
	return nil
}
