package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/internal/logging"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing"
)

// TestRefusesAnEvictingRedis: a Redis that evicts keys under memory
// pressure would silently drop nonces, leases and index entries; the hub
// exits with status 2 naming redis.url and the setting to change, and
// never prints the password.
func TestRefusesAnEvictingRedis(t *testing.T) {
	srv := testenv.StartRedis(t, "--maxmemory", "64gb", "--maxmemory-policy", "allkeys-lru")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, []string{"HUB_CONFIG=" + filepath.Join("..", "..", "configs", "hub.yaml"),
		"HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR=" + t.TempDir(), "HUB_REDIS_URL=" + srv.URL(),
		"HUB_REDIS_PASSWORD=do-not-print-me"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2\nstderr: %s\nstdout: %s", code, stderr.String(), stdout.String())
	}
	for _, want := range []string{"redis.url", "maxmemory-policy is allkeys-lru (maxmemory 68719476736)", "set maxmemory-policy noeviction"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String()+stdout.String(), "do-not-print-me") {
		t.Errorf("password printed")
	}
}

// TestReadyzShowsRedisSettings: a hub on a Redis started as the test
// command starts it (no persistence) runs, warns about persistence at
// start and shows every setting with its verdict in /readyz.
func TestReadyzShowsRedisSettings(t *testing.T) {
	srv := testenv.StartRedis(t)
	cfg := config.Default()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Server.ReadyTimeout = config.Duration(5 * time.Second)
	cfg.DataDir = t.TempDir()
	cfg.Redis.URL = srv.URL()
	cfg.Demo.Enabled = false
	cfg.Signing.KeysDir = t.TempDir()
	now := time.Now().UTC()
	if _, err := signing.Generate(cfg.Signing.KeysDir, cfg.Signing.HubAuthority, now, now.AddDate(1, 0, 0), nil); err != nil {
		t.Fatal(err)
	}
	cfg.Audit.HolderKey = "test-holder-key-0123456789abcdef0123"
	cfg.Audit.JournalDir = filepath.Join(cfg.DataDir, "audit")
	cfg.Auth.MembersFile = writeMembers(t)
	cfg.Catalog.Dir = filepath.Join("..", "..", "configs", "catalog")
	cfg.Authorities.File = filepath.Join("..", "..", "configs", "authorities.yaml")
	cfg.Lookup.MattersFile = filepath.Join("..", "..", "configs", "matters.yaml")
	cfg.Conversion.MappingsDir = filepath.Join("..", "..", "configs", "conversion")
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- serve(ctx, &cfg, logging.New(&logs, "info", "json"), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	var r struct {
		Backends []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			Settings []struct{ Name, Value, Verdict string }
		} `json:"backends"`
	}
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz %d: %v %s", resp.StatusCode, err, b)
	}
	got := map[string]string{}
	for _, be := range r.Backends {
		if be.Name == "kv" {
			for _, s := range be.Settings {
				got[s.Name] = s.Value + " → " + s.Verdict
			}
		}
	}
	want := map[string]string{"maxmemory-policy": "noeviction (maxmemory 0) → ok", "cluster_enabled": "0 → ok", "role": "master → ok",
		"persistence": `appendonly no, save "" → warn`}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("readyz kv setting %s = %q, want %q (%s)", name, got[name], w, b)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"redis setting","setting":"persistence"`) {
		t.Errorf("no warning about persistence at start:\n%s", logs.String())
	}
}
