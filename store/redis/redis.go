// Package redis is the licensehub.KV backed by a Redis 7 server.
//
// Every key is namespaced with Config.Prefix, so several deployments (or
// test runs) can share one server, and every call is bounded by
// Config.OpTimeout on top of the caller's context. Errors are
// *licensehub.Error values:
//
//	ENOTFOUND     Get of a missing key
//	EINVALID      a key of the wrong kind (WRONGTYPE), a non-integer for
//	              Incr, an invalid argument such as a malformed stream ID
//	ETIMEOUT      the operation's deadline expired or its context ended
//	EUNAVAILABLE  the server cannot be reached or refused the command
//
// The cause is always kept, so errors.Is(err, context.Canceled) works.
package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/licensehub/licensehub"
)

// DefaultOpTimeout bounds each call when Config.OpTimeout is zero.
const DefaultOpTimeout = 2 * time.Second

// flushers is how many pipelines are in flight at once (pipeline.go).
const flushers = 2

// Config configures Open.
type Config struct {
	// URL is redis://[[user]:password@]host:port/db (or rediss:// for TLS),
	// as accepted by go-redis's ParseURL, including its query options.
	URL string
	// Password, when set, replaces any password in URL (configuration keeps
	// secrets out of URLs so they never reach logs).
	Password string
	// Prefix is prepended to every key, e.g. "hub:" or "t-xyz:".
	Prefix string
	// OpTimeout bounds every call on top of the caller's context;
	// 0 means DefaultOpTimeout.
	OpTimeout time.Duration
}

// Store is a licensehub.KV on a Redis server. It is safe for concurrent use.
type Store struct {
	c         *goredis.Client
	batch     *batcher // pipelines concurrent commands (pipeline.go)
	prefix    string
	opTimeout time.Duration
}

var (
	_ licensehub.KV     = (*Store)(nil)
	_ licensehub.Pinger = (*Store)(nil)
)

// compareAndDelete deletes KEYS[1] only if it holds ARGV[1].
var compareAndDelete = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// compareAndExpire sets KEYS[1]'s expiry to ARGV[2] milliseconds (no
// expiry when 0) only if it holds ARGV[1]. One key, so it runs on a
// cluster too.
var compareAndExpire = goredis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
	redis.call("PEXPIRE", KEYS[1], ttl)
else
	redis.call("PERSIST", KEYS[1])
