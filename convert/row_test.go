package convert

import (
	"reflect"
	"strings"
	"testing"

	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

// goodRow is a clean row of the bizMapping register.
func goodRow() map[string]string {
	return map[string]string{
		"注册号": "430100000012345", "企业名称": "长沙示范科技有限公司", "统一社会信用代码": creditA,
		"发证日期": "2015-03-04", "有效期自": "", "有效期至": "", "法定代表人": "张三", "企业类型": "有限",
	}
}

func TestRequestAccepted(t *testing.T) {
	m := bizMapping(t)
	row := Row{Line: 7, Values: goodRow()}
	req, rj := m.Request(row, "batch-1")
	if rj != nil {
		t.Fatalf("reject: %+v", rj)
	}
	want := license.PushRequest{
		TypeCode:  bizType,
		Issuer:    license.Party{Name: "湖南省市场监督管理局（演示）", Code: demoAuth},
		Number:    "430100000012345",
		Holder:    license.Holder{Name: "长沙示范科技有限公司", Code: creditA, CodeType: ident.HolderCreditCode},
		IssueDate: "2015-03-04", ValidFrom: "2015-03-04", AreaCode: "430100",
		Fields: map[string]any{"legal_representative": "张三", "entity_type": "有限"},
		Provenance: &license.Provenance{Kind: license.ProvenanceStock, Source: "test-register", Batch: "batch-1",
			SourceLine: 7, OriginalIssueDate: "2015-03-04"},
	}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("request\n got %+v\nwant %+v\nprovenance %+v", req, want, req.Provenance)
	}
}

