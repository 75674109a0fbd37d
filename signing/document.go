package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing/jcs"
)

// MaxDocumentSize is the largest signed document ParseDocument reads and
// Sign makes, in bytes.
const MaxDocumentSize = 1 << 20

// SignedAtLayout is the one form of Signature.SignedAt: RFC 3339 in UTC,
// whole seconds, e.g. 2026-11-26T08:00:00Z.
const SignedAtLayout = "2006-01-02T15:04:05Z"

// Document is a signed license (or certificate) document.
//
// Its stored form (Marshal) is the whole document in RFC 8785 canonical
// form. The signature covers the canonical form of the document without
// signature.value (SignedBytes):
//
//	{"body":<body>,"signature":{"alg":"SM2-SM3","kid":"…","signed_at":"…","uid":"1234567812345678"}}
//
// so the signing time, key ID and user ID are signed along with the body.
// A body is a JSON object restricted so that `jq -S -c
// 'del(.signature.value)'` (jq 1.6) writes exactly those bytes: its
// numbers are integers within ±(2^53−1) written as integers (no fraction,
// no exponent, no -0), its strings hold no U+0000–U+001F and no U+007F,
// and its member names are ASCII. See VERIFY.md.
type Document struct {
	Body      json.RawMessage `json:"body"` // a JSON object: the license (or certificate) body
	Signature Signature       `json:"signature"`
}

// Signature is a document's signature block.
type Signature struct {
	Alg      string `json:"alg"`       // Algorithm
	KeyID    string `json:"kid"`       // KeyID of the signing key
	UserID   string `json:"uid"`       // DefaultUserID
	SignedAt string `json:"signed_at"` // SignedAtLayout, e.g. 2026-11-26T08:00:00Z
	Value    string `json:"value"`     // standard base64 (with padding) of the DER signature
}

// bodyRules are the restrictions on a body that keep jq's output equal to
// the canonical form (jq 1.6 prints integers beyond 1e17 in exponent form
// and -0 as -0, escapes U+007F, and sorts member names by code point,
// which is UTF-16 order only for ASCII).
var bodyRules = jcs.Options{SafeIntegers: true, ASCIIKeys: true, NoControls: true}

// Sign signs body with s at time at (truncated to whole seconds, in UTC).
// A body that is not a JSON object within the rules of Document is
// EINVALID with Field naming the offending value's JSON path (e.g.
// "body.items[2].price"); a document that would exceed MaxDocumentSize is
// EINVALID too. Errors of the signer are passed on.
func Sign(ctx context.Context, s Signer, body json.RawMessage, at time.Time) (*Document, error) {
	if s == nil {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "no signer")
	}
	// Build the signed bytes in one buffer: {"body":<canonical body>, then
	// the signature block once the signer is known.
	msg := append(make([]byte, 0, len(body)+256), bodyPrefix...)
	msg, err := appendBody(msg, body, licensehub.EINVALID)
	if err != nil {
		return nil, err
	}
	canon := bytes.Clone(msg[len(bodyPrefix):])
	info := s.Key()
	if !validKeyID(info.KeyID) {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "signer key ID %q is not a key ID", info.KeyID)
	}
	if info.Algorithm != "" && info.Algorithm != Algorithm {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "signer key %s has algorithm %q, not %s", info.KeyID, info.Algorithm, Algorithm)
	}
	if at.IsZero() {
		return nil, licensehub.FieldError(licensehub.EINVALID, "signature.signed_at", "no signing time")
	}
	at = at.UTC().Truncate(time.Second)
	if y := at.Year(); y < 1 || y > 9999 {
		return nil, licensehub.FieldError(licensehub.EINVALID, "signature.signed_at", "signing time %v is outside years 0001-9999", at)
	}
	d := &Document{Body: canon, Signature: Signature{
		Alg:      Algorithm,
		KeyID:    info.KeyID,
		UserID:   DefaultUserID,
		SignedAt: at.Format(SignedAtLayout),
	}}
	msg = d.appendHeader(msg)
	// A DER signature is at most 72 bytes, 96 in base64; `,"value":""` is 11.
	if len(msg)+11+96 > MaxDocumentSize {
		return nil, licensehub.FieldError(licensehub.EINVALID, "body", "signed document would exceed %d bytes", MaxDocumentSize)
	}
	sig, err := s.Sign(ctx, msg)
	if err != nil {
		var e *licensehub.Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "sign with key %s", info.KeyID)
	}
	// A signer that returns raw r‖s or junk (some HSMs do) would make
	// documents nobody can verify: refuse them here.
	if rule := checkDER(sig); rule != "" {
		return nil, licensehub.Errorf(licensehub.EINTERNAL, "signer for key %s returned a signature that is not strict DER (%s)", info.KeyID, rule)
	}
	d.Signature.Value = base64.StdEncoding.EncodeToString(sig)
	return d, nil
}

