package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub/adapters/sim"
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

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuf
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-seed", "5", "-secret", "s3cr3t-value", "-error-rate", "0.5", "-latency", "1ms"}, &out, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/_sim/knobs")
	if err != nil {
		t.Fatal(err)
	}
	var k sim.Knobs
	err = json.NewDecoder(resp.Body).Decode(&k)
	resp.Body.Close()
	if err != nil || k.ErrorRate != 0.5 || k.Latency != time.Millisecond {
		t.Errorf("knobs %+v, %v", k, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	s := out.String()
	for _, want := range []string{"/ps/identity", "/ps/household", "/si/person", "/si/employer", "/tax/registration",
		"/tax/payments", "/tax/credit", "/_sim/knobs", "sample people:", "seed 5"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "s3cr3t-value") {
		t.Error("the secret was printed")
	}
}

func TestApplyEnv(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addr := fs.String("addr", "a", "")
	rate := fs.Float64("error-rate", 0, "")
	env := map[string]string{"SIM_ADDR": "127.0.0.1:9999", "SIM_ERROR_RATE": "0.25"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := applyEnv(fs, lookup); err != nil || *addr != "127.0.0.1:9999" || *rate != 0.25 {
		t.Errorf("applyEnv: %v %q %v", err, *addr, *rate)
	}
	env["SIM_ERROR_RATE"] = "lots"
	if err := applyEnv(fs, lookup); err == nil || !strings.Contains(err.Error(), "SIM_ERROR_RATE") {
		t.Errorf("bad value: %v", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-alg", "md5"}, {"-error-rate", "2"}, {"extra"}, {"-malformed", "weird"}} {
		if err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, args...), &bytes.Buffer{}, nil); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