// TestRequestRows runs dirty rows through the mapping: each either gives
// the expected request parts or the expected reject (code, field).
func TestRequestRows(t *testing.T) {
	type want struct {
		code, field string // reject; "" accepted
		number      string
		holder      license.Holder
		issue       string
		from, until string
		fields      map[string]any
		original    string
	}
	tests := []struct {
		name string
		edit func(*Mapping)
		row  map[string]string // changes to goodRow; "-" deletes
		want want
	}{
		// dates
		{name: "date 年月日 zero-padded", row: map[string]string{"发证日期": "2015年03月04日"}, want: want{issue: "2015-03-04", original: "2015年03月04日"}},
		{name: "date 年月日", row: map[string]string{"发证日期": "2015年3月4日"}, want: want{issue: "2015-03-04"}},
		{name: "date compact", row: map[string]string{"发证日期": "20150304"}, want: want{issue: "2015-03-04"}},
		{name: "date slashes", row: map[string]string{"发证日期": "2015/3/4"}, want: want{issue: "2015-03-04"}},
		{name: "date slashes padded", row: map[string]string{"发证日期": "2015/03/04"}, want: want{issue: "2015-03-04"}},
		{name: "date dots", row: map[string]string{"发证日期": "2015.3.4"}, want: want{issue: "2015-03-04"}},
		{name: "date with spaces", row: map[string]string{"发证日期": " \u30002015-03-04\t "}, want: want{issue: "2015-03-04", original: "2015-03-04"}},
		{name: "date with time of day", row: map[string]string{"发证日期": "2015-03-04 00:00:00"}, want: want{issue: "2015-03-04"}},
		{name: "date garbage", row: map[string]string{"发证日期": "三月四日"}, want: want{code: RejectBadDate, field: "issue_date"}},
		{name: "date not real", row: map[string]string{"发证日期": "2015-02-30"}, want: want{code: RejectBadDate, field: "issue_date"}},
		{name: "date 13th month", row: map[string]string{"发证日期": "2015年13月01日"}, want: want{code: RejectBadDate, field: "issue_date"}},
		{name: "date dashes unpadded not a default", row: map[string]string{"发证日期": "2015-3-4"}, want: want{code: RejectBadDate, field: "issue_date"}},
		{name: "year before 1949", row: map[string]string{"发证日期": "1948-12-31"}, want: want{code: RejectBadDate, field: "issue_date"}},
		{name: "year after this year", row: map[string]string{"发证日期": "2105-03-04"}, want: want{code: RejectBadDate, field: "issue_date"}},
		{name: "issue date later this year", row: map[string]string{"发证日期": "2024-06-16"}, want: want{code: RejectDateOrder, field: "issue_date"}},
		{name: "issue date today", row: map[string]string{"发证日期": "2024-06-15"}, want: want{issue: "2024-06-15"}},
		{name: "valid_from bad", row: map[string]string{"有效期自": "2015-3-32"}, want: want{code: RejectBadDate, field: "valid_from"}},
		{name: "valid_from before issue", row: map[string]string{"有效期自": "2015-03-01"}, want: want{code: RejectDateOrder, field: "valid_from"}},
		{name: "valid_from after issue", row: map[string]string{"有效期自": "2015/3/10", "有效期至": "2020/3/9"}, want: want{from: "2015-03-10", until: "2020-03-09"}},
		{name: "valid_until before valid_from", row: map[string]string{"有效期至": "2015-03-03"}, want: want{code: RejectDateOrder, field: "valid_until"}},
		{name: "valid_until garbage", row: map[string]string{"有效期至": "五年"}, want: want{code: RejectBadDate, field: "valid_until"}},
		{name: "valid_until in the future", row: map[string]string{"有效期至": "2035年3月3日"}, want: want{until: "2035-03-03"}},
		{name: "long term 长期", row: map[string]string{"有效期至": "长期"}, want: want{until: license.LongTerm}},
		{name: "long term 长期有效", row: map[string]string{"有效期至": "长期有效"}, want: want{until: license.LongTerm}},
		{name: "long term 永久", row: map[string]string{"有效期至": " 永久 "}, want: want{until: license.LongTerm}},
		{name: "default validity long_term", edit: func(m *Mapping) { m.DefaultValidity = ValidityLongTerm }, want: want{until: license.LongTerm}},
		{name: "default validity 5y", edit: func(m *Mapping) { m.DefaultValidity = "5y" }, want: want{until: "2020-03-03"}},
		{name: "default validity 5y from 29 Feb", edit: func(m *Mapping) { m.DefaultValidity = "5y" },
			row: map[string]string{"发证日期": "2016-02-29"}, want: want{until: "2021-02-28"}},
		{name: "default validity catalog", edit: func(m *Mapping) { m.DefaultValidity = ValidityCatalog }, want: want{until: ""}},
		{name: "explicit until wins over default", edit: func(m *Mapping) { m.DefaultValidity = "5y" },
			row: map[string]string{"有效期至": "2016-03-03"}, want: want{until: "2016-03-03"}},
		{name: "custom layout", edit: func(m *Mapping) { m.DateFormats = []string{"02/01/2006"} },
			row: map[string]string{"发证日期": "04/03/2015"}, want: want{issue: "2015-03-04"}},
		{name: "custom layout refuses defaults", edit: func(m *Mapping) { m.DateFormats = []string{"02/01/2006"} },
			row: map[string]string{"发证日期": "2015-03-04"}, want: want{code: RejectBadDate, field: "issue_date"}},

		// required fields
		{name: "missing number", row: map[string]string{"注册号": " "}, want: want{code: RejectMissingField, field: "number"}},
		{name: "number column absent", row: map[string]string{"注册号": "-"}, want: want{code: RejectMissingField, field: "number"}},
		{name: "missing holder name", row: map[string]string{"企业名称": "\u3000"}, want: want{code: RejectMissingField, field: "holder.name", number: "430100000012345"}},
		{name: "missing holder code", row: map[string]string{"统一社会信用代码": ""}, want: want{code: RejectMissingField, field: "holder.code"}},
		{name: "missing issue date", row: map[string]string{"发证日期": ""}, want: want{code: RejectMissingField, field: "issue_date"}},

		// holder codes
		{name: "credit code check digit", row: map[string]string{"统一社会信用代码": creditBad}, want: want{code: RejectBadHolderCode, field: "holder.code"}},
		{name: "credit code lower case", row: map[string]string{"统一社会信用代码": strings.ToLower(creditB)},
			want: want{holder: license.Holder{Code: creditB, CodeType: ident.HolderCreditCode}}},
		{name: "credit code full-width", row: map[string]string{"统一社会信用代码": "９１４３０１００ＭＡ４Ｌ００００Ｘ９"},
			want: want{holder: license.Holder{Code: creditA, CodeType: ident.HolderCreditCode}}},
		{name: "credit code letter O", row: map[string]string{"统一社会信用代码": "91430100MA4L0000O9"}, want: want{code: RejectBadHolderCode, field: "holder.code"}},
		{name: "resident ID inferred", row: map[string]string{"统一社会信用代码": residentA},
			want: want{holder: license.Holder{Code: residentA, CodeType: ident.HolderResidentID}}},
		{name: "resident ID lower x", row: map[string]string{"统一社会信用代码": strings.ToLower(residentX)},
			want: want{holder: license.Holder{Code: residentX, CodeType: ident.HolderResidentID}}},
		{name: "resident ID check digit", row: map[string]string{"统一社会信用代码": residentBd}, want: want{code: RejectBadHolderCode, field: "holder.code"}},
		{name: "15-digit ID", row: map[string]string{"统一社会信用代码": "430102800101123"}, want: want{code: RejectBadHolderCode, field: "holder.code"}},
		{name: "code type column", edit: func(m *Mapping) {
			m.Columns[KeyHolderCodeType] = "证件类型"
			m.ValueMaps = map[string]ValueMap{KeyHolderCodeType: {Strict: true, Values: map[string]string{"身份证": "111", "统一社会信用代码": "001"}}}
		}, row: map[string]string{"证件类型": "身份证", "统一社会信用代码": residentA},
			want: want{holder: license.Holder{Code: residentA, CodeType: ident.HolderResidentID}}},
		{name: "code type says resident, code is credit", edit: func(m *Mapping) { m.Fixed = map[string]string{KeyHolderCodeType: "111"} },
			want: want{code: RejectBadHolderCode, field: "holder.code"}},
		{name: "code type unknown", edit: func(m *Mapping) { m.Fixed = map[string]string{KeyHolderCodeType: "099"} },
			want: want{code: RejectBadHolderCode, field: "holder.code_type"}},
		{name: "code type strict map refuses", edit: func(m *Mapping) {
			m.Columns[KeyHolderCodeType] = "证件类型"
			m.ValueMaps = map[string]ValueMap{KeyHolderCodeType: {Strict: true, Values: map[string]string{"身份证": "111"}}}
		}, row: map[string]string{"证件类型": "护照"}, want: want{code: RejectBadValue, field: "holder.code_type"}},

		// numbers
		{name: "number full-width", row: map[string]string{"注册号": "４３０１００００００１２３４５"}, want: want{number: "430100000012345"}},
		{name: "number No. prefix", row: map[string]string{"注册号": "No. 4301-0012345"}, want: want{number: "4301-0012345"}},
		{name: "number 第…号", row: map[string]string{"注册号": "第 20230000403 号"}, want: want{number: "20230000403"}},
		{name: "number full-width 第…号", row: map[string]string{"注册号": "第ＪＹ１４３０１０００００１２３４号"}, want: want{number: "JY14301000001234"}},
		{name: "number Chinese", row: map[string]string{"注册号": "湘交运管许可长字430100000123号"}, want: want{code: RejectBadValue, field: "number", number: "湘交运管许可长字430100000123号"}},
		{name: "number brackets", row: map[string]string{"注册号": "（湘）JZ安许证字〔2023〕000123"}, want: want{code: RejectBadValue, field: "number"}},
		{name: "number slash", row: map[string]string{"注册号": "4301/2015/0001"}, want: want{code: RejectBadValue, field: "number"}},
		{name: "number only prefix", row: map[string]string{"注册号": "No."}, want: want{code: RejectBadValue, field: "number"}},
		{name: "number too long", row: map[string]string{"注册号": strings.Repeat("1", 65)}, want: want{code: RejectBadValue, field: "number"}},

		// value maps and fixed
		{name: "value map not strict passes others", edit: func(m *Mapping) {
			m.ValueMaps = map[string]ValueMap{"fields.entity_type": {Values: map[string]string{"有限": "有限责任公司"}}}
		}, row: map[string]string{"企业类型": "股份有限公司"}, want: want{fields: map[string]any{"legal_representative": "张三", "entity_type": "股份有限公司"}}},
		{name: "value map rewrites", edit: func(m *Mapping) {
			m.ValueMaps = map[string]ValueMap{"fields.entity_type": {Values: map[string]string{"有限": "有限责任公司"}}}
		}, want: want{fields: map[string]any{"legal_representative": "张三", "entity_type": "有限责任公司"}}},
		{name: "value map strict refuses", edit: func(m *Mapping) {
			m.ValueMaps = map[string]ValueMap{"fields.entity_type": {Strict: true, Values: map[string]string{"有限": "有限责任公司"}}}
		}, row: map[string]string{"企业类型": "合伙"}, want: want{code: RejectBadValue, field: "fields.entity_type"}},
		{name: "value map strict, empty value is absent", edit: func(m *Mapping) {
			m.ValueMaps = map[string]ValueMap{"fields.entity_type": {Strict: true, Values: map[string]string{"有限": "有限责任公司"}}}
		}, row: map[string]string{"企业类型": ""}, want: want{fields: map[string]any{"legal_representative": "张三"}}},
		{name: "value map to empty removes", edit: func(m *Mapping) {
			m.ValueMaps = map[string]ValueMap{"fields.legal_representative": {Values: map[string]string{"无": ""}}}
		}, row: map[string]string{"法定代表人": "无"}, want: want{fields: map[string]any{"entity_type": "有限"}}},
		{name: "value map on dates", edit: func(m *Mapping) {
			m.ValueMaps = map[string]ValueMap{KeyValidUntil: {Values: map[string]string{"9999-12-31": license.LongTerm}}}
		}, row: map[string]string{"有效期至": "9999-12-31"}, want: want{until: license.LongTerm}},
		{name: "fixed face field", edit: func(m *Mapping) {
			m.Fixed = map[string]string{"fields.registration_authority": "长沙市市场监督管理局"}
		},
			want: want{fields: map[string]any{"legal_representative": "张三", "entity_type": "有限", "registration_authority": "长沙市市场监督管理局"}}},
		{name: "fixed then value map", edit: func(m *Mapping) {
			m.Fixed = map[string]string{"fields.registration_authority": "长沙市局"}
			m.ValueMaps = map[string]ValueMap{"fields.registration_authority": {Values: map[string]string{"长沙市局": "长沙市市场监督管理局"}}}
		}, want: want{fields: map[string]any{"legal_representative": "张三", "entity_type": "有限", "registration_authority": "长沙市市场监督管理局"}}},

		// area code
		{name: "area code column", edit: func(m *Mapping) { m.Columns[KeyAreaCode] = "区划" }, row: map[string]string{"区划": "430104"}},
		{name: "area code column bad", edit: func(m *Mapping) { m.Columns[KeyAreaCode] = "区划" }, row: map[string]string{"区划": "4301"},
			want: want{code: RejectBadValue, field: "area_code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var edits []func(*Mapping)
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			m := bizMapping(t, edits...)
			values := goodRow()
			for k, v := range tt.row {
				if v == "-" {
					delete(values, k)
				} else {
					values[k] = v
				}
			}
			req, rj := m.Request(Row{Line: 12, Values: values}, "b")
			w := tt.want
			if w.code != "" {
				if rj == nil {
					t.Fatalf("accepted %+v; want %s %s", req, w.code, w.field)
				}
				if rj.Code != w.code || rj.Field != w.field || rj.Line != 12 || rj.Message == "" {
					t.Fatalf("reject %+v; want %s %s line 12", rj, w.code, w.field)
				}
				if w.number != "" && rj.Number != w.number {
					t.Fatalf("reject number %q, want %q", rj.Number, w.number)
				}
				return
			}
			if rj != nil {
				t.Fatalf("reject %+v", rj)
			}
			check := func(what, got, want string) {
				t.Helper()
				if want != "" && got != want {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("number", req.Number, w.number)
			check("holder.code", req.Holder.Code, w.holder.Code)
			check("holder.code_type", req.Holder.CodeType, w.holder.CodeType)
			check("issue_date", req.IssueDate, w.issue)
			check("valid_from", req.ValidFrom, w.from)
			check("original_issue_date", req.Provenance.OriginalIssueDate, w.original)
			if w.from == "" && req.ValidFrom != req.IssueDate {
				t.Errorf("valid_from %q, want the issue date %q", req.ValidFrom, req.IssueDate)
			}
			if req.ValidUntil != w.until {
				t.Errorf("valid_until %q, want %q", req.ValidUntil, w.until)
			}
			if w.fields != nil && !reflect.DeepEqual(req.Fields, w.fields) {
				t.Errorf("fields %v, want %v", req.Fields, w.fields)
			}
		})
	}
}

// TestRequestCatalogTypes: after BindCatalog face fields get their catalog
// type, and a one-holder-type license type fixes the code type.
func TestRequestCatalogTypes(t *testing.T) {
	cat := testCatalog(t)
	m := &Mapping{
		Name: "food", LicenseType: foodType, AreaCode: "430100",
		Authority: license.Party{Name: "湖南省市场监督管理局（演示）", Code: demoAuth},
		Columns: map[string]string{
			KeyNumber: "编号", KeyHolderName: "名称", KeyHolderCode: "代码", KeyIssueDate: "日期",
			"fields.operator_name": "名称", "fields.unified_social_credit_code": "代码",
			"fields.legal_representative": "法人", "fields.domicile": "住所", "fields.business_premises": "住所",
			"fields.main_business_format": "业态", "fields.business_items": "项目", "fields.online_operation": "网络",
		},
		Clock: testClock,
	}
	if err := m.BindCatalog(cat); err != nil {
		t.Fatal(err)
	}
	row := map[string]string{"编号": "JY14301000001234", "名称": "长沙某某餐饮有限公司", "代码": creditC, "日期": "2020年5月6日",
		"法人": "王五", "住所": "长沙市天心区某路1号", "业态": "餐饮服务经营者", "项目": "热食类食品制售", "网络": "是"}
	req, rj := m.Request(Row{Line: 3, Values: row}, "b")
	if rj != nil {
		t.Fatalf("reject %+v", rj)
	}
	if v, ok := req.Fields["online_operation"].(bool); !ok || !v {
		t.Errorf("online_operation = %#v, want true", req.Fields["online_operation"])
	}
	if req.Holder.CodeType != ident.HolderCreditCode {
		t.Errorf("code type %q", req.Holder.CodeType)
	}
	typ, _ := cat.Type(foodType)
	lic := &license.License{TypeCode: req.TypeCode, Holder: req.Holder, Fields: req.Fields}
	if err := typ.Validate(lic); err != nil {
		t.Errorf("catalog refuses the converted body: %v", err)
	}

	row["网络"] = "可能"
	if _, rj := m.Request(Row{Line: 4, Values: row}, "b"); rj == nil || rj.Code != RejectBadValue || rj.Field != "fields.online_operation" {
		t.Errorf("boolean: reject %+v", rj)
	}

	// integers: the household register's height_cm.
	hh := &Mapping{
		Name: "hukou", LicenseType: "11100000000013071A002", AreaCode: "430100",
		Authority: license.Party{Name: "长沙市公安局（演示）", Code: demoAuth},
		Columns: map[string]string{KeyNumber: "编号", KeyHolderName: "姓名", KeyHolderCode: "身份证", KeyIssueDate: "日期",
			"fields.height_cm": "身高"},
		Clock: testClock,
	}
	if err := hh.Validate(); err != nil {
		t.Fatal(err)
	}
	hh.fieldTy, _ = cat.Type(hh.LicenseType) // bind the types without requiring every face field
	hh.plan = hh.compile()
	for _, tc := range []struct {
		in   string
		want any
		code string
	}{{"172", int64(172), ""}, {"-3", int64(-3), ""}, {"172.5", nil, RejectBadValue}, {"1e3", nil, RejectBadValue}, {"9007199254740992", nil, RejectBadValue}} {
		req, rj := hh.Request(Row{Line: 2, Values: map[string]string{"编号": "1", "姓名": "赵六", "身份证": residentA, "日期": "2010-01-02", "身高": tc.in}}, "")
		switch {
		case tc.code != "" && (rj == nil || rj.Code != tc.code || rj.Field != "fields.height_cm"):
			t.Errorf("height %q: reject %+v, want %s", tc.in, rj, tc.code)
		case tc.code == "" && (rj != nil || req.Fields["height_cm"] != tc.want):
			t.Errorf("height %q: %#v %+v, want %#v", tc.in, req.Fields["height_cm"], rj, tc.want)
		}
	}
}

// TestRequestUnvalidated: a Mapping used without Validate still works
// (slowly), and an invalid one rejects every row as INVALID.
func TestRequestUnvalidated(t *testing.T) {
	m := bizMapping(t)
	m.plan = nil
	if _, rj := m.Request(Row{Line: 2, Values: goodRow()}, ""); rj != nil {
		t.Fatalf("reject %+v", rj)
	}
	m.Authority.Code = "bad"
	if _, rj := m.Request(Row{Line: 2, Values: goodRow()}, ""); rj == nil || rj.Code != RejectInvalid {
		t.Fatalf("reject %+v, want INVALID", rj)
	}
}

func TestNormalizeNumber(t *testing.T) {
	for in, want := range map[string]string{
		"ABC-123":               "ABC-123",
		"ＡＢＣ－１２３":               "ABC-123",
		"No.123":                "123",
		"NO．１２３":                "123",
		"№ 42":                  "42",
		"第0001号":                "0001",
		"12 34":                 "1234",
		"第号":                    "",
		"":                      "",
		"-":                     "",
		"12/34":                 "",
		"京A12345":               "",
		"１２３\u200b":             "123",
		"No.No.1":               "",
		"abc":                   "abc",
		"第ＡＢ－12號":               "AB-12",
		strings.Repeat("９", 65): "",
	} {
		got, ok := normalizeNumber(in)
		if got != want || ok != (want != "") {
			t.Errorf("normalizeNumber(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestInferCodeType(t *testing.T) {
	for code, want := range map[string]string{
		creditA: "001", residentA: "111", residentX: "111", residentBd: "111", creditBad: "001",
		"123": "", "91430100MA4L0000O9": "001",
	} {
		if got := inferCodeType(code); got != want {
			t.Errorf("inferCodeType(%q) = %q, want %q", code, got, want)
		}
	}
}
