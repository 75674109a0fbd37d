package convert

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/licensehub/licensehub"
)

// Reader limits.
const (
	// MaxRecordBytes bounds one CSV record and one JSON line. A longer
	// JSON line is a RowError and reading goes on at the next line; a
	// longer CSV record (an unterminated quote swallowing the file) ends
	// the reading, see csvReader.
	MaxRecordBytes = 1 << 20
	// sniffBytes is how much of a CSV file decides its encoding.
	sniffBytes = 64 << 10
)

// DetectFormat gives the format of a file by its extension (any case):
// .csv and .txt are csv, .xlsx xlsx, .jsonl, .ndjson and .json jsonl; ""
// for anything else.
func DetectFormat(filename string) string {
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".csv", ".txt":
		return FormatCSV
	case ".xlsx":
		return FormatXLSX
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL
	}
	return ""
}

// OpenReader starts reading a legacy export of size bytes (-1 unknown) in
// format (csv, xlsx, jsonl). encoding applies to CSV (auto, "", utf-8,
// gb18030), sheet to XLSX ("" the first). The header (CSV, XLSX) is read
// here, so an empty file, an undecodable header or duplicate column names
// fail now (EINVALID). The Reader must be closed; closing it does not
// close r.
//
// Progress counts the bytes read from r (CSV and JSON lines: up to 64 KiB
// ahead of the last row returned, the decoders' buffers; XLSX: see
// xlsxReader) and may be called from another goroutine than Next. Next
// and Close must not be called concurrently. Every Row's Values map is
// new: rows may be handed to other goroutines.
//
// Memory stays flat for CSV and JSON lines: the reader holds one record
// and its buffers. XLSX is the exception: excelize needs the whole zip in
// memory (worksheets and shared strings above 16 MiB of XML are spilled
// to temporary files, and rows are then streamed from them). A workbook
// that would unpack to more than maxUnzipped bytes (0:
// DefaultMaxUnzipped) is refused before anything is unpacked, see
// CheckWorkbook.
func OpenReader(r io.Reader, size int64, format, encoding, sheet string, maxUnzipped int64) (Reader, error) {
	switch format {
	case FormatCSV:
		return openCSV(r, size, encoding)
	case FormatXLSX:
		return openXLSX(r, size, sheet, maxUnzipped)
	case FormatJSONL:
		return openJSONL(r, size)
	}
	return nil, licensehub.FieldError(licensehub.EINVALID, "format", "format %q is not csv, xlsx or jsonl", clip(format))
}

// malformed is the error inside a RowError.
func malformed(format string, args ...any) error {
	return licensehub.Errorf(licensehub.EMALFORMED, format, args...)
}

// countingReader counts the bytes read from the source, for Progress
// (which may be called from another goroutine than Next).
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// ---- CSV ----

// errRecordTooLong ends a CSV read: see csvReader.
var errRecordTooLong = errors.New("record longer than the limit")

// budgetReader fails once more than limit bytes are read since the last
// reset: it keeps an unterminated quote from reading the rest of a huge
// file into one field. The CSV reader resets it at every record; its
// buffering makes the limit approximate (a few KiB).
type budgetReader struct {
	r     io.Reader
	used  int
	limit int
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.used > b.limit {
		return 0, errRecordTooLong
	}
	n, err := b.r.Read(p)
	b.used += n
	return n, err
}

// csvReader reads CSV with encoding/csv (RFC 4180, strict quotes).
//
// Errors: a record whose field count differs from the header's, a bare or
// stray quote and undecodable bytes are RowErrors at the record's first
// line, and reading goes on at the next record (encoding/csv resumes after
// a quote error at the end of the line where it found it). A record longer
// than MaxRecordBytes (typically a quote never closed) cannot be resynced:
// Next returns it as a RowError, then, on every later call, a fatal
// EMALFORMED error (not a RowError). I/O errors of the source are fatal
// at once.
type csvReader struct {
	count  *countingReader
	budget *budgetReader
	cr     *csv.Reader
	size   int64
	header []string
	// lastEnd is the line where the last record read ended, for the line
	// of a record too long to be parsed.
	lastEnd int
	fatal   error
}

