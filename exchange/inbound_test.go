package exchange_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

const (
	ibProvinceCode = "11430000006122000Q"
	ibForeignAuth  = "91350100M000100Y43"
	ibLocalAuth    = "11430000006122244L"
	ibTypeCode     = "11100000000013338W011"
	ibHolderID     = "11010519491231002X"
)

var ibNow = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func ibCtxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ibRing(t testing.TB, authority string) *signing.Keyring { return testkeys.Fixed(t, authority) }

type ibStores struct {
	objects licensehub.ObjectStore
	kv      licensehub.KV
}

func ibEachBackend(t *testing.T, f func(t *testing.T, s ibStores)) {
	exchange.EachTestBackend(t, 5*time.Second, func(t *testing.T, _ string, objects licensehub.ObjectStore, kv licensehub.KV) {
		f(t, ibStores{objects, kv})
	})
}

type ibKit struct {
	lib      *license.Library
	in       *exchange.Inbound
	issuer   *signing.Keyring // the foreign issuing authority
	province *signing.Keyring
	s        ibStores
}

func ibNewKit(t *testing.T, s ibStores) *ibKit {
	k := &ibKit{issuer: ibRing(t, ibForeignAuth), province: ibRing(t, ibProvinceCode), s: s}
	var err error
	k.lib, err = license.NewLibrary(license.Config{Objects: s.objects, KV: s.kv, Signers: ibRing(t, ibLocalAuth),
		Catalog: license.CatalogFunc(func(string) (license.Validator, bool) { return nil, false }),
		Clock:   func() time.Time { return ibNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	k.in, err = exchange.NewInbound(exchange.InboundConfig{Library: k.lib, Objects: s.objects, KV: s.kv,
		Keys: k.province.Export(), Province: ibProvinceCode, Clock: func() time.Time { return ibNow }})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ibForeignDoc(t testing.TB, issuer *signing.Keyring, number string) (string, []byte) {
	id, _ := ident.New(ibTypeCode, ibForeignAuth, number, 1)
	lic := license.License{Identifier: id.String(), Name: "营业执照", TypeCode: ibTypeCode, Number: number, Version: "001",
		Issuer: license.Party{Name: "福州市市场监督管理局", Code: ibForeignAuth}, IssueDate: "2026-10-01",
		ValidFrom: "2026-10-01", ValidUntil: "2031-09-30", AreaCode: "350100",
		Holder: license.Holder{Name: "李四", Code: ibHolderID, CodeType: ident.HolderResidentID}}
	body, _ := json.Marshal(lic)
	signer, err := issuer.SignerFor(ibForeignAuth, ibNow)
	if err != nil {
		t.Fatal(err)
	}
	d, err := signing.Sign(ibCtxT(t), signer, body, ibNow)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := d.Marshal()
	return id.String(), raw
}

func ibSeal(t testing.TB, r *signing.Keyring, authority string, ev exchange.Event) []byte {
	t.Helper()
	signer, err := r.SignerFor(authority, ibNow)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Sender == "" {
		ev.Sender = authority
	}
	ev.Time = ibNow.Format(signing.SignedAtLayout)
	raw, err := exchange.Seal(ibCtxT(t), signer, &ev, ibNow)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func ibNewEvent(id string, doc []byte) exchange.Event {
	return exchange.Event{ID: id + "/new", License: id, Op: license.OpNew, Document: doc}
}

var ibChanges = []exchange.Event{
	{Seq: 1, Op: license.OpSuspend, Status: &exchange.StatusChange{From: "01", To: "02"}},
	{Seq: 2, Op: license.OpRestore, Status: &exchange.StatusChange{From: "02", To: "01"}},
	{Seq: 3, Op: license.OpRevoke, Status: &exchange.StatusChange{From: "01", To: "07"}},
}

func ibStatusEvent(id string, seq int) exchange.Event {
	ev := ibChanges[seq-1]
	ev.License, ev.ID = id, fmt.Sprintf("%s/%s/%d", id, ev.Op, seq)
	return ev
}

func ibListAll(t testing.TB, objs licensehub.ObjectStore) []string {
	var keys []string
	if err := objs.List(ibCtxT(t), "", func(oi licensehub.ObjectInfo) error { keys = append(keys, oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func TestReceive(t *testing.T) {
	ibEachBackend(t, func(t *testing.T, s ibStores) {
		k := ibNewKit(t, s)
		id, doc := ibForeignDoc(t, k.issuer, "FJ0001")
		newEnv := ibSeal(t, k.province, ibProvinceCode, ibNewEvent(id, doc))

		steps := []struct {
			env     []byte
			outcome string
		}{
			{ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 3)), exchange.OutcomeHeld}, // before the license
			{newEnv, exchange.OutcomeStored},
			{newEnv, exchange.OutcomeDuplicate},
			{ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 1)), exchange.OutcomeApplied},
			{ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 1)), exchange.OutcomeDuplicate}, // same event ID, new signature
			{ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 2)), exchange.OutcomeApplied},   // applies 3 too
			{ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 3)), exchange.OutcomeDuplicate},
		}
		for i, st := range steps {
			res, err := k.in.Receive(ibCtxT(t), st.env)
			if err != nil || res.Outcome != st.outcome {
				t.Fatalf("step %d: %+v %v, want %s", i, res, err, st.outcome)
			}
		}
		rec, err := k.lib.Get(ibCtxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != license.StatusRevoked || len(rec.History) != 3 || rec.Provenance == nil ||
			rec.Provenance.Kind != license.ProvenanceProvince || rec.Provenance.EventID != id+"/new" {
			t.Fatalf("record: status %s history %d provenance %+v", rec.Status, len(rec.History), rec.Provenance)
		}
		sums, err := k.lib.ByHolder(ibCtxT(t), ibHolderID)
		if err != nil || len(sums) != 1 || sums[0].Status != license.StatusRevoked {
			t.Fatalf("ByHolder: %+v %v", sums, err)
		}
		if _, err := s.objects.Head(ibCtxT(t), exchange.MarkerKey(id+"/new")); err != nil {
			t.Fatalf("marker: %v", err)
		}
	})
}

