package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// TestSealAndVerify seals records into segments, verifies the chain, and
// does it again from a "restarted" hub (a new Trail and journal over the
// same stores).
func TestSealAndVerify(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			objects := os.open(t)
			keys := keyring(t)
			dir := t.TempDir()
			j, err := OpenFileJournal(dir)
			if err != nil {
				t.Fatal(err)
			}
			lock := openMem(t)
			h := newHub(t, objects, j, keys, lock)

			// Nothing to seal: no segment, no error.
			if res := mustSeal(t, h); res.Segments != 0 || res.Head.Segment != 0 {
				t.Fatalf("Seal of an empty journal = %+v", res)
			}
			wantOK(t, mustVerify(t, objects, keys), 0, 0)

			mustAppend(t, h, 12)
			res := mustSeal(t, h)
			if res.Segments != 3 || res.Records != 12 || res.Head.Segment != 3 || res.Head.LastSeq != 12 {
				t.Fatalf("Seal = %+v, want 3 segments (5+5+2), 12 records", res)
			}
			rep := mustVerify(t, objects, keys)
			wantOK(t, rep, 3, 12)
			if rep.Head == nil || rep.Head.LastSeq != 12 || rep.LastHash != rep.Head.LastHash || len(rep.KeyIDs) != 1 || len(rep.Warnings) != 0 {
				t.Fatalf("report %+v", rep)
			}
			if es, err := j.Read(ctx, "", 0); err != nil || len(es) != 0 {
				t.Fatalf("journal after sealing holds %d entries, %v; want it trimmed", len(es), err)
			}

			// The segment format: canonical record lines, then a signed
			// checkpoint.
			lines := segmentLines(t, objects, 1)
			if len(lines) != 6 {
				t.Fatalf("segment 1 has %d lines, want 5 records and a checkpoint", len(lines))
			}
			prev := ZeroHash
			for i, l := range lines[:5] {
				var cl chainLine
				if err := json.Unmarshal(l, &cl); err != nil {
					t.Fatal(err)
				}
				if cl.Seq != int64(i+1) || cl.Prev != prev || cl.Hash != chainHash(cl.Seq, prev, cl.Record) {
					t.Fatalf("line %d = %s: wrong seq, prev or hash", i+1, l)
				}
				prev = cl.Hash
			}
			doc, err := signing.ParseDocument(lines[5])
			if err != nil {
				t.Fatal(err)
			}
			var cp Checkpoint
			if err := strictDecode(doc.Body, &cp); err != nil {
				t.Fatal(err)
			}
			if cp.Segment != 1 || cp.FirstSeq != 1 || cp.LastSeq != 5 || cp.Count != 5 || cp.PrevHash != ZeroHash || cp.LastHash != prev || cp.Authority != testAuthority {
				t.Fatalf("checkpoint %+v", cp)
			}

			// Restart: close the journal, open a new one and a new Trail.
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j2, err := OpenFileJournal(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { j2.Close() })
			h2 := newHub(t, objects, j2, keys, lock)
			mustAppend(t, h2, 4)
			if res := mustSeal(t, h2); res.Segments != 1 || res.Head.Segment != 4 || res.Head.LastSeq != 16 {
				t.Fatalf("Seal after restart = %+v, want segment 4 ending at seq 16", res)
			}
			wantOK(t, mustVerify(t, objects, keys), 4, 16)
			// Verify with an offline key bundle, as hubctl would.
			rep, err = Verify(ctx, objects, keys.Export())
			if err != nil || !rep.OK {
				t.Fatalf("Verify with the exported bundle: %v, %+v", err, rep.Problem)
			}
		})
	}
}

// tamper is one way of editing a sealed trail and what Verify must say.
type tamper struct {
	name    string
	edit    func(t *testing.T, objects licensehub.ObjectStore)
	kind    string
	segment int64
	line    int
	seq     int64
}