func openCSV(r io.Reader, size int64, encoding string) (*csvReader, error) {
	count := &countingReader{r: r}
	br := bufio.NewReaderSize(count, sniffBytes)
	head, err := br.Peek(sniffBytes)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "CSV source cannot be read")
	}
	var src io.Reader = br
	bom := bytes.HasPrefix(head, []byte("\xef\xbb\xbf"))
	switch encoding {
	case "", EncodingAuto:
		if bom || validUTF8Prefix(head, err == io.EOF) {
			break
		}
		src = transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder())
	case EncodingUTF8:
	case EncodingGB18030:
		src = transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder())
	default:
		return nil, licensehub.FieldError(licensehub.EINVALID, "encoding", "encoding %q is not auto, utf-8 or gb18030", clip(encoding))
	}
	if bom && src == io.Reader(br) {
		br.Discard(3)
	}
	c := &csvReader{count: count, size: size, lastEnd: 1}
	c.budget = &budgetReader{r: src, limit: MaxRecordBytes}
	c.cr = csv.NewReader(c.budget)
	c.cr.FieldsPerRecord = -1
	c.cr.ReuseRecord = true
	if err := c.readHeader(); err != nil {
		return nil, err
	}
	return c, nil
}

// validUTF8Prefix reports whether b is valid UTF-8, a rune cut at its end
// (the sniff window's edge) excepted unless atEOF.
func validUTF8Prefix(b []byte, atEOF bool) bool {
	if !atEOF {
		for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
			if c := b[len(b)-i]; utf8.RuneStart(c) {
				if !utf8.FullRune(b[len(b)-i:]) {
					b = b[:len(b)-i]
				}
				break
			}
		}
	}
	return utf8.Valid(b)
}

// readHeader reads the first non-empty record as the header: column names
// trimmed (a BOM too); unnamed columns are ignored, duplicate names an
// error.
func (c *csvReader) readHeader() error {
	for {
		c.budget.used = 0
		rec, err := c.cr.Read()
		switch {
		case err == io.EOF:
			return licensehub.Errorf(licensehub.EINVALID, "the CSV file has no header row")
		case err != nil:
			return licensehub.Wrap(err, licensehub.EINVALID, "the CSV header cannot be read")
		}
		if isEmptyRecord(rec) {
			continue
		}
		c.markEnd(rec)
		if err := checkDecoded(rec); err != nil {
			return licensehub.Wrap(err, licensehub.EINVALID, "the CSV header is not text in the file's encoding (set encoding: gb18030 or utf-8?)")
		}
		header, err := makeHeader(rec)
		if err != nil {
			return err
		}
		c.header = header
		return nil
	}
}

// makeHeader trims column names (and a BOM) and refuses duplicates.
func makeHeader(rec []string) ([]string, error) {
	header := make([]string, len(rec))
	seen := make(map[string]int, len(rec))
	named := 0
	for i, name := range rec {
		name = cleanValue(name)
		header[i] = name
		if name == "" {
			continue
		}
		named++
		if j, dup := seen[name]; dup {
			return nil, licensehub.Errorf(licensehub.EINVALID, "column %q appears twice in the header (columns %d and %d)", clip(name), j+1, i+1)
		}
		seen[name] = i
	}
	if named == 0 {
		return nil, licensehub.Errorf(licensehub.EINVALID, "the header row names no column")
	}
	return header, nil
}

// markEnd records the line where the record just read ends: the line of
// its last field plus the line breaks inside it.
func (c *csvReader) markEnd(rec []string) {
	if len(rec) == 0 {
		return
	}
	line, _ := c.cr.FieldPos(len(rec) - 1)
	c.lastEnd = line + strings.Count(rec[len(rec)-1], "\n")
}

