package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/licensehub/licensehub"
)

// TestReadyzShowsSettings: the kv backend's settings appear in /readyz
// with their verdicts; a warning keeps the hub ready, a refusing verdict
// (the server was changed since the start) makes the backend
// misconfigured and /readyz 503; a backend that is down is not asked.
func TestReadyzShowsSettings(t *testing.T) {
	var mu sync.Mutex
	settings := []licensehub.BackendSetting{{Name: "maxmemory-policy", Value: "noeviction (maxmemory 0)", Verdict: licensehub.VerdictOK}}
	var pingErr error
	asked := 0
	backends := []Backend{{Name: "kv", Kind: "redis",
		Pinger: pingFunc(func(context.Context) error { mu.Lock(); defer mu.Unlock(); return pingErr }),
		Settings: func(context.Context) []licensehub.BackendSetting {
			mu.Lock()
			defer mu.Unlock()
			asked++
			return settings
		}}}
	h := start(t, backends, nil)

	tests := []struct {
		name       string
		settings   []licensehub.BackendSetting
		pingErr    error
		wantStatus int
		wantKV     string // the kv backend's status
		wantAsked  bool
		wantError  string
	}{
		{"ok", []licensehub.BackendSetting{{Name: "maxmemory-policy", Value: "noeviction (maxmemory 0)", Verdict: "ok"}}, nil, 200, "up", true, ""},
		{"warn", []licensehub.BackendSetting{{Name: "persistence", Value: `appendonly no, save ""`, Verdict: "warn", Note: "no persistence"}}, nil, 200, "up", true, ""},
		{"unknown", []licensehub.BackendSetting{{Name: "maxmemory-policy", Verdict: "unknown"}}, nil, 200, "up", true, ""},
		{"refuse", []licensehub.BackendSetting{{Name: "maxmemory-policy", Value: "allkeys-lru (maxmemory 1073741824)", Verdict: "refuse"},
			{Name: "role", Value: "slave", Verdict: "refuse"}}, nil, 503, "misconfigured", true, "maxmemory-policy, role"},
		{"down", nil, licensehub.Errorf(licensehub.EUNAVAILABLE, "redis PING: failed"), 503, "down", false, "redis PING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			settings, pingErr, asked = tt.settings, tt.pingErr, 0
			mu.Unlock()
			resp, b := h.do(t, "GET", "/readyz", nil, nil)
			var r struct {
				Down     []string        `json:"down"`
				Backends []backendStatus `json:"backends"`
			}
			if err := json.Unmarshal(b, &r); err != nil || len(r.Backends) != 1 {
				t.Fatalf("readyz: %v %s", err, b)
			}
			kv := r.Backends[0]
			if resp.StatusCode != tt.wantStatus || kv.Status != tt.wantKV || !strings.Contains(kv.Error, tt.wantError) {
				t.Fatalf("readyz %d, kv %s (%q); want %d, %s (%q): %s", resp.StatusCode, kv.Status, kv.Error, tt.wantStatus, tt.wantKV, tt.wantError, b)
			}
			if tt.wantStatus == 503 && strings.Join(r.Down, ",") != "kv" {
				t.Errorf("down = %v, want [kv]", r.Down)
			}
			mu.Lock()
			gotAsked := asked > 0
			mu.Unlock()
			if gotAsked != tt.wantAsked {
				t.Errorf("settings asked: %v, want %v", gotAsked, tt.wantAsked)
			}
			if tt.wantAsked && (len(kv.Settings) != len(tt.settings) || kv.Settings[0] != tt.settings[0]) {
				t.Errorf("settings shown %+v, want %+v", kv.Settings, tt.settings)
			}
		})
	}
}
