package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The shipped configs/hub.yaml must load to exactly the defaults and mention
// every key, so it stays the configuration reference.
func TestShippedFileIsTheDefaults(t *testing.T) {
	path := filepath.Join("..", "configs", "hub.yaml")
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(*cfg, want) {
		t.Errorf("configs/hub.yaml differs from Default():\n got %+v\nwant %+v", *cfg, want)
	}
	raw, _ := os.ReadFile(path)
	for _, k := range Keys() {
		leaf := k.Key[strings.LastIndex(k.Key, ".")+1:]
		if !strings.Contains(string(raw), leaf+":") {
			t.Errorf("configs/hub.yaml does not document %s", k.Key)
		}
	}
}

func TestLoadProblemsNameTheKey(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		wantKey string
		wantMsg string
	}{
		{"unknown key", "server:\n  bogus: 1\n", nil, "server.bogus", "unknown key"},
		{"typo suggests", "server:\n  adr: x\n", nil, "server.adr", `did you mean "addr"`},
		{"unknown section", "nosuch:\n  a: 1\n", nil, "nosuch", "unknown key"},
		{"bad duration", "server:\n  read_timeout: soon\n", nil, "server.read_timeout", "not a duration"},
		{"negative duration", "minio:\n  timeout: -1s\n", nil, "minio.timeout", "positive"},
		{"bad size", "server:\n  body_limit: lots\n", nil, "server.body_limit", "not a size"},
		{"bad addr", "server:\n  addr: nowhere\n", nil, "server.addr", "host:port"},
		{"bad minio url", "minio:\n  endpoint: ftp://x\n  access_key: a\n  secret_key: b\n", nil, "minio.endpoint", "http://"},
		{"minio url without host", "minio:\n  endpoint: 'http://'\n  access_key: a\n  secret_key: b\n", nil, "minio.endpoint", "no host"},
		{"missing access key", "minio:\n  endpoint: http://127.0.0.1:9000\n  secret_key: b\n", nil, "minio.access_key", "required"},
		{"missing secret", "minio:\n  endpoint: http://127.0.0.1:9000\n  access_key: a\n", nil, "minio.secret_key", "required"},
		{"bad bucket", "minio:\n  endpoint: http://h:9000\n  access_key: a\n  secret_key: b\n  bucket: Bad_Bucket\n", nil, "minio.bucket", "bucket name"},
		{"bad redis url", "redis:\n  url: 'http://x:6379'\n", nil, "redis.url", "redis://"},
		{"redis url with password", "redis:\n  url: 'redis://:pw@x:6379'\n", nil, "redis.url", "credentials"},
		{"bad log level", "log:\n  level: loud\n", nil, "log.level", "one of"},
		{"section not a map", "server: 3\n", nil, "server", "mapping"},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", nil, "log.level", ""},
		{"env bad duration", "", []string{"HUB_SERVER_SHUTDOWN_TIMEOUT=forever"}, "server.shutdown_timeout", "env HUB_SERVER_SHUTDOWN_TIMEOUT"},
		{"env unknown variable", "", []string{"HUB_REDIS_ULR=redis://x"}, "HUB_REDIS_ULR", "unknown variable"},
		{"env bad url", "", []string{"HUB_REDIS_URL=localhost:6379"}, "redis.url", "redis://"},
		{"env empty data dir", "", []string{"HUB_DATA_DIR="}, "data_dir", "required"},
		{"env empty authorities file", "", []string{"HUB_AUTHORITIES_FILE= "}, "authorities.file", "required"},
		{"authorities not a map", "authorities: configs/authorities.yaml\n", nil, "authorities", "mapping"},
		{"holder key required outside demo", "demo:\n  enabled: false\n", nil, "audit.holder_key", "32"},
		{"segment size", "audit:\n  segment_records: 0\n", nil, "audit.segment_records", "between"},
		{"issue date skew", "library:\n  issue_date_skew_days: 30\n", nil, "library.issue_date_skew_days", "between 0 and 7 days"},
		{"negative issue date skew", "", []string{"HUB_LIBRARY_ISSUE_DATE_SKEW_DAYS=-1"}, "library.issue_date_skew_days", "between 0 and 7 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hub.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, tt.env)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantKey) || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not name key %q with %q", msg, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Load("", []string{
		"HUB_SERVER_BODY_LIMIT=2MiB",
		"HUB_SERVER_SHUTDOWN_TIMEOUT=3s",
		"HUB_MINIO_ENDPOINT=http://127.0.0.1:9000",
		"HUB_MINIO_ACCESS_KEY=ak",
		"HUB_MINIO_SECRET_KEY=very-secret",
		"HUB_REDIS_URL=redis://127.0.0.1:6379/2",
		"HUB_DEMO_ENABLED=false",
		"HUB_AUDIT_HOLDER_KEY=0123456789abcdef0123456789abcdef",
		"HUB_REDIS_PREFIX=0123", // strings are verbatim, not YAML numbers
		"HUB_AUTHORITIES_FILE=/etc/licensehub/authorities.yaml",
		"HUB_TEST_REDIS_URL=ignored",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.BodyLimit != 2<<20 || cfg.Server.ShutdownTimeout.D() != 3*time.Second ||
		cfg.MinIO.Endpoint != "http://127.0.0.1:9000" || cfg.MinIO.SecretKey.Value() != "very-secret" ||
		cfg.Redis.URL != "redis://127.0.0.1:6379/2" || cfg.Demo.Enabled || cfg.Redis.Prefix != "0123" ||
		cfg.Authorities.File != "/etc/licensehub/authorities.yaml" {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if cfg.EmbeddedObjects() || cfg.EmbeddedKV() {
		t.Error("configured backends reported as embedded")
	}
	if dump := cfg.Dump(); strings.Contains(dump, "very-secret") || !strings.Contains(dump, "[redacted]") {
		t.Errorf("Dump leaks or drops the secret:\n%s", dump)
	}
}

func TestEveryKeyHasAnEnvName(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys() {
		if other, dup := seen[k.Env]; dup {
			t.Errorf("%s and %s share %s", k.Key, other, k.Env)
		}
		seen[k.Env] = k.Key
	}
	if seen["HUB_SERVER_BODY_LIMIT"] != "server.body_limit" {
		t.Errorf("env names: %v", seen)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1MiB", 1 << 20, true}, {"512 KiB", 512 << 10, true}, {"2MB", 2e6, true},
		{"1048576", 1 << 20, true}, {"0", 0, true}, {"1.5MiB", 0, false}, {"-1", 0, false},
		{"MiB", 0, false}, {"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := ByteSize(1 << 20).String(); s != "1MiB" {
		t.Errorf("String = %q", s)
	}
}
