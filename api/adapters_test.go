package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/auth"
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
