package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"sort"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/licensehub/licensehub"
)

// sigRule returns the Details["rule"] of err's *licensehub.Error, or "".
func sigRule(err error) string {
	var e *licensehub.Error
	if errors.As(err, &e) {
		if r, ok := e.Details["rule"].(string); ok {
			return r
		}
	}
	return ""
}

// wantSigRule fails unless err is ESIGINVALID with the given rule.
func wantSigRule(t *testing.T, err error, rule string) {
	t.Helper()
	if !licensehub.IsCode(err, licensehub.ESIGINVALID) || sigRule(err) != rule {
		t.Errorf("got %v (rule %q), want %s with rule %q", err, sigRule(err), licensehub.ESIGINVALID, rule)
	}
}

// keyMap is a map-backed KeySource.
type keyMap map[string]KeyInfo

func (m keyMap) Key(kid string) (KeyInfo, error) {
	k, ok := m[kid]
	if !ok {
		return KeyInfo{}, licensehub.FieldError(licensehub.EKEYNOTFOUND, "signature.kid", "no key %s", kid)
	}
	return k, nil
}

func (m keyMap) Keys() []KeyInfo {
	var ks []KeyInfo
	for _, k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].KeyID < ks[j].KeyID })
	return ks
}

// newHubKey makes a fresh key with its KeyInfo.
func newHubKey(t testing.TB) (*sm2.PrivateKey, KeyInfo) {
	t.Helper()
	priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return priv, KeyInfo{KeyID: kid, Authority: "11350100MB0000000X", Algorithm: Algorithm,
		PublicKey: &priv.PublicKey, State: StateActive}
}

func TestKeyID(t *testing.T) {
	priv, _ := newHubKey(t)
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sm3.Sum(der)
	if want := hex.EncodeToString(sum[:16]); kid != want || !validKeyID(kid) {
		t.Errorf("KeyID = %s, want %s", kid, want)
	}
	// The SPKI is id-ecPublicKey with the SM2 curve as parameter.
	var spki struct {
		Algo struct {
			Algorithm asn1.ObjectIdentifier
			Curve     asn1.ObjectIdentifier
		}
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		t.Fatal(err)
	}
	if spki.Algo.Algorithm.String() != "1.2.840.10045.2.1" || spki.Algo.Curve.String() != "1.2.156.10197.1.301" {
		t.Errorf("SPKI algorithm %v, curve %v", spki.Algo.Algorithm, spki.Algo.Curve)
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 300)
	for _, bad := range []*ecdsa.PublicKey{nil, {}, {Curve: sm2.P256()},
		{Curve: sm2.P256(), X: huge, Y: big.NewInt(1)}, {Curve: sm2.P256(), X: big.NewInt(-1), Y: big.NewInt(1)},
		{Curve: elliptic.P256(), X: priv.X, Y: priv.Y}} {
		if _, err := KeyID(bad); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("KeyID(%v): %v", bad, err)
		}
		if err := VerifyMessage(bad, []byte("m"), []byte{0x30, 0x06, 2, 1, 1, 2, 1, 1}); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("VerifyMessage(%v): %v", bad, err)
		}
	}
	// A point off the curve is a mismatch, not a panic.
	off := &ecdsa.PublicKey{Curve: sm2.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	sig, _ := SignMessage(rand.Reader, priv, []byte("m"))
	wantSigRule(t, VerifyMessage(off, []byte("m"), sig), RuleMismatch)
}

