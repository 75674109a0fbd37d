package provsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/signing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hubAuthority = "11100000000013338W"

var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func keyring(t testing.TB, authority string) *signing.Keyring { return testkeys.Fixed(t, authority) }

func seal(t testing.TB, ring *signing.Keyring, ev exchange.Event) []byte {
	t.Helper()
	authority := ring.Keys()[0].Authority
	if ev.Sender == "" {
		ev.Sender = authority
	}
	s, err := ring.SignerFor(authority, t0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := exchange.Seal(context.Background(), s, &ev, t0)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type fixture struct {
	ring *signing.Keyring
	sim  *provsim.Server
	ts   *httptest.Server
	hc   *http.Client
}

func newFixture(t *testing.T, k provsim.Knobs) *fixture {
	t.Helper()
	ring := keyring(t, hubAuthority)
	b := ring.Export()
	sim := provsim.New(provsim.Config{HubKeys: b, Seed: 7, Knobs: k})
	ts := httptest.NewServer(sim)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		sim.Close()
		ts.Close()
	})
	return &fixture{ring, sim, ts, hc}
}

func (f *fixture) post(t *testing.T, path string, body []byte) (int, map[string]any, error) {
	t.Helper()
	resp, err := f.hc.Post(f.ts.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
		t.Errorf("429 without Retry-After: 1")
	}
	return resp.StatusCode, m, nil
}

