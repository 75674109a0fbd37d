package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/lookup"
)

const pushBody = `{
  "type_code": "11100000000013338W011",
  "issuer": {"name": "湖南省市场监督管理局", "code": "11430000006122244L"},
  "number": "20230000403",
  "holder": {"name": "长沙示范科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
  "issue_date": "2023-03-01", "valid_from": "2023-03-01", "area_code": "430100",
  "fields": {
    "unified_social_credit_code": "91350100M000100Y43", "name": "长沙示范科技有限公司",
    "entity_type": "有限责任公司", "legal_representative": "张三", "established_date": "2023-03-01",
    "business_term_to": "long-term", "address": "长沙市岳麓区示范路1号", "business_scope": "软件开发",
    "registration_authority": "长沙市市场监督管理局"
  }
}`

func startLibrary(t *testing.T) *harness {
	t.Helper()
	h, _ := startHub(t, nil)
	return h
}

// startHub serves the license routes on a real library (and, with a
// gateway, the once-only lookups over it).
func startHub(t *testing.T, gw lookup.Gateway) (*harness, *license.Library) {
	t.Helper()
	tl := newTestLibrary(t)
	kv, ring, objects, cat, lib := tl.kv, tl.ring, tl.objects, tl.cat, tl.lib
	o := Options{Auth: auth.NewAuthenticator(writeRegistry(t), kv), Limiter: auth.NewLimiter(kv),
		Audit: newTrail(t, kv), Keys: ring, Verifier: &license.Verifier{Keys: ring, Status: lib}, Catalog: cat, Library: lib}
	if gw != nil {
		matters, err := lookup.LoadMatters("../configs/matters.yaml")
		if err != nil {
			t.Fatal(err)
		}
		consents, err := lookup.NewConsents(lookup.ConsentsConfig{Objects: objects, KV: kv, Matters: matters})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := lookup.NewService(lookup.Config{Library: lib, Gateway: gw, Matters: matters, Consents: consents, KV: kv})
		if err != nil {
			t.Fatal(err)
		}
		o.Lookups = &Lookups{Service: svc, Consents: consents}
		if cg, ok := gw.(CertificateGateway); ok {
			o.Gateway = cg
		}
	}
	return startWith(t, o, nil), lib
}

func TestLicenseLifecycleOverHTTP(t *testing.T) {
	h := startLibrary(t)
	now := time.Now()
	withKey := func(k string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(HeaderIdempotencyKey, k) }
	}

	resp, doc := h.call(t, "issuer", "POST", "/v1/licenses", pushBody, now, withKey("k1"))
	if resp.StatusCode != 201 || !strings.HasPrefix(resp.Header.Get("Location"), "/v1/licenses/1.2.156.3005.2.") {
		t.Fatalf("push: %d %s", resp.StatusCode, doc)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/licenses/")
	resp, again := h.call(t, "issuer", "POST", "/v1/licenses", pushBody, now, withKey("k1"))
	if resp.StatusCode != 200 || string(again) != string(doc) {
		t.Errorf("retried push: %d, same document %v", resp.StatusCode, string(again) == string(doc))
	}
	if resp, b := h.call(t, "issuer", "POST", "/v1/licenses", strings.Replace(pushBody, "张三", "李四", 1), now, withKey("k1")); resp.StatusCode != 409 {
		t.Errorf("same key, other content: %d %s", resp.StatusCode, b)
	}

	tests := []struct {
		name, app, body string
		status          int
		code, field     string
	}{
		{"missing face field", "issuer", strings.Replace(pushBody, `"legal_representative": "张三", `, "", 1), 400, licensehub.EINVALID, "fields.legal_representative"},
		{"bad holder check digit", "issuer", strings.Replace(pushBody, `"code": "91350100M000100Y43", "code_type"`, `"code": "91350100M000100Y44", "code_type"`, 1), 400, licensehub.EINVALID, "holder.code"},
		{"unknown field", "issuer", strings.Replace(pushBody, `"number"`, `"numbr": "x", "number"`, 1), 400, licensehub.EMALFORMED, "numbr"},
		{"not JSON", "issuer", "{", 400, licensehub.EMALFORMED, "body"},
		{"authority not granted", "other-issuer", strings.Replace(pushBody, "20230000403", "20230000999", 1), 403, licensehub.EFORBIDDENAUTHORITY, ""},
		{"role without license.create", "supervisor", pushBody, 403, licensehub.EFORBIDDENROLE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.call(t, tt.app, "POST", "/v1/licenses", tt.body, time.Now(), nil)
			e := decodeError(t, b)
			if resp.StatusCode != tt.status || e.Code != tt.code || tt.field != "" && e.Details["field"] != tt.field {
				t.Errorf("%d %s, want %d %s field %s", resp.StatusCode, b, tt.status, tt.code, tt.field)
			}
		})
	}

	var view licenseView
	resp, b := h.call(t, "issuer", "GET", "/v1/licenses/"+id, "", time.Now(), nil)
	if err := json.Unmarshal(b, &view); err != nil || resp.StatusCode != 200 || view.StatusName != "valid" || string(view.Document) != string(doc) {
		t.Fatalf("get: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.call(t, "", "POST", "/v1/verify", string(doc), time.Now(), nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"verdict":"valid"`) {
		t.Errorf("verify of a library license: %d %s", resp.StatusCode, b)
	}

	for _, step := range []struct {
		op     string
		status int
	}{{"suspend", 200}, {"suspend", 200 /* a retry: the same record */}, {"restore", 200}, {"revoke", 200}, {"restore", 409}, {"suspend", 409}} {
		resp, b := h.call(t, "issuer", "POST", "/v1/licenses/"+id+"/status", `{"op":"`+step.op+`","reason":"检查"}`, time.Now(), nil)
		if resp.StatusCode != step.status {
			t.Errorf("%s: %d %s, want %d", step.op, resp.StatusCode, b, step.status)
		}
		if step.status == 409 && (!strings.Contains(string(b), `"current_status_code":"07"`) || decodeError(t, b).Code != licensehub.EILLEGALTRANSITION) {
			t.Errorf("%s: an illegal transition is not %s naming the current status: %s", step.op, licensehub.EILLEGALTRANSITION, b)
		}
	}
	// A status change that takes a license away needs a reason.
	if resp, b := h.call(t, "issuer", "POST", "/v1/licenses/"+id+"/status", `{"op":"suspend"}`, time.Now(), nil); resp.StatusCode != 400 ||
		decodeError(t, b).Code != licensehub.EINVALID || decodeError(t, b).Details["field"] != "reason" {
		t.Errorf("suspend without a reason: %d %s, want 400 INVALID_ARGUMENT field reason", resp.StatusCode, b)
	}
	if resp, b := h.call(t, "", "POST", "/v1/verify", string(doc), time.Now(), nil); !strings.Contains(string(b), `"verdict":"invalid"`) || !strings.Contains(string(b), `"status":"revoked"`) {
		t.Errorf("verify of a revoked license: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.call(t, "issuer", "GET", "/v1/licenses/1.2.156.3005.2.11100000000013338W011.11430000006122244L.99999999.001.X", "", time.Now(), nil); resp.StatusCode != 400 {
		t.Errorf("identifier with a wrong check character: %d %s", resp.StatusCode, b)
	}
}