// The trail under tamper: 15 records in segments of 5, so segment 2
// holds records 6..10 on lines 1..5 and its checkpoint on line 6.
var tampers = []tamper{
	{"modify a field", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			ls[2] = replaceOnce(t, ls[2], `"app_id":"app-a"`, `"app_id":"app-x"`)
			return ls
		})
	}, KindModified, 2, 3, 8},
	{"modify the result", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 1, func(ls [][]byte) [][]byte {
			ls[0] = replaceOnce(t, ls[0], `"result":"OK"`, `"result":"FORBIDDEN"`)
			return ls
		})
	}, KindModified, 1, 1, 1},
	{"reformat a line", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			ls[1] = replaceOnce(t, ls[1], `{"hash"`, `{ "hash"`)
			return ls
		})
	}, KindModified, 2, 2, 7},
	{"delete a line", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte { return slices.Delete(ls, 2, 3) })
	}, KindDeleted, 2, 3, 8},
	{"delete the first line of a segment", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 3, func(ls [][]byte) [][]byte { return slices.Delete(ls, 0, 1) })
	}, KindDeleted, 3, 1, 11},
	{"delete the last record of a segment", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte { return slices.Delete(ls, 4, 5) })
	}, KindDeleted, 2, 5, 10},
	{"insert a copy of a line", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte { return slices.Insert(ls, 3, ls[0]) })
	}, KindInserted, 2, 4, 6},
	{"insert a forged record with a correct hash", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			prev := parseLine(2, ls[1]) // record 7
			forged := []byte(`{"app_id":"app-evil","operation":"license.read","result":"OK","time":"2026-11-26T08:00:00.000Z"}`)
			line := appendLine(nil, 8, prev.Hash, chainHash(8, prev.Hash, forged), forged)
			return slices.Insert(ls, 2, bytes.TrimSuffix(line, []byte("\n")))
		})
	}, KindInserted, 2, 3, 8},
	{"insert a record from another segment", func(t *testing.T, o licensehub.ObjectStore) {
		other := segmentLines(t, o, 3)[1] // record 12
		editLines(t, o, 2, func(ls [][]byte) [][]byte { return slices.Insert(ls, 1, other) })
	}, KindInserted, 2, 2, 12},
	{"swap two lines", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte { ls[1], ls[2] = ls[2], ls[1]; return ls })
	}, KindReordered, 2, 2, 8},
	{"move a line down", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			l := ls[0]
			ls = slices.Delete(ls, 0, 1)
			return slices.Insert(ls, 3, l)
		})
	}, KindReordered, 2, 1, 7},
	{"rewrite a record with recomputed hashes", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			ls[2] = replaceOnce(t, ls[2], `"app_id":"app-a"`, `"app_id":"app-x"`)
			return rehash(t, ls, 2, 5)
		})
	}, KindModified, 2, 0, 0},
	{"rewrite a record's hash only", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			ls[2] = replaceOnce(t, ls[2], `"app_id":"app-a"`, `"app_id":"app-x"`)
			return rehash(t, ls, 2, 3) // line 4 still links to the old hash
		})
	}, KindModified, 2, 3, 8},
	{"rewrite a record's prev and hash", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			pl := parseLine(3, ls[2])
			prev := strings.Repeat("ab", 32)
			ls[2] = bytes.TrimSuffix(appendLine(nil, pl.Seq, prev, chainHash(pl.Seq, prev, pl.Record), pl.Record), []byte("\n"))
			return ls
		})
	}, KindModified, 2, 3, 8},
	{"delete a segment", func(t *testing.T, o licensehub.ObjectStore) {
		if err := o.Delete(t.Context(), SegmentKey(2)); err != nil {
			t.Fatal(err)
		}
	}, KindMissingSegment, 2, 0, 0},
	{"delete the last segment", func(t *testing.T, o licensehub.ObjectStore) {
		if err := o.Delete(t.Context(), SegmentKey(3)); err != nil {
			t.Fatal(err)
		}
	}, KindMissingSegment, 3, 0, 0},
	{"swap two segments", func(t *testing.T, o licensehub.ObjectStore) {
		a, b := getObject(t, o, SegmentKey(2)), getObject(t, o, SegmentKey(3))
		putObject(t, o, SegmentKey(2), b)
		putObject(t, o, SegmentKey(3), a)
	}, KindMisplacedSegment, 2, 0, 0},
	{"alter a checkpoint", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			ls[5] = replaceOnce(t, ls[5], `"count":5`, `"count":4`)
			return ls
		})
	}, KindBadCheckpointSignature, 2, 6, 0},
	{"re-sign a checkpoint with a key the hub does not have", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte {
			doc, err := signing.ParseDocument(ls[5])
			if err != nil {
				t.Fatal(err)
			}
			other := keyring(t)
			signer, err := other.SignerFor(testAuthority, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			st, _ := doc.SignedTime()
			d2, err := signing.Sign(t.Context(), signer, doc.Body, st)
			if err != nil {
				t.Fatal(err)
			}
			ls[5], _ = d2.Marshal()
			return ls
		})
	}, KindBadCheckpointSignature, 2, 6, 0},
	{"delete a checkpoint", func(t *testing.T, o licensehub.ObjectStore) {
		editLines(t, o, 2, func(ls [][]byte) [][]byte { return ls[:5] })
	}, KindMissingCheckpoint, 2, 5, 10},
	{"append a record after the checkpoint", func(t *testing.T, o licensehub.ObjectStore) {
		extra := segmentLines(t, o, 3)[0]
		editLines(t, o, 2, func(ls [][]byte) [][]byte { return append(ls, extra) })
	}, KindInserted, 2, 7, 11},
	{"edit head.json", func(t *testing.T, o licensehub.ObjectStore) {
		putObject(t, o, HeadKey, replaceOnce(t, getObject(t, o, HeadKey), `"last_seq":15`, `"last_seq":14`))
	}, KindBadHeadSignature, 0, 0, 0},
}

