package license

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/signing"
)

// provinceCode is the provincial platform's authority code in these tests.
const provinceCode = "11430000006122000Q"

func keyringFor(t testing.TB, authority string) *signing.Keyring { return testkeys.Fixed(t, authority) }

// foreignKit signs foreign licenses (authorityB, an authority elsewhere in
// the province) and province envelopes.
type foreignKit struct {
	issuer   *signing.Keyring
	province *signing.Keyring
}

func newForeignKit(t testing.TB) *foreignKit {
	return &foreignKit{issuer: keyringFor(t, authorityB), province: keyringFor(t, provinceCode)}
}

func foreignLicense(number string, version int) License {
	id, err := ident.New(typeCode, authorityB, serialOf(number), version)
	if err != nil {
		panic(err)
	}
	lic := License{Identifier: id.String(), Name: "营业执照", TypeCode: typeCode, TypeName: "营业执照",
		Number: number, Version: fmt.Sprintf("%03d", version), Issuer: Party{Name: "福州市市场监督管理局", Code: authorityB},
		IssueDate: "2026-10-01", ValidFrom: "2026-10-01", ValidUntil: "2031-09-30",
		Holder:   Holder{Name: "长沙示范贸易有限公司", Code: holderResident, CodeType: ident.HolderResidentID},
		AreaCode: "350100", Fields: map[string]any{"legal_representative": "李四"}}
	if version > 1 {
		prev, _ := ident.New(typeCode, authorityB, serialOf(number), version-1)
		lic.Previous = prev.String()
	}
	return lic
}

func signBody(t testing.TB, ring *signing.Keyring, authority string, body any) []byte {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ring.SignerFor(authority, libNow)
	if err != nil {
		t.Fatal(err)
	}
	d, err := signing.Sign(ctxT(t), signer, raw, libNow)
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (k *foreignKit) doc(t testing.TB, lic License) []byte {
	return signBody(t, k.issuer, authorityB, lic)
}

type fchange struct {
	seq      int
	op       string
	from, to Status
}

// envelope is a province status change event (exchange.Event's shape).
func (k *foreignKit) envelope(t testing.TB, id string, c fchange) []byte {
	return signBody(t, k.province, provinceCode, map[string]any{
		"type": foreignEventType, "sender": provinceCode, "event_id": fmt.Sprintf("%s/%s/%d", id, c.op, c.seq),
		"license": id, "seq": c.seq, "op": c.op, "time": libNow.Add(time.Duration(c.seq) * time.Minute).Format(signing.SignedAtLayout),
		"status": map[string]any{"from": c.from, "to": c.to},
	})
}

func (k *foreignKit) apply(t testing.TB, lib *Library, id string, c fchange) (string, error) {
	return lib.ApplyForeignStatus(ctxT(t), id, c.seq, ForeignStatus{Op: c.op, From: c.from, To: c.to,
		At: libNow.Format(signing.SignedAtLayout)}, k.envelope(t, id, c))
}

func provenance(id string) Provenance {
	return Provenance{Kind: ProvenanceProvince, Source: provinceCode, EventID: id + "/new"}
}

func mustImport(t testing.TB, lib *Library, doc []byte, id string) *PushResult {
	t.Helper()
	res, err := lib.Import(ctxT(t), doc, provenance(id), "")
	if err != nil {
		t.Fatalf("import %s: %v", id, err)
	}
	return res
}

func outboxLen(t testing.TB, kv licensehub.KV) int64 {
	n, err := kv.XLen(ctxT(t), OutboxStream)
	if err != nil && !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatal(err)
	}
	return n
}

