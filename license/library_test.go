package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/lease"
	"github.com/licensehub/licensehub/signing"
)

func TestPushAndGet(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		req := sampleRequest("91350100-m0001")
		req.Attachment = &AttachmentData{MediaType: "application/pdf", Data: []byte("%PDF-1.7 scan")}
		res := mustPush(t, f.lib, req)
		if !res.Created {
			t.Fatal("first push: Created = false")
		}
		want, _ := ident.New(typeCode, authorityA, "91350100M0001", 1)
		if res.Identifier != want.String() {
			t.Fatalf("identifier %s, want %s", res.Identifier, want)
		}
		rec, err := f.lib.Get(ctx, res.Identifier)
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Document) != string(res.Document) {
			t.Fatal("Get document differs from the pushed one")
		}
		if rec.Status != StatusValid || len(rec.History) != 0 || !reflect.DeepEqual(rec.Versions, []string{res.Identifier}) {
			t.Fatalf("record: status %s history %d versions %v", rec.Status, len(rec.History), rec.Versions)
		}
		l := rec.License
		if l.Attachment == nil || l.Attachment.SM3 != sm3Hex(req.Attachment.Data) || l.Version != "001" || l.Name != "营业执照" {
			t.Fatalf("body: %+v", l)
		}
		if _, err := b.objects.Head(ctx, attachmentsPrefix+l.Attachment.SM3); err != nil {
			t.Fatalf("attachment not stored: %v", err)
		}
		// The stored document verifies, status included.
		v := &Verifier{Keys: f.ring, Status: f.lib, Now: func() time.Time { return libNow }}
		vd, err := v.Verify(ctx, res.Document)
		if err != nil || vd.Verdict != VerdictValid {
			t.Fatalf("verify: %v %+v", err, vd)
		}
		// Index: by holder, natural key, outbox.
		sums, err := f.lib.ByHolder(ctx, holderCredit)
		if err != nil || len(sums) != 1 || sums[0].Identifier != res.Identifier || sums[0].Status != StatusValid {
			t.Fatalf("ByHolder: %v %+v", err, sums)
		}
		nat, err := b.kv.Get(ctx, naturalKV(typeCode, authorityA, "91350100M0001"))
		if err != nil || string(nat) != res.Identifier {
			t.Fatalf("natural key: %q %v", nat, err)
		}
		if n := countObjects(t, b.objects, outboxPrefix); n != 1 {
			t.Fatalf("%d outbox objects, want 1", n)
		}
		if n, _ := b.kv.XLen(ctx, OutboxStream); n != 1 {
			t.Fatalf("stream has %d entries, want 1", n)
		}
		if st, err := f.lib.Status(ctx, res.Identifier); err != nil || st != StatusValid {
			t.Fatalf("Status: %s %v", st, err)
		}
		other, _ := ident.New(typeCode, authorityA, "NOPE", 1)
		if st, err := f.lib.Status(ctx, other.String()); err != nil || st != StatusUnknown {
			t.Fatalf("Status of unknown: %s %v", st, err)
		}
		if _, err := f.lib.Get(ctx, other.String()); !licensehub.IsCode(err, licensehub.ELICNOTFOUND) {
			t.Fatalf("Get of unknown: %v", err)
		}
		// valid_until defaults from the catalog rule.
		req2 := sampleRequest("B-2")
		req2.ValidUntil = ""
		res2 := mustPush(t, f.lib, req2)
		rec2, err := f.lib.Get(ctx, res2.Identifier)
		if err != nil || rec2.License.ValidUntil != "2031-11-19" {
			t.Fatalf("default valid_until: %v %+v", err, rec2)
		}
	})
}

