package store

import (
	"context"
	"path/filepath"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
	"github.com/licensehub/licensehub/store/minio"
	"github.com/licensehub/licensehub/store/redis"
)

// Backend is an opened store with what /readyz and shutdown need.
type Backend[T any] struct {
	Store T
	Kind  string // "minio", "filesystem", "redis", "memory"
	Ping  licensehub.Pinger
	Close func() error
	// Settings, when not nil, reads the server settings the hub depends
	// on, with a verdict on each (Redis: store/redis Judge).
	Settings func(ctx context.Context) []licensehub.BackendSetting
}

// OpenObjects opens the configured object store: MinIO when
// minio.endpoint is set, else the filesystem store under data_dir.
func OpenObjects(ctx context.Context, cfg *config.Config) (*Backend[licensehub.ObjectStore], error) {
	if cfg.EmbeddedObjects() {
		s, err := fs.Open(filepath.Join(cfg.DataDir, "objects"))
		if err != nil {
			return nil, err
		}
		return &Backend[licensehub.ObjectStore]{Store: s, Kind: s.Kind(), Ping: s, Close: s.Close}, nil
	}
	s, err := minio.Open(ctx, minio.Config{
		Endpoint: cfg.MinIO.Endpoint, AccessKey: cfg.MinIO.AccessKey, SecretKey: cfg.MinIO.SecretKey.Value(),
		Bucket: cfg.MinIO.Bucket, Region: cfg.MinIO.Region, OpTimeout: cfg.MinIO.Timeout.D(),
	})
	if err != nil {
		return nil, err
	}
	return &Backend[licensehub.ObjectStore]{Store: s, Kind: s.Kind(), Ping: s, Close: s.Close}, nil
}

// OpenKV opens the configured KV store: Redis when redis.url is set, else
// the in-process store.
func OpenKV(ctx context.Context, cfg *config.Config) (*Backend[licensehub.KV], error) {
	if cfg.EmbeddedKV() {
		s := mem.New()
		return &Backend[licensehub.KV]{Store: s, Kind: s.Kind(), Ping: s, Close: s.Close}, nil
	}
	s, err := redis.Open(ctx, redis.Config{URL: cfg.Redis.URL, Password: cfg.Redis.Password.Value(),
		Prefix: cfg.Redis.Prefix, OpTimeout: cfg.Redis.Timeout.D()})
	if err != nil {
		return nil, err
	}
	return &Backend[licensehub.KV]{Store: s, Kind: s.Kind(), Ping: s, Close: s.Close, Settings: s.Settings}, nil
}
