package jcs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Options restrict the accepted input beyond I-JSON; a violation is an
// error wrapping ErrRestricted whose Path names the offending value. The
// zero Options is plain RFC 8785.
type Options struct {
	// SafeIntegers requires every number to be an integer written the way
	// the canonical form writes it (no fraction, no exponent, not -0) with
	// a magnitude of at most 2^53−1.
	SafeIntegers bool
	// ASCIIKeys requires object member names to be ASCII.
	ASCIIKeys bool
	// NoControls forbids U+0000–U+001F and U+007F in strings and member
	// names, written literally or as escapes.
	NoControls bool
}

// Canonicalize returns the RFC 8785 canonical form of the JSON text in.
func Canonicalize(in []byte) ([]byte, error) {
	return Options{}.Append(make([]byte, 0, len(in)), in)
}

// Append appends the canonical form of the JSON text in to dst. On error
// it returns dst unchanged (its spare capacity may have been written).
func Append(dst, in []byte) ([]byte, error) {
	return Options{}.Append(dst, in)
}

// Canonicalize is the package's Canonicalize with the restrictions of o.
func (o Options) Canonicalize(in []byte) ([]byte, error) {
	return o.Append(make([]byte, 0, len(in)), in)
}

// Append is the package's Append with the restrictions of o.
func (o Options) Append(dst, in []byte) ([]byte, error) {
	s := scanners.Get().(*scanner)
	s.in, s.pos, s.out, s.opts, s.depth = in, 0, dst, o, 0
	err := s.run()
	out := s.out
	s.release()
	if err != nil {
		return dst, err
	}
	return out, nil
}

// scanners recycles scanner state (the member stack and scratch buffers),
// so a call allocates nothing beyond the output's growth.
var scanners = sync.Pool{New: func() any { return &scanner{members: make([]member, 0, 32)} }}

// release forgets the caller's buffers and returns s to the pool, without
// scratch space a rare huge input made it grow.
func (s *scanner) release() {
	s.in, s.out = nil, nil
	if cap(s.members) > 1024 {
		s.members = make([]member, 0, 32)
	}
	clear(s.members[:cap(s.members)]) // member names alias the input
	s.members = s.members[:0]
	if cap(s.tmp) > 64<<10 {
		s.tmp = nil
	}
	if cap(s.unesc) > 64<<10 {
		s.unesc = nil
	}
	scanners.Put(s)
}

func (s *scanner) run() error {
	err := s.value()
	if err == nil {
		s.skipWS()
		if s.pos < len(s.in) {
			err = s.fail(ErrSyntax, s.pos, "data after the top-level value")
		}
	}
	if err == nil {
		return nil
	}
	e := err.(*Error)
	e.Path = strings.TrimPrefix(e.Path, ".")
	if e.Err != ErrSyntax && e.Err != ErrTooDeep {
		// The scanner stops at the first problem. When that is an I-JSON
		// rule or a restriction, make sure the rest is JSON at all: a
		// syntax error anywhere takes precedence, so that an error other
		// than ErrSyntax/ErrTooDeep always means "well-formed JSON, but
		// not acceptable".
		if serr := syntaxCheck(s.in); serr != nil {
			return serr
		}
	}
	return e
}

// Marshal encodes v with encoding/json and canonicalises the result.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Canonicalize(b)
}

// AppendString appends the canonical JSON string for s to dst. s must be
// valid UTF-8 (ErrInvalidUTF8 otherwise; dst is returned unchanged).
func AppendString(dst []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return dst, &Error{Err: ErrInvalidUTF8, Offset: invalidUTF8At(s)}
	}
	return appendQuoted(dst, s), nil
}

func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return len(s)
}

// AppendNumber appends f the way ECMAScript's Number.prototype.toString
// writes it, as RFC 8785 section 3.2.2.3 requires. NaN and the infinities
// have no JSON form: ErrNumberRange, dst unchanged.
func AppendNumber(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, &Error{Err: ErrNumberRange, Msg: fmt.Sprint(f)}
	}
	return appendES6(dst, f), nil
}

