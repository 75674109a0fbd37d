package lookup

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/publicsecurity"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/sim/simtest"
	"github.com/licensehub/licensehub/license"
	memstore "github.com/licensehub/licensehub/store/mem"
)

func TestLoadMattersRefuses(t *testing.T) {
	good := "matters:\n  - code: M-1\n    name: 事项\n    materials:\n      - name: 营业执照\n        license_type: 11100000000013338W011\n        fields: [name]\n"
	if _, err := ParseMatters("m.yaml", []byte(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "m.yaml: empty"},
		{"unknown top key", "matter: []\n", "m.yaml:1: matter: unknown key"},
		{"unknown material key", strings.Replace(good, "fields:", "feilds:", 1), "m.yaml:7: matters[0].materials[0].feilds: unknown key"},
		{"both kinds", strings.Replace(good, "        fields", "        certificate: identity\n        fields", 1), "either license_type or certificate"},
		{"bad type code", strings.Replace(good, "11100000000013338W011", "1110", 1), "m.yaml:6: matters[0].materials[0]: license_type \"1110\""},
		{"bad param source", strings.Replace(good, "        license_type: 11100000000013338W011\n", "        certificate: identity\n        params: {id_number: whoever}\n", 1), "m.yaml:7: matters[0].materials[0].params.id_number: source \"whoever\""},
		{"certificate without params", strings.Replace(good, "license_type: 11100000000013338W011", "certificate: identity", 1), "params: a certificate needs"},
		{"duplicate matter", good + "  - code: M-1\n    name: 事项\n    materials:\n      - {name: x, certificate: identity, fields: [name], params: {id_number: holder}}\n", "m.yaml:8: matters[1].code: matter M-1 is already defined at line 2"},
		{"missing name", strings.Replace(good, "    name: 事项\n", "", 1), "matters[0].name: required"},
		{"no fields", strings.Replace(good, "        fields: [name]\n", "", 1), "fields: list the fields"},
		{"bad yaml", "matters: [\n", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMatters("m.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
			wantCode(t, err, licensehub.EINVALID, "")
		})
	}
	if _, err := LoadMatters(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
	p := filepath.Join(t.TempDir(), "m.yaml")
	os.WriteFile(p, []byte(good), 0o600)
	if ms, err := LoadMatters(p); err != nil || len(ms.Codes()) != 1 {
		t.Fatalf("LoadMatters: %v", err)
	}
}

func TestAuthorizationValidate(t *testing.T) {
	op := func(mod func(*Operator)) *Operator {
		o := *duty.Operator
		mod(&o)
		return &o
	}
	for _, tc := range []struct {
		name       string
		a          Authorization
		code, want string
	}{
		{"neither", Authorization{Reason: "x"}, licensehub.EFORBIDDEN, ReasonAuthorizationMissing},
		{"both", Authorization{ConsentToken: "t", Operator: duty.Operator, Reason: "x"}, licensehub.EINVALID, "authorization"},
		{"operator without reason", Authorization{Operator: duty.Operator}, licensehub.EINVALID, "reason"},
		{"operator without account", Authorization{Operator: op(func(o *Operator) { o.Account = "" }), Reason: "x"}, licensehub.EINVALID, "operator.account"},
		{"operator without role", Authorization{Operator: op(func(o *Operator) { o.Role = " " }), Reason: "x"}, licensehub.EINVALID, "operator.role"},
		{"reason too long", Authorization{Operator: duty.Operator, Reason: strings.Repeat("由", 201)}, licensehub.EINVALID, "reason"},
		{"operator ok", duty, "", ""},
		{"reason of 200", Authorization{Operator: duty.Operator, Reason: strings.Repeat("由", 200)}, "", ""},
		{"consent ok", Authorization{ConsentToken: "t"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Validate()
			if licensehub.ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			var e *licensehub.Error
			if err != nil && asError(err, &e) && tc.code == licensehub.EINVALID && e.Field != tc.want {
				t.Fatalf("field %q, want %q", e.Field, tc.want)
			}
			if tc.code == licensehub.EFORBIDDEN && ForbiddenReason(err) != tc.want {
				t.Fatalf("reason %q", ForbiddenReason(err))
			}
		})
	}
}

func TestGrantMatrix(t *testing.T) {
	f := newFixture(t)
	biz := f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
	food := f.push(t, typeFood, "F001", holderOrg, "2031-12-31")
	_ = food
	callers := map[string]Caller{
		"type+matter":    approval,
		"any":            grants{}.caller("admin"),
		"other type":     grants{types: []string{typeFood}}.caller("food-approval"),
		"other matter":   grants{types: []string{typeBiz}, matters: []string{"999"}}.caller("x"),
		"other issuer":   grants{authorities: []string{"11430000006122245X"}}.caller("y"),
		"no such matter": approval,
	}
	for _, tc := range []struct {
		caller, matter string
		code           string // ByHolder's error
		ids            []string
	}{
		{"type+matter", matterSetup, "", []string{biz}},
		{"any", matterSetup, "", []string{biz}},     // food permits are not needed by this matter
		{"other type", matterSetup, "", []string{}}, // granted the matter (any), not the type
		{"other matter", matterSetup, licensehub.EFORBIDDENMATTER, nil},
		{"other issuer", matterSetup, "", []string{}},
		{"no such matter", "000-NOPE", licensehub.ENOTFOUND, nil},
	} {
		t.Run(tc.caller+"/"+tc.matter, func(t *testing.T) {
			res, err := f.svc.ByHolder(ctxT(t), callers[tc.caller], tc.matter, holderOrg, duty, Filters{})
			if tc.code != "" {
				wantCode(t, err, tc.code, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range res.Licenses {
				got = append(got, v.Identifier)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.ids) && !(len(got) == 0 && len(tc.ids) == 0) {
				t.Fatalf("got %v, want %v", got, tc.ids)
			}
		})
	}
	// Get: type not in the matter; type not granted; granted.
	_, err := f.svc.Get(ctxT(t), grants{}.caller("admin"), matterSetup, food, duty)
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonNotInMatter)
	_, err = f.svc.Get(ctxT(t), callers["other type"], matterSetup, biz, duty)
	wantCode(t, err, licensehub.EFORBIDDENTYPE, "")
	_, err = f.svc.Get(ctxT(t), callers["other issuer"], matterSetup, biz, duty)
	wantCode(t, err, licensehub.EFORBIDDENAUTHORITY, "")
	res, err := f.svc.Get(ctxT(t), approval, matterSetup, biz, duty)
	if err != nil || len(res.Licenses) != 1 || res.Licenses[0].Status != license.StatusValid {
		t.Fatalf("Get: %+v %v", res, err)
	}
	// Filters.
	if _, err := f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, duty, Filters{Type: typeFood}); ForbiddenReason(err) != ReasonNotInMatter {
		t.Fatalf("type filter outside the matter: %v", err)
	}
	if res, err := f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, duty, Filters{Status: "revoked"}); err != nil || len(res.Licenses) != 0 {
		t.Fatalf("status filter: %+v %v", res, err)
	}
	if res, err := f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, duty, Filters{Status: "01", Type: typeBiz}); err != nil || len(res.Licenses) != 1 {
		t.Fatalf("status filter: %+v %v", res, err)
	}
	_, err = f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, duty, Filters{Status: "nope"})
	wantCode(t, err, licensehub.EINVALID, "")
	// Neither consent nor operator.
	_, err = f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, Authorization{Reason: "x"}, Filters{})
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonAuthorizationMissing)
}

