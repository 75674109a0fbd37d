package adapters_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/publicsecurity"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
	"github.com/licensehub/licensehub/adapters/socialsecurity"
	"github.com/licensehub/licensehub/adapters/tax"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/signing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hubAuthority = "11330100MB1234567E"

type fixture struct {
	sim  *sim.Server
	ps   *upstream.Client
	gw   *adapters.Gateway
	keys signing.KeySource
	now  time.Time // the gateway's clock: fixed
}

// newFixture serves the simulator on loopback and builds a gateway whose
// public-security, social-security and tax clients reach it, with every
// kind; those of an upstream not in connected (nil: all) are served by no
// client.
func newFixture(t testing.TB, tune func(*upstream.Config), connected ...string) *fixture {
	t.Helper()
	s, ps := simtest.Start(t, sim.Config{Seed: 42}, publicsecurity.Upstream, tune)
	clients := map[string]adapters.Connected{publicsecurity.Upstream: ps,
		socialsecurity.Upstream: simtest.Client(t, s, ps.Status().BaseURL, socialsecurity.Upstream, tune),
		tax.Upstream:            simtest.Client(t, s, ps.Status().BaseURL, tax.Upstream, tune)}
	if connected != nil {
		for name := range clients {
			if !slices.Contains(connected, name) {
				delete(clients, name)
			}
		}
	}
	keysDir := t.TempDir()
	now := time.Now().UTC()
	if _, err := signing.Generate(keysDir, hubAuthority, now.Add(-time.Hour), now.AddDate(1, 0, 0), nil); err != nil {
		t.Fatal(err)
	}
	ring, err := signing.OpenKeyring(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := adapters.NewGateway(adapters.GatewayConfig{Upstreams: clients,
		Kinds:   slices.Concat(publicsecurity.Kinds(), socialsecurity.Kinds(), tax.Kinds()),
		Signers: ring, Authority: adapters.Party{Name: "证照通", Code: hubAuthority}, Validity: 72 * time.Hour,
		Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: s, ps: ps, gw: gw, keys: ring, now: now}
}

func TestCertify(t *testing.T) {
	f := newFixture(t, nil)
	person := f.sim.SamplePeople(1)[0]
	company := f.sim.SampleCompanies(1)[0]
	ctx := context.Background()

	issued, err := f.gw.Certify(ctx, "identity", map[string]string{"id_number": person, "name": f.sim.PersonName(person)})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := signing.ParseDocument(issued.Document)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.VerifySignature(doc, f.keys)
	if err != nil || key.Authority != hubAuthority {
		t.Fatalf("certificate signature: %v (authority %s)", err, key.Authority)
	}
	c := issued.Certificate
	fetched, _ := time.Parse(time.RFC3339, c.FetchedAt)
	until, _ := time.Parse(time.RFC3339, c.ValidUntil)
	if c.Source.System != "publicsecurity" || c.Subject.Code != person || c.Subject.CodeType != "111" ||
		until.Sub(fetched) != 72*time.Hour || c.Data["id_number"] != person || c.Data["name_match"] != true || issued.Mismatched != nil {
		t.Errorf("certificate: %+v", c)
	}

	tests := []struct {
		name   string
		kind   string
		params map[string]string
		code   string
		field  string
	}{
		{"unknown kind", "horoscope", map[string]string{"id_number": person}, licensehub.ENOTFOUND, "kind"},
		{"tax certificate", "tax_registration", map[string]string{"credit_code": company}, "", ""},
		{"social-security certificate", "employer_insurance", map[string]string{"credit_code": company}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issued, err := f.gw.Certify(ctx, tt.kind, tt.params)
			if got := licensehub.ErrorCode(err); got != tt.code {
				t.Fatalf("code %q (%v), want %q", got, err, tt.code)
			}
			var e *licensehub.Error
			if tt.field != "" && (!asError(err, &e) || e.Field != tt.field) {
				t.Errorf("field %v, want %s", err, tt.field)
			}
			if (err == nil) != (issued != nil) {
				t.Errorf("issued %v with error %v", issued, err)
			}
		})
	}
	// An unconnected upstream: bad parameters are still refused first.
	off := newFixture(t, nil, publicsecurity.Upstream, tax.Upstream)
	if _, err := off.gw.Certify(ctx, "person_insurance", map[string]string{"id_number": person}); !licensehub.IsCode(err, licensehub.EUPSTREAM) {
		t.Errorf("not connected: %v", err)
	}
	if _, err := off.gw.Certify(ctx, "person_insurance", map[string]string{"id_number": person[:17] + "Y"}); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("not connected, bad parameter: %v", err)
	}
}