func TestPushValidation(t *testing.T) {
	f := newFixture(t, fsMemBackend(t))
	cases := []struct {
		field  string
		mutate func(r *PushRequest)
	}{
		{"type_code", func(r *PushRequest) { r.TypeCode = "" }},
		{"type_code", func(r *PushRequest) { r.TypeCode = "11100000000013338W099" }},
		{"issuer.name", func(r *PushRequest) { r.Issuer.Name = " " }},
		{"issuer.code", func(r *PushRequest) { r.Issuer.Code = "11430000006122244X" }},
		{"number", func(r *PushRequest) { r.Number = "" }},
		{"number", func(r *PushRequest) { r.Number = "A/1" }},
		{"number", func(r *PushRequest) { r.Number = "---" }},
		{"number", func(r *PushRequest) { r.Number = string(make([]byte, 65)) }},
		{"holder.name", func(r *PushRequest) { r.Holder.Name = "" }},
		{"holder.code", func(r *PushRequest) { r.Holder.Code = "91350100M000100Y44" }},
		{"holder.code", func(r *PushRequest) {
			r.Holder.CodeType, r.Holder.Code = ident.HolderResidentID, "110105194912310021"
		}},
		{"holder.code_type", func(r *PushRequest) { r.Holder.CodeType = "999" }},
		{"issue_date", func(r *PushRequest) { r.IssueDate = "2026-13-01" }},
		{"valid_from", func(r *PushRequest) { r.ValidFrom = "" }},
		{"valid_from", func(r *PushRequest) { r.ValidFrom = "2026-11-19" }},
		{"valid_until", func(r *PushRequest) { r.ValidUntil = "2026-11-19" }},
		{"valid_until", func(r *PushRequest) { r.ValidUntil = "forever" }},
		{"area_code", func(r *PushRequest) { r.AreaCode = "43010" }},
		{"matter.code", func(r *PushRequest) { r.Matter.Code = "" }},
		{"matter.name", func(r *PushRequest) { r.Matter.Name = "" }},
		{"fields.legal_representative", func(r *PushRequest) { delete(r.Fields, "legal_representative") }},
		{"fields.ratio", func(r *PushRequest) { r.Fields["ratio"] = 1.5 }},
		{"attachment.data", func(r *PushRequest) { r.Attachment = &AttachmentData{MediaType: "application/pdf"} }},
		{"attachment.media_type", func(r *PushRequest) { r.Attachment = &AttachmentData{Data: []byte("x")} }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			req := sampleRequest("V-1")
			c.mutate(&req)
			_, err := f.lib.Push(ctxT(t), req)
			var e *licensehub.Error
			if !errors.As(err, &e) || e.Code != licensehub.EINVALID || e.Field != c.field {
				t.Fatalf("got %v (field %q), want EINVALID on %s", err, fieldOf(err), c.field)
			}
		})
	}
	if n := countObjects(t, f.b.objects, ""); n != 0 {
		t.Fatalf("rejected pushes left %d objects", n)
	}
}

func fieldOf(err error) string {
	var e *licensehub.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

func TestIdempotency(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		first := sampleRequest("IDEM-1")
		first.IdempotencyKey = "k-1"
		r1 := mustPush(t, f.lib, first)

		changed := sampleRequest("IDEM-1")
		changed.Holder.Name = "另一家公司"

		cases := []struct {
			name    string
			req     PushRequest
			created bool
			code    string
		}{
			{"same key same content", first, false, ""},
			{"same key other app's retry header, same content", func() PushRequest { r := first; r.App = "app-other"; return r }(), false, ""},
			{"same key different content", func() PushRequest { r := changed; r.IdempotencyKey = "k-1"; return r }(), false, licensehub.ECONFLICT},
			{"no key same natural key same content", func() PushRequest { r := first; r.IdempotencyKey = ""; return r }(), false, ""},
			{"new key same natural key same content", func() PushRequest { r := first; r.IdempotencyKey = "k-2"; return r }(), false, ""},
			{"same natural key different content", changed, false, licensehub.ECONFLICT},
			{"normalised number collides", func() PushRequest { r := changed; r.Number = "idem1"; return r }(), false, licensehub.ECONFLICT},
		}
		for _, c := range cases {
			res, err := f.lib.Push(ctx, c.req)
			if c.code != "" {
				if !licensehub.IsCode(err, c.code) {
					t.Fatalf("%s: got %v, want %s", c.name, err, c.code)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if res.Created != c.created || res.Identifier != r1.Identifier || string(res.Document) != string(r1.Document) {
				t.Fatalf("%s: created %v id %s", c.name, res.Created, res.Identifier)
			}
		}
		// The conflict names the existing license; the key reuse says so.
		_, err := f.lib.Push(ctx, changed)
		var e *licensehub.Error
		if !errors.As(err, &e) || e.Details["identifier"] != r1.Identifier {
			t.Fatalf("conflict does not name the license: %v", err)
		}
		reuse := changed
		reuse.IdempotencyKey = "k-1"
		_, err = f.lib.Push(ctx, reuse)
		if !errors.As(err, &e) || e.Message != "idempotency key reused with different content" {
			t.Fatalf("key reuse: %v", err)
		}
		if n := countObjects(t, b.objects, licensesPrefix); n != 1 {
			t.Fatalf("%d license objects, want 1", n)
		}
	})
}

func TestConcurrentIdenticalPushes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		const n = 50
		var wg sync.WaitGroup
		results := make([]*PushResult, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := sampleRequest("CONC-50")
				if i%2 == 0 {
					req.IdempotencyKey = "same-key"
				}
				results[i], errs[i] = f.lib.Push(ctx, req)
			}()
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("push %d: %v", i, errs[i])
			}
			if results[i].Created {
				created++
			}
			if results[i].Identifier != results[0].Identifier {
				t.Fatal("different identifiers")
			}
		}
		if created != 1 {
			t.Fatalf("%d pushes say Created, want exactly 1", created)
		}
		if c := countObjects(t, b.objects, licensesPrefix); c != 1 {
			t.Fatalf("%d license objects, want 1", c)
		}
		stored, err := f.lib.Get(ctx, results[0].Identifier)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if string(results[i].Document) != string(stored.Document) {
				t.Fatalf("push %d answered a document that is not the stored one", i)
			}
		}
	})
}

