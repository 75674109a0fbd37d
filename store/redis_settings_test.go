package store_test

import (
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/store"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// verdicts maps each setting Judge reports to its verdict.
func verdicts(settings []licensehub.BackendSetting) map[string]string {
	out := map[string]string{}
	for _, s := range settings {
		out[s.Name] = s.Verdict
	}
	return out
}

func TestRedisSettingsJudge(t *testing.T) {
	good := map[string]string{"maxmemory": "0", "maxmemory-policy": "noeviction", "appendonly": "yes", "save": "",
		"cluster_enabled": "0", "role": "master", "redis_version": "7.0.15"}
	with := func(edits map[string]string, drop ...string) map[string]string {
		out := map[string]string{}
		for k, v := range good {
			out[k] = v
		}
		for k, v := range edits {
			out[k] = v
		}
		for _, k := range drop {
			delete(out, k)
		}
		return out
	}
	tests := []struct {
		name   string
		values map[string]string
		want   map[string]string // setting → verdict; unlisted: ok
	}{
		{"all good", good, nil},
		{"evicting with a limit", with(map[string]string{"maxmemory": "1073741824", "maxmemory-policy": "allkeys-lru"}), map[string]string{"maxmemory-policy": "refuse"}},
		{"volatile eviction with a limit", with(map[string]string{"maxmemory": "100mb", "maxmemory-policy": "volatile-ttl"}), map[string]string{"maxmemory-policy": "refuse"}},
		{"evicting policy, no limit", with(map[string]string{"maxmemory-policy": "allkeys-lru"}), map[string]string{"maxmemory-policy": "warn"}},
		{"evicting policy, limit unknown", with(map[string]string{"maxmemory-policy": "allkeys-lru"}, "maxmemory"), map[string]string{"maxmemory-policy": "refuse"}},
		{"noeviction with a limit", with(map[string]string{"maxmemory": "1073741824"}), nil},
		{"policy unknown", with(nil, "maxmemory-policy", "maxmemory"), map[string]string{"maxmemory-policy": "unknown"}},
		{"cluster", with(map[string]string{"cluster_enabled": "1"}), map[string]string{"cluster_enabled": "refuse"}},
		{"replica", with(map[string]string{"role": "slave"}), map[string]string{"role": "refuse"}},
		{"old server", with(map[string]string{"redis_version": "6.0.16"}), map[string]string{"redis_version": "refuse"}},
		{"6.2 is enough", with(map[string]string{"redis_version": "6.2.0"}), nil},
		{"version garbage", with(map[string]string{"redis_version": "seven"}), map[string]string{"redis_version": "refuse"}},
		{"no persistence", with(map[string]string{"appendonly": "no", "save": ""}), map[string]string{"persistence": "warn"}},
		{"RDB only", with(map[string]string{"appendonly": "no", "save": "3600 1"}), nil},
		{"persistence half known, off", with(map[string]string{"appendonly": "no"}, "save"), map[string]string{"persistence": "unknown"}},
		{"persistence half known, AOF on", with(nil, "save"), nil},
		{"INFO denied too", map[string]string{}, map[string]string{"maxmemory-policy": "unknown", "cluster_enabled": "unknown",
			"role": "unknown", "redis_version": "unknown", "persistence": "unknown"}},
	}
	names := []string{redisstore.SettingEviction, redisstore.SettingCluster, redisstore.SettingRole, redisstore.SettingVersion, redisstore.SettingPersistence}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redisstore.Judge(tt.values)
			if len(got) != len(names) {
				t.Fatalf("Judge gave %d settings, want %d: %+v", len(got), len(names), got)
			}
			v := verdicts(got)
			for _, name := range names {
				want := tt.want[name]
				if want == "" {
					want = licensehub.VerdictOK
				}
				if v[name] != want {
					t.Errorf("%s: verdict %q, want %q (%+v)", name, v[name], want, got)
				}
			}
			for _, s := range got {
				if s.Verdict != licensehub.VerdictOK && s.Note == "" {
					t.Errorf("%s: verdict %s without a note saying what to do", s.Name, s.Verdict)
				}
			}
		})
	}
}

// TestRedisSettingsOnTheServer reads the settings of redis-servers of the
// test's own (never the shared one: changing its settings would make
// hubs started by tests running in parallel refuse it): one started as
// scripts/lib/services.sh starts the suite's (no persistence, no limit),
// one that evicts, and one whose CONFIG command is disabled, as on many
// managed services (INFO then tells the eviction policy; save is
// unknown).
func TestRedisSettingsOnTheServer(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
	}{
		{"as the test command starts it", nil, map[string]string{"maxmemory-policy": "ok", "cluster_enabled": "ok", "role": "ok",
			"redis_version": "ok", "persistence": "warn"}},
		{"evicting", []string{"--maxmemory", "64gb", "--maxmemory-policy", "allkeys-lru"}, map[string]string{"maxmemory-policy": "refuse",
			"cluster_enabled": "ok", "role": "ok", "redis_version": "ok", "persistence": "warn"}},
		{"evicting policy, no limit", []string{"--maxmemory-policy", "volatile-lru"}, map[string]string{"maxmemory-policy": "warn"}},
		{"persistent", []string{"--appendonly", "yes"}, map[string]string{"persistence": "ok"}},
		{"CONFIG disabled", []string{"--rename-command", "CONFIG", "", "--maxmemory", "64gb", "--maxmemory-policy", "allkeys-lru"},
			map[string]string{"maxmemory-policy": "refuse", "cluster_enabled": "ok", "role": "ok", "redis_version": "ok", "persistence": "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testenv.StartRedis(t, tt.args...)
			s := openRedis(t, srv.URL(), "")
			settings := s.Settings(t.Context())
			got := verdicts(settings)
			for name, v := range tt.want {
				if got[name] != v {
					t.Errorf("%s: %q, want %q (%+v)", name, got[name], v, settings)
				}
			}
			refusals := redisstore.Refusals(settings)
			if wantRefused := tt.want["maxmemory-policy"] == "refuse"; wantRefused != (len(refusals) == 1) {
				t.Errorf("Refusals = %+v", refusals)
			}
		})
	}
}

// TestOpenKVSettings: OpenKV gives the Redis backend a settings reader
// and the embedded one none (there is no server to check).
func TestOpenKVSettings(t *testing.T) {
	cfg := config.Default()
	b, err := store.OpenKV(t.Context(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Kind != "memory" || b.Settings != nil {
		t.Errorf("embedded KV %s: settings reader %v, want none", b.Kind, b.Settings != nil)
	}

	cfg.Redis.URL = testenv.RequireRedis(t)
	b, err = store.OpenKV(t.Context(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Kind != "redis" || b.Settings == nil {
		t.Fatalf("redis KV: no settings reader")
	}
	if v := verdicts(b.Settings(t.Context()))["role"]; v != licensehub.VerdictOK {
		t.Errorf("role verdict %q through OpenKV, want ok", v)
	}
}
