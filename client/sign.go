package client

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// The authentication headers.
const (
	HeaderAppID     = "X-Hub-App-Id"
	HeaderTimestamp = "X-Hub-Timestamp"
	HeaderNonce     = "X-Hub-Nonce"
	HeaderSignature = "X-Hub-Signature"
)

// Nonce length bounds; the characters are A-Z a-z 0-9 '-' '_'.
const (
	NonceMinLen = 16
	NonceMaxLen = 64
)

// Secret is a member system's shared secret: the HMAC-SM3 key. It never
// prints: fmt (any verb), slog and encoding/json show "[redacted]". A
// []byte can be assigned to it directly.
type Secret []byte

const redacted = "[redacted]"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// Format makes every fmt verb (%x and %d included) print "[redacted]".
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps encoding/json from printing the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Credentials identify a member system to the hub.
type Credentials struct {
	AppID  string
	Secret Secret
}

// String describes the credentials without the secret.
func (c Credentials) String() string {
	return "client.Credentials{AppID: " + strconv.Quote(c.AppID) + ", Secret: " + redacted + "}"
}

// GoString is String, so that %#v prints no secret either.
func (c Credentials) GoString() string { return c.String() }

// LogValue logs the app ID only.
func (c Credentials) LogValue() slog.Value { return slog.GroupValue(slog.String("app_id", c.AppID)) }

// CanonicalString returns the bytes that are signed, as defined in the
// package documentation. A query that is not valid percent-encoding is
// taken literally (its '%' becomes %25); the hub refuses such requests.
func CanonicalString(method, escapedPath, rawQuery, timestamp, nonce string, body []byte) string {
	q, _ := CanonicalQuery(rawQuery)
	var b strings.Builder
	b.Grow(len(method) + len(escapedPath) + len(q) + len(timestamp) + len(nonce) + 2*sm3.Size + 5)
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(escapedPath)
	b.WriteByte('\n')
	b.WriteString(q)
	b.WriteByte('\n')
	b.WriteString(timestamp)
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.WriteString(BodyDigest(body))
	return b.String()
}

// BodyDigest is the last line of the canonical string: lower-case hex SM3
// of body (of the empty string when body is empty).
func BodyDigest(body []byte) string {
	sum := sm3.Sum(body)
	return hex.EncodeToString(sum[:])
}

// ErrMalformedQuery is returned by CanonicalQuery for a query that is not
// valid percent-encoding.
var ErrMalformedQuery = errors.New("query is not valid percent-encoding")

// CanonicalQuery returns the canonical form of a raw query string: pairs
// decoded, sorted by key then value, re-encoded per RFC 3986 and joined
// with '&' (see the package documentation). When a key or value is not
// valid percent-encoding it still returns a string, taking such parts
// literally, and an error wrapping ErrMalformedQuery that names the first
// such part.
func CanonicalQuery(rawQuery string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	pairs := make([]pair, 0, strings.Count(rawQuery, "&")+1)
	var firstErr error
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, errK := url.QueryUnescape(k)
		dv, errV := url.QueryUnescape(v)
		if errK != nil || errV != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: %q", ErrMalformedQuery, clip(part, 64))
			}
			dk, dv = k, v
		}
		pairs = append(pairs, pair{dk, dv})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	b.Grow(len(rawQuery) + len(rawQuery)/2)
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		escapeRFC3986(&b, p.k)
		b.WriteByte('=')
		escapeRFC3986(&b, p.v)
	}
	return b.String(), firstErr
}

// escapeRFC3986 writes s with every byte outside RFC 3986's unreserved set
// (A-Z a-z 0-9 - . _ ~) as %XX, upper-case hex.
func escapeRFC3986(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
}

// Sign returns the X-Hub-Signature value for a canonical string: standard
// base64 of HMAC-SM3 keyed with secret.
func Sign(secret []byte, canonical string) string {
	mac := hmac.New(sm3.New, secret)
	mac.Write([]byte(canonical))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// NewNonce returns a fresh random nonce: 26 characters of A-Z and 2-7
// (130 random bits).
func NewNonce() string { return rand.Text() }

// ValidNonce reports whether s is a well-formed nonce: NonceMinLen to
// NonceMaxLen characters of A-Z a-z 0-9 '-' '_'.
func ValidNonce(s string) bool {
	if len(s) < NonceMinLen || len(s) > NonceMaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SignRequest sets the four authentication headers on req, with a fresh
// nonce and now as the timestamp. body must be exactly the bytes req will
// send (nil when it sends none); SignRequest does not read req.Body. The
// path and query signed are those req puts in its request line.
func SignRequest(req *http.Request, body []byte, c Credentials, now time.Time) error {
	if req == nil || req.URL == nil {
		return errors.New("client: SignRequest: request without a URL")
	}
	if c.AppID == "" {
		return errors.New("client: SignRequest: credentials have no app ID")
	}
	if len(c.Secret) == 0 {
		return fmt.Errorf("client: SignRequest: credentials of %s have no secret", c.AppID)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	path, _, _ := strings.Cut(req.URL.RequestURI(), "?")
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := NewNonce()
	sig := Sign(c.Secret, CanonicalString(method, path, req.URL.RawQuery, ts, nonce, body))
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set(HeaderAppID, c.AppID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, sig)
	return nil
}

// clip shortens s to at most n bytes for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
