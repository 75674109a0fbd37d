package convert

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signable"
)

// EarliestYear is the first year a legacy date may have: the registers
// converted are of the People's Republic.
const EarliestYear = 1949

// maxSafeInteger is the largest integer a license body may carry
// (signing/VERIFY.md): 2^53−1.
const maxSafeInteger = 1<<53 - 1

// longTermWords are the valid_until values (and, for face dates that
// allow it, field values) that mean "no end date".
var longTermWords = map[string]bool{
	"长期": true, "长期有效": true, "永久": true, "永久有效": true, "无期限": true, "不限期": true,
	license.LongTerm: true, "long_term": true,
}

// boolWords are the values a boolean face field accepts (after value maps).
var boolWords = map[string]bool{
	"true": true, "TRUE": true, "True": true, "是": true,
	"false": false, "FALSE": false, "False": false, "否": false,
}

// plan is a validated mapping compiled for Request: the source of every
// field resolved once, so that a row costs map lookups and parsing only.
// Immutable once built.
type plan struct {
	number, name, holderName, holderCode, holderCodeType src
	issue, from, until, area                             src
	fields                                               []fieldSrc // sorted by name
	layouts                                              []layout
	years                                                int    // default validity in years; 0: none
	longTerm                                             bool   // default validity long-term
	holderType                                           string // the one holder code type the catalog type allows; "" otherwise
}

// src is where one field's value comes from.
type src struct {
	key     string // the column key: number, holder.code, fields.x, ...
	column  string // the source column; "" when fixed or not mapped
	fixed   string
	isFixed bool
	vmap    map[string]string // nil: no value map
	strict  bool
}

// fieldSrc is a face field with its catalog type (string when unbound).
type fieldSrc struct {
	src
	name     string
	kind     catalog.FieldType
	longTerm bool // a date field that allows license.LongTerm
	code     bool // a string holding a credit code or resident ID: folded like holder.code
}

// layout is one date format and a cheap prefilter: for layouts of digits
// and separators only, the value's non-digit characters must be seps, in
// order, before time.Parse (which allocates on every failure) is tried.
type layout struct {
	layout string
	seps   string
	filter bool
}

// compile builds the plan of a checked mapping.
func (m *Mapping) compile() *plan {
	p := &plan{
		number: m.src(KeyNumber), name: m.src(KeyName), holderName: m.src(KeyHolderName),
		holderCode: m.src(KeyHolderCode), holderCodeType: m.src(KeyHolderCodeType),
		issue: m.src(KeyIssueDate), from: m.src(KeyValidFrom), until: m.src(KeyValidUntil),
		area: m.src(KeyAreaCode),
	}
	for _, key := range m.keys() {
		name, ok := strings.CutPrefix(key, KeyFieldsPrefix)
		if !ok {
			continue
		}
		f := fieldSrc{src: m.src(key), name: name, kind: catalog.TypeString}
		if m.fieldTy != nil {
			if cf, ok := m.fieldTy.Field(name); ok {
				f.kind, f.longTerm, f.code = cf.Type, cf.AllowLongTerm, cf.Format != ""
			}
		}
		p.fields = append(p.fields, f)
	}
	p.years, p.longTerm, _ = parseValidity(m.DefaultValidity)
	for _, l := range m.DateFormats {
		p.layouts = append(p.layouts, newLayout(l))
	}
	if m.fieldTy != nil && len(m.fieldTy.HolderCodeTypes) == 1 {
		p.holderType = m.fieldTy.HolderCodeTypes[0]
	}
	return p
}

func (m *Mapping) src(key string) src {
	s := src{key: key, column: m.column(key)}
	if v, ok := m.Fixed[key]; ok {
		s.fixed, s.isFixed, s.column = cleanValue(v), true, ""
	}
	if vm, ok := m.ValueMaps[key]; ok {
		s.vmap, s.strict = vm.Values, vm.Strict
	}
	return s
}

func newLayout(l string) layout {
	out := layout{layout: l, filter: true}
	var seps []rune
	for _, r := range l {
		switch {
		case r >= '0' && r <= '9':
		case strings.ContainsRune("-/.年月日", r):
			seps = append(seps, r)
		default:
			out.filter = false // month names, zones, padding: let time.Parse decide
		}
	}
	out.seps = string(seps)
	return out
}

