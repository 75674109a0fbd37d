package catalog

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

const shippedDir = "../configs/catalog"

// businessLicenseCode is the type code the demo data and members.yaml use.
const businessLicenseCode = "11100000000013338W011"

func loadShipped(t testing.TB) *Catalog {
	t.Helper()
	c, err := Load(shippedDir)
	if err != nil {
		t.Fatalf("Load(%s): %v", shippedDir, err)
	}
	return c
}

func TestLoadShipped(t *testing.T) {
	c := loadShipped(t)
	if c.Len() < 8 {
		t.Fatalf("shipped catalog has %d types, want at least 8", c.Len())
	}
	types := c.Types()
	if !slices.IsSortedFunc(types, func(a, b *Type) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("Types() is not sorted by code")
	}
	types[0] = nil // the caller's copy
	if c.Types()[0] == nil {
		t.Error("Types() returned the catalog's own slice")
	}
	for _, ty := range c.Types() {
		if got, ok := c.Type(ty.Code); !ok || got != ty {
			t.Errorf("Type(%s) = %v, %v", ty.Code, got, ok)
		}
		if ty.DefiningAuthority.Code != ty.Code[:ident.CreditCodeLen] {
			t.Errorf("%s: defining authority %s", ty.Code, ty.DefiningAuthority.Code)
		}
		if err := ident.ValidateCreditCode(ty.DefiningAuthority.Code); err != nil {
			t.Errorf("%s: %v", ty.Code, err)
		}
		if len(ty.Fields) == 0 || len(ty.Matters) == 0 {
			t.Errorf("%s: %d fields, %d matters", ty.Code, len(ty.Fields), len(ty.Matters))
		}
	}
	if _, ok := c.Type("11100000000013338W999"); ok {
		t.Error("Type of an unknown code found something")
	}
}

// TestShippedTypes pins the eight required license types: their names,
// the holder code types that make sense for them and their validity.
func TestShippedTypes(t *testing.T) {
	c := loadShipped(t)
	byName := map[string]*Type{}
	for _, ty := range c.Types() {
		byName[ty.Name] = ty
	}
	tests := []struct {
		name     string
		holders  []string
		validity Validity
	}{
		{"营业执照", []string{"001"}, Validity{LongTerm: true}},
		{"食品经营许可证", []string{"001"}, Validity{Years: 5}},
		{"道路运输经营许可证", []string{"001"}, Validity{Years: 4}},
		{"建筑施工企业安全生产许可证", []string{"001"}, Validity{Years: 3}},
		{"不动产权证书", []string{"111", "001"}, Validity{LongTerm: true}},
		{"结婚证", []string{"111"}, Validity{LongTerm: true}},
		{"医师执业证书", []string{"111"}, Validity{LongTerm: true}},
		{"居民户口簿", []string{"111"}, Validity{LongTerm: true}},
	}
	for _, tt := range tests {
		ty, ok := byName[tt.name]
		if !ok {
			t.Errorf("no type %s", tt.name)
			continue
		}
		if !slices.Equal(ty.HolderCodeTypes, tt.holders) {
			t.Errorf("%s: holder code types %v, want %v", tt.name, ty.HolderCodeTypes, tt.holders)
		}
		if ty.Validity != tt.validity {
			t.Errorf("%s: validity %+v, want %+v", tt.name, ty.Validity, tt.validity)
		}
	}
	bl, ok := c.Type(businessLicenseCode)
	if !ok {
		t.Fatalf("no type %s", businessLicenseCode)
	}
	if bl.Name != "营业执照" || bl.DefiningAuthority.Code != "11100000000013338W" {
		t.Errorf("%s is %s by %s", businessLicenseCode, bl.Name, bl.DefiningAuthority.Code)
	}
	var names []string
	for _, f := range bl.Fields {
		names = append(names, f.Name)
	}
	want := []string{"unified_social_credit_code", "name", "entity_type", "legal_representative", "registered_capital",
		"established_date", "business_term_from", "business_term_to", "address", "business_scope", "registration_authority"}
	if !slices.Equal(names, want) {
		t.Errorf("business license fields %v, want %v", names, want)
	}
}