func TestTamper(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			t.Parallel()
			objects := os.open(t)
			h := newStreamHub(t, objects)
			mustAppend(t, h, 15)
			mustSeal(t, h)
			wantOK(t, mustVerify(t, objects, h.keys), 3, 15)
			saved := map[string][]byte{HeadKey: getObject(t, objects, HeadKey)}
			for n := int64(1); n <= 3; n++ {
				saved[SegmentKey(n)] = getObject(t, objects, SegmentKey(n))
			}
			for _, tc := range tampers {
				t.Run(tc.name, func(t *testing.T) {
					defer func() {
						for k, v := range saved {
							putObject(t, objects, k, v)
						}
						wantOK(t, mustVerify(t, objects, h.keys), 3, 15)
					}()
					tc.edit(t, objects)
					rep := mustVerify(t, objects, h.keys)
					p := rep.Problem
					if rep.OK || p == nil {
						t.Fatalf("Verify after tampering: OK (%d records); want %s", rep.Records, tc.kind)
					}
					if p.Kind != tc.kind || p.Segment != tc.segment || p.Line != tc.line || p.Seq != tc.seq {
						t.Fatalf("Verify found %q segment %d line %d seq %d (%s); want %q segment %d line %d seq %d",
							p.Kind, p.Segment, p.Line, p.Seq, p.Message, tc.kind, tc.segment, tc.line, tc.seq)
					}
					t.Logf("%v", p)
				})
			}
		})
	}
}

func editLines(t *testing.T, o licensehub.ObjectStore, n int64, edit func([][]byte) [][]byte) {
	t.Helper()
	putLines(t, o, n, edit(segmentLines(t, o, n)))
}

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times in %s", old, bytes.Count(b, []byte(old)), b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// rehash recomputes the hashes (and prevs) of ls[from:to] so that they
// chain from ls[from-1], as a forger without the signing key would.
func rehash(t *testing.T, ls [][]byte, from, to int) [][]byte {
	t.Helper()
	prev := parseLine(from, ls[from-1]).Hash
	for i := from; i < to; i++ {
		var cl chainLine
		if err := json.Unmarshal(ls[i], &cl); err != nil {
			t.Fatal(err)
		}
		h := chainHash(cl.Seq, prev, cl.Record)
		ls[i] = bytes.TrimSuffix(appendLine(nil, cl.Seq, prev, h, cl.Record), []byte("\n"))
		prev = h
	}
	return ls
}

