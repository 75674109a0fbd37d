package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
)

// TestOnceOnlyOverHTTP: consent, minimised lookups, materials, the
// annotated copy behind its access code, and revocation with immediate
// effect.
func TestOnceOnlyOverHTTP(t *testing.T) {
	h, _ := startHub(t, fakeGateway{})
	const holder, matter = "91350100M000100Y43", "330100-000-XK-00123"
	if resp, b := h.call(t, "issuer", "POST", "/v1/licenses", pushBody, time.Now(), nil); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, b)
	}

	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	resp, b := h.call(t, "citizen", "POST", "/v1/consents", `{"holder_code":"`+holder+`","holder_code_type":"001","matter":"`+matter+
		`","app":"approval","from":"`+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)+`","until":"`+until+`"}`, time.Now(), nil)
	var consent struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &consent); err != nil || resp.StatusCode != 201 || consent.Token == "" {
		t.Fatalf("consent: %d %s", resp.StatusCode, b)
	}
	withConsent := func(r *http.Request) { r.Header.Set(HeaderConsent, consent.Token) }

	// Without an authorisation: refused.
	resp, b = h.call(t, "approval", "GET", "/v1/holders/"+holder+"/licenses?matter="+matter, "", time.Now(), nil)
	if e := decodeError(t, b); resp.StatusCode != 403 || e.Details["reason"] != "authorization_missing" {
		t.Errorf("no authorisation: %d %s", resp.StatusCode, b)
	}
	// With the consent: the license, minimised to the matter's fields.
	resp, b = h.call(t, "approval", "GET", "/v1/holders/"+holder+"/licenses?matter="+matter, "", time.Now(), withConsent)
	var found struct {
		Licenses []struct {
			Identifier string         `json:"identifier"`
			Fields     map[string]any `json:"fields"`
		} `json:"licenses"`
	}
	if err := json.Unmarshal(b, &found); err != nil || resp.StatusCode != 200 || len(found.Licenses) != 1 {
		t.Fatalf("lookup by holder: %d %s", resp.StatusCode, b)
	}
	fields := found.Licenses[0].Fields
	if fields["legal_representative"] != "张三" {
		t.Errorf("a field the matter may see is missing: %v", fields)
	}
	if _, present := fields["business_scope"]; present {
		t.Errorf("business_scope is not a field of this matter, yet present: %v", fields)
	}
	id := found.Licenses[0].Identifier
	if resp, b := h.call(t, "approval", "GET", "/v1/licenses/"+id+"?matter="+matter, "", time.Now(), withConsent); resp.StatusCode != 200 || strings.Contains(string(b), "business_scope") {
		t.Errorf("lookup by identifier: %d %s", resp.StatusCode, b)
	}

	// Materials: the license is found, with a use record whose code reads the signed copy.
	resp, b = h.call(t, "approval", "POST", "/v1/matters/"+matter+"/materials",
		`{"holder_code":"`+holder+`","holder_name":"长沙示范科技有限公司","inputs":{"legal_representative_id_number":"11010519491231002X","legal_representative_name":"张三"}}`,
		time.Now(), withConsent)
	var mats struct {
		Materials []struct {
			Name    string `json:"name"`
			State   string `json:"state"`
			License *struct {
				Use struct {
					AccessCode string `json:"access_code"`
				} `json:"use"`
			} `json:"license"`
		} `json:"materials"`
		Missing []string `json:"missing"`
	}
	if err := json.Unmarshal(b, &mats); err != nil || resp.StatusCode != 200 || len(mats.Materials) != 2 {
		t.Fatalf("materials: %d %s", resp.StatusCode, b)
	}
	var code string
	for _, m := range mats.Materials {
		if m.State != "found" {
			t.Errorf("material %s: %s", m.Name, m.State)
		}
		if m.License != nil {
			code = m.License.Use.AccessCode
		}
	}
	if code == "" {
		t.Fatalf("no access code for the license: %s", b)
	}
	if resp, b := h.call(t, "approval", "GET", "/v1/uses/"+code, "", time.Now(), nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"signature"`) {
		t.Errorf("annotated copy: %d %s", resp.StatusCode, b)
	}
	if resp, _ := h.call(t, "issuer", "GET", "/v1/uses/"+code, "", time.Now(), nil); resp.StatusCode != 404 {
		t.Errorf("another app's access code: %d, want 404", resp.StatusCode)
	}
	// The audit trail is the use records' durable trace: the lookups'
	// records name each use, the license (or certificate) and the copy's
	// expiry.
	page, err := h.srv.audit.Query(t.Context(), audit.Filter{Matter: matter, License: id})
	if err != nil {
		t.Fatal(err)
	}
	uses := 0
	for _, r := range page.Records {
		for _, u := range r.Uses {
			if u.Of == "" || len(u.ID) != 32 || u.ExpiresAt == "" {
				t.Errorf("audit use %+v", u)
			}
			if u.Of == id {
				uses++
			}
		}
	}
	if uses != 3 { // by holder, by identifier, materials
		t.Errorf("%d uses in the audit trail, want 3: %+v", uses, page.Records)
	}

	// Revocation takes effect at once.
	if resp, b := h.call(t, "citizen", "DELETE", "/v1/consents/"+consent.ID+"?holder="+holder, "", time.Now(), nil); resp.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
	resp, b = h.call(t, "approval", "GET", "/v1/holders/"+holder+"/licenses?matter="+matter, "", time.Now(), withConsent)
	if e := decodeError(t, b); resp.StatusCode != 403 || e.Code != licensehub.EFORBIDDEN || e.Details["reason"] != "consent_revoked" {
		t.Errorf("after revocation: %d %s", resp.StatusCode, b)
	}
}

// TestMaterialsIdentityCheckOverHTTP: the legal representative's identity
// material, checked by the real gateway against the simulated
// public-security system, is found with the real name and a mismatch
// (listed as missing, without a view) with a wrong one; bad inputs are
// needs_input without any upstream call.
func TestMaterialsIdentityCheckOverHTTP(t *testing.T) {
	gw, s, _ := simGateway(t)
	h, _ := startHub(t, gw)
	const holder, matter = "91350100M000100Y43", "330100-000-XK-00123"
	duty := func(r *http.Request) {
		r.Header.Set(HeaderOperatorAccount, "zhang3")
		r.Header.Set(HeaderOperatorName, "张三")
		r.Header.Set(HeaderOperatorDepartment, "市场监管局")
		r.Header.Set(HeaderOperatorRole, "窗口受理")
		r.Header.Set(HeaderReason, "企业设立登记审查")
	}
	rep := s.SamplePeople(2)[1]
	real := s.PersonName(rep)
	for _, tc := range []struct {
		name, id, asked string
		state           string
		calls           int64
	}{
		{"real name", rep, real, "found", 1},
		{"wrong name", rep, "王不对", "mismatch", 1},
		{"bad check digit", rep[:17] + map[bool]string{true: "1", false: "0"}[rep[17] == '0'], real, "needs_input", 0},
		{"right-to-left override", rep, "王\u202e对", "needs_input", 0},
		{"name of 65 characters", rep, strings.Repeat("王", 65), "needs_input", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetStats()
			body, _ := json.Marshal(map[string]any{"holder_code": holder, "holder_name": "长沙示范科技有限公司",
				"inputs": map[string]string{"legal_representative_id_number": tc.id, "legal_representative_name": tc.asked}})
			resp, b := h.call(t, "approval", "POST", "/v1/matters/"+matter+"/materials", string(body), time.Now(), duty)
			var res struct {
				Materials []struct {
					Name            string `json:"name"`
					Certificate     string `json:"certificate"`
					State           string `json:"state"`
					Detail          string `json:"detail"`
					CertificateView *struct {
						Data map[string]any `json:"data"`
					} `json:"certificate_view"`
				} `json:"materials"`
				Missing []string `json:"missing"`
			}
			if err := json.Unmarshal(b, &res); err != nil || resp.StatusCode != 200 {
				t.Fatalf("materials: %d %s", resp.StatusCode, b)
			}
			for _, m := range res.Materials {
				if m.Certificate != "identity" {
					continue
				}
				if m.State != tc.state || slices.Contains(res.Missing, m.Name) != (tc.state != "found") {
					t.Errorf("identity material %+v, missing %v; want %s", m, res.Missing, tc.state)
				}
				if (m.CertificateView != nil) != (tc.state == "found") {
					t.Errorf("identity material in state %s with view %v", m.State, m.CertificateView)
				}
				if tc.state == "found" && m.CertificateView.Data["name_match"] != true {
					t.Errorf("found without a match: %v", m.CertificateView.Data)
				}
			}
			if tc.asked != real && strings.Contains(string(b), real) {
				t.Errorf("the answer discloses the real name: %s", b)
			}
			if n := s.Requests("/ps/identity"); n != tc.calls {
				t.Errorf("%d identity calls, want %d", n, tc.calls)
			}
		})
	}
}
