// Package convert turns legacy license registers (存量证照: CSV in UTF-8 or
// GB18030, XLSX workbooks, JSON lines) into signed electronic licenses in
// the library, in bulk, resumably, with an account of every row.
//
// It holds the rows' domain only: no storage. Jobs (checkpoints, resume,
// leases, reports) are package convert/runner; the HTTP edge is in api/,
// the CLI in cmd/hubctl, the background runner's wiring in cmd/hub.
//
//   - Mapping (mapping.go): one YAML file per legacy source under
//     configs/conversion/: license type, issuing authority, column → field,
//     date formats, value maps, default validity, the legacy number column.
//   - Reader (read.go): rows as a stream, whatever the file size.
//   - Mapping.Request (row.go): one row → a license.PushRequest with its
//     provenance, or a Reject naming the line, field and reason code.
package convert

import (
	"io"
	"strconv"
)

// Row is one record of a legacy export: its values by column name (the
// header's, trimmed) and where it came from.
type Row struct {
	// Line is the row's 1-based line in the source: the CSV line where
	// the record starts (the header is line 1), the XLSX row number, the
	// JSON-lines line.
	Line   int
	Values map[string]string
}

// Reader streams the rows of one legacy export. Memory stays flat: a
// Reader holds at most one row (and its decoder's buffers).
type Reader interface {
	// Next returns the next row, io.EOF after the last. A row that cannot
	// be decoded at all (a JSON line that is not an object, a CSV record
	// with a bare quote) is returned as a *RowError, and Next can be
	// called again for the following rows.
	Next() (Row, error)
	// Progress is how far the reader is: bytes consumed of the total
	// (total -1 when unknown), for rates and ETAs.
	Progress() (done, total int64)
	io.Closer
}

// RowError is a row that could not be decoded; the job reports it as a
// reject with code MALFORMED_ROW.
type RowError struct {
	Line int
	Err  error
}

func (e *RowError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }
func (e *RowError) Unwrap() error { return e.Err }

// Reject reason codes: every rejected row carries one.
const (
	RejectMalformedRow  = "MALFORMED_ROW"   // the row could not be decoded
	RejectMissingField  = "MISSING_FIELD"   // a required column is empty or absent
	RejectBadDate       = "BAD_DATE"        // a date in none of the mapping's formats, or not a real date
	RejectDateOrder     = "DATE_ORDER"      // issue/valid-from/valid-until out of order
	RejectBadHolderCode = "BAD_HOLDER_CODE" // holder code fails its check digit or format
	RejectBadValue      = "BAD_VALUE"       // a value outside the mapping's value map, or a bad number
	RejectInvalid       = "INVALID"         // the library's validation (catalog schema etc.) refused it
)

// Reject is one row that was not converted.
type Reject struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"` // the license field (e.g. holder.code), or the column when clearer
	Code    string `json:"code"`            // a Reject* constant
	Message string `json:"message"`
	Number  string `json:"number,omitempty"` // the legacy license number, when the row had one
}