func (c *csvReader) Next() (Row, error) {
	if c.fatal != nil {
		return Row{}, c.fatal
	}
	for {
		c.budget.used = 0
		rec, err := c.cr.Read()
		if err == io.EOF {
			return Row{}, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			switch {
			case errors.As(err, &pe) && pe.Err != errRecordTooLong:
				c.lastEnd = pe.Line
				return Row{}, &RowError{Line: max(pe.StartLine, 1), Err: malformed("CSV record is malformed at line %d, column %d: %v", pe.Line, pe.Column, pe.Err)}
			case errors.Is(err, errRecordTooLong):
				line := c.lastEnd + 1
				re := &RowError{Line: line, Err: malformed("the CSV record from line %d on is longer than %d bytes (a quote never closed?); the rest of the file cannot be read", line, MaxRecordBytes)}
				// Not wrapping re: a caller matching *RowError with errors.As
				// must see this one as fatal.
				c.fatal = licensehub.Wrap(errRecordTooLong, licensehub.EMALFORMED, "CSV reading stopped at line %d: a record longer than %d bytes", line, MaxRecordBytes)
				return Row{}, re
			default:
				c.fatal = licensehub.Wrap(err, licensehub.EUNAVAILABLE, "CSV source cannot be read")
				return Row{}, c.fatal
			}
		}
		line, _ := c.cr.FieldPos(0)
		c.markEnd(rec)
		if isEmptyRecord(rec) {
			continue
		}
		if len(rec) != len(c.header) {
			return Row{}, &RowError{Line: line, Err: malformed("the record has %d fields, the header %d", len(rec), len(c.header))}
		}
		if err := checkDecoded(rec); err != nil {
			return Row{}, &RowError{Line: line, Err: err}
		}
		return Row{Line: line, Values: rowValues(c.header, rec)}, nil
	}
}

func (c *csvReader) Progress() (done, total int64) { return c.count.n.Load(), c.size }
func (c *csvReader) Close() error                  { return nil }

// rowValues pairs a record with the header; unnamed columns are left out.
// The map is new: a Row stays valid after the next one is read.
func rowValues(header, rec []string) map[string]string {
	values := make(map[string]string, len(header))
	for i, name := range header {
		if name == "" {
			continue
		}
		if i < len(rec) {
			values[name] = rec[i]
		} else {
			values[name] = ""
		}
	}
	return values
}

// isEmptyRecord reports a record whose fields are all blank.
func isEmptyRecord(rec []string) bool {
	for _, f := range rec {
		if cleanValue(f) != "" {
			return false
		}
	}
	return true
}

// checkDecoded refuses fields that are not valid UTF-8 or hold U+FFFD:
// bytes the file's encoding could not decode (a GB18030 file read as
// UTF-8 past the sniffed start, or corrupt bytes), which must not end up
// signed in a license.
func checkDecoded(rec []string) error {
	for i, f := range rec {
		if !utf8.ValidString(f) || strings.ContainsRune(f, utf8.RuneError) {
			return malformed("field %d has bytes that are not text in the file's encoding", i+1)
		}
	}
	return nil
}

// ---- JSON lines ----

// jsonlReader reads one JSON object per line. Values may be strings,
// numbers (kept as written, exponents expanded), booleans ("true",
// "false") and null (absent); a line that is not such an object, is not
// UTF-8 or is longer than MaxRecordBytes is a RowError and reading goes on
// at the next line. Blank lines are skipped.
type jsonlReader struct {
	count *countingReader
	br    *bufio.Reader
	size  int64
	line  int
	long  []byte // a line longer than the buffer, assembled
}

func openJSONL(r io.Reader, size int64) (*jsonlReader, error) {
	count := &countingReader{r: r}
	br := bufio.NewReaderSize(count, 64<<10)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "JSON-lines source cannot be read")
	}
	if t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"); len(t) > 0 && t[0] == '[' {
		return nil, licensehub.Errorf(licensehub.EINVALID, "the file is a JSON array, not JSON lines (one object per line); convert it, e.g. jq -c '.[]'")
	}
	return &jsonlReader{count: count, br: br, size: size}, nil
}

func (j *jsonlReader) Next() (Row, error) {
	for {
		b, tooLong, err := j.readLine()
		if err != nil && (err != io.EOF || len(b) == 0 && !tooLong) {
			if err == io.EOF {
				return Row{}, io.EOF
			}
			return Row{}, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "JSON-lines source cannot be read")
		}
		j.line++
		if tooLong {
			return Row{}, &RowError{Line: j.line, Err: malformed("the line is longer than %d bytes", MaxRecordBytes)}
		}
		if j.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		values, err := parseJSONObject(b)
		if err != nil {
			return Row{}, &RowError{Line: j.line, Err: err}
		}
		return Row{Line: j.line, Values: values}, nil
	}
}

