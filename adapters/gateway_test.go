package adapters_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/publicsecurity"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
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
}

// newFixture serves the simulator on loopback and builds a gateway whose
// public-security and tax clients reach it; social security stays
// unconnected.
func newFixture(t testing.TB, tune func(*upstream.Config)) *fixture {
	t.Helper()
	s, ps := simtest.Start(t, sim.Config{Seed: 42}, publicsecurity.Upstream, tune)
	taxClient := simtest.Client(t, s, ps.Status().BaseURL, tax.Upstream, tune)
	clients := map[string]adapters.Connected{publicsecurity.Upstream: ps, tax.Upstream: taxClient}
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
		Kinds:   append(publicsecurity.Kinds(), tax.Kinds()...),
		Signers: ring, Authority: adapters.Party{Name: "证照通", Code: hubAuthority}, Validity: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: s, ps: ps, gw: gw, keys: ring}
}

func TestCertify(t *testing.T) {
	f := newFixture(t, nil)
	person := f.sim.SamplePeople(1)[0]
	company := f.sim.SampleCompanies(1)[0]
	ctx := context.Background()
	wrong := person[:17] + "1"
	if person[17] == '1' {
		wrong = person[:17] + "2"
	}

	issued, err := f.gw.Certify(ctx, "identity", map[string]string{"id_number": person, "name": "张三"})
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
		until.Sub(fetched) != 72*time.Hour || c.Data["id_number"] != person {
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
		{"missing parameter", "identity", map[string]string{"id_number": person}, licensehub.EINVALID, ""},
		{"unknown parameter", "identity", map[string]string{"id_number": person, "name": "x", "age": "3"}, licensehub.EINVALID, "params.age"},
		{"bad check digit", "identity", map[string]string{"id_number": wrong, "name": "x"}, licensehub.EINVALID, "params.id_number"},
		{"not connected", "person_insurance", map[string]string{"id_number": person}, licensehub.ENOTFOUND, "kind"},
		{"tax certificate", "tax_registration", map[string]string{"credit_code": company}, "", ""},
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
	params := map[string][]string{"id_number": {person}, "name": {"张三"}}
	b.Run("hub", func(b *testing.B) {
		for range b.N {
			if _, err := adapters.Fetch(context.Background(), f.ps, kind, params); err != nil {
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