// TestTwoHubs runs two hub instances on one journal stream and one object
// store: both append from several goroutines while both seal, over and
// over. The result is one chain holding every record exactly once.
func TestTwoHubs(t *testing.T) {
	type setup struct {
		name    string
		objects func(t testing.TB) licensehub.ObjectStore
		kv      func(t testing.TB) licensehub.KV
		// sharedLock false gives each hub its own lock store: no mutual
		// exclusion at all, only create-only segments keep the chain whole.
		sharedLock bool
	}
	setups := []setup{
		{"fs+memory", openFS, openMem, true},
		{"fs+memory/no-lock", openFS, openMem, false},
		{"minio+redis", openMinIO, openRedis, true},
		{"minio+redis/no-lock", openMinIO, openRedis, false},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			objects := s.objects(t)
			kv := s.kv(t)
			keys := keyring(t)
			var hubs [2]*hub
			for i := range hubs {
				lock := kv
				if !s.sharedLock {
					lock = openMem(t)
				}
				hubs[i] = newHub(t, objects, NewStreamJournal(kv, "audit:journal"), keys, lock,
					withInstance(fmt.Sprintf("hub-%d", i)), withSegmentSize(7))
			}
			const goroutines, each = 4, 50 // per hub: 200
			var (
				appenders sync.WaitGroup
				sealers   sync.WaitGroup
				mu        sync.Mutex
				want      = map[string]bool{}
				errs      []error
				stop      = make(chan struct{})
			)
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			for hi, h := range hubs {
				for g := range goroutines {
					appenders.Go(func() {
						for i := range each {
							r := record(fmt.Sprintf("app-%d", hi), "license.read")
							r.RequestID = fmt.Sprintf("h%d-g%d-%d", hi, g, i)
							if err := h.Append(ctx, r); err != nil {
								fail(err)
								return
							}
							mu.Lock()
							want[r.RequestID] = true
							mu.Unlock()
						}
					})
				}
				sealers.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := h.Seal(ctx); err != nil {
							fail(fmt.Errorf("hub %d: Seal: %w", hi, err))
							return
						}
					}
				})
			}
			// Verify while the chain grows: it must never see a problem.
			sealers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					rep, err := Verify(ctx, objects, keys, ExpectAuthority(testAuthority))
					if err != nil || !rep.OK {
						fail(fmt.Errorf("Verify while sealing: %v, %v", err, rep.Problem))
						return
					}
				}
			})
			appenders.Wait()
			close(stop)
			sealers.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			for _, h := range hubs {
				mustSeal(t, h)
			}
			rep := mustVerify(t, objects, keys)
			if !rep.OK || rep.Records != goroutines*each*2 {
				t.Fatalf("Verify: OK %v, %d records (problem %v); want OK with %d", rep.OK, rep.Records, rep.Problem, goroutines*each*2)
			}
			got := allRecords(t, hubs[1], Filter{Limit: 100})
			seen := map[string]bool{}
			for _, r := range got {
				if seen[r.RequestID] {
					t.Fatalf("record %s is in the trail twice", r.RequestID)
				}
				seen[r.RequestID] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("the trail holds %d records, %d were appended", len(seen), len(want))
			}
			for id := range want {
				if !seen[id] {
					t.Fatalf("record %s was appended but is not in the trail", id)
				}
			}
		})
	}
}