end
return 1
`)

// incrWithTTL adds ARGV[1] to KEYS[1] and, only when this call created the
// key, sets its expiry to ARGV[2] milliseconds (when > 0). An existing key
// keeps whatever expiry it has, so a fixed window is never extended.
var incrWithTTL = goredis.NewScript(`
local created = redis.call("EXISTS", KEYS[1]) == 0
local n = redis.call("INCRBY", KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if created and ttl > 0 then
	redis.call("PEXPIRE", KEYS[1], ttl)
end
return n
`)

// Open connects to the server at cfg.URL and pings it. A malformed
// configuration gives EINVALID; a server that cannot be reached gives
// EUNAVAILABLE.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.OpTimeout < 0 {
		return nil, licensehub.FieldError(licensehub.EINVALID, "OpTimeout", "redis operation timeout must not be negative, got %s", cfg.OpTimeout)
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.URL == "" {
		return nil, licensehub.FieldError(licensehub.EINVALID, "URL", "redis URL is empty")
	}
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		// A *url.Error repeats the raw URL, password included: keep only
		// what went wrong.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, &licensehub.Error{Code: licensehub.EINVALID, Field: "URL", Message: "invalid redis URL", Err: err}
	}
	// Let the context deadline (caller's or OpTimeout) bound socket reads
	// and writes, not only the wait for a pooled connection.
	opt.ContextTimeoutEnabled = true
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}

	s := &Store{c: goredis.NewClient(opt), prefix: cfg.Prefix, opTimeout: cfg.OpTimeout}
	s.batch = newBatcher(s.c, flushers, cfg.OpTimeout)
	s.c.AddHook(s.batch)
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		// Report the cause under one code: whatever Ping met (refused,
		// timed out, auth failed), the server is not usable.
		var herr *licensehub.Error
		if errors.As(err, &herr) && herr.Err != nil {
			err = herr.Err
		}
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "redis at %s is not reachable", opt.Addr)
	}
	return s, nil
}

// Kind names the backend for logs and /readyz.
func (s *Store) Kind() string { return "redis" }

// Client returns the underlying go-redis client for features the KV
// interface does not cover (consumer groups, pub/sub). Keys used through it
// must be namespaced with Key.
func (s *Store) Client() *goredis.Client { return s.c }

// Key returns key with the store's prefix, as it is named on the server.
func (s *Store) Key(key string) string { return s.prefix + key }

// Close stops the pipelining and closes the connection pool.
func (s *Store) Close() error {
	s.batch.close()
	return s.c.Close()
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.exec(ctx, "PING", "", func(ctx context.Context) error {
		return s.c.Ping(ctx).Err()
	})
}

// ---- strings ----

// Get returns the string at key, or ENOTFOUND.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	return run(ctx, s, "GET", key, func(ctx context.Context) ([]byte, error) {
		b, err := s.c.Get(ctx, s.Key(key)).Bytes()
		if errors.Is(err, goredis.Nil) {
			return nil, licensehub.Errorf(licensehub.ENOTFOUND, "redis GET %q: no such key", key)
		}
		return b, err
	})
}

// Set stores value at key, replacing whatever it held and its expiry;
// ttl <= 0 means no expiry.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.exec(ctx, "SET", key, func(ctx context.Context) error {
		return s.c.Set(ctx, s.Key(key), value, expiry(ttl)).Err()
	})
}

// SetNX stores value only if key is absent and reports whether it did.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return run(ctx, s, "SETNX", key, func(ctx context.Context) (bool, error) {
		return s.c.SetNX(ctx, s.Key(key), value, expiry(ttl)).Result()
	})
}

// CompareAndDelete atomically deletes key only if it holds value.
func (s *Store) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	return run(ctx, s, "CAD", key, func(ctx context.Context) (bool, error) {
		n, err := compareAndDelete.Run(ctx, s.c, []string{s.Key(key)}, value).Int64()
		return n == 1, err
	})
}

// CompareAndExpire atomically sets key's expiry to ttl (none when
// ttl <= 0) only if key holds value.
func (s *Store) CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	var ms int64
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	return run(ctx, s, "CAE", key, func(ctx context.Context) (bool, error) {
		n, err := compareAndExpire.Run(ctx, s.c, []string{s.Key(key)}, value, ms).Int64()
		return n == 1, err
	})
}

// Delete removes keys; missing keys are ignored.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.Key(k)
	}
	return s.exec(ctx, "DEL", strings.Join(keys, " "), func(ctx context.Context) error {
		return s.c.Del(ctx, full...).Err()
	})
}

// Incr adds delta to the integer at key and returns the new value. When it
// creates the key it sets ttl (if > 0); a later Incr never extends it.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	var ms int64
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	return run(ctx, s, "INCRBY", key, func(ctx context.Context) (int64, error) {
		return incrWithTTL.Run(ctx, s.c, []string{s.Key(key)}, delta, ms).Int64()
	})
}

// expiry converts a KV ttl to go-redis's expiration argument: no expiry for
// ttl <= 0 (go-redis reads -1 as KEEPTTL), at least one millisecond
// otherwise.
func expiry(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return max(ttl, time.Millisecond)
}

// ---- sets ----

// SAdd adds members to the set at key.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	return s.exec(ctx, "SADD", key, func(ctx context.Context) error {
		return s.c.SAdd(ctx, s.Key(key), anys(members)...).Err()
	})
}

// SRem removes members from the set at key.
func (s *Store) SRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	return s.exec(ctx, "SREM", key, func(ctx context.Context) error {
		return s.c.SRem(ctx, s.Key(key), anys(members)...).Err()
	})
}

// SMembers returns the members of the set at key, sorted.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	return run(ctx, s, "SMEMBERS", key, func(ctx context.Context) ([]string, error) {
		members, err := s.c.SMembers(ctx, s.Key(key)).Result()
		slices.Sort(members)
		return members, err
	})
}

// SIsMember reports whether member is in the set at key.
func (s *Store) SIsMember(ctx context.Context, key, member string) (bool, error) {
	return run(ctx, s, "SISMEMBER", key, func(ctx context.Context) (bool, error) {
		return s.c.SIsMember(ctx, s.Key(key), member).Result()
	})
}

// ---- sorted sets ----

// ZAdd sets member's score in the sorted set at key.
func (s *Store) ZAdd(ctx context.Context, key string, score float64, member string) error {
	if math.IsNaN(score) {
		return licensehub.Errorf(licensehub.EINVALID, "redis ZADD %q: score is not a number", key)
	}
	return s.exec(ctx, "ZADD", key, func(ctx context.Context) error {
		return s.c.ZAdd(ctx, s.Key(key), goredis.Z{Score: score, Member: member}).Err()
	})
}

// ZRem removes members from the sorted set at key.
func (s *Store) ZRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	return s.exec(ctx, "ZREM", key, func(ctx context.Context) error {
		return s.c.ZRem(ctx, s.Key(key), anys(members)...).Err()
	})
}

// ZRangeByScore returns up to limit members (limit <= 0: all) with
// min <= score <= max, by ascending score; Redis orders ties by member.
func (s *Store) ZRangeByScore(ctx context.Context, key string, min, max float64, limit int) ([]licensehub.ScoredMember, error) {
	if math.IsNaN(min) || math.IsNaN(max) {
		return nil, licensehub.Errorf(licensehub.EINVALID, "redis ZRANGE %q: min or max is not a number", key)
	}
	args := goredis.ZRangeArgs{Key: s.Key(key), Start: min, Stop: max, ByScore: true}
	if limit > 0 {
		args.Count = int64(limit)
	}
	return run(ctx, s, "ZRANGE", key, func(ctx context.Context) ([]licensehub.ScoredMember, error) {
		zs, err := s.c.ZRangeArgsWithScores(ctx, args).Result()
		if err != nil {
			return nil, err
		}
		out := make([]licensehub.ScoredMember, len(zs))
		for i, z := range zs {
			out[i] = licensehub.ScoredMember{Member: toString(z.Member), Score: z.Score}
		}
		return out, nil
	})
}

// ---- streams ----

// XAdd appends fields to the stream at key with a server-assigned ID.
// fields must not be empty.
func (s *Store) XAdd(ctx context.Context, key string, fields map[string]string) (string, error) {
	if len(fields) == 0 {
		return "", licensehub.Errorf(licensehub.EINVALID, "redis XADD %q: an entry needs at least one field", key)
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	values := make([]string, 0, 2*len(fields))
	for _, k := range names {
		values = append(values, k, fields[k])
	}
	return run(ctx, s, "XADD", key, func(ctx context.Context) (string, error) {
		return s.c.XAdd(ctx, &goredis.XAddArgs{Stream: s.Key(key), ID: "*", Values: values}).Result()
	})
}

// XRange returns up to count entries (count <= 0: all) with ID strictly
// after afterID ("" or "0": from the start), in ID order.
func (s *Store) XRange(ctx context.Context, key, afterID string, count int) ([]licensehub.StreamEntry, error) {
	start := "-"
	if afterID != "" && afterID != "0" {
		start = "(" + afterID
	}
	return run(ctx, s, "XRANGE", key, func(ctx context.Context) ([]licensehub.StreamEntry, error) {
		var cmd *goredis.XMessageSliceCmd
		if count > 0 {
			cmd = s.c.XRangeN(ctx, s.Key(key), start, "+", int64(count))
		} else {
			cmd = s.c.XRange(ctx, s.Key(key), start, "+")
		}
		msgs, err := cmd.Result()
		if err != nil {
			return nil, err
		}
		out := make([]licensehub.StreamEntry, len(msgs))
		for i, m := range msgs {
			fields := make(map[string]string, len(m.Values))
			for k, v := range m.Values {
				fields[k] = toString(v)
			}
			out[i] = licensehub.StreamEntry{ID: m.ID, Fields: fields}
		}
		return out, nil
	})
}

// XLen returns the number of entries in the stream at key (0 when missing).
func (s *Store) XLen(ctx context.Context, key string) (int64, error) {
	return run(ctx, s, "XLEN", key, func(ctx context.Context) (int64, error) {
		return s.c.XLen(ctx, s.Key(key)).Result()
	})
}

// XTrimMinID removes the entries with an ID less than minID (XTRIM key
// MINID minID, exact) and returns how many it removed. Redis keeps the
// stream's last ID, so IDs are never reused after a trim.
func (s *Store) XTrimMinID(ctx context.Context, key, minID string) (int64, error) {
	return run(ctx, s, "XTRIM", key, func(ctx context.Context) (int64, error) {
		return s.c.XTrimMinID(ctx, s.Key(key), minID).Result()
	})
}

// ---- helpers ----

// run performs one call: it fails fast when ctx has already ended (so a
// cancelled call never reaches the server), bounds f by OpTimeout and
// converts f's error with wrap.
func run[T any](ctx context.Context, s *Store, op, key string, f func(context.Context) (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, s.wrap(ctx, err, op, key)
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > s.opTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
	}
	v, err := f(ctx)
	if err != nil {
		var zero T
		return zero, s.wrap(ctx, err, op, key)
	}
	return v, nil
}

// exec is run for calls that return only an error.
func (s *Store) exec(ctx context.Context, op, key string, f func(context.Context) error) error {
	_, err := run(ctx, s, op, key, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f(ctx)
	})
	return err
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// toString converts a reply element that go-redis hands back as any.
func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	default:
		// Members and field values are bulk strings; this is defensive.
		return fmt.Sprint(v)
	}
}

// wrap turns a go-redis error into a *licensehub.Error (nil stays nil).
// ctx is the operation's context: when it has ended, the error is a timeout
// whatever shape go-redis gave it.
func (s *Store) wrap(ctx context.Context, err error, op, key string) error {
	if err == nil {
		return nil
	}
	var herr *licensehub.Error
	if errors.As(err, &herr) {
		return err // already classified (ENOTFOUND from Get)
	}
	where := "redis " + op
	if key != "" {
		where = fmt.Sprintf("%s %q", where, key)
	}
	var rerr goredis.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "%s: deadline exceeded", where)
	case errors.Is(err, context.Canceled):
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "%s: context ended", where)
	case ctx.Err() != nil:
		// go-redis may report an expired deadline as an i/o timeout without
		// wrapping the context error: attach it so errors.Is still works.
		return licensehub.Wrap(errors.Join(ctx.Err(), err), licensehub.ETIMEOUT, "%s: context ended", where)
	case isNetTimeout(err):
		return licensehub.Wrap(err, licensehub.ETIMEOUT, "%s: timed out", where)
	case errors.As(err, &rerr) && isArgumentError(rerr.Error()):
		return licensehub.Wrap(err, licensehub.EINVALID, "%s: rejected", where)
	case errors.Is(err, goredis.ErrClosed):
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "%s: store is closed", where)
	default:
		return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "%s: failed", where)
	}
}

func isNetTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// isArgumentError reports server replies that blame the request rather than
// the server: a key of the wrong kind, a value that is not an integer, an
// overflow, a malformed stream ID or score. Scripts report the same errors
// with a suffix naming the script, so match anywhere in the message.
func isArgumentError(msg string) bool {
	for _, s := range []string{
		"WRONGTYPE",
		"not an integer",
		"would overflow",
		"Invalid stream ID",
		"invalid start ID",
		"not a float",
		"not a valid float",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
