package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/ident"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fixedNow = time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)

type env struct {
	t   *testing.T
	s   *Server
	ts  *httptest.Server
	cfg Config
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return &env{t: t, s: s, ts: ts, cfg: s.cfg}
}

type answer struct {
	Status     int
	RetryAfter string
	Body       []byte
	Env        struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
}

// call signs and sends a request; mod may change it before it is sent.
func (e *env) call(ctx context.Context, path, serviceID string, params url.Values, mod func(*http.Request)) (answer, error) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path+"?"+params.Encode(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	reqID := fmt.Sprintf("req-%d", time.Now().UnixNano())
	ts := strconv.FormatInt(e.cfg.Now().UnixMilli(), 10)
	sig, err := upstream.Sign(e.cfg.Algorithm, e.cfg.Secret, reqID, ts, serviceID)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set(upstream.HeaderAppKey, e.cfg.AppKey)
	req.Header.Set(upstream.HeaderRequestID, reqID)
	req.Header.Set(upstream.HeaderTimestamp, ts)
	req.Header.Set(upstream.HeaderServiceID, serviceID)
	req.Header.Set(upstream.HeaderSignature, sig)
	if mod != nil {
		mod(req)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	a.Status, a.RetryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	a.Body, err = io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	_ = json.Unmarshal(a.Body, &a.Env)
	return a, nil
}

func (e *env) ok(path, serviceID string, params url.Values) map[string]any {
	e.t.Helper()
	a, err := e.call(context.Background(), path, serviceID, params, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if a.Status != 200 || a.Env.Code != CodeOK {
		e.t.Fatalf("%s: HTTP %d %s", path, a.Status, a.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(a.Env.Data, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func idNumber(t *testing.T, first17 string) string {
	t.Helper()
	c, err := ident.ResidentIDCheck(first17)
	if err != nil {
		t.Fatal(err)
	}
	return first17 + string(c)
}

func creditCode(t *testing.T, first17 string) string {
	t.Helper()
	c, err := ident.CreditCodeCheck(first17)
	if err != nil {
		t.Fatal(err)
	}
	return first17 + string(c)
}

func v(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// firstExisting returns the first valid ID number built from prefix that
// the server knows.
func firstExisting(t *testing.T, s *Server, prefix14 string, male bool) string {
	t.Helper()
	for seq := 0; seq < 1000; seq++ {
		if (seq%2 == 1) != male {
			continue
		}
		id := idNumber(t, prefix14+fmt.Sprintf("%03d", seq))
		if s.Exists(id) {
			return id
		}
	}
	t.Fatal("no existing ID")
	return ""
}

func TestPersonDerivedFromID(t *testing.T) {
	e := newEnv(t, Config{Seed: 7})
	id := firstExisting(t, e.s, "43010419850612", true)
	d := e.ok("/ps/identity", "ps.identity", v("id_number", id, "name", "张三"))
	ry := d["ryxx"].(map[string]any)
	if ry["gmsfhm"] != id || ry["xb"] != "男" || ry["xbdm"] != "1" || ry["csrq"] != "1985-06-12" {
		t.Errorf("ryxx = %v", ry)
	}
	if !strings.HasPrefix(ry["zz"].(string), "湖南省长沙市岳麓区") {
		t.Errorf("address %q not in 湖南省长沙市岳麓区", ry["zz"])
	}
	if n := []rune(ry["xm"].(string)); len(n) < 2 || len(n) > 3 {
		t.Errorf("name %q", ry["xm"])
	}
	zj := d["zjxx"].(map[string]any)
	if zj["qfjg"] != "长沙市公安局岳麓分局" {
		t.Errorf("qfjg = %v", zj["qfjg"])
	}
	// name match
	hy := d["hyjg"].(map[string]any)
	if hy["sfzh_yz"] != true || hy["xm_yz"] != (ry["xm"] == "张三") {
		t.Errorf("hyjg = %v", hy)
	}
	d = e.ok("/ps/identity", "ps.identity", v("id_number", id, "name", ry["xm"].(string)))
	if d["hyjg"].(map[string]any)["xm_yz"] != true {
		t.Errorf("the generated name does not match itself")
	}
	female := firstExisting(t, e.s, "11010519491231", false)
	d = e.ok("/ps/identity", "ps.identity", v("id_number", female, "name", "x"))
	if d["ryxx"].(map[string]any)["xb"] != "女" {
		t.Errorf("digit 17 even should be 女: %v", d["ryxx"])
	}
}

func TestDeterminism(t *testing.T) {
	a := newEnv(t, Config{Seed: 42})
	b := newEnv(t, Config{Seed: 42})
	c := newEnv(t, Config{Seed: 43, NotFoundRate: -1})
	people, companies := a.s.SamplePeople(5), a.s.SampleCompanies(5)
	if fmt.Sprint(people) != fmt.Sprint(b.s.SamplePeople(5)) || fmt.Sprint(companies) != fmt.Sprint(b.s.SampleCompanies(5)) {
		t.Fatal("samples differ under the same seed")
	}
	differs := 0
	for _, id := range people {
		for _, ep := range [][2]string{{"/ps/identity", "ps.identity"}, {"/ps/household", "ps.household"}, {"/si/person", "si.person"}} {
			q := v("id_number", id, "name", "王五")
			x, y := a.ok(ep[0], ep[1], q), b.ok(ep[0], ep[1], q)
			if fmt.Sprint(x) != fmt.Sprint(y) {
				t.Errorf("%s %s differs under the same seed:\n%v\n%v", ep[0], id, x, y)
			}
			if fmt.Sprint(x) != fmt.Sprint(c.ok(ep[0], ep[1], q)) {
				differs++
			}
		}
	}
	for _, code := range companies {
		for _, ep := range [][3]string{{"/si/employer", "si.employer"}, {"/tax/registration", "tax.registration"},
			{"/tax/payments", "tax.payments"}, {"/tax/credit", "tax.credit"}} {
			q := v("credit_code", code, "from", "2025-01", "to", "2025-12", "year", "2025")
			x, y := a.ok(ep[0], ep[1], q), b.ok(ep[0], ep[1], q)
			if fmt.Sprint(x) != fmt.Sprint(y) {
				t.Errorf("%s %s differs under the same seed", ep[0], code)
			}
		}
	}
	if differs == 0 {
		t.Error("another seed gives the same people")
	}
}

func TestSamplesAreValidAndExist(t *testing.T) {
	for _, id := range SamplePeople(20) {
		if err := ident.ValidateResidentID(id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		if !defaultWorld().exists(id) {
			t.Errorf("%s does not exist", id)
		}
	}
	for _, code := range SampleCompanies(20) {
		if err := ident.ValidateCreditCode(code); err != nil {
			t.Errorf("%s: %v", code, err)
		}
	}
}

func TestNotFoundShareAndInvalid(t *testing.T) {
	e := newEnv(t, Config{Seed: 9})
	missing, total := 0, 0
	var missingID string
	for seq := range 2000 {
		id := idNumber(t, fmt.Sprintf("43010419900101%03d", seq%1000))
		if seq >= 1000 {
			id = idNumber(t, fmt.Sprintf("11010519800202%03d", seq%1000))
		}
		total++
		if !e.s.Exists(id) {
			missing++
			missingID = id
		}
	}
	if share := float64(missing) / float64(total); share < 0.015 || share > 0.05 {
		t.Errorf("not-found share %.3f, want about 0.03", share)
	}
	a, err := e.call(context.Background(), "/ps/household", "ps.household", v("id_number", missingID), nil)
	if err != nil || a.Status != 200 || a.Env.Code != CodeNotFound {
		t.Errorf("unknown person: %v %d %s", err, a.Status, a.Body)
	}
	for _, tc := range []struct{ path, sid string }{{"/ps/household", "ps.household"}, {"/si/person", "si.person"}} {
		for _, bad := range []string{"", "430104199001010011", "43010419900101001x", "12345"} {
			a, err := e.call(context.Background(), tc.path, tc.sid, v("id_number", bad), nil)
			if err != nil || a.Status != 200 || a.Env.Code != CodeBadParams {
				t.Errorf("%s %q: %v %d %s", tc.path, bad, err, a.Status, a.Body)
			}
		}
	}
	code := e.s.SampleCompanies(1)[0]
	for _, q := range []url.Values{
		v("credit_code", "91350100M000100Y44"),
		v("credit_code", code, "from", "2025-13", "to", "2025-12"),
		v("credit_code", code, "from", "2025-05", "to", "2025-01"),
		v("credit_code", code, "from", "2020-01", "to", "2025-01"),
	} {
		a, _ := e.call(context.Background(), "/tax/payments", "tax.payments", q, nil)
		if a.Env.Code != CodeBadParams {
			t.Errorf("payments %v: %s", q, a.Body)
		}
	}
	a, _ = e.call(context.Background(), "/tax/credit", "tax.credit", v("credit_code", code, "year", "2030"), nil)
	if a.Env.Code != CodeNotFound {
		t.Errorf("credit for a future year: %s", a.Body)
	}
}

func TestAllEndpointsAnswer(t *testing.T) {
	e := newEnv(t, Config{Seed: 3})
	id := e.s.SamplePeople(1)[0]
	code := e.s.SampleCompanies(1)[0]

	h := e.ok("/ps/household", "ps.household", v("id_number", id))
	members := h["hcy"].([]any)
	if int(h["hcysl"].(float64)) != len(members) || len(members) == 0 {
		t.Errorf("household %v", h)
	}
	for _, m := range members {
		gm := m.(map[string]any)["gmsfhm"].(string)
		if !strings.Contains(gm, "********") {
			t.Errorf("member ID not masked: %s", gm)
		}
	}
	if members[0].(map[string]any)["yhzgx"] != "户主" {
		t.Errorf("first member is not the head: %v", members[0])
	}

	p := e.ok("/si/person", "si.person", v("id_number", id))
	if st := p["cbzt"]; st != "正常参保" && st != "暂停" && st != "终止" {
		t.Errorf("cbzt %v", st)
	}
	kinds := p["cbxx"].([]any)
	if len(kinds) != 5 {
		t.Fatalf("cbxx %v", kinds)
	}
	if err := ident.ValidateCreditCode(p["dwtyshxydm"].(string)); err != nil {
		t.Errorf("employer code: %v", err)
	}
	// The employer exists in the tax system too.
	reg := e.ok("/tax/registration", "tax.registration", v("credit_code", p["dwtyshxydm"].(string)))
	if reg["nsrmc"] != p["dwmc"] {
		t.Errorf("employer %v vs taxpayer %v", p["dwmc"], reg["nsrmc"])
	}

	emp := e.ok("/si/employer", "si.employer", v("credit_code", code))
	if _, ok := emp["sfqf"].(bool); !ok || emp["cbrs"].(float64) <= 0 {
		t.Errorf("employer %v", emp)
	}
	pay := e.ok("/tax/payments", "tax.payments", v("credit_code", code, "from", "2025-01", "to", "2025-12"))
	var sum int64
	for _, it := range pay["jkmx"].([]any) {
		s := it.(map[string]any)["sjje"].(string)
		yuan, fen, ok := strings.Cut(s, ".")
		if !ok || len(fen) != 2 {
			t.Fatalf("amount %q", s)
		}
		y, _ := strconv.ParseInt(yuan, 10, 64)
		f, _ := strconv.ParseInt(fen, 10, 64)
		sum += y*100 + f
	}
	if got := pay["hjje"]; got != fmt.Sprintf("%d.%02d", sum/100, sum%100) {
		t.Errorf("total %v, sum of items %d fen", got, sum)
	}
	if int(pay["bs"].(float64)) != len(pay["jkmx"].([]any)) {
		t.Errorf("bs %v", pay["bs"])
	}
	cr := e.ok("/tax/credit", "tax.credit", v("credit_code", code, "year", "2025"))
	if g := cr["xydj"].(string); !strings.Contains("ABMCD", g) || len(g) != 1 {
		t.Errorf("grade %q", g)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, Config{Seed: 1})
	id := e.s.SamplePeople(1)[0]
	q := v("id_number", id)
	for name, mod := range map[string]func(*http.Request){
		"bad signature": func(r *http.Request) { r.Header.Set(upstream.HeaderSignature, strings.Repeat("0", 64)) },
		"upper-case hex": func(r *http.Request) {
			r.Header.Set(upstream.HeaderSignature, strings.ToUpper(r.Header.Get(upstream.HeaderSignature)))
		},
		"unknown app key":   func(r *http.Request) { r.Header.Set(upstream.HeaderAppKey, "someone-else") },
		"missing signature": func(r *http.Request) { r.Header.Del(upstream.HeaderSignature) },
		"other request id":  func(r *http.Request) { r.Header.Set(upstream.HeaderRequestID, "other") },
		"stale timestamp": func(r *http.Request) {
			ts := strconv.FormatInt(fixedNow.Add(-6*time.Minute).UnixMilli(), 10)
			sig, _ := upstream.Sign("sm3", []byte(DefaultSecret), "rid", ts, "ps.household")
			r.Header.Set(upstream.HeaderRequestID, "rid")
			r.Header.Set(upstream.HeaderTimestamp, ts)
			r.Header.Set(upstream.HeaderSignature, sig)
		},
		"seconds not ms": func(r *http.Request) {
			ts := strconv.FormatInt(fixedNow.Unix(), 10)
			sig, _ := upstream.Sign("sm3", []byte(DefaultSecret), "rid", ts, "ps.household")
			r.Header.Set(upstream.HeaderRequestID, "rid")
			r.Header.Set(upstream.HeaderTimestamp, ts)
			r.Header.Set(upstream.HeaderSignature, sig)
		},
		"sha256 instead of sm3": func(r *http.Request) {
			sig, _ := upstream.Sign("sha256", []byte(DefaultSecret), r.Header.Get(upstream.HeaderRequestID),
				r.Header.Get(upstream.HeaderTimestamp), "ps.household")
			r.Header.Set(upstream.HeaderSignature, sig)
		},
	} {
		a, err := e.call(context.Background(), "/ps/household", "ps.household", q, mod)
		if err != nil || a.Status != http.StatusUnauthorized || a.Env.Code != CodeAuthFailed {
			t.Errorf("%s: %v HTTP %d %s", name, err, a.Status, a.Body)
		}
	}
	// Signed for another service ID.
	a, _ := e.call(context.Background(), "/ps/household", "ps.identity", q, nil)
	if a.Status != http.StatusUnauthorized || a.Env.Code != CodeAuthFailed {
		t.Errorf("wrong service ID: HTTP %d %s", a.Status, a.Body)
	}
	// A timestamp 4 minutes off is fine.
	a, _ = e.call(context.Background(), "/ps/household", "ps.household", q, func(r *http.Request) {
		ts := strconv.FormatInt(fixedNow.Add(4*time.Minute).UnixMilli(), 10)
		sig, _ := upstream.Sign("sm3", []byte(DefaultSecret), "rid", ts, "ps.household")
		r.Header.Set(upstream.HeaderRequestID, "rid")
		r.Header.Set(upstream.HeaderTimestamp, ts)
		r.Header.Set(upstream.HeaderSignature, sig)
	})
	if a.Env.Code != CodeOK {
		t.Errorf("4 min skew: %s", a.Body)
	}
	if got := e.s.Stats().Outcomes[OutcomeAuthFailed]; got != 9 {
		t.Errorf("auth failures counted %d, want 9", got)
	}

	// SHA-256 configured.
	e2 := newEnv(t, Config{Seed: 1, Algorithm: "sha256", AppKey: "k2", Secret: []byte("s2")})
	e2.ok("/ps/household", "ps.household", q)
}

func TestKnobLatency(t *testing.T) {
	e := newEnv(t, Config{Seed: 1, Knobs: Knobs{Latency: 80 * time.Millisecond, Jitter: 20 * time.Millisecond}})
	id := e.s.SamplePeople(1)[0]
	start := time.Now()
	e.ok("/si/person", "si.person", v("id_number", id))
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("answered in %v, want ≥ 80ms", d)
	}
}

func TestKnobErrorAndRateLimitAndDeterminism(t *testing.T) {
	e := newEnv(t, Config{Seed: 5, Knobs: Knobs{ErrorRate: 1, RetryAfter: 2}})
	id := e.s.SamplePeople(1)[0]
	q := v("id_number", id)
	a, _ := e.call(context.Background(), "/si/person", "si.person", q, nil)
	if a.Status != 503 || a.RetryAfter != "2" || a.Env.Code != CodeUnavailable {
		t.Errorf("error_rate 1: HTTP %d Retry-After %q %s", a.Status, a.RetryAfter, a.Body)
	}
	_ = e.s.SetKnobs(Knobs{RateLimitedRate: 1, RetryAfter: 7})
	a, _ = e.call(context.Background(), "/si/person", "si.person", q, nil)
	if a.Status != 429 || a.RetryAfter != "7" || a.Env.Code != CodeRateLimited {
		t.Errorf("rate_limited_rate 1: HTTP %d Retry-After %q %s", a.Status, a.RetryAfter, a.Body)
	}

	// Same seed, same sequence of outcomes; a share near the rate.
	seq := func() string {
		x := newEnv(t, Config{Seed: 11, Knobs: Knobs{ErrorRate: 0.3}})
		var b strings.Builder
		for range 200 {
			a, _ := x.call(context.Background(), "/si/person", "si.person", q, nil)
			b.WriteString(strconv.Itoa(a.Status / 100))
		}
		return b.String()
	}
	s1, s2 := seq(), seq()
	if s1 != s2 {
		t.Errorf("outcome sequences differ under the same seed")
	}
	if n := strings.Count(s1, "5"); n < 40 || n > 80 {
		t.Errorf("%d of 200 answered 503 at error_rate 0.3", n)
	}
}

func TestKnobHang(t *testing.T) {
	e := newEnv(t, Config{Seed: 1, Knobs: Knobs{HangRate: 1}})
	id := e.s.SamplePeople(1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.call(ctx, "/si/person", "si.person", v("id_number", id), nil)
	if err == nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("hang answered: %v after %v", err, time.Since(start))
	}
	if got := e.s.Stats().Outcomes[OutcomeHang]; got != 1 {
		t.Errorf("hangs counted %d", got)
	}
	// Close releases a hanging request.
	done := make(chan error, 1)
	go func() {
		_, err := e.call(context.Background(), "/si/person", "si.person", v("id_number", id), nil)
		done <- err
	}()
	for e.s.Stats().Outcomes[OutcomeHang] < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	e.s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a released hang answered normally")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hanging request")
	}
}

func TestKnobMalformed(t *testing.T) {
	e := newEnv(t, Config{Seed: 1})
	id := e.s.SamplePeople(1)[0]
	for _, kind := range []string{"truncated", "html", "partial"} {
		if err := e.s.SetKnobs(Knobs{MalformedRate: 1, Malformed: kind}); err != nil {
			t.Fatal(err)
		}
		a, err := e.call(context.Background(), "/ps/household", "ps.household", v("id_number", id), nil)
		if err != nil || a.Status != 200 {
			t.Fatalf("%s: %v %d", kind, err, a.Status)
		}
		_, perr := upstream.ParseEnvelope(a.Body)
		switch kind {
		case "partial":
			if perr != nil || bytes.Contains(a.Body, []byte("hcy")) {
				t.Errorf("partial: %v %s", perr, a.Body)
			}
		default:
			if perr == nil {
				t.Errorf("%s: the body parses as an envelope: %s", kind, a.Body)
			}
		}
	}
	if got := e.s.Stats().Outcomes[OutcomeMalformed]; got != 3 {
		t.Errorf("malformed counted %d", got)
	}
}

func TestKnobDownAndAdminEndpoints(t *testing.T) {
	e := newEnv(t, Config{Seed: 1})
	id := e.s.SamplePeople(1)[0]
	post := func(body string) *http.Response {
		resp, err := e.ts.Client().Post(e.ts.URL+"/_sim/knobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post(`{"down":true}`); r.StatusCode != 200 {
		t.Fatalf("POST knobs: %d", r.StatusCode)
	}
	if _, err := e.call(context.Background(), "/ps/household", "ps.household", v("id_number", id), nil); err == nil {
		t.Error("down: got an answer")
	}
	if r := post(`{"down":false,"error_rate":1,"retry_after":3,"latency":"5ms"}`); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	k := e.s.Knobs()
	if k.Down || k.ErrorRate != 1 || k.RetryAfter != 3 || k.Latency != 5*time.Millisecond {
		t.Errorf("knobs %+v", k)
	}
	a, _ := e.call(context.Background(), "/ps/household", "ps.household", v("id_number", id), nil)
	if a.Status != 503 {
		t.Errorf("after POST error_rate 1: %d", a.Status)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"latency":"soon"}`, `{"nope":1}`, `{"malformed":"weird"}`} {
		if r := post(bad); r.StatusCode != 400 {
			t.Errorf("POST %s: %d", bad, r.StatusCode)
		}
	}
	resp, err := e.ts.Client().Get(e.ts.URL + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests["/ps/household"] != 2 || st.Outcomes[OutcomeDown] != 1 || st.Outcomes[OutcomeUnavailable] != 1 {
		t.Errorf("stats %+v", st)
	}
	if e.s.Requests("/ps/household") != 2 {
		t.Errorf("Requests = %d", e.s.Requests("/ps/household"))
	}
	req, _ := http.NewRequest(http.MethodDelete, e.ts.URL+"/_sim/stats", nil)
	if resp, err := e.ts.Client().Do(req); err == nil {
		resp.Body.Close()
	}
	if e.s.Stats().Total != 0 {
		t.Error("stats not reset")
	}
}

func TestKnobsJSONRoundTrip(t *testing.T) {
	k := Knobs{Latency: time.Second, Jitter: 3 * time.Millisecond, ErrorRate: 0.25, RetryAfter: 4, Malformed: "html", Down: true}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var got Knobs
	if err := json.Unmarshal(b, &got); err != nil || got != k {
		t.Errorf("round trip %s → %+v, %v", b, got, err)
	}
}
