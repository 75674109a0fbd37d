package license_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signable"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/signing/jcs"
	fsstore "github.com/licensehub/licensehub/store/fs"
	memstore "github.com/licensehub/licensehub/store/mem"
)

const (
	fuzzAuthority = "11430000006122244L"
	fuzzHolder    = "91350100M000100Y43"
	fuzzType      = "11100000000013338W011" // 营业执照 of configs/catalog
)

// FuzzSignedLicense proves the property of what the hub signs: whenever a
// push is accepted, the stored document re-parses (signing.ParseDocument,
// then strictly into license.License), is canonical (re-canonicalising
// gives the same bytes, and so does the body after a round trip through
// the Go type), its signature verifies, every string in it passes the text
// rules, and the same content passes the same validation again (Check).
func FuzzSignedLicense(f *testing.F) {
	seeds := [][8]string{
		{"福州示范科技有限公司", "营业执照", "湖南省市场监督管理局", "张三", "福州市鼓楼区1号", "HT-2026-1", "2026-11-20", "long-term"},
		{"\xff\xfe\xc3\x28", "", "局", "张三", "地址", "A1", "2026-11-20", "2031-11-19"},
		{"福州\u202e公司", "名", "局", "张\u200b三", "地址", "A2", "2026-11-20", "2031-11-19"},
		{"Cafe\u0301", "n", "i", "r", "a", "A3", "1800-01-01", "long-term"},
		{"公司", "n", "i", "r", "a", "A4", "2099-01-01", "2100-01-01"},
		{"公司", "n", "i", "r\n", "a\ue000", "a-b", "2010-01-01", "2015-12-31"},
		{"\"\\/\u00e9\u4e2d", "\u00a0x", "\U0001F600", "r", "a", "x", "2026-11-26", "2026-11-26"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
	}
	cat, err := catalog.Load("../configs/catalog")
	if err != nil {
		f.Fatal(err)
	}
	keys := f.TempDir()
	if _, err := signing.Generate(keys, fuzzAuthority, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), nil); err != nil {
		f.Fatal(err)
	}
	ring, err := signing.OpenKeyring(keys)
	if err != nil {
		f.Fatal(err)
	}
	objs, err := fsstore.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { objs.Close() })
	kv := memstore.New()
	f.Cleanup(func() { kv.Close() })
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	lib, err := license.NewLibrary(license.Config{Objects: objs, KV: kv, Signers: ring,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName,
		Clock: func() time.Time { return now }, IssueDateSkewDays: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OpTimeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	var seq atomic.Int64

	f.Fuzz(func(t *testing.T, holderName, name, issuerName, representative, address, number, issue, until string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := license.PushRequest{
			TypeCode: fuzzType, Name: name,
			Issuer: license.Party{Name: issuerName, Code: fuzzAuthority},
			// A fresh number per run, so that every accepted push signs.
			Number:    fmt.Sprintf("%s-%d", number, seq.Add(1)),
			Holder:    license.Holder{Name: holderName, Code: fuzzHolder, CodeType: ident.HolderCreditCode},
			IssueDate: issue, ValidFrom: issue, ValidUntil: until, AreaCode: "430100",
			Fields: map[string]any{
				"unified_social_credit_code": fuzzHolder, "name": holderName, "entity_type": "有限责任公司",
				"legal_representative": representative, "established_date": "2015-03-12", "business_term_to": "long-term",
				"address": address, "business_scope": "软件开发", "registration_authority": "福州市市场监督管理局",
			},
		}
		res, err := lib.Push(ctx, req)
		if err != nil {
			if [8]string{holderName, name, issuerName, representative, address, number, issue, until} == seeds[0] {
				t.Fatalf("the ordinary license was refused: %v", err) // the property would go untested
			}
			return // refused: nothing signed
		}
		raw := res.Document
		d, err := signing.ParseDocument(raw)
		if err != nil {
			t.Fatalf("signed document does not re-parse: %v", err)
		}
		if canon, err := jcs.Canonicalize(raw); err != nil || !bytes.Equal(canon, raw) {
			t.Fatalf("signed document is not canonical (%v)", err)
		}
		if _, err := signing.VerifySignature(d, ring); err != nil {
			t.Fatalf("signature: %v", err)
		}
		var lic license.License
		dec := json.NewDecoder(bytes.NewReader(d.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&lic); err != nil {
			t.Fatalf("body does not fit license.License: %v", err)
		}
		again, err := json.Marshal(&lic)
		if err != nil {
			t.Fatal(err)
		}
		c1, err1 := jcs.Canonicalize(d.Body)
		c2, err2 := jcs.Canonicalize(again)
		if err1 != nil || err2 != nil || !bytes.Equal(c1, c2) {
			t.Fatalf("body changes through license.License (%v, %v):\n%s\n%s", err1, err2, c1, c2)
		}
		walkStrings(t, "", reflect.ValueOf(lic))
		if err := cat.Validate(&lic); err != nil {
			t.Fatalf("signed body fails its catalog entry: %v", err)
		}
		// The same content passes the same validation again.
		re := license.PushRequest{TypeCode: lic.TypeCode, Name: lic.Name, TypeName: lic.TypeName, Issuer: lic.Issuer,
			Number: lic.Number + "-R", Holder: lic.Holder, IssueDate: lic.IssueDate, ValidFrom: lic.ValidFrom,
			ValidUntil: lic.ValidUntil, AreaCode: lic.AreaCode, Matter: lic.Matter, Fields: lic.Fields}
		if _, err := lib.Check(ctx, re); err != nil {
			t.Fatalf("the signed content fails validation: %v", err)
		}
	})
}

// walkStrings fails on any string of v that breaks the text rules.
func walkStrings(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		if rule, pos := signable.Problem(v.String()); rule != "" {
			t.Fatalf("signed %s breaks %s at %d", path, rule, pos)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			walkStrings(t, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(t, path, v.Elem())
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walkStrings(t, path+"["+k.String()+"]", k)
			walkStrings(t, path+"."+k.String(), v.MapIndex(k))
		}
	}
}