func TestConsentLifecycle(t *testing.T) {
	f := newFixture(t)
	biz := f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
	con := f.consent(t, holderOrg, matterSetup, "scjg-approval")
	if len(con.Token) != 43 || len(con.ID) != 32 || strings.Contains(con.TokenSM3, con.Token) {
		t.Fatalf("consent %+v", con)
	}
	// The token is not stored anywhere.
	r, _, err := f.objects.Get(ctxT(t), consentKey(con.ID))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r)
	r.Close()
	if strings.Contains(string(raw), con.Token) {
		t.Fatal("the token is stored")
	}
	byConsent := Authorization{ConsentToken: con.Token}
	// Used.
	res, err := f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, byConsent, Filters{})
	if err != nil || len(res.Licenses) != 1 || res.ConsentID != con.ID {
		t.Fatalf("lookup with consent: %+v %v", res, err)
	}
	if res, err := f.svc.Get(ctxT(t), approval, matterSetup, biz, byConsent); err != nil || res.ConsentID != con.ID {
		t.Fatalf("get with consent: %v", err)
	}
	other := f.consent(t, repID, matterSetup, "")
	for _, tc := range []struct {
		name, token, holder, matter, app, reason string
	}{
		{"missing", "nope", holderOrg, matterSetup, "scjg-approval", ReasonConsentMissing},
		{"unknown token", randomToken(), holderOrg, matterSetup, "scjg-approval", ReasonConsentMissing},
		{"other holder", con.Token, repID, matterSetup, "scjg-approval", ReasonConsentOtherHolder},
		{"other matter", con.Token, holderOrg, matterOther, "scjg-approval", ReasonConsentOtherMatter},
		{"other app", con.Token, holderOrg, matterSetup, "another-app", ReasonConsentOtherApp},
		{"any app", other.Token, repID, matterSetup, "another-app", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.cons.Check(ctxT(t), tc.token, tc.holder, tc.matter, tc.app, f.clk.Now())
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, licensehub.EFORBIDDEN, tc.reason)
		})
	}
	// Not yet valid / expired.
	_, err = f.cons.Check(ctxT(t), con.Token, holderOrg, matterSetup, "scjg-approval", f.clk.Now().Add(-time.Minute))
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonConsentNotYetValid)
	_, err = f.cons.Check(ctxT(t), con.Token, holderOrg, matterSetup, "scjg-approval", f.clk.Now().Add(time.Hour))
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonConsentExpired)

	// Revoked: refused right away by a second instance sharing the stores,
	// and by one whose KV lost the marker (object store decides).
	second := f.consents(t, f.kv)
	lostKV := memstore.New()
	defer lostKV.Close()
	third := f.consents(t, lostKV)
	if _, err := second.Check(ctxT(t), con.Token, holderOrg, matterSetup, "scjg-approval", f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.cons.Revoke(ctxT(t), con.ID, repID); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("revoke by another holder: %v", err)
	}
	if err := f.cons.Revoke(ctxT(t), con.ID, holderOrg); err != nil {
		t.Fatal(err)
	}
	if err := f.cons.Revoke(ctxT(t), con.ID, holderOrg); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	for name, c := range map[string]*Consents{"second": second, "lost kv": third} {
		_, err := c.Check(ctxT(t), con.Token, holderOrg, matterSetup, "scjg-approval", f.clk.Now())
		if ForbiddenReason(err) != ReasonConsentRevoked {
			t.Fatalf("%s: %v", name, err)
		}
	}
	_, err = f.svc.ByHolder(ctxT(t), approval, matterSetup, holderOrg, byConsent, Filters{})
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonConsentRevoked)
	if got, err := second.Get(ctxT(t), con.ID, holderOrg); err != nil || got.Revoked == nil {
		t.Fatalf("Get: %+v %v", got, err)
	}

	// Create's checks.
	for _, req := range []ConsentRequest{
		{HolderCode: "91350100M000100Y44", HolderCodeType: "001", Matter: matterSetup, Until: t0.Add(time.Hour)},
		{HolderCode: holderOrg, HolderCodeType: "001", Matter: "nope", Until: t0.Add(time.Hour)},
		{HolderCode: holderOrg, HolderCodeType: "001", Matter: matterSetup},
		{HolderCode: holderOrg, HolderCodeType: "001", Matter: matterSetup, Until: t0.Add(-time.Hour)},
		{HolderCode: holderOrg, HolderCodeType: "001", Matter: matterSetup, Until: t0.Add(1000 * 24 * time.Hour)},
	} {
		if _, err := f.cons.Create(ctxT(t), req); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Fatalf("%+v: %v", req, err)
		}
	}
}

