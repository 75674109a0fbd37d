package license

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signable"
	"github.com/licensehub/licensehub/signing"
)

// policyValidator is fieldsValidator with a declared Policy (as
// *catalog.Type declares its catalog entry's).
type policyValidator struct {
	fieldsValidator
	p Policy
}

func (v policyValidator) Policy() Policy { return v.p }

// policyLibrary is the fixture's library with the type's policy p and an
// issue-date skew of skew days.
func (f *fixture) policyLibrary(t *testing.T, p Policy, skew int) *Library {
	t.Helper()
	lib, err := NewLibrary(Config{Objects: f.b.objects, KV: f.b.kv, Signers: f.ring,
		Catalog: CatalogFunc(func(code string) (Validator, bool) {
			return policyValidator{p: p}, code == typeCode
		}),
		TypeName: func(string) string { return "营业执照" }, Clock: f.clock.Now, IssueDateSkewDays: skew,
		OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func wantRule(t *testing.T, err error, field, rule string, details map[string]any) {
	t.Helper()
	var e *licensehub.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want %s %s rule %s", err, licensehub.EINVALID, field, rule)
	}
	if e.Code != licensehub.EINVALID || e.Field != field || e.Details["rule"] != rule {
		t.Fatalf("err = %s %s %v (%s), want %s %s rule %s", e.Code, e.Field, e.Details, e.Message, licensehub.EINVALID, field, rule)
	}
	for k, v := range details {
		if e.Details[k] != v {
			t.Errorf("Details[%s] = %v, want %v", k, e.Details[k], v)
		}
	}
}

// TestPushRefusesHostileText: every text that goes into the signed body
// follows package signable's rules; each refusal names field, rule and
// position, and nothing is written.
func TestPushRefusesHostileText(t *testing.T) {
	f := newFixture(t, fsMemBackend(t))
	long := strings.Repeat("名", 10*1024/3) // a 10 KB name
	for _, tc := range []struct {
		name   string
		change func(r *PushRequest)
		field  string
		rule   string
		pos    int
	}{
		{"invalid UTF-8 ff fe c3 28 in holder.name", func(r *PushRequest) { r.Holder.Name = "\xff\xfe\xc3\x28" }, "holder.name", signable.RuleInvalidUTF8, 1},
		{"replacement characters in holder.name", func(r *PushRequest) { r.Holder.Name = "\ufffd\ufffd\ufffd(" }, "holder.name", signable.RuleReplacement, 1},
		{"U+202E in holder.name", func(r *PushRequest) { r.Holder.Name = "福州\u202e司公限有" }, "holder.name", signable.RuleBidi, 3},
		{"U+200B in holder.name", func(r *PushRequest) { r.Holder.Name = "福州\u200b示范" }, "holder.name", signable.RuleZeroWidth, 3},
		{"10 KB holder.name", func(r *PushRequest) { r.Holder.Name = long }, "holder.name", signable.RuleLength, MaxHolderNameLen + 1},
		{"NFD holder.name", func(r *PushRequest) { r.Holder.Name = "Cafe\u0301 Ltd" }, "holder.name", signable.RuleNFC, 4},
		{"newline in issuer.name", func(r *PushRequest) { r.Issuer.Name = "湖南省\n市场监督管理局" }, "issuer.name", signable.RuleControl, 4},
		{"201 characters of issuer.name", func(r *PushRequest) { r.Issuer.Name = strings.Repeat("局", 201) }, "issuer.name", signable.RuleLength, 201},
		{"101 characters of name", func(r *PushRequest) { r.Name = strings.Repeat("证", 101) }, "name", signable.RuleLength, 101},
		{"private use in name", func(r *PushRequest) { r.Name = "营业\ue000执照" }, "name", signable.RulePrivateUse, 3},
		{"zero-width in number", func(r *PushRequest) { r.Number = "HT\u200b-1" }, "number", signable.RuleZeroWidth, 3},
		{"201 characters of matter.name", func(r *PushRequest) { r.Matter.Name = strings.Repeat("事", 201) }, "matter.name", signable.RuleLength, 201},
		{"bidi in matter.code", func(r *PushRequest) { r.Matter.Code = "0001\u2066" }, "matter.code", signable.RuleBidi, 5},
		{"DEL in type_name", func(r *PushRequest) { r.TypeName = "营业执照\x7f" }, "type_name", signable.RuleControl, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sampleRequest("HT-1")
			tc.change(&req)
			_, err := f.lib.Push(ctxT(t), req)
			wantRule(t, err, tc.field, tc.rule, map[string]any{"position": tc.pos})
			if _, cerr := f.lib.Check(ctxT(t), req); licensehub.ErrorCode(cerr) != licensehub.EINVALID {
				t.Errorf("Check = %v, want the same refusal as Push", cerr)
			}
		})
	}
	if n := countObjects(t, f.b.objects, licensesPrefix); n != 0 {
		t.Errorf("%d licenses stored by refused pushes", n)
	}
}

// TestPushDates: dates are plausible and ordered as the type's policy and
// the configured skew allow (the fixture's today is 2026-11-26 in China).
func TestPushDates(t *testing.T) {
	f := newFixture(t, fsMemBackend(t))
	strict := f.policyLibrary(t, Policy{}, 1)
	lenient := f.policyLibrary(t, Policy{EarliestYear: 1800, ValidFromBeforeIssue: true}, 0)
	n := 0
	for _, tc := range []struct {
		name              string
		lib               *Library
		issue, from, till string
		field, rule       string // "" when accepted
	}{
		{"ordinary", strict, "2026-11-20", "2026-11-20", "2031-11-19", "", ""},
		{"issue date 1800", strict, "1800-01-01", "1800-01-01", LongTerm, "issue_date", RuleEarliestYear},
		{"issue date 1800 where the type allows it", lenient, "1800-01-01", "1800-01-01", LongTerm, "", ""},
		{"issue date 1948", strict, "1948-12-31", "2026-01-01", LongTerm, "issue_date", RuleEarliestYear},
		{"issue date 1949", strict, "1949-01-01", "1949-01-01", LongTerm, "", ""},
		{"issue date 2099", strict, "2099-01-01", "2099-01-01", LongTerm, "issue_date", RuleFutureDate},
		{"issue date tomorrow within the skew", strict, "2026-11-27", "2026-11-27", LongTerm, "", ""},
		{"issue date the day after tomorrow", strict, "2026-11-28", "2026-11-28", LongTerm, "issue_date", RuleFutureDate},
		{"issue date tomorrow without skew", lenient, "2026-11-27", "2026-11-27", LongTerm, "issue_date", RuleFutureDate},
		{"valid_from before issue_date", strict, "2026-11-20", "2026-11-19", "2031-11-19", "valid_from", RuleDateOrder},
		{"valid_from before issue_date where the type allows it", lenient, "2026-11-20", "2026-11-01", "2031-11-19", "", ""},
		{"valid_until before valid_from", strict, "2026-11-20", "2026-11-20", "2026-11-19", "valid_until", RuleDateOrder},
		{"not a date", strict, "2026-02-30", "2026-11-20", "2031-11-19", "issue_date", RuleDate},
		{"already expired", strict, "2010-01-01", "2010-01-01", "2015-12-31", "valid_until", RuleExpired},
		{"expired yesterday", strict, "2020-01-01", "2020-01-01", "2026-11-25", "valid_until", RuleExpired},
		{"ends today: still valid", strict, "2020-01-01", "2020-01-01", "2026-11-26", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n++
			req := sampleRequest("D-" + strings.Repeat("1", n))
			req.IssueDate, req.ValidFrom, req.ValidUntil = tc.issue, tc.from, tc.till
			_, err := tc.lib.Push(ctxT(t), req)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantRule(t, err, tc.field, tc.rule, nil)
		})
	}
}

