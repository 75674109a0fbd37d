package convert

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensehub/licensehub"
)

// part is one zip entry of a test workbook: data repeated times (the
// whole is written through deflate, so a large part costs little zip).
// declared, when set, is the uncompressed size its directory entry
// states instead of the real one (a lying header).
type part struct {
	name     string
	data     string
	repeat   int
	declared uint64
}

// bombWorkbook is the test permit workbook with parts added or replaced.
func bombWorkbook(t testing.TB, base []byte, parts ...part) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	replaced := map[string]bool{}
	for _, p := range parts {
		replaced[p.name] = true
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		if replaced[f.Name] {
			continue
		}
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range parts {
		if p.declared == 0 && p.repeat*len(p.data) < 64<<10 {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: p.name, Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, strings.Repeat(p.data, p.repeat))
			continue
		}
		// The content is one chunk repeated: compressed once, then its
		// deflate blocks (byte-aligned by Flush, referring only to
		// themselves) repeated, then an empty final block.
		per := max(1, (64<<10)/len(p.data))
		full, rest := p.repeat/per, p.repeat%per
		chunk := strings.Repeat(p.data, per)
		crc := crc32.NewIEEE()
		var raw bytes.Buffer
		deflated := func(s string) []byte {
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.DefaultCompression)
			io.WriteString(fw, s)
			fw.Flush()
			return b.Bytes()
		}
		block := deflated(chunk)
		for range full {
			raw.Write(block)
			io.WriteString(crc, chunk)
		}
		raw.Write(deflated(chunk[:rest*len(p.data)]))
		io.WriteString(crc, chunk[:rest*len(p.data)])
		var end bytes.Buffer
		fw, _ := flate.NewWriter(&end, flate.DefaultCompression)
		fw.Close()
		raw.Write(end.Bytes())
		n := p.repeat * len(p.data)
		size := uint64(n)
		if p.declared != 0 {
			size = p.declared
		}
		hw, err := zw.CreateRaw(&zip.FileHeader{Name: p.name, Method: zip.Deflate, CRC32: crc.Sum32(),
			CompressedSize64: uint64(raw.Len()), UncompressedSize64: size})
		if err != nil {
			t.Fatal(err)
		}
		hw.Write(raw.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
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
			return part{name: f.Name, data: string(b[:i]) + strings.Repeat(" ", pad) + string(b[i:]), repeat: 1}
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

	bomb := bombWorkbook(t, base, part{name: "xl/worksheets/sheet1.xml", data: "<row/>", repeat: 50*mib/6 + 1})
	if zr, err := zip.NewReader(bytes.NewReader(bomb), int64(len(bomb))); err != nil || len(bomb) > 256<<10 ||
		zr.File[len(zr.File)-1].UncompressedSize64 < 50*mib {
		t.Fatalf("the bomb is %d bytes (%v): the test premise (a small zip unpacking to 50 MiB) does not hold", len(bomb), err)
	}
	many := make([]part, 0, 3000)
	for i := range 3000 {
		many = append(many, part{name: fmt.Sprintf("xl/media/image%04d-with-a-long-name-to-fill-the-directory.png", i), data: "x", repeat: 1})
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
			part{name: "xl/media/image1.png", data: "0123456789abcdef", repeat: 40 << 10},
			part{name: "xl/media/image2.png", data: "0123456789abcdef", repeat: 40 << 10}), 1 * mib, licensehub.EINVALID, "source", "unpacks to more than 1 MiB"},
		{"the default limit (1 GiB) from the directory", bombWorkbook(t, base,
			part{name: "xl/worksheets/sheet1.xml", data: "<row/>", repeat: 1, declared: 2 << 30}), 0, licensehub.EINVALID, "source", "unpacks to more than 1 GiB"},
		{"a part held in memory over 64 MiB", bombWorkbook(t, base,
			part{name: "xl/styles.xml", data: " ", repeat: 1, declared: 65 * mib}), 0, licensehub.EINVALID, "source", `part "xl/styles.xml" unpacks to more than 64 MiB`},
		{"a directory over its limit", bombWorkbook(t, base, many...), 0, licensehub.EINVALID, "source", "table of contents is larger than 64 KiB"},
		// A part unpacking to more than its directory entry says is cut
		// there by archive/zip (excelize reads what it got: no rows).
		{"a directory entry that lies (in memory)", bombWorkbook(t, base,
			part{name: "xl/worksheets/sheet1.xml", data: "<row/>", repeat: 2 * mib / 6, declared: 1000}), 0, licensehub.EINVALID, "", "no header row"},
		{"a directory entry that lies (spilled)", bombWorkbook(t, base,
			part{name: "xl/worksheets/sheet1.xml", data: "<row/>", repeat: 2 * mib / 6, declared: 1 * mib}), 0, licensehub.EINVALID, "", "no header row"},
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