// appendES6 formats a finite f. strconv's shortest 'e' formatting gives the
// same digits as ECMAScript (the shortest that round-trip, closest to the
// value); what remains is ECMAScript's choice of notation from the decimal
// exponent (ECMA-262, Number::toString, steps 6–12).
func appendES6(dst []byte, f float64) []byte {
	if f == 0 { // +0 and -0 both print as 0
		return append(dst, '0')
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // -d.ddde±xx
	if b[0] == '-' {
		dst = append(dst, '-')
		b = b[1:]
	}
	e := bytes.IndexByte(b, 'e')
	var digits [20]byte // the significant digits, without the point
	k := 0
	for _, c := range b[:e] {
		if c != '.' {
			digits[k] = c
			k++
		}
	}
	exp := 0
	for _, c := range b[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if b[e+1] == '-' {
		exp = -exp
	}
	n := exp + 1 // the position of the decimal point relative to the digits
	switch {
	case k <= n && n <= 21: // integer: digits then zeros
		dst = append(dst, digits[:k]...)
		for i := k; i < n; i++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21: // point inside the digits
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:k]...)
	case -6 < n && n <= 0: // 0.000ddd
		dst = append(dst, '0', '.')
		for i := n; i < 0; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits[:k]...)
	default: // exponential: d[.ddd]e±x
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:k]...)
		}
		dst = append(dst, 'e')
		if n-1 < 0 {
			dst = append(dst, '-')
			dst = strconv.AppendInt(dst, int64(1-n), 10)
		} else {
			dst = append(dst, '+')
			dst = strconv.AppendInt(dst, int64(n-1), 10)
		}
	}
	return dst
}

// appendQuoted writes s (valid UTF-8) as a canonical JSON string.
func appendQuoted[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// compareUTF16 orders two UTF-8 member names as RFC 8785 section 3.2.3
// wants: by their UTF-16 code units. UTF-8 byte order is code point order,
// which agrees with UTF-16 order except that a supplementary character
// (a surrogate pair, D800–DBFF first) sorts before U+E000–U+FFFF in
// UTF-16. So compare bytes, and look at the first differing characters
// only when they differ.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	// The differing characters start at the same offset in both, as all
	// bytes before i are equal: back up over continuation bytes.
	for i > 0 && a[i]&0xC0 == 0x80 {
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	ua, ub := firstUnit(ra), firstUnit(rb)
	if ua != ub {
		return int(ua) - int(ub)
	}
	return int(ra) - int(rb) // both supplementary, same high surrogate
}

// firstUnit is the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xD800 + (r-0x10000)>>10
}

// syntaxCheck reports the first RFC 8259 syntax error in in, or nil.
func syntaxCheck(in []byte) error {
	if json.Valid(in) {
		return nil
	}
	var buf bytes.Buffer
	err := json.Compact(&buf, in)
	e := &Error{Err: ErrSyntax, Msg: "invalid JSON"}
	if se, ok := err.(*json.SyntaxError); ok {
		e.Offset = int(se.Offset)
		e.Msg = se.Error()
		if strings.Contains(se.Error(), "max depth") {
			e.Err = ErrTooDeep
		}
	}
	return e
}

// member is an object member already written to the output.
type member struct {
	name       []byte // unescaped name; aliases the input when it had no escapes
	start, end int    // `"name":value` is out[start:end]
	offset     int    // input offset of the name, for errors
}

// scanner reads one JSON text and writes its canonical form as it goes.
type scanner struct {
	in    []byte
	pos   int
	out   []byte
	opts  Options
	depth int

	members []member // a stack: each open object's members, outermost first
	tmp     []byte   // scratch to rearrange an object's members
	unesc   []byte   // scratch to unescape a string
}

func (s *scanner) fail(kind error, offset int, format string, args ...any) error {
	return &Error{Err: kind, Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) skipWS() {
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value() error {
	s.skipWS()
	if s.pos >= len(s.in) {
		return s.fail(ErrSyntax, s.pos, "unexpected end of input")
	}
	switch c := s.in[s.pos]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str(false)
		return err
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.fail(ErrSyntax, s.pos, "unexpected character %q", c)
	}
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.in[s.pos:], []byte(lit)) {
		return s.fail(ErrSyntax, s.pos, "invalid literal, expected %s", lit)
	}
	s.pos += len(lit)
	s.out = append(s.out, lit...)
	return nil
}

