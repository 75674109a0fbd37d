package signing

import (
	"crypto/ecdsa"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
)

// Rule names: the value of Details["rule"] in the errors of
// [KeyInfo.CheckAt] and [KeyInfo.CanSignAt]. They are part of the API;
// never rename one.
const (
	// RuleKeyOutsideValidity: the time is before NotBefore or after NotAfter.
	RuleKeyOutsideValidity = "outside_validity"
	// RuleKeyRetired: the key was retired at or before the claimed signing
	// time (or is retired at an unknown time).
	RuleKeyRetired = "retired"
	// RuleKeyCompromised: the key was compromised at or before the claimed
	// signing time (or is compromised at an unknown time).
	RuleKeyCompromised = "compromised_before_signing"
	// RuleKeyNotActive: CanSignAt on a retired or compromised key.
	RuleKeyNotActive = "not_active"
	// RuleKeyUnknownState: State is none of the three states.
	RuleKeyUnknownState = "unknown_state"
)

// CheckAt reports whether a signature claiming signing time t may be
// accepted from this key: nil, or an *licensehub.Error with code
// ESIGINVALID and Details["rule"] one of RuleKeyCompromised,
// RuleKeyRetired, RuleKeyOutsideValidity or RuleKeyUnknownState.
//
// The validity interval is closed: t == NotBefore and t == NotAfter pass.
// RetiredAt and CompromisedAt are the first instants that fail. A retired
// key without RetiredAt, or a compromised one without CompromisedAt, fails
// for every t: nothing it signed can be dated safely. CheckAt looks at the
// key only; that t is honest (e.g. not after the time the signature was
// received) is the caller's business.
func (k KeyInfo) CheckAt(t time.Time) error {
	switch k.State {
	case StateActive, StateRetired, StateCompromised:
	default:
		return k.timeError(licensehub.ESIGINVALID, RuleKeyUnknownState, t, nil,
			"key %s has unknown state %q; no signature from it is accepted", k.KeyID, k.State)
	}
	// Compromise first: it is the reason an operator most needs to see.
	if k.CompromisedAt != nil && !t.Before(*k.CompromisedAt) {
		return k.timeError(licensehub.ESIGINVALID, RuleKeyCompromised, t,
			map[string]any{"compromised_at": fmtTime(*k.CompromisedAt)},
			"key %s was compromised at %s; a signature claiming %s (at or after that) is not accepted",
			k.KeyID, fmtTime(*k.CompromisedAt), fmtTime(t))
	}
	if k.State == StateCompromised && k.CompromisedAt == nil {
		return k.timeError(licensehub.ESIGINVALID, RuleKeyCompromised, t, nil,
			"key %s is compromised at an unknown time; no signature from it is accepted", k.KeyID)
	}
	if k.RetiredAt != nil && !t.Before(*k.RetiredAt) {
		return k.timeError(licensehub.ESIGINVALID, RuleKeyRetired, t,
			map[string]any{"retired_at": fmtTime(*k.RetiredAt)},
			"key %s was retired at %s; a signature claiming %s (at or after that) is not accepted",
			k.KeyID, fmtTime(*k.RetiredAt), fmtTime(t))
	}
	if k.State == StateRetired && k.RetiredAt == nil {
		return k.timeError(licensehub.ESIGINVALID, RuleKeyRetired, t, nil,
			"key %s is retired at an unknown time; no signature from it is accepted", k.KeyID)
	}
	if err := k.validityError(licensehub.ESIGINVALID, t); err != nil {
		return err
	}
	return nil
}

// CanSignAt reports whether this key may make a signature dated t: it must
// be active (no RetiredAt or CompromisedAt either) and t within
// [NotBefore, NotAfter]. Failures are *licensehub.Error with code
// EKEYNOTFOUND (no usable key) and Details["rule"] RuleKeyNotActive or
// RuleKeyOutsideValidity.
func (k KeyInfo) CanSignAt(t time.Time) error {
	switch {
	case k.State != StateActive:
		var since string
		switch {
		case k.State == StateRetired && k.RetiredAt != nil:
			since = " since " + fmtTime(*k.RetiredAt)
		case k.State == StateCompromised && k.CompromisedAt != nil:
			since = " since " + fmtTime(*k.CompromisedAt)
		}
		return k.timeError(licensehub.EKEYNOTFOUND, RuleKeyNotActive, t, map[string]any{"state": string(k.State)},
			"key %s of authority %s is %s%s and no longer signs", k.KeyID, k.Authority, k.State, since)
	case k.RetiredAt != nil || k.CompromisedAt != nil:
		return k.timeError(licensehub.EKEYNOTFOUND, RuleKeyNotActive, t, nil,
			"key %s of authority %s is marked active but has a retirement or compromise time; it does not sign",
			k.KeyID, k.Authority)
	}
	if err := k.validityError(licensehub.EKEYNOTFOUND, t); err != nil {
		return err
	}
	return nil
}

