package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signable"
)

// sampleYAML is a type with a field of every kind and every constraint.
const sampleYAML = `code: 11100000000013338W098
name: 样例证
defining_authority: {name: 国家市场监督管理总局, code: 11100000000013338W}
holder_code_types: ["001"]
issuing_level: county
validity: {years: 3}
fields:
  - {name: title, label: 标题, type: string, required: true, min_length: 2, max_length: 5, pattern: '[\p{Han}A-Z]+'}
  - {name: issued_on, label: 日期, type: date, required: true}
  - {name: until, label: 期限至, type: date, allow_long_term: true}
  - {name: count, label: 数量, type: integer}
  - {name: kind, label: 种类, type: enum, enum: [甲, 乙]}
  - {name: online, label: 网络经营, type: boolean}
  - {name: credit_code, label: 信用代码, type: string, format: credit_code, max_length: 18}
  - {name: id_number, label: 身份证号, type: string, format: resident_id, max_length: 18}
  - {name: note, label: 备注, type: string, max_length: 200}
`

func sampleType(t testing.TB) *Type {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sample.yaml"), []byte(sampleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ty, _ := c.Type("11100000000013338W098")
	return ty
}

func sampleLicense(fields map[string]any) *license.License {
	return &license.License{
		TypeCode: "11100000000013338W098",
		Holder:   license.Holder{Name: "某公司", Code: "91350100M000100Y43", CodeType: ident.HolderCreditCode},
		Fields:   fields,
	}
}

// validSample is a sample license's fields with every field set.
func validSample() map[string]any {
	return map[string]any{
		"title": "样例AB", "issued_on": "2024-02-29", "until": "long-term", "count": float64(12),
		"kind": "乙", "online": false, "credit_code": "91350100M000100Y43", "id_number": "11010519491231002X", "note": "",
	}
}

type wantErr struct {
	field   string
	rule    string
	details map[string]any // a subset of Details
	message string         // a fragment of Message
}

func checkErr(t *testing.T, err error, w wantErr) {
	t.Helper()
	var e *licensehub.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a *licensehub.Error", err, err)
	}
	if e.Code != licensehub.EINVALID {
		t.Errorf("Code = %s, want %s", e.Code, licensehub.EINVALID)
	}
	if e.Field != w.field {
		t.Errorf("Field = %q, want %q (%s)", e.Field, w.field, e.Message)
	}
	if got := ident.Rule(err); got != w.rule {
		t.Errorf("rule = %q, want %q (%s)", got, w.rule, e.Message)
	}
	for k, v := range w.details {
		if !reflect.DeepEqual(e.Details[k], v) {
			t.Errorf("Details[%s] = %#v, want %#v", k, e.Details[k], v)
		}
	}
	if !strings.Contains(e.Message, w.message) {
		t.Errorf("Message %q does not contain %q", e.Message, w.message)
	}
}