func (s *scanner) array() error {
	if s.depth++; s.depth > MaxDepth {
		return s.fail(ErrTooDeep, s.pos, "more than %d levels", MaxDepth)
	}
	s.pos++ // [
	s.out = append(s.out, '[')
	s.skipWS()
	if s.pos < len(s.in) && s.in[s.pos] == ']' {
		s.pos++
	} else {
		for i := 0; ; i++ {
			if err := s.value(); err != nil {
				return prefixPath(err, "["+strconv.Itoa(i)+"]")
			}
			s.skipWS()
			if s.pos >= len(s.in) {
				return s.fail(ErrSyntax, s.pos, "unexpected end of input in array")
			}
			if c := s.in[s.pos]; c == ',' {
				s.pos++
				s.out = append(s.out, ',')
				continue
			} else if c != ']' {
				return s.fail(ErrSyntax, s.pos, "expected , or ] after array element, found %q", c)
			}
			s.pos++
			break
		}
	}
	s.out = append(s.out, ']')
	s.depth--
	return nil
}

func (s *scanner) object() error {
	if s.depth++; s.depth > MaxDepth {
		return s.fail(ErrTooDeep, s.pos, "more than %d levels", MaxDepth)
	}
	s.pos++ // {
	s.out = append(s.out, '{')
	s.skipWS()
	if s.pos < len(s.in) && s.in[s.pos] == '}' {
		s.pos++
		s.out = append(s.out, '}')
		s.depth--
		return nil
	}
	base := len(s.members)
	first := len(s.out) // where the first member starts
	sorted := true
	for {
		s.skipWS()
		if s.pos >= len(s.in) || s.in[s.pos] != '"' {
			return s.fail(ErrSyntax, s.pos, "expected a member name")
		}
		m := member{start: len(s.out), offset: s.pos}
		name, err := s.str(true)
		if err != nil {
			return err
		}
		m.name = name
		if s.opts.ASCIIKeys {
			for _, c := range name {
				if c >= 0x80 {
					return prefixPath(s.fail(ErrRestricted, m.offset, "member name %q is not ASCII", name), nameSegment(name))
				}
			}
		}
		s.skipWS()
		if s.pos >= len(s.in) || s.in[s.pos] != ':' {
			return s.fail(ErrSyntax, s.pos, "expected : after member name")
		}
		s.pos++
		s.out = append(s.out, ':')
		if err := s.value(); err != nil {
			return prefixPath(err, nameSegment(name))
		}
		m.end = len(s.out)
		if n := len(s.members); n > base {
			c := compareUTF16(s.members[n-1].name, name)
			if c == 0 {
				return prefixPath(s.fail(ErrDuplicateKey, m.offset, "member %q appears twice", name), nameSegment(name))
			}
			sorted = sorted && c < 0
		}
		s.members = append(s.members, m)

		s.skipWS()
		if s.pos >= len(s.in) {
			return s.fail(ErrSyntax, s.pos, "unexpected end of input in object")
		}
		if c := s.in[s.pos]; c == ',' {
			s.pos++
			s.out = append(s.out, ',')
			continue
		} else if c != '}' {
			return s.fail(ErrSyntax, s.pos, "expected , or } after object member, found %q", c)
		}
		s.pos++
		break
	}
	if !sorted {
		if err := s.sortMembers(base, first); err != nil {
			return err
		}
	}
	s.members = s.members[:base]
	s.out = append(s.out, '}')
	s.depth--
	return nil
}