func (f *fixture) get(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := f.hc.Get(f.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

func TestPostEvents(t *testing.T) {
	f := newFixture(t, provsim.Knobs{})
	other := keyring(t, hubAuthority) // same authority, another key: not in the bundle
	lic := "1.2.156.3005.2.11100000000013338W011.11100000000013338W.1.001.X"
	good := seal(t, f.ring, exchange.Event{ID: lic + "/new", License: lic, Op: "new", Time: "2026-11-26T08:00:00Z"})
	tampered := bytes.Replace(good, []byte(`"new"`), []byte(`"renew"`), 1)
	for _, tc := range []struct {
		name      string
		body      []byte
		status    int
		code      string
		applied   bool
		duplicate bool
	}{
		{"first", good, 200, "", true, false},
		{"again", good, 200, "", false, true},
		{"another key", seal(t, other, exchange.Event{ID: lic + "/suspend/1", License: lic, Seq: 1, Op: "suspend", Time: "2026-11-26T08:00:00Z"}), 400, provsim.CodeSignatureInvalid, false, false},
		{"tampered", tampered, 400, provsim.CodeSignatureInvalid, false, false},
		{"wrong sender", seal(t, f.ring, exchange.Event{Sender: "91350100M000100Y43", ID: "x/new", Op: "new"}), 400, provsim.CodeSignatureInvalid, false, false},
		{"not an envelope", []byte(`{"hello":1}`), 400, provsim.CodeMalformed, false, false},
		{"status", seal(t, f.ring, exchange.Event{ID: lic + "/suspend/1", License: lic, Seq: 1, Op: "suspend", Time: "2026-11-26T09:00:00Z"}), 200, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m, err := f.post(t, "/v1/events", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Fatalf("status %d %v, want %d", status, m, tc.status)
			}
			if tc.code != "" && m["code"] != tc.code {
				t.Errorf("code %v, want %s", m["code"], tc.code)
			}
			if tc.status == 200 && (m["applied"] != tc.applied || (m["duplicate"] == true) != tc.duplicate) {
				t.Errorf("answer %v, want applied %v duplicate %v", m, tc.applied, tc.duplicate)
			}
		})
	}
	st := f.sim.Stats()
	if st.Received != 7 || st.Applied != 2 || st.Duplicates != 1 || st.Invalid != 4 || st.Licenses != 1 || st.OutOfOrder != 0 {
		t.Errorf("stats %+v", st)
	}
	if got := f.sim.Order(lic); strings.Join(got, ",") != lic+"/new,"+lic+"/suspend/1" {
		t.Errorf("order %v", got)
	}
}

func TestReconcile(t *testing.T) {
	f := newFixture(t, provsim.Knobs{})
	evs := []exchange.Event{
		{ID: "b/new", License: "b", Op: "new", Time: "2026-11-26T23:59:59Z"},
		{ID: "a/new", License: "a", Op: "new", Time: "2026-11-26T00:00:00Z"},
		{ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend", Time: "2026-11-27T00:00:00Z"},
	}
	for _, ev := range evs {
		if status, m, err := f.post(t, "/v1/events", seal(t, f.ring, ev)); err != nil || status != 200 {
			t.Fatalf("%s: %d %v %v", ev.ID, status, m, err)
		}
	}
	for _, tc := range []struct {
		query string
		ids   []string
	}{
		{"date=2026-11-26&ids=1", []string{"a/new", "b/new"}},
		{"date=2026-11-27&ids=1", []string{"a/suspend/1"}},
		{"date=2026-11-25&ids=1", []string{}},
		{"date=2026-11-26", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var rec struct {
				Date     string   `json:"date"`
				Count    int      `json:"count"`
				Digest   string   `json:"digest"`
				EventIDs []string `json:"event_ids"`
			}
			if st := f.get(t, "/v1/reconcile?"+tc.query, &rec); st != 200 {
				t.Fatalf("status %d", st)
			}
			date := strings.TrimPrefix(strings.Split(tc.query, "&")[0], "date=")
			want := f.sim.Reconcile(date)
			if rec.Date != date || rec.Count != want.Count || rec.Digest != want.Digest {
				t.Errorf("got %+v, want %+v", rec, want)
			}
			if tc.ids != nil && strings.Join(rec.EventIDs, ",") != strings.Join(tc.ids, ",") {
				t.Errorf("ids %v, want %v", rec.EventIDs, tc.ids)
			}
			if tc.ids == nil && rec.EventIDs != nil {
				t.Errorf("ids %v without ids=1", rec.EventIDs)
			}
			if tc.ids != nil && rec.Digest != provsim.Digest(tc.ids) {
				t.Errorf("digest %s, want %s", rec.Digest, provsim.Digest(tc.ids))
			}
		})
	}
	var p map[string]any
	if st := f.get(t, "/v1/reconcile?date=26-11-2026", &p); st != 400 {
		t.Errorf("bad date: %d", st)
	}
}

func TestDigest(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		same bool
	}{
		{[]string{"x", "y"}, []string{"y", "x"}, true},
		{[]string{"x", "y", "x"}, []string{"x", "y"}, true},
		{[]string{"x"}, []string{"x", "y"}, false},
		{nil, []string{}, true},
		{[]string{"x\ny"}, []string{"x", "y"}, true}, // the joining is the definition
		{[]string{"xy"}, []string{"x", "y"}, false},
	} {
		if got := provsim.Digest(tc.a) == provsim.Digest(tc.b); got != tc.same {
			t.Errorf("Digest(%q) == Digest(%q): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
	// SM3("") — the digest of an empty day.
	if got := provsim.Digest(nil); got != "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b" {
		t.Errorf("empty digest %s", got)
	}
}

func TestKnobs(t *testing.T) {
	lic := "L"
	for _, tc := range []struct {
		name    string
		knobs   provsim.Knobs
		status  int  // 0: the connection is closed
		applied bool // the event is applied afterwards
		check   func(st provsim.Stats) bool
	}{
		{"none", provsim.Knobs{}, 200, true, func(st provsim.Stats) bool { return st.Applied == 1 }},
		{"error", provsim.Knobs{ErrorRate: 1}, 503, false, func(st provsim.Stats) bool { return st.Errors == 1 }},
		{"throttle", provsim.Knobs{ThrottleRate: 1}, 429, false, func(st provsim.Stats) bool { return st.Throttled == 1 }},
		{"drop", provsim.Knobs{DropRate: 1}, 0, false, func(st provsim.Stats) bool { return st.Dropped == 1 }},
		{"down", provsim.Knobs{DownFrom: time.Now().Add(-time.Minute), DownUntil: time.Now().Add(time.Hour)}, 0, false,
			func(st provsim.Stats) bool { return st.Refused == 1 && st.Received == 0 }},
		{"down over", provsim.Knobs{DownFrom: time.Now().Add(-time.Hour), DownUntil: time.Now().Add(-time.Minute)}, 200, true,
			func(st provsim.Stats) bool { return st.Refused == 0 }},
		{"delay", provsim.Knobs{Delay: 20 * time.Millisecond}, 200, true, func(st provsim.Stats) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.knobs)
			start := time.Now()
			status, _, err := f.post(t, "/v1/events", seal(t, f.ring, exchange.Event{ID: lic + "/new", License: lic, Op: "new"}))
			if tc.status == 0 {
				if err == nil {
					t.Fatalf("answered %d, want a closed connection", status)
				}
			} else if err != nil || status != tc.status {
				t.Fatalf("status %d err %v, want %d", status, err, tc.status)
			}
			if tc.knobs.Delay > 0 && time.Since(start) < tc.knobs.Delay {
				t.Errorf("answered after %v, before the delay", time.Since(start))
			}
			_, ok := f.sim.Event(lic + "/new")
			if tc.status != 0 && ok != tc.applied {
				t.Errorf("applied %v, want %v", ok, tc.applied)
			}
			if st := f.sim.Stats(); !tc.check(st) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestDropHalves: with drop_rate 1, about half the events are applied
// anyway (dropped after applying), deterministically per seed.
func TestDropHalves(t *testing.T) {
	run := func() provsim.Stats {
		f := newFixture(t, provsim.Knobs{DropRate: 1})
		for i := range 200 {
			id := "L" + string(rune('a'+i%26)) + "/" + string(rune('A'+i/26))
			if _, _, err := f.post(t, "/v1/events", seal(t, f.ring, exchange.Event{ID: id, License: id, Op: "new"})); err == nil {
				t.Fatal("a dropped request was answered")
			}
		}
		return f.sim.Stats()
	}
	a, b := run(), run()
	if a.Dropped != 200 || a.DroppedAfterApply != a.Applied || a.DroppedAfterApply < 70 || a.DroppedAfterApply > 130 {
		t.Errorf("stats %+v", a)
	}
	if a.Applied != b.Applied {
		t.Errorf("not deterministic: %d then %d applied", a.Applied, b.Applied)
	}
}

func TestPostKnobs(t *testing.T) {
	f := newFixture(t, provsim.Knobs{})
	for _, tc := range []struct {
		body   string
		status int
		check  func(k provsim.Knobs) bool
	}{
		{`{"drop_rate":0.3,"error_rate":0.05}`, 200, func(k provsim.Knobs) bool { return k.DropRate == 0.3 && k.ErrorRate == 0.05 }},
		{`{"delay":"5ms","jitter":"2ms"}`, 200, func(k provsim.Knobs) bool { return k.Delay == 5*time.Millisecond && k.DropRate == 0.3 }},
		{`{"drop_rate":2}`, 400, func(k provsim.Knobs) bool { return k.DropRate == 0.3 }},
		{`{"nope":1}`, 400, nil},
		{`{"delay":"fast"}`, 400, nil},
		{`{"down_after":"1h","down_for":"1h"}`, 200, func(k provsim.Knobs) bool {
			return k.DownUntil.Sub(k.DownFrom) == time.Hour && !k.Down(time.Now()) && k.Down(time.Now().Add(90*time.Minute))
		}},
		{`{"down_after":"1h"}`, 400, nil},
		{`{"down_for":"0s"}`, 200, func(k provsim.Knobs) bool { return k.DownUntil.IsZero() }},
		{`{"down_for":"1h"}`, 200, func(k provsim.Knobs) bool { return k.Down(time.Now()) }},
	} {
		t.Run(tc.body, func(t *testing.T) {
			status, _, err := f.post(t, "/_sim/knobs", []byte(tc.body))
			if err != nil || status != tc.status {
				t.Fatalf("status %d err %v, want %d", status, err, tc.status)
			}
			if tc.check != nil && !tc.check(f.sim.Knobs()) {
				t.Errorf("knobs %+v", f.sim.Knobs())
			}
		})
	}
	var k map[string]any
	if st := f.get(t, "/_sim/knobs", &k); st != 200 || k["drop_rate"] != 0.3 || k["down_until"] == nil {
		t.Errorf("GET knobs %d %v", st, k)
	}
	// Down: /v1/ refused, /_sim/ answers.
	if _, _, err := f.post(t, "/v1/events", []byte("{}")); err == nil {
		t.Error("answered while down")
	}
	var st provsim.Stats
	if f.get(t, "/_sim/stats", &st); st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestOrderTracking(t *testing.T) {
	for _, tc := range []struct {
		name      string
		events    []exchange.Event
		ooo, gaps int64
	}{
		{"in order", []exchange.Event{{ID: "a/new", License: "a", Op: "new"}, {ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend"},
			{ID: "a/restore/2", License: "a", Seq: 2, Op: "restore"}}, 0, 0},
		{"status before new", []exchange.Event{{ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend"}, {ID: "a/new", License: "a", Op: "new"}}, 1, 0},
		{"swapped", []exchange.Event{{ID: "a/new", License: "a", Op: "new"}, {ID: "a/restore/2", License: "a", Seq: 2, Op: "restore"},
			{ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend"}}, 1, 1},
		{"duplicates are not disorder", []exchange.Event{{ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend"},
			{ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend"}}, 0, 0},
		{"licenses are independent", []exchange.Event{{ID: "a/suspend/1", License: "a", Seq: 1, Op: "suspend"},
			{ID: "b/new", License: "b", Op: "new"}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := provsim.New(provsim.Config{HubKeys: signing.Bundle{}})
			defer s.Close()
			for _, ev := range tc.events {
				s.Apply(&ev)
			}
			if st := s.Stats(); st.OutOfOrder != tc.ooo || st.Gaps != tc.gaps {
				t.Errorf("out of order %d gaps %d, want %d %d", st.OutOfOrder, st.Gaps, tc.ooo, tc.gaps)
			}
		})
	}
}

// TestView: the province's view of a license is the initial status its
// license event carries (01 when none, 05 for a historic license), then
// its status changes by seq; duplicates and late events change nothing.
func TestView(t *testing.T) {
	newEv := func(initial string) exchange.Event {
		return exchange.Event{ID: "a/new", License: "a", Op: "new", InitialStatus: initial}
	}
	change := func(seq int, op, from, to string) exchange.Event {
		return exchange.Event{ID: "a/" + op + "/" + strconv.Itoa(seq), License: "a", Seq: seq, Op: op,
			Status: &exchange.StatusChange{From: from, To: to}}
	}
	for _, tc := range []struct {
		name   string
		events []exchange.Event
		status string
		seq    int
	}{
		{"new", []exchange.Event{newEv("")}, "01", 0},
		{"historic", []exchange.Event{newEv("05")}, "05", 0},
		{"historic twice", []exchange.Event{newEv("05"), newEv("05")}, "05", 0},
		{"suspended", []exchange.Event{newEv(""), change(1, "suspend", "01", "02")}, "02", 1},
		{"restored", []exchange.Event{newEv(""), change(1, "suspend", "01", "02"), change(2, "restore", "02", "01")}, "01", 2},
		{"late change", []exchange.Event{newEv(""), change(2, "restore", "02", "01"), change(1, "suspend", "01", "02")}, "01", 2},
		{"late license", []exchange.Event{change(1, "expire", "01", "05"), newEv("")}, "05", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := provsim.New(provsim.Config{HubKeys: signing.Bundle{}})
			defer s.Close()
			for _, ev := range tc.events {
				s.Apply(&ev)
			}
			v, ok := s.View("a")
			if !ok || v.Status != tc.status || v.Seq != tc.seq {
				t.Fatalf("view %+v %v, want status %s seq %d", v, ok, tc.status, tc.seq)
			}
			if _, ok := s.View("b"); ok {
				t.Fatal("a view of a license never sent")
			}
		})
	}
	// Over HTTP.
	f := newFixture(t, provsim.Knobs{})
	lic := "1.2.156.3005.2.11100000000013338W024.11100000000013338W.JY1.001.X"
	if status, m, err := f.post(t, "/v1/events", seal(t, f.ring, exchange.Event{ID: lic + "/new", License: lic, Op: "new",
		Time: "2026-11-26T08:00:00Z", InitialStatus: "05"})); err != nil || status != 200 || m["applied"] != true {
		t.Fatalf("post: %d %v %v", status, m, err)
	}
	var v provsim.View
	if code := f.get(t, "/_sim/licenses/"+lic, &v); code != 200 || v.Status != "05" || len(v.Events) != 1 {
		t.Fatalf("GET view: %d %+v", code, v)
	}
	var p map[string]any
	if code := f.get(t, "/_sim/licenses/nope", &p); code != 404 {
		t.Fatalf("GET view of an unknown license: %d %v", code, p)
	}
}

// TestKeysFromHub: without HubKeys the simulator reads the hub's
// GET /v1/keys, and answers 503 while it cannot.
func TestKeysFromHub(t *testing.T) {
	ring := keyring(t, hubAuthority)
	var mu sync.Mutex
	up := false
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up || r.URL.Path != "/v1/keys" {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": ring.Keys()})
	}))
	defer hub.Close()
	sim := provsim.New(provsim.Config{HubURL: hub.URL})
	defer sim.Close()
	ts := httptest.NewServer(sim)
	defer ts.Close()
	env := seal(t, ring, exchange.Event{ID: "a/new", License: "a", Op: "new"})
	post := func() int {
		resp, err := http.Post(ts.URL+"/v1/events", "application/json", bytes.NewReader(env))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(); st != 503 {
		t.Errorf("hub down: %d, want 503", st)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	if st := post(); st != 200 {
		t.Errorf("hub up: %d, want 200", st)
	}
	if _, err := provsim.FetchHubKeys(context.Background(), nil, hub.URL); err != nil {
		t.Error(err)
	}
	if _, err := provsim.FetchHubKeys(context.Background(), nil, ""); err == nil {
		t.Error("no URL: no error")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestPusher(t *testing.T) {
	province := keyring(t, provsim.DefaultProvinceAuthority)
	signer, err := province.SignerFor(provsim.DefaultProvinceAuthority, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bundle := province.Export()
	var mu sync.Mutex
	var got []*exchange.Event
	var apps []string
	fail := 1 // the first request fails: the pusher retries
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != provsim.InboundPath || r.Header.Get(client.HeaderSignature) == "" {
			http.Error(w, "bad", 400)
			return
		}
		if fail > 0 {
			fail--
			http.Error(w, "busy", 503)
			return
		}
		apps = append(apps, r.Header.Get(client.HeaderAppID))
		var batch struct {
			Envelopes []json.RawMessage `json:"envelopes"`
		}
		envs := []json.RawMessage{body}
		if json.Unmarshal(body, &batch) == nil && batch.Envelopes != nil {
			envs = batch.Envelopes
		}
		for _, e := range envs {
			ev, err := exchange.Open(e, bundle)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			got = append(got, ev)
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer hub.Close()
	for _, tc := range []struct {
		name  string
		cfg   provsim.PushConfig
		sent  int
		dupes bool
	}{
		{"single", provsim.PushConfig{Count: 3, Statuses: 2, Batch: 1}, 9, false},
		{"batched shuffled duplicated", provsim.PushConfig{Count: 20, Statuses: 3, Batch: 7, Shuffle: true, Duplicate: 0.5}, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			cfg := tc.cfg
			cfg.HubURL, cfg.Signer = hub.URL, signer
			cfg.Credentials = client.Credentials{AppID: "province", Secret: []byte("province-secret-123")}
			cfg.HTTP = &http.Client{Transport: &http.Transport{}}
			defer cfg.HTTP.CloseIdleConnections()
			p, err := provsim.NewPusher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Push(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantEvents := cfg.Count * (1 + cfg.Statuses)
			mu.Lock()
			defer mu.Unlock()
			if res.Events != wantEvents || res.Licenses != cfg.Count || len(got) != res.Sent || (tc.sent > 0 && res.Sent != tc.sent) {
				t.Fatalf("result %+v, hub got %d", res, len(got))
			}
			if tc.dupes != (res.Sent > res.Events) {
				t.Errorf("sent %d for %d events", res.Sent, res.Events)
			}
			// Licenses go first; each status change is signed by the province.
			seenNew := map[string]bool{}
			inOrder := true
			last := map[string]int{}
			for _, ev := range got {
				if ev.Sender != provsim.DefaultProvinceAuthority {
					t.Fatalf("sender %s", ev.Sender)
				}
				if ev.Op == "new" {
					seenNew[ev.License] = true
					if len(ev.Document) == 0 {
						t.Errorf("%s without a document", ev.ID)
					}
					continue
				}
				if !seenNew[ev.License] {
					t.Errorf("%s before its license", ev.ID)
				}
				if ev.Seq < last[ev.License] {
					inOrder = false
				}
				last[ev.License] = ev.Seq
			}
			if cfg.Shuffle == inOrder {
				t.Errorf("shuffle %v, status changes in order %v", cfg.Shuffle, inOrder)
			}
		})
	}
	for _, a := range apps {
		if a != "province" {
			t.Errorf("app %q", a)
		}
	}
	if _, err := provsim.NewPusher(provsim.PushConfig{HubURL: hub.URL}); err == nil {
		t.Error("no signer: no error")
	}
}
