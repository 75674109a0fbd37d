package convert

import (
	"github.com/licensehub/licensehub/license"
)

// Mapping describes one legacy source (configs/conversion/<name>.yaml).
// Helper A implements LoadMapping, LoadMappings, Mapping.Validate and
// Mapping.Request (row.go) and OpenReader (read.go); see their comments
// for the contract.
type Mapping struct {
	Name        string        `yaml:"name"`         // the legacy source, e.g. "scjg-2015-register"; the file's base name when empty
	Description string        `yaml:"description"`  // free text
	LicenseType string        `yaml:"license_type"` // catalog type code
	Authority   license.Party `yaml:"authority"`    // the issuing authority {name, code}
	AreaCode    string        `yaml:"area_code"`    // default area code when no column gives one
	// Format is csv, xlsx or jsonl; empty: from the file name's extension.
	Format string `yaml:"format"`
	// Encoding of CSV files: auto (default: UTF-8 if the bytes are valid
	// UTF-8, a UTF-8 BOM is skipped; otherwise GB18030), utf-8, gb18030.
	Encoding string `yaml:"encoding"`
	Sheet    string `yaml:"sheet"` // XLSX sheet; empty: the first
	// Columns maps license fields to source columns. Keys: number,
	// holder.name, holder.code, holder.code_type, issue_date, valid_from,
	// valid_until, area_code, name, and fields.<catalog field>.
	Columns map[string]string `yaml:"columns"`
	// Fixed gives a value to a field whatever the row says (e.g.
	// holder.code_type: "001").
	Fixed map[string]string `yaml:"fixed"`
	// DateFormats are Go layouts tried in order, e.g. "2006年01月02日",
	// "20060102", "2006/1/2", "2006-01-02".
	DateFormats []string `yaml:"date_formats"`
	// ValueMaps rewrite a field's source value ("有限" → "有限责任公司");
	// a field with a map and strict: true rejects values outside it.
	ValueMaps map[string]ValueMap `yaml:"value_maps"`
	// DefaultValidity applies when valid_until is empty: "long_term"
	// (license.LongTerm), a duration in years like "5y" counted from
	// valid_from, or "catalog" (the catalog's rule; the default).
	DefaultValidity string `yaml:"default_validity"`
	// NumberColumn is the column with the legacy license number (the
	// natural key with type and authority); the same as Columns["number"]
	// when that is set.
	NumberColumn string `yaml:"number_column"`
}

// ValueMap rewrites source values of one field.
type ValueMap struct {
	Values map[string]string `yaml:"values"`
	Strict bool              `yaml:"strict"` // a value not in Values is rejected (BAD_VALUE)
}
