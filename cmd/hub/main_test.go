package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/internal/logging"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/fs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// go-redis and minio-go keep pooled connections' readers until the
		// transport notices the close; they end on their own.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

func TestBadConfigExitsNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badFile, []byte("server:\n  addr: 127.0.0.1:0\n  shutdown_timout: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  []string
		key  string
	}{
		{"unknown key in file", []string{"-config", badFile}, nil, "server.shutdown_timout"},
		{"unknown HUB_ variable", nil, []string{"HUB_SERVR_ADDR=x"}, "HUB_SERVR_ADDR"},
		{"bad duration", nil, []string{"HUB_SERVER_READ_TIMEOUT=soon"}, "server.read_timeout"},
		{"bad url", nil, []string{"HUB_MINIO_ENDPOINT=minio:9000", "HUB_MINIO_ACCESS_KEY=a", "HUB_MINIO_SECRET_KEY=do-not-print-me"}, "minio.endpoint"},
		{"missing required", nil, []string{"HUB_MINIO_ENDPOINT=http://127.0.0.1:9000", "HUB_MINIO_SECRET_KEY=do-not-print-me"}, "minio.access_key"},
		{"bad size", nil, []string{"HUB_SERVER_BODY_LIMIT=big"}, "server.body_limit"},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yaml")}, nil, "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, append(tt.env, "HUB_CONFIG="+filepath.Join("..", "..", "configs", "hub.yaml")), &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stdout %s", stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.key) {
				t.Errorf("stderr does not name %q:\n%s", tt.key, stderr.String())
			}
			if strings.Contains(stderr.String()+stdout.String(), "do-not-print-me") {
				t.Errorf("secret printed: %s", stderr.String())
			}
		})
	}
}

