package convert

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	fsstore "github.com/licensehub/licensehub/store/fs"
	memstore "github.com/licensehub/licensehub/store/mem"
)

// stockLibrary is a library over the repository's catalog, on an fs
// object store and an in-memory KV, whose today is testToday.
func stockLibrary(t *testing.T) *license.Library {
	t.Helper()
	objs, err := fsstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	kv := memstore.New()
	t.Cleanup(func() { kv.Close() })
	lib, _ := stockLibraryOn(t, objs, kv)
	return lib
}

// stockLibraryOn is stockLibrary on the given stores; it returns the
// demo authority's keyring too.
func stockLibraryOn(t *testing.T, objs licensehub.ObjectStore, kv licensehub.KV) (*license.Library, *signing.Keyring) {
	t.Helper()
	cat := testCatalog(t)
	keys := t.TempDir()
	if _, err := signing.Generate(keys, demoAuth, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), nil); err != nil {
		t.Fatal(err)
	}
	ring, err := signing.OpenKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := license.NewLibrary(license.Config{Objects: objs, KV: kv, Signers: ring,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName,
		Clock: testClock, IssueDateSkewDays: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return lib, ring
}

// foodMapping is a food business permit register mapping (the type
// records historic licenses: record_expired in its catalog entry).
func foodMapping(t *testing.T) *Mapping {
	t.Helper()
	food := &Mapping{
		Name: "food", LicenseType: foodType, AreaCode: "430100",
		Authority: license.Party{Name: "湖南省市场监督管理局（演示）", Code: demoAuth},
		Columns: map[string]string{
			KeyNumber: "编号", KeyHolderName: "名称", KeyHolderCode: "代码", KeyIssueDate: "日期", KeyValidUntil: "至",
			"fields.operator_name": "名称", "fields.unified_social_credit_code": "代码",
			"fields.legal_representative": "法人", "fields.domicile": "住所", "fields.business_premises": "住所",
			"fields.main_business_format": "业态", "fields.business_items": "项目",
		},
		Clock: testClock,
	}
	if err := food.BindCatalog(testCatalog(t)); err != nil {
		t.Fatal(err)
	}
	return food
}

// expiredPermitRow is a register row of a food business permit whose
// validity ended in 2017.
func expiredPermitRow() map[string]string {
	return map[string]string{"编号": "JY14301000001234", "名称": "长沙某某餐饮有限公司", "代码": creditC, "日期": "2012年5月6日",
		"至": "2017年5月5日", "法人": "王五", "住所": "长沙市天心区某路1号", "业态": "餐饮服务经营者", "项目": "热食类食品制售"}
}

// TestStockExpiredLicense: a legacy license whose validity already ended
// is recorded with status 05 at once where its catalog type allows
// historic records (the food business permit: record_expired), refused
// (INVALID, valid_until, rule expired) where it does not (the business
// license), and never reads as valid.
func TestStockExpiredLicense(t *testing.T) {
	lib := stockLibrary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	food := foodMapping(t)
	req, rj := food.Request(Row{Line: 3, Values: expiredPermitRow()}, "job-1")
	if rj != nil {
		t.Fatalf("reject %+v", rj)
	}
	res, err := lib.Push(ctx, req)
	if err != nil {
		t.Fatalf("an expired permit of the register: %v", err)
	}
	if st, err := lib.Status(ctx, res.Identifier); err != nil || st != license.StatusExpired {
		t.Fatalf("status %s, %v; want 05 expired", st, err)
	}
	// The same permit pushed by a department is refused.
	dept := req
	dept.Provenance = nil
	dept.Number = "JY14301000009999"
	if _, err := lib.Push(ctx, dept); !isRule(err, "valid_until", license.RuleExpired) {
		t.Fatalf("a department's expired permit: %v", err)
	}

	// The business license does not record historic licenses.
	biz := bizMapping(t)
	brow := goodRow()
	brow["有效期至"] = "2020-03-03"
	breq, rj := biz.Request(Row{Line: 4, Values: brow}, "job-2")
	if rj != nil {
		t.Fatalf("reject %+v", rj)
	}
	breq.Fields = map[string]any{"unified_social_credit_code": creditA, "name": breq.Holder.Name, "entity_type": "有限责任公司",
		"legal_representative": "张三", "established_date": "2015-03-04", "business_term_to": "long-term",
		"address": "长沙市某路1号", "business_scope": "软件开发。", "registration_authority": "长沙市市场监督管理局"}
	if _, err := lib.Push(ctx, breq); !isRule(err, "valid_until", license.RuleExpired) {
		t.Fatalf("an expired business license of the register: %v", err)
	}
}

// TestStockTextNormalised: legacy text in another Unicode normal form is
// converted to NFC (the hub converts it, so it writes the one form it
// signs); a zero-width character inside a value is left for the library
// to refuse, naming the field.
func TestStockTextNormalised(t *testing.T) {
	m := bizMapping(t)
	row := goodRow()
	row["企业名称"] = "Cafe\u0301 长沙有限公司"
	req, rj := m.Request(Row{Line: 2, Values: row}, "b")
	if rj != nil {
		t.Fatalf("reject %+v", rj)
	}
	if req.Holder.Name != "Caf\u00e9 长沙有限公司" {
		t.Errorf("holder name %q, want NFC", req.Holder.Name)
	}
	row["企业名称"] = "长沙\u200b有限公司"
	req, rj = m.Request(Row{Line: 3, Values: row}, "b")
	if rj != nil {
		t.Fatalf("reject %+v", rj)
	}
	if _, err := stockLibrary(t).Check(context.Background(), req); !isRule(err, "holder.name", "zero_width") {
		t.Errorf("a zero-width space inside the name: %v", err)
	}
}

func isRule(err error, field, rule string) bool {
	e, ok := err.(*licensehub.Error)
	return ok && e.Code == licensehub.EINVALID && e.Field == field && e.Details["rule"] == rule
}
