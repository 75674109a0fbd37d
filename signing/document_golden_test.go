package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing/jcs"
)

// go test ./signing -run Golden -update rewrites the golden documents
// (and creates the test key if it is missing; an existing key is kept).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/golden")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const goldenDir = "testdata/golden"

var (
	goldenKeyFile    = filepath.Join(goldenDir, "TEST-ONLY-sm2-key.pem")
	goldenPubKeyFile = filepath.Join(goldenDir, "TEST-ONLY-sm2-key.pub.pem")
	goldenSignedAt   = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
)

const goldenKeyPreface = `THIS IS A TEST KEY. It is public, committed to the repository, and signs
only the golden test documents of package signing. Never trust it.
`

// goldenBodies are the bodies of the golden documents, written loosely on
// purpose (whitespace, member order, escapes) so that signing has to
// canonicalise them.
var goldenBodies = []struct{ name, body string }{
	{"business-license", `{
	  "identifier": "1235010000000001230000001X",
	  "type_code": "11100000000000127F",
	  "type_name": "营业执照",
	  "issuer": {"name": "福州市市场监督管理局", "code": "11350100MB1234567X"},
	  "holder": {"name": "福州示范科技有限公司", "id_type": "统一社会信用代码", "id": "91350100MA8TEST01X"},
	  "issued_on": "2026-11-26",
	  "valid_from": "2026-11-26",
	  "valid_to": null,
	  "status": 1,
	  "data": {
	    "legal_representative": "张三",
	    "registered_capital_fen": 100000000,
	    "business_scope": "软件开发；信息技术咨询服务。（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
	    "address": "福建省福州市鼓楼区示范路1号"
	  }
	}`},
	{"food-permit", `{"type_name":"食品经营许可证","identifier":"1235010000000001240000002Y",
	  "holder":{"name":"鼓楼区\"好味道\"餐饮店","id":"92350102MA8TEST02Y"},
	  "data":{"categories":["热食类食品制售","冷食类食品制售","自制饮品制售"],"seats":48,
	  "inspected":true,"remarks":""},"status":1,"valid_to":"2031-11-25"}`},
	{"edge-cases", `{"z":"last","a":"first","quote\"d":"a \"quoted\" word","back\\slash":"C:\\licenses\\2026",
	  "slash":"\/path/to\/file","unicode":"\u4e2d\u6587 and 中文, emoji 😀 \ud83d\ude00, é, €, \u2028",
	  "max_safe":9007199254740991,"min_safe":-9007199254740991,"zero":0,"negative":-42,
	  "flags":[true,false,null],"nested":{"deep":{"deeper":{"list":[[],{},[1,[2,[3]]]]}}},"empty":{},"": "empty name"}`},
}

// goldenKey loads the committed test key, creating it under -update when
// it is missing.
func goldenKey(t testing.TB) (*sm2.PrivateKey, KeyInfo) {
	t.Helper()
	raw, err := os.ReadFile(goldenKeyFile)
	if errors.Is(err, os.ErrNotExist) && updatingGolden() {
		raw = writeGoldenKey(t)
	} else if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s: no PRIVATE KEY block", goldenKeyFile)
	}
	k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := k.(*sm2.PrivateKey)
	if !ok {
		t.Fatalf("%s holds a %T", goldenKeyFile, k)
	}
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return priv, KeyInfo{KeyID: kid, Authority: "11350100MB1234567X", Algorithm: Algorithm,
		PublicKey: &priv.PublicKey, State: StateActive,
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func writeGoldenKey(t testing.TB) []byte {
	priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(goldenKeyPreface), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenKeyFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return raw
}

func goldenPublicKeyPEM(t testing.TB, priv *sm2.PrivateKey) []byte {
	der, err := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// goldenDoc reads a golden document's stored bytes.
func goldenDoc(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, name+".json"))
	if err != nil {
		t.Fatalf("%v (run go test ./signing -run Golden -update)", err)
	}
	return raw
}

