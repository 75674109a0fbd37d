package exchange

import (
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/license"
)

func TestFeedPagesAreCompleteAndStable(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		for i := range 7 {
			f.push(t, i, license.OpSuspend)
		}
		want := outboxIDs(t, b.objects)
		later := func() time.Time { return time.Now().Add(time.Minute) }
		// Not settled yet: nothing served, the cursor does not move.
		early := &Feed{Objects: b.objects, Authority: hubAuthority, Settle: time.Hour}
		if pg, err := early.Changes(ctxT(t), "", 10); err != nil || len(pg.Changes) != 0 || pg.Next != "" || pg.More {
			t.Fatalf("unsettled page %+v %v", pg, err)
		}
		feed := &Feed{Objects: b.objects, Authority: hubAuthority, Settle: 15 * time.Second, Clock: later}
		got := map[string]bool{}
		after := ""
		for range 20 {
			pg, err := feed.Changes(ctxT(t), after, 3)
			if err != nil {
				t.Fatal(err)
			}
			again, err := feed.Changes(ctxT(t), after, 3)
			if err != nil || again.Next != pg.Next || len(again.Changes) != len(pg.Changes) {
				t.Fatalf("the same cursor gave another page")
			}
			for _, c := range pg.Changes {
				if got[c.ID] {
					t.Errorf("%s served twice", c.ID)
				}
				got[c.ID] = true
				if c.Type != EventType || c.Sender != hubAuthority || c.Time == "" || c.Batch == "" {
					t.Errorf("change %+v", c)
				}
			}
			after = pg.Next
			if !pg.More {
				break
			}
		}
		if len(got) != len(want) {
			t.Fatalf("feed served %d events, outbox holds %d", len(got), len(want))
		}
		// Later events continue from the last cursor.
		id := f.push(t, 99)
		pg, err := feed.Changes(ctxT(t), after, 10)
		if err != nil || len(pg.Changes) != 1 || pg.Changes[0].ID != id+"/new" {
			t.Fatalf("after more: %+v %v", pg, err)
		}
		if _, err := feed.Changes(ctxT(t), "bm90IGEgY3Vyc29y", 10); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("bad cursor: %v", err)
		}
		if _, err := feed.Changes(ctxT(t), "", 1001); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("limit 1001: %v", err)
		}
	})
}