func TestSignVerifyMessage(t *testing.T) {
	priv, _ := newHubKey(t)
	other, _ := newHubKey(t)
	msg := []byte(`{"body":{"name":"测试"}}`)
	sig, err := SignMessage(rand.Reader, priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMessage(&priv.PublicKey, msg, sig); err != nil {
		t.Fatal(err)
	}
	// emmansun's own API agrees, with the default user ID.
	if !sm2.VerifyASN1WithSM2(&priv.PublicKey, nil, msg, sig) {
		t.Error("emmansun VerifyASN1WithSM2 rejects SignMessage's signature")
	}
	ref, err := sm2.SignASN1(rand.Reader, priv, msg, sm2.DefaultSM2SignerOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMessage(&priv.PublicKey, msg, ref); err != nil {
		t.Errorf("emmansun DefaultSM2SignerOpts signature: %v", err)
	}
	wantSigRule(t, VerifyMessage(&priv.PublicKey, append(msg, ' '), sig), RuleMismatch)
	wantSigRule(t, VerifyMessage(&other.PublicKey, msg, sig), RuleMismatch)
	otherUID, err := sm2.SignASN1(rand.Reader, priv, msg, sm2.NewSM2SignerOption(true, []byte("1234567812345679")))
	if err != nil {
		t.Fatal(err)
	}
	wantSigRule(t, VerifyMessage(&priv.PublicKey, msg, otherUID), RuleMismatch)
	// nil rand means crypto/rand.
	if sig, err := SignMessage(nil, priv, msg); err != nil || VerifyMessage(&priv.PublicKey, msg, sig) != nil {
		t.Errorf("SignMessage(nil rand): %v", err)
	}
	if _, err := SignMessage(rand.Reader, nil, msg); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("SignMessage(nil key): %v", err)
	}
	if err := VerifyMessage(nil, msg, sig); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("VerifyMessage(nil key): %v", err)
	}
}

// derSig encodes r and s as DER the way a careful encoder would.
func derSig(t testing.TB, r, s *big.Int) []byte {
	t.Helper()
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyMessageStrictDER(t *testing.T) {
	priv, _ := newHubKey(t)
	msg := []byte("license")
	sig, err := SignMessage(rand.Reader, priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
		t.Fatal(err)
	}
	n := sm2.P256().Params().N
	raw := make([]byte, 64)
	rs.R.FillBytes(raw[:32])
	rs.S.FillBytes(raw[32:])
	// r with a superfluous leading zero byte.
	padded := func() []byte {
		rb := append([]byte{0}, rs.R.Bytes()...)
		if rb[1]&0x80 != 0 { // already needs one: add another
			rb = append([]byte{0}, rb...)
		}
		sb := asn1Int(rs.S)
		body := append(append([]byte{0x02, byte(len(rb))}, rb...), sb...)
		return append([]byte{0x30, byte(len(body))}, body...)
	}()
	longLen := append([]byte{0x30, 0x81, sig[1]}, sig[2:]...)
	cases := []struct {
		name string
		sig  []byte
		rule string
	}{
		{"valid", sig, ""},
		{"empty", nil, RuleNotDER},
		{"raw r‖s", raw, RuleNotDER},
		{"trailing zero", append(bytes.Clone(sig), 0), RuleTrailingBytes},
		{"trailing junk", append(bytes.Clone(sig), "junk"...), RuleTrailingBytes},
		{"a second signature", append(bytes.Clone(sig), sig...), RuleTrailingBytes},
		{"truncated", sig[:len(sig)-1], RuleNotDER},
		{"header only", sig[:2], RuleNotDER},
		{"SET not SEQUENCE", append([]byte{0x31}, sig[1:]...), RuleNotDER},
		{"long-form length", longLen, RuleNotDER},
		{"non-minimal r", padded, RuleNotDER},
		{"three integers", wrapSeq(append(append(asn1Int(rs.R), asn1Int(rs.S)...), asn1Int(big.NewInt(1))...)), RuleNotDER},
		{"one integer", wrapSeq(asn1Int(rs.R)), RuleNotDER},
		{"r = 0", derSig(t, big.NewInt(0), rs.S), RuleOutOfRange},
		{"s = 0", derSig(t, rs.R, big.NewInt(0)), RuleOutOfRange},
		{"r = n", derSig(t, n, rs.S), RuleOutOfRange},
		{"s = n", derSig(t, rs.R, n), RuleOutOfRange},
		{"r = n + r", derSig(t, new(big.Int).Add(n, rs.R), rs.S), RuleOutOfRange},
		{"r negative", derSig(t, new(big.Int).Neg(rs.R), rs.S), RuleOutOfRange},
		{"r = n - 1", derSig(t, new(big.Int).Sub(n, big.NewInt(1)), rs.S), RuleMismatch},
		{"r and s swapped", derSig(t, rs.S, rs.R), RuleMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyMessage(&priv.PublicKey, msg, c.sig)
			if c.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantSigRule(t, err, c.rule)
		})
	}
}

