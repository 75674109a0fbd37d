package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/publicsecurity"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
	"github.com/licensehub/licensehub/adapters/socialsecurity"
	"github.com/licensehub/licensehub/adapters/tax"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/store/mem"
)

// fakeGateway answers from a table: a kind's error, or a fixed certificate.
type fakeGateway struct{ errs map[string]error }

func (f fakeGateway) Certify(_ context.Context, kind string, params map[string]string) (*adapters.Issued, error) {
	if err := f.errs[kind]; err != nil {
		return nil, err
	}
	return &adapters.Issued{Certificate: adapters.Certificate{Number: "ZM1", Subject: adapters.Subject{Code: params["id_number"]}},
		Document: []byte(`{"body":{"kind":"` + kind + `"},"signature":{}}`)}, nil
}
func (fakeGateway) Kinds() []adapters.Kind {
	return []adapters.Kind{{Name: "identity", Title: "身份核验证明", Upstream: "publicsecurity", Params: []string{"id_number", "name"}}}
}
func (fakeGateway) Statuses() []upstream.Status {
	return []upstream.Status{{Name: "publicsecurity", Breaker: "open", ErrorRate: 0.5}}
}

func TestCertificatesOverHTTP(t *testing.T) {
	kv := mem.New()
	defer kv.Close()
	gw := fakeGateway{errs: map[string]error{
		"down": &licensehub.Error{Code: licensehub.EUPSTREAM, Message: "tax is down",
			Details: map[string]any{"upstream": "tax", "retry_after_seconds": 30}},
		"garbled": licensehub.Errorf(licensehub.EUPSTREAMBAD, "tax answered HTML"),
	}}
	h := startWith(t, Options{Auth: auth.NewAuthenticator(writeRegistry(t), kv), Limiter: auth.NewLimiter(kv),
		Audit: newTrail(t, kv), Gateway: gw}, nil)
	matter := func(r *http.Request) { r.Header.Set(HeaderMatter, "330100-000-XK-00123") }
	const body = `{"params":{"id_number":"11010519491231002X","name":"张三"}}`

	resp, b := h.call(t, "approval", "POST", "/v1/certificates/identity", body, time.Now(), matter)
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"kind":"identity"`) {
		t.Errorf("certify: %d %s", resp.StatusCode, b)
	}
	resp, b = h.call(t, "approval", "POST", "/v1/certificates/down", body, time.Now(), matter)
	if e := decodeError(t, b); resp.StatusCode != 503 || e.Code != licensehub.EUPSTREAM || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("upstream down: %d %s Retry-After=%q", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	resp, b = h.call(t, "approval", "POST", "/v1/certificates/garbled", body, time.Now(), matter)
	if e := decodeError(t, b); resp.StatusCode != 502 || e.Code != licensehub.EUPSTREAMBAD {
		t.Errorf("malformed upstream: %d %s", resp.StatusCode, b)
	}
	resp, b = h.call(t, "approval", "POST", "/v1/certificates/identity", body, time.Now(), func(r *http.Request) {
		r.Header.Set(HeaderMatter, "999999-000-XK-00001")
	})
	if e := decodeError(t, b); resp.StatusCode != 403 || e.Code != licensehub.EFORBIDDENMATTER {
		t.Errorf("matter not granted: %d %s", resp.StatusCode, b)
	}
	resp, b = h.call(t, "supervisor", "GET", "/v1/adapters", "", time.Now(), nil)
	var st struct {
		Upstreams []upstream.Status `json:"upstreams"`
		Kinds     []kindView        `json:"kinds"`
	}
	if err := json.Unmarshal(b, &st); err != nil || resp.StatusCode != 200 || len(st.Upstreams) != 1 || st.Upstreams[0].Breaker != "open" || len(st.Kinds) != 1 {
		t.Errorf("adapters: %d %s", resp.StatusCode, b)
	}
	if resp, _ := h.call(t, "citizen", "GET", "/v1/adapters", "", time.Now(), nil); resp.StatusCode != 403 {
		t.Errorf("adapters as a citizen app: %d", resp.StatusCode)
	}
}

// simGateway is a real gateway of every certificate kind whose upstreams
// are the simulator (served on loopback), signing with a hub key.
func simGateway(t *testing.T) (*adapters.Gateway, *sim.Server, time.Time) {
	t.Helper()
	now := time.Now()
	s, ps := simtest.Start(t, sim.Config{Seed: 11}, publicsecurity.Upstream, nil)
	base := ps.Status().BaseURL
	gw, err := adapters.NewGateway(adapters.GatewayConfig{
		Upstreams: map[string]adapters.Connected{publicsecurity.Upstream: ps,
			socialsecurity.Upstream: simtest.Client(t, s, base, socialsecurity.Upstream, nil),
			tax.Upstream:            simtest.Client(t, s, base, tax.Upstream, nil)},
		Kinds:   slices.Concat(publicsecurity.Kinds(), socialsecurity.Kinds(), tax.Kinds()),
		Signers: testkeys.Current(t, hubAuthority), Authority: adapters.Party{Name: "证照通", Code: hubAuthority},
		Validity: 72 * time.Hour, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return gw, s, now
}

// TestCertificateChecksOverHTTP: every kind's bad parameters are answered
// 400 INVALID_ARGUMENT naming params.NAME, and the simulated upstreams see
// no call; an identity check with a wrong name discloses nothing.
func TestCertificateChecksOverHTTP(t *testing.T) {
	gw, s, now := simGateway(t)
	h, _ := startHub(t, gw)
	matter := func(r *http.Request) { r.Header.Set(HeaderMatter, "330100-000-XK-00123") }
	person, company := s.SamplePeople(1)[0], s.SampleCompanies(1)[0]
	for i, tc := range simtest.BadParams(person, company, now) {
		valid := true
		for _, v := range tc.Params {
			valid = valid && utf8.ValidString(v)
		}
		if !valid {
			continue // a body that is not UTF-8 is the JSON decoder's to refuse
		}
		t.Run(fmt.Sprintf("%d-%s-%s", i, tc.Kind, tc.Field), func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"params": tc.Params})
			resp, b := h.call(t, "approval", "POST", "/v1/certificates/"+tc.Kind, string(body), time.Now(), matter)
			if e := decodeError(t, b); resp.StatusCode != 400 || e.Code != licensehub.EINVALID || e.Details["field"] != tc.Field {
				t.Errorf("%s %s: %d %s; want 400 INVALID_ARGUMENT on %s", tc.Kind, body, resp.StatusCode, b, tc.Field)
			}
		})
	}
	if n := s.Stats().Total; n != 0 {
		t.Errorf("%d upstream calls for refused parameters", n)
	}

	real := s.PersonName(person)
	for _, tc := range []struct {
		name, asked string
		fields      []string
	}{
		{"wrong name", "王不对", []string{"id_number", "id_number_match", "name", "name_match"}},
		{"real name", real, []string{"document_valid_until", "id_number", "id_number_match", "name", "name_match", "status"}},
	} {
		resp, b := h.call(t, "approval", "POST", "/v1/certificates/identity",
			`{"params":{"id_number":"`+person+`","name":"`+tc.asked+`"}}`, time.Now(), matter)
		var doc struct {
			Body struct {
				Data map[string]any `json:"data"`
			} `json:"body"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || resp.StatusCode != 201 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
		if got := slices.Sorted(maps.Keys(doc.Body.Data)); !slices.Equal(got, tc.fields) || doc.Body.Data["name"] != tc.asked {
			t.Errorf("%s: certificate data %v, want the fields %v", tc.name, doc.Body.Data, tc.fields)
		}
		if tc.asked != real && strings.Contains(string(b), real) {
			t.Errorf("%s: the certificate discloses the real name: %s", tc.name, b)
		}
	}
}
