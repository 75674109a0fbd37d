package license

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

// testAuthorities stands in for authority.Registry.
type testAuthorities map[string]RegisteredAuthority

func (r testAuthorities) Registered(code string) (RegisteredAuthority, bool) {
	a, ok := r[code]
	return a, ok
}

// registeredName is authorityA's name in the test registry.
const registeredName = "湖南省市场监督管理局（演示）"

// unregistered is a valid credit code no test registry lists.
const unregistered = "11430100MB1K32010B"

func registryFixture(t *testing.T, reg Authorities) *fixture {
	t.Helper()
	f := newFixture(t, fsMemBackend(t))
	lib := f.library(t, f.b.kv)
	lib.cfg.Authorities = reg
	f.lib = lib
	return f
}

// signedIssuer is issuer of the stored signed document.
func signedIssuer(t *testing.T, doc []byte) Party {
	t.Helper()
	d, err := signing.ParseDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	var lic License
	if err := json.Unmarshal(d.Body, &lic); err != nil {
		t.Fatal(err)
	}
	return lic.Issuer
}

// TestPushAuthorityRegistry: with a registry, the issuer's name comes from
// it, a different name, an unregistered code and an area outside the
// authority's are refused naming field and rule, and nothing is stored.
func TestPushAuthorityRegistry(t *testing.T) {
	reg := testAuthorities{authorityA: {Name: registeredName, AreaCode: "430000"}}
	tests := []struct {
		name    string
		mutate  func(r *PushRequest)
		field   string // "" accepted
		rule    string
		message string // a part of the message
	}{
		{"name left out is filled in", func(r *PushRequest) { r.Issuer.Name = "" }, "", "", ""},
		{"registered name", func(r *PushRequest) {}, "", "", ""},
		{"area of a county within the province", func(r *PushRequest) { r.Issuer.Name, r.AreaCode = "", "431202" }, "", "", ""},
		{"free-text name", func(r *PushRequest) { r.Issuer.Name = "随便写的发证机关" }, "issuer.name", RuleAuthorityName, `which is "` + registeredName + `"`},
		{"name without the suffix", func(r *PushRequest) { r.Issuer.Name = "湖南省市场监督管理局" }, "issuer.name", RuleAuthorityName, registeredName},
		{"blank name", func(r *PushRequest) { r.Issuer.Name = " " }, "issuer.name", RuleAuthorityName, registeredName},
		{"name with a trailing space", func(r *PushRequest) { r.Issuer.Name = registeredName + " " }, "issuer.name", RuleAuthorityName, registeredName},
		{"unregistered code", func(r *PushRequest) { r.Issuer.Code = unregistered }, "issuer.code", RuleUnknownAuthority, unregistered + " is not a registered issuing authority"},
		{"unregistered code, no name", func(r *PushRequest) { r.Issuer = Party{Code: unregistered} }, "issuer.code", RuleUnknownAuthority, "GET /v1/authorities"},
		{"bad check character", func(r *PushRequest) { r.Issuer = Party{Code: "11430000006122244X"} }, "issuer.code", ident.RuleCheckDigit, ""},
		{"no code", func(r *PushRequest) { r.Issuer.Code = "" }, "issuer.code", ident.RuleLength, ""},
		{"area of another province", func(r *PushRequest) { r.AreaCode = "440100" }, "area_code", RuleAuthorityArea, "starting with 43"},
		{"area of nowhere", func(r *PushRequest) { r.AreaCode = "000000" }, "area_code", RuleAuthorityArea, "outside the area of " + registeredName + " (430000)"},
		{"stock conversion, unregistered", func(r *PushRequest) {
			r.Issuer.Code, r.Provenance = unregistered, &Provenance{Kind: ProvenanceStock, Source: "legacy"}
		}, "issuer.code", RuleUnknownAuthority, ""},
		{"stock conversion, other name", func(r *PushRequest) {
			r.Issuer.Name, r.Provenance = "湖南省工商行政管理局", &Provenance{Kind: ProvenanceStock, Source: "legacy"}
		}, "issuer.name", RuleAuthorityName, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := registryFixture(t, reg)
			req := sampleRequest("A-1")
			req.Issuer.Name = registeredName
			tt.mutate(&req)
			res, err := f.lib.Push(ctxT(t), req)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := signedIssuer(t, res.Document); got.Name != registeredName || got.Code != authorityA {
					t.Errorf("signed issuer %+v, want the registered name", got)
				}
				return
			}
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != licensehub.EINVALID || e.Field != tt.field || ident.Rule(err) != tt.rule {
				t.Fatalf("got %v (field %q, rule %q), want EINVALID on %s, rule %s", err, fieldOf(err), ident.Rule(err), tt.field, tt.rule)
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Errorf("message %q does not say %q", e.Message, tt.message)
			}
			if n := countObjects(t, f.b.objects, ""); n != 0 {
				t.Errorf("a refused push left %d objects", n)
			}
		})
	}
}

// TestPushAuthorityNameRetry: a push without issuer.name and its retry
// with the registered name are the same content: the retry answers the
// first license (200), not a conflict; so does a new version without it.
func TestPushAuthorityNameRetry(t *testing.T) {
	f := registryFixture(t, testAuthorities{authorityA: {Name: registeredName, AreaCode: "430000"}})
	req := sampleRequest("A-2")
	req.Issuer.Name = ""
	first := mustPush(t, f.lib, req)
	req.Issuer.Name = registeredName
	again := mustPush(t, f.lib, req)
	if !first.Created || again.Created || again.Identifier != first.Identifier {
		t.Fatalf("first %s created %v, retry %s created %v", first.Identifier, first.Created, again.Identifier, again.Created)
	}
	v := sampleRequest("A-2")
	v.Issuer.Name, v.ValidUntil = "", "2032-11-19"
	next, err := f.lib.NewVersion(ctxT(t), first.Identifier, v, OpRenew)
	if err != nil {
		t.Fatal(err)
	}
	if got := signedIssuer(t, next.Document); got.Name != registeredName {
		t.Errorf("renewal signed issuer %+v", got)
	}
	v.Issuer.Name = "别的名称"
	if _, err := f.lib.NewVersion(ctxT(t), next.Identifier, v, OpChange); ident.Rule(err) != RuleAuthorityName {
		t.Errorf("a change with another name: %v", err)
	}
}

// TestPushAuthorityOutsideRegistry: without a registry the name is
// required as before, and a license carrying the province's provenance
// (issued by another city's authority) is not checked against the
// registry.
func TestPushAuthorityOutsideRegistry(t *testing.T) {
	t.Run("no registry", func(t *testing.T) {
		f := newFixture(t, fsMemBackend(t))
		req := sampleRequest("A-3")
		req.Issuer.Name = ""
		if _, err := f.lib.Push(ctxT(t), req); fieldOf(err) != "issuer.name" {
			t.Fatalf("got %v, want issuer.name required", err)
		}
	})
	t.Run("province provenance", func(t *testing.T) {
		f := registryFixture(t, testAuthorities{}) // authorityA is not registered here
		req := sampleRequest("A-4")
		req.AreaCode = "440100"
		req.Provenance = &Provenance{Kind: ProvenanceProvince, Source: "province"}
		if _, err := f.lib.Push(ctxT(t), req); err != nil {
			t.Fatal(err)
		}
	})
}