func TestValidateSample(t *testing.T) {
	ty := sampleType(t)
	if err := ty.Validate(sampleLicense(validSample())); err != nil {
		t.Fatalf("full sample: %v", err)
	}
	if err := ty.Validate(sampleLicense(map[string]any{"title": "样例", "issued_on": "2024-01-02"})); err != nil {
		t.Fatalf("required fields only: %v", err)
	}

	tests := []struct {
		name   string
		change func(l *license.License)
		want   wantErr
	}{
		{"holder code type not allowed", func(l *license.License) { l.Holder.CodeType = ident.HolderResidentID },
			wantErr{"holder.code_type", RuleHolderCodeType, map[string]any{"expected": []string{"001"}, "got": "111"},
				`样例证 is issued to holders with code type 001 (unified social credit code), not "111"`}},
		{"holder code type unknown", func(l *license.License) { l.Holder.CodeType = "999" },
			wantErr{"holder.code_type", RuleHolderCodeType, nil, `not "999"`}},
		{"holder code check digit", func(l *license.License) { l.Holder.Code = "91350100M000100Y44" },
			wantErr{"holder.code", ident.RuleCheckDigit, map[string]any{"expected": "3", "got": "4"}, "check character"}},
		{"holder code length", func(l *license.License) { l.Holder.Code = "" },
			wantErr{"holder.code", ident.RuleLength, nil, "credit code has 0 characters"}},
		{"type code mismatch", func(l *license.License) { l.TypeCode = businessLicenseCode },
			wantErr{"type_code", RuleTypeCode, map[string]any{"expected": "11100000000013338W098", "got": businessLicenseCode}, "checked as 样例证"}},
		{"required missing", func(l *license.License) { delete(l.Fields, "title") },
			wantErr{"fields.title", RuleRequired, nil, "标题 (title) is required on 样例证"}},
		{"required null", func(l *license.License) { l.Fields["title"] = nil },
			wantErr{"fields.title", RuleRequired, nil, "is required"}},
		{"required blank", func(l *license.License) { l.Fields["title"] = " \t" },
			wantErr{"fields.title", RuleRequired, nil, "is blank"}},
		{"required date empty", func(l *license.License) { l.Fields["issued_on"] = "" },
			wantErr{"fields.issued_on", RuleRequired, nil, "日期 (issued_on) is required"}},
		{"optional null", func(l *license.License) { l.Fields["note"] = nil },
			wantErr{"fields.note", RuleType, map[string]any{"expected": "string", "got": "null"}, "leave an empty optional field out"}},
		{"unknown field", func(l *license.License) { l.Fields["colour"] = "red" },
			wantErr{"fields.colour", RuleUnknownField, nil, "not a field of 样例证"}},
		{"string is a number", func(l *license.License) { l.Fields["title"] = float64(5) },
			wantErr{"fields.title", RuleType, map[string]any{"expected": "string", "got": "number"}, "标题 (title) must be a string, not number"}},
		{"string is an object", func(l *license.License) { l.Fields["note"] = map[string]any{} },
			wantErr{"fields.note", RuleType, map[string]any{"got": "object"}, "not object"}},
		{"too short", func(l *license.License) { l.Fields["title"] = "样" },
			wantErr{"fields.title", RuleLength, map[string]any{"got": 1, "min": 2, "max": 5}, "has 1 characters; want 2 to 5"}},
		{"too long in characters", func(l *license.License) { l.Fields["title"] = "样例样例样例" },
			wantErr{"fields.title", RuleLength, map[string]any{"got": 6, "max": 5}, "want 2 to 5"}},
		{"pattern", func(l *license.License) { l.Fields["title"] = "ab" },
			wantErr{"fields.title", RulePattern, map[string]any{"pattern": `^(?:[\p{Han}A-Z]+)$`}, "does not match the pattern"}},
		{"pattern is anchored", func(l *license.License) { l.Fields["title"] = "样例-" },
			wantErr{"fields.title", RulePattern, nil, "标题 (title)"}},
		{"date not real", func(l *license.License) { l.Fields["issued_on"] = "2023-02-29" },
			wantErr{"fields.issued_on", RuleDate, map[string]any{"expected": "YYYY-MM-DD"}, "日期 (issued_on) is not a real date written YYYY-MM-DD"}},
		{"date layout", func(l *license.License) { l.Fields["issued_on"] = "2024/01/02" },
			wantErr{"fields.issued_on", RuleDate, nil, "YYYY-MM-DD"}},
		{"date without zero padding", func(l *license.License) { l.Fields["issued_on"] = "2024-1-2" },
			wantErr{"fields.issued_on", RuleDate, nil, "YYYY-MM-DD"}},
		{"date with time", func(l *license.License) { l.Fields["issued_on"] = "2024-01-02T00:00:00Z" },
			wantErr{"fields.issued_on", RuleDate, nil, "YYYY-MM-DD"}},
		{"long-term not allowed", func(l *license.License) { l.Fields["issued_on"] = license.LongTerm },
			wantErr{"fields.issued_on", RuleDate, nil, "YYYY-MM-DD"}},
		{"long-term in Chinese", func(l *license.License) { l.Fields["until"] = "长期" },
			wantErr{"fields.until", RuleDate, map[string]any{"expected": `YYYY-MM-DD or "long-term"`}, `YYYY-MM-DD or "long-term"`}},
		{"date is a number", func(l *license.License) { l.Fields["issued_on"] = float64(20240102) },
			wantErr{"fields.issued_on", RuleType, map[string]any{"expected": "string", "got": "number"}, "must be a string"}},
		{"integer with fraction", func(l *license.License) { l.Fields["count"] = 1.5 },
			wantErr{"fields.count", RuleType, map[string]any{"expected": "integer", "got": "number"}, "数量 (count) is not an integer"}},
		{"integer as string", func(l *license.License) { l.Fields["count"] = "12" },
			wantErr{"fields.count", RuleType, map[string]any{"expected": "integer", "got": "string"}, "must be an integer, not string"}},
		{"integer too big", func(l *license.License) { l.Fields["count"] = float64(1 << 53) },
			wantErr{"fields.count", RuleRange, map[string]any{"max": maxSafeInteger}, "beyond ±(2^53−1)"}},
		{"integer negative zero", func(l *license.License) { l.Fields["count"] = negativeZero() },
			wantErr{"fields.count", RuleType, nil, "not -0"}},
		{"json.Number fraction", func(l *license.License) { l.Fields["count"] = json.Number("1.0") },
			wantErr{"fields.count", RuleType, nil, "not an integer"}},
		{"json.Number exponent", func(l *license.License) { l.Fields["count"] = json.Number("1e3") },
			wantErr{"fields.count", RuleType, nil, "not an integer"}},
		{"json.Number too big", func(l *license.License) { l.Fields["count"] = json.Number("9007199254740992") },
			wantErr{"fields.count", RuleRange, nil, "beyond"}},
		{"json.Number beyond int64", func(l *license.License) { l.Fields["count"] = json.Number("-99999999999999999999") },
			wantErr{"fields.count", RuleRange, nil, "beyond"}},
		{"json.Number not a number", func(l *license.License) { l.Fields["count"] = json.Number("twelve") },
			wantErr{"fields.count", RuleType, nil, "not an integer"}},
		{"Go int too big", func(l *license.License) { l.Fields["count"] = int64(-1 << 60) },
			wantErr{"fields.count", RuleRange, nil, "beyond"}},
		{"enum", func(l *license.License) { l.Fields["kind"] = "丙" },
			wantErr{"fields.kind", RuleEnum, map[string]any{"expected": []string{"甲", "乙"}, "got": "丙"}, `种类 (kind) is "丙"; want one of 甲, 乙`}},
		{"enum is a boolean", func(l *license.License) { l.Fields["kind"] = true },
			wantErr{"fields.kind", RuleType, map[string]any{"got": "boolean"}, "must be a string"}},
		{"boolean as string", func(l *license.License) { l.Fields["online"] = "true" },
			wantErr{"fields.online", RuleType, map[string]any{"expected": "boolean", "got": "string"}, "must be a boolean, not string"}},
		{"credit code format", func(l *license.License) { l.Fields["credit_code"] = "91350100M000100Y4Z" },
			wantErr{"fields.credit_code", ident.RuleAlphabet, map[string]any{"position": 18}, "credit code character 18"}},
		{"resident ID format", func(l *license.License) { l.Fields["id_number"] = "110105194912310021" },
			wantErr{"fields.id_number", ident.RuleCheckDigit, nil, "check"}},
		{"Go value of another type", func(l *license.License) { l.Fields["note"] = []byte("x") },
			wantErr{"fields.note", RuleType, map[string]any{"got": "a Go []uint8"}, "must be a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := sampleLicense(validSample())
			tt.change(l)
			errs := ty.ValidateAll(l)
			if len(errs) == 0 {
				t.Fatal("ValidateAll found nothing")
			}
			checkErr(t, errs[0], tt.want)
			if err := ty.Validate(l); err != errs[0] && err.Error() != errs[0].Error() {
				t.Errorf("Validate = %v, want ValidateAll's first %v", err, errs[0])
			}
		})
	}
}

