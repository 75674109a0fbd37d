package simtest

import (
	"strconv"
	"strings"
	"time"
)

// BadParam is a parameter set a certificate kind's checks refuse before
// any upstream call: INVALID_ARGUMENT (HTTP 400) naming Field.
type BadParam struct {
	Kind   string
	Params map[string]string
	Field  string
}

// BadParams lists, for every certificate kind, parameters the gateway
// refuses with INVALID_ARGUMENT naming Field, before any upstream call.
// person and company are a resident ID number and a credit code the
// simulator knows; now is the hub's clock (for "this month" and "this
// year").
func BadParams(person, company string, now time.Time) []BadParam {
	wrongID := person[:17] + "0"
	if person[17] == '0' {
		wrongID = person[:17] + "1"
	}
	wrongCode := company[:17] + "0"
	if company[17] == '0' {
		wrongCode = company[:17] + "1"
	}
	cst := now.In(time.FixedZone("CST", 8*3600))
	nextMonth := time.Date(cst.Year(), cst.Month()+1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	thisMonth := cst.Format("2006-01")
	thisYear, nextYear := strconv.Itoa(cst.Year()), strconv.Itoa(cst.Year()+1)
	ago := func(months int) string {
		return time.Date(cst.Year(), cst.Month()-time.Month(months), 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	}
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []BadParam{
		// identity
		{"identity", p("id_number", person), "params.name"},
		{"identity", p("id_number", person, "name", ""), "params.name"},
		{"identity", p("id_number", person, "name", "  "), "params.name"},
		{"identity", p("name", "张三"), "params.id_number"},
		{"identity", p("id_number", wrongID, "name", "张三"), "params.id_number"},
		{"identity", p("id_number", strings.ToLower(person[:17])+"x", "name", "张三"), "params.id_number"},
		{"identity", p("id_number", person, "name", "张三", "age", "3"), "params.age"},
		{"identity", p("id_number", person, "name", "张三", "a\u202eb", "3"), "params"},
		{"identity", p("id_number", person, "name", strings.Repeat("张", 65)), "params.name"},
		{"identity", p("id_number", person, "name", strings.Repeat("a", 10240)), "params.name"},
		{"identity", p("id_number", person, "name", "\xff\xfe\xc3\x28"), "params.name"},
		{"identity", p("id_number", person, "name", "\ufffd\ufffd\ufffd("), "params.name"},
		{"identity", p("id_number", person, "name", "张\u202e三"), "params.name"},
		{"identity", p("id_number", person, "name", "张\u200b三"), "params.name"},
		{"identity", p("id_number", person, "name", "张\x00三"), "params.name"},
		{"identity", p("id_number", person, "name", "张\n三"), "params.name"},
		// household
		{"household", p(), "params.id_number"},
		{"household", p("id_number", "123"), "params.id_number"},
		{"household", p("id_number", wrongID), "params.id_number"},
		{"household", p("id_number", person, "name", "张三"), "params.name"},
		// person_insurance
		{"person_insurance", p("id_number", wrongID), "params.id_number"},
		{"person_insurance", p("id_number", company), "params.id_number"},
		{"person_insurance", p("credit_code", company), "params.credit_code"},
		// employer_insurance
		{"employer_insurance", p("credit_code", wrongCode), "params.credit_code"},
		{"employer_insurance", p("credit_code", person), "params.credit_code"},
		{"employer_insurance", p(), "params.credit_code"},
		// tax_registration
		{"tax_registration", p("credit_code", wrongCode), "params.credit_code"},
		{"tax_registration", p("credit_code", strings.ToLower(company)), "params.credit_code"},
		{"tax_registration", p("credit_code", company, "year", "2024"), "params.year"},
		// tax_payments
		{"tax_payments", p("credit_code", company, "from", ago(1)), "params.to"},
		{"tax_payments", p("credit_code", company, "from", ago(1), "to", ago(6)), "params.to"},
		{"tax_payments", p("credit_code", company, "from", "2025-13", "to", "2025-12"), "params.from"},
		{"tax_payments", p("credit_code", company, "from", "2025/01", "to", "2025-02"), "params.from"},
		{"tax_payments", p("credit_code", company, "from", "2025-1", "to", "2025-02"), "params.from"},
		{"tax_payments", p("credit_code", company, "from", "2025-01", "to", "yesterday"), "params.to"},
		{"tax_payments", p("credit_code", company, "from", "1999-12", "to", "2000-01"), "params.from"},
		{"tax_payments", p("credit_code", company, "from", thisMonth, "to", nextMonth), "params.to"},
		{"tax_payments", p("credit_code", company, "from", ago(36), "to", thisMonth), "params.to"},
		{"tax_payments", p("credit_code", wrongCode, "from", ago(2), "to", ago(1)), "params.credit_code"},
		// tax_credit
		{"tax_credit", p("credit_code", company), "params.year"},
		{"tax_credit", p("credit_code", company, "year", "24"), "params.year"},
		{"tax_credit", p("credit_code", company, "year", "+2024"), "params.year"},
		{"tax_credit", p("credit_code", company, "year", "1999"), "params.year"},
		{"tax_credit", p("credit_code", company, "year", nextYear), "params.year"},
		{"tax_credit", p("credit_code", company, "year", "９９９９"), "params.year"},
		{"tax_credit", p("credit_code", wrongCode, "year", thisYear), "params.credit_code"},
	}
}