// stateSetups drive a fresh license into each state.
var stateSetups = []struct {
	name string
	ops  []string // status ops; "supersede" means NewVersion
}{
	{"valid", nil},
	{"suspended", []string{OpSuspend}},
	{"withdrawn", []string{OpWithdraw}},
	{"cancelled", []string{OpCancel}},
	{"expired", []string{OpExpire}},
	{"revoked", []string{OpRevoke}},
	{"superseded", []string{"supersede"}},
	{"restored", []string{OpSuspend, OpRestore}},
	{"suspended-then-revoked", []string{OpSuspend, OpRevoke}},
}

// wantTransition is the lifecycle table, written out independently of
// the implementation's.
var wantTransition = map[string]map[string]Status{
	"valid": {OpSuspend: StatusSuspended, OpCancel: StatusCancelled, OpWithdraw: StatusWithdrawn,
		OpRevoke: StatusRevoked, OpExpire: StatusExpired},
	"restored": {OpSuspend: StatusSuspended, OpCancel: StatusCancelled, OpWithdraw: StatusWithdrawn,
		OpRevoke: StatusRevoked, OpExpire: StatusExpired},
	"suspended": {OpRestore: StatusValid, OpCancel: StatusCancelled, OpWithdraw: StatusWithdrawn,
		OpRevoke: StatusRevoked, OpExpire: StatusExpired},
}

func TestTransitionTable(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		n := 0
		for _, st := range stateSetups {
			for _, op := range StatusOps {
				n++
				t.Run(st.name+"/"+op, func(t *testing.T) {
					req := sampleRequest(fmt.Sprintf("T-%d", n))
					res := mustPush(t, f.lib, req)
					id := res.Identifier
					for _, o := range st.ops {
						var err error
						if o == "supersede" {
							_, err = f.lib.NewVersion(ctx, id, req, OpRenew)
						} else {
							_, err = f.lib.ChangeStatus(ctx, id, o, "setup", "app-market")
						}
						if err != nil {
							t.Fatalf("setup %s: %v", o, err)
						}
					}
					before, err := f.lib.Get(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					rec, err := f.lib.ChangeStatus(ctx, id, op, "test "+op, "app-test")
					want, ok := wantTransition[st.name][op]
					if !ok {
						var e *licensehub.Error
						if !errors.As(err, &e) || e.Code != licensehub.EILLEGALTRANSITION || e.Details["current_status"] != before.StatusName ||
							e.Details["current_status_code"] != string(before.Status) || !strings.Contains(e.Message, before.StatusName) {
							t.Fatalf("illegal %s from %s: got %v, want %s with current_status %q (%s)", op, st.name, err,
								licensehub.EILLEGALTRANSITION, before.StatusName, before.Status)
						}
						after, _ := f.lib.Get(ctx, id)
						if after.Status != before.Status || len(after.History) != len(before.History) {
							t.Fatal("an illegal transition changed something")
						}
						return
					}
					if err != nil {
						t.Fatalf("%s from %s: %v", op, st.name, err)
					}
					if rec.To != want || rec.From != before.Status || rec.Seq != len(before.History)+1 {
						t.Fatalf("record %+v", rec)
					}
					after, err := f.lib.Get(ctx, id)
					if err != nil || after.Status != want || len(after.History) != rec.Seq {
						t.Fatalf("after: %v %+v", err, after)
					}
					if st2, _ := f.lib.Status(ctx, id); st2 != want {
						t.Fatalf("Status says %s, want %s", st2, want)
					}
					// The record is signed by the authority and stored.
					d, err := signing.ParseDocument(after.History[rec.Seq-1].Document)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := signing.VerifySignature(d, f.ring); err != nil {
						t.Fatalf("status record signature: %v", err)
					}
				})
			}
		}
		if _, err := f.lib.ChangeStatus(ctx, mustPush(t, f.lib, sampleRequest("T-op")).Identifier, "explode", "", ""); !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Fatalf("unknown op: %v", err)
		}
	})
}