// bodyPrefix starts the signed bytes (and the stored form): "body" sorts
// before "signature".
const bodyPrefix = `{"body":`

// appendBody appends the canonical form of body to dst, enforcing the
// body rules; violations get code, and Field "body" plus the JSON path.
func appendBody(dst []byte, body []byte, code string) ([]byte, error) {
	out, err := bodyRules.Append(dst, body)
	if err != nil {
		return nil, jcsError(err, code, "body")
	}
	if out[len(dst)] != '{' {
		return nil, licensehub.FieldError(code, "body", "body must be a JSON object")
	}
	return out, nil
}

// jcsError turns a jcs error into a hub error with the given code whose
// Field is the JSON path below prefix.
func jcsError(err error, code, prefix string) error {
	var e *jcs.Error
	if !errors.As(err, &e) {
		return licensehub.Wrap(err, code, "invalid JSON")
	}
	var what string
	switch e.Err {
	case jcs.ErrRestricted:
		what = "not allowed in a signed document"
	default:
		what = e.Err.Error()
	}
	return &licensehub.Error{
		Code:    code,
		Field:   jcs.JoinPath(prefix, e.Path),
		Message: what + ": " + e.Msg,
		Details: map[string]any{"offset": e.Offset},
		Err:     err,
	}
}

// appendHeader appends to dst (which ends with `{"body":` and the
// canonical body) the rest of the signed bytes: the signature block
// without value, in canonical form.
func (d *Document) appendHeader(dst []byte) []byte {
	dst = append(dst, `,"signature":{"alg":`...)
	dst = appendJSONString(dst, d.Signature.Alg)
	dst = append(dst, `,"kid":`...)
	dst = appendJSONString(dst, d.Signature.KeyID)
	dst = append(dst, `,"signed_at":`...)
	dst = appendJSONString(dst, d.Signature.SignedAt)
	dst = append(dst, `,"uid":`...)
	dst = appendJSONString(dst, d.Signature.UserID)
	return append(dst, "}}"...)
}

// appendJSONString appends s canonically; callers have checked s with
// checkHeaderString.
func appendJSONString(dst []byte, s string) []byte {
	out, _ := jcs.AppendString(dst, s)
	return out
}

// checkHeaderString applies the body's string rules (valid UTF-8, no
// control characters) to a signature field, so the header too reads the
// same through jq.
func checkHeaderString(field, s string) error {
	if !utf8.ValidString(s) {
		return licensehub.FieldError(licensehub.EMALFORMED, field, "invalid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return licensehub.FieldError(licensehub.EMALFORMED, field, "control character U+%04X", c)
		}
	}
	return nil
}

