package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

func withClock(now func() time.Time) hubOption { return func(c *Config) { c.Clock = now } }

var queryHolders = []string{"110105199001010027", "91350100M000100Y43", "11010519900101002X"}

// queryFixture is a trail of 23 records, one second apart: 17 sealed in
// segments of 5 (5, 5, 5, 2) and 6 pending in the journal.
type queryFixture struct {
	h     *hub
	clock *syncedClock
	t0    time.Time
	attrs []queryAttrs // by record index (seq - 1)
}

type queryAttrs struct {
	app, holder, license, matter string
	at                           time.Time
}

func newQueryFixture(t *testing.T, opts ...hubOption) *queryFixture {
	t0 := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Millisecond)
	clock := &syncedClock{t: t0}
	h := newStreamHub(t, openFS(t), append([]hubOption{withClock(clock.now)}, opts...)...)
	fx := &queryFixture{h: h, clock: clock, t0: t0}
	for i := range 23 {
		if i == 17 {
			if res := mustSeal(t, h); res.Records != 17 || res.Segments != 4 {
				t.Fatalf("Seal = %+v, want 17 records in 4 segments", res)
			}
		}
		a := queryAttrs{
			app:     []string{"app-a", "app-b"}[i%2],
			holder:  queryHolders[i%3],
			license: fmt.Sprintf("L-%d", i%4),
			matter:  map[bool]string{true: "M-x", false: "M-y"}[i%5 == 0],
			at:      t0.Add(time.Duration(i) * time.Second),
		}
		clock.set(a.at)
		r := Record{AppID: a.app, Operation: "license.read", Matter: a.matter, Licenses: []string{a.license, "L-common"},
			Result: ResultOK, RequestID: fmt.Sprintf("r-%d", i)}
		h.SetHolder(&r, a.holder)
		if err := h.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		fx.attrs = append(fx.attrs, a)
	}
	return fx
}

// want lists the request IDs that match f, newest first, by brute force.
func (fx *queryFixture) want(f Filter) []string {
	var out []string
	for i := len(fx.attrs) - 1; i >= 0; i-- {
		a := fx.attrs[i]
		switch {
		case f.App != "" && a.app != f.App,
			f.HolderCode != "" && NormalizeHolder(a.holder) != NormalizeHolder(f.HolderCode),
			f.License != "" && a.license != f.License && f.License != "L-common",
			f.Matter != "" && a.matter != f.Matter,
			!f.From.IsZero() && a.at.Before(f.From),
			!f.To.IsZero() && !a.at.Before(f.To):
			continue
		}
		out = append(out, fmt.Sprintf("r-%d", i))
	}
	return out
}

func TestQuery(t *testing.T) {
	t.Run("default", func(t *testing.T) { testQuery(t, newQueryFixture(t)) })
	// Records here are in time order, so stopping as soon as a segment is
	// older than From loses nothing.
	t.Run("no time slack", func(t *testing.T) {
		testQuery(t, newQueryFixture(t, func(c *Config) { c.QueryTimeSlack = time.Nanosecond }))
	})
}

