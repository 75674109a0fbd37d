package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/minio"
)

// The acceptance test of issue 14: nothing answered is lost when Redis is
// lost. Two hub processes (the real binary) share the suite's MinIO (a
// fresh bucket) and a redis-server of the test's own, started as the
// test command starts the suite's (no persistence), so that the test can
// kill -9 it and start it again, empty, on the same port. The provincial
// platform is simulated in the test process (exchange/provsim); both hubs
// deliver to it.
//
// The workload: concurrent signed, consented, audited lookups (the
// approval system, by holder, for a matter) and pushes (the issuing
// department, each with an Idempotency-Key) against both hubs. After
// killAt answered 2xx, a signed lookup is captured (sent once: 200, and
// resent: 401), Redis is killed -9; once killedFailures requests have
// failed it is restarted empty; the workload continues for durAfterRestart
// more answered 2xx; then both hubs are stopped with SIGTERM (their final seal).
//
// The acceptance:
//   - every request answered 2xx has its audit record (by its request ID)
//     in the sealed trail, which verifies (audit.Verify): counted exactly;
//   - the request captured before the kill and resent after the restart is
//     refused (401 AUTH_REPLAY or AUTH_STALE: a request the hub cannot
//     prove fresh);
//   - the province received no more duplicate events than the documented
//     bound, exchange.checkpoint_events (durCheckpointEvents here): the
//     events a leader may have in flight beyond its last durable delivery
//     checkpoint (issue 14 point 4: "at most the events since the last
//     durable checkpoint, never the whole outbox").
//
// Every step is taken at a count (answers, failures, a checkpoint that
// exists), never after a duration; durations only bound the waits.
const (
	durKillAt         = 120 // answered 2xx before the kill
	durAfterRestart   = 120 // answered 2xx after the restart
	durKilledFailures = 4   // requests answered non-2xx (Redis gone) before the restart
	durWorkers        = 6
	// durCheckpointEvents is the hubs' exchange.checkpoint_events, the
	// documented bound of what a Redis loss re-delivers; small, so that
	// the workload crosses it many times.
	durCheckpointEvents = 10
	durMatter           = "330100-000-XK-00123" // configs/matters.yaml, granted to scjg-approval
	durHolder           = "91350100M000100Y43"  // the demo license's holder (seedDemo)
)

