package convert

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

// fuzzRead drains a Reader checking the invariants every format keeps:
// rows and row errors have strictly increasing lines > 0, values are
// valid UTF-8 without U+FFFD under non-empty names, progress never passes
// the size, and a fatal error stays fatal.
func fuzzRead(t *testing.T, r Reader, size int64) {
	t.Helper()
	defer r.Close()
	last := 0
	for range 100_000 {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *RowError
		if err != nil && !(errors.As(err, &re) && err == error(re)) {
			// fatal: stays fatal, never a RowError
			if _, err2 := r.Next(); err2 == nil || errors.Is(err2, io.EOF) || errors.As(err2, &re) {
				t.Fatalf("after fatal %v: %v", err, err2)
			}
			break
		}
		line := row.Line
		if re != nil {
			line = re.Line
			if rj := re.Reject(); rj.Code != RejectMalformedRow || rj.Message == "" {
				t.Fatalf("reject %+v", rj)
			}
		}
		if line <= last {
			t.Fatalf("line %d after %d (%v)", line, last, err)
		}
		last = line
		for k, v := range row.Values {
			if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError) {
				t.Fatalf("line %d: bad value %q: %q", line, k, v)
			}
		}
		if done, total := r.Progress(); done > size || total != size {
			t.Fatalf("progress %d/%d of %d", done, total, size)
		}
	}
}

func FuzzCSVReader(f *testing.F) {
	f.Add([]byte(registerCSV), uint8(0))
	f.Add(gb18030(f, registerCSV), uint8(0))
	f.Add(gb18030(f, registerGB18030), uint8(2))
	f.Add([]byte("\ufeff"+registerCSV), uint8(1))
	f.Add([]byte(csvDirty), uint8(0))
	f.Add([]byte("编号,名称\n1,a\n2,\"open\n3,c\n"), uint8(0))
	f.Add([]byte("a,b\n\"x\"\"y\",\"\r\n\"\n"), uint8(1))
	encodings := []string{"", EncodingUTF8, EncodingGB18030}
	f.Fuzz(func(t *testing.T, data []byte, enc uint8) {
		r, err := OpenReader(bytes.NewReader(data), int64(len(data)), FormatCSV, encodings[int(enc)%len(encodings)], "", 0)
		if err != nil {
			if !licensehub.IsCode(err, licensehub.EINVALID) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		fuzzRead(t, r, int64(len(data)))
	})
}

func FuzzJSONLReader(f *testing.F) {
	f.Add([]byte(jsonlDirty))
	f.Add([]byte(registerJSONL))
	f.Add([]byte(`{"a": 1e5, "b": -0.5E-3, "c": null}` + "\n\n" + `{"a": "x"}`))
	f.Add([]byte("[1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := OpenReader(bytes.NewReader(data), int64(len(data)), FormatJSONL, "", "", 0)
		if err != nil {
			if !licensehub.IsCode(err, licensehub.EINVALID) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		fuzzRead(t, r, int64(len(data)))
	})
}

// FuzzParseDate: a date read with the default layouts is a real date that
// formats back to a YYYY-MM-DD the library parses to the same day.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2015年03月04日", "2015年3月4日", "20150304", "2015/3/4", "2015-03-04", "2015.3.4",
		"2015-02-30", "2015-03-04 00:00:00", "2015-03-04T08:00", "三月四日", "", " ", "0000-01-01", "9999.12.31"} {
		f.Add(s)
	}
	p := bizMapping(f).plan
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := p.parseDate(s)
		if !ok {
			return
		}
		out := formatDate(d, s)
		back, err := time.ParseInLocation(license.DateLayout, out, license.CST)
		if err != nil || !back.Equal(d) || out != d.Format(license.DateLayout) {
			t.Fatalf("%q → %v → %q → %v %v", s, d, out, back, err)
		}
	})
}

// FuzzRequest: any row gives either a request the library's own checks
// accept (number, holder code, dates in order) or a reject with a known
// code, the row's line and a field.
func FuzzRequest(f *testing.F) {
	f.Add("430100000012345", "长沙示范科技有限公司", creditA, "2015年03月04日", "", "长期", "有限")
	f.Add("４３０１", " 名称 ", residentX, "20150304", "2015/3/5", "2020.3.4", "")
	f.Add("No. 12", "x", creditBad, "2015-02-30", "2015-03-04", "2015-03-03", "股份")
	f.Add("第1号", "y", "430102800101123", "2024-06-16", "", "", "")
	f.Add("a", "b", strings.ToLower(residentA), "1948-01-01 00:00", "", "9999-12-31", "")
	m := bizMapping(f, func(m *Mapping) {
		m.DefaultValidity = "3y"
		m.ValueMaps = map[string]ValueMap{"fields.entity_type": {Strict: true, Values: map[string]string{"有限": "有限责任公司", "股份": "股份有限公司"}}}
	})
	codes := []string{RejectMissingField, RejectBadDate, RejectDateOrder, RejectBadHolderCode, RejectBadValue}
	f.Fuzz(func(t *testing.T, number, name, code, issue, from, until, etype string) {
		row := Row{Line: 9, Values: map[string]string{"注册号": number, "企业名称": name, "统一社会信用代码": code,
			"发证日期": issue, "有效期自": from, "有效期至": until, "企业类型": etype}}
		req, rj := m.Request(row, "b")
		if rj != nil {
			if rj.Line != 9 || rj.Field == "" || rj.Message == "" || !strings.Contains(strings.Join(codes, " "), rj.Code) {
				t.Fatalf("reject %+v", rj)
			}
			return
		}
		if !isLibraryNumber(req.Number) {
			t.Fatalf("number %q", req.Number)
		}
		if req.Holder.Name == "" || ident.ValidateHolderCode(req.Holder.CodeType, req.Holder.Code) != nil {
			t.Fatalf("holder %+v", req.Holder)
		}
		issueT, err1 := time.ParseInLocation(license.DateLayout, req.IssueDate, license.CST)
		fromT, err2 := time.ParseInLocation(license.DateLayout, req.ValidFrom, license.CST)
		if err1 != nil || err2 != nil || fromT.Before(issueT) || issueT.After(testToday) || issueT.Year() < EarliestYear {
			t.Fatalf("dates %q %q", req.IssueDate, req.ValidFrom)
		}
		if req.ValidUntil != license.LongTerm {
			untilT, err := time.ParseInLocation(license.DateLayout, req.ValidUntil, license.CST)
			if err != nil || untilT.Before(fromT) {
				t.Fatalf("valid_until %q (from %q)", req.ValidUntil, req.ValidFrom)
			}
		}
		if pv := req.Provenance; pv == nil || pv.Kind != license.ProvenanceStock || pv.SourceLine != 9 || pv.OriginalIssueDate != cleanValue(issue) {
			t.Fatalf("provenance %+v", pv)
		}
	})
}
