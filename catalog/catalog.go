package catalog

import (
	"regexp"
	"slices"
	"time"

	"github.com/licensehub/licensehub/license"
)

// DefaultDir is where the hub reads its catalog from unless told otherwise.
const DefaultDir = "configs/catalog"

// Catalog is the license catalog: every license type the hub accepts,
// loaded and checked by Load. It is immutable and safe for concurrent use;
// callers must not modify the *Type values it hands out.
type Catalog struct {
	byCode map[string]*Type
	sorted []*Type // by Code
}

// Type is one license type (证照类型) with its face-field schema. The JSON
// form is what GET /v1/catalog/types returns.
type Type struct {
	// Code is the 21-character type code (证照类型代码): the defining
	// authority's unified social credit code and a 3-digit sequence.
	Code string `json:"code"`
	// Name is the license's name as printed (e.g. 营业执照).
	Name string `json:"name"`
	// DefiningAuthority is the authority that defines the license type
	// (证照定义机构); its Code is Code[:18].
	DefiningAuthority Authority `json:"defining_authority"`
	// HolderCodeTypes are the holder code types the license may be issued
	// to: ident.HolderCreditCode ("001"), ident.HolderResidentID ("111").
	HolderCodeTypes []string `json:"holder_code_types"`
	// IssuingLevel is the lowest administrative level whose authorities
	// issue the license (颁发机构层级).
	IssuingLevel Level `json:"issuing_level"`
	// Validity is the default validity period of a newly issued license.
	Validity Validity `json:"validity"`
	// Matters are the related service matters (关联事项).
	Matters []Matter `json:"matters"`
	// Fields are the face fields (照面信息) in the order they are printed.
	Fields []*Field `json:"fields"`
	// EarliestYear is the earliest year of an issue date (and valid_from)
	// of this type (license.DefaultEarliestYear, 1949, unless the file
	// says otherwise).
	EarliestYear int `json:"earliest_year"`
	// ValidFromBeforeIssue allows a valid_from before the issue date
	// (licenses issued with retroactive effect).
	ValidFromBeforeIssue bool `json:"valid_from_before_issue,omitempty"`
	// RecordExpired lets the stock conversion record licenses of this
	// type whose validity already ended (historic licenses): they are
	// stored with status 05 (expired) at once. A department's push of
	// an expired license is always refused.
	RecordExpired bool `json:"record_expired,omitempty"`

	// File is the catalog file the type was loaded from.
	File string `json:"-"`

	byName   map[string]*Field
	codeLine int // line of code: in File, for duplicate-code messages
}

// Authority is a defining authority: name and unified social credit code,
// and the administrative level it sits at.
type Authority struct {
	Name  string `json:"name"`
	Code  string `json:"code"`
	Level Level  `json:"level,omitempty"`
}

// Matter is a government service matter (政务服务事项) a license type is
// used for or issued by.
type Matter struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// Validity is the default validity rule of a license type: Years years
// from the issue date, or long-term (长期). Exactly one is set.
type Validity struct {
	Years    int  `json:"years,omitempty"`
	LongTerm bool `json:"long_term,omitempty"`
}

// Level is an administrative level.
type Level string

// The administrative levels, from the top.
const (
	LevelNational   Level = "national"   // 国家级
	LevelProvincial Level = "provincial" // 省级
	LevelCity       Level = "city"       // 市级
	LevelCounty     Level = "county"     // 县级
	LevelTownship   Level = "township"   // 乡镇级
)

// Levels lists the administrative levels from the top.
var Levels = []Level{LevelNational, LevelProvincial, LevelCity, LevelCounty, LevelTownship}

// FieldType is the type of a face field's value in a license body.
type FieldType string

// Face field types. Every value is a JSON value of the license body's
// fields object.
const (
	TypeString  FieldType = "string"  // a JSON string
	TypeDate    FieldType = "date"    // a JSON string YYYY-MM-DD naming a real calendar day
	TypeInteger FieldType = "integer" // a JSON number without fraction, within ±(2^53−1)
	TypeEnum    FieldType = "enum"    // a JSON string, one of Field.Enum
	TypeBoolean FieldType = "boolean" // true or false
)

