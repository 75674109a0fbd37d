package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"io"
	"math/big"
	"sync"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/licensehub/licensehub"
)

// Rules named in the Details["rule"] of an ESIGINVALID error. Clients and
// the verifier's report match on these strings; never rename one.
const (
	RuleNotDER        = "not_der"        // the signature is not one DER SEQUENCE{INTEGER r, INTEGER s}
	RuleTrailingBytes = "trailing_bytes" // bytes follow the DER SEQUENCE
	RuleOutOfRange    = "out_of_range"   // r or s is not in [1, n-1]
	RuleMismatch      = "mismatch"       // well-formed, but not a signature of these bytes by this key
	RuleUserID        = "user_id"        // the document names a user ID other than DefaultUserID
	RuleAlgorithm     = "algorithm"      // the document or the key names an algorithm other than Algorithm
)

// KeyIDLen is the length of a key ID: hex of 16 bytes.
const KeyIDLen = 32

// GenerateKey makes a new SM2 key pair. A nil rand means crypto/rand.
func GenerateKey(rand io.Reader) (*sm2.PrivateKey, error) {
	priv, err := sm2.GenerateKey(randOrDefault(rand))
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "generate SM2 key")
	}
	return priv, nil
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// KeyID names a public key: the lower-case hex of the first 16 bytes of
// SM3 over its SubjectPublicKeyInfo DER, as smx509.MarshalPKIXPublicKey
// writes it (algorithm id-ecPublicKey, parameters the SM2 curve OID
// 1.2.156.10197.1.301, the uncompressed point). `openssl pkey -pubin
// -outform DER` writes the same bytes, so
//
//	openssl pkey -pubin -in pub.pem -outform DER | openssl dgst -sm3 -r | cut -c1-32
//
// computes it too.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	if err := checkSM2Key(pub); err != nil {
		return "", err
	}
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", licensehub.Wrap(err, licensehub.EINVALID, "encode SM2 public key")
	}
	sum := sm3.Sum(der)
	return hex.EncodeToString(sum[:KeyIDLen/2]), nil
}

