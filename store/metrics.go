// Package store holds what every storage backend shares: Prometheus
// instrumentation of the licensehub.ObjectStore and licensehub.KV
// interfaces. The backends themselves live in store/fs, store/minio,
// store/redis and store/mem; store/storetest is their contract suite.
package store

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/licensehub/licensehub"
)

// Metrics records the latency of every storage operation and the errors
// that are failures (a missing key or a lost create-only race is an answer,
// not a failure).
type Metrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewMetrics registers the storage metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "licensehub", Subsystem: "store", Name: "operation_duration_seconds",
			Help:    "Storage operation latency by store (objects, kv), backend and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"store", "backend", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "licensehub", Subsystem: "store", Name: "operation_errors_total",
			Help: "Failed storage operations by store, backend, operation and error code.",
		}, []string{"store", "backend", "op", "code"}),
	}
	reg.MustRegister(m.latency, m.errors)
	return m
}

func (m *Metrics) observe(store, backend, op string, start time.Time, err error) {
	m.latency.WithLabelValues(store, backend, op).Observe(time.Since(start).Seconds())
	switch code := licensehub.ErrorCode(err); code {
	case "", licensehub.ENOTFOUND, licensehub.ECONFLICT:
	default:
		m.errors.WithLabelValues(store, backend, op, code).Inc()
	}
}

// Objects wraps s so that every call is measured under the backend label.
func (m *Metrics) Objects(s licensehub.ObjectStore, backend string) licensehub.ObjectStore {
	return &objects{next: s, m: m, backend: backend}
}

type objects struct {
	next    licensehub.ObjectStore
	m       *Metrics
	backend string
}

// done is deferred with &err so that it sees the method's final error.
func (o *objects) done(op string, start time.Time, err *error) {
	o.m.observe("objects", o.backend, op, start, *err)
}

func (o *objects) Create(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (info licensehub.ObjectInfo, err error) {
	defer o.done("create", time.Now(), &err)
	return o.next.Create(ctx, key, r, size, opts)
}

func (o *objects) Put(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (info licensehub.ObjectInfo, err error) {
	defer o.done("put", time.Now(), &err)
	return o.next.Put(ctx, key, r, size, opts)
}

func (o *objects) Get(ctx context.Context, key string) (rc io.ReadCloser, info licensehub.ObjectInfo, err error) {
	defer o.done("get", time.Now(), &err)
	return o.next.Get(ctx, key)
}

func (o *objects) Head(ctx context.Context, key string) (info licensehub.ObjectInfo, err error) {
	defer o.done("head", time.Now(), &err)
	return o.next.Head(ctx, key)
}

func (o *objects) List(ctx context.Context, prefix string, fn func(licensehub.ObjectInfo) error) (err error) {
	defer o.done("list", time.Now(), &err)
	return o.next.List(ctx, prefix, fn)
}

func (o *objects) Delete(ctx context.Context, key string) (err error) {
	defer o.done("delete", time.Now(), &err)
	return o.next.Delete(ctx, key)
}

// KV wraps kv so that every call is measured under the backend label.
func (m *Metrics) KV(kv licensehub.KV, backend string) licensehub.KV {
	return &kvStore{next: kv, m: m, backend: backend}
}

type kvStore struct {
	next    licensehub.KV
	m       *Metrics
	backend string
}

func (k *kvStore) done(op string, start time.Time, err *error) {
	k.m.observe("kv", k.backend, op, start, *err)
}

func (k *kvStore) Get(ctx context.Context, key string) (v []byte, err error) {
	defer k.done("get", time.Now(), &err)
	return k.next.Get(ctx, key)
}

func (k *kvStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	defer k.done("set", time.Now(), &err)
	return k.next.Set(ctx, key, value, ttl)
}

func (k *kvStore) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (ok bool, err error) {
	defer k.done("setnx", time.Now(), &err)
	return k.next.SetNX(ctx, key, value, ttl)
}

func (k *kvStore) CompareAndDelete(ctx context.Context, key string, value []byte) (ok bool, err error) {
	defer k.done("compare_and_delete", time.Now(), &err)
	return k.next.CompareAndDelete(ctx, key, value)
}

func (k *kvStore) CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (ok bool, err error) {
	defer k.done("compare_and_expire", time.Now(), &err)
	return k.next.CompareAndExpire(ctx, key, value, ttl)
}

func (k *kvStore) Delete(ctx context.Context, keys ...string) (err error) {
	defer k.done("delete", time.Now(), &err)
	return k.next.Delete(ctx, keys...)
}

func (k *kvStore) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (n int64, err error) {
	defer k.done("incr", time.Now(), &err)
	return k.next.Incr(ctx, key, delta, ttl)
}

func (k *kvStore) SAdd(ctx context.Context, key string, members ...string) (err error) {
	defer k.done("sadd", time.Now(), &err)
	return k.next.SAdd(ctx, key, members...)
}

func (k *kvStore) SRem(ctx context.Context, key string, members ...string) (err error) {
	defer k.done("srem", time.Now(), &err)
	return k.next.SRem(ctx, key, members...)
}

func (k *kvStore) SMembers(ctx context.Context, key string) (ms []string, err error) {
	defer k.done("smembers", time.Now(), &err)
	return k.next.SMembers(ctx, key)
}

func (k *kvStore) SIsMember(ctx context.Context, key, member string) (ok bool, err error) {
	defer k.done("sismember", time.Now(), &err)
	return k.next.SIsMember(ctx, key, member)
}

func (k *kvStore) ZAdd(ctx context.Context, key string, score float64, member string) (err error) {
	defer k.done("zadd", time.Now(), &err)
	return k.next.ZAdd(ctx, key, score, member)
}

func (k *kvStore) ZRem(ctx context.Context, key string, members ...string) (err error) {
	defer k.done("zrem", time.Now(), &err)
	return k.next.ZRem(ctx, key, members...)
}

func (k *kvStore) ZRangeByScore(ctx context.Context, key string, min, max float64, limit int) (ms []licensehub.ScoredMember, err error) {
	defer k.done("zrangebyscore", time.Now(), &err)
	return k.next.ZRangeByScore(ctx, key, min, max, limit)
}

func (k *kvStore) XAdd(ctx context.Context, key string, fields map[string]string) (id string, err error) {
	defer k.done("xadd", time.Now(), &err)
	return k.next.XAdd(ctx, key, fields)
}

func (k *kvStore) XRange(ctx context.Context, key, afterID string, count int) (es []licensehub.StreamEntry, err error) {
	defer k.done("xrange", time.Now(), &err)
	return k.next.XRange(ctx, key, afterID, count)
}

func (k *kvStore) XLen(ctx context.Context, key string) (n int64, err error) {
	defer k.done("xlen", time.Now(), &err)
	return k.next.XLen(ctx, key)
}

func (k *kvStore) XTrimMinID(ctx context.Context, key, minID string) (n int64, err error) {
	defer k.done("xtrim", time.Now(), &err)
	return k.next.XTrimMinID(ctx, key, minID)
}
