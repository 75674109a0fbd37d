package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode int
		wantOut  string
	}{
		{"ready", 200, `{"status":"ready","backends":[{"name":"object_store","kind":"minio","status":"up","latency_ms":1.5}]}`, 0, "object_store  minio  up"},
		{"settings", 200, `{"status":"ready","backends":[{"name":"kv","kind":"redis","status":"up","latency_ms":0.5,"settings":[{"name":"maxmemory-policy","value":"noeviction (maxmemory 0)","verdict":"ok"},{"name":"persistence","value":"appendonly no","verdict":"warn","note":"no persistence"}]}]}`, 0, "kv       persistence       appendonly no             warn     no persistence"},
		{"not ready", 503, `{"status":"not_ready","down":["kv"],"backends":[{"name":"kv","kind":"redis","status":"down","error":"refused"}]}`, 1, "kv       redis  down    0.0ms    refused"},
		{"garbage", 200, `<html>`, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/readyz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"--hub", srv.URL, "status"}, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errOut.String())
			}
		})
	}
}

func TestUnreachableHubAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--hub", "http://127.0.0.1:1", "status"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not reachable") {
		t.Errorf("unreachable: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut.String())
	}
}