func negativeZero() float64 {
	z := 0.0
	return -z
}

// TestValidateAcceptsNumbers: integers as encoding/json and Go code
// produce them.
func TestValidateAcceptsNumbers(t *testing.T) {
	ty := sampleType(t)
	for _, v := range []any{float64(0), float64(-7), float64(maxSafeInteger), float64(-maxSafeInteger),
		json.Number("0"), json.Number("-12"), json.Number("9007199254740991"),
		0, int8(-1), int16(3), int32(4), int64(maxSafeInteger), uint(5), uint8(6), uint16(7), uint32(8), uint64(maxSafeInteger), float32(3)} {
		f := validSample()
		f["count"] = v
		if err := ty.Validate(sampleLicense(f)); err != nil {
			t.Errorf("count %#v (%T): %v", v, v, err)
		}
	}
	// A body decoded with UseNumber.
	dec := json.NewDecoder(bytes.NewReader([]byte(`{"title":"样例","issued_on":"2024-01-02","count":175}`)))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["count"].(json.Number); !ok {
		t.Fatalf("count decoded as %T", fields["count"])
	}
	if err := ty.Validate(sampleLicense(fields)); err != nil {
		t.Error(err)
	}
}

func TestValidateAllReportsEverything(t *testing.T) {
	ty := sampleType(t)
	l := sampleLicense(map[string]any{"issued_on": "2024-13-01", "kind": "丙", "zzz": 1, "aaa": 2, "online": "yes"})
	l.Holder.CodeType = ident.HolderResidentID // not allowed: the code is not checked against it
	var got []string
	for _, err := range ty.ValidateAll(l) {
		var e *licensehub.Error
		if !errors.As(err, &e) {
			t.Fatalf("%v is not a *licensehub.Error", err)
		}
		got = append(got, e.Field+" "+ident.Rule(err))
	}
	want := []string{
		"holder.code_type holder_code_type",
		"fields.title required",
		"fields.issued_on date",
		"fields.kind enum",
		"fields.online type",
		"fields.aaa unknown_field",
		"fields.zzz unknown_field",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ValidateAll:\n got %q\nwant %q", got, want)
	}
}