// fits is the prefilter: the non-digit characters of s are l.seps.
func (l *layout) fits(s string) bool {
	if !l.filter {
		return true
	}
	seps := l.seps
	for _, r := range s {
		if r >= '0' && r <= '9' {
			continue
		}
		c, n := utf8.DecodeRuneInString(seps)
		if n == 0 || c != r {
			return false
		}
		seps = seps[n:]
	}
	return seps == ""
}

// raw returns the field's value: the fixed value or the row's (trimmed),
// before the value map.
func (s *src) raw(row *Row) string {
	if s.isFixed {
		return s.fixed
	}
	if s.column == "" {
		return ""
	}
	return cleanValue(row.Values[s.column])
}

// value returns raw through the value map; a strict map refuses a value
// it does not list (ok false). An empty value is absent: no map applies.
func (s *src) value(raw string) (v string, ok bool) {
	if s.vmap == nil || raw == "" {
		return raw, true
	}
	if mapped, found := s.vmap[raw]; found {
		return cleanValue(mapped), true
	}
	return raw, !s.strict
}

// rowCtx builds the rejects of one row.
type rowCtx struct {
	line   int
	number string
}

func (c *rowCtx) reject(code, field, format string, args ...any) *Reject {
	return &Reject{Line: c.line, Field: field, Code: code, Message: fmt.Sprintf(format, args...), Number: c.number}
}

// get is the value of s in row, or a BAD_VALUE reject from a strict map.
func (c *rowCtx) get(s *src, row *Row) (string, *Reject) {
	return c.mapped(s, s.raw(row))
}

// mapped is raw through the value map of s.
func (c *rowCtx) mapped(s *src, raw string) (string, *Reject) {
	v, ok := s.value(raw)
	if !ok {
		if s.key == KeyHolderCode { // never echo a personal code
			return "", c.reject(RejectBadValue, s.key, "the value is not one the mapping's value map for %s lists (strict)", s.key)
		}
		return "", c.reject(RejectBadValue, s.key, "%q is not a value the mapping's value map for %s lists (strict)", clip(raw), s.key)
	}
	return v, nil
}

