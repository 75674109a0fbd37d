package convert

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
)

type part = testenv.ZipPart

func bombWorkbook(t testing.TB, base []byte, parts ...part) []byte {
	return testenv.ZipWith(t, base, parts...)
}

// privateTemp points os.TempDir at an empty directory of the test's and
// returns a check that nothing was left in it.
func privateTemp(t *testing.T) func() {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return func() {
		t.Helper()
		var left []string
		filepath.Walk(dir, func(path string, _ os.FileInfo, _ error) error {
			if path != dir {
				left = append(left, path)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("temporary files left behind: %v", left)
		}
	}
}

// sheetXML is the permit workbook's first worksheet with n blanks of
// padding before its rows: valid, and as large as wanted.
func sheetXML(t testing.TB, base []byte, pad int) part {
	t.Helper()
	zr, _ := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	for _, f := range zr.File {
		if f.Name == "xl/worksheets/sheet1.xml" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			i := bytes.Index(b, []byte("<sheetData>")) + len("<sheetData>")
			// One part: head, pad blanks, tail (repeat works on one string,
			// so the padding is built here; it compresses to almost nothing).
			return part{Name: f.Name, Data: string(b[:i]) + strings.Repeat(" ", pad) + string(b[i:]), Repeat: 1}
		}
	}
	t.Fatal("no sheet1.xml")
	return part{}
}

func TestXLSXUnzipLimits(t *testing.T) {
	const mib = 1 << 20
	defer func(spill, dir int64) { xlsxSpillBytes, xlsxMaxDirectory = spill, dir }(xlsxSpillBytes, xlsxMaxDirectory)
	xlsxSpillBytes, xlsxMaxDirectory = 256<<10, 64<<10 // spill and list what small tests can afford
	base := permitWorkbook(t)

	bomb := bombWorkbook(t, base, part{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 50*mib/6 + 1})
	if zr, err := zip.NewReader(bytes.NewReader(bomb), int64(len(bomb))); err != nil || len(bomb) > 256<<10 ||
		zr.File[len(zr.File)-1].UncompressedSize64 < 50*mib {
		t.Fatalf("the bomb is %d bytes (%v): the test premise (a small zip unpacking to 50 MiB) does not hold", len(bomb), err)
	}
	many := make([]part, 0, 3000)
	for i := range 3000 {
		many = append(many, part{Name: fmt.Sprintf("xl/media/image%04d-with-a-long-name-to-fill-the-directory.png", i), Data: "x", Repeat: 1})
	}
	tests := []struct {
		name    string
		file    []byte
		limit   int64
		code    string
		field   string
		message string // in the error's message
	}{
		{"a 50 MiB sheet over a 1 MiB limit", bomb, 1 * mib, licensehub.EINVALID, "source", "unpacks to more than 1 MiB"},
		{"parts under the limit, over it together", bombWorkbook(t, base,
			part{Name: "xl/media/image1.png", Data: "0123456789abcdef", Repeat: 40 << 10},
			part{Name: "xl/media/image2.png", Data: "0123456789abcdef", Repeat: 40 << 10}), 1 * mib, licensehub.EINVALID, "source", "unpacks to more than 1 MiB"},
		{"the default limit (1 GiB) from the directory", bombWorkbook(t, base,
			part{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 1, Declared: 2 << 30}), 0, licensehub.EINVALID, "source", "unpacks to more than 1 GiB"},
		{"a part held in memory over 64 MiB", bombWorkbook(t, base,
			part{Name: "xl/styles.xml", Data: " ", Repeat: 1, Declared: 65 * mib}), 0, licensehub.EINVALID, "source", `part "xl/styles.xml" unpacks to more than 64 MiB`},
		{"a directory over its limit", bombWorkbook(t, base, many...), 0, licensehub.EINVALID, "source", "table of contents is larger than 64 KiB"},
		// A part unpacking to more than its directory entry says is cut
		// there by archive/zip (excelize reads what it got: no rows).
		{"a directory entry that lies (in memory)", bombWorkbook(t, base,
			part{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 2 * mib / 6, Declared: 1000}), 0, licensehub.EINVALID, "", "no header row"},
		{"a directory entry that lies (spilled)", bombWorkbook(t, base,
			part{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 2 * mib / 6, Declared: 1 * mib}), 0, licensehub.EINVALID, "", "no header row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean := privateTemp(t)
			for _, via := range []string{"memory", "file"} {
				var src io.Reader = bytes.NewReader(tt.file)
				if via == "file" {
					path := filepath.Join(t.TempDir(), "book.xlsx")
					os.WriteFile(path, tt.file, 0o600)
					f, err := os.Open(path)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					src = f
				}
				r, err := OpenReader(src, int64(len(tt.file)), FormatXLSX, "", "", tt.limit)
				if err == nil {
					r.Close()
					t.Fatalf("%s: the workbook was opened", via)
				}
				var e *licensehub.Error
				if !errors.As(err, &e) || e.Code != tt.code || e.Field != tt.field || !strings.Contains(e.Message, tt.message) {
					t.Errorf("%s: %v, want %s field %q with %q", via, err, tt.code, tt.field, tt.message)
				}
				if tt.field != "" && (strings.Contains(e.Message, "bytes limit") || strings.Contains(e.Message, "zip:")) {
					t.Errorf("%s: Go text in %q", via, e.Message)
				}
			}
			clean()
		})
	}

	// Under the limit the same kind of workbook reads, a large sheet
	// spilled to a temporary file that Close removes.
	t.Run("a large sheet under the limit", func(t *testing.T) {
		clean := privateTemp(t)
		big := bombWorkbook(t, base, sheetXML(t, base, 2*mib))
		r, err := OpenReader(bytes.NewReader(big), int64(len(big)), FormatXLSX, "", "", 4*mib)
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(os.Getenv("TMPDIR"))
		if len(entries) != 1 {
			t.Errorf("the sheet was not spilled to a temporary directory: %v", entries)
		}
		rows, bad, fatal := readAll(t, r)
		if fatal != nil || len(bad) > 0 || len(rows) != 2 {
			t.Fatalf("rows %v bad %v fatal %v", rows, bad, fatal)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		clean()
	})
}

// FuzzCheckWorkbook: any bytes are checked from the zip directory alone,
// without a panic, and refused only with INVALID_ARGUMENT; what it passes
// unpacks (by archive/zip's own reading of the directory, which bounds
// each part's data) to at most the limit.
func FuzzCheckWorkbook(f *testing.F) {
	base := permitWorkbook(f)
	f.Add(base)
	f.Add(testenv.ZipWith(f, base, testenv.ZipPart{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 1 << 20}))
	f.Add(testenv.ZipWith(f, base, testenv.ZipPart{Name: "xl/styles.xml", Data: " ", Repeat: 1, Declared: 1 << 40}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 20
		err := CheckWorkbook(bytes.NewReader(data), int64(len(data)), limit)
		if err != nil {
			if !licensehub.IsCode(err, licensehub.EINVALID) {
				t.Fatalf("refused with %v, want INVALID_ARGUMENT", err)
			}
			return
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("passed, but archive/zip cannot read it: %v", err)
		}
		var total uint64
		for _, f := range zr.File {
			total += f.UncompressedSize64
			if f.UncompressedSize64 > limit || total > limit {
				t.Fatalf("passed a workbook unpacking to more than %d bytes", limit)
			}
		}
	})
}
