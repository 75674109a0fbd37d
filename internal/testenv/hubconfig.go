package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// HubConfig is what a test's hub configuration file (hub.yaml) says; the
// catalog, authorities, members, matters and conversion mappings are the
// repository's own (configs/).
type HubConfig struct {
	Dir  string // data_dir is Dir/data, the audit journal Dir/audit
	Keys string // the signing keys directory

	// MinIO, when set, is the object store, in Bucket.
	MinIO  *MinIO
	Bucket string
	// RedisURL, when set, is the KV, under RedisPrefix.
	RedisURL    string
	RedisPrefix string
}

// WriteHubConfig writes c as Dir/hub.yaml and returns the file's path.
func WriteHubConfig(tb testing.TB, c HubConfig) string {
	tb.Helper()
	repo := RepoRoot(tb)
	var backends string
	if c.MinIO != nil {
		backends += fmt.Sprintf("minio:\n  endpoint: http://%s\n  access_key: %s\n  secret_key: %s\n  bucket: %s\n",
			c.MinIO.Endpoint, c.MinIO.AccessKey, c.MinIO.SecretKey, c.Bucket)
	}
	if c.RedisURL != "" {
		backends += fmt.Sprintf("redis:\n  url: %s\n  prefix: %q\n", c.RedisURL, c.RedisPrefix)
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
%[2]ssigning:
  keys_dir: %[3]s
catalog:
  dir: %[4]s/configs/catalog
authorities:
  file: %[4]s/configs/authorities.yaml
auth:
  members_file: %[4]s/configs/members.yaml
lookup:
  matters_file: %[4]s/configs/matters.yaml
audit:
  journal_dir: %[1]s/audit
conversion:
  mappings_dir: %[4]s/configs/conversion
`, c.Dir, backends, c.Keys, repo)
	path := filepath.Join(c.Dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// RepoRoot is the directory of the repository's go.mod, found upwards from
// the test's working directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			tb.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// CleanRedisPrefix deletes every key under prefix on the Redis at url
// (in batches); failures are logged, not fatal.
func CleanRedisPrefix(tb testing.TB, url, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		tb.Logf("cleaning %s*: %v", prefix, err)
		return
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	iter := c.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 5000 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		tb.Logf("cleaning %s*: %v", prefix, err)
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}