func TestRedisLossLosesNothingAnswered(t *testing.T) {
	m := testenv.RequireMinIO(t)
	rds := testenv.StartRedis(t)
	bucket := m.Bucket(t)
	bin := buildHub(t)
	root := testenv.RepoRoot(t)

	// One keyring for both hubs, made before either starts (demo mode
	// then has nothing to generate): the demo authorities and the hub's.
	keysDir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	for _, a := range []string{demoAuthority, demoFoodAuthority, config.Default().Signing.HubAuthority} {
		if _, err := signing.Generate(keysDir, a, now.Add(-time.Minute), now.AddDate(1, 0, 0), nil); err != nil {
			t.Fatal(err)
		}
	}
	ring, err := signing.OpenKeyring(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	sim := provsim.New(provsim.Config{HubKeys: ring})
	province := httptest.NewServer(sim)
	defer province.Close()

	env := []string{
		"HUB_MINIO_ENDPOINT=http://" + m.Endpoint, "HUB_MINIO_ACCESS_KEY=" + m.AccessKey,
		"HUB_MINIO_SECRET_KEY=" + m.SecretKey, "HUB_MINIO_BUCKET=" + bucket,
		"HUB_REDIS_URL=" + rds.URL(), "HUB_REDIS_TIMEOUT=1s",
		"HUB_SIGNING_KEYS_DIR=" + keysDir, "HUB_AUTH_MEMBERS_FILE=" + writeDurabilityMembers(t),
		"HUB_EXCHANGE_ENABLED=true", "HUB_EXCHANGE_PROVINCE_URL=" + province.URL, "HUB_EXCHANGE_LEASE_TTL=3s",
		"HUB_EXCHANGE_CHECKPOINT_EVENTS=" + strconv.Itoa(durCheckpointEvents),
		// Nothing is sealed while the hubs run: every record answered before
		// the kill is then acknowledged and not yet sealed when Redis dies
		// (a count, not a race with the sealer); SIGTERM seals at the end.
		"HUB_AUDIT_SEAL_INTERVAL=1h", "HUB_SERVER_SHUTDOWN_TIMEOUT=20s",
	}
	a := startFleetHub(t, bin, root, "a", env)
	b := startFleetHub(t, bin, root, "b", env) // after a: the demo license is seeded once, the other start finds it
	hubs := []*fleetHub{a, b}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer hc.CloseIdleConnections()
	w := &durWorkload{t: t, hc: hc, hubs: hubs}

	// The applicant's consent, recorded through hub a.
	st, body, _ := w.do("citizen-app", a, "POST", "/v1/consents", nil, jsonBody(t, map[string]any{
		"holder_code": durHolder, "holder_code_type": ident.HolderCreditCode, "matter": durMatter, "app": "scjg-approval",
		"until": time.Now().Add(2 * time.Hour).Format(time.RFC3339)}), nil, "consent")
	if st != http.StatusCreated {
		t.Fatalf("consent: %d %s", st, body)
	}
	var consent struct{ Token string }
	if err := json.Unmarshal(body, &consent); err != nil || consent.Token == "" {
		t.Fatalf("consent answer: %v %s", err, body)
	}
	w.consent = consent.Token
	push, err := os.ReadFile(filepath.Join(a.dataDir, "demo", "push-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	w.push = push

	// The workload runs in the background through every phase.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range durWorkers {
		wg.Add(1)
		go func() { defer wg.Done(); w.work(i, stop) }()
	}
	stopWorkers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkers()

	objects, err := minio.Open(context.Background(), minio.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey,
		SecretKey: m.SecretKey, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer objects.Close()

	// Phase 1: killAt answered, and a delivery checkpoint to bound the
	// re-deliveries by.
	w.waitOK(t, durKillAt, "before the kill")
	waitFor(t, "a delivery checkpoint ("+exchange.CursorObject+")", func() bool {
		_, err := objects.Head(context.Background(), exchange.CursorObject)
		return err == nil
	})

	// The captured request: answered once, refused when resent.
	captured := w.capture("scjg-approval", b, "/v1/holders/"+durHolder+"/licenses", url.Values{"matter": {durMatter}})
	first, _ := w.resend(captured)
	again, _ := w.resend(captured)
	if first != http.StatusOK || again != http.StatusUnauthorized {
		t.Fatalf("the captured request before the kill: %d then %d, want 200 then 401", first, again)
	}

	// Phase 2: kill -9, and the bound of re-deliveries at this moment.
	unsealed := journalLength(t, rds.URL())
	if unsealed < durKillAt {
		t.Fatalf("only %d audit records are journaled and unsealed at the kill, want at least %d: the test would prove nothing", unsealed, durKillAt)
	}
	rds.Kill()
	w.phase.Store(1)
	w.waitFailed(t, durKilledFailures)

	// Phase 3: restarted empty; the captured request again; the rest of
	// the workload.
	rds.Restart()
	w.phase.Store(2)
	replayed, replayBody := w.resend(captured)
	w.waitOK(t, w.ok.Load()+durAfterRestart, "after the restart")
	stopWorkers()

	for _, h := range hubs {
		h.stop(t)
	}

	// The sealed trail verifies, and holds every request answered 2xx.
	report, err := audit.Verify(context.Background(), objects, ring)
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	// Counted per request ID: the captured request has one ID for all its
	// sends, and each send answered 2xx needs its own record (which of its
	// sends a missing record is reported under is then arbitrary).
	sealed := sealedRequestIDs(t, objects, report.Segments)
	missing := map[string][]string{}
	answered := map[string]int{}
	for _, o := range w.outcomes() {
		if o.status/100 != 2 {
			continue
		}
		key := fmt.Sprintf("%s %s", durPhaseNames[o.phase], o.kind)
		answered[key]++
		if sealed[o.id] > 0 {
			sealed[o.id]--
		} else {
			missing[key] = append(missing[key], o.id)
		}
	}
	stats := sim.Stats()
	t.Logf("answered 2xx by phase and kind: %v; failed: %d; sealed: %d records in %d segments (verify ok=%v)",
		answered, w.failed.Load(), report.Records, report.Segments, report.OK)
	t.Logf("province: received %d, applied %d, duplicates %d; bound %d (exchange.checkpoint_events)",
		stats.Received, stats.Applied, stats.Duplicates, durCheckpointEvents)
	t.Logf("audit journal entries in Redis just before the kill (nothing sealed yet): %d", unsealed)
	t.Logf("captured request resent after the restart: %d %s", replayed, clipped(replayBody))

	if n := answered[durPhaseNames[0]+" push"]; n <= 2*durCheckpointEvents {
		t.Fatalf("only %d pushes before the kill: re-sending the whole outbox would stay within the bound of %d", n, durCheckpointEvents)
	}
	if !report.OK {
		t.Errorf("the sealed trail does not verify: %+v", report.Problem)
	}
	var lost []string
	total := 0
	for key, ids := range missing {
		total += len(ids)
		sort.Strings(ids)
		lost = append(lost, fmt.Sprintf("%s: %d of %d (e.g. %s)", key, len(ids), answered[key], ids[0]))
	}
	sort.Strings(lost)
	if total > 0 {
		t.Errorf("%d requests answered 2xx have no record in the sealed trail:\n  %s", total, strings.Join(lost, "\n  "))
	}
	if replayed != http.StatusUnauthorized {
		t.Errorf("the request captured before the kill was accepted again after Redis restarted empty: %d %s", replayed, clipped(replayBody))
	}
	if stats.Duplicates > durCheckpointEvents {
		t.Errorf("the province received %d duplicate events, more than exchange.checkpoint_events (%d)",
			stats.Duplicates, durCheckpointEvents)
	}
	if stats.Invalid != 0 || stats.OutOfOrder != 0 {
		t.Errorf("the province refused %d envelopes and saw %d out of order", stats.Invalid, stats.OutOfOrder)
	}
}

// durPhaseNames name the phases a request was sent in.
var durPhaseNames = [...]string{"before the kill", "Redis down or restarting", "after the restart"}

// fleetHub is one hub process of the fleet.
type fleetHub struct {
	name    string
	base    string
	dataDir string
	cmd     *exec.Cmd
	logs    string // its stdout and stderr
	done    chan struct{}
}

// startFleetHub starts the hub binary from the repository root (the
// shipped configs, demo mode) with env on a data dir of its own.
func startFleetHub(t *testing.T, bin, root, name string, env []string) *fleetHub {
	t.Helper()
	dir := t.TempDir()
	h := &fleetHub{name: name, dataDir: filepath.Join(dir, "data"), logs: filepath.Join(dir, "hub.log"), done: make(chan struct{})}
	cmd := exec.Command(bin)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "HUB_SERVER_ADDR=127.0.0.1:0", "HUB_DATA_DIR="+h.dataDir,
		"HUB_AUDIT_JOURNAL_DIR="+filepath.Join(h.dataDir, "audit")), env...)
	logFile, err := os.Create(h.logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.cmd = cmd
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-h.done
		logFile.Close()
		if t.Failed() {
			t.Logf("hub %s log (last lines):\n%s", name, tail(h.logs, 15))
		}
	})
	addr, logs := waitListening(t, stdout)
	logFile.WriteString(logs)
	go func() {
		io.Copy(logFile, stdout)
		cmd.Wait()
		close(h.done)
	}()
	h.base = "http://" + addr
	return h
}