// readLine returns the next line without its newline (valid until the
// next call); tooLong when it exceeded MaxRecordBytes (its bytes are
// skipped up to the newline). err is io.EOF at the end, with the last
// line's bytes when it has no newline.
func (j *jsonlReader) readLine() (line []byte, tooLong bool, err error) {
	j.long = j.long[:0]
	for {
		frag, err := j.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !tooLong {
				if len(j.long)+len(frag) > MaxRecordBytes {
					tooLong, j.long = true, j.long[:0]
				} else {
					j.long = append(j.long, frag...)
				}
			}
			continue
		}
		if tooLong {
			return nil, true, err
		}
		if len(j.long) > 0 {
			j.long = append(j.long, frag...)
			frag = j.long
		}
		if len(frag) > MaxRecordBytes {
			return nil, true, err
		}
		return bytes.TrimSuffix(frag, []byte("\n")), false, err
	}
}

func (j *jsonlReader) Progress() (done, total int64) { return j.count.n.Load(), j.size }
func (j *jsonlReader) Close() error                  { return nil }

// parseJSONObject reads one JSON object of scalar values into strings.
func parseJSONObject(b []byte) (map[string]string, error) {
	if !utf8.Valid(b) {
		return nil, malformed("the line is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed("the line is not a JSON object")
	}
	values := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed("not JSON: %v", err)
		}
		key, _ := tok.(string)
		key = cleanValue(key)
		if tok, err = dec.Token(); err != nil {
			return nil, malformed("not JSON: %v", err)
		}
		var v string
		switch t := tok.(type) {
		case string:
			v = t
		case json.Number:
			if v, err = plainNumber(string(t)); err != nil {
				return nil, malformed("key %q: %v", clip(key), err)
			}
		case bool:
			v = "false"
			if t {
				v = "true"
			}
		case nil:
		case json.Delim:
			return nil, malformed("key %q holds a nested object or list; values must be strings, numbers, booleans or null", clip(key))
		}
		if key == "" {
			continue // like an unnamed CSV column
		}
		if _, dup := values[key]; dup {
			return nil, malformed("key %q appears twice", clip(key))
		}
		values[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("text after the JSON object")
	}
	return values, nil
}

// maxExponent bounds the exponent of a JSON number written out in full.
const maxExponent = 64