// validBodies are realistic face fields of each shipped type, as
// encoding/json decodes them (numbers are float64).
var validBodies = map[string]struct {
	holderType, holderCode string
	fields                 string
}{
	"11100000000013338W011": {"001", "91350100M000100Y43", `{
		"unified_social_credit_code": "91350100M000100Y43",
		"name": "福州示例科技有限公司",
		"entity_type": "有限责任公司（自然人投资或控股）",
		"legal_representative": "张三",
		"registered_capital": "壹仟万元整",
		"established_date": "2015-03-12",
		"business_term_from": "2015-03-12",
		"business_term_to": "long-term",
		"address": "福建省福州市鼓楼区示例路1号",
		"business_scope": "软件开发；信息技术咨询服务。（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
		"registration_authority": "福州市鼓楼区市场监督管理局"}`},
	"11100000000013338W024": {"001", "91350100M000100Y43", `{
		"operator_name": "福州示例餐饮有限公司",
		"unified_social_credit_code": "91350100M000100Y43",
		"legal_representative": "李四",
		"domicile": "福建省福州市鼓楼区示例路1号",
		"business_premises": "福建省福州市鼓楼区示例路1号一层",
		"main_business_format": "餐饮服务经营者",
		"online_operation": true,
		"business_items": "热食类食品制售；冷食类食品制售",
		"daily_supervision_agency": "鼓楼区市场监督管理局东街所",
		"complaint_hotline": "12315",
		"issuing_officer": "王五"}`},
	"11100000000019713D001": {"001", "91350100M000100Y43", `{
		"operator_name": "福州示例物流有限公司",
		"unified_social_credit_code": "91350100M000100Y43",
		"address": "福建省福州市仓山区示例路2号",
		"economic_type": "有限责任公司",
		"business_scope": "道路普通货物运输；货物专用运输（集装箱）"}`},
	"11100000000012524K003": {"001", "91350100M000100Y43", `{
		"company_name": "福州示例建设工程有限公司",
		"unified_social_credit_code": "91350100M000100Y43",
		"principal": "赵六",
		"address": "福建省福州市台江区示例路3号",
		"economic_type": "有限责任公司",
		"license_scope": "建筑施工"}`},
	"11100000MB0151452A001": {"111", "11010519491231002X", `{
		"right_holder": "王某某",
		"co_ownership": "单独所有",
		"location": "福州市鼓楼区示例小区1幢101单元",
		"unit_number": "350102001001GB00001F00010001",
		"right_type": "国有建设用地使用权/房屋所有权",
		"right_nature": "出让/市场化商品房",
		"usage": "城镇住宅用地/住宅",
		"area": "共有宗地面积1200.50㎡/房屋建筑面积89.60㎡",
		"term_of_use": "国有建设用地使用权 2008年05月01日起2078年04月30日止"}`},
	"11100000000013127D001": {"111", "11010519491231002X", `{
		"holder_name": "王某某",
		"registration_date": "1975-05-01",
		"husband_name": "李某某", "husband_nationality": "中国", "husband_birth_date": "1948-03-02", "husband_id_number": "110105194803020015",
		"wife_name": "王某某", "wife_nationality": "中国", "wife_birth_date": "1949-12-31", "wife_id_number": "11010519491231002X"}`},
	"11100000MB01502274001": {"111", "11010519491231002X", `{
		"name": "王某某",
		"sex": "女",
		"birth_date": "1949-12-31",
		"id_number": "11010519491231002X",
		"qualification_certificate_code": "20021111111010519491231002X",
		"practice_level": "执业医师",
		"practice_category": "临床",
		"practice_scope": "内科专业",
		"practice_location": "北京市",
		"primary_institution": "北京市示例医院"}`},
	"11100000000013071A002": {"111", "11010519491231002X", `{
		"household_type": "家庭户",
		"household_head_name": "王某某",
		"household_number": "110105123",
		"address": "北京市朝阳区示例街道1号",
		"name": "王某某",
		"relationship_to_head": "户主",
		"sex": "女",
		"birthplace": "北京市朝阳区",
		"ethnicity": "汉族",
		"birth_date": "1949-12-31",
		"citizen_id_number": "11010519491231002X",
		"height_cm": 162,
		"blood_type": "A型",
		"marital_status": "已婚",
		"registration_date": "1990-01-01"}`},
}

