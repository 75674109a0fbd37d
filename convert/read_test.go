package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/licensehub/licensehub"
)

// gb18030 encodes UTF-8 text as GB18030.
func gb18030(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(t testing.TB, b []byte, format, encoding string) Reader {
	t.Helper()
	r, err := OpenReader(bytes.NewReader(b), int64(len(b)), format, encoding, "", 0)
	if err != nil {
		t.Fatalf("OpenReader: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestDetectFormat(t *testing.T) {
	for name, want := range map[string]string{
		"a.csv": "csv", "B.CSV": "csv", "x.txt": "csv", "台账.xlsx": "xlsx", "e.jsonl": "jsonl", "e.ndjson": "jsonl",
		"e.json": "jsonl", "old.xls": "", "noext": "", "dir.csv/x": "",
	} {
		if got := DetectFormat(name); got != want {
			t.Errorf("DetectFormat(%q) = %q, want %q", name, got, want)
		}
	}
}

const registerCSV = "注册号,企业名称,统一社会信用代码,发证日期\n" +
	"430100000012345,长沙示范科技有限公司," + creditA + ",2015年03月04日\n" +
	"430100000023456,湖南样例商贸有限公司," + creditB + ",2016/5/20\n"

// TestCSVEncodings: the same register in GB18030 (sniffed and forced), in
// UTF-8 with and without BOM, with CRLF, reads the same.
func TestCSVEncodings(t *testing.T) {
	crlf := strings.ReplaceAll(registerCSV, "\n", "\r\n")
	tests := []struct {
		name     string
		data     []byte
		encoding string
	}{
		{"gb18030 auto", gb18030(t, registerCSV), ""},
		{"gb18030 auto explicit", gb18030(t, registerCSV), EncodingAuto},
		{"gb18030 forced", gb18030(t, registerCSV), EncodingGB18030},
		{"gb18030 crlf", gb18030(t, crlf), ""},
		{"utf-8", []byte(registerCSV), ""},
		{"utf-8 bom", []byte("\ufeff" + registerCSV), ""},
		{"utf-8 bom forced", []byte("\ufeff" + registerCSV), EncodingUTF8},
		{"utf-8 bom crlf", []byte("\ufeff" + crlf), EncodingAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openBytes(t, tt.data, FormatCSV, tt.encoding)
			rows, bad, fatal := readAll(t, r)
			if fatal != nil || len(bad) > 0 {
				t.Fatalf("fatal %v, bad %v", fatal, bad)
			}
			if len(rows) != 2 {
				t.Fatalf("%d rows", len(rows))
			}
			want := map[string]string{"注册号": "430100000012345", "企业名称": "长沙示范科技有限公司", "统一社会信用代码": creditA, "发证日期": "2015年03月04日"}
			if fmt.Sprint(rows[0].Values) != fmt.Sprint(want) || rows[0].Line != 2 || rows[1].Line != 3 {
				t.Errorf("rows %+v", rows)
			}
			if done, total := r.Progress(); done != int64(len(tt.data)) || total != int64(len(tt.data)) {
				t.Errorf("progress %d/%d, want %d", done, total, len(tt.data))
			}
		})
	}
}

// TestCSVWrongEncoding: a GB18030 file read as UTF-8 has an undecodable
// header; a file whose GB18030 bytes come after the sniffed 64 KiB is
// read as UTF-8 and its rows with those bytes are RowErrors.
func TestCSVWrongEncoding(t *testing.T) {
	_, err := OpenReader(bytes.NewReader(gb18030(t, registerCSV)), -1, FormatCSV, EncodingUTF8, "", 0)
	if !licensehub.IsCode(err, licensehub.EINVALID) || !strings.Contains(err.Error(), "encoding") {
		t.Fatalf("err = %v", err)
	}

	var b bytes.Buffer
	b.WriteString("编号,名称\n")
	line := 1
	for b.Len() < sniffBytes+100 {
		line++
		fmt.Fprintf(&b, "%d,plain ascii name\n", line)
	}
	b.Write(gb18030(t, "99,长沙示范科技有限公司\n"))
	b.WriteString("100,ascii again\n")
	r := openBytes(t, b.Bytes(), FormatCSV, "")
	rows, bad, fatal := readAll(t, r)
	if fatal != nil || len(bad) != 1 || bad[0].Line != line+1 || rows[len(rows)-1].Line != line+2 {
		t.Fatalf("fatal %v bad %v last %+v (line %d)", fatal, bad, rows[len(rows)-1], line)
	}
	if rj := bad[0].Reject(); rj.Code != RejectMalformedRow || rj.Line != line+1 || strings.Contains(rj.Message, licensehub.EMALFORMED) {
		t.Errorf("reject %+v", rj)
	}
}

// TestCSVSniffEdge: UTF-8 text whose 64 KiB sniff window ends inside a
// character is still UTF-8.
func TestCSVSniffEdge(t *testing.T) {
	for shift := range 4 { // every byte of a character meets the edge once
		var b bytes.Buffer
		b.WriteString("编号" + strings.Repeat("x", shift) + ",名称\n")
		for i := 0; b.Len() < sniffBytes*2; i++ {
			fmt.Fprintf(&b, "%d,长沙示范科技有限公司\n", i)
		}
		r := openBytes(t, b.Bytes(), FormatCSV, "")
		rows, bad, fatal := readAll(t, r)
		if fatal != nil || len(bad) > 0 || rows[len(rows)-1].Values["名称"] != "长沙示范科技有限公司" {
			t.Fatalf("shift %d: fatal %v, %d bad rows", shift, fatal, len(bad))
		}
	}
}

// csvDirty is a register with every kind of bad record (and fuzz seed).
var csvDirty = "编号 , 名称,日期\n" + // 1 header, names trimmed
	"1,a,2015\n" + // 2
	"2,b\"x,2016\n" + // 3 bare quote
	"\n" + // 4 empty line
	",,\n" + // 5 empty record
	" ,\u3000, \n" + // 6 blank record
	"3,\"c\nd\",2017\n" + // 7-8 quoted newline
	"4,\"e\"f,2018\n" + // 9 stray quote
	"5,g,2019,extra\n" + // 10 too many fields
	"6,h\n" + // 11 too few
	"7,\"i \"\"quoted\"\"\",2020\n" + // 12
	"8,j,2021" // 13 no final newline

// TestCSVDirty: malformed records are RowErrors at their line, and
// reading goes on.
func TestCSVDirty(t *testing.T) {
	data := csvDirty
	r := openBytes(t, []byte(data), FormatCSV, "")
	rows, bad, fatal := readAll(t, r)
	if fatal != nil {
		t.Fatal(fatal)
	}
	var lines []int
	for _, row := range rows {
		lines = append(lines, row.Line)
	}
	if fmt.Sprint(lines) != "[2 7 12 13]" {
		t.Errorf("row lines %v", lines)
	}
	var badLines []int
	for _, e := range bad {
		badLines = append(badLines, e.Line)
	}
	if fmt.Sprint(badLines) != "[3 9 10 11]" {
		t.Errorf("bad lines %v: %v", badLines, bad)
	}
	if rows[1].Values["名称"] != "c\nd" || rows[2].Values["名称"] != `i "quoted"` || rows[0].Values["编号"] != "1" {
		t.Errorf("values %+v", rows)
	}
	if !strings.Contains(bad[2].Error(), "3 fields") && !strings.Contains(bad[2].Error(), "4 fields") {
		t.Errorf("field count message %v", bad[2])
	}
}

// TestCSVRunawayQuote: a quote never closed in a big file stops reading
// after a RowError, with a fatal error that is not a RowError.
func TestCSVRunawayQuote(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("编号,名称\n1,a\n2,\"runaway\n")
	for b.Len() < 2*MaxRecordBytes {
		b.WriteString("3,filler filler filler filler filler filler\n")
	}
	r := openBytes(t, b.Bytes(), FormatCSV, "")
	row, err := r.Next()
	if err != nil || row.Line != 2 {
		t.Fatalf("first row %+v %v", row, err)
	}
	_, err = r.Next()
	var re *RowError
	if !errors.As(err, &re) || re.Line != 3 {
		t.Fatalf("err = %v, want a RowError at line 3", err)
	}
	for range 2 {
		_, err = r.Next()
		if err == nil || errors.Is(err, io.EOF) || errors.As(err, &re) || !licensehub.IsCode(err, licensehub.EMALFORMED) {
			t.Fatalf("err = %v, want fatal EMALFORMED", err)
		}
	}
	// An unterminated quote at the end of a small file is one RowError.
	r = openBytes(t, []byte("编号,名称\n1,a\n2,\"open\n3,c\n"), FormatCSV, "")
	rows, bad, fatal := readAll(t, r)
	if len(rows) != 1 || len(bad) != 1 || bad[0].Line != 3 || fatal != nil {
		t.Errorf("rows %v bad %v fatal %v", rows, bad, fatal)
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	for name, data := range map[string]string{
		"empty":     "",
		"blank":     "\n\n ,\n",
		"duplicate": "编号,名称,编号\n1,2,3\n",
		"bad quote": "编号,\"名称\n",
	} {
		_, err := OpenReader(strings.NewReader(data), int64(len(data)), FormatCSV, "", "", 0)
		if !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := OpenReader(strings.NewReader("a\n"), 2, FormatCSV, "latin1", "", 0); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("encoding: %v", err)
	}
	if _, err := OpenReader(strings.NewReader("a\n"), 2, "xls", "", "", 0); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("format: %v", err)
	}
	// A header with an unnamed column: its values are ignored.
	r := openBytes(t, []byte("编号,,名称\n1,x,a\n"), FormatCSV, "")
	rows, _, _ := readAll(t, r)
	if len(rows) != 1 || len(rows[0].Values) != 2 || rows[0].Values["名称"] != "a" {
		t.Errorf("rows %+v", rows)
	}
}

// jsonlDirty is a JSON-lines export with every kind of bad line (and
// fuzz seed).
var jsonlDirty = "\ufeff" + `{"zzbh": "91430100", "qymc": "长沙示范科技有限公司", "zczb": 100, "rate": 1.5e3, "tiny": 2E-2, "big": 110105194912310020, "ok": true, "no": false, "xzqhdm": null}` + "\r\n" + // 1
	"\n" + // 2 blank
	"   \t\n" + // 3 blank
	`{"zzbh": "2", "nested": {"a": 1}}` + "\n" + // 4 nested
	`["a", "b"]` + "\n" + // 5 not an object
	`{"zzbh": "3", ` + "\n" + // 6 truncated
	`{"zzbh": "4"} trailing` + "\n" + // 7 trailing text
	`{"zzbh": "5", "zzbh": "6"}` + "\n" + // 8 duplicate key
	"{\"zzbh\": \"\xff\"}\n" + // 9 not UTF-8
	`{"zzbh": "7", "list": []}` + "\n" + // 10 list
	`{"zzbh": "8", "huge": 1e999}` + "\n" + // 11 exponent out of range
	`"just a string"` + "\n" + // 12
	`{" zzbh ": "9"}` // 13, no final newline, key trimmed

func TestJSONL(t *testing.T) {
	data := jsonlDirty
	r := openBytes(t, []byte(data), FormatJSONL, "")
	rows, bad, fatal := readAll(t, r)
	if fatal != nil {
		t.Fatal(fatal)
	}
	if len(rows) != 2 || rows[0].Line != 1 || rows[1].Line != 13 {
		t.Fatalf("rows %+v", rows)
	}
	want := map[string]string{"zzbh": "91430100", "qymc": "长沙示范科技有限公司", "zczb": "100", "rate": "1500", "tiny": "0.02",
		"big": "110105194912310020", "ok": "true", "no": "false", "xzqhdm": ""}
	if fmt.Sprint(rows[0].Values) != fmt.Sprint(want) {
		t.Errorf("values\n got %v\nwant %v", rows[0].Values, want)
	}
	if rows[1].Values["zzbh"] != "9" {
		t.Errorf("row 13 %v", rows[1].Values)
	}
	var badLines []int
	for _, e := range bad {
		badLines = append(badLines, e.Line)
	}
	if fmt.Sprint(badLines) != "[4 5 6 7 8 9 10 11 12]" {
		t.Errorf("bad lines %v: %v", badLines, bad)
	}
	if done, total := r.Progress(); done != int64(len(data)) || total != int64(len(data)) {
		t.Errorf("progress %d/%d", done, total)
	}
}

// TestJSONLLongLine: a line over the limit is a RowError, and the next
// line is read.
func TestJSONLLongLine(t *testing.T) {
	long := `{"x": "` + strings.Repeat("长", MaxRecordBytes/3+10) + `"}`
	data := `{"a": "1"}` + "\n" + long + "\n" + `{"a": "3"}` + "\n" + long
	r := openBytes(t, []byte(data), FormatJSONL, "")
	rows, bad, fatal := readAll(t, r)
	if fatal != nil || len(rows) != 2 || rows[1].Line != 3 || len(bad) != 2 || bad[0].Line != 2 || bad[1].Line != 4 {
		t.Fatalf("rows %v bad %v fatal %v", rows, bad, fatal)
	}
	// Just under the limit is fine.
	ok := `{"x": "` + strings.Repeat("a", MaxRecordBytes-20) + `"}`
	r = openBytes(t, []byte(ok+"\n"), FormatJSONL, "")
	if rows, bad, _ := readAll(t, r); len(rows) != 1 || len(bad) != 0 {
		t.Fatalf("rows %d bad %v", len(rows), bad)
	}
}

func TestJSONArrayRefused(t *testing.T) {
	data := "\ufeff\n  [\n {\"a\": 1}\n]\n"
	_, err := OpenReader(strings.NewReader(data), -1, FormatJSONL, "", "", 0)
	if !licensehub.IsCode(err, licensehub.EINVALID) || !strings.Contains(err.Error(), "JSON array") {
		t.Fatalf("err = %v", err)
	}
}

func TestPlainNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "-0", "12": "12", "1.50": "1.50", "1e3": "1000", "1E+3": "1000", "1.5e3": "1500",
		"1.2345e2": "123.45", "2E-2": "0.02", "-2.5e-3": "-0.0025", "0e5": "0", "-0.0e1": "0", "123e-1": "12.3",
		"110105194912310020": "110105194912310020", "1e64": "1" + strings.Repeat("0", 64),
	} {
		got, err := plainNumber(in)
		if err != nil || got != want {
			t.Errorf("plainNumber(%q) = %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"1e65", "1e-999", "1e99999"} {
		if _, err := plainNumber(in); err == nil {
			t.Errorf("plainNumber(%q) accepted", in)
		}
	}
}

// permitWorkbook builds a food-permit ledger: an empty first row, the
// header on row 2, a row with a real date cell, an empty row, a row with
// text dates and a number cell.
func permitWorkbook(t testing.TB) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "许可证台账"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		t.Fatal(err)
	}
	if _, err := f.NewSheet("说明"); err != nil {
		t.Fatal(err)
	}
	header := []any{"许可证编号", "经营者名称", "社会信用代码", "法定代表人（负责人）", "住所", "经营场所", "主体业态", "网络经营",
		"经营项目", "签发日期", "有效期至", "投诉举报电话"}
	rows := [][]any{
		{"JY14301000001234", "长沙某某餐饮有限公司", creditC, "王五", "长沙市天心区某路1号", "长沙市天心区某路1号", "餐饮服务", "否",
			"热食类食品制售", time.Date(2020, 5, 6, 0, 0, 0, 0, time.UTC), "2025年5月5日", 12315},
		nil,
		{"ＪＹ１４３０１０００００５６７８", "　长沙样例超市有限公司", creditB, "赵六", "长沙市开福区某路2号", "长沙市开福区某路2号", "食品销售", "有",
			"预包装食品销售（含冷藏冷冻食品）", "2021/7/8", "", "0731-12345678"},
	}
	if err := f.SetSheetRow(sheet, "A2", &header); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r == nil {
			continue
		}
		if err := f.SetSheetRow(sheet, fmt.Sprintf("A%d", i+3), &r); err != nil {
			t.Fatal(err)
		}
	}
	f.SetCellValue("说明", "A1", "本表为食品经营许可证台账")
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestXLSX(t *testing.T) {
	data := permitWorkbook(t)
	for _, sheet := range []string{"", "许可证台账"} {
		r, err := OpenReader(bytes.NewReader(data), int64(len(data)), FormatXLSX, "", sheet, 0)
		if err != nil {
			t.Fatal(err)
		}
		if done, total := r.Progress(); done != 0 || total != int64(len(data)) {
			t.Errorf("progress before %d/%d", done, total)
		}
		rows, bad, fatal := readAll(t, r)
		if fatal != nil || len(bad) > 0 || len(rows) != 2 {
			t.Fatalf("rows %v bad %v fatal %v", rows, bad, fatal)
		}
		if rows[0].Line != 3 || rows[1].Line != 5 {
			t.Errorf("lines %d %d, want 3 5", rows[0].Line, rows[1].Line)
		}
		if got := rows[0].Values["签发日期"]; got != "2020-05-06" {
			t.Errorf("date cell = %q, want 2020-05-06", got)
		}
		if got := rows[0].Values["有效期至"]; got != "2025年5月5日" {
			t.Errorf("text date = %q", got)
		}
		if got := rows[0].Values["投诉举报电话"]; got != "12315" {
			t.Errorf("number cell = %q", got)
		}
		if got := rows[1].Values["有效期至"]; got != "" {
			t.Errorf("empty cell = %q", got)
		}
		if done, total := r.Progress(); done != total {
			t.Errorf("progress after %d/%d", done, total)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if err := r.Close(); err != nil {
			t.Error("second close:", err)
		}
	}
	if _, err := OpenReader(bytes.NewReader(data), -1, FormatXLSX, "", "Sheet9", 0); !licensehub.IsCode(err, licensehub.EINVALID) || !strings.Contains(err.Error(), "许可证台账, 说明") {
		t.Errorf("missing sheet: %v", err)
	}
	if _, err := OpenReader(strings.NewReader("not a zip"), 9, FormatXLSX, "", "", 0); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("not xlsx: %v", err)
	}
	f := excelize.NewFile()
	var empty bytes.Buffer
	f.WriteTo(&empty)
	if _, err := OpenReader(&empty, -1, FormatXLSX, "", "", 0); !licensehub.IsCode(err, licensehub.EINVALID) || !strings.Contains(err.Error(), "no header") {
		t.Errorf("empty sheet: %v", err)
	}
}
