package upstream

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strings"

	"github.com/emmansun/gmsm/sm3"

	licensehub "github.com/licensehub/licensehub"
)

// Wire protocol shared by the client and the upstream simulator.
//
// Every request is GET BaseURL+Path?Params carrying the headers below. The
// signature is the lower-case hex HMAC-(SM3|SHA-256) keyed with the
// upstream secret over requestID + "\n" + timestamp + "\n" + serviceID.
// The request ID is the same on every retry of one query; the timestamp
// (Unix milliseconds) and signature are recomputed per attempt.
const (
	HeaderAppKey    = "X-App-Key"
	HeaderRequestID = "X-Request-Id"
	HeaderTimestamp = "X-Timestamp" // Unix milliseconds, decimal
	HeaderServiceID = "X-Service-Id"
	HeaderSignature = "X-Signature"

	AlgSM3    = "sm3"    // HMAC-SM3 (default)
	AlgSHA256 = "sha256" // HMAC-SHA-256

	// Envelope codes. Any code other than CodeOK is a business error.
	CodeOK          = "0000"
	CodeBadParams   = "4001"  // mapped to INVALID_ARGUMENT
	CodeNotFound    = "4004"  // mapped to NOT_FOUND
	MaxResponseBody = 1 << 20 // bodies larger than this are UPSTREAM_BAD_RESPONSE
)

// Envelope is the JSON body of every HTTP 200 answer.
type Envelope struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func hashFor(alg string) (func() hash.Hash, error) {
	switch strings.ToLower(alg) {
	case "", AlgSM3:
		return sm3.New, nil
	case AlgSHA256:
		return sha256.New, nil
	}
	return nil, licensehub.FieldError(licensehub.EINVALID, "algorithm", "unknown signature algorithm %q (want sm3 or sha256)", alg)
}

// Sign returns the lower-case hex HMAC (alg "sm3" — the default when empty —
// or "sha256") of requestID + "\n" + timestamp + "\n" + serviceID.
func Sign(alg string, secret []byte, requestID, timestamp, serviceID string) (string, error) {
	h, err := hashFor(alg)
	if err != nil {
		return "", err
	}
	m := hmac.New(h, secret)
	m.Write([]byte(requestID))
	m.Write([]byte{'\n'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'\n'})
	m.Write([]byte(serviceID))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Verify reports, in constant time, whether signature is Sign's result for
// the same inputs. Upper-case hex is rejected (the protocol says lower-case).
func Verify(alg string, secret []byte, requestID, timestamp, serviceID, signature string) bool {
	want, err := Sign(alg, secret, requestID, timestamp, serviceID)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(want), []byte(signature))
}

// ParseEnvelope decodes an HTTP 200 body. It fails (UPSTREAM_BAD_RESPONSE)
// when the body is not a JSON object with a non-empty string "code", or when
// the code is CodeOK and "data" is not a JSON object. A business error is
// returned as a nil error with env.Code != CodeOK. It never panics.
func ParseEnvelope(body []byte) (Envelope, error) {
	var raw struct {
		Code    *string         `json:"code"`
		Message *string         `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Envelope{}, licensehub.Errorf(licensehub.EUPSTREAMBAD, "upstream body is not a JSON object")
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Envelope{}, licensehub.Wrap(err, licensehub.EUPSTREAMBAD, "upstream body is not a valid envelope")
	}
	if raw.Code == nil || *raw.Code == "" {
		return Envelope{}, licensehub.Errorf(licensehub.EUPSTREAMBAD, "upstream envelope has no code")
	}
	env := Envelope{Code: *raw.Code, Data: raw.Data}
	if raw.Message != nil {
		env.Message = *raw.Message
	}
	if env.Code == CodeOK {
		d := bytes.TrimSpace(raw.Data)
		if len(d) == 0 || d[0] != '{' {
			return Envelope{}, licensehub.Errorf(licensehub.EUPSTREAMBAD, "upstream envelope data is not a JSON object")
		}
		env.Data = d
	}
	return env, nil
}