func TestConsentForLicenseOfAnotherHolder(t *testing.T) {
	f := newFixture(t)
	id := f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
	con := f.consent(t, repID, matterSetup, "")
	_, err := f.svc.Get(ctxT(t), approval, matterSetup, id, Authorization{ConsentToken: con.Token})
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonConsentOtherHolder)
}

func TestMinimisation(t *testing.T) {
	f := newFixture(t)
	id := f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
	res, err := f.svc.Get(ctxT(t), approval, matterSetup, id, duty)
	if err != nil {
		t.Fatal(err)
	}
	v := res.Licenses[0]
	// 企业设立登记 may see name, legal_representative, registered_capital
	// (among others), not business_scope, and never home_phone.
	for _, want := range []string{"name", "legal_representative", "registered_capital"} {
		if _, ok := v.Fields[want]; !ok {
			t.Errorf("field %s missing", want)
		}
	}
	for _, not := range []string{"business_scope", "home_phone"} {
		if _, ok := v.Fields[not]; ok {
			t.Errorf("field %s present", not)
		}
	}
	// Another matter sees business_scope but not registered_capital... and
	// fields the matter lists that the license lacks are absent, not blank.
	res, err = f.svc.Get(ctxT(t), approval, matterOther, id, duty)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Licenses[0].Fields["business_scope"]; !ok {
		t.Error("business_scope missing for 企业变更登记")
	}
	if _, ok := res.Licenses[0].Fields["entity_type"]; ok {
		t.Error("entity_type (not on the license) is present")
	}
	// The use record holds the full signed original.
	u, err := f.svc.ReadUse(ctxT(t), v.Use.AccessCode)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := f.lib.Get(ctxT(t), id)
	if string(u.Document) != string(rec.Document) || u.Identifier != id || u.Matter != matterSetup ||
		u.Reason != duty.Reason || u.Operator == nil || u.Operator.Account != "zhang3" || u.App != "scjg-approval" {
		t.Fatalf("use %+v", u)
	}
	// The code expires.
	if _, err := f.svc.ReadUse(ctxT(t), "short"); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatal(err)
	}
	f.clk.Add(11 * time.Minute)
	if _, err := f.svc.ReadUse(ctxT(t), v.Use.AccessCode); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("ReadUse after expiry: %v", err)
	}
	// The code lives only in the KV, for its TTL (the lookup's audit
	// record is the use's durable trace).
	if v.Use.Of != id {
		t.Errorf("use ref names %q, want %s", v.Use.Of, id)
	}
	f.clk.Add(-11 * time.Minute)
	f.kv.Delete(ctxT(t), kvUse(u.ID))
	if _, err := f.svc.ReadUse(ctxT(t), v.Use.AccessCode); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("ReadUse once the KV lost the code: %v", err)
	}
}

