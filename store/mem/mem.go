// Package mem is an in-process licensehub.KV with the semantics of
// store/redis: the embedded first-run mode uses it instead of a Redis server,
// and unit tests use it as a fast, hermetic KV.
//
// Everything lives in one map guarded by one mutex. Keys that expire are
// removed lazily when they are touched and by a janitor goroutine that sweeps
// the map periodically; Close stops the janitor. Like Redis, a key holds one
// kind of value (string, set, sorted set or stream); using it as another kind
// fails with EINVALID ("WRONGTYPE"), and a set or sorted set that loses its
// last member disappears.
package mem

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/licensehub/licensehub"
)

// janitorInterval is how often the janitor sweeps expired keys. Expired keys
// are invisible as soon as they expire; the sweep only reclaims memory.
const janitorInterval = time.Second

// Store is an in-memory licensehub.KV. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	data   map[string]*value
	closed bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var (
	_ licensehub.KV     = (*Store)(nil)
	_ licensehub.Pinger = (*Store)(nil)
)

type kind int

const (
	kindString kind = iota
	kindSet
	kindZSet
	kindStream
)

// value is what one key holds. Exactly one of the payload fields is used,
// selected by kind.
type value struct {
	kind    kind
	expires time.Time // zero: no expiry

	str    []byte
	set    map[string]struct{}
	zset   *zset
	stream *stream
}

func (v *value) expired(now time.Time) bool {
	return !v.expires.IsZero() && !now.Before(v.expires)
}

// New returns an empty store and starts its janitor. Call Close to stop it.
func New() *Store {
	s := &Store{
		data: make(map[string]*value),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.janitor()
	return s
}

// Kind names the backend for logs and /readyz.
func (s *Store) Kind() string { return "memory" }

// Ping reports whether the store is usable: it fails once the store is
// closed or when ctx has ended.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctxErr(ctx, "PING", ""); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("PING", "")
	}
	return nil
}

// Close stops the janitor and waits for it to exit. Later calls fail with
// EUNAVAILABLE. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.data = nil
		s.mu.Unlock()
		close(s.stop)
		<-s.done
	})
	return nil
}

func (s *Store) janitor() {
	defer close(s.done)
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.sweep(now)
		}
	}
}

// sweep deletes every key that has expired by now.
func (s *Store) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.data {
		if v.expired(now) {
			delete(s.data, k)
		}
	}
}

// begin checks ctx and locks the store. On success the caller must call
// s.mu.Unlock.
func (s *Store) begin(ctx context.Context, op, key string) error {
	if err := ctxErr(ctx, op, key); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed(op, key)
	}
	return nil
}

// lookup returns the live value at key, deleting it first if it expired.
// s.mu must be held.
func (s *Store) lookup(key string, now time.Time) *value {
	v, ok := s.data[key]
	if !ok {
		return nil
	}
	if v.expired(now) {
		delete(s.data, key)
		return nil
	}
	return v
}

// lookupKind is lookup plus a type check: a live value of another kind gives
// a WRONGTYPE error. s.mu must be held.
func (s *Store) lookupKind(op, key string, k kind) (*value, error) {
	v := s.lookup(key, time.Now())
	if v != nil && v.kind != k {
		return nil, wrongType(op, key)
	}
	return v, nil
}

// ---- strings ----

// Get returns a copy of the string at key, or ENOTFOUND.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "GET", key); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("GET", key, kindString)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, licensehub.Errorf(licensehub.ENOTFOUND, "memory GET %q: no such key", key)
	}
	return slices.Clone(v.str), nil
}

// Set stores a copy of value at key, replacing whatever the key held
// (of any kind) and its expiry; ttl <= 0 means no expiry.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := s.begin(ctx, "SET", key); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.data[key] = newString(val, ttl, time.Now())
	return nil
}

// SetNX stores value only if key holds nothing (of any kind).
func (s *Store) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx, "SETNX", key); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	if s.lookup(key, now) != nil {
		return false, nil
	}
	s.data[key] = newString(val, ttl, now)
	return true, nil
}

// CompareAndDelete deletes key only if it is a string equal to val.
func (s *Store) CompareAndDelete(ctx context.Context, key string, val []byte) (bool, error) {
	if err := s.begin(ctx, "CAD", key); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("CAD", key, kindString)
	if err != nil || v == nil || string(v.str) != string(val) {
		return false, err
	}
	delete(s.data, key)
	return true, nil
}

