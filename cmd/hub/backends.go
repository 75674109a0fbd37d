package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/store"
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
	objects, err := store.OpenObjects(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b := &backends{objects: m.Objects(objects.Store, objects.Kind), objectsKind: objects.Kind,
		readiness: []api.Backend{{Name: "object_store", Kind: objects.Kind, Pinger: objects.Ping}},
		closers:   []func() error{objects.Close}}
	if cfg.EmbeddedObjects() {
		log.Warn("EMBEDDED MODE: licenses are stored on the local filesystem; set minio.endpoint (HUB_MINIO_ENDPOINT) for production",
			"data_dir", cfg.DataDir)
	}
	kv, err := store.OpenKV(ctx, cfg)
	if err != nil {
		b.close(log)
		return nil, err
	}
	b.kv, b.kvKind = m.KV(kv.Store, kv.Kind), kv.Kind
	b.readiness = append(b.readiness, api.Backend{Name: "kv", Kind: kv.Kind, Pinger: kv.Ping, Settings: kv.Settings})
	b.closers = append(b.closers, kv.Close)
	if err := checkKVSettings(ctx, kv.Settings, log); err != nil {
		b.close(log)
		return nil, err
	}
	if cfg.EmbeddedKV() {
		log.Warn("EMBEDDED MODE: indexes, caches and queues are in process memory; one instance only. Set redis.url (HUB_REDIS_URL) for production")
	}
	return b, nil
}

func (b *backends) close(log *slog.Logger) {
	for i := len(b.closers) - 1; i >= 0; i-- {
		if err := b.closers[i](); err != nil {
			log.Warn("closing a backend", "error", err.Error())
		}
	}
}

// checkKVSettings reads the Redis settings the hub depends on (see
// store/redis Judge and the README): a refusing verdict stops the hub
// (exit 2, naming redis.url), a warning or an unknown setting is logged.
func checkKVSettings(ctx context.Context, read func(context.Context) []licensehub.BackendSetting, log *slog.Logger) error {
	if read == nil {
		return nil
	}
	var refused []string
	for _, st := range read(ctx) {
		switch st.Verdict {
		case licensehub.VerdictRefuse:
			refused = append(refused, fmt.Sprintf("%s is %s: %s", st.Name, st.Value, st.Note))
		case licensehub.VerdictWarn, licensehub.VerdictUnknown:
			log.Warn("redis setting", "setting", st.Name, "value", st.Value, "verdict", st.Verdict, "note", st.Note)
		}
	}
	if len(refused) > 0 {
		return &configError{fmt.Errorf("redis.url: the hub does not run on this Redis:\n  %s", strings.Join(refused, "\n  "))}
	}
	return nil
}