// validityError is the RuleKeyOutsideValidity error when t is outside
// [NotBefore, NotAfter], else nil.
func (k KeyInfo) validityError(code string, t time.Time) error {
	if !t.Before(k.NotBefore) && !t.After(k.NotAfter) {
		return nil
	}
	rel := "before"
	if t.After(k.NotAfter) {
		rel = "after"
	}
	return k.timeError(code, RuleKeyOutsideValidity, t,
		map[string]any{"not_before": fmtTime(k.NotBefore), "not_after": fmtTime(k.NotAfter)},
		"key %s is valid from %s to %s; %s is %s that", k.KeyID,
		fmtTime(k.NotBefore), fmtTime(k.NotAfter), fmtTime(t), rel)
}

// timeError builds the error of rule for the claimed time t.
func (k KeyInfo) timeError(code, rule string, t time.Time, details map[string]any, format string, args ...any) *licensehub.Error {
	d := map[string]any{"rule": rule, "kid": k.KeyID, "authority": k.Authority, "at": fmtTime(t)}
	for key, v := range details {
		d[key] = v
	}
	return &licensehub.Error{Code: code, Message: fmt.Sprintf(format, args...), Details: d}
}

// LogValue prints a key as its identity and life, without the public key
// point (which is long and says nothing to a reader of the log).
func (k KeyInfo) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("kid", k.KeyID),
		slog.String("authority", k.Authority),
		slog.String("state", string(k.State)),
		slog.Time("not_before", k.NotBefore),
		slog.Time("not_after", k.NotAfter),
	}
	if k.RetiredAt != nil {
		attrs = append(attrs, slog.Time("retired_at", *k.RetiredAt))
	}
	if k.CompromisedAt != nil {
		attrs = append(attrs, slog.Time("compromised_at", *k.CompromisedAt))
	}
	return slog.GroupValue(attrs...)
}

// clone returns a copy of k that shares nothing mutable with it: callers of
// Key and Keys must not be able to change the keyring's times through
// the RetiredAt and CompromisedAt pointers. (The *ecdsa.PublicKey is
// shared: nothing in the hub mutates a public key.)
func (k KeyInfo) clone() KeyInfo {
	if k.RetiredAt != nil {
		t := *k.RetiredAt
		k.RetiredAt = &t
	}
	if k.CompromisedAt != nil {
		t := *k.CompromisedAt
		k.CompromisedAt = &t
	}
	return k
}

// fmtTime formats times in messages and details.
func fmtTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// checkKeyFields checks the parts of a key description that need no key
// material: kid syntax, authority code, the validity interval and that
// state and its times agree. The keyring and ParseBundle share it. Fields
// are named as in keyring.yaml and the bundle's JSON.
func checkKeyFields(kid, authority string, notBefore, notAfter time.Time, state KeyState, retiredAt, compromisedAt *time.Time) []licensehub.Problem {
	var ps []licensehub.Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, licensehub.Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkKIDSyntax(kid); err != nil {
		add("kid", "%v", err)
	}
	if authority == "" {
		add("authority", "missing: the issuing authority's unified social credit code")
	} else if err := ident.ValidateCreditCode(authority); err != nil {
		add("authority", "%q is not a valid unified social credit code: %s", authority, licensehub.Message(err))
	}
	switch {
	case notBefore.IsZero():
		add("not_before", "missing: an RFC 3339 time such as 2025-01-01T00:00:00+08:00")
	case notAfter.IsZero():
		add("not_after", "missing: an RFC 3339 time such as 2025-01-01T00:00:00+08:00")
	case !notBefore.Before(notAfter):
		add("not_after", "%s is not after not_before %s", fmtTime(notAfter), fmtTime(notBefore))
	}
	switch state {
	case StateActive:
		if retiredAt != nil {
			add("retired_at", "set on an active key; an active key has no retirement time (set state: retired, or remove retired_at)")
		}
		if compromisedAt != nil {
			add("compromised_at", "set on an active key; set state: compromised as well")
		}
	case StateRetired:
		if retiredAt == nil {
			add("retired_at", "missing: a retired key needs the time from which its signatures are refused")
		}
		if compromisedAt != nil {
			add("compromised_at", "set on a retired key; a key with a compromise time must have state: compromised")
		}
	case StateCompromised:
		if compromisedAt == nil {
			add("compromised_at", "missing: a compromised key needs the time from which its signatures are refused")
		}
	case "":
		add("state", "missing: one of active, retired, compromised")
	default:
		add("state", "%q is not one of active, retired, compromised", state)
	}
	return ps
}

