package lookup

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/publicsecurity"
	"github.com/licensehub/licensehub/adapters/socialsecurity"
	"github.com/licensehub/licensehub/adapters/tax"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	fsstore "github.com/licensehub/licensehub/store/fs"
	memstore "github.com/licensehub/licensehub/store/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	typeBiz     = "11100000000013338W011" // 营业执照
	typeFood    = "11100000000013338W024" // 食品经营许可证
	authorityA  = "11430000006122244L"
	holderOrg   = "91350100M000100Y43"
	matterSetup = "330100-000-XK-00123"
	matterFood  = "330100-000-XK-00301"
	matterOther = "330100-000-XK-00124"
	repID       = "11010519491231002X"
)

var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type anyValidator struct{}

func (anyValidator) Validate(*license.License) error { return nil }

// fakeGateway answers per kind, after the real kinds' parameter checks.
type fakeGateway struct {
	mu       sync.Mutex
	fail     map[string]error
	mismatch map[string][]string // kind → the verified parameters that do not match
	calls    map[string]map[string]string
}

var realKinds = slices.Concat(publicsecurity.Kinds(), socialsecurity.Kinds(), tax.Kinds())

func (g *fakeGateway) Certify(ctx context.Context, kind string, params map[string]string) (*adapters.Issued, error) {
	if k, ok := adapters.FindKind(realKinds, kind); ok {
		if _, err := k.Check(params, t0); err != nil {
			return nil, err
		}
	}
	g.mu.Lock()
	err, mismatched := g.fail[kind], g.mismatch[kind]
	if g.calls == nil {
		g.calls = map[string]map[string]string{}
	}
	g.calls[kind] = params
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := adapters.Certificate{Type: adapters.CertificateType, Kind: kind, Title: kind + " 证明", Number: "ZM20261126" + kind,
		Issuer: adapters.Party{Name: "hub", Code: "11330100MB1234567E"}, Source: adapters.Source{System: "sim", ServiceID: kind},
		Subject:   adapters.Subject{Code: params["id_number"] + params["credit_code"]},
		FetchedAt: t0.Format(time.RFC3339), ValidUntil: t0.Add(72 * time.Hour).Format(time.RFC3339),
		Data: map[string]any{"name": params["name"], "credit_code": params["credit_code"], "state": "正常",
			"secret_field": "must not leak", "status": "正常", "tax_authority": "税务局"}}
	return &adapters.Issued{Certificate: c, Document: []byte(`{"body":{"kind":"` + kind + `"},"signature":{}}`), Mismatched: mismatched}, nil
}

// grants is a fake member: license.lookup on the listed types and
// matters (empty: any).
type grants struct {
	types, matters, authorities []string
}

func (g grants) caller(app string) Caller {
	return Caller{App: app, Authorize: func(op string, res auth.Resource) error {
		if op != auth.OpLicenseLookup {
			return licensehub.Errorf(licensehub.EFORBIDDENOPERATION, "no")
		}
		check := func(code, v string, list []string) error {
			if v != "" && len(list) > 0 && !slices.Contains(list, v) {
				return &licensehub.Error{Code: code, Message: "not granted " + v}
			}
			return nil
		}
		if err := check(licensehub.EFORBIDDENTYPE, res.LicenseType, g.types); err != nil {
			return err
		}
		if err := check(licensehub.EFORBIDDENAUTHORITY, res.Authority, g.authorities); err != nil {
			return err
		}
		return check(licensehub.EFORBIDDENMATTER, res.Matter, g.matters)
	}}
}

var approval = grants{types: []string{typeBiz}, matters: []string{matterSetup, matterFood, matterOther}}.caller("scjg-approval")

type fixture struct {
	objects *fsstore.Store
	kv      *memstore.Store
	ring    *signing.Keyring
	clk     *clock
	lib     *license.Library
	gw      *fakeGateway
	matters *Matters
	svc     *Service
	cons    *Consents
}

func testMatters(t testing.TB) *Matters {
	ms, err := LoadMatters("../configs/matters.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	objs, err := fsstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	kv := memstore.New()
	t.Cleanup(func() { kv.Close() })
	dir := t.TempDir()
	if _, err := signing.Generate(dir, authorityA, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), nil); err != nil {
		t.Fatal(err)
	}
	ring, err := signing.OpenKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{objects: objs, kv: kv, ring: ring, clk: &clock{t: t0}, gw: &fakeGateway{fail: map[string]error{}, mismatch: map[string][]string{}},
		matters: testMatters(t)}
	f.lib = f.library(t)
	f.cons = f.consents(t, kv)
	f.svc = f.service(t, f.lib, f.cons)
	return f
}

func (f *fixture) library(t testing.TB) *license.Library {
	lib, err := license.NewLibrary(license.Config{Objects: f.objects, KV: f.kv, Signers: f.ring,
		Catalog: license.CatalogFunc(func(string) (license.Validator, bool) { return anyValidator{}, true }),
		Clock:   f.clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func (f *fixture) consents(t testing.TB, kv licensehub.KV) *Consents {
	c, err := NewConsents(ConsentsConfig{Objects: f.objects, KV: kv, Matters: f.matters, Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) service(t testing.TB, lib Library, cons *Consents) *Service {
	s, err := NewService(Config{Library: lib, Gateway: f.gw, Matters: f.matters, Consents: cons,
		KV: f.kv, Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// push stores a license of typeCode for holder and returns its identifier.
func (f *fixture) push(t testing.TB, typeCode, number, holder, validUntil string) string {
	t.Helper()
	ct := ident.HolderCreditCode
	if len(holder) == 18 && holder[17] == 'X' || holder == repID {
		ct = ident.HolderResidentID
	}
	res, err := f.lib.Push(ctxT(t), license.PushRequest{App: "scjg-issuer", TypeCode: typeCode, Name: "证照", TypeName: "证照",
		Issuer: license.Party{Name: "湖南省市场监督管理局", Code: authorityA}, Number: number,
		Holder:    license.Holder{Name: "福州示范科技有限公司", Code: holder, CodeType: ct},
		IssueDate: "2020-01-01", ValidFrom: "2020-01-01", ValidUntil: validUntil, AreaCode: "430100",
		Fields: map[string]any{"name": "福州示范科技有限公司", "legal_representative": "张三",
			"registered_capital": "100万元", "business_scope": "软件开发", "home_phone": "13800000000"}})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return res.Identifier
}

func (f *fixture) consent(t testing.TB, holder, matter, app string) *Consent {
	t.Helper()
	ct := ident.HolderCreditCode
	if holder == repID {
		ct = ident.HolderResidentID
	}
	c, err := f.cons.Create(ctxT(t), ConsentRequest{HolderCode: holder, HolderCodeType: ct, Matter: matter, App: app,
		Until: f.clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var duty = Authorization{Operator: &Operator{Account: "zhang3", Name: "张三", Department: "市场监管局", Role: "窗口受理"}, Reason: "企业设立登记审查"}

func wantCode(t testing.TB, err error, code, reason string) {
	t.Helper()
	if licensehub.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if reason != "" && ForbiddenReason(err) != reason {
		t.Fatalf("error %v: reason %q, want %q", err, ForbiddenReason(err), reason)
	}
}
