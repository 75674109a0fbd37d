package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/store"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
	"github.com/licensehub/licensehub/store/minio"
	"github.com/licensehub/licensehub/store/redis"
)

// backends are the opened stores, instrumented, with what closes them.
type backends struct {
	objects     licensehub.ObjectStore
	kv          licensehub.KV
	objectsKind string
	kvKind      string
	readiness   []api.Backend
	closers     []func() error
}

func (b *backends) embedded() bool {
	return b.objectsKind == "filesystem" || b.kvKind == "memory"
}

// openBackends opens MinIO or the filesystem store and Redis or the
// in-process store, as configured.
func openBackends(ctx context.Context, cfg *config.Config, m *store.Metrics, log *slog.Logger) (*backends, error) {
	b := &backends{}
	if cfg.EmbeddedObjects() {
		dir := filepath.Join(cfg.DataDir, "objects")
		s, err := fs.Open(dir)
		if err != nil {
			return nil, err
		}
		b.objects, b.objectsKind = s, s.Kind()
		b.readiness = append(b.readiness, api.Backend{Name: "object_store", Kind: s.Kind(), Pinger: s})
		b.closers = append(b.closers, s.Close)
		log.Warn("EMBEDDED MODE: licenses are stored on the local filesystem; set minio.endpoint (HUB_MINIO_ENDPOINT) for production",
			"dir", dir)
	} else {
		s, err := minio.Open(ctx, minio.Config{
			Endpoint: cfg.MinIO.Endpoint, AccessKey: cfg.MinIO.AccessKey, SecretKey: cfg.MinIO.SecretKey.Value(),
			Bucket: cfg.MinIO.Bucket, Region: cfg.MinIO.Region, OpTimeout: cfg.MinIO.Timeout.D(),
		})
		if err != nil {
			return nil, err
		}
		b.objects, b.objectsKind = s, s.Kind()
		b.readiness = append(b.readiness, api.Backend{Name: "object_store", Kind: s.Kind(), Pinger: s})
	}
	if cfg.EmbeddedKV() {
		s := mem.New()
		b.kv, b.kvKind = s, s.Kind()
		b.readiness = append(b.readiness, api.Backend{Name: "kv", Kind: s.Kind(), Pinger: s})
		b.closers = append(b.closers, s.Close)
		log.Warn("EMBEDDED MODE: indexes, caches and queues are in process memory; one instance only. Set redis.url (HUB_REDIS_URL) for production")
	} else {
		s, err := redis.Open(ctx, redis.Config{URL: cfg.Redis.URL, Password: cfg.Redis.Password.Value(),
			Prefix: cfg.Redis.Prefix, OpTimeout: cfg.Redis.Timeout.D()})
		if err != nil {
			b.close(log)
			return nil, err
		}
		b.kv, b.kvKind = s, s.Kind()
		b.readiness = append(b.readiness, api.Backend{Name: "kv", Kind: s.Kind(), Pinger: s})
		b.closers = append(b.closers, s.Close)
	}
	b.objects = m.Objects(b.objects, b.objectsKind)
	b.kv = m.KV(b.kv, b.kvKind)
	return b, nil
}

func (b *backends) close(log *slog.Logger) {
	for i := len(b.closers) - 1; i >= 0; i-- {
		if err := b.closers[i](); err != nil {
			log.Warn("closing a backend", "error", err.Error())
		}
	}
}