func TestNewVersion(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		req := sampleRequest("NV-1")
		v1 := mustPush(t, f.lib, req)
		renewal := req
		renewal.IssueDate, renewal.ValidFrom, renewal.ValidUntil = "2031-11-01", "2031-11-20", "2036-11-19"
		f.clock.Set(time.Date(2031, 11, 1, 8, 0, 0, 0, time.UTC)) // renewed near the end of v1's validity
		v2, err := f.lib.NewVersion(ctx, v1.Identifier, renewal, OpRenew)
		if err != nil {
			t.Fatal(err)
		}
		if !v2.Created {
			t.Fatal("v2 not created")
		}
		// A retry answers the same version, Created=false.
		again, err := f.lib.NewVersion(ctx, v1.Identifier, renewal, OpRenew)
		if err != nil || again.Created || again.Identifier != v2.Identifier {
			t.Fatalf("retry: %v %+v", err, again)
		}
		old, err := f.lib.Get(ctx, v1.Identifier)
		if err != nil {
			t.Fatal(err)
		}
		if old.Status != StatusOther || old.StatusName != "superseded" || old.SupersededBy != v2.Identifier ||
			!reflect.DeepEqual(old.Versions, []string{v1.Identifier, v2.Identifier}) {
			t.Fatalf("old: %+v", old)
		}
		cur, err := f.lib.Get(ctx, v2.Identifier)
		if err != nil || cur.Status != StatusValid || cur.Previous != v1.Identifier || cur.License.Version != "002" ||
			!reflect.DeepEqual(cur.Versions, old.Versions) {
			t.Fatalf("new: %v %+v", err, cur)
		}
		vs, err := f.lib.Versions(ctx, v1.Identifier)
		if err != nil || !reflect.DeepEqual(vs, old.Versions) {
			t.Fatalf("Versions: %v %v", vs, err)
		}
		nat, _ := b.kv.Get(ctx, naturalKV(typeCode, authorityA, "NV1"))
		if string(nat) != v2.Identifier {
			t.Fatalf("natural key names %s", nat)
		}
		// The superseded one allows nothing, not even another version.
		if _, err := f.lib.NewVersion(ctx, v1.Identifier, renewal, OpChange); !licensehub.IsCode(err, licensehub.ECONFLICT) {
			t.Fatalf("new version of superseded: %v", err)
		}
		if _, err := f.lib.ChangeStatus(ctx, v1.Identifier, OpRestore, "", ""); !licensehub.IsCode(err, licensehub.EILLEGALTRANSITION) {
			t.Fatalf("restore superseded: %v", err)
		}
		// A change must keep the identity.
		bad := renewal
		bad.Number = "NV-2"
		if _, err := f.lib.NewVersion(ctx, v2.Identifier, bad, OpChange); fieldOf(err) != "number" {
			t.Fatalf("change of number: %v", err)
		}
		sums, _ := f.lib.ByHolder(ctx, holderCredit)
		if len(sums) != 2 || sums[0].Status != StatusOther || sums[0].SupersededBy != v2.Identifier {
			t.Fatalf("ByHolder: %+v", sums)
		}
		// Crash between the v3 object and the supersede record: Get
		// completes it.
		v3req := renewal
		v3req.ValidUntil = "2037-11-19"
		p, err := f.lib.prepare(ctx, &v3req, 3, v2.Identifier, OpChange, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.lib.store(ctx, &v3req, p, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := f.lib.Get(ctx, v2.Identifier)
		if err != nil || got.SupersededBy != p.id.String() || got.StatusName != "superseded" {
			t.Fatalf("repair of an interrupted NewVersion: %v %+v", err, got)
		}
	})
}