// CompareAndExpire sets key's expiry to ttl (none when ttl <= 0) only if
// it is a string equal to val.
func (s *Store) CompareAndExpire(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx, "CAE", key); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	v := s.lookup(key, now)
	if v != nil && v.kind != kindString {
		return false, wrongType("CAE", key)
	}
	if v == nil || string(v.str) != string(val) {
		return false, nil
	}
	v.expires = time.Time{}
	if ttl > 0 {
		v.expires = now.Add(ttl)
	}
	return true, nil
}

// Delete removes keys of any kind; missing keys are ignored.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if err := s.begin(ctx, "DEL", strings.Join(keys, " ")); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.data, k)
	}
	return nil
}

// Incr adds delta to the decimal integer at key. A missing key counts as 0
// and is created with ttl (when ttl > 0); an existing key keeps its expiry.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := s.begin(ctx, "INCRBY", key); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	v, err := s.lookupKind("INCRBY", key, kindString)
	if err != nil {
		return 0, err
	}
	if v == nil {
		s.data[key] = newString(strconv.AppendInt(nil, delta, 10), ttl, now)
		return delta, nil
	}
	cur, ok := parseInt(v.str)
	if !ok {
		return 0, licensehub.Errorf(licensehub.EINVALID, "memory INCRBY %q: value is not an integer or out of range", key)
	}
	if delta > 0 && cur > math.MaxInt64-delta || delta < 0 && cur < math.MinInt64-delta {
		return 0, licensehub.Errorf(licensehub.EINVALID, "memory INCRBY %q: increment or decrement would overflow", key)
	}
	cur += delta
	v.str = strconv.AppendInt(v.str[:0], cur, 10)
	return cur, nil
}

func newString(val []byte, ttl time.Duration, now time.Time) *value {
	v := &value{kind: kindString, str: slices.Clone(val)}
	if v.str == nil {
		v.str = []byte{}
	}
	if ttl > 0 {
		v.expires = now.Add(ttl)
	}
	return v
}

// parseInt accepts exactly what Redis accepts as an integer: the canonical
// decimal form of an int64 (no '+', no leading zeros, no spaces, no "-0").
func parseInt(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(b) {
		return 0, false
	}
	return n, true
}

// ---- sets ----

// SAdd adds members to the set at key, creating it when needed.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
	if err := s.begin(ctx, "SADD", key); err != nil {
		return err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("SADD", key, kindSet)
	if err != nil || len(members) == 0 {
		return err
	}
	if v == nil {
		v = &value{kind: kindSet, set: make(map[string]struct{}, len(members))}
		s.data[key] = v
	}
	for _, m := range members {
		v.set[m] = struct{}{}
	}
	return nil
}

// SRem removes members from the set at key; the set goes away when empty.
func (s *Store) SRem(ctx context.Context, key string, members ...string) error {
	if err := s.begin(ctx, "SREM", key); err != nil {
		return err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("SREM", key, kindSet)
	if err != nil || v == nil {
		return err
	}
	for _, m := range members {
		delete(v.set, m)
	}
	if len(v.set) == 0 {
		delete(s.data, key)
	}
	return nil
}

// SMembers returns the members of the set at key in ascending byte order;
// a missing set is empty.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	if err := s.begin(ctx, "SMEMBERS", key); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("SMEMBERS", key, kindSet)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return []string{}, nil
	}
	out := make([]string, 0, len(v.set))
	for m := range v.set {
		out = append(out, m)
	}
	slices.Sort(out)
	return out, nil
}

// SIsMember reports whether member is in the set at key.
func (s *Store) SIsMember(ctx context.Context, key, member string) (bool, error) {
	if err := s.begin(ctx, "SISMEMBER", key); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("SISMEMBER", key, kindSet)
	if err != nil || v == nil {
		return false, err
	}
	_, ok := v.set[member]
	return ok, nil
}

// ---- sorted sets ----

// zset keeps a member->score index plus the members ordered by (score,
// member), so range queries are a binary search plus a walk.
type zset struct {
	score  map[string]float64
	sorted []licensehub.ScoredMember
}

func zless(a licensehub.ScoredMember, score float64, member string) bool {
	return a.Score < score || a.Score == score && a.Member < member
}