// Request turns one row into a push request for the library, or rejects
// it naming the line, the field and the reason code. In order:
//
//   - values are trimmed (spaces, tabs, U+3000 and other Unicode spaces)
//     and put in Unicode NFC;
//     an empty value is absent. Fixed values replace the row's, then
//     value maps rewrite (a strict map refuses unlisted values: BAD_VALUE);
//   - number, holder.name, holder.code and issue_date are required
//     (MISSING_FIELD);
//   - number: kept as it is when the library takes it (1..64 of
//     [0-9A-Za-z-]); otherwise full-width letters and digits are made
//     ASCII, spaces dropped and a typed "No." / "第" / "号" removed; a
//     number still refused is BAD_VALUE;
//   - holder.code: upper case, full-width folded; its type from
//     holder.code_type, else the catalog type's only one (BindCatalog),
//     else told by its shape (17 digits and a digit or X: resident ID
//     "111", other 18-character codes: credit code "001"); a code failing
//     its check character is BAD_HOLDER_CODE;
//   - dates: the mapping's layouts in order (a trailing time of day such
//     as " 00:00:00" is ignored), written YYYY-MM-DD; none fits, or no such
//     day, or a year of issue_date/valid_from outside 1949..this year:
//     BAD_DATE. valid_from defaults to issue_date; valid_until "长期",
//     "长期有效", "永久"... is license.LongTerm, empty takes the default
//     validity (empty for the catalog's rule). An issue date after today,
//     a valid_from before issue_date (the library refuses it) or a
//     valid_until before valid_from: DATE_ORDER;
//   - area_code from its column or the mapping: 6 digits, else BAD_VALUE;
//   - face fields as strings, or, after BindCatalog, as their catalog
//     type (BAD_VALUE / BAD_DATE when they do not convert).
//
// The request carries the stock provenance (source m.Name, batch, the
// row's line, the issue date as the source wrote it). Once validated
// (LoadMapping, Validate, BindCatalog) a Mapping is safe for concurrent
// Requests; one that was not is checked on every call (slow).
func (m *Mapping) Request(row Row, batch string) (license.PushRequest, *Reject) {
	c := rowCtx{line: row.Line}
	p := m.plan
	if p == nil {
		cp := *m
		ch := &checker{m: &cp}
		cp.check(ch)
		if err := ch.ps.Err("mapping " + m.where()); err != nil {
			return license.PushRequest{}, c.reject(RejectInvalid, "", "%s", licensehub.Message(err))
		}
		p = cp.plan
	}
	req := license.PushRequest{TypeCode: m.LicenseType, Issuer: m.Authority}

	// number
	number, rj := c.get(&p.number, &row)
	if rj != nil {
		return req, rj
	}
	if number == "" {
		return req, c.reject(RejectMissingField, KeyNumber, "the license number is missing (column %s)", p.number.column)
	}
	c.number = number
	n, ok := normalizeNumber(number)
	if !ok {
		return req, c.reject(RejectBadValue, KeyNumber, "license number %q has characters other than 0-9, A-Z, a-z and '-' (or is longer than %d)", clip(number), ident.MaxSerialLen)
	}
	req.Number = n

	if req.Name, rj = c.get(&p.name, &row); rj != nil {
		return req, rj
	}

	// holder
	if req.Holder.Name, rj = c.get(&p.holderName, &row); rj != nil {
		return req, rj
	}
	if req.Holder.Name == "" {
		return req, c.reject(RejectMissingField, KeyHolderName, "the holder's name is missing (column %s)", p.holderName.column)
	}
	code, rj := c.get(&p.holderCode, &row)
	if rj != nil {
		return req, rj
	}
	if code == "" {
		return req, c.reject(RejectMissingField, KeyHolderCode, "the holder's code is missing (column %s)", p.holderCode.column)
	}
	code = foldCode(code)
	codeType, rj := c.get(&p.holderCodeType, &row)
	if rj != nil {
		return req, rj
	}
	if codeType == "" {
		codeType = p.holderType
	}
	if codeType == "" {
		codeType = inferCodeType(code)
	}
	if codeType == "" {
		return req, c.reject(RejectBadHolderCode, KeyHolderCode, "the holder's code has %d characters: neither a resident ID number nor a unified social credit code (18); map holder.code_type if the register has another kind", utf8.RuneCountInString(code))
	}
	if err := ident.ValidateHolderCode(codeType, code); err != nil {
		field := KeyHolderCode
		if ident.Rule(err) == ident.RuleHolderCodeType {
			field = KeyHolderCodeType
		}
		return req, c.reject(RejectBadHolderCode, field, "%s", licensehub.Message(err))
	}
	req.Holder.Code, req.Holder.CodeType = code, codeType

	// dates
	today := m.today()
	rawIssue := p.issue.raw(&row)
	issueText, rj := c.mapped(&p.issue, rawIssue)
	if rj != nil {
		return req, rj
	}
	if issueText == "" {
		return req, c.reject(RejectMissingField, KeyIssueDate, "the issue date is missing (column %s)", p.issue.column)
	}
	issue, rj := c.pastDate(p, KeyIssueDate, issueText, today)
	if rj != nil {
		return req, rj
	}
	if issue.After(today) {
		return req, c.reject(RejectDateOrder, KeyIssueDate, "issue date %s is after today", issue.Format(license.DateLayout))
	}
	req.IssueDate = formatDate(issue, issueText)

	fromText, rj := c.get(&p.from, &row)
	if rj != nil {
		return req, rj
	}
	from := issue
	req.ValidFrom = req.IssueDate
	if fromText != "" {
		if from, rj = c.pastDate(p, KeyValidFrom, fromText, today); rj != nil {
			return req, rj
		}
		if from.Before(issue) {
			return req, c.reject(RejectDateOrder, KeyValidFrom, "valid from %s, before the issue date %s", from.Format(license.DateLayout), req.IssueDate)
		}
		req.ValidFrom = formatDate(from, fromText)
	}

	untilText, rj := c.get(&p.until, &row)
	if rj != nil {
		return req, rj
	}
	switch {
	case longTermWords[untilText]:
		req.ValidUntil = license.LongTerm
	case untilText != "":
		until, ok := p.parseDate(untilText)
		if !ok || until.Year() < EarliestYear {
			return req, c.badDate(p, KeyValidUntil, untilText)
		}
		if until.Before(from) {
			return req, c.reject(RejectDateOrder, KeyValidUntil, "valid until %s, before valid from %s", until.Format(license.DateLayout), req.ValidFrom)
		}
		req.ValidUntil = formatDate(until, untilText)
	case p.longTerm:
		req.ValidUntil = license.LongTerm
	case p.years > 0:
		y, mo, d := from.Date()
		req.ValidUntil = time.Date(y+p.years, mo, d-1, 0, 0, 0, 0, license.CST).Format(license.DateLayout)
	}

	// area
	if req.AreaCode, rj = c.get(&p.area, &row); rj != nil {
		return req, rj
	}
	if req.AreaCode == "" {
		req.AreaCode = m.AreaCode
	}
	if !isAreaCode(req.AreaCode) {
		return req, c.reject(RejectBadValue, KeyAreaCode, "area code %q is not 6 digits (GB/T 2260)", clip(req.AreaCode))
	}

	// face fields
	for i := range p.fields {
		f := &p.fields[i]
		v, rj := c.get(&f.src, &row)
		if rj != nil {
			return req, rj
		}
		if v == "" {
			continue
		}
		val, rj := c.fieldValue(p, f, v)
		if rj != nil {
			return req, rj
		}
		if req.Fields == nil {
			req.Fields = make(map[string]any, len(p.fields))
		}
		req.Fields[f.name] = val
	}

	req.Provenance = &license.Provenance{Kind: license.ProvenanceStock, Source: m.Name, Batch: batch,
		SourceLine: row.Line, OriginalIssueDate: rawIssue}
	return req, nil
}