// TestExpiredLicense: a license whose validity already ended is refused
// on a push, and stored with status 05 at once by the stock conversion
// where the type allows recording historic licenses; it never reads as
// valid.
func TestExpiredLicense(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		historic := f.policyLibrary(t, Policy{RecordExpired: true}, 1)
		old := sampleRequest("HIST-1")
		old.IssueDate, old.ValidFrom, old.ValidUntil = "2012-03-01", "2012-03-01", "2017-02-28"
		stock := old
		stock.Provenance = &Provenance{Kind: ProvenanceStock, Source: "scjg-food-permit", Batch: "job-1", SourceLine: 7,
			OriginalIssueDate: "2012年3月1日"}

		// A department's push of an expired license: refused, even
		// where the type allows historic records.
		for _, lib := range []*Library{f.lib, historic} {
			if _, err := lib.Push(ctx, old); err == nil {
				t.Fatal("an expired license was pushed")
			} else {
				wantRule(t, err, "valid_until", RuleExpired, nil)
			}
		}
		// The conversion, where the type does not allow it: refused.
		_, err := f.lib.Push(ctx, stock)
		wantRule(t, err, "valid_until", RuleExpired, nil)

		// The conversion where it does: stored, expired from the start.
		res, err := historic.Push(ctx, stock)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := historic.Status(ctx, res.Identifier); err != nil || st != StatusExpired {
			t.Fatalf("Status = %s, %v; want 05", st, err)
		}
		rec, err := historic.Get(ctx, res.Identifier)
		if err != nil || rec.Status != StatusExpired || rec.StatusName != "expired" {
			t.Fatalf("Get = %+v, %v; want expired", rec, err)
		}
		if _, err := historic.ChangeStatus(ctx, res.Identifier, OpSuspend, "inspection", "app"); !licensehub.IsCode(err, licensehub.EILLEGALTRANSITION) {
			t.Fatalf("suspending an expired license: %v", err)
		}
		// Not a candidate of the sweeper, and a retry of the same row
		// answers the same license, still expired.
		if n, err := historic.ExpireDue(ctx, f.clock.Now()); err != nil || n != 0 {
			t.Fatalf("ExpireDue = %d, %v", n, err)
		}
		again, err := historic.Push(ctx, stock)
		if err != nil || again.Created || again.Identifier != res.Identifier {
			t.Fatalf("retry = %+v, %v", again, err)
		}
		// The index lost (FLUSHALL): the object store alone still says 05.
		if b.flushKV != nil {
			b.flushKV(t)
		} else {
			historic = func() *Library { f.b.kv = b.newKV(t); return f.policyLibrary(t, Policy{RecordExpired: true}, 1) }()
		}
		if st, err := historic.Status(ctx, res.Identifier); err != nil || st != StatusExpired {
			t.Fatalf("Status after losing the index = %s, %v; want 05", st, err)
		}
		if _, err := historic.Reindex(ctx); err != nil {
			t.Fatal(err)
		}
		hs, err := historic.ByHolder(ctx, stock.Holder.Code)
		if err != nil || len(hs) != 1 || hs[0].Status != StatusExpired {
			t.Fatalf("ByHolder after Reindex = %+v, %v", hs, err)
		}
	})
}

