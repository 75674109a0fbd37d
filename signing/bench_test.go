package signing

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"github.com/licensehub/licensehub/signing/jcs"
)

// Benchmarks follow scripts/bench.sh's convention: in each family the
// sub-benchmark "hub" is the hub's figure and its siblings are baselines
// measured in the same run over the same bytes.
//
//	go test -run '^$' -bench . -benchtime 2s ./signing/

// benchBody is a license-like body of about 2 KB (canonical), written
// loosely (indented, members out of order) as a department would send it.
func benchBody(tb testing.TB) json.RawMessage {
	scope := []string{}
	for i := 1; i <= 22; i++ {
		scope = append(scope, fmt.Sprintf("经营项目%02d：软件开发、信息技术咨询服务", i))
	}
	body := map[string]any{
		"identifier": "1235010000000001230000001X",
		"type_code":  "11100000000000127F",
		"type_name":  "营业执照",
		"issuer":     map[string]any{"name": "福州市市场监督管理局", "code": "11350100MB1234567X"},
		"holder": map[string]any{"name": "福州示范科技有限公司", "id_type": "统一社会信用代码",
			"id": "91350100MA8TEST01X", "address": "福建省福州市鼓楼区示范路1号示范大厦12层"},
		"issued_on": "2026-11-26", "valid_from": "2026-11-26", "valid_to": nil, "status": 1,
		"data": map[string]any{
			"legal_representative":   "张三",
			"registered_capital_fen": 100000000,
			"established":            "2023-03-01",
			"business_scope":         scope,
			"shareholders": []any{
				map[string]any{"name": "张三", "share_pct": 60, "paid": true},
				map[string]any{"name": "李四", "share_pct": 40, "paid": false},
			},
			"remarks": "依法须经批准的项目，经相关部门批准后方可开展经营活动",
		},
	}
	b, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	canon, err := jcs.Canonicalize(b)
	if err != nil {
		tb.Fatal(err)
	}
	if n := len(canon); n < 1900 || n > 2200 {
		tb.Fatalf("bench body is %d bytes canonical, want about 2 KB", n)
	}
	return b
}

type benchSetup struct {
	priv   *sm2.PrivateKey
	info   KeyInfo
	keys   keyMap
	body   json.RawMessage
	doc    *Document // parsed from its stored form
	signed []byte    // doc's signed bytes
	sig    []byte    // doc's DER signature
}

func newBenchSetup(b *testing.B) *benchSetup {
	priv, info := newHubKey(b)
	s := &benchSetup{priv: priv, info: info, keys: keyMap{info.KeyID: info}, body: benchBody(b)}
	d, err := Sign(context.Background(), NewKeySigner(priv, info), s.body, goldenSignedAt)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := d.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	if s.doc, err = ParseDocument(raw); err != nil {
		b.Fatal(err)
	}
	if s.signed, err = s.doc.SignedBytes(); err != nil {
		b.Fatal(err)
	}
	if s.sig, err = base64.StdEncoding.DecodeString(s.doc.Signature.Value); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkSign(b *testing.B) {
	s := newBenchSetup(b)
	ctx := context.Background()
	b.Run("hub", func(b *testing.B) {
		signer := NewKeySigner(s.priv, s.info)
		b.SetBytes(int64(len(s.signed)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Sign(ctx, signer, s.body, goldenSignedAt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("emmansun", func(b *testing.B) {
		b.SetBytes(int64(len(s.signed)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sm2.SignASN1(rand.Reader, s.priv, s.signed, sm2.DefaultSM2SignerOpts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tjfoc", func(b *testing.B) {
		priv := tjfocPrivate(s.priv)
		b.SetBytes(int64(len(s.signed)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := priv.Sign(rand.Reader, s.signed, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s := newBenchSetup(b)
	b.Run("hub", func(b *testing.B) {
		b.SetBytes(int64(len(s.signed)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := VerifySignature(s.doc, s.keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("emmansun", func(b *testing.B) {
		b.SetBytes(int64(len(s.signed)))
		b.ReportAllocs()
		for b.Loop() {
			if !sm2.VerifyASN1WithSM2(&s.priv.PublicKey, nil, s.signed, s.sig) {
				b.Fatal("emmansun rejects")
			}
		}
	})
	b.Run("tjfoc", func(b *testing.B) {
		pub := tjfocPublic(s.priv)
		b.SetBytes(int64(len(s.signed)))
		b.ReportAllocs()
		for b.Loop() {
			if !pub.Verify(s.signed, s.sig) {
				b.Fatal("tjfoc rejects")
			}
		}
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	body := benchBody(b)
	b.Run("hub", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		buf := make([]byte, 0, len(body))
		for b.Loop() {
			var err error
			if buf, err = jcs.Append(buf[:0], body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDigest isolates e = SM3(Z_A ‖ M) over the 2 KB signed bytes:
// the hub takes Z_A from its per-key cache, emmansun's CalculateSM2Hash
// computes it every time.
func BenchmarkDigest(b *testing.B) {
	s := newBenchSetup(b)
	pub := &s.priv.PublicKey
	b.Run("hub", func(b *testing.B) {
		var e [32]byte
		b.ReportAllocs()
		for b.Loop() {
			digest(&e, pub, s.signed)
		}
	})
	b.Run("emmansun", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sm2.CalculateSM2Hash(pub, s.signed, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