func TestSweeperOnceWithTwoInstances(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		second := f.library(t, b.kv)
		var due []string
		for i := range 6 {
			req := sampleRequest(fmt.Sprintf("SW-%d", i))
			req.ValidUntil = "2026-12-31"
			if i == 5 {
				req.ValidUntil = LongTerm
			}
			res := mustPush(t, f.lib, req)
			if i == 1 {
				if _, err := f.lib.ChangeStatus(ctx, res.Identifier, OpSuspend, "inspection", ""); err != nil {
					t.Fatal(err)
				}
			}
			if i == 2 {
				if _, err := f.lib.ChangeStatus(ctx, res.Identifier, OpRevoke, "penalty decision 2026-7", ""); err != nil {
					t.Fatal(err)
				}
			}
			if i != 2 && i != 5 {
				due = append(due, res.Identifier)
			}
		}
		// Not due yet: 2026-12-31 is valid through that day in Beijing.
		if n, err := f.lib.ExpireDue(ctx, time.Date(2026, 12, 31, 15, 59, 0, 0, time.UTC)); err != nil || n != 0 {
			t.Fatalf("early sweep expired %d: %v", n, err)
		}
		when := time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC) // 2027-01-01 00:00 CST
		f.clock.Set(when)
		var wg sync.WaitGroup
		counts := make([]int, 4)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lib := f.lib
				if i%2 == 1 {
					lib = second
				}
				n, err := lib.ExpireDue(ctx, when)
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			}()
		}
		wg.Wait()
		// A late round finds nothing more to do.
		n, err := second.ExpireDue(ctx, when)
		if err != nil || n != 0 {
			t.Fatalf("late round: %d %v", n, err)
		}
		total := 0
		for _, c := range counts {
			total += c
		}
		if total != len(due) {
			t.Fatalf("expired %d in all, want %d", total, len(due))
		}
		for _, id := range due {
			rec, err := f.lib.Get(ctx, id)
			if err != nil || rec.Status != StatusExpired {
				t.Fatalf("%s: %v %+v", id, err, rec)
			}
			expires := 0
			for _, h := range rec.History {
				if h.Op == OpExpire {
					expires++
				}
			}
			if expires != 1 {
				t.Fatalf("%s has %d expire records", id, expires)
			}
		}
		// And without the lock, the create-only record still allows one.
		if _, err := f.lib.ChangeStatus(ctx, due[0], OpExpire, "again", SweeperApp); !licensehub.IsCode(err, licensehub.EILLEGALTRANSITION) {
			t.Fatalf("second expire: %v", err)
		}
	})
}

func TestRunSweeperStops(t *testing.T) {
	f := newFixture(t, fsMemBackend(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.lib.RunSweeper(ctx, 10*time.Millisecond); close(done) }()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunSweeper did not return")
	}
}

// snapshot is everything the lookups answer.
type snapshot struct {
	Records  map[string]string
	Holders  map[string][]Summary
	Statuses map[string]Status
	Natural  map[string]string
}

func takeSnapshot(t *testing.T, lib *Library, kv licensehub.KV, ids []string, holders []string) snapshot {
	ctx := ctxT(t)
	s := snapshot{Records: map[string]string{}, Holders: map[string][]Summary{}, Statuses: map[string]Status{}, Natural: map[string]string{}}
	for _, id := range ids {
		rec, err := lib.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rec)
		s.Records[id] = string(b)
		st, err := lib.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s.Statuses[id] = st
		pid, _ := ident.Parse(id)
		nk := naturalKV(pid.TypeCode, pid.IssuerCode, pid.Serial)
		v, _ := kv.Get(ctx, nk)
		s.Natural[nk] = string(v)
	}
	for _, h := range holders {
		sums, err := lib.ByHolder(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		s.Holders[h] = sums
	}
	return s
}

func TestReindexRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		var ids []string
		for i := range 12 {
			req := sampleRequest(fmt.Sprintf("RX-%d", i))
			if i%3 == 0 {
				req.Holder = Holder{Name: "张三", Code: holderResident, CodeType: ident.HolderResidentID}
			}
			res := mustPush(t, f.lib, req)
			ids = append(ids, res.Identifier)
			switch i % 4 {
			case 1:
				if _, err := f.lib.ChangeStatus(ctx, res.Identifier, OpSuspend, "check", "app"); err != nil {
					t.Fatal(err)
				}
			case 2:
				if _, err := f.lib.ChangeStatus(ctx, res.Identifier, OpRevoke, "penalty", "app"); err != nil {
					t.Fatal(err)
				}
			case 3:
				v2, err := f.lib.NewVersion(ctx, res.Identifier, req, OpChange)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, v2.Identifier)
			}
		}
		holders := []string{holderCredit, holderResident}
		sort.Strings(ids)
		before := takeSnapshot(t, f.lib, b.kv, ids, holders)
		streamBefore, _ := b.kv.XLen(ctx, OutboxStream)

		// Lose the KV.
		kv := b.kv
		if b.flushKV != nil {
			b.flushKV(t)
		} else {
			kv = b.newKV(t)
		}
		lib := f.library(t, kv)
		if sums, _ := lib.ByHolder(ctx, holderCredit); len(sums) != 0 {
			t.Fatal("KV not empty after the flush")
		}
		rep, err := lib.Reindex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Licenses != len(ids) || len(rep.Errors) != 0 || rep.SupersedeRepairs != 0 || rep.OutboxRepairs != 0 {
			t.Fatalf("report %+v", rep)
		}
		after := takeSnapshot(t, lib, kv, ids, holders)
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("lookups differ after reindex:\nbefore %+v\nafter  %+v", before, after)
		}
		if n, _ := kv.XLen(ctx, OutboxStream); n != 0 {
			t.Fatalf("reindex re-queued %d events (had %d)", n, streamBefore)
		}
		// Reindex twice is the same.
		if _, err := lib.Reindex(ctx); err != nil {
			t.Fatal(err)
		}
		if again := takeSnapshot(t, lib, kv, ids, holders); !reflect.DeepEqual(before, again) {
			t.Fatal("second reindex changed the lookups")
		}
	})
}

// TestPendingStatusChange: reads answer from the index alone unless a
// status change is pending; a writer that died after its status record
// but before the index update (simulated: the old index entry put back,
// the marker left) is noticed by the next read, which repairs the index.
func TestPendingStatusChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		req := sampleRequest("PENDING-1")
		id := mustPush(t, f.lib, req).Identifier
		before, err := b.kv.Get(ctx, kvID+id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.lib.ChangeStatus(ctx, id, OpRevoke, "test", "app"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.kv.Get(ctx, kvPending+id); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			t.Fatalf("marker left after a change that answered: %v", err)
		}
		// The dead writer: its record is stored, the index is not updated.
		if err := b.kv.Set(ctx, kvID+id, before, 0); err != nil {
			t.Fatal(err)
		}
		if err := b.kv.Set(ctx, kvPending+id, []byte("1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		sums, err := f.lib.ByHolder(ctx, req.Holder.Code)
		if err != nil || len(sums) != 1 || sums[0].Status != StatusRevoked {
			t.Fatalf("ByHolder with a pending change: %+v %v", sums, err)
		}
		if st, err := f.lib.Status(ctx, id); err != nil || st != StatusRevoked {
			t.Fatalf("Status with a pending change: %s %v", st, err)
		}
		raw, _ := b.kv.Get(ctx, kvID+id)
		var e indexEntry
		if err := json.Unmarshal(raw, &e); err != nil || e.Status != StatusRevoked || e.StatusSeq != 1 {
			t.Fatalf("index not repaired: %s %v", raw, err)
		}
	})
}

// TestSweeperWaitsForTheLease: while another instance holds lic:sweeper,
// ExpireDue does nothing; once it is released, the round runs and leaves
// the lease free.
func TestSweeperWaitsForTheLease(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		req := sampleRequest("SW-LEASE")
		req.ValidUntil = "2026-12-31"
		res := mustPush(t, f.lib, req)
		when := time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC)
		other, err := lease.Acquire(ctx, b.kv, kvSweeper, lease.Options{Owner: "other-instance", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := f.lib.ExpireDue(ctx, when); err != nil || n != 0 {
			t.Fatalf("ExpireDue under another's lease = %d, %v; want 0, nil", n, err)
		}
		if err := other.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := f.lib.ExpireDue(ctx, when); err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
		}
		if rec, err := f.lib.Get(ctx, res.Identifier); err != nil || rec.Status != StatusExpired {
			t.Fatalf("%s after the sweep: %v %+v", res.Identifier, err, rec)
		}
		if who, err := lease.Holder(ctx, b.kv, kvSweeper); err != nil || who != "" {
			t.Fatalf("sweeper lease after the round held by %q (%v), want free", who, err)
		}
	})
}