// outboxEvents reads every event recorded in the outbox objects, in key
// order.
func outboxEvents(t testing.TB, objs licensehub.ObjectStore) []map[string]any {
	t.Helper()
	var keys []string
	if err := objs.List(ctxT(t), outboxPrefix, func(oi licensehub.ObjectInfo) error { keys = append(keys, oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var out []map[string]any
	for _, k := range keys {
		rc, _, err := objs.Get(ctxT(t), k)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Events []map[string]any `json:"events"`
		}
		err = json.NewDecoder(rc).Decode(&doc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, doc.Events...)
	}
	return out
}

// TestHistoricEvent: the exchange event of a historic license carries its
// initial status 05, and every way the event is recorded again (a retry
// of the push completing a lost index step, Reindex repairing a lost
// outbox) records the same event ID with it, and no status event.
func TestHistoricEvent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		ctx := ctxT(t)
		historic := f.policyLibrary(t, Policy{RecordExpired: true}, 1)
		stock := sampleRequest("HIST-EV-1")
		stock.IssueDate, stock.ValidFrom, stock.ValidUntil = "2012-03-01", "2012-03-01", "2017-02-28"
		stock.Provenance = &Provenance{Kind: ProvenanceStock, Source: "scjg-food-permit", Batch: "job-1", SourceLine: 7}
		hist := mustPush(t, historic, stock).Identifier
		valid := mustPush(t, historic, sampleRequest("VALID-EV-1")).Identifier

		// want: every event recorded, by license, with its initial status.
		check := func(when string, recorded int) {
			t.Helper()
			n := 0
			for _, ev := range outboxEvents(t, b.objects) {
				id, _ := ev["identifier"].(string)
				want := map[string]any{hist: "05", valid: nil}[id]
				if ev["event_id"] != id+"/new" {
					t.Fatalf("%s: event %v; want only the licenses' new events", when, ev["event_id"])
				}
				if ev["initial_status"] != want {
					t.Fatalf("%s: event %s has initial_status %v, want %v", when, ev["event_id"], ev["initial_status"], want)
				}
				if id == hist {
					n++
				}
			}
			if n != recorded {
				t.Fatalf("%s: the historic license's event is recorded %d times, want %d", when, n, recorded)
			}
		}
		check("pushed", 1)

		// A retry of the push that finds the license stored and indexed
		// records nothing; one that finds the index step incomplete
		// completes it, recording the same event again.
		if res, err := historic.Push(ctx, stock); err != nil || res.Created {
			t.Fatalf("retry: %+v, %v", res, err)
		}
		check("retried", 1)
		if err := b.kv.Delete(ctx, kvID+hist); err != nil {
			t.Fatal(err)
		}
		if res, err := historic.Push(ctx, stock); err != nil || res.Created {
			t.Fatalf("retry after a lost index step: %+v, %v", res, err)
		}
		check("retried after a lost index step", 2)

		// The outbox lost: Reindex records the events again.
		if err := b.objects.List(ctx, outboxPrefix, func(oi licensehub.ObjectInfo) error {
			return b.objects.Delete(ctx, oi.Key)
		}); err != nil {
			t.Fatal(err)
		}
		if rep, err := historic.Reindex(ctx); err != nil || rep.OutboxRepairs != 2 {
			t.Fatalf("Reindex: %+v, %v", rep, err)
		}
		check("reindexed", 1)
		if st, err := historic.Status(ctx, hist); err != nil || st != StatusExpired {
			t.Fatalf("Status = %s, %v; want 05", st, err)
		}
	})
}