// sortMembers rewrites the members of the object being closed (written
// from out[first:], recorded in members[base:]) in canonical order. The
// length of the output does not change, so enclosing objects' records
// stay valid.
func (s *scanner) sortMembers(base, first int) error {
	ms := s.members[base:]
	slices.SortFunc(ms, func(a, b member) int { return compareUTF16(a.name, b.name) })
	for i := 1; i < len(ms); i++ {
		if compareUTF16(ms[i-1].name, ms[i].name) == 0 {
			m := ms[i]
			if ms[i-1].offset > m.offset {
				m = ms[i-1]
			}
			return prefixPath(s.fail(ErrDuplicateKey, m.offset, "member %q appears twice", m.name), nameSegment(m.name))
		}
	}
	s.tmp = append(s.tmp[:0], s.out[first:]...)
	s.out = s.out[:first]
	for i, m := range ms {
		if i > 0 {
			s.out = append(s.out, ',')
		}
		s.out = append(s.out, s.tmp[m.start-first:m.end-first]...)
	}
	return nil
}

// str reads the string at s.pos, writes its canonical form and returns its
// unescaped content (for member names; it may alias the input, or is a
// fresh copy).
func (s *scanner) str(isName bool) ([]byte, error) {
	in := s.in
	start := s.pos + 1
	i := start
	// Fast path: no escapes. Then the input bytes are already canonical
	// (a raw " or \ cannot occur, raw controls are syntax errors).
	for i < len(in) {
		// Skip plain ASCII, then look at what stopped us.
		for i < len(in) && strPlain[in[i]] {
			i++
		}
		if i >= len(in) {
			break
		}
		switch c := in[i]; {
		case c == '"':
			s.out = append(s.out, in[s.pos:i+1]...)
			s.pos = i + 1
			return in[start:i:i], nil
		case c == '\\':
			return s.escapedStr(start, i, isName)
		case c < 0x20:
			return nil, s.fail(ErrSyntax, i, "control character U+%04X in string", c)
		case c == 0x7f:
			if s.opts.NoControls {
				return nil, s.fail(ErrRestricted, i, "control character U+007F in string")
			}
			i++
		default: // c >= 0x80
			n := utf8Len(in[i:])
			if n == 0 {
				return nil, s.fail(ErrInvalidUTF8, i, "byte 0x%02x", c)
			}
			i += n
		}
	}
	return nil, s.fail(ErrSyntax, len(in), "unterminated string")
}

// strPlain marks the bytes a string's fast path copies without a look:
// printable ASCII except " and \ (and DEL, which a restriction may refuse).
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// utf8Len returns the length of the valid UTF-8 sequence b starts with,
// or 0. The three-byte case (all of CJK) is checked inline.
func utf8Len(b []byte) int {
	if len(b) >= 3 && b[0]&0xF0 == 0xE0 && b[1]&0xC0 == 0x80 && b[2]&0xC0 == 0x80 {
		// Not overlong (E0 needs A0..BF) and not a surrogate (ED needs 80..9F).
		if b[0] == 0xE0 && b[1] < 0xA0 || b[0] == 0xED && b[1] >= 0xA0 {
			return 0
		}
		return 3
	}
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n == 1 {
		return 0
	}
	return n
}

// escapedStr finishes a string that has escapes: in[start:i] is plain.
func (s *scanner) escapedStr(start, i int, isName bool) ([]byte, error) {
	in := s.in
	buf := append(s.unesc[:0], in[start:i]...)
	for {
		if i >= len(in) {
			return nil, s.fail(ErrSyntax, len(in), "unterminated string")
		}
		c := in[i]
		switch {
		case c == '"':
			s.pos = i + 1
			s.out = appendQuoted(s.out, buf)
			s.unesc = buf
			if isName {
				return bytes.Clone(buf), nil
			}
			return nil, nil
		case c == '\\':
			if i+1 >= len(in) {
				return nil, s.fail(ErrSyntax, len(in), "unterminated string")
			}
			var r rune
			switch e := in[i+1]; e {
			case '"', '\\', '/':
				r, i = rune(e), i+2
			case 'b':
				r, i = '\b', i+2
			case 'f':
				r, i = '\f', i+2
			case 'n':
				r, i = '\n', i+2
			case 'r':
				r, i = '\r', i+2
			case 't':
				r, i = '\t', i+2
			case 'u':
				var err error
				if r, i, err = s.unicodeEscape(i); err != nil {
					return nil, err
				}
			default:
				return nil, s.fail(ErrSyntax, i, "invalid escape \\%c", e)
			}
			if s.opts.NoControls && (r < 0x20 || r == 0x7f) {
				return nil, s.fail(ErrRestricted, i, "control character U+%04X in string", r)
			}
			buf = utf8.AppendRune(buf, r)
		case c < 0x20:
			return nil, s.fail(ErrSyntax, i, "control character U+%04X in string", c)
		case c < 0x80:
			if c == 0x7f && s.opts.NoControls {
				return nil, s.fail(ErrRestricted, i, "control character U+007F in string")
			}
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, s.fail(ErrInvalidUTF8, i, "byte 0x%02x", in[i])
			}
			buf = append(buf, in[i:i+size]...)
			i += size
		}
	}
}

