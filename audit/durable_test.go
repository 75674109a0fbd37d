package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// localHub is one hub instance with its own local journal and, when
// shared is set, the shared stream journal.
func localHub(t testing.TB, objects licensehub.ObjectStore, keys *signing.Keyring, kv licensehub.KV, shared Journal, dir string) *hub {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	lj, err := OpenLocalJournal(dir)
	if err != nil {
		t.Fatalf("OpenLocalJournal: %v", err)
	}
	t.Cleanup(func() { lj.Close() })
	tr, err := New(Config{Journal: shared, Local: lj, Objects: objects, Signers: keys, Authority: testAuthority, Lock: kv,
		HolderKey: testHolderKey, SegmentSize: 7, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	return &hub{Trail: tr, journal: tr.journal, objects: objects, keys: keys, lock: kv}
}

// sealedRecords returns the records of every sealed segment, in chain
// order.
func sealedRecords(t testing.TB, objects licensehub.ObjectStore) []Record {
	t.Helper()
	nums, _, err := listSegments(t.Context(), objects)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, n := range nums {
		ls := segmentLines(t, objects, n)
		for _, l := range ls[:len(ls)-1] {
			p := parseLine(0, l)
			r, err := decodeRecord(p.Record)
			if err != nil {
				t.Fatalf("segment %d: %v", n, err)
			}
			out = append(out, r)
		}
	}
	return out
}

// TestLocalJournalNumbers: records are numbered 1, 2, … per instance, in
// the instance's stable ID; the numbering and the ID survive a restart,
// also after the journal was trimmed empty.
func TestLocalJournalNumbers(t *testing.T) {
	objects := openFS(t)
	keys := keyring(t)
	kv := openMem(t)
	dir := t.TempDir()
	lj, err := OpenLocalJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := lj.InstanceID()
	if !validInstanceID(id) {
		t.Fatalf("instance ID %q", id)
	}
	tr, err := New(Config{Local: lj, Objects: objects, Signers: keys, Authority: testAuthority, Lock: kv, HolderKey: testHolderKey,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Local: lj, InstanceID: "other", Objects: objects, Signers: keys, Authority: testAuthority, Lock: kv, HolderKey: testHolderKey}); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Fatalf("an InstanceID other than the local journal's: %v, want EINVALID", err)
	}
	h := &hub{Trail: tr, journal: lj, objects: objects, keys: keys, lock: kv}
	rec := record("app-a", "license.read")
	rec.InstanceID, rec.Seq = "forged", 99 // Append sets both
	if err := h.Append(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, h, 4)
	mustSeal(t, h) // trims the local journal: it is the journal
	if err := lj.Close(); err != nil {
		t.Fatal(err)
	}

	lj2, err := OpenLocalJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lj2.Close()
	if lj2.InstanceID() != id || lj2.Acked() != 5 {
		t.Fatalf("reopened: instance %q acked %d, want %q 5", lj2.InstanceID(), lj2.Acked(), id)
	}
	tr2, err := New(Config{Local: lj2, Objects: objects, Signers: keys, Authority: testAuthority, Lock: kv, HolderKey: testHolderKey,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h2 := &hub{Trail: tr2, journal: lj2, objects: objects, keys: keys, lock: kv}
	mustAppend(t, h2, 3)
	mustSeal(t, h2)
	var got []string
	for _, r := range sealedRecords(t, objects) {
		got = append(got, fmt.Sprintf("%s/%d", r.InstanceID, r.Seq))
	}
	var want []string
	for i := 1; i <= 8; i++ {
		want = append(want, fmt.Sprintf("%s/%d", id, i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sealed records:\n got %v\nwant %v", got, want)
	}
	rep, err := Verify(t.Context(), objects, keys, ExpectAuthority(testAuthority), GapGrace(0))
	if err != nil || !rep.OK {
		t.Fatalf("Verify: %v %v", err, rep.Problem)
	}
}

// TestGroupCommitSharesFsyncs: appenders that wait while an fsync runs
// share the next one. The first fsync is held until all 32 appenders have
// written their frames, so exactly two fsyncs cover the 32 appends.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	const n = 32
	lj, err := OpenLocalJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer lj.Close()
	j := lj.fj
	var first atomic.Bool
	j.beforeSync = func() {
		if !first.CompareAndSwap(false, true) {
			return
		}
		for { // wait (the condition, not a duration) until every appender wrote
			j.mu.Lock()
			w := j.writeSeq
			j.mu.Unlock()
			if w == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	seqs := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, s, err := lj.appendRecord(t.Context(), []byte(fmt.Sprintf(`{"operation":"x","i":%d}`, i)))
			if err != nil {
				t.Error(err)
			}
			seqs[i] = s
		}()
	}
	wg.Wait()
	if got := j.syncs.Load(); got != 2 {
		t.Fatalf("%d appends ran %d fsyncs, want 2 (group commit)", n, got)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("numbers %v, want 1..%d", seqs, n)
		}
	}
	// Numbers follow the journal's order.
	var order []uint64
	if err := lj.scan(t.Context(), "", func(e Entry, s uint64) bool { order = append(order, s); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(order) || len(order) != n {
		t.Fatalf("journal order %v", order)
	}
}

// flushingKV is a KV whose data is lost (as Redis killed and restarted
// empty) just before the XAdd call number at.
type flushingKV struct {
	licensehub.KV
	at    int64
	calls atomic.Int64
	keys  []string
}

func (k *flushingKV) XAdd(ctx context.Context, key string, fields map[string]string) (string, error) {
	if k.calls.Add(1) == k.at {
		if err := k.KV.Delete(ctx, k.keys...); err != nil {
			return "", err
		}
	}
	return k.KV.XAdd(ctx, key, fields)
}

// TestRedisLossBetweenAnswerAndSeal: two instances on the real Redis
// append concurrently; records are sealed, then Redis loses every key
// (stream, epoch, lock) at the 25th publication while appends continue.
// The instances re-publish what is not sealed (some records are then in
// the stream twice); every acknowledged record is sealed exactly once,
// Verify finds no gap, and the local journals are trimmed.
func TestRedisLossBetweenAnswerAndSeal(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			objects := os.open(t)
			keys := keyring(t)
			base := openRedis(t)
			kv := &flushingKV{KV: base, at: 25, keys: []string{"audit:journal", EpochKey, LockKey}}
			stream := NewStreamJournal(kv, "audit:journal")
			a := localHub(t, objects, keys, kv, stream, "")
			b := localHub(t, objects, keys, kv, stream, "")
			for _, h := range []*hub{a, b} {
				if err := h.Reconcile(t.Context()); err != nil { // as Run starts
					t.Fatal(err)
				}
			}

			var acked sync.Map // request ID -> instance
			appendN := func(h *hub, n int) {
				var wg sync.WaitGroup
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range n / 4 {
							r := record("app-a", "license.read")
							if err := h.Append(t.Context(), r); err != nil {
								t.Error(err)
								return
							}
							acked.Store(r.RequestID, h.InstanceID())
						}
					}()
				}
				wg.Wait()
			}
			appendN(a, 12)
			appendN(b, 8)
			mustSeal(t, a) // 20 sealed; neither instance has trimmed yet
			appendN(a, 16) // Redis loses everything at publication 25
			appendN(b, 8)
			if kv.calls.Load() < kv.at {
				t.Fatalf("only %d publications; the loss was not injected", kv.calls.Load())
			}
			// Both re-publish what is not sealed: the records the loss took
			// and the ones the new stream holds already (published twice).
			for _, h := range []*hub{a, b} {
				if err := h.Reconcile(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if l, _ := base.XLen(t.Context(), "audit:journal"); l <= 24 {
				t.Fatalf("the stream holds %d entries after re-publishing; want duplicates beyond the 24 not sealed", l)
			}
			mustSeal(t, b)
			for _, h := range []*hub{a, b} { // trims; publishes nothing more
				if err := h.Reconcile(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if res := mustSeal(t, b); res.Records != 0 {
				t.Fatalf("a last seal sealed %d records, want 0", res.Records)
			}

			count := map[string]int{}
			for _, r := range sealedRecords(t, objects) {
				count[r.RequestID]++
			}
			n := 0
			acked.Range(func(k, v any) bool {
				n++
				if c := count[k.(string)]; c != 1 {
					t.Errorf("acknowledged record %s (instance %s) sealed %d times", k, v, c)
				}
				return true
			})
			if n != 44 || len(count) != 44 {
				t.Fatalf("%d acknowledged, %d distinct sealed; want 44", n, len(count))
			}
			rep, err := Verify(t.Context(), objects, keys, ExpectAuthority(testAuthority), GapGrace(0))
			if err != nil || !rep.OK || len(rep.Gaps) != 0 {
				t.Fatalf("Verify: %v %v gaps %v", err, rep.Problem, rep.Gaps)
			}
			for _, in := range rep.Instances {
				want := map[string]uint64{a.InstanceID(): 28, b.InstanceID(): 16}[in.Instance]
				if in.Sealed != want || in.Top != want || in.Acked != want {
					t.Errorf("instance %+v, want %d sealed and acknowledged", in, want)
				}
			}
			for _, h := range []*hub{a, b} {
				var left int
				h.local.scan(t.Context(), h.recon.trimmedID, func(Entry, uint64) bool { left++; return true })
				if left != 0 {
					t.Errorf("instance %s keeps %d sealed records in its local journal", h.InstanceID(), left)
				}
			}
		})
	}
}

// TestPublishFailureKeepsRecord: when the shared journal refuses a record
// after the local journal has it, Append still succeeds (the record is
// durable) and the next Reconcile publishes it.
func TestPublishFailureKeepsRecord(t *testing.T) {
	objects := openFS(t)
	keys := keyring(t)
	kv := openMem(t)
	fj := &failingJournal{Journal: NewStreamJournal(kv, "audit:journal")}
	h := localHub(t, objects, keys, kv, fj, "")
	if err := h.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, h, 2)
	fj.fail.Store(true)
	mustAppend(t, h, 1)
	fj.fail.Store(false)
	mustAppend(t, h, 2)
	mustSeal(t, h)
	if err := h.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSeal(t, h)
	rep, err := Verify(t.Context(), objects, keys, ExpectAuthority(testAuthority), GapGrace(0))
	if err != nil || !rep.OK || rep.Records != 5 {
		t.Fatalf("Verify: %v %v %d records", err, rep.Problem, rep.Records)
	}
}

type failingJournal struct {
	Journal
	fail atomic.Bool
}

func (j *failingJournal) Append(ctx context.Context, data []byte) (string, error) {
	if j.fail.Load() {
		return "", licensehub.Errorf(licensehub.EUNAVAILABLE, "stream down")
	}
	return j.Journal.Append(ctx, data)
}

// TestGapNamed: a record deleted from the Redis stream before it was
// sealed (and lost locally too) is a gap Verify names by instance and
// number; so are acknowledged records missing at the end, and a record
// removed from a sealed segment by someone who rebuilt and re-signed the
// chain. A record sealed twice is a duplicate.
func TestGapNamed(t *testing.T) {
	keys := keyring(t)
	signer, err := keys.SignerFor(testAuthority, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, objects licensehub.ObjectStore, opts ...VerifyOption) *Report {
		t.Helper()
		rep, err := Verify(t.Context(), objects, keys, append([]VerifyOption{ExpectAuthority(testAuthority)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	wantGap := func(t *testing.T, rep *Report, instance string, from, to uint64) {
		t.Helper()
		p := rep.Problem
		if rep.OK || p == nil || p.Kind != KindGap || p.Instance != instance || p.SeqFrom != from || p.SeqTo != to {
			t.Fatalf("problem %+v, want a gap of %s records %d..%d", p, instance, from, to)
		}
		want := fmt.Sprintf("instance %s: %s", instance, seqRange{from, to})
		if !strings.Contains(p.Error(), want) {
			t.Fatalf("message %q does not name %q", p.Error(), want)
		}
	}

	t.Run("deleted from the stream", func(t *testing.T) {
		objects := openFS(t)
		kv := openRedis(t)
		rs := kv.(*redisstore.Store)
		h := localHub(t, objects, keys, kv, NewStreamJournal(kv, "audit:journal"), "")
		mustAppend(t, h, 10)
		es, err := h.journal.Read(t.Context(), "", 0)
		if err != nil || len(es) != 10 {
			t.Fatalf("stream: %d entries, %v", len(es), err)
		}
		if err := rs.Client().XDel(t.Context(), rs.Key("audit:journal"), es[4].ID).Err(); err != nil {
			t.Fatal(err)
		}
		mustSeal(t, h)
		wantGap(t, verify(t, objects, GapGrace(0)), h.InstanceID(), 5, 5)
		// Within the grace it is only a warning: the record may be on its way.
		rep := verify(t, objects, VerifyAt(time.Now()))
		if !rep.OK || len(rep.Gaps) != 1 || rep.Gaps[0].Overdue || len(rep.Warnings) == 0 {
			t.Fatalf("within the grace: %+v", rep)
		}
		// The instance still has it: reconciling twice re-publishes it.
		for range 2 {
			if err := h.Reconcile(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		mustSeal(t, h)
		if rep := verify(t, objects, GapGrace(0)); !rep.OK {
			t.Fatalf("after re-publishing: %v", rep.Problem)
		}
	})

	t.Run("acknowledged, never sealed", func(t *testing.T) {
		objects := openFS(t)
		kv := openMem(t)
		h := localHub(t, objects, keys, kv, NewStreamJournal(kv, "audit:journal"), "")
		mustAppend(t, h, 6)
		if err := h.Reconcile(t.Context()); err != nil { // writes the acknowledged mark: 6
			t.Fatal(err)
		}
		// The stream loses records 4..6 and so does the instance (its disk).
		es, _ := h.journal.Read(t.Context(), "", 0)
		if err := kv.Delete(t.Context(), "audit:journal"); err != nil {
			t.Fatal(err)
		}
		for _, e := range es[:3] {
			if _, err := kv.XAdd(t.Context(), "audit:journal", map[string]string{streamField: string(e.Data)}); err != nil {
				t.Fatal(err)
			}
		}
		mustSeal(t, h)
		wantGap(t, verify(t, objects, GapGrace(0)), h.InstanceID(), 4, 6)
	})

	// rebuild seals recs as segment 1 and the head, signed with the hub's
	// key: a chain rewritten by someone who holds it.
	rebuild := func(t *testing.T, objects licensehub.ObjectStore, recs []Record) {
		t.Helper()
		var srs []sealedRecord
		for i, r := range recs {
			b, _ := r.MarshalJSON()
			canon, ok := recordBytes(b)
			if !ok {
				t.Fatal("not a record")
			}
			srs = append(srs, sealedRecord{journalID: fmt.Sprintf("1-%d", i), record: canon})
		}
		now := time.Now()
		seg, _, st, err := buildSegment(t.Context(), genesis, srs, signer, testAuthority, "x", now)
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, objects, SegmentKey(1), seg)
		head, err := signBody(t.Context(), signer, st.head(testAuthority, now), now)
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, objects, HeadKey, head)
	}
	sealedTrail := func(t *testing.T) (licensehub.ObjectStore, *hub, []Record) {
		objects := openFS(t)
		h := localHub(t, objects, keys, openMem(t), nil, "") // embedded
		mustAppend(t, h, 6)
		mustSeal(t, h)
		if err := h.Reconcile(t.Context()); err != nil { // the acknowledged mark
			t.Fatal(err)
		}
		if rep := verify(t, objects, GapGrace(0)); !rep.OK || rep.Instances[0].Acked != 6 {
			t.Fatal(rep.Problem)
		}
		return objects, h, sealedRecords(t, objects)
	}

	t.Run("removed from a sealed segment, chain re-signed", func(t *testing.T) {
		objects, h, recs := sealedTrail(t)
		rebuild(t, objects, slices.Delete(recs, 2, 4)) // records 3 and 4
		wantGap(t, verify(t, objects, GapGrace(0)), h.InstanceID(), 3, 4)
	})

	t.Run("sealed twice", func(t *testing.T) {
		objects, h, recs := sealedTrail(t)
		rebuild(t, objects, append(recs, recs[1]))
		p := verify(t, objects, GapGrace(0)).Problem
		if p == nil || p.Kind != KindDuplicate || p.Instance != h.InstanceID() || p.SeqFrom != 2 || p.Line != 7 {
			t.Fatalf("problem %+v, want record 2 sealed twice at line 7", p)
		}
	})

	t.Run("mark of another instance", func(t *testing.T) {
		objects, h, _ := sealedTrail(t)
		b := getObject(t, objects, AckedKey(h.InstanceID()))
		putObject(t, objects, AckedKey("hub-other"), b)
		p := verify(t, objects, GapGrace(0)).Problem
		if p == nil || p.Kind != KindBadAckedMark || p.Key != AckedKey("hub-other") {
			t.Fatalf("problem %+v, want a bad acknowledged mark", p)
		}
	})
}

// TestLegacyAndNumberedRecords: a trail whose first records carry no
// number (sealed by an older hub) and whose later ones do verifies.
func TestLegacyAndNumberedRecords(t *testing.T) {
	objects := openFS(t)
	keys := keyring(t)
	kv := openMem(t)
	old := newHub(t, objects, NewStreamJournal(kv, "audit:journal"), keys, kv)
	mustAppend(t, old, 4)
	mustSeal(t, old)
	h := localHub(t, objects, keys, kv, NewStreamJournal(kv, "audit:journal"), "")
	mustAppend(t, h, 4)
	mustSeal(t, h)
	rep, err := Verify(t.Context(), objects, keys, ExpectAuthority(testAuthority), GapGrace(0))
	if err != nil || !rep.OK || rep.Records != 8 || len(rep.Instances) != 1 || rep.Instances[0].Sealed != 4 {
		t.Fatalf("Verify: %v %+v", err, rep)
	}
}