func TestMaterialStates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, f *fixture)
		caller  Caller
		inputs  map[string]string
		matter  string
		want    map[string]string // material → state
		detail  map[string]string // material → a part of its detail
		missing []string
	}{
		{
			name:   "all found",
			setup:  func(t *testing.T, f *fixture) { f.push(t, typeBiz, "B001", holderOrg, "2031-12-31") },
			inputs: map[string]string{"legal_representative_id_number": repID, "legal_representative_name": "张三"},
			want:   map[string]string{"营业执照": StateFound, "法定代表人身份核验证明": StateFound, "税务登记证明": StateFound},
		},
		{
			name:    "no license, no input",
			want:    map[string]string{"营业执照": StateNotFound, "法定代表人身份核验证明": StateNeedsInput, "税务登记证明": StateFound},
			missing: []string{"营业执照", "法定代表人身份核验证明"},
		},
		{
			name: "expired by date",
			setup: func(t *testing.T, f *fixture) {
				// Pushed while valid (an expired license is refused); its
				// validity ended since, and the sweeper has not run yet.
				back := f.clk.Now().Sub(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
				f.clk.Add(-back)
				f.push(t, typeBiz, "B001", holderOrg, "2025-12-31")
				f.clk.Add(back)
			},
			want:    map[string]string{"营业执照": StateExpired},
			missing: []string{"营业执照", "法定代表人身份核验证明"},
		},
		{
			name: "revoked",
			setup: func(t *testing.T, f *fixture) {
				id := f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
				f.change(t, id, license.OpRevoke)
			},
			want: map[string]string{"营业执照": StateRevoked},
		},
		{
			name: "suspended",
			setup: func(t *testing.T, f *fixture) {
				id := f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
				f.change(t, id, license.OpSuspend)
			},
			want: map[string]string{"营业执照": StateSuspended},
		},
		{
			name: "a valid one beats a revoked one",
			setup: func(t *testing.T, f *fixture) {
				f.change(t, f.push(t, typeBiz, "B001", holderOrg, "2031-12-31"), license.OpRevoke)
				f.push(t, typeBiz, "B002", holderOrg, "2031-12-31")
			},
			want: map[string]string{"营业执照": StateFound},
		},
		{
			name:   "not permitted",
			setup:  func(t *testing.T, f *fixture) { f.push(t, typeBiz, "B001", holderOrg, "2031-12-31") },
			caller: grants{types: []string{typeFood}}.caller("food"),
			want:   map[string]string{"营业执照": StateNotPermitted},
		},
		{
			name:   "not permitted without any license",
			caller: grants{types: []string{typeFood}}.caller("food"),
			want:   map[string]string{"营业执照": StateNotPermitted},
		},
		{
			name: "tax down, the rest returned",
			setup: func(t *testing.T, f *fixture) {
				f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
				f.gw.fail["tax_registration"] = &licensehub.Error{Code: licensehub.EUPSTREAM, Message: "tax is down",
					Details: map[string]any{"upstream": "tax", "retry_after_seconds": int64(7)}}
			},
			inputs:  map[string]string{"legal_representative_id_number": repID, "legal_representative_name": "张三"},
			want:    map[string]string{"营业执照": StateFound, "法定代表人身份核验证明": StateFound, "税务登记证明": StateUpstreamUnavailable},
			missing: []string{"税务登记证明"},
		},
		{
			name: "certificate not found",
			setup: func(t *testing.T, f *fixture) {
				f.gw.fail["identity"] = licensehub.Errorf(licensehub.ENOTFOUND, "no such person")
			},
			inputs: map[string]string{"legal_representative_id_number": repID, "legal_representative_name": "张三"},
			want:   map[string]string{"法定代表人身份核验证明": StateNotFound},
		},
		{
			name: "certificate not permitted",
			setup: func(t *testing.T, f *fixture) {
				f.gw.fail["identity"] = licensehub.Errorf(licensehub.EFORBIDDENMATTER, "no")
			},
			inputs: map[string]string{"legal_representative_id_number": repID, "legal_representative_name": "张三"},
			want:   map[string]string{"法定代表人身份核验证明": StateNotPermitted},
		},
		{
			name:   "bad input",
			inputs: map[string]string{"legal_representative_id_number": "110105194912310021", "legal_representative_name": "张三"},
			want:   map[string]string{"法定代表人身份核验证明": StateNeedsInput},
			detail: map[string]string{"法定代表人身份核验证明": "the input legal_representative_id_number: "},
		},
		{
			name:   "hostile name",
			inputs: map[string]string{"legal_representative_id_number": repID, "legal_representative_name": "张\u202e三"},
			want:   map[string]string{"法定代表人身份核验证明": StateNeedsInput},
			detail: map[string]string{"法定代表人身份核验证明": "the input legal_representative_name: params.name holds a bidirectional control character"},
		},
		{
			name: "identity mismatch",
			setup: func(t *testing.T, f *fixture) {
				f.push(t, typeBiz, "B001", holderOrg, "2031-12-31")
				f.gw.mismatch["identity"] = []string{"name"}
			},
			inputs:  map[string]string{"legal_representative_id_number": repID, "legal_representative_name": "王不对"},
			want:    map[string]string{"营业执照": StateFound, "法定代表人身份核验证明": StateMismatch, "税务登记证明": StateFound},
			detail:  map[string]string{"法定代表人身份核验证明": "record does not match the given name (the input legal_representative_name)"},
			missing: []string{"法定代表人身份核验证明"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			caller := approval
			if tc.caller.Authorize != nil {
				caller = tc.caller
			}
			res, err := f.svc.MaterialsFor(ctxT(t), caller, MaterialsRequest{Matter: matterFood, HolderCode: holderOrg,
				HolderName: "福州示范科技有限公司", Inputs: tc.inputs}, duty)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Materials) != 3 {
				t.Fatalf("%d materials", len(res.Materials))
			}
			for _, e := range res.Materials {
				want, ok := tc.want[e.Name]
				if !ok {
					continue
				}
				if e.State != want {
					t.Errorf("%s: state %s (%s), want %s", e.Name, e.State, e.Detail, want)
				}
				if d := tc.detail[e.Name]; !strings.Contains(e.Detail, d) {
					t.Errorf("%s: detail %q, want it to hold %q", e.Name, e.Detail, d)
				}
				if e.State == StateMismatch && (e.CertificateView != nil || e.License != nil) {
					t.Errorf("%s: a mismatch carries a view: %+v", e.Name, e)
				}
				switch {
				case e.State == StateFound && e.License != nil:
					if e.License.Use == nil || e.License.Status != license.StatusValid {
						t.Errorf("%s: found without a use record or valid status: %+v", e.Name, e.License)
					}
				case e.State == StateFound && e.CertificateView != nil:
					if e.CertificateView.Use == nil {
						t.Errorf("%s: no use record", e.Name)
					}
					if _, ok := e.CertificateView.Data["secret_field"]; ok {
						t.Errorf("%s: a field the matter may not see is present", e.Name)
					}
					u, err := f.svc.ReadUse(ctxT(t), e.CertificateView.Use.AccessCode)
					if err != nil || u.CertificateNumber != e.CertificateView.Number || len(u.Document) == 0 {
						t.Errorf("%s: use %+v %v", e.Name, u, err)
					}
				case e.State == StateFound:
					t.Errorf("%s: found without a view", e.Name)
				case e.State == StateUpstreamUnavailable:
					if e.RetryAfterSeconds != 7 {
						t.Errorf("retry after %d", e.RetryAfterSeconds)
					}
				}
				if e.State != StateFound && (e.License != nil && e.License.Use != nil) {
					t.Errorf("%s: a use record for a material in state %s", e.Name, e.State)
				}
			}
			if tc.missing != nil && fmt.Sprint(res.Missing) != fmt.Sprint(tc.missing) {
				t.Errorf("missing %v, want %v", res.Missing, tc.missing)
			}
		})
	}
}