// TestCertifyRefusesBadParameters: every kind's parameter checks run in
// Certify before any upstream call; the simulator's request counter
// stays at zero.
func TestCertifyRefusesBadParameters(t *testing.T) {
	f := newFixture(t, nil)
	person, company := f.sim.SamplePeople(1)[0], f.sim.SampleCompanies(1)[0]
	cases := simtest.BadParams(person, company, f.now)
	kinds := map[string]bool{}
	for _, tc := range cases {
		kinds[tc.Kind] = true
		t.Run(tc.Kind+"/"+tc.Field, func(t *testing.T) {
			f.sim.ResetStats()
			issued, err := f.gw.Certify(context.Background(), tc.Kind, tc.Params)
			var e *licensehub.Error
			if issued != nil || !asError(err, &e) || e.Code != licensehub.EINVALID || e.Field != tc.Field {
				t.Fatalf("Certify(%s, %q) = %v, %v; want INVALID_ARGUMENT on %s", tc.Kind, tc.Params, issued, err, tc.Field)
			}
			if n := f.sim.Stats().Total; n != 0 {
				t.Errorf("%d upstream calls for refused parameters", n)
			}
			for _, bad := range []string{"2006-01", "parsing time", "strconv", "\u202e", "\u200b", "\x00"} {
				if strings.Contains(e.Message, bad) {
					t.Errorf("message %q holds %q", e.Message, bad)
				}
			}
		})
	}
	for _, k := range f.gw.Kinds() {
		if !kinds[k.Name] {
			t.Errorf("no hostile parameters for kind %s", k.Name)
		}
	}
	// The same parameters, good: each kind reaches the upstream once.
	year := strconv.Itoa(f.now.Year() - 2)
	for kind, params := range map[string]map[string]string{
		"tax_payments": {"credit_code": company, "from": year + "-01", "to": year + "-12"},
		"tax_credit":   {"credit_code": company, "year": year},
		"household":    {"id_number": person},
	} {
		f.sim.ResetStats()
		if _, err := f.gw.Certify(context.Background(), kind, params); err != nil || f.sim.Stats().Total != 1 {
			t.Errorf("%s %v: %v after %d calls", kind, params, err, f.sim.Stats().Total)
		}
	}
}

// TestIdentityIsACheck: asked with a wrong name, the identity certificate
// attests the mismatch and discloses nothing: no real name, birth date,
// address, sex, document or status.
func TestIdentityIsACheck(t *testing.T) {
	f := newFixture(t, nil)
	person := f.sim.SamplePeople(3)[2]
	real := f.sim.PersonName(person)
	for _, tc := range []struct {
		name, asked string
		mismatched  []string
		fields      []string
	}{
		{"wrong name", "王不对", []string{"name"}, []string{"id_number", "id_number_match", "name", "name_match"}},
		{"real name", real, nil, []string{"document_valid_until", "id_number", "id_number_match", "name", "name_match", "status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issued, err := f.gw.Certify(context.Background(), "identity", map[string]string{"id_number": person, "name": tc.asked})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(issued.Mismatched, tc.mismatched) {
				t.Errorf("mismatched %v, want %v", issued.Mismatched, tc.mismatched)
			}
			data := issued.Certificate.Data
			if got := slices.Sorted(maps.Keys(data)); !slices.Equal(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
			if data["name"] != tc.asked || data["name_match"] != (tc.mismatched == nil) {
				t.Errorf("data %v", data)
			}
			// The signed document says the same, and nothing more.
			doc := string(issued.Document)
			birth := person[6:10] + "-" + person[10:12] + "-" + person[12:14]
			if tc.mismatched != nil && strings.Contains(doc, real) || strings.Contains(doc, birth) || strings.Contains(doc, "address") {
				t.Errorf("the signed certificate discloses the record: %s", doc)
			}
		})
	}
}

