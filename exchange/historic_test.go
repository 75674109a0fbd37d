package exchange

import (
	"testing"
	"time"

	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
)

// pushHistoric records license number n as the stock conversion records
// a register's lapsed license: validity ended in 2017, status 05 from
// the start. It returns the identifier.
func (f *fixture) pushHistoric(t testing.TB, n int) string {
	t.Helper()
	res, err := f.lib.Push(ctxT(t), license.PushRequest{App: "convert", TypeCode: typeCode, Name: "食品经营许可证",
		Issuer: license.Party{Name: "市场监督管理局", Code: authorityA}, Number: "JY" + itoa(n),
		Holder:    license.Holder{Name: "长沙某某餐饮有限公司", Code: "91350100M000100Y43", CodeType: ident.HolderCreditCode},
		IssueDate: "2012-05-06", ValidFrom: "2012-05-06", ValidUntil: "2017-05-05", AreaCode: "430100",
		Fields:     map[string]any{"legal_representative": "王五"},
		Provenance: &license.Provenance{Kind: license.ProvenanceStock, Source: "register", Batch: "job-1", SourceLine: n}})
	if err != nil {
		t.Fatalf("push historic: %v", err)
	}
	if st, err := f.lib.Status(ctxT(t), res.Identifier); err != nil || st != license.StatusExpired {
		t.Fatalf("a historic license reads %s, %v; want 05", st, err)
	}
	return res.Identifier
}

// TestHistoricDelivery: the envelope of a historic license's "new" event
// carries initial_status 05 on every delivery (the first, after retried
// 5xx answers; a replay of its dead letter; a re-send by reconciliation),
// with no status event of its own; a valid license's carries none. The
// pull feed says it too.
func TestHistoricDelivery(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		retried := f.pushHistoric(t, 1)
		replayed := f.pushHistoric(t, 2)
		valid := f.push(t, 3)
		p.mu.Lock()
		p.failFirst[retried+"/new"] = 2
		p.reject[replayed+"/new"] = true
		p.mu.Unlock()
		want := outboxIDs(t, b.objects)
		if len(want) != 3 {
			t.Fatalf("outbox holds %v; want the three licenses' new events only", want)
		}

		d := f.deliverer(t, p.srv.URL, nil)
		stop := start(t, d)
		waitFor(t, time.Minute, "the dead letter", func() bool {
			dl, err := d.DeadLetters(ctxT(t))
			return err == nil && len(dl) == 1
		})
		waitFor(t, time.Minute, "delivery", allDelivered(p, map[string]bool{retried + "/new": true, valid + "/new": true}))
		stop()
		p.mu.Lock()
		delete(p.reject, replayed+"/new")
		p.mu.Unlock()
		if rep, err := d.Replay(ctxT(t), nil, true); err != nil || len(rep.Replayed) != 1 {
			t.Fatalf("replay: %+v, %v", rep, err)
		}

		// The province loses the retried one; reconciliation re-sends it.
		p.mu.Lock()
		delete(p.events, retried+"/new")
		delete(p.count, retried+"/new")
		p.mu.Unlock()
		r := &Reconciler{Objects: b.objects, ProvinceURL: p.srv.URL, Deliverer: d}
		day := time.Now().UTC().Format(DateLayout)
		prov, err := r.ProvinceDigest(ctxT(t), day)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Reconcile(ctxT(t), day, prov)
		if err != nil || len(rep.Missing) != 1 || rep.Missing[0] != retried+"/new" {
			t.Fatalf("reconcile: %+v, %v", rep, err)
		}
		if failed, err := r.Resend(ctxT(t), day, rep.Missing); err != nil || len(failed) != 0 {
			t.Fatalf("resend: %v, %v", failed, err)
		}

		p.mu.Lock()
		defer p.mu.Unlock()
		for _, tc := range []struct {
			id, initial string
		}{
			{retried, "05"}, // re-sent by reconciliation
			{replayed, "05"},
			{valid, ""},
		} {
			ev := p.events[tc.id+"/new"]
			switch {
			case ev == nil:
				t.Errorf("%s: not delivered", tc.id)
			case ev.InitialStatus != tc.initial || ev.Status != nil || len(ev.Document) == 0:
				t.Errorf("%s: delivered with initial_status %q, status %+v; want %q and the document", tc.id, ev.InitialStatus, ev.Status, tc.initial)
			}
			for _, id := range p.order[tc.id] { // the retried one twice: the province lost it once
				if id != tc.id+"/new" {
					t.Errorf("%s: the province applied %v; want its new event only", tc.id, p.order[tc.id])
				}
			}
		}

		// The pull feed.
		feed := &Feed{Objects: b.objects, Authority: hubAuthority, Clock: func() time.Time { return time.Now().Add(time.Hour) }}
		page, err := feed.Changes(ctxT(t), "", 10)
		if err != nil || len(page.Changes) != 3 {
			t.Fatalf("feed: %+v, %v", page, err)
		}
		for _, ev := range page.Changes {
			want := map[string]string{retried: "05", replayed: "05"}[ev.License]
			if ev.InitialStatus != want {
				t.Errorf("feed: %s has initial_status %q, want %q", ev.ID, ev.InitialStatus, want)
			}
		}
	})
}