// stop sends SIGTERM and waits for a clean exit.
func (h *fleetHub) stop(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("hub %s: %v", h.name, err)
	}
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("hub %s did not stop within 60s of SIGTERM", h.name)
	}
	if code := h.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("hub %s exited %d after SIGTERM:\n%s", h.name, code, tail(h.logs, 30))
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// durOutcome is one request of the workload and how it was answered.
type durOutcome struct {
	id     string // X-Request-Id
	kind   string // lookup, push, consent, capture
	phase  int32
	status int // 0: no answer (transport error)
}

// durWorkload sends the signed requests and keeps every outcome.
type durWorkload struct {
	t       *testing.T
	hc      *http.Client
	hubs    []*fleetHub
	consent string // the X-Hub-Consent token
	push    []byte // the demo's push request (a JSON object), renumbered per push

	seq    atomic.Int64
	phase  atomic.Int32
	ok     atomic.Int64 // answered 2xx
	failed atomic.Int64 // answered otherwise (or not at all) since the kill
	mu     sync.Mutex
	all    []durOutcome
}

func (w *durWorkload) outcomes() []durOutcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]durOutcome(nil), w.all...)
}

// work sends requests until stop: two lookups for each push, alternating
// hubs.
func (w *durWorkload) work(worker int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		h := w.hubs[(worker+i)%len(w.hubs)]
		if i%3 == 2 {
			n := w.seq.Add(1)
			var req map[string]any
			if err := json.Unmarshal(w.push, &req); err != nil {
				panic(err)
			}
			req["number"] = fmt.Sprintf("2023%07d", 1000000+n)
			body, _ := json.Marshal(req)
			w.do("scjg-issuer", h, "POST", "/v1/licenses", nil, body,
				http.Header{"Idempotency-Key": {fmt.Sprintf("durability-push-%d", n)}}, "push")
			continue
		}
		w.do("scjg-approval", h, "GET", "/v1/holders/"+durHolder+"/licenses", url.Values{"matter": {durMatter}}, nil,
			http.Header{api.HeaderConsent: {w.consent}}, "lookup")
	}
}