// fieldValue converts a face field's value to its catalog type.
func (c *rowCtx) fieldValue(p *plan, f *fieldSrc, v string) (any, *Reject) {
	field := f.key
	switch f.kind {
	case catalog.TypeInteger:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
			return nil, c.reject(RejectBadValue, field, "%q is not an integer (license bodies carry integers within ±(2^53−1), no fractions)", clip(v))
		}
		return n, nil
	case catalog.TypeBoolean:
		b, ok := boolWords[v]
		if !ok {
			return nil, c.reject(RejectBadValue, field, "%q is not true/false (是/否); add a value map", clip(v))
		}
		return b, nil
	case catalog.TypeDate:
		if f.longTerm && longTermWords[v] {
			return license.LongTerm, nil
		}
		t, ok := p.parseDate(v)
		if !ok {
			return nil, c.badDate(p, field, v)
		}
		return formatDate(t, v), nil
	}
	if f.code {
		return foldCode(v), nil
	}
	return v, nil
}

// pastDate parses an issue or valid-from date: a real date of a year in
// 1949..this year.
func (c *rowCtx) pastDate(p *plan, field, s string, today time.Time) (time.Time, *Reject) {
	t, ok := p.parseDate(s)
	if !ok {
		return t, c.badDate(p, field, s)
	}
	if y := t.Year(); y < EarliestYear || y > today.Year() {
		return t, c.reject(RejectBadDate, field, "%q is in %d, outside %d..%d", clip(s), y, EarliestYear, today.Year())
	}
	return t, nil
}

func (c *rowCtx) badDate(p *plan, field, s string) *Reject {
	formats := make([]string, len(p.layouts))
	for i, l := range p.layouts {
		formats[i] = l.layout
	}
	return c.reject(RejectBadDate, field, "%q is not a real date in the mapping's formats (%s)", clip(s), strings.Join(formats, ", "))
}

// today is the current date in China as midnight CST.
func (m *Mapping) today() time.Time {
	now := time.Now
	if m.Clock != nil {
		now = m.Clock
	}
	y, mo, d := now().In(license.CST).Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, license.CST)
}

// parseDate reads s with the plan's layouts in order, then, when none
// fits, without a trailing time of day ("2015-03-04 00:00:00", as
// databases and spreadsheets export dates). ok is false when no layout
// gives a real date.
func (p *plan) parseDate(s string) (time.Time, bool) {
	if t, ok := p.parseLayouts(s); ok {
		return t, true
	}
	if d, ok := cutTimeOfDay(s); ok {
		return p.parseLayouts(d)
	}
	return time.Time{}, false
}

