// Package license holds the electronic license itself: the body the hub
// signs (the metadata of GB/T 36903/36902 as used in practice plus the
// type-specific face fields), its status codes, and verification of a
// signed license document.
package license

import (
	"fmt"
	"time"
)

// LongTerm is the ValidUntil value of a license without an end date (长期).
const LongTerm = "long-term"

// DateLayout is how dates are written in license bodies.
const DateLayout = "2006-01-02"

// CST is China Standard Time. Dates on licenses are local dates; a license
// valid until 2031-12-31 is valid through the end of that day in Beijing.
var CST = time.FixedZone("CST", 8*3600)

// License is the signed body of an electronic license. Field names are the
// JSON keys; every key is ASCII and every number an integer, so the signed
// bytes can be reproduced with jq (see signing/VERIFY.md).
type License struct {
	Identifier string `json:"identifier"` // GB/T 36904 identifier (证照标识)
	Name       string `json:"name"`       // 证照名称
	TypeCode   string `json:"type_code"`  // 证照类型代码, 21 chars
	TypeName   string `json:"type_name"`
	Number     string `json:"number"` // 证照编号, as printed on the license
	Version    string `json:"version"`
	Issuer     Party  `json:"issuer"`      // 颁发机构 and its unified social credit code
	IssueDate  string `json:"issue_date"`  // 颁发日期
	ValidFrom  string `json:"valid_from"`  // 有效期起始
	ValidUntil string `json:"valid_until"` // 有效期截止, or LongTerm
	Holder     Holder `json:"holder"`      // 持证主体
	AreaCode   string `json:"area_code"`   // 管辖属地编码 (GB/T 2260)
	Matter     *Party `json:"matter,omitempty"`
	// Previous is the identifier of the license this one renews, changes or
	// transfers (required for those operations).
	Previous string `json:"previous,omitempty"`
	// Fields are the type-specific face fields (照面信息) defined by the
	// catalog entry of TypeCode.
	Fields     map[string]any `json:"fields,omitempty"`
	Attachment *Attachment    `json:"attachment,omitempty"`
	// Provenance says where a license that no department pushed came
	// from (a converted paper license, a license issued elsewhere in the
	// province); absent for a department's push.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Provenance kinds.
const (
	ProvenanceStock    = "stock_conversion" // 存量证照: converted from a legacy register
	ProvenanceProvince = "province"         // issued elsewhere, received from the provincial platform
)

// Provenance is inside the signed body, so it is as trustworthy as the
// rest of the license.
type Provenance struct {
	Kind string `json:"kind"` // ProvenanceStock or ProvenanceProvince
	// Source names the legacy source (the conversion mapping) or the
	// sending platform.
	Source string `json:"source,omitempty"`
	// Batch is the conversion job; SourceLine the row's line in the
	// legacy export (1-based, the header being line 1 of a CSV).
	Batch      string `json:"batch,omitempty"`
	SourceLine int    `json:"source_line,omitempty"`
	// OriginalIssueDate is the issue date as the legacy register gives it.
	OriginalIssueDate string `json:"original_issue_date,omitempty"`
	// EventID is the exchange event that brought a provincial license.
	EventID string `json:"event_id,omitempty"`
}

// Party is a named organisation or service matter with its code.
type Party struct {
	Name string `json:"name" maxlen:"200"`
	Code string `json:"code" maxlen:"64"`
}

// Holder is the subject a license is issued to.
type Holder struct {
	Name     string `json:"name" maxlen:"200"`
	Code     string `json:"code" maxlen:"64"`     // resident ID number or unified social credit code
	CodeType string `json:"code_type" maxlen:"8"` // 111 resident ID, 001 unified social credit code
}

// Attachment points at the scan or PDF of the paper original, stored
// content-addressed; its digest is inside the signed body.
type Attachment struct {
	SM3       string `json:"sm3"` // hex SM3 digest of the bytes
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// ValidityAt reports whether the license's validity period covers t.
// It returns "" when it does, otherwise a stable reason: not_yet_valid,
// expired or bad_dates.
func (l *License) ValidityAt(t time.Time) (reason string, detail string) {
	from, err := time.ParseInLocation(DateLayout, l.ValidFrom, CST)
	if err != nil {
		return "bad_dates", fmt.Sprintf("valid_from %q is not a date (YYYY-MM-DD)", l.ValidFrom)
	}
	if t.Before(from) {
		return "not_yet_valid", "valid from " + l.ValidFrom
	}
	if l.ValidUntil == LongTerm {
		return "", "valid from " + l.ValidFrom + ", long-term"
	}
	until, err := time.ParseInLocation(DateLayout, l.ValidUntil, CST)
	if err != nil {
		return "bad_dates", fmt.Sprintf("valid_until %q is neither a date (YYYY-MM-DD) nor %q", l.ValidUntil, LongTerm)
	}
	if until.Before(from) {
		return "bad_dates", "valid_until is before valid_from"
	}
	if !t.Before(until.AddDate(0, 0, 1)) {
		return "expired", "expired after " + l.ValidUntil
	}
	return "", "valid " + l.ValidFrom + " to " + l.ValidUntil
}

// Status is a license's current state, with the codes of the national
// exchange specification.
type Status string

const (
	StatusValid       Status = "01" // 有效
	StatusSuspended   Status = "02" // 暂扣
	StatusWithdrawn   Status = "03" // 撤销
	StatusCancelled   Status = "04" // 注销
	StatusExpired     Status = "05" // 失效
	StatusTransferred Status = "06" // 转出
	StatusRevoked     Status = "07" // 吊销
	StatusOther       Status = "99" // 其他
	// StatusUnknown is what a verifier says when it cannot know: never
	// "revoked" for a license it cannot find or a library it cannot reach.
	StatusUnknown Status = "unknown"
)

var statusNames = map[Status]string{
	StatusValid: "valid", StatusSuspended: "suspended", StatusWithdrawn: "withdrawn",
	StatusCancelled: "cancelled", StatusExpired: "expired", StatusTransferred: "transferred",
	StatusRevoked: "revoked", StatusOther: "other", StatusUnknown: "unknown",
}

// Name is the status's English name (valid, suspended, ..., unknown).
func (s Status) Name() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "unknown"
}