// otherCreditCode is a valid unified social credit code of another
// company than the business license example's holder.
func otherCreditCode(t *testing.T) string {
	c, err := ident.CreditCodeCheck("91330100MA2B00000")
	if err != nil {
		t.Fatal(err)
	}
	return "91330100MA2B00000" + string(c)
}

// TestValidateBusinessLicense: the demo's license type, with the mistakes
// departments make.
func TestValidateBusinessLicense(t *testing.T) {
	c := loadShipped(t)
	ty, _ := c.Type(businessLicenseCode)
	if err := ty.Validate(validLicense(t, businessLicenseCode)); err != nil {
		t.Fatalf("valid business license: %v", err)
	}
	tests := []struct {
		name   string
		change func(l *license.License)
		want   wantErr
	}{
		{"issued to a person", func(l *license.License) {
			l.Holder.CodeType, l.Holder.Code = ident.HolderResidentID, "11010519491231002X"
		}, wantErr{"holder.code_type", RuleHolderCodeType, nil, "营业执照 is issued to holders with code type 001"}},
		{"holder code lower case", func(l *license.License) { l.Holder.Code = "91350100m000100y43" },
			wantErr{"holder.code", ident.RuleAlphabet, map[string]any{"position": 9, "got": "m"}, "credit code character 9"}},
		{"no name", func(l *license.License) { delete(l.Fields, "name") },
			wantErr{"fields.name", RuleRequired, nil, "名称 (name) is required on 营业执照"}},
		{"credit code on the face", func(l *license.License) { l.Fields["unified_social_credit_code"] = "91350100M000100Y44" },
			wantErr{"fields.unified_social_credit_code", ident.RuleCheckDigit, map[string]any{"expected": "3"}, "check character"}},
		{"business term 长期", func(l *license.License) { l.Fields["business_term_to"] = "长期" },
			wantErr{"fields.business_term_to", RuleDate, nil, `营业期限至 (business_term_to) is not a real date written YYYY-MM-DD or "long-term"`}},
		{"established date in Chinese", func(l *license.License) { l.Fields["established_date"] = "2015年03月12日" },
			wantErr{"fields.established_date", RuleDate, nil, "成立日期"}},
		{"business scope too long", func(l *license.License) { l.Fields["business_scope"] = strings.Repeat("经", 4001) },
			wantErr{"fields.business_scope", RuleLength, map[string]any{"got": 4001, "max": 4000}, "has 4001 characters; want at most 4000"}},
		{"a field of another type", func(l *license.License) { l.Fields["operator_name"] = "某店" },
			wantErr{"fields.operator_name", RuleUnknownField, nil, "not a field of 营业执照"}},
		{"fields.name differs from holder.name", func(l *license.License) { l.Fields["name"] = "另一家公司" },
			wantErr{"fields.name", RuleBinding, map[string]any{"bound_to": "holder.name"}, "名称 (name) must equal the license's holder.name"}},
		{"a foreign credit code on the face", func(l *license.License) { l.Fields["unified_social_credit_code"] = otherCreditCode(t) },
			wantErr{"fields.unified_social_credit_code", RuleBinding, map[string]any{"bound_to": "holder.code"}, "must equal the license's holder.code"}},
		{"right-to-left override in the address", func(l *license.License) { l.Fields["address"] = "杭州市\u202e路1号" },
			wantErr{"fields.address", signable.RuleBidi, map[string]any{"position": 4}, "住所 (address) holds a bidirectional control character"}},
		{"zero-width space in the representative", func(l *license.License) { l.Fields["legal_representative"] = "张\u200b三" },
			wantErr{"fields.legal_representative", signable.RuleZeroWidth, map[string]any{"position": 2}, "zero-width"}},
		{"decomposed text", func(l *license.License) { l.Fields["entity_type"] = "Socie\u0301te\u0301" },
			wantErr{"fields.entity_type", signable.RuleNFC, map[string]any{"position": 5}, "normal form C"}},
		{"line break in the scope", func(l *license.License) { l.Fields["business_scope"] = "零售\n批发" },
			wantErr{"fields.business_scope", signable.RuleControl, map[string]any{"position": 3}, "control character"}},
		{"private use character", func(l *license.License) { l.Fields["registration_authority"] = "市场\ue000局" },
			wantErr{"fields.registration_authority", signable.RulePrivateUse, map[string]any{"position": 3}, "private-use"}},
		{"replacement character from a lossy decode", func(l *license.License) { l.Fields["address"] = "\ufffd\ufffd\ufffd(" },
			wantErr{"fields.address", signable.RuleReplacement, map[string]any{"position": 1}, "U+FFFD"}},
		{"invalid UTF-8 built in Go", func(l *license.License) { l.Fields["address"] = "\xff\xfe\xc3\x28" },
			wantErr{"fields.address", signable.RuleInvalidUTF8, map[string]any{"position": 1}, "not valid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := validLicense(t, businessLicenseCode)
			tt.change(l)
			checkErr(t, ty.Validate(l), tt.want)
		})
	}
	// 4000 Chinese characters are 12000 bytes and still fit.
	l := validLicense(t, businessLicenseCode)
	l.Fields["business_scope"] = strings.Repeat("经", 4000)
	if err := ty.Validate(l); err != nil {
		t.Errorf("4000 characters: %v", err)
	}
}