func testQuery(t *testing.T, fx *queryFixture) {
	sec := func(i int) time.Time { return fx.t0.Add(time.Duration(i) * time.Second) }
	filters := []struct {
		name string
		f    Filter
	}{
		{"everything", Filter{}},
		{"app", Filter{App: "app-b"}},
		{"holder", Filter{HolderCode: queryHolders[1]}},
		{"holder in lower case", Filter{HolderCode: strings.ToLower(queryHolders[2])}},
		{"license", Filter{License: "L-3"}},
		{"license every record has", Filter{License: "L-common"}},
		{"matter", Filter{Matter: "M-x"}},
		{"from (pending only)", Filter{From: sec(18)}},
		{"to (sealed only)", Filter{To: sec(7)}},
		{"window across sealed and pending", Filter{From: sec(9), To: sec(20)}},
		{"window inside one segment", Filter{From: sec(6), To: sec(8)}},
		{"combined", Filter{App: "app-a", HolderCode: queryHolders[0], From: sec(3)}},
		{"nothing matches", Filter{App: "app-z"}},
		{"empty window", Filter{From: sec(5), To: sec(5)}},
	}
	for _, tc := range filters {
		want := fx.want(tc.f)
		for _, limit := range []int{1, 3, 50} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				f := tc.f
				f.Limit = limit
				var got []string
				for page := 0; ; page++ {
					p, err := fx.h.Query(t.Context(), f)
					if err != nil {
						t.Fatalf("Query: %v", err)
					}
					if len(p.Records) > limit {
						t.Fatalf("page of %d records, limit %d", len(p.Records), limit)
					}
					got = append(got, requestIDs(p.Records)...)
					if p.Next == "" {
						break
					}
					if page > 100 {
						t.Fatal("no end")
					}
					f.Cursor = p.Next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("records %v, want %v", got, want)
				}
			})
		}
	}

	t.Run("records are whole", func(t *testing.T) {
		p, err := fx.h.Query(t.Context(), Filter{Limit: 1, To: sec(1)})
		if err != nil || len(p.Records) != 1 {
			t.Fatalf("Query = %+v, %v", p, err)
		}
		r := p.Records[0]
		if r.RequestID != "r-0" || !r.Time.Equal(fx.t0) || r.HolderMasked != MaskHolder(queryHolders[0]) || r.HolderHash != fx.h.HolderHash(queryHolders[0]) || r.InstanceID != "hub-test" {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("HolderUsage", func(t *testing.T) {
		var got []string
		cursor := ""
		for {
			p, err := fx.h.HolderUsage(t.Context(), queryHolders[0], cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, requestIDs(p.Records)...)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if want := fx.want(Filter{HolderCode: queryHolders[0]}); !slices.Equal(got, want) {
			t.Fatalf("HolderUsage = %v, want %v", got, want)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, f := range []Filter{{Limit: -1}, {Limit: MaxQueryLimit + 1}, {Cursor: "x"}, {Cursor: "0.0"}, {Cursor: "5.-1"}, {Cursor: "05.1"}} {
			if _, err := fx.h.Query(t.Context(), f); !licensehub.IsCode(err, licensehub.EINVALID) {
				t.Errorf("Query(%+v) = %v, want %s", f, err, licensehub.EINVALID)
			}
		}
		if _, err := fx.h.HolderUsage(t.Context(), " ", "", 10); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("HolderUsage(blank) = %v, want %s", err, licensehub.EINVALID)
		}
	})
}

// TestQueryCursorAcrossSealing pages while the pending records are sealed
// between pages: no record is skipped or repeated.
func TestQueryCursorAcrossSealing(t *testing.T) {
	fx := newQueryFixture(t)
	want := fx.want(Filter{})
	p, err := fx.h.Query(t.Context(), Filter{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := requestIDs(p.Records)
	fx.clock.set(fx.t0.Add(time.Minute))
	if res := mustSeal(t, fx.h); res.Records != 6 {
		t.Fatalf("Seal = %+v, want the 6 pending records", res)
	}
	got = append(got, requestIDs(allRecords(t, fx.h, Filter{Limit: 4, Cursor: p.Next}))...)
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// TestQueryScanLimit: with a small scan budget a page may come back short
// with a cursor, and paging still finds everything, in order.
func TestQueryScanLimit(t *testing.T) {
	fx := newQueryFixture(t, withScanLimit(6))
	f := Filter{HolderCode: queryHolders[1], Limit: 50}
	want := fx.want(f)
	var got []string
	short := false
	for {
		p, err := fx.h.Query(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Next != "" && len(p.Records) < f.Limit {
			short = true
		}
		got = append(got, requestIDs(p.Records)...)
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if !short {
		t.Fatal("no page came back short: the scan budget was not applied")
	}

	// More pending records than the budget: sealing is behind.
	mustAppend(t, fx.h, 2)
	if _, err := fx.h.Query(t.Context(), Filter{}); !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		t.Fatalf("Query with 8 pending records and a budget of 6 = %v, want %s", err, licensehub.EUNAVAILABLE)
	}
}