// TestReceiveHistoric: another city's historic license, sent by the
// province with initial_status 05 (its issuing hub recorded it already
// expired), reads 05 here from its first write, whether its envelope
// comes alone, again, or in a batch; one sent without reads 01.
func TestReceiveHistoric(t *testing.T) {
	ibEachBackend(t, func(t *testing.T, s ibStores) {
		k := ibNewKit(t, s)
		for n, tc := range []struct {
			name    string
			initial string
			batch   bool
			want    license.Status
		}{
			{"historic", "05", false, license.StatusExpired},
			{"historic in a batch", "05", true, license.StatusExpired},
			{"valid, said", "01", false, license.StatusValid},
			{"valid, unsaid", "", true, license.StatusValid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id, doc := ibForeignDoc(t, k.issuer, "FJH"+strconv.Itoa(n))
				ev := ibNewEvent(id, doc)
				ev.InitialStatus = tc.initial
				env := ibSeal(t, k.province, ibProvinceCode, ev)
				for i, outcome := range []string{exchange.OutcomeStored, exchange.OutcomeDuplicate} {
					var res exchange.Result
					var err error
					if tc.batch {
						var rs []exchange.Result
						rs, err = k.in.ReceiveBatch(ibCtxT(t), []json.RawMessage{env})
						if err == nil {
							res = rs[0]
						}
					} else {
						res, err = k.in.Receive(ibCtxT(t), env)
					}
					if err != nil || res.Outcome != outcome {
						t.Fatalf("delivery %d: %+v %v, want %s", i+1, res, err, outcome)
					}
				}
				rec, err := k.lib.Get(ibCtxT(t), id)
				if err != nil || rec.Status != tc.want || rec.Initial != tc.want || len(rec.History) != 0 {
					t.Fatalf("Get: %+v %v; want %s from the start", rec, err, tc.want)
				}
				if st, err := k.lib.Status(ibCtxT(t), id); err != nil || st != tc.want {
					t.Fatalf("Status: %s %v; want %s", st, err, tc.want)
				}
			})
		}
	})
}

