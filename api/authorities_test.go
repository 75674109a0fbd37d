package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/authority"
	"github.com/licensehub/licensehub/license"
)

// The shipped registry's provincial authority (pushBody's issuer).
const (
	registeredAuthority = "11430000006122244L"
	registeredName      = "湖南省市场监督管理局（演示）"
)

// startRegistryHub serves the license routes on a library checked against
// the shipped authority registry, which it also publishes.
func startRegistryHub(t *testing.T) *harness {
	t.Helper()
	reg, err := authority.Load("../configs/authorities.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTestLibrary(t)
	lib, err := license.NewLibrary(license.Config{Objects: tl.objects, KV: tl.kv, Signers: tl.ring, Authorities: reg,
		Catalog: license.CatalogFunc(tl.cat.Validator), DefaultValidUntil: tl.cat.DefaultValidUntil, TypeName: tl.cat.TypeName})
	if err != nil {
		t.Fatal(err)
	}
	return startWith(t, Options{Auth: auth.NewAuthenticator(writeRegistry(t), tl.kv), Limiter: auth.NewLimiter(tl.kv),
		Audit: newTrail(t, tl.kv), Catalog: tl.cat, Library: lib, Authorities: reg}, nil)
}

// TestAuthoritiesPublished: GET /v1/authorities and /v1/authorities/{code}
// are public and answer the registry; an unknown code is 404 naming the
// field without echoing a long code.
func TestAuthoritiesPublished(t *testing.T) {
	h := startRegistryHub(t)

	resp, b := h.do(t, "GET", "/v1/authorities", nil, nil)
	var list struct {
		Authorities []map[string]string `json:"authorities"`
	}
	if err := json.Unmarshal(b, &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	want := map[string]map[string]string{
		registeredAuthority:  {"code": registeredAuthority, "name": registeredName, "area_code": "430000", "level": "provincial"},
		"11430100MB1K32010B": {"code": "11430100MB1K32010B", "name": "长沙市市场监督管理局（演示）", "area_code": "430100", "level": "city", "parent": registeredAuthority},
	}
	if len(list.Authorities) != len(want) {
		t.Fatalf("%d authorities, want %d: %s", len(list.Authorities), len(want), b)
	}
	for _, a := range list.Authorities {
		w := want[a["code"]]
		if len(a) != len(w) {
			t.Errorf("%v, want %v", a, w)
		}
		for k, v := range w {
			if a[k] != v {
				t.Errorf("%s.%s = %q, want %q", a["code"], k, a[k], v)
			}
		}
	}

	tests := []struct {
		name, path string
		status     int
		code, body string // body: a part of the answer
	}{
		{"one authority", "/v1/authorities/11430100MB1K32010B", 200, "", `"name":"长沙市市场监督管理局（演示）"`},
		{"unknown code", "/v1/authorities/91350100M000100Y43", 404, licensehub.ENOTFOUND, `no issuing authority \"91350100M000100Y43\"`},
		{"long code not echoed", "/v1/authorities/" + strings.Repeat("A", 200), 404, licensehub.ENOTFOUND, "no issuing authority with this code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := h.do(t, "GET", tt.path, nil, nil)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, b, tt.status, tt.body)
			}
			if tt.code == "" {
				return
			}
			if e := decodeError(t, b); e.Code != tt.code || (tt.status == 404 && e.Details["field"] != "code") {
				t.Errorf("error %+v, want %s on code", e, tt.code)
			}
			if strings.Contains(string(b), strings.Repeat("A", 40)) {
				t.Errorf("the long code is echoed: %s", b)
			}
		})
	}
}

// TestPushIssuerFromRegistryOverHTTP: a push without issuer.name signs the
// registered name; another name, an unregistered authority and an area
// outside the authority's are 400 naming field and rule.
func TestPushIssuerFromRegistryOverHTTP(t *testing.T) {
	h := startRegistryHub(t)
	withName := func(name string) string {
		return strings.Replace(pushBody, `"name": "湖南省市场监督管理局"`, `"name": `+name, 1)
	}
	noName := strings.Replace(pushBody, `"issuer": {"name": "湖南省市场监督管理局", `, `"issuer": {`, 1)

	resp, b := h.call(t, "issuer", "POST", "/v1/licenses", noName, time.Now(), nil)
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"issuer":{"code":"11430000006122244L","name":"`+registeredName+`"}`) {
		t.Fatalf("push without issuer.name: %d %s", resp.StatusCode, b)
	}
	// The same license with the registered name spelled out is the same
	// content: 200, the same document.
	resp, again := h.call(t, "issuer", "POST", "/v1/licenses", withName(`"`+registeredName+`"`), time.Now(), nil)
	if resp.StatusCode != 200 || string(again) != string(b) {
		t.Errorf("push with the registered name: %d %s", resp.StatusCode, again)
	}

	tests := []struct {
		name, body  string
		field, rule string
		message     string
	}{
		{"free-text name", withName(`"某某发证机关"`), "issuer.name", license.RuleAuthorityName, registeredName},
		{"name without the registry's suffix", pushBody, "issuer.name", license.RuleAuthorityName, registeredName},
		// pushed by other-issuer, granted license.create for
		// 91350100M000100Y43, which the registry does not list
		{"unregistered authority", strings.Replace(noName, `"code": "11430000006122244L"`, `"code": "91350100M000100Y43"`, 1),
			"issuer.code", license.RuleUnknownAuthority, "91350100M000100Y43 is not a registered issuing authority"},
		{"area of another province", strings.Replace(noName, `"area_code": "430100"`, `"area_code": "440100"`, 1),
			"area_code", license.RuleAuthorityArea, "outside the area of " + registeredName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Replace(tt.body, "20230000403", "20230000500", 1) // not the license above
			app := "issuer"
			if tt.rule == license.RuleUnknownAuthority {
				app = "other-issuer"
			}
			resp, b := h.call(t, app, "POST", "/v1/licenses", body, time.Now(), nil)
			e := decodeError(t, b)
			if resp.StatusCode != http.StatusBadRequest || e.Code != licensehub.EINVALID || e.Details["field"] != tt.field ||
				e.Details["rule"] != tt.rule || !strings.Contains(e.Message, tt.message) {
				t.Errorf("%d %s, want 400 %s on %s, rule %s, saying %q", resp.StatusCode, b, licensehub.EINVALID, tt.field, tt.rule, tt.message)
			}
		})
	}
}
