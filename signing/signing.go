// Package signing signs and verifies licensehub documents with SM2
// (GB/T 32918) over SM3, the default user ID 1234567812345678 and DER
// signatures, on github.com/emmansun/gmsm. It holds the issuing
// authorities' keys (the file keyring; an HSM or KMS can replace it behind
// Signer) and the public key registry relying parties verify against.
//
// # Signed documents
//
// A signed document (Document) is the JSON object
//
//	{"body":{…},"signature":{"alg":"SM2-SM3","kid":"<key ID>","signed_at":"2026-11-26T08:00:00Z","uid":"1234567812345678","value":"<base64 DER>"}}
//
// The signature is over the signed bytes: the RFC 8785 (JCS, package
// signing/jcs) canonical form of the document without signature.value,
//
//	{"body":<canonical body>,"signature":{"alg":"SM2-SM3","kid":"…","signed_at":"…","uid":"1234567812345678"}}
//
// so the signing time, key ID and user ID are signed with the body. The
// value is the standard base64 (padded) of the DER SEQUENCE{r, s} of the
// SM2 signature of e = SM3(Z_A ‖ signed bytes), Z_A over DefaultUserID. A
// document is stored and served in canonical form (Document.Marshal), and
// bodies are restricted (objects; integers within ±(2^53−1) without
// fraction or exponent; no control characters or DEL in strings; ASCII
// member names) so that `jq -S -c 'del(.signature.value)'` reproduces the
// signed bytes and anyone can verify with jq and openssl: see VERIFY.md.
package signing

import (
	"context"
	"crypto/ecdsa"
	"time"
)

const (
	// Algorithm names the only signature algorithm the hub makes and accepts.
	Algorithm = "SM2-SM3"
	// DefaultUserID is the GM/T 0009 default signer ID used in Z_A.
	DefaultUserID = "1234567812345678"
)

// KeyState is where a key stands in its life.
type KeyState string

const (
	// StateActive keys sign (one per authority at a time) and verify.
	StateActive KeyState = "active"
	// StateRetired keys no longer sign; signatures made before RetiredAt
	// still verify.
	StateRetired KeyState = "retired"
	// StateCompromised keys never sign; signatures claiming a signing time
	// at or after CompromisedAt are rejected.
	StateCompromised KeyState = "compromised"
)

// KeyInfo is the public description of one issuing-authority key: what the
// key registry publishes and what an offline bundle carries.
type KeyInfo struct {
	KeyID          string     `json:"kid"`       // hex of the first 16 bytes of SM3(SubjectPublicKeyInfo DER)
	Authority      string     `json:"authority"` // the issuing authority's unified social credit code
	Algorithm      string     `json:"alg"`       // Algorithm
	PublicKeyPEM   string     `json:"public_key_pem"`
	NotBefore      time.Time  `json:"not_before"`
	NotAfter       time.Time  `json:"not_after"`
	State          KeyState   `json:"state"`
	RetiredAt      *time.Time `json:"retired_at,omitempty"`
	CompromisedAt  *time.Time `json:"compromised_at,omitempty"`
	CertificatePEM string     `json:"certificate_pem,omitempty"` // SM2 X.509 certificate, when the key has one

	// PublicKey is PublicKeyPEM parsed (an SM2 key on the sm2p256v1 curve).
	PublicKey *ecdsa.PublicKey `json:"-"`
}

// Signer makes SM2 signatures for one key. The file keyring implements it;
// an HSM or KMS can too.
type Signer interface {
	// Key describes the key that signs.
	Key() KeyInfo
	// Sign returns the DER signature of msg: SM2 over e = SM3(Z_A ‖ msg)
	// with the default user ID.
	Sign(ctx context.Context, msg []byte) ([]byte, error)
}

// SignerSource finds the signer of an issuing authority.
type SignerSource interface {
	// SignerFor returns the authority's active key, valid at the given time.
	// No such key gives an *licensehub.Error with code EKEYNOTFOUND.
	SignerFor(authority string, at time.Time) (Signer, error)
}

// KeySource resolves key IDs for verification: the live keyring, or an
// exported bundle offline.
type KeySource interface {
	// Key returns the key with the given ID (EKEYNOTFOUND when unknown).
	Key(kid string) (KeyInfo, error)
	// Keys lists every key, ordered by authority then NotBefore.
	Keys() []KeyInfo
}
