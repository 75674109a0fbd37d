package exchange

import (
	"testing"
	"time"

	"github.com/licensehub/licensehub/license"
)

func TestDigestCompare(t *testing.T) {
	a := DigestIDs("2026-11-26", []string{"b", "a", "a"})
	b := DigestIDs("2026-11-26", []string{"a", "b"})
	if a.Digest != b.Digest || a.Count != 2 {
		t.Fatalf("%+v %+v", a, b)
	}
	c := DigestIDs("2026-11-26", []string{"a", "c"})
	rep := Compare(a, c)
	if rep.Equal || len(rep.Missing) != 1 || rep.Missing[0] != "b" || len(rep.Extra) != 1 || rep.Extra[0] != "c" {
		t.Fatalf("%+v", rep)
	}
	if !Compare(a, b).Equal {
		t.Fatal("equal sets differ")
	}
}

func TestReconcileAndResend(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		p := newProvince(t, f.ring)
		var ids []string
		for i := range 5 {
			ids = append(ids, f.push(t, i, license.OpSuspend))
		}
		d := f.deliverer(t, p.srv.URL, nil)
		stop := start(t, d)
		waitFor(t, 20*time.Second, "delivery", allDelivered(p, outboxIDs(t, b.objects)))
		stop()
		// The province loses two events.
		p.mu.Lock()
		delete(p.events, ids[0]+"/new")
		delete(p.events, ids[3]+"/suspend/1")
		delete(p.count, ids[0]+"/new")
		delete(p.count, ids[3]+"/suspend/1")
		p.mu.Unlock()
		r := &Reconciler{Objects: b.objects, ProvinceURL: p.srv.URL, Deliverer: d}
		day := time.Now().UTC().Format(DateLayout)
		hub, err := r.Digest(ctxT(t), day)
		if err != nil || hub.Count != 10 {
			t.Fatalf("hub digest %+v %v", hub, err)
		}
		prov, err := r.ProvinceDigest(ctxT(t), day)
		if err != nil || prov.Count != 8 {
			t.Fatalf("province digest %+v %v", prov, err)
		}
		rep, err := r.Reconcile(ctxT(t), day, prov)
		if err != nil || rep.Equal || len(rep.Missing) != 2 || len(rep.Extra) != 0 {
			t.Fatalf("report %+v %v", rep, err)
		}
		failed, err := r.Resend(ctxT(t), day, rep.Missing)
		if err != nil || len(failed) != 0 {
			t.Fatalf("resend %v %v", failed, err)
		}
		prov, _ = r.ProvinceDigest(ctxT(t), day)
		if prov.Digest != hub.Digest {
			t.Fatalf("still different after re-sending: %+v", prov)
		}
		if other, err := r.Digest(ctxT(t), "2001-01-01"); err != nil || other.Count != 0 {
			t.Fatalf("empty day %+v %v", other, err)
		}
	})
}