// TestStatusReason: suspend, cancel, withdraw and revoke need a reason; a
// reason follows the text rules and is signed in the status record.
func TestStatusReason(t *testing.T) {
	f := newFixture(t, fsMemBackend(t))
	ctx := ctxT(t)
	for i, tc := range []struct {
		name, op, reason string
		rule             string // "" when accepted
	}{
		{"suspend without reason", OpSuspend, "", RuleRequired},
		{"cancel with a blank reason", OpCancel, "  \u3000", RuleRequired},
		{"withdraw without reason", OpWithdraw, "", RuleRequired},
		{"revoke without reason", OpRevoke, "", RuleRequired},
		{"reason of 501 characters", OpRevoke, strings.Repeat("罚", 501), signable.RuleLength},
		{"reason with U+202E", OpSuspend, "检查\u202e中", signable.RuleBidi},
		{"reason with a line break", OpSuspend, "检查\n中", signable.RuleControl},
		{"restore needs none", OpRestore, "", ""},
		{"expire needs none", OpExpire, "", ""},
		{"revoke with reason", OpRevoke, "行政处罚决定书 杭市监罚〔2026〕7号", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := mustPush(t, f.lib, sampleRequest("R-"+strings.Repeat("9", i+1))).Identifier
			if tc.op == OpRestore {
				if _, err := f.lib.ChangeStatus(ctx, id, OpSuspend, "检查", "app"); err != nil {
					t.Fatal(err)
				}
			}
			rec, err := f.lib.ChangeStatus(ctx, id, tc.op, tc.reason, "app")
			if tc.rule != "" {
				wantRule(t, err, "reason", tc.rule, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := signing.ParseDocument(rec.Document)
			if err != nil {
				t.Fatal(err)
			}
			var body StatusChange
			if err := json.Unmarshal(d.Body, &body); err != nil || body.Reason != tc.reason {
				t.Fatalf("signed record's reason %q (%v), want %q", body.Reason, err, tc.reason)
			}
			if _, err := signing.VerifySignature(d, f.ring); err != nil {
				t.Fatal(err)
			}
		})
	}
}