// plainNumber writes a JSON number without exponent, exactly: "1.5e3" is
// "1500", "2E-2" "0.02", integers as written (an 18-digit code stays
// exact, which float64 would not keep).
func plainNumber(s string) (string, error) {
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if !hasExp {
		return s, nil
	}
	e := 0
	expDigits := strings.TrimLeft(exp, "+-")
	if expDigits == "" || len(expDigits) > 4 {
		return "", fmt.Errorf("number %s has an exponent out of range", clip(s))
	}
	for i := 0; i < len(expDigits); i++ {
		e = e*10 + int(expDigits[i]-'0')
	}
	if strings.HasPrefix(exp, "-") {
		e = -e
	}
	if e > maxExponent || e < -maxExponent {
		return "", fmt.Errorf("number %s has an exponent out of range", clip(s))
	}
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + e // position of the decimal point in digits
	switch {
	case point <= 0:
		digits = strings.Repeat("0", 1-point) + digits
		point = 1
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	ip, fp := strings.TrimLeft(digits[:point], "0"), strings.TrimRight(digits[point:], "0")
	if ip == "" {
		ip = "0"
	}
	if ip == "0" && fp == "" {
		sign = ""
	}
	if fp == "" {
		return sign + ip, nil
	}
	return sign + ip + "." + fp, nil
}

// ---- XLSX ----

// xlsxReader streams the rows of one worksheet. Values are the cells'
// formatted text, as Excel shows them, with two fixes for registers: the
// built-in short date format is rendered 2006-01-02 (not excelize's
// mm-dd-yy), and the Chinese built-in date formats (yyyy"年"m"月"d"日" ...)
// render as such. The first non-empty row is the header; Row.Line is the
// spreadsheet row number; empty rows are skipped; cells beyond the header
// or under an unnamed column are ignored.
//
// Progress: excelize has read the whole file when the reader opens, and
// the rows' position in the sheet is not exposed, so Progress is (0, size)
// until the last row has been read, then (size, size).
type xlsxReader struct {
	f      *excelize.File
	rows   *excelize.Rows
	header []string
	row    int // spreadsheet row number of the last row read
	size   int64
	tmp    string      // excelize's temporary directory
	done   atomic.Bool // the last row has been read (Progress)
	closed bool
}

func openXLSX(r io.Reader, size int64, sheet string, maxUnzipped int64) (*xlsxReader, error) {
	if maxUnzipped <= 0 {
		maxUnzipped = DefaultMaxUnzipped
	}
	src, err := workbookSource(r)
	if err != nil {
		return nil, err
	}
	if err := CheckWorkbook(src, src.Size(), maxUnzipped); err != nil {
		return nil, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "XLSX source cannot be read")
	}
	// excelize's temporary files (spilled worksheets) go to a directory of
	// this reader's own, removed by Close or by a failed open: excelize
	// itself leaves them behind when a later part of the zip fails.
	tmp, err := os.MkdirTemp("", "licensehub-xlsx-*")
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EUNAVAILABLE, "no temporary directory for the workbook")
	}
	f, err := excelize.OpenReader(src, excelize.Options{ShortDatePattern: "yyyy-mm-dd", CultureInfo: excelize.CultureNameZhCN,
		UnzipSizeLimit: maxUnzipped, UnzipXMLSizeLimit: min(maxUnzipped, xlsxSpillBytes), TmpDir: tmp})
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(tmp)
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "not a readable XLSX workbook")
	}
	x := &xlsxReader{f: f, size: size, tmp: tmp}
	if sheet == "" {
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			x.Close()
			return nil, licensehub.Errorf(licensehub.EINVALID, "the workbook has no worksheet")
		}
		sheet = sheets[0]
	}
	if x.rows, err = f.Rows(sheet); err != nil {
		x.Close()
		return nil, licensehub.Wrap(err, licensehub.EINVALID, "worksheet %q cannot be read (sheets: %s)", clip(sheet), strings.Join(f.GetSheetList(), ", "))
	}
	for x.header == nil {
		cells, ok, err := x.nextCells()
		if err != nil || !ok {
			x.Close()
			if err == nil {
				err = licensehub.Errorf(licensehub.EINVALID, "worksheet %q has no header row", clip(sheet))
			}
			return nil, err
		}
		if x.header, err = makeHeader(cells); err != nil {
			x.Close()
			return nil, err
		}
	}
	return x, nil
}

// nextCells returns the cells of the next non-empty row; ok false at the
// end of the sheet.
func (x *xlsxReader) nextCells() (cells []string, ok bool, err error) {
	for x.rows.Next() {
		x.row++
		cells, err := x.rows.Columns()
		if err != nil {
			return nil, false, licensehub.Wrap(err, licensehub.EINVALID, "worksheet row %d cannot be read", x.row)
		}
		if !isEmptyRecord(cells) {
			return cells, true, nil
		}
	}
	if err := x.rows.Error(); err != nil {
		return nil, false, licensehub.Wrap(err, licensehub.EINVALID, "worksheet cannot be read after row %d", x.row)
	}
	return nil, false, nil
}

func (x *xlsxReader) Next() (Row, error) {
	if x.done.Load() {
		return Row{}, io.EOF
	}
	cells, ok, err := x.nextCells()
	if err != nil {
		return Row{}, err
	}
	if !ok {
		x.done.Store(true)
		return Row{}, io.EOF
	}
	return Row{Line: x.row, Values: rowValues(x.header, cells)}, nil
}

func (x *xlsxReader) Progress() (done, total int64) {
	if x.done.Load() {
		return x.size, x.size
	}
	return 0, x.size
}

// Close closes the rows iterator and the workbook, and removes excelize's
// temporary files.
func (x *xlsxReader) Close() error {
	if x.closed {
		return nil
	}
	x.closed = true
	var err error
	if x.rows != nil {
		err = x.rows.Close()
	}
	err = errors.Join(err, x.f.Close())
	if rerr := os.RemoveAll(x.tmp); rerr != nil {
		err = errors.Join(err, licensehub.Wrap(rerr, licensehub.EUNAVAILABLE, "removing the workbook's temporary files failed"))
	}
	return err
}

// Reject is the reject the job reports for a row that could not be
// decoded: code MALFORMED_ROW, the line and the reason.
func (e *RowError) Reject() *Reject {
	return &Reject{Line: e.Line, Code: RejectMalformedRow, Message: licensehub.Message(e.Err)}
}