// checkKIDSyntax checks that kid looks like a key ID (32 lower-case hex
// digits). Whether it belongs to the key is checked against the key.
func checkKIDSyntax(kid string) error {
	if kid == "" {
		return errors.New("missing")
	}
	if !validKeyID(kid) {
		return fmt.Errorf("%q is not a key ID: want %d lower-case hex digits", kid, KeyIDLen)
	}
	return nil
}

// checkKeyID checks that kid is the key ID of pub.
func checkKeyID(kid string, pub *ecdsa.PublicKey) error {
	want, err := KeyID(pub)
	if err != nil {
		return err
	}
	if kid != want {
		return fmt.Errorf("kid %s does not match the key, whose key ID is %s", kid, want)
	}
	return nil
}

// errRule is Details["rule"] of the first *licensehub.Error in err's chain.
func errRule(err error) string {
	var e *licensehub.Error
	if !errors.As(err, &e) {
		return ""
	}
	r, _ := e.Details["rule"].(string)
	return r
}

// encodePublicKeyPEM writes pub as a PEM "PUBLIC KEY" block
// (SubjectPublicKeyInfo with the SM2 curve OID).
func encodePublicKeyPEM(pub *ecdsa.PublicKey) (string, error) {
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// decodePublicKeyPEM parses exactly one PEM "PUBLIC KEY" block holding an
// SM2 public key, with nothing but white space around it.
func decodePublicKeyPEM(data []byte) (*ecdsa.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("extra data after the PUBLIC KEY block")
	}
	key, err := smx509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, fmt.Errorf("not an SM2 public key (%T)", key)
	}
	return pub, nil
}

// decodeCertificatesPEM parses a PEM file of certificates: the key's own
// certificate first, then any intermediates. Anything else is refused.
func decodeCertificatesPEM(data []byte) ([]*smx509.Certificate, error) {
	var certs []*smx509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want \"CERTIFICATE\"", len(certs)+1, block.Type)
		}
		c, err := smx509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("extra data after the last CERTIFICATE block")
	}
	return certs, nil
}

// encodeCertificatesPEM writes certs as consecutive CERTIFICATE blocks.
func encodeCertificatesPEM(certs []*smx509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// checkLeafCertificate checks a key's own certificate against the key,
// without a chain: it certifies pub, it covers the key's whole validity
// [notBefore, notAfter] (a key must not sign after its certificate
// expired), and, when it restricts key usage, it allows signatures.
func checkLeafCertificate(leaf *smx509.Certificate, pub *ecdsa.PublicKey, notBefore, notAfter time.Time) error {
	certPub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(certPub) {
		return fmt.Errorf("certificate %q does not hold an SM2 public key", leaf.Subject.String())
	}
	if !certPub.Equal(pub) {
		id, _ := KeyID(certPub)
		return fmt.Errorf("certificate %q is for another key (key ID %s), not this one", leaf.Subject.String(), id)
	}
	if leaf.NotBefore.After(notBefore) || leaf.NotAfter.Before(notAfter) {
		return fmt.Errorf("certificate %q is valid from %s to %s, which does not cover the key's validity %s to %s",
			leaf.Subject.String(), fmtTime(leaf.NotBefore), fmtTime(leaf.NotAfter), fmtTime(notBefore), fmtTime(notAfter))
	}
	const signing = smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
	if leaf.KeyUsage != 0 && leaf.KeyUsage&signing == 0 {
		return fmt.Errorf("certificate %q allows neither digitalSignature nor contentCommitment (non-repudiation)", leaf.Subject.String())
	}
	return nil
}