func TestMaterialsHolderParams(t *testing.T) {
	f := newFixture(t)
	res, err := f.svc.Materials(ctxT(t), grants{}.caller("any"), "330100-000-QT-00901", repID, "李四", duty)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.gw.calls["identity"]; got["id_number"] != repID || got["name"] != "李四" {
		t.Fatalf("identity params %v", got)
	}
	if res.Materials[1].State != StateFound || fmt.Sprint(res.Missing) != "[居民户口簿]" {
		t.Fatalf("%+v", res)
	}
	// The caller's matter grant and the authorisation come first.
	_, err = f.svc.Materials(ctxT(t), approval, "330100-000-QT-00901", repID, "李四", duty)
	wantCode(t, err, licensehub.EFORBIDDENMATTER, "")
	_, err = f.svc.Materials(ctxT(t), approval, matterFood, holderOrg, "x", Authorization{ConsentToken: randomToken()})
	wantCode(t, err, licensehub.EFORBIDDEN, ReasonConsentMissing)
}

func (f *fixture) change(t testing.TB, id, op string) {
	t.Helper()
	if _, err := f.lib.ChangeStatus(ctxT(t), id, op, "test", "scjg-issuer"); err != nil {
		t.Fatalf("%s %s: %v", op, id, err)
	}
}