func TestImportForeign(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		k := newForeignKit(t)
		lic := foreignLicense("FJ-2026-0001", 1)
		doc := k.doc(t, lic)

		res := mustImport(t, f.lib, doc, lic.Identifier)
		if !res.Created || res.Identifier != lic.Identifier {
			t.Fatalf("import: %+v", res)
		}
		again := mustImport(t, f.lib, doc, lic.Identifier)
		if again.Created || string(again.Document) != string(res.Document) {
			t.Fatalf("re-import of the same bytes: created=%v", again.Created)
		}

		rec, err := f.lib.Get(ctxT(t), lic.Identifier)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Provenance == nil || rec.Provenance.Kind != ProvenanceProvince || rec.Provenance.Source != provinceCode ||
			rec.Provenance.EventID != lic.Identifier+"/new" {
			t.Fatalf("provenance = %+v", rec.Provenance)
		}
		if rec.Status != StatusValid || rec.License.Holder.Code != holderResident {
			t.Fatalf("record = %+v", rec)
		}
		// The foreign authority's signature is kept as is.
		d, err := signing.ParseDocument(rec.Document)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signing.VerifySignature(d, k.issuer); err != nil {
			t.Fatalf("stored document does not verify against its authority: %v", err)
		}

		sums, err := f.lib.ByHolder(ctxT(t), holderResident)
		if err != nil {
			t.Fatal(err)
		}
		if len(sums) != 1 || sums[0].Identifier != lic.Identifier || sums[0].Status != StatusValid {
			t.Fatalf("ByHolder = %+v", sums)
		}
		if st, _ := f.lib.Status(ctxT(t), lic.Identifier); st != StatusValid {
			t.Fatalf("Status = %s", st)
		}

		// The index is rebuilt without an outbound event.
		if err := b.kv.Delete(ctxT(t), kvID+lic.Identifier); err != nil {
			t.Fatal(err)
		}
		if _, err := f.lib.Get(ctxT(t), lic.Identifier); err != nil {
			t.Fatal(err)
		}
		if _, err := f.lib.kvGetEntry(ctxT(t), lic.Identifier); err != nil {
			t.Fatalf("lic:id not repaired: %v", err)
		}
		// Reindex neither: no outbox event, no expiry entry (the province
		// sends its changes), the license indexed.
		if _, err := f.lib.Reindex(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if n := countObjects(t, b.objects, outboxPrefix); n != 0 {
			t.Fatalf("%d outbox objects for a foreign license", n)
		}
		if n := outboxLen(t, b.kv); n != 0 {
			t.Fatalf("%d outbox stream entries for a foreign license", n)
		}
		if due, err := b.kv.ZRangeByScore(ctxT(t), kvExpiry, math.Inf(-1), math.Inf(1), 10); err != nil || len(due) != 0 {
			t.Fatalf("expiry entries after reindex: %v %v", due, err)
		}
	})
}

// TestImportHistoric: a foreign license the province sends already
// expired (initial status 05, a historic license of another city) reads
// 05 from its first write, through every read, after the index is lost
// and after Reindex; it gets no expiry entry and no outbound event.
func TestImportHistoric(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		k := newForeignKit(t)
		lic := foreignLicense("FJ-2012-0001", 1)
		lic.IssueDate, lic.ValidFrom, lic.ValidUntil = "2012-05-06", "2012-05-06", "2017-05-05"
		doc := k.doc(t, lic)
		id := lic.Identifier

		if res, err := f.lib.Import(ctxT(t), doc, provenance(id), StatusExpired); err != nil || !res.Created {
			t.Fatalf("import: %+v, %v", res, err)
		}
		if res, err := f.lib.Import(ctxT(t), doc, provenance(id), StatusExpired); err != nil || res.Created {
			t.Fatalf("the same import again: %+v, %v", res, err)
		}
		check := func(when string) {
			t.Helper()
			if st, err := f.lib.Status(ctxT(t), id); err != nil || st != StatusExpired {
				t.Fatalf("%s: Status = %s, %v; want 05", when, st, err)
			}
			rec, err := f.lib.Get(ctxT(t), id)
			if err != nil || rec.Status != StatusExpired || rec.Initial != StatusExpired || len(rec.History) != 0 {
				t.Fatalf("%s: Get = %+v, %v; want 05 from the start", when, rec, err)
			}
			sums, err := f.lib.ByHolder(ctxT(t), holderResident)
			if err != nil || len(sums) != 1 || sums[0].Status != StatusExpired {
				t.Fatalf("%s: ByHolder = %+v, %v", when, sums, err)
			}
		}
		check("imported")
		if err := b.kv.Delete(ctxT(t), kvID+id); err != nil {
			t.Fatal(err)
		}
		check("lic:id lost")
		if _, err := f.lib.Reindex(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		check("reindexed")
		if n := countObjects(t, b.objects, outboxPrefix); n != 0 {
			t.Fatalf("%d outbox objects for a foreign license", n)
		}
		if due, err := b.kv.ZRangeByScore(ctxT(t), kvExpiry, math.Inf(-1), math.Inf(1), 10); err != nil || len(due) != 0 {
			t.Fatalf("expiry entries: %v %v", due, err)
		}
	})
}

func TestImportRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		k := newForeignKit(t)

		// A local license with that identifier exists.
		local := mustPush(t, f.lib, sampleRequest("HN-0001"))
		d, _ := signing.ParseDocument(local.Document)
		var llic License
		_ = json.Unmarshal(d.Body, &llic)
		llic.Fields = map[string]any{"legal_representative": "王五"}
		fake := signBody(t, keyringFor(t, authorityA), authorityA, llic)

		other := foreignLicense("FJ-2026-0002", 1)
		doc := k.doc(t, other)
		changed := other
		changed.Holder.Name = "另一家公司"

		mismatch := foreignLicense("FJ-2026-0003", 1)
		mismatch.Number = "FJ-2026-9999"

		cases := []struct {
			name    string
			doc     []byte
			prov    Provenance
			initial Status
			code    string
			reason  string
		}{
			{"over a local license", fake, provenance(local.Identifier), "", licensehub.ECONFLICT, "local_license"},
			{"not province provenance", doc, Provenance{Kind: ProvenanceStock}, "", licensehub.EINVALID, ""},
			{"number does not match identifier", k.doc(t, mismatch), provenance(mismatch.Identifier), "", licensehub.EINVALID, ""},
			{"not a document", []byte(`{"body":1}`), provenance(other.Identifier), "", licensehub.EMALFORMED, ""},
			{"initial status revoked", doc, provenance(other.Identifier), StatusRevoked, licensehub.EINVALID, ""},
			{"initial status not a code", doc, provenance(other.Identifier), "5", licensehub.EINVALID, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.lib.Import(ctxT(t), tc.doc, tc.prov, tc.initial)
				if !licensehub.IsCode(err, tc.code) {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				if tc.reason != "" {
					if e, _ := err.(*licensehub.Error); e == nil || e.Details["reason"] != tc.reason {
						t.Fatalf("details = %v", err)
					}
				}
			})
		}
		// The local license is untouched.
		got, err := f.lib.Get(ctxT(t), local.Identifier)
		if err != nil || string(got.Document) != string(local.Document) || got.Provenance != nil {
			t.Fatalf("local license changed: %v", err)
		}
		// Same identifier, other content: conflict.
		mustImport(t, f.lib, doc, other.Identifier)
		if _, err := f.lib.Import(ctxT(t), k.doc(t, changed), provenance(other.Identifier), ""); !licensehub.IsCode(err, licensehub.ECONFLICT) {
			t.Fatalf("other document for a stored foreign license: %v", err)
		}
		// Same document, other initial status: conflict, and it still reads valid.
		if _, err := f.lib.Import(ctxT(t), doc, provenance(other.Identifier), StatusExpired); !licensehub.IsCode(err, licensehub.ECONFLICT) {
			t.Fatalf("a stored valid foreign license sent again as expired: %v", err)
		}
		if st, err := f.lib.Status(ctxT(t), other.Identifier); err != nil || st != StatusValid {
			t.Fatalf("Status = %s, %v; want 01", st, err)
		}
	})
}

var foreignChanges = []fchange{
	{1, OpSuspend, StatusValid, StatusSuspended},
	{2, OpRestore, StatusSuspended, StatusValid},
	{3, OpRevoke, StatusValid, StatusRevoked},
}

func TestForeignStatusOrder(t *testing.T) {
	cases := []struct {
		name  string
		order []int
	}{
		{"in order", []int{1, 2, 3}},
		{"3,1,2", []int{3, 1, 2}},
		{"reversed", []int{3, 2, 1}},
		{"with duplicates", []int{2, 3, 2, 1, 1, 3, 2}},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		k := newForeignKit(t)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				lic := foreignLicense(fmt.Sprintf("FJ-ORDER-%d", i), 1)
				mustImport(t, f.lib, k.doc(t, lic), lic.Identifier)
				applied := map[int]int{}
				for _, seq := range tc.order {
					out, err := k.apply(t, f.lib, lic.Identifier, foreignChanges[seq-1])
					if err != nil {
						t.Fatalf("seq %d: %v", seq, err)
					}
					if out == ForeignApplied {
						applied[seq]++
					}
				}
				rec, err := f.lib.Get(ctxT(t), lic.Identifier)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Status != StatusRevoked || len(rec.History) != 3 {
					t.Fatalf("status %s, history %d", rec.Status, len(rec.History))
				}
				for i, h := range rec.History {
					want := foreignChanges[i]
					if h.Seq != i+1 || h.To != want.to || h.Op != want.op || h.Provenance != ProvenanceProvince || h.App != provinceCode {
						t.Fatalf("history[%d] = %+v", i, h)
					}
					// Each record is the province's envelope: verifiable with its key.
					d, err := signing.ParseDocument(h.Document)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := signing.VerifySignature(d, k.province); err != nil {
						t.Fatalf("record %d does not verify against the province: %v", h.Seq, err)
					}
				}
				if st, _ := f.lib.Status(ctxT(t), lic.Identifier); st != StatusRevoked {
					t.Fatalf("indexed status %s", st)
				}
				if n := countObjects(t, b.objects, heldKeyPrefix(lic.Identifier)); n != 0 {
					t.Fatalf("%d held changes left", n)
				}
				if n := countObjects(t, b.objects, statusKeyPrefix(lic.Identifier)); n != 3 {
					t.Fatalf("%d status records", n)
				}
				if tc.order[0] == 1 && applied[1] != 1 {
					t.Fatalf("seq 1 applied %d times", applied[1])
				}
			})
		}
		if n := countObjects(t, b.objects, outboxPrefix); n != 0 {
			t.Fatalf("%d outbox objects for foreign changes", n)
		}
	})
}