func (d *Document) checkHeaderStrings() error {
	for _, f := range [...]struct{ name, v string }{
		{"signature.alg", d.Signature.Alg},
		{"signature.kid", d.Signature.KeyID},
		{"signature.signed_at", d.Signature.SignedAt},
		{"signature.uid", d.Signature.UserID},
		{"signature.value", d.Signature.Value},
	} {
		if err := checkHeaderString(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// SignedBytes returns the bytes the signature is over: the RFC 8785
// canonical form of {"body": Body, "signature": Signature without value}.
// A Body outside the rules of Document, or signature fields that are not
// valid UTF-8 or hold control characters, are EMALFORMED.
func (d *Document) SignedBytes() ([]byte, error) {
	return d.appendSigned(make([]byte, 0, len(d.Body)+200))
}

func (d *Document) appendSigned(dst []byte) ([]byte, error) {
	if err := d.checkHeaderStrings(); err != nil {
		return nil, err
	}
	dst = append(dst, bodyPrefix...)
	dst, err := appendBody(dst, d.Body, licensehub.EMALFORMED)
	if err != nil {
		return nil, err
	}
	return d.appendHeader(dst), nil
}

// Marshal returns the stored form of the document: all of it, value
// included, in RFC 8785 canonical form. The bytes are deterministic and
// ParseDocument reads them back; a document ParseDocument would reject is
// EMALFORMED.
func (d *Document) Marshal() ([]byte, error) {
	if err := d.checkHeader(); err != nil {
		return nil, err
	}
	out, err := d.SignedBytes()
	if err != nil {
		return nil, err
	}
	out = out[:len(out)-2] // reopen the signature object: "value" sorts last
	out = append(out, `,"value":`...)
	out = appendJSONString(out, d.Signature.Value)
	out = append(out, "}}"...)
	if len(out) > MaxDocumentSize {
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body", "document exceeds %d bytes", MaxDocumentSize)
	}
	return out, nil
}

// checkHeader checks the signature fields as ParseDocument does.
func (d *Document) checkHeader() error {
	if err := d.checkHeaderStrings(); err != nil {
		return err
	}
	s := &d.Signature
	if s.Alg != Algorithm {
		return licensehub.FieldError(licensehub.EMALFORMED, "signature.alg", "algorithm %q is not %s", s.Alg, Algorithm)
	}
	if !validKeyID(s.KeyID) {
		return licensehub.FieldError(licensehub.EMALFORMED, "signature.kid", "not a key ID (%d lower-case hex digits)", KeyIDLen)
	}
	if _, err := parseSignedAt(s.SignedAt); err != nil {
		return err
	}
	if s.Value == "" {
		return licensehub.FieldError(licensehub.EMALFORMED, "signature.value", "empty signature")
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(s.Value); err != nil {
		return licensehub.FieldError(licensehub.EMALFORMED, "signature.value", "not standard base64 with padding: %v", err)
	}
	return nil
}

// SignedTime returns signature.signed_at as a time (EMALFORMED when it is
// not in SignedAtLayout).
func (d *Document) SignedTime() (time.Time, error) {
	return parseSignedAt(d.Signature.SignedAt)
}

func parseSignedAt(s string) (time.Time, error) {
	t, err := time.Parse(SignedAtLayout, s)
	// time.Parse accepts fractional seconds the layout does not name;
	// only the exact layout is allowed.
	if err != nil || t.Format(SignedAtLayout) != s {
		return time.Time{}, licensehub.FieldError(licensehub.EMALFORMED, "signature.signed_at",
			"%q is not an RFC 3339 UTC time in whole seconds like 2026-11-26T08:00:00Z", s)
	}
	return t, nil
}

// ParseDocument reads a signed document strictly: at most MaxDocumentSize
// bytes of I-JSON (no duplicate member names at any level, valid UTF-8, no
// lone surrogates), exactly the members body and signature, the body an
// object within the rules of Document, the signature exactly alg, kid,
// uid, signed_at and value, all strings, alg Algorithm, kid a key ID,
// signed_at in SignedAtLayout, value standard base64. Whitespace and
// member order are free. Every failure is EMALFORMED with Field naming the
// JSON path of the problem (e.g. "signature.signed_at", "body.holder.id").
// The returned Body is in canonical form.
func ParseDocument(raw []byte) (*Document, error) {
	if len(raw) > MaxDocumentSize {
		return nil, licensehub.Errorf(licensehub.EMALFORMED, "document is %d bytes, more than %d", len(raw), MaxDocumentSize)
	}
	// The body rules apply to the signature block too: its fields are
	// strings that can satisfy them, and a number or control character
	// there is malformed anyway.
	canon, err := bodyRules.Canonicalize(raw)
	if err != nil {
		return nil, jcsError(err, licensehub.EMALFORMED, "")
	}
	if canon[0] != '{' {
		return nil, licensehub.Errorf(licensehub.EMALFORMED, "a signed document is a JSON object")
	}
	d := &Document{}
	var haveBody, haveSig bool
	err = eachMember(canon, func(name string, val []byte) error {
		switch name {
		case "body":
			if val[0] != '{' {
				return licensehub.FieldError(licensehub.EMALFORMED, "body", "body must be a JSON object")
			}
			d.Body = json.RawMessage(val[:len(val):len(val)])
			haveBody = true
		case "signature":
			if err := parseSignatureBlock(val, &d.Signature); err != nil {
				return err
			}
			haveSig = true
		default:
			return licensehub.FieldError(licensehub.EMALFORMED, jcs.MemberPath("", name), "unknown member")
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !haveBody:
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "body", "missing")
	case !haveSig:
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "signature", "missing")
	}
	if err := d.checkHeader(); err != nil {
		return nil, err
	}
	return d, nil
}

func parseSignatureBlock(obj []byte, s *Signature) error {
	if obj[0] != '{' {
		return licensehub.FieldError(licensehub.EMALFORMED, "signature", "signature must be a JSON object")
	}
	fields := [...]struct {
		name string
		dst  *string
		seen bool
	}{
		{name: "alg", dst: &s.Alg},
		{name: "kid", dst: &s.KeyID},
		{name: "signed_at", dst: &s.SignedAt},
		{name: "uid", dst: &s.UserID},
		{name: "value", dst: &s.Value},
	}
	err := eachMember(obj, func(name string, val []byte) error {
		path := jcs.MemberPath("signature", name)
		for i := range fields {
			f := &fields[i]
			if f.name != name {
				continue
			}
			if val[0] != '"' {
				return licensehub.FieldError(licensehub.EMALFORMED, path, "must be a string")
			}
			*f.dst = unquote(val)
			f.seen = true
			return nil
		}
		return licensehub.FieldError(licensehub.EMALFORMED, path, "unknown member")
	})
	if err != nil {
		return err
	}
	for _, f := range fields {
		if !f.seen {
			return licensehub.FieldError(licensehub.EMALFORMED, "signature."+f.name, "missing")
		}
	}
	return nil
}

// eachMember calls fn for each member of obj, a JSON object in canonical
// form (the output of jcs), with the member's unescaped name and its
// canonical value.
func eachMember(obj []byte, fn func(name string, val []byte) error) error {
	i := 1
	if obj[i] == '}' {
		return nil
	}
	for {
		end := skipString(obj, i)
		name := unquote(obj[i:end])
		i = end + 1 // past ':'
		end = skipValue(obj, i)
		if err := fn(name, obj[i:end]); err != nil {
			return err
		}
		if end >= len(obj) || obj[end] != ',' {
			return nil
		}
		i = end + 1
	}
}

// skipValue returns the offset just after the canonical JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// skipString returns the offset just after the JSON string at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// unquote decodes a JSON string that jcs has already validated.
func unquote(lit []byte) string {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(lit, &s)
	return s
}

// VerifySignature checks d's signature against the key it names, found in
// keys. It does not judge the key's state or validity window at the
// signing time (KeyInfo.CheckAt does); it returns the KeyInfo it used.
//
// The key is resolved first: an unknown kid is the KeySource's error
// (EKEYNOTFOUND), passed on unchanged, with a zero KeyInfo. Once the key
// is known it is returned even when the check then fails, so callers can
// report which key and authority were involved: ESIGINVALID with
// Details["rule"] RuleAlgorithm (the document or the key is not
// SM2-SM3), RuleUserID (uid is not DefaultUserID), or one of
// VerifyMessage's rules. A document whose fields are unusable is
// EMALFORMED.
func VerifySignature(d *Document, keys KeySource) (KeyInfo, error) {
	if d == nil {
		return KeyInfo{}, licensehub.Errorf(licensehub.EMALFORMED, "no document")
	}
	if keys == nil {
		return KeyInfo{}, licensehub.Errorf(licensehub.EINTERNAL, "no key source")
	}
	info, err := keys.Key(d.Signature.KeyID)
	if err != nil {
		return KeyInfo{}, err
	}
	if info.KeyID != d.Signature.KeyID {
		return info, licensehub.Errorf(licensehub.EINTERNAL, "key source returned key %q for %q", info.KeyID, d.Signature.KeyID)
	}
	if d.Signature.Alg != Algorithm || info.Algorithm != "" && info.Algorithm != Algorithm {
		return info, sigError(RuleAlgorithm)
	}
	if d.Signature.UserID != DefaultUserID {
		return info, sigError(RuleUserID)
	}
	pub := info.PublicKey
	if checkSM2Key(pub) != nil {
		return info, licensehub.Errorf(licensehub.EINTERNAL, "key source gave key %s without a parsed SM2 public key", info.KeyID)
	}
	sig, err := decodeSignature(d.Signature.Value)
	if err != nil {
		return info, err
	}
	bp := signedPool.Get().(*[]byte)
	defer signedPool.Put(bp)
	msg, err := d.appendSigned((*bp)[:0])
	if err != nil {
		return info, err
	}
	*bp = msg[:0]
	return info, VerifyMessage(pub, msg, sig)
}

// signedPool recycles the buffers VerifySignature builds signed bytes in.
var signedPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func decodeSignature(v string) ([]byte, error) {
	sig, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || len(sig) == 0 {
		return nil, licensehub.FieldError(licensehub.EMALFORMED, "signature.value", "not standard base64 with padding")
	}
	return sig, nil
}