func (p *plan) parseLayouts(s string) (time.Time, bool) {
	for i := range p.layouts {
		l := &p.layouts[i]
		if !l.fits(s) {
			continue
		}
		if t, err := time.ParseInLocation(l.layout, s, license.CST); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// cutTimeOfDay removes a trailing " HH:MM", " HH:MM:SS" or
// " HH:MM:SS.fff" (also after a T) from s.
func cutTimeOfDay(s string) (string, bool) {
	i := strings.LastIndexAny(s, " T")
	if i <= 0 {
		return "", false
	}
	t := s[i+1:]
	colons := 0
	for j := 0; j < len(t); j++ {
		switch c := t[j]; {
		case c >= '0' && c <= '9':
		case c == ':':
			colons++
		case c == '.' && colons == 2:
		default:
			return "", false
		}
	}
	if colons < 1 || colons > 2 || len(t) < 4 {
		return "", false
	}
	return strings.TrimRight(s[:i], " "), true
}

// formatDate writes t as license.DateLayout, reusing src when it already
// is.
func formatDate(t time.Time, src string) string {
	if len(src) == len(license.DateLayout) {
		if y, m, d := t.Date(); src[4] == '-' && src[7] == '-' &&
			atoiFixed(src[:4]) == y && atoiFixed(src[5:7]) == int(m) && atoiFixed(src[8:]) == d {
			return src
		}
	}
	return t.Format(license.DateLayout)
}

// atoiFixed reads ASCII digits; -1 when s has anything else.
func atoiFixed(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// isBlank reports the characters trimmed from values: Unicode spaces
// (U+3000 the ideographic space included), zero-width spaces and BOMs.
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff'
}

// cleanValue trims blanks from both ends of s and puts it in Unicode NFC
// (legacy registers are converted by the hub itself, so canonically
// equivalent text is written in the one form the library signs; what
// the library refuses otherwise, such as a zero-width or control
// character inside a value, is left for it to report). It allocates
// only when something changes.
func cleanValue(s string) string {
	if s == "" {
		return s
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if isBlank(first) || isBlank(last) {
		s = strings.TrimFunc(s, isBlank)
	}
	return signable.Normalize(s)
}

// isLibraryNumber reports whether the library takes s as a license
// number: 1..64 of [0-9A-Za-z-] with at least one letter or digit.
func isLibraryNumber(s string) bool {
	if len(s) == 0 || len(s) > ident.MaxSerialLen {
		return false
	}
	alnum := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			alnum = true
		case c == '-':
		default:
			return false
		}
	}
	return alnum
}

// numberPrefixes and numberSuffixes are what people typed around license
// numbers; they are removed only when the rest is a valid number.
var (
	numberPrefixes = []string{"No.", "NO.", "no.", "No:", "NO:", "no:", "№", "第"}
	numberSuffixes = []string{"号", "號"}
)

// normalizeNumber returns s when the library takes it, else s with
// full-width ASCII folded, spaces removed and one typed prefix and suffix
// cut, when that is a valid number; ok is false otherwise. It never
// changes a letter or digit, so two legacy numbers that differ stay
// different.
func normalizeNumber(s string) (string, bool) {
	if isLibraryNumber(s) {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
			r -= 0xFEE0
		case isBlank(r):
			continue
		}
		b.WriteRune(r)
	}
	t := b.String()
	for _, p := range numberPrefixes {
		if rest, ok := strings.CutPrefix(t, p); ok {
			t = rest
			break
		}
	}
	for _, sfx := range numberSuffixes {
		if rest, ok := strings.CutSuffix(t, sfx); ok {
			t = rest
			break
		}
	}
	if !isLibraryNumber(t) {
		return "", false
	}
	return t, true
}

// foldCode upper-cases a holder code and folds full-width letters and
// digits to ASCII; it allocates only when something changes.
func foldCode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c >= 'a' && c <= 'z' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}, s)
}

// inferCodeType tells a holder code's type by its shape: 17 digits and a
// digit or X is a resident ID number ("111"), unless only the credit code
// check passes; any other 18 characters are taken for a unified social
// credit code ("001"), so that ident names what is wrong with it. "" for
// another length.
func inferCodeType(code string) string {
	if len(code) != ident.CreditCodeLen {
		return ""
	}
	digits := strings.Trim(code[:17], "0123456789") == ""
	if last := code[17]; digits && (last >= '0' && last <= '9' || last == 'X') {
		if ident.ValidateResidentID(code) != nil && ident.ValidateCreditCode(code) == nil {
			return ident.HolderCreditCode
		}
		return ident.HolderResidentID
	}
	return ident.HolderCreditCode
}