// TestCrashBetweenSegmentAndHead stops a Seal after it wrote a segment and
// before head.json (as a crash would); the next Seal, on a restarted hub,
// adopts the segment: nothing is lost, nothing sealed twice.
func TestCrashBetweenSegmentAndHead(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			t.Parallel()
			objects := os.open(t)
			kv := openMem(t)
			keys := keyring(t)
			j := NewStreamJournal(kv, "audit:journal")
			h := newHub(t, objects, j, keys, kv)
			mustAppend(t, h, 5)
			mustSeal(t, h)
			mustAppend(t, h, 8)
			crash := errors.New("crash")
			h.afterSegmentWrite = func(n int64) error {
				if n == 2 {
					return crash
				}
				return nil
			}
			if _, err := h.Seal(t.Context()); !errors.Is(err, crash) {
				t.Fatalf("Seal = %v, want the crash", err)
			}
			rep := mustVerify(t, objects, keys)
			if !rep.OK || rep.Segments != 2 || len(rep.Warnings) != 1 || !contains(rep.Warnings[0], "head.json names segment 1") {
				t.Fatalf("Verify after the crash: %+v; want OK, 2 segments, a warning that head.json lags", rep)
			}
			if n, _ := kv.XLen(t.Context(), "audit:journal"); n != 8 {
				t.Fatalf("journal holds %d entries after the crash, want all 8 (not trimmed)", n)
			}
			// Query sees every record once: the segment head.json does not
			// name yet, and the 3 records still only in the journal.
			if ids := requestIDs(allRecords(t, h, Filter{Limit: 4})); len(ids) != 13 || len(uniq(ids)) != 13 {
				t.Fatalf("Query after the crash returns %d records (%d distinct), want 13", len(ids), len(uniq(ids)))
			}

			// Restart: a new Trail on the same stores.
			h2 := newHub(t, objects, j, keys, kv)
			mustAppend(t, h2, 2)
			res := mustSeal(t, h2)
			if res.Adopted != 1 || res.Segments != 1 || res.Records != 5 || res.Head.LastSeq != 15 {
				t.Fatalf("Seal after the crash = %+v; want segment 2 adopted, then records 11..15 sealed in segment 3", res)
			}
			wantOK(t, mustVerify(t, objects, keys), 3, 15)
			ids := requestIDs(allRecords(t, h2, Filter{}))
			if len(ids) != 15 || len(uniq(ids)) != 15 {
				t.Fatalf("the trail holds %d records (%d distinct), want 15", len(ids), len(uniq(ids)))
			}

			// The same by rolling head.json back to an older version.
			old := getObject(t, objects, HeadKey)
			mustAppend(t, h2, 3)
			mustSeal(t, h2)
			putObject(t, objects, HeadKey, old)
			mustAppend(t, h2, 1)
			res = mustSeal(t, h2)
			if res.Adopted != 1 || res.Records != 1 || res.Head.Segment != 5 || res.Head.LastSeq != 19 {
				t.Fatalf("Seal after head.json went back = %+v; want segment 4 adopted, record 19 in segment 5", res)
			}
			wantOK(t, mustVerify(t, objects, keys), 5, 19)

			// And with head.json gone altogether.
			if err := objects.Delete(t.Context(), HeadKey); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, h2, 1)
			if res := mustSeal(t, h2); res.Head.LastSeq != 20 || res.Head.Segment != 6 {
				t.Fatalf("Seal without head.json = %+v; want record 20 in segment 6", res)
			}
			wantOK(t, mustVerify(t, objects, keys), 6, 20)
		})
	}
}

// TestSealRecoversFromBadHead: a head.json that is not validly signed is
// not trusted; the sealer takes the chain's end from the last segment and
// writes a good head.json.
func TestSealRecoversFromBadHead(t *testing.T) {
	objects := openFS(t)
	h := newStreamHub(t, objects)
	mustAppend(t, h, 7)
	mustSeal(t, h)
	putObject(t, objects, HeadKey, replaceOnce(t, getObject(t, objects, HeadKey), `"last_seq":7`, `"last_seq":3`))
	if rep := mustVerify(t, objects, h.keys); rep.OK || rep.Problem.Kind != KindBadHeadSignature {
		t.Fatalf("Verify with a forged head.json: %+v", rep.Problem)
	}
	mustAppend(t, h, 1)
	if res := mustSeal(t, h); res.Records != 1 || res.Head.Segment != 3 || res.Head.LastSeq != 8 {
		t.Fatalf("Seal = %+v; want record 8 in segment 3", res)
	}
	wantOK(t, mustVerify(t, objects, h.keys), 3, 8)
}