func asn1Int(n *big.Int) []byte {
	b, _ := asn1.Marshal(n)
	return b
}

func wrapSeq(body []byte) []byte {
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestZACache(t *testing.T) {
	priv, _ := newHubKey(t)
	want, err := sm2.CalculateZA(&priv.PublicKey, []byte(DefaultUserID))
	if err != nil {
		t.Fatal(err)
	}
	// Same coordinates through another pointer hit the same entry.
	cp := &ecdsa.PublicKey{Curve: priv.Curve, X: new(big.Int).Set(priv.X), Y: new(big.Int).Set(priv.Y)}
	for _, pub := range []*ecdsa.PublicKey{&priv.PublicKey, &priv.PublicKey, cp} {
		if got := defaultZA(pub); !bytes.Equal(got[:], want) {
			t.Fatalf("Z_A %x, want %x", got, want)
		}
	}
}

func TestKeySigner(t *testing.T) {
	priv, info := newHubKey(t)
	other, otherInfo := newHubKey(t)
	ctx := context.Background()

	s := NewKeySigner(priv, KeyInfo{Authority: "A"})
	got := s.Key()
	if got.KeyID != info.KeyID || got.Algorithm != Algorithm || !got.PublicKey.Equal(&priv.PublicKey) || got.Authority != "A" {
		t.Errorf("filled KeyInfo = %+v", got)
	}
	sig, err := s.Sign(ctx, []byte("m"))
	if err != nil || VerifyMessage(&priv.PublicKey, []byte("m"), sig) != nil {
		t.Fatalf("Sign: %v", err)
	}

	for name, bad := range map[string]KeyInfo{
		"other kid":        {KeyID: otherInfo.KeyID},
		"other public key": {PublicKey: &other.PublicKey},
		"other algorithm":  {Algorithm: "SM2-SHA256"},
	} {
		if _, err := NewKeySigner(priv, bad).Sign(ctx, []byte("m")); !licensehub.IsCode(err, licensehub.EINTERNAL) {
			t.Errorf("%s: Sign = %v, want EINTERNAL", name, err)
		}
	}
	if _, err := NewKeySigner(nil, info).Sign(ctx, []byte("m")); !licensehub.IsCode(err, licensehub.EINTERNAL) {
		t.Errorf("nil key: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Sign(cancelled, []byte("m")); !licensehub.IsCode(err, licensehub.ETIMEOUT) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	var _ Signer = s
}

// FuzzVerifyMessage: arbitrary signature bytes never panic, and whatever
// VerifyMessage accepts is a signature emmansun accepts too.
func FuzzVerifyMessage(f *testing.F) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	msg := []byte("fuzz")
	sig, _ := SignMessage(rand.Reader, priv, msg)
	f.Add(sig)
	f.Add(append(bytes.Clone(sig), 0))
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, sig []byte) {
		err := VerifyMessage(&priv.PublicKey, msg, sig)
		if err == nil {
			if !sm2.VerifyASN1WithSM2(&priv.PublicKey, nil, msg, sig) {
				t.Fatalf("accepted %x, which emmansun rejects", sig)
			}
			return
		}
		if !licensehub.IsCode(err, licensehub.ESIGINVALID) || sigRule(err) == "" {
			t.Fatalf("error without a rule: %v", err)
		}
	})
}