// A failing or garbling upstream never yields a signed certificate.
func TestCertifyFailures(t *testing.T) {
	f := newFixture(t, func(c *upstream.Config) { c.MaxAttempts, c.BreakerFailures = 2, 100 })
	person := f.sim.SamplePeople(1)[0]
	for _, tt := range []struct {
		knobs sim.Knobs
		code  string
	}{
		{sim.Knobs{MalformedRate: 1, Malformed: "partial"}, licensehub.EUPSTREAMBAD},
		{sim.Knobs{MalformedRate: 1, Malformed: "html"}, licensehub.EUPSTREAMBAD},
		{sim.Knobs{ErrorRate: 1}, licensehub.EUPSTREAM},
		{sim.Knobs{Down: true}, licensehub.EUPSTREAM},
	} {
		if err := f.sim.SetKnobs(tt.knobs); err != nil {
			t.Fatal(err)
		}
		issued, err := f.gw.Certify(context.Background(), "household", map[string]string{"id_number": person})
		if issued != nil || licensehub.ErrorCode(err) != tt.code {
			t.Errorf("knobs %+v: %v, %v; want %s and nothing issued", tt.knobs, issued, err, tt.code)
		}
	}
}

// With the simulator failing 30 % of calls at random, 1,000 sequential
// queries all succeed through retries.
func TestThirtyPercentFailures(t *testing.T) {
	f := newFixture(t, func(c *upstream.Config) { c.MaxAttempts, c.BreakerFailures = 10, 1000 })
	if err := f.sim.SetKnobs(sim.Knobs{ErrorRate: 0.3}); err != nil {
		t.Fatal(err)
	}
	people := f.sim.SamplePeople(1000)
	f.sim.ResetStats()
	for i, id := range people {
		if _, err := f.gw.Certify(context.Background(), "household", map[string]string{"id_number": id}); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	calls := f.sim.Requests("/ps/household")
	t.Logf("1000 certificates with the simulator failing 30%% of calls: %d upstream calls (%d retries)", calls, calls-1000)
	if calls <= 1000 {
		t.Errorf("%d upstream calls: the failures were not injected", calls)
	}
}

// BenchmarkSimQuery: an adapter query (resilient client + mapping) against
// a direct signed HTTP call to the simulator, same endpoint, same run.
func BenchmarkSimQuery(b *testing.B) {
	f := newFixture(b, nil)
	person := f.sim.SamplePeople(1)[0]
	kind, _ := adapters.FindKind(publicsecurity.Kinds(), publicsecurity.KindIdentity)
	params := map[string]string{"id_number": person, "name": "张三"}
	b.Run("hub", func(b *testing.B) {
		for range b.N {
			if _, err := adapters.Fetch(context.Background(), f.ps, kind, params, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct-http", func(b *testing.B) {
		st := f.ps.Status()
		cfg := f.sim.UpstreamConfig(publicsecurity.Upstream, st.BaseURL)
		client := &http.Client{}
		defer client.CloseIdleConnections()
		url := st.BaseURL + kind.Path + "?id_number=" + person + "&name=%E5%BC%A0%E4%B8%89"
		for i := range b.N {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			rid := hex.EncodeToString([]byte(fmt.Sprintf("%016d", i)))
			ts := fmt.Sprint(time.Now().UnixMilli())
			sig, err := upstream.Sign(cfg.Algorithm, cfg.Secret, rid, ts, kind.ServiceID)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set(upstream.HeaderAppKey, cfg.AppKey)
			req.Header.Set(upstream.HeaderRequestID, rid)
			req.Header.Set(upstream.HeaderTimestamp, ts)
			req.Header.Set(upstream.HeaderServiceID, kind.ServiceID)
			req.Header.Set(upstream.HeaderSignature, sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

func asError(err error, target **licensehub.Error) bool {
	e, ok := err.(*licensehub.Error)
	if ok {
		*target = e
	}
	return ok
}
