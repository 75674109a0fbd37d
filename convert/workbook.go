package convert

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/licensehub/licensehub"
)

// Limits of an XLSX workbook (a zip of XML parts). A small upload can
// unpack to far more than the disk or memory hold (a zip bomb), so what
// the parts unpack to is checked from the zip's directory before anything
// is unpacked; archive/zip then refuses any part whose data unpacks to
// more than its directory entry says.
const (
	// DefaultMaxUnzipped is the default bound on the sum of a workbook's
	// unpacked parts (conversion.xlsx_max_unzipped_bytes).
	DefaultMaxUnzipped = 1 << 30
	// xlsxMaxMemoryPart bounds each part excelize holds in memory whole
	// (and whose XML it parses at once): every part but the worksheets
	// and the shared strings, which it spills to temporary files.
	xlsxMaxMemoryPart = 64 << 20
)

// Variables for tests.
var (
	// xlsxSpillBytes is the size above which excelize spills a worksheet
	// or the shared strings to a temporary file (excelize's default).
	xlsxSpillBytes int64 = 16 << 20
	// xlsxMaxDirectory bounds the zip's directory (and what reading it
	// allocates): a workbook has tens of parts, not millions.
	xlsxMaxDirectory int64 = 16 << 20
)

// errDirectoryTooLarge ends reading a zip directory over xlsxMaxDirectory.
var errDirectoryTooLarge = errors.New("zip directory over the limit")

// CheckWorkbook refuses (EINVALID, field source) an XLSX workbook of size
// bytes whose parts would unpack to more than maxUnzipped bytes in all
// (0: DefaultMaxUnzipped), that has a part held in memory above 64 MiB,
// or a directory above 16 MiB; it reads only the zip's directory. A file
// that is not a zip is EINVALID too; r's own errors (a *licensehub.Error)
// are returned as they are.
func CheckWorkbook(r io.ReaderAt, size, maxUnzipped int64) error {
	if maxUnzipped <= 0 {
		maxUnzipped = DefaultMaxUnzipped
	}
	zr, err := zip.NewReader(&budgetReaderAt{r: r, left: xlsxMaxDirectory + 80<<10}, size) // + the end record, read first
	var e *licensehub.Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, errDirectoryTooLarge) {
		return &licensehub.Error{Code: licensehub.EINVALID, Field: "source", Err: err,
			Message: fmt.Sprintf("the workbook's table of contents is larger than %s: it is not a spreadsheet export (too many parts)", sizeText(xlsxMaxDirectory))}
	}
	if err != nil {
		return licensehub.Wrap(err, licensehub.EINVALID, "not a readable XLSX workbook")
	}
	limit := uint64(maxUnzipped)
	var total uint64
	for _, f := range zr.File {
		n := f.UncompressedSize64
		if n > limit || total+n > limit {
			return &licensehub.Error{Code: licensehub.EINVALID, Field: "source",
				Details: map[string]any{"limit_bytes": maxUnzipped},
				Message: fmt.Sprintf("the workbook unpacks to more than %s, the configured limit: split the register into smaller workbooks", sizeText(maxUnzipped))}
		}
		total += n
		name := strings.ToLower(strings.ReplaceAll(f.Name, "\\", "/"))
		spilled := strings.HasPrefix(name, "xl/worksheets/sheet") || name == "xl/sharedstrings.xml"
		if !spilled && n > xlsxMaxMemoryPart {
			return &licensehub.Error{Code: licensehub.EINVALID, Field: "source",
				Details: map[string]any{"part": clip(f.Name), "limit_bytes": xlsxMaxMemoryPart},
				Message: fmt.Sprintf("the workbook's part %q unpacks to more than %s (only worksheets and shared strings may be larger)", clip(f.Name), sizeText(xlsxMaxMemoryPart))}
		}
	}
	return nil
}

// budgetReaderAt fails once more than left bytes have been read.
type budgetReaderAt struct {
	r    io.ReaderAt
	left int64
}

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if int64(len(p)) > b.left {
		return 0, errDirectoryTooLarge
	}
	n, err := b.r.ReadAt(p, off)
	b.left -= int64(n)
	return n, err
}

// workbookSource gives random access to r from its current offset: a
// file (or any ReaderAt and Seeker) is read in place, anything else is
// read into memory (excelize holds the whole zip in memory anyway).
func workbookSource(r io.Reader) (*io.SectionReader, error) {
	if s, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		cur, err := s.Seek(0, io.SeekCurrent)
		if err == nil {
			var end int64
			if end, err = s.Seek(0, io.SeekEnd); err == nil {
				return io.NewSectionReader(s, cur, end-cur), nil
			}
		}
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "XLSX source cannot be read")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		var e *licensehub.Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "XLSX source cannot be read")
	}
	return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))), nil
}

// sizeText is n bytes for people: "1 GiB", "512 MiB", "1536 bytes".
func sizeText(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d %s", n/u.mult, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
