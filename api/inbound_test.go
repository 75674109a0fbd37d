package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

const (
	inboundProvince = "11430000006122000Q"
	inboundForeign  = "91350100M000100Y43"
)

func inboundRing(t *testing.T, authority string) *signing.Keyring {
	t.Helper()
	return testkeys.Current(t, authority)
}

func inboundEnvelope(t *testing.T, province, issuer *signing.Keyring, number string) string {
	t.Helper()
	now := time.Now().UTC()
	id, _ := ident.New("11100000000013338W011", inboundForeign, number, 1)
	body, _ := json.Marshal(license.License{Identifier: id.String(), Name: "营业执照", TypeCode: "11100000000013338W011",
		Number: number, Version: "001", Issuer: license.Party{Name: "福州市市场监督管理局", Code: inboundForeign},
		IssueDate: "2026-10-01", ValidFrom: "2026-10-01", ValidUntil: "2031-09-30", AreaCode: "350100",
		Holder: license.Holder{Name: "李四", Code: "11010519491231002X", CodeType: ident.HolderResidentID}})
	is, err := issuer.SignerFor(inboundForeign, now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := signing.Sign(t.Context(), is, body, now)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := d.Marshal()
	ps, err := province.SignerFor(inboundProvince, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := exchange.Seal(t.Context(), ps, &exchange.Event{Sender: inboundProvince, ID: id.String() + "/new",
		License: id.String(), Op: license.OpNew, Time: now.Format(signing.SignedAtLayout), Document: doc}, now)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestInboundEndpoint(t *testing.T) {
	kv, objects := newTestStores(t)
	lib, err := license.NewLibrary(license.Config{Objects: objects, KV: kv, Signers: inboundRing(t, "11430000006122244L"),
		Catalog: license.CatalogFunc(func(string) (license.Validator, bool) { return nil, false })})
	if err != nil {
		t.Fatal(err)
	}
	province, issuer := inboundRing(t, inboundProvince), inboundRing(t, inboundForeign)
	in, err := exchange.NewInbound(exchange.InboundConfig{Library: lib, Objects: objects, KV: kv,
		Keys: province.Export(), Province: inboundProvince})
	if err != nil {
		t.Fatal(err)
	}
	registry := provinceAndIssuer(t, "exchange.inbound, exchange.read", "license.create, license.change, license.read")
	trail := newTrail(t, kv)
	h := startWith(t, Options{Auth: auth.NewAuthenticator(registry, kv), Limiter: auth.NewLimiter(kv),
		Audit: trail, Inbound: in}, nil)

	good := inboundEnvelope(t, province, issuer, "FJ0001")
	forged := inboundEnvelope(t, inboundRing(t, inboundProvince), issuer, "FJ0002") // key not in the bundle
	good3 := inboundEnvelope(t, province, issuer, "FJ0003")
	batch := fmt.Sprintf(`{"envelopes":[%s,%s,%s]}`, good3, forged, good)

	type answer struct {
		Results  []exchange.Result `json:"results"`
		Rejected int               `json:"rejected"`
		Code     string            `json:"code"`
	}
	cases := []struct {
		name     string
		app      string
		body     string
		status   int
		code     string
		outcomes []string
	}{
		{"issuing department refused", "issuer", good, http.StatusForbidden, "", nil},
		{"unsigned request", "", good, http.StatusUnauthorized, "", nil},
		{"one envelope", "province", good, http.StatusOK, "", []string{exchange.OutcomeStored}},
		{"same envelope again", "province", good, http.StatusOK, "", []string{exchange.OutcomeDuplicate}},
		{"bad signature", "province", forged, http.StatusBadRequest, "SIGNATURE_INVALID", nil},
		{"batch with one bad envelope", "province", batch, http.StatusOK, "",
			[]string{exchange.OutcomeStored, exchange.OutcomeRejected, exchange.OutcomeDuplicate}},
		{"empty batch", "province", `{"envelopes":[]}`, http.StatusBadRequest, "INVALID_ARGUMENT", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := h.call(t, tc.app, http.MethodPost, "/v1/exchange/inbound", tc.body, time.Now(), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			var a answer
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			if tc.code != "" && a.Code != tc.code {
				t.Fatalf("code %q: %s", a.Code, b)
			}
			if tc.outcomes != nil {
				if len(a.Results) != len(tc.outcomes) {
					t.Fatalf("results: %s", b)
				}
				for i, o := range tc.outcomes {
					if a.Results[i].Outcome != o {
						t.Fatalf("result %d: %+v", i, a.Results[i])
					}
				}
			}
			if strings.Contains(tc.name, "batch with") && (a.Rejected != 1 || a.Results[1].Code != "SIGNATURE_INVALID") {
				t.Fatalf("batch: %s", b)
			}
		})
	}
	sums, err := lib.ByHolder(t.Context(), "11010519491231002X")
	if err != nil || len(sums) != 2 {
		t.Fatalf("foreign licenses stored: %+v %v", sums, err)
	}
}