func TestReceiveRejected(t *testing.T) {
	ibEachBackend(t, func(t *testing.T, s ibStores) {
		k := ibNewKit(t, s)
		id, doc := ibForeignDoc(t, k.issuer, "FJ0002")
		good := ibSeal(t, k.province, ibProvinceCode, ibNewEvent(id, doc))

		tamper := func(raw []byte, f func(body map[string]any)) []byte {
			var env map[string]any
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatal(err)
			}
			f(env["body"].(map[string]any))
			out, _ := json.Marshal(env)
			return out
		}
		impostor := ibRing(t, ibProvinceCode) // same authority code, key not in the bundle
		cases := []struct {
			name string
			env  []byte
			code string
		}{
			{"key not in the province bundle", ibSeal(t, impostor, ibProvinceCode, ibNewEvent(id, doc)), licensehub.ESIGINVALID},
			{"signed by another authority", ibSeal(t, k.issuer, ibForeignAuth, ibNewEvent(id, doc)), licensehub.ESIGINVALID},
			{"tampered body", tamper(good, func(b map[string]any) { b["event_id"] = id + "/renew" }), licensehub.ESIGINVALID},
			{"tampered status", tamper(ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 1)),
				func(b map[string]any) { b["status"].(map[string]any)["to"] = "07" }), licensehub.ESIGINVALID},
			{"sender is not the signer", ibSeal(t, k.province, ibProvinceCode, func() exchange.Event {
				ev := ibNewEvent(id, doc)
				ev.Sender = ibForeignAuth
				return ev
			}()), licensehub.ESIGINVALID},
			{"not an envelope", []byte(`{"hello":"world"}`), licensehub.EMALFORMED},
			{"catalog op", ibSeal(t, k.province, ibProvinceCode, exchange.Event{ID: "catalog/x", Op: exchange.OpCatalog}), licensehub.EINVALID},
			{"initial status revoked", ibSeal(t, k.province, ibProvinceCode, func() exchange.Event {
				ev := ibNewEvent(id, doc)
				ev.InitialStatus = "07"
				return ev
			}()), licensehub.EINVALID},
			{"initial status on a status change", ibSeal(t, k.province, ibProvinceCode, func() exchange.Event {
				ev := ibStatusEvent(id, 1)
				ev.InitialStatus = "05"
				return ev
			}()), licensehub.EINVALID},
		}
		before := ibListAll(t, s.objects)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := k.in.Receive(ibCtxT(t), tc.env)
				if !licensehub.IsCode(err, tc.code) {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
			})
		}
		if after := ibListAll(t, s.objects); !slices.Equal(before, after) {
			t.Fatalf("objects changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}

func TestReceiveBatch(t *testing.T) {
	ibEachBackend(t, func(t *testing.T, s ibStores) {
		k := ibNewKit(t, s)
		var envs []json.RawMessage
		var ids []string
		for i := range 3 {
			id, doc := ibForeignDoc(t, k.issuer, fmt.Sprintf("FJB%03d", i))
			ids = append(ids, id)
			// status first, license last, duplicates: all in one batch
			envs = append(envs, ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 2)),
				ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 1)),
				ibSeal(t, k.province, ibProvinceCode, ibNewEvent(id, doc)),
				ibSeal(t, k.province, ibProvinceCode, ibStatusEvent(id, 1)))
		}
		bad := ibSeal(t, ibRing(t, ibProvinceCode), ibProvinceCode, ibNewEvent(ids[0], nil))
		envs = append(envs[:5], append([]json.RawMessage{bad}, envs[5:]...)...)
		res, err := k.in.ReceiveBatch(ibCtxT(t), envs)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(envs) {
			t.Fatalf("%d results for %d envelopes", len(res), len(envs))
		}
		if res[5].Outcome != exchange.OutcomeRejected || res[5].Code != licensehub.ESIGINVALID {
			t.Fatalf("bad envelope: %+v", res[5])
		}
		for i, r := range res {
			if i != 5 && r.Code != "" {
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		for _, id := range ids {
			if st, err := k.lib.Status(ibCtxT(t), id); err != nil || st != license.StatusValid {
				t.Fatalf("%s: %s %v (suspend then restore)", id, st, err)
			}
			rec, err := k.lib.Get(ibCtxT(t), id)
			if err != nil || len(rec.History) != 2 {
				t.Fatalf("%s history: %v", id, err)
			}
		}
		if _, err := k.in.ReceiveBatch(ibCtxT(t), make([]json.RawMessage, exchange.MaxBatch+1)); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Fatalf("oversized batch: %v", err)
		}
	})
}

func TestEventTypeMatchesLibrary(t *testing.T) {
	// license reads stored envelopes by this type (it cannot import exchange).
	if exchange.EventType != "licensehub.exchange.event" {
		t.Fatal(exchange.EventType)
	}
}

// TestReceivePusherPlan: what the province simulator sends (foreign
// licenses, then their status changes shuffled and partly duplicated) is
// what the inbound side accepts: nothing rejected, every license stored
// with every change applied once, in sequence.
func TestReceivePusherPlan(t *testing.T) {
	ibEachBackend(t, func(t *testing.T, s ibStores) {
		k := ibNewKit(t, s)
		signer, err := k.province.SignerFor(ibProvinceCode, ibNow)
		if err != nil {
			t.Fatal(err)
		}
		p, err := provsim.NewPusher(provsim.PushConfig{HubURL: "http://unused.invalid", Signer: signer, Count: 4,
			Statuses: 3, Shuffle: true, Duplicate: 0.5, Now: func() time.Time { return ibNow },
			Credentials: client.Credentials{AppID: "province", Secret: []byte("unused-secret-0123456789")}})
		if err != nil {
			t.Fatal(err)
		}
		lics, sts, err := p.Plan(ibCtxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, pl := range append(lics, sts...) {
			if res, err := k.in.Receive(ibCtxT(t), pl.Envelope); err != nil || res.Outcome == exchange.OutcomeRejected {
				t.Fatalf("%s: %+v %v", pl.Event.ID, res, err)
			}
		}
		for _, pl := range lics {
			rec, err := k.lib.Get(ibCtxT(t), pl.Event.License)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.History) != 3 || rec.Status != license.StatusSuspended { // suspend, restore, suspend
				t.Fatalf("%s: status %s, %d changes", pl.Event.License, rec.Status, len(rec.History))
			}
		}
	})
}
