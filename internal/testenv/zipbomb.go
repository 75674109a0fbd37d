package testenv

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

// ZipPart is one entry that ZipWith adds to (or replaces in) a zip: Data
// repeated Repeat times. A large part costs little zip: its content is
// one chunk repeated, compressed once. Declared, when set, is the
// uncompressed size its directory entry states instead of the real one
// (a lying entry).
type ZipPart struct {
	Name     string
	Data     string
	Repeat   int
	Declared uint64
}

// ZipWith is the zip base with parts added, or put in place of the
// entries of the same names (an XLSX zip bomb: a workbook whose sheet is
// replaced by 50 MiB of "<row/>" is a zip of some 100 KiB).
func ZipWith(tb testing.TB, base []byte, parts ...ZipPart) []byte {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		tb.Fatal(err)
	}
	replaced := map[string]bool{}
	for _, p := range parts {
		replaced[p.Name] = true
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		if !replaced[f.Name] {
			if err := zw.Copy(f); err != nil {
				tb.Fatal(err)
			}
		}
	}
	for _, p := range parts {
		if p.Declared == 0 && p.Repeat*len(p.Data) < 64<<10 {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: p.Name, Method: zip.Store})
			if err != nil {
				tb.Fatal(err)
			}
			io.WriteString(w, strings.Repeat(p.Data, p.Repeat))
			continue
		}
		// Deflate blocks ended by Flush are byte-aligned and refer only
		// to themselves: one chunk's blocks repeated, then an empty final
		// block, unpack to the chunk repeated.
		per := max(1, (64<<10)/len(p.Data))
		chunk := strings.Repeat(p.Data, per)
		rest := chunk[:(p.Repeat%per)*len(p.Data)]
		deflated := func(s string, final bool) []byte {
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.DefaultCompression)
			io.WriteString(fw, s)
			if final {
				fw.Close()
			} else {
				fw.Flush()
			}
			return b.Bytes()
		}
		var raw bytes.Buffer
		crc := crc32.NewIEEE()
		block := deflated(chunk, false)
		for range p.Repeat / per {
			raw.Write(block)
			io.WriteString(crc, chunk)
		}
		raw.Write(deflated(rest, true))
		io.WriteString(crc, rest)
		size := uint64(p.Repeat * len(p.Data))
		if p.Declared != 0 {
			size = p.Declared
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: p.Name, Method: zip.Deflate, CRC32: crc.Sum32(),
			CompressedSize64: uint64(raw.Len()), UncompressedSize64: size})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(raw.Bytes())
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}
