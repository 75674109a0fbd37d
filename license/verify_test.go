package license

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/signing"
)

const (
	authorityA = "11430000006122244L"
	authorityB = "91350100M000100Y43"
	typeCode   = "11100000000013338W011"
)

var (
	now      = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	signedAt = now.Add(-24 * time.Hour)
)

type testKey struct {
	priv *sm2.PrivateKey
	info signing.KeyInfo
}

func newKey(t *testing.T, authority string, mutate func(*signing.KeyInfo)) testKey {
	t.Helper()
	priv, err := signing.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := signing.KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	info := signing.KeyInfo{KeyID: kid, Authority: authority, Algorithm: signing.Algorithm, PublicKey: &priv.PublicKey,
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(4, 0, 0), State: signing.StateActive}
	if mutate != nil {
		mutate(&info)
	}
	return testKey{priv, info}
}

func sampleLicense(t *testing.T) License {
	t.Helper()
	id, err := ident.New(typeCode, authorityA, "20230000403", 1)
	if err != nil {
		t.Fatal(err)
	}
	return License{
		Identifier: id.String(), Name: "营业执照", TypeCode: typeCode, TypeName: "营业执照", Number: "20230000403",
		Version: "001", Issuer: Party{Name: "湖南省市场监督管理局", Code: authorityA},
		IssueDate: "2023-03-01", ValidFrom: "2023-03-01", ValidUntil: LongTerm,
		Holder:   Holder{Name: "福州示范科技有限公司", Code: authorityB, CodeType: ident.HolderCreditCode},
		AreaCode: "430000", Fields: map[string]any{"legal_representative": "张三"},
	}
}

func sign(t *testing.T, k testKey, lic License, at time.Time) []byte {
	t.Helper()
	body, err := json.Marshal(lic)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := signing.Sign(context.Background(), signing.NewKeySigner(k.priv, k.info), body, at)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// resign replaces the signature value of raw with sig(signed bytes).
func resign(t *testing.T, raw []byte, sig func(msg []byte) []byte) []byte {
	t.Helper()
	doc, err := signing.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := doc.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	doc.Signature.Value = base64.StdEncoding.EncodeToString(sig(msg))
	out, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type fixedStatus struct {
	st  Status
	err error
}

func (f fixedStatus) Status(context.Context, string) (Status, error) { return f.st, f.err }

func TestVerify(t *testing.T) {
	good := newKey(t, authorityA, nil)
	otherAuthority := newKey(t, authorityB, nil)
	compromised := newKey(t, authorityA, func(k *signing.KeyInfo) {
		k.State = signing.StateCompromised
		at := signedAt.Add(-time.Hour)
		k.CompromisedAt = &at
	})
	compromisedLater := newKey(t, authorityA, func(k *signing.KeyInfo) {
		k.State = signing.StateCompromised
		at := signedAt.Add(time.Hour)
		k.CompromisedAt = &at
	})
	retired := newKey(t, authorityA, func(k *signing.KeyInfo) {
		k.State = signing.StateRetired
		at := signedAt.Add(-time.Minute)
		k.RetiredAt = &at
	})
	unknown := newKey(t, authorityA, nil)
	keys := signing.Bundle{KeyInfos: []signing.KeyInfo{good.info, otherAuthority.info, compromised.info, compromisedLater.info, retired.info}}

	lic := sampleLicense(t)
	valid := sign(t, good, lic, signedAt)

	wrongCheck := lic
	wrongCheck.Identifier = lic.Identifier[:len(lic.Identifier)-1] + "X"
	expired := lic
	expired.ValidUntil = "2025-12-31"
	notYet := lic
	notYet.ValidFrom = "2027-01-01"

	tests := []struct {
		name        string
		raw         []byte
		status      StatusSource
		wantVerdict string
		wantStatus  string
		failed      map[string]string // check -> rule
	}{
		{"valid, no library", valid, nil, VerdictIndeterminate, "unknown", nil},
		{"valid in library", valid, fixedStatus{st: StatusValid}, VerdictValid, "valid", nil},
		{"revoked in library", valid, fixedStatus{st: StatusRevoked}, VerdictInvalid, "revoked", map[string]string{"status": "revoked"}},
		{"not in library is unknown, not revoked", valid, fixedStatus{st: StatusUnknown}, VerdictIndeterminate, "unknown", nil},
		{"library unreachable is unknown", valid, fixedStatus{err: errors.New("redis down")}, VerdictIndeterminate, "unknown", nil},
		{"changed field", []byte(strings.Replace(string(valid), "张三", "李四", 1)), nil, VerdictInvalid, "unknown",
			map[string]string{"signature": "mismatch"}},
		{"bytes appended to signature", resign(t, valid, func(msg []byte) []byte {
			sig, _ := signing.SignMessage(rand.Reader, good.priv, msg)
			return append(sig, 0x00)
		}), nil, VerdictInvalid, "unknown", map[string]string{"signature": "trailing_bytes"}},
		{"raw r||s signature", resign(t, valid, func(msg []byte) []byte {
			r, s, err := sm2.SignWithSM2(rand.Reader, &good.priv.PrivateKey, []byte(signing.DefaultUserID), msg)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, 64)
			r.FillBytes(out[:32])
			s.FillBytes(out[32:])
			return out
		}), nil, VerdictInvalid, "unknown", map[string]string{"signature": "not_der"}},
		{"another user ID", resign(t, valid, func(msg []byte) []byte {
			sig, err := good.priv.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, []byte("1234567812345679")))
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}), nil, VerdictInvalid, "unknown", map[string]string{"signature": "mismatch"}},
		{"unknown key", sign(t, unknown, lic, signedAt), nil, VerdictInvalid, "unknown", map[string]string{"key": "key_unknown"}},
		{"key compromised before signing", sign(t, compromised, lic, signedAt), nil, VerdictInvalid, "unknown",
			map[string]string{"key": signing.RuleKeyCompromised}},
		{"key compromised after signing", sign(t, compromisedLater, lic, signedAt), nil, VerdictIndeterminate, "unknown", nil},
		{"retired key used after retirement", sign(t, retired, lic, signedAt), nil, VerdictInvalid, "unknown",
			map[string]string{"key": signing.RuleKeyRetired}},
		{"key used outside its validity", sign(t, good, lic, now.AddDate(-2, 0, 0)), nil, VerdictInvalid, "unknown",
			map[string]string{"key": signing.RuleKeyOutsideValidity}},
		{"another authority's key", sign(t, otherAuthority, lic, signedAt), nil, VerdictInvalid, "unknown",
			map[string]string{"authority": "authority_mismatch"}},
		{"wrong identifier check character", sign(t, good, wrongCheck, signedAt), nil, VerdictInvalid, "unknown",
			map[string]string{"identifier": ident.RuleCheckCharacter}},
		{"expired license", sign(t, good, expired, signedAt), nil, VerdictInvalid, "unknown", map[string]string{"validity": "expired"}},
		{"not yet valid", sign(t, good, notYet, signedAt), nil, VerdictInvalid, "unknown", map[string]string{"validity": "not_yet_valid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Keys: keys, Status: tt.status, Now: func() time.Time { return now }}
			vd, err := v.Verify(context.Background(), tt.raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if vd.Verdict != tt.wantVerdict || vd.Status != tt.wantStatus {
				t.Errorf("verdict %s status %s, want %s %s; checks %+v", vd.Verdict, vd.Status, tt.wantVerdict, tt.wantStatus, vd.Checks)
			}
			if len(vd.Checks) != 6 {
				t.Errorf("%d checks, want all 6 reported: %+v", len(vd.Checks), vd.Checks)
			}
			for _, c := range vd.Checks {
				wantRule, shouldFail := tt.failed[c.Name]
				if shouldFail && (c.Result != Fail || c.Rule != wantRule) {
					t.Errorf("check %s: %s/%s, want fail/%s (%s)", c.Name, c.Result, c.Rule, wantRule, c.Detail)
				}
				if !shouldFail && c.Result == Fail {
					t.Errorf("check %s failed unexpectedly: %s %s", c.Name, c.Rule, c.Detail)
				}
			}
		})
	}
}

