package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/signing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const hubAuthority = "11330100MB1234567E"

// hubKeys makes a hub keyring and writes its bundle (the -hub-keys file).
func hubKeys(t *testing.T) (signing.Signer, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hub-keys")
	now := time.Now()
	if _, err := signing.Generate(dir, hubAuthority, now.Add(-time.Hour), now.AddDate(1, 0, 0), nil); err != nil {
		t.Fatal(err)
	}
	ring, err := signing.OpenKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ring.Export())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hub-bundle.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ring.SignerFor(hubAuthority, now)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// TestServesEventsAndStats: the command serves POST /v1/events (verifying
// the hub's envelopes) and GET /_sim/stats, writes its key bundle with
// -keys-out, and exits 0 when stopped.
func TestServesEventsAndStats(t *testing.T) {
	signer, bundle := hubKeys(t)
	dir := t.TempDir()
	keysOut := filepath.Join(dir, "province-keys.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuf
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- realMain(ctx, []string{"-addr", "127.0.0.1:0", "-hub-keys", bundle, "-keys-dir", filepath.Join(dir, "ring"),
			"-keys-out", keysOut, "-delay", "1ms", "-seed", "7"}, &out, &errOut, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	good, err := exchange.Seal(sctx, signer, &exchange.Event{Sender: hubAuthority, ID: "L1/new", License: "L1", Op: "new",
		Time: time.Now().UTC().Format(signing.SignedAtLayout)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body []byte
		want int
	}{
		{"signed by the hub", good, http.StatusOK},
		{"again: a duplicate", good, http.StatusOK},
		{"garbage", []byte(`{"nope":`), http.StatusBadRequest},
		{"tampered", bytes.Replace(good, []byte("L1"), []byte("L2"), 1), http.StatusBadRequest},
	}
	for _, tt := range tests {
		resp, err := client.Post(base+"/v1/events", "application/json", bytes.NewReader(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: HTTP %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	resp, err := client.Get(base + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st provsim.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Received != 4 || st.Applied != 1 || st.Duplicates != 1 || st.Invalid != 2 {
		t.Errorf("stats %+v %v", st, err)
	}

	raw, err := os.ReadFile(keysOut)
	if err != nil {
		t.Fatal(err)
	}
	b, err := signing.ParseBundle(raw)
	if err != nil || len(b.KeyInfos) != 1 || b.KeyInfos[0].Authority != provsim.DefaultProvinceAuthority {
		t.Errorf("key bundle %+v %v", b, err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop")
	}
	s := out.String()
	for _, want := range []string{"/v1/events", "/_sim/stats", "seed 7", "hub keys: " + bundle, keysOut} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestFlagErrorsExit2: bad flags of the simulator and of push exit 2
// before anything is served or sent.
func TestFlagErrorsExit2(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"push: no secret", []string{"push", "-hub", "http://127.0.0.1:1"}, "-secret"},
		{"push: unknown flag", []string{"push", "-frobnicate"}, "frobnicate"},
		{"push: bad count", []string{"push", "-count", "many"}, "invalid value"},
		{"push: bad duration", []string{"push", "-timeout", "soon"}, "invalid value"},
		{"serve: bad drop rate", []string{"-addr", "127.0.0.1:0", "-drop", "2"}, "drop"},
		{"serve: extra argument", []string{"-addr", "127.0.0.1:0", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // the default keyring directory stays in here
			var out, errOut syncBuf
			code := realMain(context.Background(), tt.args, &out, &errOut, nil)
			if code != 2 || !strings.Contains(out.String()+errOut.String(), tt.wantErr) {
				t.Errorf("exit %d, want 2 mentioning %q\nstdout:\n%s\nstderr:\n%s", code, tt.wantErr, out.String(), errOut.String())
			}
		})
	}
}
