package convert

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/license"
)

// Codes with correct check characters (computed with package ident).
const (
	creditA    = "91430100MA4L0000X9"
	creditB    = "91430104MA4L1234AK"
	creditC    = "91430111MA4PQ56785"
	creditBad  = "91430104MA4L1234AA" // check character should be K
	residentA  = "430102198001011233"
	residentX  = "11010519491231002X"
	residentBd = "430102198001011234" // check digit should be 3
	demoAuth   = "11430000006122244L"
	bizType    = "11100000000013338W011"
	foodType   = "11100000000013338W024"
)

// testToday is "today" for every test: 2024-06-15 in China.
var testToday = time.Date(2024, 6, 15, 10, 0, 0, 0, license.CST)

func testClock() time.Time { return testToday }

// bizMapping is a business-license register mapping built in Go, checked.
func bizMapping(t testing.TB, edit ...func(*Mapping)) *Mapping {
	t.Helper()
	m := &Mapping{
		Name:        "test-register",
		LicenseType: bizType,
		Authority:   license.Party{Name: "湖南省市场监督管理局（演示）", Code: demoAuth},
		AreaCode:    "430100",
		Columns: map[string]string{
			KeyNumber: "注册号", KeyHolderName: "企业名称", KeyHolderCode: "统一社会信用代码",
			KeyIssueDate: "发证日期", KeyValidFrom: "有效期自", KeyValidUntil: "有效期至",
			"fields.legal_representative": "法定代表人", "fields.entity_type": "企业类型",
		},
		Clock: testClock,
	}
	for _, e := range edit {
		e(m)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return m
}

// testCatalog is the repository's catalog.
func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Load("../" + catalog.DefaultDir)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return cat
}

// readAll drains a Reader: rows, and the lines of RowErrors; a fatal
// error ends it.
func readAll(t testing.TB, r Reader) (rows []Row, bad []*RowError, fatal error) {
	t.Helper()
	for range 1_000_000 {
		row, err := r.Next()
		var re *RowError
		switch {
		case err == nil:
			rows = append(rows, row)
		case errors.Is(err, io.EOF):
			return rows, bad, nil
		case errors.As(err, &re) && err == error(re):
			bad = append(bad, re)
		default:
			return rows, bad, err
		}
	}
	t.Fatal("reader does not end")
	return
}