func TestVerifyMalformedIsAnErrorNotAVerdict(t *testing.T) {
	v := &Verifier{Keys: signing.Bundle{}}
	for _, raw := range []string{``, `{`, `[]`, `{"body":{},"signature":{}}`, `{"body":"x","signature":{"alg":"SM2-SM3"}}`} {
		vd, err := v.Verify(context.Background(), []byte(raw))
		if vd != nil || !licensehub.IsCode(err, licensehub.EMALFORMED) {
			t.Errorf("Verify(%q) = %+v, %v; want EMALFORMED", raw, vd, err)
		}
	}
}

// FuzzVerify: no input makes the verifier panic, and every input either is
// rejected as malformed or gets a complete verdict.
func FuzzVerify(f *testing.F) {
	k := testKey{}
	priv, err := signing.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	kid, _ := signing.KeyID(&priv.PublicKey)
	k.priv = priv
	k.info = signing.KeyInfo{KeyID: kid, Authority: authorityA, Algorithm: signing.Algorithm, PublicKey: &priv.PublicKey,
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(4, 0, 0), State: signing.StateActive}
	body, _ := json.Marshal(License{Identifier: "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
		Issuer: Party{Code: authorityA}, ValidFrom: "2023-01-01", ValidUntil: LongTerm})
	doc, err := signing.Sign(context.Background(), signing.NewKeySigner(priv, k.info), body, signedAt)
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := doc.Marshal()
	f.Add(raw)
	f.Add([]byte(`{"body":{},"signature":{"alg":"SM2-SM3","kid":"00","uid":"1234567812345678","signed_at":"2026-01-01T00:00:00Z","value":"AA=="}}`))
	v := &Verifier{Keys: signing.Bundle{KeyInfos: []signing.KeyInfo{k.info}}, Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, raw []byte) {
		vd, err := v.Verify(context.Background(), raw)
		if err != nil {
			if !licensehub.IsCode(err, licensehub.EMALFORMED) {
				t.Fatalf("error is not EMALFORMED: %v", err)
			}
			return
		}
		if len(vd.Checks) != 6 || vd.Verdict == "" {
			t.Fatalf("incomplete verdict: %+v", vd)
		}
	})
}