// index returns where (score, member) is or would be in z.sorted.
func (z *zset) index(score float64, member string) int {
	i, _ := slices.BinarySearchFunc(z.sorted, licensehub.ScoredMember{Member: member, Score: score},
		func(e, t licensehub.ScoredMember) int {
			switch {
			case zless(e, t.Score, t.Member):
				return -1
			case e == t:
				return 0
			default:
				return 1
			}
		})
	return i
}

func (z *zset) add(member string, score float64) {
	if old, ok := z.score[member]; ok {
		if old == score {
			return
		}
		z.remove(member)
	}
	z.score[member] = score
	i := z.index(score, member)
	z.sorted = slices.Insert(z.sorted, i, licensehub.ScoredMember{Member: member, Score: score})
}

func (z *zset) remove(member string) {
	score, ok := z.score[member]
	if !ok {
		return
	}
	delete(z.score, member)
	i := z.index(score, member)
	z.sorted = slices.Delete(z.sorted, i, i+1)
}

// ZAdd sets member's score in the sorted set at key, creating it when needed.
func (s *Store) ZAdd(ctx context.Context, key string, score float64, member string) error {
	if math.IsNaN(score) {
		return licensehub.Errorf(licensehub.EINVALID, "memory ZADD %q: score is not a number", key)
	}
	if err := s.begin(ctx, "ZADD", key); err != nil {
		return err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("ZADD", key, kindZSet)
	if err != nil {
		return err
	}
	if v == nil {
		v = &value{kind: kindZSet, zset: &zset{score: make(map[string]float64)}}
		s.data[key] = v
	}
	v.zset.add(member, score)
	return nil
}

// ZRem removes members from the sorted set at key; it goes away when empty.
func (s *Store) ZRem(ctx context.Context, key string, members ...string) error {
	if err := s.begin(ctx, "ZREM", key); err != nil {
		return err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("ZREM", key, kindZSet)
	if err != nil || v == nil {
		return err
	}
	for _, m := range members {
		v.zset.remove(m)
	}
	if len(v.zset.score) == 0 {
		delete(s.data, key)
	}
	return nil
}

// ZRangeByScore returns up to limit members (limit <= 0: all) with
// min <= score <= max, ordered by score and then member.
func (s *Store) ZRangeByScore(ctx context.Context, key string, min, max float64, limit int) ([]licensehub.ScoredMember, error) {
	if math.IsNaN(min) || math.IsNaN(max) {
		return nil, licensehub.Errorf(licensehub.EINVALID, "memory ZRANGE %q: min or max is not a number", key)
	}
	if err := s.begin(ctx, "ZRANGE", key); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("ZRANGE", key, kindZSet)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return []licensehub.ScoredMember{}, nil
	}
	sorted := v.zset.sorted
	i, _ := slices.BinarySearchFunc(sorted, min, func(e licensehub.ScoredMember, t float64) int {
		if e.Score < t {
			return -1
		}
		return 1 // never 0: find the first element with score >= min
	})
	out := []licensehub.ScoredMember{}
	for ; i < len(sorted) && sorted[i].Score <= max; i++ {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, sorted[i])
	}
	return out, nil
}

// ---- streams ----

// streamID is a parsed "<ms>-<seq>" stream entry ID.
type streamID struct{ ms, seq uint64 }

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// parseStreamID parses "<ms>-<seq>" or "<ms>" (meaning "<ms>-0"), as Redis
// does for the start of a range.
func parseStreamID(s string) (streamID, bool) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return streamID{}, false
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return streamID{}, false
		}
	}
	return streamID{ms, seq}, true
}

type streamEntry struct {
	id     streamID
	fields map[string]string
}

type stream struct {
	entries []streamEntry // in ID order
	last    streamID
}

// XAdd appends a copy of fields to the stream at key and returns the new ID:
// the current Unix time in milliseconds, with a sequence number that keeps
// IDs strictly increasing within the same millisecond or if the clock steps
// back. fields must not be empty.
func (s *Store) XAdd(ctx context.Context, key string, fields map[string]string) (string, error) {
	if len(fields) == 0 {
		return "", licensehub.Errorf(licensehub.EINVALID, "memory XADD %q: an entry needs at least one field", key)
	}
	if err := s.begin(ctx, "XADD", key); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("XADD", key, kindStream)
	if err != nil {
		return "", err
	}
	if v == nil {
		v = &value{kind: kindStream, stream: &stream{}}
		s.data[key] = v
	}
	st := v.stream
	id := streamID{ms: uint64(max(time.Now().UnixMilli(), 0))}
	if !st.last.less(id) {
		if st.last.seq == math.MaxUint64 {
			if st.last.ms == math.MaxUint64 {
				return "", licensehub.Errorf(licensehub.EINVALID, "memory XADD %q: the stream has exhausted its IDs", key)
			}
			id = streamID{ms: st.last.ms + 1}
		} else {
			id = streamID{ms: st.last.ms, seq: st.last.seq + 1}
		}
	}
	st.entries = append(st.entries, streamEntry{id: id, fields: cloneFields(fields)})
	st.last = id
	return id.String(), nil
}