// validKeyID reports whether s has the form of a key ID.
func validKeyID(s string) bool {
	if len(s) != KeyIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkSM2Key refuses what is not an SM2 public key with coordinates that
// fit the field (whether the point is on the curve, emmansun checks).
func checkSM2Key(pub *ecdsa.PublicKey) error {
	if pub == nil || pub.X == nil || pub.Y == nil || !sm2.IsSM2PublicKey(pub) ||
		pub.X.Sign() < 0 || pub.Y.Sign() < 0 || pub.X.BitLen() > 256 || pub.Y.BitLen() > 256 {
		return licensehub.Errorf(licensehub.EINVALID, "not an SM2 public key")
	}
	return nil
}

// SignMessage signs msg with SM2 over SM3 and DefaultUserID: the DER
// SEQUENCE{r, s} of the signature of e = SM3(Z_A ‖ msg). A nil rand means
// crypto/rand; emmansun/gmsm hedges the nonce with the key and message
// either way.
func SignMessage(rand io.Reader, priv *sm2.PrivateKey, msg []byte) ([]byte, error) {
	if priv == nil || checkSM2Key(&priv.PublicKey) != nil {
		return nil, licensehub.Errorf(licensehub.EINVALID, "not an SM2 private key")
	}
	var e [sm3.Size]byte
	digest(&e, &priv.PublicKey, msg)
	// nil options: e is the digest (sm2.DefaultSM2SignerOpts would hash
	// msg with Z_A again, recomputing Z_A every time).
	sig, err := sm2.SignASN1(randOrDefault(rand), priv, e[:], nil)
	if err != nil {
		return nil, licensehub.Wrap(err, licensehub.EINTERNAL, "SM2 sign")
	}
	return sig, nil
}

// VerifyMessage checks that sig is pub's SM2-with-SM3 signature of msg
// under DefaultUserID. It is strict about the encoding: sig must be exactly
// one DER SEQUENCE{INTEGER r, INTEGER s} with minimal encodings, nothing
// after it, and 0 < r, s < n. Raw r‖s (64 bytes) is not DER. Failures are
// ESIGINVALID with Details["rule"] one of RuleNotDER, RuleTrailingBytes,
// RuleOutOfRange, RuleMismatch; a nil or non-SM2 key is EINVALID.
func VerifyMessage(pub *ecdsa.PublicKey, msg, sig []byte) error {
	if err := checkSM2Key(pub); err != nil {
		return err
	}
	if rule := checkDER(sig); rule != "" {
		return sigError(rule)
	}
	var e [sm3.Size]byte
	digest(&e, pub, msg)
	if !sm2.VerifyASN1(pub, e[:], sig) {
		return sigError(RuleMismatch)
	}
	return nil
}

var ruleMessages = map[string]string{
	RuleNotDER:        "signature is not a DER SEQUENCE of two INTEGERs",
	RuleTrailingBytes: "bytes follow the DER signature",
	RuleOutOfRange:    "signature value r or s is outside [1, n-1]",
	RuleMismatch:      "signature does not match the signed bytes and key",
	RuleUserID:        "signature uses a user ID other than " + DefaultUserID,
	RuleAlgorithm:     "signature algorithm is not " + Algorithm,
}

func sigError(rule string) *licensehub.Error {
	return &licensehub.Error{Code: licensehub.ESIGINVALID, Message: ruleMessages[rule],
		Details: map[string]any{"rule": rule}}
}

// n is the order of the SM2 base point, big-endian.
var curveOrder = func() [32]byte {
	var n [32]byte
	sm2.P256().Params().N.FillBytes(n[:])
	return n
}()

// checkDER returns "" when sig is exactly one minimal DER
// SEQUENCE{INTEGER r, INTEGER s} with 0 < r, s < n, and the rule it breaks
// otherwise. The SEQUENCE's content is checked before what follows it, so
// that bytes which only happen to start like a SEQUENCE (raw r‖s) read as
// not_der, and a good signature with junk appended as trailing_bytes.
func checkDER(sig []byte) string {
	if len(sig) < 2 || sig[0] != 0x30 {
		return RuleNotDER
	}
	// The longest valid content is 2+33+2+33 = 70 bytes, so the length is
	// always in short form; a long form (even a minimal one) cannot hold
	// two in-range INTEGERs.
	n := int(sig[1])
	if n >= 0x80 || 2+n > len(sig) {
		return RuleNotDER
	}
	body := sig[2 : 2+n]
	r, body, ok := readInteger(body)
	if !ok {
		return RuleNotDER
	}
	s, body, ok := readInteger(body)
	if !ok || len(body) != 0 {
		return RuleNotDER
	}
	if !inRange(r) || !inRange(s) {
		return RuleOutOfRange
	}
	if 2+n != len(sig) {
		return RuleTrailingBytes
	}
	return ""
}

// readInteger reads one minimal DER INTEGER (short-form length) and
// returns its content octets.
func readInteger(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != 0x02 {
		return nil, nil, false
	}
	n := int(b[1])
	if n == 0 || n >= 0x80 || 2+n > len(b) {
		return nil, nil, false
	}
	v = b[2 : 2+n]
	// Minimal: no leading 0x00 unless the next byte has its top bit set,
	// no leading 0xFF when the next byte has it set.
	if n > 1 && (v[0] == 0x00 && v[1]&0x80 == 0 || v[0] == 0xff && v[1]&0x80 != 0) {
		return nil, nil, false
	}
	return v, b[2+n:], true
}

// inRange reports whether the DER INTEGER content v is in [1, n-1].
func inRange(v []byte) bool {
	if v[0]&0x80 != 0 { // negative
		return false
	}
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > len(curveOrder) {
		return false
	}
	if len(v) < len(curveOrder) {
		return true
	}
	for i := range v {
		if v[i] != curveOrder[i] {
			return v[i] < curveOrder[i]
		}
	}
	return false // v == n
}

// digest sets e = SM3(Z_A ‖ msg) for the default user ID, with Z_A from
// the cache.
func digest(e *[sm3.Size]byte, pub *ecdsa.PublicKey, msg []byte) {
	za := defaultZA(pub)
	h := sm3.New()
	h.Write(za[:])
	h.Write(msg)
	h.Sum(e[:0])
}

// Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) depends only on the
// public key once the user ID is fixed, and a verifier sees the same few
// authority keys over and over: cache it by the key's coordinates (not
// the pointer, which the GC may reuse). The cache is bounded; past the
// bound Z_A is computed each time.
var zaCache = struct {
	sync.RWMutex
	m map[[64]byte]*[sm3.Size]byte
}{m: make(map[[64]byte]*[sm3.Size]byte)}

const zaCacheMax = 1024

var defaultUID = []byte(DefaultUserID)

func defaultZA(pub *ecdsa.PublicKey) *[sm3.Size]byte {
	var k [64]byte
	pub.X.FillBytes(k[:32])
	pub.Y.FillBytes(k[32:])
	zaCache.RLock()
	za := zaCache.m[k]
	zaCache.RUnlock()
	if za != nil {
		return za
	}
	za = new([sm3.Size]byte)
	// CalculateZA fails only for IDs of 8 KiB or more.
	z, _ := sm2.CalculateZA(pub, defaultUID)
	copy(za[:], z)
	zaCache.Lock()
	if len(zaCache.m) < zaCacheMax {
		zaCache.m[k] = za
	}
	zaCache.Unlock()
	return za
}

// KeySigner is a Signer for an SM2 private key held in memory (the file
// keyring decrypts keys into one; an HSM or KMS has its own Signer).
type KeySigner struct {
	priv *sm2.PrivateKey
	info KeyInfo
	err  error // set when info does not describe priv; Sign returns it
}

// NewKeySigner wraps priv and its description. Blank fields of info that
// follow from the key are filled in (KeyID, Algorithm, PublicKey; the
// filled-in public key is a copy that does not keep priv reachable). If
// info contradicts the key (another key ID or public key, another
// algorithm) every Sign fails with EINTERNAL rather than produce documents
// that name the wrong key.
func NewKeySigner(priv *sm2.PrivateKey, info KeyInfo) *KeySigner {
	k := &KeySigner{priv: priv, info: info}
	if priv == nil || checkSM2Key(&priv.PublicKey) != nil {
		k.err = licensehub.Errorf(licensehub.EINTERNAL, "signer has no SM2 private key")
		return k
	}
	pub := &priv.PublicKey
	kid, err := KeyID(pub)
	if err != nil {
		k.err = licensehub.Wrap(err, licensehub.EINTERNAL, "signer key")
		return k
	}
	switch {
	case k.info.KeyID == "":
		k.info.KeyID = kid
	case k.info.KeyID != kid:
		k.err = licensehub.Errorf(licensehub.EINTERNAL, "signer key info names key %s, but the private key is %s", k.info.KeyID, kid)
	}
	switch {
	case k.info.PublicKey == nil:
		k.info.PublicKey = &ecdsa.PublicKey{Curve: pub.Curve, X: new(big.Int).Set(pub.X), Y: new(big.Int).Set(pub.Y)}
	case !k.info.PublicKey.Equal(pub):
		k.err = licensehub.Errorf(licensehub.EINTERNAL, "signer key info holds another public key than key %s", kid)
	}
	switch {
	case k.info.Algorithm == "":
		k.info.Algorithm = Algorithm
	case k.info.Algorithm != Algorithm:
		k.err = licensehub.Errorf(licensehub.EINTERNAL, "signer key %s has algorithm %q, not %s", kid, k.info.Algorithm, Algorithm)
	}
	return k
}

// Key describes the key that signs.
func (k *KeySigner) Key() KeyInfo { return k.info }

// Sign returns the DER SM2 signature of msg with DefaultUserID.
func (k *KeySigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return nil, licensehub.Wrap(err, licensehub.ETIMEOUT, "sign: context ended")
		}
	}
	if k.err != nil {
		return nil, k.err
	}
	return SignMessage(rand.Reader, k.priv, msg)
}