func validLicense(t testing.TB, code string) *license.License {
	t.Helper()
	b, ok := validBodies[code]
	if !ok {
		t.Fatalf("no valid body for %s", code)
	}
	l := &license.License{TypeCode: code, Holder: license.Holder{Name: "持证人", Code: b.holderCode, CodeType: b.holderType}}
	if err := json.Unmarshal([]byte(b.fields), &l.Fields); err != nil {
		t.Fatalf("%s: %v", code, err)
	}
	// The shipped types bind their holder's name to one of these face
	// fields (bind: holder.name).
	for _, k := range []string{"name", "operator_name", "company_name", "holder_name"} {
		if v, ok := l.Fields[k].(string); ok {
			l.Holder.Name = v
			break
		}
	}
	return l
}

// TestShippedTypesAcceptRealBodies proves each shipped schema accepts a
// realistic license of its type.
func TestShippedTypesAcceptRealBodies(t *testing.T) {
	c := loadShipped(t)
	for _, ty := range c.Types() {
		t.Run(ty.Name, func(t *testing.T) {
			l := validLicense(t, ty.Code)
			if errs := ty.ValidateAll(l); len(errs) > 0 {
				t.Errorf("ValidateAll: %v", errs)
			}
			if err := c.Validate(l); err != nil {
				t.Errorf("Catalog.Validate: %v", err)
			}
			// Every required field is in the example, so the example
			// also proves that a body with only those fields passes.
			for _, f := range ty.Fields {
				if _, ok := l.Fields[f.Name]; f.Required && !ok {
					t.Errorf("example lacks required field %s", f.Name)
				}
			}
		})
	}
}

func TestTypeJSON(t *testing.T) {
	c := loadShipped(t)
	ty, _ := c.Type(businessLicenseCode)
	raw, err := json.Marshal(ty)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(m))
	want := []string{"code", "defining_authority", "earliest_year", "fields", "holder_code_types", "issuing_level", "matters", "name", "validity"}
	if !slices.Equal(keys, want) {
		t.Errorf("JSON keys %v, want %v", keys, want)
	}
	for _, s := range []string{
		`"code":"11100000000013338W011"`,
		`"defining_authority":{"name":"国家市场监督管理总局","code":"11100000000013338W","level":"national"}`,
		`"validity":{"long_term":true}`,
		`{"name":"unified_social_credit_code","label":"统一社会信用代码","type":"string","required":true,"max_length":18,"format":"credit_code","bind":"holder.code"}`,
		`{"name":"name","label":"名称","type":"string","required":true,"max_length":100,"bind":"holder.name"}`,
		`"earliest_year":1949`,
		`{"name":"business_term_to","label":"营业期限至","type":"date","required":true,"allow_long_term":true}`,
	} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("JSON lacks %s:\n%s", s, raw)
		}
	}
}

func TestValidUntil(t *testing.T) {
	c := loadShipped(t)
	food, _ := c.Type("11100000000013338W024")         // 5 years
	construction, _ := c.Type("11100000000012524K003") // 3 years
	business, _ := c.Type(businessLicenseCode)         // long-term
	cst := func(s string) time.Time {
		d, err := time.ParseInLocation("2006-01-02 15:04", s, license.CST)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		ty    *Type
		issue time.Time
		want  string
	}{
		{food, cst("2024-05-20 09:00"), "2029-05-19"},
		{food, cst("2024-02-29 09:00"), "2029-02-28"},
		{food, cst("2024-03-01 00:00"), "2029-02-28"},
		{food, cst("2024-01-01 00:00"), "2028-12-31"},
		// 2024-05-19 20:00 UTC is 2024-05-20 04:00 in Beijing.
		{food, time.Date(2024, 5, 19, 20, 0, 0, 0, time.UTC), "2029-05-19"},
		{construction, cst("2023-07-01 10:00"), "2026-06-30"},
		{construction, cst("2024-02-29 10:00"), "2027-02-28"},
		{business, cst("2024-05-20 09:00"), license.LongTerm},
	}
	for _, tt := range tests {
		if got := tt.ty.ValidUntil(tt.issue); got != tt.want {
			t.Errorf("%s.ValidUntil(%s) = %s, want %s", tt.ty.Name, tt.issue, got, tt.want)
		}
	}
}