func TestForeignHeldSurviveRestart(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		k := newForeignKit(t)
		lic := foreignLicense("FJ-HELD-1", 1)
		id := lic.Identifier

		// Changes arrive before the license, and out of order.
		for _, c := range []fchange{foreignChanges[2], foreignChanges[1]} {
			out, err := k.apply(t, f.lib, id, c)
			if err != nil || out != ForeignHeld {
				t.Fatalf("seq %d: %s %v", c.seq, out, err)
			}
		}
		mustImport(t, f.lib, k.doc(t, lic), id)
		if st, _ := f.lib.Status(ctxT(t), id); st != StatusValid {
			t.Fatalf("status %s before the gap fills", st)
		}
		if n := countObjects(t, b.objects, heldKeyPrefix(id)); n != 2 {
			t.Fatalf("%d held", n)
		}

		// A fresh library (a restart, or another instance) fills the gap.
		fresh := f.library(t, b.kv)
		out, err := k.apply(t, fresh, id, foreignChanges[0])
		if err != nil || out != ForeignApplied {
			t.Fatalf("seq 1: %s %v", out, err)
		}
		rec, err := fresh.Get(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != StatusRevoked || len(rec.History) != 3 {
			t.Fatalf("status %s history %d", rec.Status, len(rec.History))
		}
		if n := countObjects(t, b.objects, heldKeyPrefix(id)); n != 0 {
			t.Fatalf("%d held left", n)
		}

		// A status change whose license arrives later is applied on import.
		lic2 := foreignLicense("FJ-HELD-2", 1)
		if out, err := k.apply(t, f.lib, lic2.Identifier, foreignChanges[0]); err != nil || out != ForeignHeld {
			t.Fatalf("before license: %s %v", out, err)
		}
		mustImport(t, fresh, k.doc(t, lic2), lic2.Identifier)
		if st, _ := f.lib.Status(ctxT(t), lic2.Identifier); st != StatusSuspended {
			t.Fatalf("status %s after import", st)
		}
	})
}

func TestForeignReadOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		k := newForeignKit(t)
		lic := foreignLicense("FJ-RO-1", 1)
		mustImport(t, f.lib, k.doc(t, lic), lic.Identifier)
		local := mustPush(t, f.lib, sampleRequest("HN-RO-1"))

		next := sampleRequest("FJ-RO-1")
		next.Issuer = lic.Issuer
		cases := []struct {
			name   string
			run    func() error
			reason string
		}{
			{"ChangeStatus", func() error {
				_, err := f.lib.ChangeStatus(ctxT(t), lic.Identifier, OpSuspend, "inspection", "app-market")
				return err
			}, "foreign_license"},
			{"NewVersion", func() error {
				_, err := f.lib.NewVersion(ctxT(t), lic.Identifier, next, OpRenew)
				return err
			}, "foreign_license"},
			{"province change to a local license", func() error {
				_, err := k.apply(t, f.lib, local.Identifier, foreignChanges[0])
				return err
			}, "local_license"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.run()
				e, _ := err.(*licensehub.Error)
				if e == nil || e.Code != licensehub.ECONFLICT || e.Details["reason"] != tc.reason {
					t.Fatalf("err = %v, want ECONFLICT %s", err, tc.reason)
				}
			})
		}
		if n := countObjects(t, b.objects, statusPrefix); n != 0 {
			t.Fatalf("%d status records written", n)
		}
		if n := countObjects(t, b.objects, licensesPrefix); n != 2 {
			t.Fatalf("%d license objects", n)
		}
	})
}

func TestForeignEventType(t *testing.T) {
	// Must equal exchange.EventType (exchange imports license, not the
	// reverse; exchange's tests check the same).
	if foreignEventType != "licensehub.exchange.event" {
		t.Fatal(foreignEventType)
	}
}