// XRange returns up to count entries (count <= 0: all) whose ID is strictly
// after afterID ("" or "0": from the start), in ID order.
func (s *Store) XRange(ctx context.Context, key, afterID string, count int) ([]licensehub.StreamEntry, error) {
	var after streamID
	inclusiveStart := afterID == "" || afterID == "0"
	if !inclusiveStart {
		var ok bool
		if after, ok = parseStreamID(afterID); !ok {
			return nil, licensehub.Errorf(licensehub.EINVALID, "memory XRANGE %q: invalid stream ID %q", key, afterID)
		}
		if after.ms == math.MaxUint64 && after.seq == math.MaxUint64 {
			return nil, licensehub.Errorf(licensehub.EINVALID, "memory XRANGE %q: invalid start ID for the interval", key)
		}
	}
	if err := s.begin(ctx, "XRANGE", key); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("XRANGE", key, kindStream)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return []licensehub.StreamEntry{}, nil
	}
	entries := v.stream.entries
	i := 0
	if !inclusiveStart {
		i, _ = slices.BinarySearchFunc(entries, after, func(e streamEntry, t streamID) int {
			if t.less(e.id) {
				return 1
			}
			return -1 // never 0: find the first entry with ID > after
		})
	}
	out := []licensehub.StreamEntry{}
	for ; i < len(entries); i++ {
		if count > 0 && len(out) == count {
			break
		}
		out = append(out, licensehub.StreamEntry{ID: entries[i].id.String(), Fields: cloneFields(entries[i].fields)})
	}
	return out, nil
}

// XLen returns the number of entries in the stream at key (0 when missing).
func (s *Store) XLen(ctx context.Context, key string) (int64, error) {
	if err := s.begin(ctx, "XLEN", key); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("XLEN", key, kindStream)
	if err != nil || v == nil {
		return 0, err
	}
	return int64(len(v.stream.entries)), nil
}

// XTrimMinID removes the entries whose ID is less than minID ("<ms>-<seq>"
// or "<ms>") and returns how many it removed. The stream stays (possibly
// empty) with its last ID, so later IDs keep increasing, as in Redis.
func (s *Store) XTrimMinID(ctx context.Context, key, minID string) (int64, error) {
	min, ok := parseStreamID(minID)
	if !ok {
		return 0, licensehub.Errorf(licensehub.EINVALID, "memory XTRIM %q: invalid stream ID %q", key, minID)
	}
	if err := s.begin(ctx, "XTRIM", key); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	v, err := s.lookupKind("XTRIM", key, kindStream)
	if err != nil || v == nil {
		return 0, err
	}
	st := v.stream
	n, _ := slices.BinarySearchFunc(st.entries, min, func(e streamEntry, t streamID) int {
		if e.id.less(t) {
			return -1
		}
		return 1 // never 0: find the first entry with ID >= min
	})
	if n == 0 {
		return 0, nil
	}
	st.entries = slices.Delete(st.entries, 0, n)
	return int64(n), nil
}

func cloneFields(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- errors ----

// ctxErr reports a context that has already ended the way store/redis does:
// ETIMEOUT wrapping ctx.Err(), so errors.Is(err, context.Canceled) and
// errors.Is(err, context.DeadlineExceeded) keep working.
func ctxErr(ctx context.Context, op, key string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	msg := "context ended"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "deadline exceeded"
	}
	return licensehub.Wrap(err, licensehub.ETIMEOUT, "memory %s %q: %s", op, key, msg)
}

func errClosed(op, key string) error {
	return licensehub.Errorf(licensehub.EUNAVAILABLE, "memory %s %q: store is closed", op, key)
}

func wrongType(op, key string) error {
	return licensehub.Errorf(licensehub.EINVALID, "memory %s %q: WRONGTYPE operation against a key holding the wrong kind of value", op, key)
}