func TestGoldenDocuments(t *testing.T) {
	priv, info := goldenKey(t)
	keys := keyMap{info.KeyID: info}
	pubPEM := goldenPublicKeyPEM(t, priv)
	if updatingGolden() {
		if err := os.WriteFile(goldenPubKeyFile, pubPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(goldenPubKeyFile); err != nil || !bytes.Equal(got, pubPEM) {
		t.Errorf("%s is not the test key's public key (%v); run -update", goldenPubKeyFile, err)
	}

	for _, g := range goldenBodies {
		t.Run(g.name, func(t *testing.T) {
			jsonFile := filepath.Join(goldenDir, g.name+".json")
			signedFile := filepath.Join(goldenDir, g.name+".signed")
			if updatingGolden() {
				d, err := Sign(context.Background(), NewKeySigner(priv, info), []byte(g.body), goldenSignedAt)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := d.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				signed, err := d.SignedBytes()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(jsonFile, raw, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(signedFile, signed, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			raw := goldenDoc(t, g.name)
			d, err := ParseDocument(raw)
			if err != nil {
				t.Fatal(err)
			}
			// (a) it verifies, with the test key.
			used, err := VerifySignature(d, keys)
			if err != nil {
				t.Fatalf("golden document does not verify: %v", err)
			}
			if used.KeyID != info.KeyID {
				t.Errorf("verified with key %s, want %s", used.KeyID, info.KeyID)
			}
			// (b) its signed bytes are the golden ones, byte for byte.
			wantSigned, err := os.ReadFile(signedFile)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := d.SignedBytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(signed, wantSigned) {
				t.Errorf("signed bytes differ from %s:\n got %s\nwant %s", signedFile, signed, wantSigned)
			}
			// The stored form is canonical and stable.
			again, err := d.Marshal()
			if err != nil || !bytes.Equal(again, raw) {
				t.Errorf("Marshal does not reproduce %s: %v\n%s", jsonFile, err, again)
			}
			if canon, err := jcs.Canonicalize(raw); err != nil || !bytes.Equal(canon, raw) {
				t.Errorf("%s is not in canonical form: %v", jsonFile, err)
			}
			// The golden body is the one in this file.
			wantBody, err := jcs.Canonicalize([]byte(g.body))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Body, wantBody) {
				t.Errorf("golden body is out of date with the test source; run -update")
			}
			if at, err := d.SignedTime(); err != nil || !at.Equal(goldenSignedAt) {
				t.Errorf("SignedTime = %v, %v; want %v", at, err, goldenSignedAt)
			}
			if d.Signature.Alg != Algorithm || d.Signature.UserID != DefaultUserID || d.Signature.KeyID != info.KeyID {
				t.Errorf("signature block %+v", d.Signature)
			}
		})
	}
}

// TestGoldenTampered: variants of a golden document that must fail, each
// with the right rule.
func TestGoldenTampered(t *testing.T) {
	priv, info := goldenKey(t)
	_, otherInfo := newHubKey(t)
	keys := keyMap{info.KeyID: info, otherInfo.KeyID: otherInfo}
	raw := goldenDoc(t, "business-license")

	// parse returns a fresh copy of the golden document.
	parse := func(t *testing.T) *Document {
		d, err := ParseDocument(raw)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	sigBytes := func(t *testing.T, d *Document) []byte {
		b, err := base64.StdEncoding.DecodeString(d.Signature.Value)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	setSig := func(d *Document, b []byte) { d.Signature.Value = base64.StdEncoding.EncodeToString(b) }
	// resign signs d's current signed bytes with the given uid.
	resign := func(t *testing.T, d *Document, uid string) {
		msg, err := d.SignedBytes()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := sm2.SignASN1(rand.Reader, priv, msg, sm2.NewSM2SignerOption(true, []byte(uid)))
		if err != nil {
			t.Fatal(err)
		}
		setSig(d, sig)
	}

	cases := []struct {
		name   string
		tamper func(t *testing.T, d *Document)
		code   string
		rule   string
	}{
		{"untouched", func(*testing.T, *Document) {}, "", ""},
		{"body field changed", func(t *testing.T, d *Document) {
			d.Body = bytes.Replace(d.Body, []byte("张三"), []byte("李四"), 1)
		}, licensehub.ESIGINVALID, RuleMismatch},
		{"body number changed", func(t *testing.T, d *Document) {
			d.Body = bytes.Replace(d.Body, []byte("100000000"), []byte("900000000"), 1)
		}, licensehub.ESIGINVALID, RuleMismatch},
		{"signed_at changed", func(t *testing.T, d *Document) {
			d.Signature.SignedAt = "2026-11-26T08:00:01Z"
		}, licensehub.ESIGINVALID, RuleMismatch},
		{"bytes appended to the signature", func(t *testing.T, d *Document) {
			setSig(d, append(sigBytes(t, d), 0x00, 0x01))
		}, licensehub.ESIGINVALID, RuleTrailingBytes},
		{"raw r‖s signature", func(t *testing.T, d *Document) {
			var rs struct{ R, S *big.Int }
			if _, err := asn1.Unmarshal(sigBytes(t, d), &rs); err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, 64)
			rs.R.FillBytes(raw[:32])
			rs.S.FillBytes(raw[32:])
			setSig(d, raw)
		}, licensehub.ESIGINVALID, RuleNotDER},
		{"signed with user ID 1234567812345679", func(t *testing.T, d *Document) {
			resign(t, d, "1234567812345679")
		}, licensehub.ESIGINVALID, RuleMismatch},
		{"uid field 1234567812345679, signed with it", func(t *testing.T, d *Document) {
			d.Signature.UserID = "1234567812345679"
			resign(t, d, "1234567812345679")
		}, licensehub.ESIGINVALID, RuleUserID},
		{"kid of another known key", func(t *testing.T, d *Document) {
			d.Signature.KeyID = otherInfo.KeyID
		}, licensehub.ESIGINVALID, RuleMismatch},
		{"unknown kid", func(t *testing.T, d *Document) {
			d.Signature.KeyID = strings.Repeat("0", KeyIDLen)
		}, licensehub.EKEYNOTFOUND, ""},
		{"another algorithm", func(t *testing.T, d *Document) {
			d.Signature.Alg = "SM2-SHA256"
		}, licensehub.ESIGINVALID, RuleAlgorithm},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := parse(t)
			c.tamper(t, d)
			used, err := VerifySignature(d, keys)
			switch {
			case c.code == "":
				if err != nil {
					t.Fatal(err)
				}
			case c.rule != "":
				wantSigRule(t, err, c.rule)
				if used.KeyID != d.Signature.KeyID {
					t.Errorf("returned key %q, want the resolved key %q", used.KeyID, d.Signature.KeyID)
				}
			default:
				if !licensehub.IsCode(err, c.code) {
					t.Errorf("got %v, want %s", err, c.code)
				}
			}
			// The tampered document, stored and read back, fails the same way
			// (or is refused at parsing).
			stored, merr := d.Marshal()
			if merr != nil {
				return
			}
			d2, perr := ParseDocument(stored)
			if perr != nil {
				t.Fatalf("stored tampered document does not parse: %v", perr)
			}
			_, err2 := VerifySignature(d2, keys)
			if licensehub.ErrorCode(err2) != licensehub.ErrorCode(err) || sigRule(err2) != sigRule(err) {
				t.Errorf("after a round trip: %v, before: %v", err2, err)
			}
		})
	}
}