// TestRevokeThenRead: 200 licenses, each revoked on one instance while the
// other instance reads it; once ChangeStatus has returned, no read that
// starts afterwards (on either instance) may say valid.
func TestRevokeThenRead(t *testing.T) {
	f := newFixture(t)
	lib2 := f.library(t)
	svc2 := f.service(t, lib2, f.consents(t, f.kv))
	svcs := []*Service{f.svc, svc2}
	libs := []*license.Library{f.lib, lib2}
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.push(t, typeBiz, fmt.Sprintf("R%03d", i), holderOrg, "2031-12-31")
	}
	// Warm the document caches.
	for _, s := range svcs {
		if _, err := s.ByHolder(ctxT(t), approval, matterSetup, holderOrg, duty, Filters{}); err != nil {
			t.Fatal(err)
		}
	}
	var bad atomic.Int64
	var wg sync.WaitGroup
	for i, id := range ids {
		revoked := make(chan struct{})
		wg.Add(2)
		go func() { // revoke on instance i%2
			defer wg.Done()
			defer close(revoked)
			if _, err := libs[i%2].ChangeStatus(ctxT(t), id, license.OpRevoke, "penalty", "scjg-issuer"); err != nil {
				t.Error(err)
			}
		}()
		go func() { // read on the other instance before, during and after
			defer wg.Done()
			s := svcs[(i+1)%2]
			for after := false; ; {
				select {
				case <-revoked:
					after = true
				default:
				}
				res, err := s.Get(ctxT(t), approval, matterSetup, id, duty)
				if err != nil {
					t.Error(err)
					return
				}
				if after {
					if res.Licenses[0].Status == license.StatusValid {
						bad.Add(1)
					}
					m, err := s.Materials(ctxT(t), approval, matterOther, holderOrg, "x", duty)
					if err != nil {
						t.Error(err)
						return
					}
					_ = m
					return
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d reads after the revocation returned said valid", bad.Load())
	}
	// Every license is now revoked: Materials reports revoked, not found.
	res, err := f.svc.Materials(ctxT(t), approval, matterOther, holderOrg, "x", duty)
	if err != nil || res.Materials[0].State != StateRevoked {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestViewProvenance: a converted paper license says so in its view; a
// department's push has no provenance.
func TestViewProvenance(t *testing.T) {
	f := newFixture(t)
	pushed := f.push(t, typeBiz, "B101", holderOrg, "2031-12-31")
	res, err := f.lib.Push(ctxT(t), license.PushRequest{App: "hubctl", TypeCode: typeBiz, Name: "证照", TypeName: "证照",
		Issuer: license.Party{Name: "湖南省市场监督管理局", Code: authorityA}, Number: "S102",
		Holder:    license.Holder{Name: "福州示范科技有限公司", Code: holderOrg, CodeType: "001"},
		IssueDate: "2010-05-04", ValidFrom: "2010-05-04", ValidUntil: "2031-12-31", AreaCode: "430100",
		Fields:     map[string]any{"name": "福州示范科技有限公司", "legal_representative": "张三"},
		Provenance: &license.Provenance{Kind: license.ProvenanceStock, Source: "register", Batch: "job1", SourceLine: 7}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want string
	}{{pushed, ""}, {res.Identifier, license.ProvenanceStock}} {
		got, err := f.svc.Get(ctxT(t), approval, matterSetup, tc.id, duty)
		if err != nil {
			t.Fatal(err)
		}
		p := got.Licenses[0].Provenance
		switch {
		case tc.want == "" && p != nil:
			t.Errorf("%s: provenance %+v on a department's push", tc.id, p)
		case tc.want != "" && (p == nil || p.Kind != tc.want || p.SourceLine != 7 || p.Batch != "job1"):
			t.Errorf("%s: provenance %+v, want %s from job1 line 7", tc.id, p, tc.want)
		}
	}
}

// TestIdentityMaterialIsACheck: with the real gateway and the simulated
// public-security system, the legal representative's identity material is
// found with the real name and a mismatch (in missing, without a view or a
// use, and naming nothing of the record) with a wrong one.
func TestIdentityMaterialIsACheck(t *testing.T) {
	f := newFixture(t)
	s, ps := simtest.Start(t, sim.Config{Seed: 7}, publicsecurity.Upstream, nil)
	gw, err := adapters.NewGateway(adapters.GatewayConfig{
		Upstreams: map[string]adapters.Connected{publicsecurity.Upstream: ps},
		Kinds:     publicsecurity.Kinds(), Signers: f.ring, Authority: adapters.Party{Name: "证照通", Code: authorityA},
		Validity: 72 * time.Hour, Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Config{Library: f.lib, Gateway: gw, Matters: f.matters, Consents: f.cons, KV: f.kv, Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	rep := s.SamplePeople(1)[0]
	real := s.PersonName(rep)
	for _, tc := range []struct {
		name, asked string
		state       string
		missing     bool
	}{
		{"real name", real, StateFound, false},
		{"wrong name", "王不对", StateMismatch, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := svc.MaterialsFor(ctxT(t), approval, MaterialsRequest{Matter: matterSetup, HolderCode: holderOrg,
				Inputs: map[string]string{"legal_representative_id_number": rep, "legal_representative_name": tc.asked}}, duty)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(res.Materials, func(e MaterialEntry) bool { return e.Certificate == publicsecurity.KindIdentity })
			e := res.Materials[i]
			if e.State != tc.state || slices.Contains(res.Missing, e.Name) != tc.missing {
				t.Fatalf("identity material %+v, missing %v", e, res.Missing)
			}
			if tc.state == StateFound {
				got := slices.Sorted(maps.Keys(e.CertificateView.Data))
				if want := []string{"document_valid_until", "id_number_match", "name", "name_match", "status"}; !slices.Equal(got, want) {
					t.Errorf("view fields %v, want the matter's %v", got, want)
				}
				return
			}
			if e.CertificateView != nil || strings.Contains(e.Detail, real) {
				t.Errorf("a mismatch discloses: %+v", e)
			}
		})
	}
}