// FieldTypes lists the face field types.
var FieldTypes = []FieldType{TypeString, TypeDate, TypeInteger, TypeEnum, TypeBoolean}

// Format is a well-known code a string field holds, checked with its
// check character by package ident.
type Format string

// String field formats.
const (
	FormatCreditCode Format = "credit_code" // unified social credit code, GB 32100
	FormatResidentID Format = "resident_id" // resident ID number, GB 11643
)

// Formats lists the string field formats.
var Formats = []Format{FormatCreditCode, FormatResidentID}

// Bindings: the license values a face field may be bound to.
const (
	BindHolderCode = "holder.code"
	BindHolderName = "holder.name"
)

// Bindings lists the values of Field.Bind.
var Bindings = []string{BindHolderCode, BindHolderName}

// Policy is what the type declares about its licenses' dates and history
// (license.PolicySource).
func (t *Type) Policy() license.Policy {
	return license.Policy{EarliestYear: t.EarliestYear, ValidFromBeforeIssue: t.ValidFromBeforeIssue,
		RecordExpired: t.RecordExpired}
}

// Field is one face field (照面项) of a license type.
type Field struct {
	// Name is the key in the license body's fields object: ASCII
	// snake_case, because license bodies carry only ASCII keys.
	Name string `json:"name"`
	// Label is the field's label as printed on the license (Chinese).
	Label string `json:"label"`
	// Type is the JSON type of the value.
	Type FieldType `json:"type"`
	// Required fields must be present and, for strings, not blank.
	Required bool `json:"required"`
	// Pattern (strings only) is a Go regular expression the whole value
	// must match: it is anchored as ^(?:Pattern)$.
	Pattern string `json:"pattern,omitempty"`
	// Enum are the permitted values of an enum field.
	Enum []string `json:"enum,omitempty"`
	// MinLength and MaxLength (strings only) bound the value's length in
	// characters (runes, not bytes); 0 means no bound.
	MinLength int `json:"min_length,omitempty"`
	MaxLength int `json:"max_length,omitempty"`
	// Format (strings only) is a code the value holds, checked with its
	// check character.
	Format Format `json:"format,omitempty"`
	// AllowLongTerm (dates only) also accepts license.LongTerm, for
	// periods printed as ending 长期.
	AllowLongTerm bool `json:"allow_long_term,omitempty"`
	// Bind (strings only) is the license value the field must equal:
	// BindHolderCode or BindHolderName (e.g. a business license's credit
	// code and name are its holder's).
	Bind string `json:"bind,omitempty"`

	re *regexp.Regexp // ^(?:Pattern)$; nil without a pattern
}

// Type returns the license type with the given code.
func (c *Catalog) Type(code string) (*Type, bool) {
	t, ok := c.byCode[code]
	return t, ok
}

// Types returns every license type, sorted by code. The slice is the
// caller's; the types are shared and must not be modified.
func (c *Catalog) Types() []*Type {
	return slices.Clone(c.sorted)
}

// Len is the number of license types.
func (c *Catalog) Len() int { return len(c.sorted) }

// Field returns the face field with the given name.
func (t *Type) Field(name string) (*Field, bool) {
	f, ok := t.byName[name]
	return f, ok
}

// AllowsHolder reports whether the license may be issued to a holder of
// the given code type.
func (t *Type) AllowsHolder(codeType string) bool {
	return slices.Contains(t.HolderCodeTypes, codeType)
}

// ValidUntil returns the default end of validity of a license of this type
// issued at issue: license.LongTerm for long-term types, otherwise the day
// before the same calendar day Years years later, in China Standard Time
// and written YYYY-MM-DD (issued 2024-05-20 and valid 5 years: valid until
// 2029-05-19; issued 2024-02-29: until 2029-02-28).
func (t *Type) ValidUntil(issue time.Time) string {
	if t.Validity.LongTerm {
		return license.LongTerm
	}
	y, m, d := issue.In(license.CST).Date()
	return time.Date(y+t.Validity.Years, m, d-1, 0, 0, 0, 0, license.CST).Format(license.DateLayout)
}