func TestCatalogValidate(t *testing.T) {
	c := loadShipped(t)
	l := validLicense(t, businessLicenseCode)
	if err := c.Validate(l); err != nil {
		t.Fatal(err)
	}
	l.TypeCode = "11100000000013338W999"
	checkErr(t, c.Validate(l), wantErr{"type_code", RuleUnknownType, map[string]any{"got": "11100000000013338W999"}, "is not a license type of the catalog"})
	if errs := c.ValidateAll(l); len(errs) != 1 {
		t.Errorf("ValidateAll of an unknown type: %v", errs)
	}

	// A type issued to people checks resident ID numbers, and its message
	// never repeats the number.
	m := validLicense(t, "11100000000013127D001")
	m.Holder.Code = "110105194913310025" // 13th month
	err := c.Validate(m)
	checkErr(t, err, wantErr{"holder.code", ident.RuleBirthDate, nil, "birth date"})
	if strings.Contains(err.Error(), m.Holder.Code) {
		t.Errorf("message repeats the resident ID number: %v", err)
	}
}

// TestValidateDoesNotModify: validation never changes the license.
func TestValidateDoesNotModify(t *testing.T) {
	ty := sampleType(t)
	fields := validSample()
	fields["extra"] = "x"
	before := maps.Clone(fields)
	ty.ValidateAll(sampleLicense(fields))
	if !reflect.DeepEqual(fields, before) {
		t.Error("ValidateAll changed the fields")
	}
}