// buildHub compiles the real binary once per test that needs a process.
func buildHub(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hub")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEmbeddedProcessStartsAndStopsOnSIGTERM runs the hub as a bare machine
// would: no MinIO, no Redis. It must come up on the embedded backends, name
// them in /readyz and exit 0 on SIGTERM.
func TestEmbeddedProcessStartsAndStopsOnSIGTERM(t *testing.T) {
	bin := buildHub(t)
	dataDir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // no configs/hub.yaml here: built-in defaults
	members, err := filepath.Abs(filepath.Join("..", "..", "configs", "members.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR="+dataDir, "HUB_AUTH_MEMBERS_FILE="+members, "HUB_CATALOG_DIR="+filepath.Join(filepath.Dir(members), "catalog"), "HUB_AUTHORITIES_FILE="+filepath.Join(filepath.Dir(members), "authorities.yaml"), "HUB_LOOKUP_MATTERS_FILE="+filepath.Join(filepath.Dir(members), "matters.yaml"),
		"HUB_AUDIT_JOURNAL_DIR="+filepath.Join(dataDir, "audit"), "HUB_SIGNING_KEYS_DIR="+filepath.Join(dataDir, "keys"),
		"HUB_CONVERSION_MAPPINGS_DIR="+filepath.Join(filepath.Dir(members), "conversion"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	addr, logs := waitListening(t, stdout)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		if path == "/readyz" && (!strings.Contains(string(b), `"kind":"filesystem"`) || !strings.Contains(string(b), `"kind":"memory"`)) {
			t.Errorf("/readyz does not name the embedded backends: %s", b)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Try:") || !strings.Contains(logs, "EMBEDDED MODE") {
		t.Errorf("embedded mode not announced loudly with next steps:\nstderr: %s\nlogs: %s", stderr.String(), logs)
	}
	// The demo's legacy register is written and its conversion is among the steps.
	register := filepath.Join(dataDir, "demo", "legacy-register.csv")
	if fi, err := os.Stat(register); err != nil || fi.Size() == 0 {
		t.Errorf("demo register: %v", err)
	}
	if !strings.Contains(stderr.String(), "hubctl convert --mapping "+demoMapping+" "+register) ||
		!strings.Contains(stderr.String(), "/v1/conversions?mapping="+demoMapping) {
		t.Errorf("next steps do not show the conversion of %s:\n%s", register, stderr.String())
	}
}

// waitListening reads the JSON log until the "listening" record.
func waitListening(t *testing.T, r io.Reader) (addr, logs string) {
	t.Helper()
	found := make(chan string, 1)
	var seen strings.Builder
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			seen.WriteString(line + "\n")
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "licensehub listening" {
				found <- rec["addr"].(string) + "\n" + seen.String()
				return
			}
		}
		close(found)
	}()
	select {
	case s, ok := <-found:
		if !ok {
			t.Fatalf("hub exited before listening:\n%s", seen.String())
		}
		addr, logs, _ = strings.Cut(s, "\n")
		return addr, logs
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not start within 30s")
	}
	return "", ""
}

// TestReadinessFollowsMinIO points the hub at the real MinIO and Redis
// through a proxy, takes MinIO away and brings it back.
func TestReadinessFollowsMinIO(t *testing.T) {
	m := testenv.RequireMinIO(t)
	redisURL := testenv.RequireRedis(t)
	proxy := testenv.NewProxy(t, m.Endpoint)

	cfg := config.Default()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Server.ReadyTimeout = config.Duration(5 * time.Second) // a bound, not a premise: generous under load
	cfg.MinIO = config.MinIO{Endpoint: "http://" + proxy.Addr(), AccessKey: m.AccessKey,
		SecretKey: config.Secret(m.SecretKey), Bucket: m.Bucket(t), Timeout: config.Duration(3 * time.Second)}
	cfg.Redis.URL = redisURL
	cfg.Redis.Prefix = testenv.Name(t) + ":"
	cfg.Audit.JournalDir = t.TempDir() // the instance's own journal, with Redis too
	cfg.Demo.Enabled = false
	cfg.Signing.KeysDir = t.TempDir()
	now := time.Now().UTC()
	if _, err := signing.Generate(cfg.Signing.KeysDir, cfg.Signing.HubAuthority, now, now.AddDate(1, 0, 0), nil); err != nil {
		t.Fatal(err)
	}
	cfg.Audit.HolderKey = "test-holder-key-0123456789abcdef0123"
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
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := get("/readyz"); code != 200 || !strings.Contains(b, `"kind":"minio"`) || !strings.Contains(b, `"kind":"redis"`) {
		t.Fatalf("readyz with both up: %d %s", code, b)
	}
	proxy.Stop()
	if code, b := get("/readyz"); code != 503 || !strings.Contains(b, `"down":["object_store"]`) {
		t.Errorf("readyz with MinIO down: %d %s", code, b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz with MinIO down: %d", code)
	}
	proxy.Start(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, b := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz did not recover after MinIO came back: %d %s", code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestRefusesKeyFileReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	info, err := signing.Generate(dir, "11430000006122244L", now, now.AddDate(1, 0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, info.KeyID+".key.pem")
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, []string{"HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR=" + t.TempDir(),
		"HUB_SIGNING_KEYS_DIR=" + dir, "HUB_DEMO_ENABLED=false", "HUB_AUDIT_HOLDER_KEY=0123456789abcdef0123456789abcdef"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stdout.String(), info.KeyID+".key.pem") || !strings.Contains(stdout.String(), "chmod 600") {
		t.Errorf("exit %d; want a refusal naming %s:\n%s", code, keyFile, stdout.String())
	}
}

// writeMembers writes a one-member registry with a literal secret (mode
// 0600, as the loader requires for literals) and returns its path.
func writeMembers(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "members.yaml")
	yaml := `members:
  - app_id: test-admin
    name: test administrator
    department: test
    roles: [administrator]
    secret: test-secret-0123456789abcdef0123456789
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKilledRightAfterAnswering: a response that carried license data was
// audited before it left, so killing the hub (SIGKILL, no shutdown) right
// after the answer leaves the record in the trail. The next start seals it
// and the chain verifies.
func TestKilledRightAfterAnswering(t *testing.T) {
	bin := buildHub(t)
	dataDir := t.TempDir()
	members, err := filepath.Abs(filepath.Join("..", "..", "configs", "members.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR="+dataDir, "HUB_AUTH_MEMBERS_FILE="+members, "HUB_CATALOG_DIR="+filepath.Join(filepath.Dir(members), "catalog"), "HUB_AUTHORITIES_FILE="+filepath.Join(filepath.Dir(members), "authorities.yaml"), "HUB_LOOKUP_MATTERS_FILE="+filepath.Join(filepath.Dir(members), "matters.yaml"),
		"HUB_AUDIT_JOURNAL_DIR="+filepath.Join(dataDir, "audit"), "HUB_SIGNING_KEYS_DIR="+filepath.Join(dataDir, "keys"),
		"HUB_CONVERSION_MAPPINGS_DIR="+filepath.Join(filepath.Dir(members), "conversion"),
		"HUB_AUDIT_SEAL_INTERVAL=1h") // nothing is sealed while the first process lives
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin)
		cmd.Dir = t.TempDir()
		cmd.Env = env
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr, _ := waitListening(t, stdout)
		go io.Copy(io.Discard, stdout)
		return cmd, addr
	}

	cmd, addr := start()
	doc, err := os.ReadFile(filepath.Join(dataDir, "demo", "business-license.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/verify", bytes.NewReader(doc))
	req.Header.Set("X-Request-Id", "answered-then-killed")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no graceful anything
		t.Fatal(err)
	}
	cmd.Wait()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != 200 {
		t.Fatalf("verify answered %d", resp.StatusCode)
	}

	// The second life seals what the first journaled; SIGTERM seals the rest.
	cmd, _ = start()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second hub: %v", err)
	}
	objects, err := fs.Open(filepath.Join(dataDir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.OpenKeyring(filepath.Join(dataDir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	report, err := audit.Verify(context.Background(), objects, ring)
	if err != nil || !report.OK {
		t.Fatalf("audit chain after kill and restart: %+v %v", report, err)
	}
	var found bool
	for n := int64(1); n <= report.Segments; n++ {
		rc, _, err := objects.Get(context.Background(), audit.SegmentKey(n))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		found = found || bytes.Contains(b, []byte(`"request_id":"answered-then-killed"`))
	}
	if !found {
		t.Errorf("the record of the answered request is not in the sealed trail (%d records)", report.Records)
	}
}

// TestDemoExchangeWithSimulatedProvince: in demo mode the hub starts the
// province simulator in process, the demo license's event reaches it as a
// signed envelope that verifies, and the next steps say how to follow the
// exchange. The simulator stops with the hub.
func TestDemoExchangeWithSimulatedProvince(t *testing.T) {
	bin := buildHub(t)
	dataDir := t.TempDir()
	configs, err := filepath.Abs(filepath.Join("..", "..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR="+dataDir,
		"HUB_AUTH_MEMBERS_FILE="+filepath.Join(configs, "members.yaml"), "HUB_CATALOG_DIR="+filepath.Join(configs, "catalog"), "HUB_AUTHORITIES_FILE="+filepath.Join(configs, "authorities.yaml"),
		"HUB_LOOKUP_MATTERS_FILE="+filepath.Join(configs, "matters.yaml"), "HUB_AUDIT_JOURNAL_DIR="+filepath.Join(dataDir, "audit"),
		"HUB_SIGNING_KEYS_DIR="+filepath.Join(dataDir, "keys"), "HUB_CONVERSION_MAPPINGS_DIR="+filepath.Join(configs, "conversion"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	steps := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stderrPipe) // until the hub exits
		steps <- string(b)
	}()
	addr, logs := waitListening(t, stdout)
	go io.Copy(io.Discard, stdout)
	if !strings.Contains(logs, "DEMO: the provincial platform is simulated") {
		t.Errorf("the simulated province is not announced:\n%s", logs)
	}
	var simURL string
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "DEMO: the provincial platform is simulated" {
			simURL, _ = rec["url"].(string)
		}
	}
	if simURL == "" {
		t.Fatalf("no simulator URL in the logs:\n%s", logs)
	}
	for _, f := range []string{filepath.Join(dataDir, "demo", "province-keys.json"), filepath.Join(dataDir, "demo", "province-keys", signing.KeyringFile)} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("province key: %v", err)
		}
	}

	client := &http.Client{Timeout: 5 * time.Second}
	var stats struct {
		Applied int64 `json:"applied"`
		Invalid int64 `json:"invalid"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(simURL + "/_sim/stats")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&stats)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if stats.Applied >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if stats.Applied < 1 || stats.Invalid != 0 {
		t.Errorf("simulator stats %+v: want the demo license's event applied, no envelope refused", stats)
	}
	resp, err := client.Get(simURL + "/v1/reconcile?date=" + time.Now().UTC().Format(time.DateOnly) + "&ids=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "20230000403") {
		t.Errorf("the province has not the demo license's event: %s", b)
	}
	client.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	out := <-steps
	for _, want := range []string{
		"curl -s " + simURL + "/_sim/stats",
		"HUB_EXCHANGE_PROVINCE_URL=" + simURL + " go run ./cmd/hubctl exchange reconcile --date ",
		"HUBCTL_APP_ID=" + demoProvinceApp,
		"hubcurl GET '/v1/exchange/changes",
		"go run ./cmd/province-sim push -hub http://" + addr + " -app-id " + demoProvinceApp,
		"-keys-dir " + filepath.Join(dataDir, "demo", "province-keys"),
		"hubcurl GET /v1/licenses/1.2.156.3005.2.",
		"Stock-license conversion", // the existing steps stay
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the next steps do not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "%!") {
		t.Errorf("a formatting mistake in the steps:\n%s", out)
	}
	if _, err := http.Get(simURL + "/_sim/stats"); err == nil {
		t.Errorf("the simulator still answers after the hub stopped")
	}
}