func uniq(ss []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// TestSealRefusesBrokenChain: a segment beyond head.json that does not
// continue the chain stops the sealer instead of forking it.
func TestSealRefusesBrokenChain(t *testing.T) {
	objects := openFS(t)
	h := newStreamHub(t, objects)
	mustAppend(t, h, 10)
	mustSeal(t, h)
	head := getObject(t, objects, HeadKey) // segment 2
	mustAppend(t, h, 5)
	mustSeal(t, h) // segment 3
	editLines(t, objects, 3, func(ls [][]byte) [][]byte {
		ls[0] = replaceOnce(t, ls[0], `"app_id":"app-a"`, `"app_id":"app-b"`)
		return ls
	})
	putObject(t, objects, HeadKey, head)
	mustAppend(t, h, 1)
	_, err := h.Seal(t.Context())
	if !licensehub.IsCode(err, licensehub.EINTERNAL) || !contains(err.Error(), "segment 3 exists but does not continue the chain") || !contains(err.Error(), KindModified) {
		t.Fatalf("Seal over a tampered segment = %v; want %s naming segment 3 and the problem", err, licensehub.EINTERNAL)
	}
	if _, err := objects.Head(t.Context(), SegmentKey(4)); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("segment 4 was written after a broken segment 3: %v", err)
	}
}

// TestUnreadableEntry: something that is not a record in the journal is
// sealed as a record saying so, never skipped.
func TestUnreadableEntry(t *testing.T) {
	objects := openFS(t)
	h := newStreamHub(t, objects)
	mustAppend(t, h, 2)
	if _, err := h.journal.Append(t.Context(), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, h, 1)
	if res := mustSeal(t, h); res.Records != 4 {
		t.Fatalf("Seal = %+v, want 4 records", res)
	}
	wantOK(t, mustVerify(t, objects, h.keys), 1, 4)
	rs := allRecords(t, h, Filter{})
	if len(rs) != 4 || rs[1].Operation != UnreadableOperation || rs[1].Result != licensehub.EMALFORMED || !contains(rs[1].Reason, "8 bytes") {
		t.Fatalf("records %+v; want the third (second newest) to record the unreadable entry", rs)
	}
}

// TestRun seals in the background until its context ends, and leaves no
// goroutine behind (goleak in TestMain).
func TestRun(t *testing.T) {
	objects := openFS(t)
	h := newStreamHub(t, objects, withInterval(10*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	mustAppend(t, h, 12)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := mustVerify(t, objects, h.keys)
		if rep.OK && rep.Records == 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not seal the 12 records within 10s: %+v", rep)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestSealBusy: while one instance holds the lock, another's Seal does
// nothing; the lock is released after a Seal.
func TestSealBusy(t *testing.T) {
	objects := openFS(t)
	h := newStreamHub(t, objects)
	mustAppend(t, h, 3)
	if ok, err := h.lock.SetNX(t.Context(), LockKey, []byte("other"), time.Minute); err != nil || !ok {
		t.Fatalf("SetNX: %v %v", ok, err)
	}
	res, err := h.Seal(t.Context())
	if err != nil || !res.Busy || res.Records != 0 {
		t.Fatalf("Seal with the lock held elsewhere = %+v, %v; want Busy", res, err)
	}
	if err := h.lock.Delete(t.Context(), LockKey); err != nil {
		t.Fatal(err)
	}
	if res := mustSeal(t, h); res.Records != 3 {
		t.Fatalf("Seal = %+v", res)
	}
	if _, err := h.lock.Get(t.Context(), LockKey); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
		t.Fatalf("the lock is still held after Seal: %v", err)
	}
}
