package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/licensehub/licensehub"
)

// BundleVersion is the only bundle format this code writes and reads.
const BundleVersion = 1

// Bundle is an offline verification bundle: the public half of a keyring
// at one moment, as JSON, for relying parties that verify licenses without
// asking the hub. It carries no private key material.
//
// A Bundle implements KeySource. Use one from ExportBundle, Export or
// ParseBundle: those fill KeyInfo.PublicKey, which a plain json.Unmarshal
// does not.
type Bundle struct {
	Version     int       `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// KeyInfos are the keys. (Not named Keys: that is the KeySource
	// method.)
	KeyInfos []KeyInfo `json:"keys"`
}

// Export is the keyring's bundle, dated by its clock.
func (k *Keyring) Export() Bundle { return ExportBundle(k, k.clock()) }

// ExportBundle makes the bundle of every key of src, dated now. Keys
// missing Algorithm or PublicKeyPEM get them filled in (from PublicKey).
func ExportBundle(src KeySource, now time.Time) Bundle {
	keys := src.Keys()
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		k = k.clone()
		if k.Algorithm == "" {
			k.Algorithm = Algorithm
		}
		if k.PublicKeyPEM == "" && k.PublicKey != nil {
			if s, err := encodePublicKeyPEM(k.PublicKey); err == nil {
				k.PublicKeyPEM = s
			}
		}
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return Bundle{Version: BundleVersion, GeneratedAt: now.UTC(), KeyInfos: out}
}

// ParseBundle reads a bundle strictly and refuses (EMALFORMED for JSON
// that does not fit the format, EINVALID for keys that are wrong) when:
// the JSON has unknown fields or trailing data; the version is not
// BundleVersion; generated_at is missing; a key has a malformed kid, an
// invalid authority, an algorithm other than Algorithm, a public key that
// is not one SM2 PUBLIC KEY PEM block, a kid that is not KeyID of its
// public key, not_before not before not_after, a state that disagrees with
// its times, or a certificate that does not certify the key; two keys
// share a kid. Every KeyInfo.PublicKey is filled. Certificate chains are
// not verified (the bundle carries no trust roots).
func ParseBundle(raw []byte) (*Bundle, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, licensehub.Wrap(err, licensehub.EMALFORMED, "bundle is not valid bundle JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, licensehub.Errorf(licensehub.EMALFORMED, "bundle has data after its JSON object")
	}
	if b.Version != BundleVersion {
		return nil, licensehub.FieldError(licensehub.EINVALID, "version", "bundle version %d is not supported (want %d)", b.Version, BundleVersion)
	}
	if b.GeneratedAt.IsZero() {
		return nil, licensehub.FieldError(licensehub.EINVALID, "generated_at", "bundle has no generated_at")
	}
	if b.KeyInfos == nil {
		b.KeyInfos = []KeyInfo{}
	}
	seen := make(map[string]int, len(b.KeyInfos))
	for i := range b.KeyInfos {
		k := &b.KeyInfos[i]
		bad := func(field, format string, args ...any) error {
			msg := fmt.Sprintf("bundle keys[%d]", i)
			if k.KeyID != "" {
				msg += " (kid " + k.KeyID + ")"
			}
			return &licensehub.Error{
				Code:    licensehub.EINVALID,
				Field:   fmt.Sprintf("keys[%d].%s", i, field),
				Message: msg + ": " + field + ": " + fmt.Sprintf(format, args...),
			}
		}
		if ps := checkKeyFields(k.KeyID, k.Authority, k.NotBefore, k.NotAfter, k.State, k.RetiredAt, k.CompromisedAt); len(ps) > 0 {
			return nil, bad(ps[0].Field, "%s", ps[0].Msg)
		}
		if k.Algorithm != Algorithm {
			return nil, bad("alg", "%q is not %s", k.Algorithm, Algorithm)
		}
		if j, dup := seen[k.KeyID]; dup {
			return nil, bad("kid", "duplicate: keys[%d] has the same kid", j)
		}
		seen[k.KeyID] = i
		pub, err := decodePublicKeyPEM([]byte(k.PublicKeyPEM))
		if err != nil {
			return nil, bad("public_key_pem", "%v", err)
		}
		if err := checkKeyID(k.KeyID, pub); err != nil {
			return nil, bad("kid", "%s", licensehub.Message(err))
		}
		k.PublicKey = pub
		if k.CertificatePEM != "" {
			certs, err := decodeCertificatesPEM([]byte(k.CertificatePEM))
			if err != nil {
				return nil, bad("certificate_pem", "%v", err)
			}
			if err := checkLeafCertificate(certs[0], pub, k.NotBefore, k.NotAfter); err != nil {
				return nil, bad("certificate_pem", "%v", err)
			}
		}
		k.NotBefore, k.NotAfter = k.NotBefore.UTC(), k.NotAfter.UTC()
		if k.RetiredAt != nil {
			t := k.RetiredAt.UTC()
			k.RetiredAt = &t
		}
		if k.CompromisedAt != nil {
			t := k.CompromisedAt.UTC()
			k.CompromisedAt = &t
		}
	}
	b.GeneratedAt = b.GeneratedAt.UTC()
	slices.SortFunc(b.KeyInfos, compareKeys)
	return &b, nil
}

// Key returns the key with the given ID, or an EKEYNOTFOUND error.
func (b Bundle) Key(kid string) (KeyInfo, error) {
	for _, k := range b.KeyInfos {
		if k.KeyID == kid {
			return k.clone(), nil
		}
	}
	return KeyInfo{}, &licensehub.Error{
		Code:    licensehub.EKEYNOTFOUND,
		Message: fmt.Sprintf("no key with kid %q in the bundle generated at %s", kid, fmtTime(b.GeneratedAt)),
		Details: map[string]any{"kid": kid},
	}
}

// Keys lists every key, ordered by authority then NotBefore.
func (b Bundle) Keys() []KeyInfo {
	out := make([]KeyInfo, len(b.KeyInfos))
	for i, k := range b.KeyInfos {
		out[i] = k.clone()
	}
	slices.SortFunc(out, compareKeys)
	return out
}