// unicodeEscape decodes the \uXXXX escape at in[i] (and the low half of a
// surrogate pair after it) and returns the rune and the offset after it.
func (s *scanner) unicodeEscape(i int) (rune, int, error) {
	u, ok := hex4(s.in, i+2)
	if !ok {
		return 0, 0, s.fail(ErrSyntax, i, "invalid \\u escape")
	}
	switch {
	case u < 0xD800 || u > 0xDFFF:
		return u, i + 6, nil
	case u >= 0xDC00:
		return 0, 0, s.fail(ErrLoneSurrogate, i, "low surrogate \\u%04x without a high one", u)
	}
	// A high surrogate: the low half must follow as another escape.
	j := i + 6
	if j+1 < len(s.in) && s.in[j] == '\\' && s.in[j+1] == 'u' {
		lo, ok := hex4(s.in, j+2)
		if !ok {
			return 0, 0, s.fail(ErrSyntax, j, "invalid \\u escape")
		}
		if lo >= 0xDC00 && lo <= 0xDFFF {
			return 0x10000 + (u-0xD800)<<10 + (lo - 0xDC00), j + 6, nil
		}
	}
	return 0, 0, s.fail(ErrLoneSurrogate, i, "high surrogate \\u%04x without a low one", u)
}

func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// maxSafeInteger is 2^53−1, the largest integer n with every integer up
// to it exactly representable as a double.
const maxSafeInteger = "9007199254740991"

func (s *scanner) number() error {
	in := s.in
	start := s.pos
	i := start
	neg := in[i] == '-'
	if neg {
		i++
	}
	intStart := i
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
	default:
		return s.fail(ErrSyntax, i, "invalid number")
	}
	intEnd := i
	isInt := true
	if i < len(in) && in[i] == '.' {
		i++
		if i >= len(in) || in[i] < '0' || in[i] > '9' {
			return s.fail(ErrSyntax, i, "invalid number: no digits after the point")
		}
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		isInt = false
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i >= len(in) || in[i] < '0' || in[i] > '9' {
			return s.fail(ErrSyntax, i, "invalid number: no digits in the exponent")
		}
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		isInt = false
	}
	s.pos = i
	lit := in[start:i]
	nd := intEnd - intStart
	negZero := neg && nd == 1 && in[intStart] == '0'
	if s.opts.SafeIntegers {
		switch {
		case !isInt:
			return s.fail(ErrRestricted, start, "number %s is not an integer written without fraction or exponent", lit)
		case negZero:
			return s.fail(ErrRestricted, start, "number -0")
		case nd > len(maxSafeInteger) || nd == len(maxSafeInteger) && string(in[intStart:intEnd]) > maxSafeInteger:
			return s.fail(ErrRestricted, start, "integer %s is beyond ±(2^53−1)", lit)
		}
		s.out = append(s.out, lit...)
		return nil
	}
	// Integers of up to 15 digits are exact doubles and ECMAScript prints
	// them as they are.
	if isInt && nd <= 15 {
		if negZero {
			s.out = append(s.out, '0')
		} else {
			s.out = append(s.out, lit...)
		}
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		if math.IsInf(f, 0) {
			return s.fail(ErrNumberRange, start, "number %s overflows a double", lit)
		}
		return s.fail(ErrSyntax, start, "invalid number %s", lit)
	}
	s.out = appendES6(s.out, f)
	return nil
}