// do sends one signed request as app and records its outcome.
func (w *durWorkload) do(app string, h *fleetHub, method, path string, query url.Values, body []byte, hdr http.Header, kind string) (int, []byte, string) {
	req := w.signed(app, h, method, path, query, body, hdr)
	id := req.Header.Get("X-Request-Id")
	phase := w.phase.Load()
	status, b := 0, []byte(nil)
	if resp, err := w.hc.Do(req); err == nil {
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	w.record(durOutcome{id: id, kind: kind, phase: phase, status: status})
	return status, b, id
}

func (w *durWorkload) record(o durOutcome) {
	w.mu.Lock()
	w.all = append(w.all, o)
	w.mu.Unlock()
	if o.status/100 == 2 {
		w.ok.Add(1)
	} else if o.phase > 0 {
		w.failed.Add(1)
	}
}

// signed builds a request signed now as app, with a request ID of its own.
func (w *durWorkload) signed(app string, h *fleetHub, method, path string, query url.Values, body []byte, hdr http.Header) *http.Request {
	u := h.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("X-Request-Id", fmt.Sprintf("dur-%s-%06d", app, w.seq.Add(1)))
	if err := client.SignRequest(req, body, client.Credentials{AppID: app, Secret: auth.DemoSecret(app)}, time.Now()); err != nil {
		panic(err)
	}
	return req
}

// capturedRequest is a signed request kept to be sent again, byte for
// byte (headers, signature, nonce and timestamp included).
type capturedRequest struct {
	method, url string
	header      http.Header
	body        []byte
}

func (w *durWorkload) capture(app string, h *fleetHub, path string, query url.Values) capturedRequest {
	req := w.signed(app, h, "GET", path, query, nil, http.Header{api.HeaderConsent: {w.consent}})
	return capturedRequest{method: req.Method, url: req.URL.String(), header: req.Header.Clone()}
}

// resend sends the captured request again; a 2xx counts as answered (its
// record must be in the trail like any other).
func (w *durWorkload) resend(c capturedRequest) (int, []byte) {
	req, err := http.NewRequest(c.method, c.url, bytes.NewReader(c.body))
	if err != nil {
		panic(err)
	}
	req.Header = c.header.Clone()
	status, b := 0, []byte(nil)
	if resp, err := w.hc.Do(req); err == nil {
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	if status/100 == 2 {
		w.record(durOutcome{id: c.header.Get("X-Request-Id"), kind: "capture", phase: w.phase.Load(), status: status})
	}
	return status, b
}

// waitOK waits until n requests have been answered 2xx.
func (w *durWorkload) waitOK(t *testing.T, n int64, what string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d requests answered 2xx %s", n, what), func() bool { return w.ok.Load() >= n })
}

// waitFailed waits until n requests have failed since the kill.
func (w *durWorkload) waitFailed(t *testing.T, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d requests failing with Redis down", n), func() bool { return w.failed.Load() >= n })
}

// waitFor polls cond; the bound only keeps a broken hub from hanging the
// test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sealedRequestIDs reads segments 1..n and counts the records of each
// request ID.
func sealedRequestIDs(t *testing.T, objects licensehub.ObjectStore, n int64) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for i := int64(1); i <= n; i++ {
		rc, _, err := objects.Get(context.Background(), audit.SegmentKey(i))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var line struct {
				Record *struct {
					RequestID string `json:"request_id"`
				} `json:"record"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Record != nil && line.Record.RequestID != "" {
				ids[line.Record.RequestID]++
			}
		}
		err = sc.Err()
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// writeDurabilityMembers writes a member registry for the workload: the
// shipped demo members it uses, with rate limits that never throttle it
// (a 429 would only slow the test down).
func writeDurabilityMembers(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "members.yaml")
	yaml := `members:
  - app_id: scjg-issuer
    name: 市场监管发证系统
    department: 湖南省市场监督管理局
    roles: [issuing_department]
    secret: demo:scjg-issuer
    grants:
      - operations: [license.create, license.change, license.read]
        license_types: ["11100000000013338W011"]
        authorities: ["11430000006122244L"]
    rate_limit: {requests: 100000, per: 1s}
  - app_id: scjg-approval
    name: 市场监管审批系统
    department: 湖南省市场监督管理局
    roles: [approval_system]
    secret: demo:scjg-approval
    grants:
      - operations: [license.read, license.lookup]
        license_types: ["11100000000013338W011"]
        matters: ["330100-000-XK-00123"]
    rate_limit: {requests: 100000, per: 1s}
  - app_id: citizen-app
    name: 市民服务App
    department: 市大数据中心
    roles: [citizen_app]
    secret: demo:citizen-app
    grants:
      - operations: [consent.create, consent.revoke, usage.read, license.read]
    rate_limit: {requests: 100000, per: 1s}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// journalLength is the length of the hubs' audit journal stream in Redis
// (records journaled and not yet sealed; -1 when it cannot be read).
func journalLength(t *testing.T, redisURL string) int64 {
	opt, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.XLen(ctx, "lh:"+auditJournalKey).Result()
	if err != nil {
		return -1
	}
	return n
}
