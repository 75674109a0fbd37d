package runner

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/license"
	redisstore "github.com/licensehub/licensehub/store/redis"
)

// TestConvert: a register with clean rows, in-file duplicates, rows whose
// number the library already holds, and every kind of reject converts to
// exact counts, one license per converted number made at its line, and a
// rejects CSV naming line, field and code of each rejected row.
func TestConvert(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newHubEnv(t, be.open(t))
			d := generate(700, "CV")
			e.preload(t, d)
			r := e.runner(t, "runner-a")
			job := localJob(newJobID(), d.csv)
			var progress []State
			var mu sync.Mutex
			st, err := r.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{Progress: func(s State) {
				mu.Lock()
				progress = append(progress, s)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if st.State != StateDone || st.Line != d.rows+1 || st.FinishedAt.IsZero() || st.BytesDone != int64(len(d.csv)) {
				t.Errorf("final state %s line %d (want %d) finished %v bytes %d", st.State, st.Line, d.rows+1, st.FinishedAt, st.BytesDone)
			}
			checkCounts(t, "run", st.Counts, d.counts)
			if len(st.RejectParts) < 2 {
				t.Errorf("rejects in %d parts; checkpoints every 50 rows should make several", len(st.RejectParts))
			}
			var buf bytes.Buffer
			if err := r.Rejects(t.Context(), job.ID, &buf); err != nil {
				t.Fatal(err)
			}
			checkRejects(t, parseRejects(t, buf.Bytes()), d.rejects)
			e.checkLicenses(t, d, job.ID)

			// Progress ends with the final state.
			mu.Lock()
			last := progress[len(progress)-1]
			mu.Unlock()
			if last.State != StateDone || last.Counts.Read != d.rows {
				t.Errorf("last progress: %s read %d", last.State, last.Counts.Read)
			}
			// state.json, report.json and State agree; the KV keeps nothing.
			var report State
			if err := r.getJSON(t.Context(), reportKey(job.ID), &report); err != nil {
				t.Fatalf("report.json: %v", err)
			}
			checkCounts(t, "report.json", report.Counts, d.counts)
			got, err := r.State(t.Context(), job.ID)
			if err != nil || got.State != StateDone {
				t.Fatalf("State: %+v %v", got, err)
			}
			checkCounts(t, "State", got.Counts, d.counts)
			for _, key := range []string{leaseKey(job.ID), progressKey(job.ID)} {
				if _, err := e.kv.Get(t.Context(), key); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
					t.Errorf("KV %s left behind: %v", key, err)
				}
			}

			// A done job runs no more.
			lib := &hookedLibrary{Library: e.lib}
			r2 := e.runner(t, "runner-b", func(c *Config) { c.Library = lib })
			again, err := r2.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{})
			if err != nil || again.State != StateDone || lib.pushes.Load() != 0 {
				t.Errorf("re-run of a done job: %v, %v, %d pushes", again, err, lib.pushes.Load())
			}
		})
	}
}

// TestResume: a job stopped in the middle (cancelled: it checkpoints; or
// its lease stolen: it stops without a further checkpoint, like a crash)
// and resumed by another runner ends exactly as an uninterrupted run:
// same counts, same licenses made at the same lines.
func TestResume(t *testing.T) {
	d := generate(600, "RS")
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ref := newHubEnv(t, be.open(t))
			ref.preload(t, d)
			refJob := localJob(newJobID(), d.csv)
			refState, err := ref.runner(t, "ref").Run(t.Context(), refJob, csvOpener(t, d.csv), RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, "uninterrupted", refState.Counts, d.counts)
			_, refLicenses := ref.licenses(t)

			for _, mode := range []string{"cancel", "lease-stolen", "fenced"} {
				t.Run(mode, func(t *testing.T) {
					e := newHubEnv(t, be.open(t))
					e.preload(t, d)
					job := localJob(newJobID(), d.csv)
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					var once sync.Once
					var r *Runner
					lib := &hookedLibrary{Library: e.lib, before: func(n int64) {
						if n < 250 {
							return
						}
						once.Do(func() {
							if mode == "cancel" {
								cancel()
								return
							}
							if mode == "fenced" {
								// A later holder of the lease (token 1000)
								// wrote state.json: this runner's next
								// checkpoint must not overwrite it.
								var cur State
								if err := r.getJSON(context.Background(), stateKey(job.ID), &cur); err != nil {
									t.Error(err)
								}
								cur.Fence = 1000
								if err := r.putJSON(context.Background(), stateKey(job.ID), &cur); err != nil {
									t.Error(err)
								}
								return
							}
							if err := e.kv.Set(context.Background(), leaseKey(job.ID), []byte("thief"), time.Minute); err != nil {
								t.Error(err)
							}
						})
					}, hold: func(n int64) bool {
						// Once the lease is stolen, no push ends before the
						// runner notices (at its next renewal), however
						// fast the rest of the job would go.
						return mode == "lease-stolen" && n >= 250
					}}
					r = e.runner(t, "runner-a", func(c *Config) { c.Library = lib; c.LeaseTTL = 600 * time.Millisecond })
					st, err := r.Run(ctx, job, csvOpener(t, d.csv), RunOptions{})
					switch mode {
					case "cancel":
						if !errors.Is(err, context.Canceled) {
							t.Fatalf("cancelled Run: %v", err)
						}
						var stored State
						if err := r.getJSON(t.Context(), stateKey(job.ID), &stored); err != nil {
							t.Fatal(err)
						}
						if stored.State != StateQueued || stored.Line < 2 || stored.Line > d.rows {
							t.Errorf("after cancel: state %s line %d", stored.State, stored.Line)
						}
					case "lease-stolen":
						var e2 *licensehub.Error
						if !errors.As(err, &e2) || e2.Code != licensehub.ECONFLICT || e2.Details["reason"] != "lease_lost" {
							t.Fatalf("Run with its lease stolen: %v", err)
						}
						if st == nil || st.Counts.Read >= d.rows {
							t.Fatalf("stolen run read everything: %+v", st)
						}
						if ok, err := r.BreakLease(t.Context(), job.ID, "thief"); !ok || err != nil {
							t.Fatalf("BreakLease: %v %v", ok, err)
						}
					case "fenced":
						var e2 *licensehub.Error
						if !errors.As(err, &e2) || e2.Code != licensehub.ECONFLICT || e2.Details["reason"] != "lease_lost" {
							t.Fatalf("Run under a smaller token: %v", err)
						}
						var stored State
						if err := r.getJSON(t.Context(), stateKey(job.ID), &stored); err != nil || stored.Fence != 1000 {
							t.Fatalf("state.json after the stale runner stopped: fence %d, %v; want 1000 kept", stored.Fence, err)
						}
					}
					if n := lib.pushes.Load(); n >= int64(d.counts.Converted) {
						t.Fatalf("%d pushes before the interruption: the test interrupted nothing", n)
					}
					r2 := e.runner(t, "runner-b")
					st, err = r2.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{})
					if err != nil {
						t.Fatalf("resume: %v", err)
					}
					checkCounts(t, "resumed", st.Counts, refState.Counts)
					var buf bytes.Buffer
					if err := r2.Rejects(t.Context(), job.ID, &buf); err != nil {
						t.Fatal(err)
					}
					checkRejects(t, parseRejects(t, buf.Bytes()), d.rejects)
					_, got := e.licenses(t)
					if len(got) != len(refLicenses) {
						t.Errorf("%d licenses, uninterrupted run made %d", len(got), len(refLicenses))
					}
					for number, want := range refLicenses {
						g, ok := got[number]
						if !ok || g.line != want.line || (want.batch == refJob.ID) != (g.batch == job.ID) {
							t.Errorf("license %s: %+v, uninterrupted %+v", number, g, want)
						}
					}
					e.checkLicenses(t, d, job.ID)
				})
			}
		})
	}
}

// TestLeaseConflict: while one runner works on a job another gets
// ECONFLICT naming the owner; once the job is done it finds nothing to
// do.
func TestLeaseConflict(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newHubEnv(t, be.open(t))
			d := generate(120, "LC")
			e.preload(t, d)
			job := localJob(newJobID(), d.csv)
			gate := make(chan struct{})
			started := make(chan struct{})
			var once sync.Once
			lib := &hookedLibrary{Library: e.lib, before: func(int64) {
				once.Do(func() { close(started) })
				<-gate
			}}
			a := e.runner(t, "runner-a", func(c *Config) { c.Library = lib })
			b := e.runner(t, "runner-b")
			done := make(chan error, 1)
			var final *State
			go func() {
				var err error
				final, err = a.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{})
				done <- err
			}()
			<-started
			_, err := b.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{})
			var le *licensehub.Error
			if !errors.As(err, &le) || le.Code != licensehub.ECONFLICT || le.Details["owner"] != "runner-a" {
				t.Errorf("second runner: %v (details %v)", err, le)
			}
			waitFor(t, 5*time.Second, "the live state", func() bool {
				st, err := b.State(t.Context(), job.ID)
				return err == nil && st.State == StateRunning && st.Owner == "runner-a"
			})
			close(gate)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			checkCounts(t, "first runner", final.Counts, d.counts)
			st, err := b.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{})
			if err != nil || st.State != StateDone {
				t.Errorf("second runner after the first: %+v %v", st, err)
			}
		})
	}
}

// TestPauseAndResume: the object store, or the KV, goes away in the
// middle of a job (a stopped TCP proxy in front of MinIO or Redis; a
// failing wrapper around the filesystem store or the in-process KV): the
// job reports "paused" with attempts counting, retries the same rows
// (never skips or rejects them) and completes with exact counts when the
// backend is back.
func TestPauseAndResume(t *testing.T) {
	for _, be := range backends {
		for _, what := range []string{"objects", "kv"} {
			t.Run(be.name+"/"+what+"-down", func(t *testing.T) {
				s := be.open(t)
				var down, up func()
				switch {
				case s.minio != nil && what == "objects":
					proxy := testenv.NewProxy(t, s.mio.Endpoint)
					s.objects = openMinIOAt(t, s.mio, proxy.Addr(), s.bucket, 2*time.Second)
					down, up = proxy.Stop, func() { proxy.Start(t) }
				case s.minio != nil:
					u, err := url.Parse(testenv.RequireRedis(t))
					if err != nil {
						t.Fatal(err)
					}
					proxy := testenv.NewProxy(t, u.Host)
					u.Host = proxy.Addr()
					kv, err := redisstore.Open(t.Context(), redisstore.Config{URL: u.String(), Prefix: s.prefix, OpTimeout: time.Second})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { kv.Close() })
					s.kv = kv
					down, up = proxy.Stop, func() { proxy.Start(t) }
				case what == "objects":
					f := &flakyObjects{ObjectStore: s.objects}
					s.objects = f
					down, up = func() { f.down.Store(true) }, func() { f.down.Store(false) }
				default:
					f := &flakyKV{KV: s.kv}
					s.kv = f
					down, up = func() { f.down.Store(true) }, func() { f.down.Store(false) }
				}
				e := newHubEnv(t, s)
				d := generate(500, "PA")
				e.preload(t, d)
				job := localJob(newJobID(), d.csv)
				// The backend goes away at push 150, whatever the pace.
				lib := &hookedLibrary{Library: e.lib, before: func(n int64) {
					if n == 150 {
						down()
					}
				}}
				r := e.runner(t, "runner-a", func(c *Config) { c.Library = lib; c.OpTimeout = 2 * time.Second })
				var mu sync.Mutex
				var sawPaused State
				done := make(chan error, 1)
				var final *State
				go func() {
					var err error
					final, err = r.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{Progress: func(s State) {
						mu.Lock()
						if s.State == StatePaused && s.Attempts > sawPaused.Attempts {
							sawPaused = s
						}
						mu.Unlock()
					}})
					done <- err
				}()
				waitFor(t, 20*time.Second, "the paused state", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return sawPaused.Attempts >= 2
				})
				if what == "objects" {
					// The live state (in the KV) says so too.
					waitFor(t, 5*time.Second, "State paused", func() bool {
						st, err := r.State(t.Context(), job.ID)
						return err == nil && st.State == StatePaused && st.Attempts >= 1
					})
				}
				pushesWhileDown := lib.pushes.Load()
				up()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("Run: %v", err)
					}
				case <-time.After(60 * time.Second):
					t.Fatal("the job did not complete after the backend came back")
				}
				if lib.pushes.Load() <= pushesWhileDown {
					t.Errorf("no push after the backend came back")
				}
				checkCounts(t, "after the outage", final.Counts, d.counts)
				e.checkLicenses(t, d, job.ID)
				var buf bytes.Buffer
				if err := r.Rejects(t.Context(), job.ID, &buf); err != nil {
					t.Fatal(err)
				}
				checkRejects(t, parseRejects(t, buf.Bytes()), d.rejects)
			})
		}
	}
}

// TestDryRun: a dry run predicts a real run's counts and rejects exactly
// and writes nothing: the bucket listing and the test's Redis keys are
// unchanged, and no KV write reaches the store at all.
func TestDryRun(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			e := newHubEnv(t, s)
			d := generate(400, "DR")
			e.preload(t, d)
			before := objectListing(t, e.objects)
			var keysBefore []string
			if s.redis != nil {
				var err error
				if keysBefore, err = redisKeys(t.Context(), s.redis.Client(), s.prefix); err != nil {
					t.Fatal(err)
				}
			}
			ro := &readOnlyKV{KV: s.kv, t: t}
			roLib, err := license.NewLibrary(license.Config{Objects: e.objects, KV: ro, Signers: testKeyring(t),
				Catalog: license.CatalogFunc(e.cat.Validator), DefaultValidUntil: e.cat.DefaultValidUntil, TypeName: e.cat.TypeName})
			if err != nil {
				t.Fatal(err)
			}
			r := e.runner(t, "dry", func(c *Config) { c.KV = ro; c.Library = roLib })
			job := localJob(newJobID(), d.csv)
			var rejects bytes.Buffer
			st, err := r.Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{DryRun: true, Rejects: &rejects})
			if err != nil {
				t.Fatal(err)
			}
			if st.State != StateDone {
				t.Errorf("dry run state %s", st.State)
			}
			checkCounts(t, "dry run", st.Counts, d.counts)
			checkRejects(t, parseRejects(t, rejects.Bytes()), d.rejects)
			if after := objectListing(t, e.objects); !maps.Equal(before, after) {
				t.Errorf("the dry run changed the object store: %d objects before, %d after", len(before), len(after))
			}
			if s.redis != nil {
				after, err := redisKeys(t.Context(), s.redis.Client(), s.prefix)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(after, " ") != strings.Join(keysBefore, " ") {
					t.Errorf("the dry run changed Redis keys:\nbefore %v\nafter  %v", keysBefore, after)
				}
			}
			if n := ro.writes.Load(); n != 0 {
				t.Errorf("%d KV writes during the dry run", n)
			}
			if _, err := r.State(t.Context(), job.ID); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
				t.Errorf("State of a dry-run job: %v (want NOT_FOUND: nothing stored)", err)
			}

			// The real run does what the dry run said.
			real, err := e.runner(t, "real").Run(t.Context(), job, csvOpener(t, d.csv), RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, "real run after the dry run", real.Counts, st.Counts)
		})
	}
}

// TestServe: jobs uploaded with Create are run by Serve on two instances:
// one job is interrupted by its instance's shutdown (it checkpoints and
// goes back to the queue), another was lost from the KV queue (found in
// the object store); both end exactly, each license made once.
func TestServe(t *testing.T) {
	defer func(n int) { sourcePartSize = n }(sourcePartSize)
	sourcePartSize = 4096 // several parts per source
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newHubEnv(t, be.open(t))
			d1, d2 := generate(300, "SA"), generate(200, "SB")
			e.preload(t, d1)
			e.preload(t, d2)
			ctx := t.Context()
			r0 := e.runner(t, "api")
			job1, err := r0.Create(ctx, testMapping, "", bytes.NewReader(d1.csv), int64(len(d1.csv)), "app-1")
			if err != nil {
				t.Fatal(err)
			}
			if job1.Size != int64(len(d1.csv)) || job1.Format != convert.FormatCSV || job1.Source != sourceKey(job1.ID) || !ValidID(job1.ID) {
				t.Errorf("job %+v", job1)
			}
			if st, err := r0.State(ctx, job1.ID); err != nil || st.State != StateQueued {
				t.Fatalf("State after Create: %+v %v", st, err)
			}

			// Instance 1 starts job 1 and shuts down in the middle of it.
			sctx, stop := context.WithCancel(ctx)
			lib := &hookedLibrary{Library: e.lib, before: func(n int64) {
				if n == 100 {
					stop()
				}
			}}
			s1 := e.runner(t, "instance-1", func(c *Config) { c.Library = lib })
			s1.Serve(sctx, 50*time.Millisecond)
			st, err := r0.State(ctx, job1.ID)
			if err != nil || st.State != StateQueued || st.Line < 2 || st.Counts.Read == 0 {
				t.Fatalf("after the shutdown: %+v %v", st, err)
			}

			// Job 2 is uploaded, then the KV forgets the queue.
			job2, err := r0.Create(ctx, testMapping, convert.FormatCSV, bytes.NewReader(d2.csv), -1, "app-2")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.kv.Delete(ctx, kvJobs); err != nil {
				t.Fatal(err)
			}

			sctx, stop = context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, owner := range []string{"instance-2", "instance-3"} {
				s := e.runner(t, owner)
				wg.Go(func() { s.Serve(sctx, 50*time.Millisecond) })
			}
			for _, job := range []*Job{job1, job2} {
				waitFor(t, 60*time.Second, "job "+job.ID, func() bool {
					st, err := r0.State(ctx, job.ID)
					return err == nil && st.State == StateDone
				})
			}
			stop()
			wg.Wait()
			for _, c := range []struct {
				job *Job
				d   *dataset
			}{{job1, d1}, {job2, d2}} {
				st, err := r0.State(ctx, c.job.ID)
				if err != nil {
					t.Fatal(err)
				}
				checkCounts(t, "job "+c.job.ID, st.Counts, c.d.counts)
				var buf bytes.Buffer
				if err := r0.Rejects(ctx, c.job.ID, &buf); err != nil {
					t.Fatal(err)
				}
				checkRejects(t, parseRejects(t, buf.Bytes()), c.d.rejects)
			}
			all, got := e.licenses(t)
			if want := len(d1.byNumber) + len(d2.byNumber) + len(d1.libNumbers) + len(d2.libNumbers); all != want {
				t.Errorf("%d licenses, want %d", all, want)
			}
			for _, c := range []struct {
				job *Job
				d   *dataset
			}{{job1, d1}, {job2, d2}} {
				for number, line := range c.d.byNumber {
					if g := got[number]; g.batch != c.job.ID || g.line != line {
						t.Errorf("license %s: %+v, want job %s line %d", number, g, c.job.ID, line)
					}
				}
			}
			if ids, err := e.kv.SMembers(ctx, kvJobs); err != nil || len(ids) != 0 {
				t.Errorf("queue after both jobs: %v %v", ids, err)
			}
		})
	}
}

// failingReader gives n bytes, then an error.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	for i := range k {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

// TestCreateFailures: an upload that fails, is empty, or has another size
// than announced leaves nothing behind; bad mappings and formats are
// refused before anything is stored.
func TestCreateFailures(t *testing.T) {
	defer func(n int) { sourcePartSize = n }(sourcePartSize)
	sourcePartSize = 1000
	e := newHubEnv(t, openEmbedded(t))
	r := e.runner(t, "api")
	tests := []struct {
		name    string
		mapping string
		format  string
		src     io.Reader
		size    int64
		code    string
	}{
		{"body fails after parts", testMapping, "", &failingReader{n: 3500, err: licensehub.Errorf(licensehub.EINVALID, "sm3 mismatch")}, -1, licensehub.EINVALID},
		{"body fails, plain error", testMapping, "", &failingReader{n: 10, err: errors.New("connection reset")}, -1, licensehub.EMALFORMED},
		{"empty", testMapping, "", strings.NewReader(""), -1, licensehub.EINVALID},
		{"shorter than announced", testMapping, "", strings.NewReader("abc"), 10, licensehub.EMALFORMED},
		{"longer than announced", testMapping, "", strings.NewReader(strings.Repeat("a", 2500)), 1500, licensehub.EMALFORMED},
		{"unknown mapping", "nope", "", strings.NewReader("a"), 1, licensehub.EINVALID},
		{"unknown format", testMapping, "xls", strings.NewReader("a"), 1, licensehub.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := r.Create(t.Context(), tt.mapping, tt.format, tt.src, tt.size, "app")
			if licensehub.ErrorCode(err) != tt.code {
				t.Errorf("Create: %v, %v; want code %s", job, err, tt.code)
			}
			if left := objectListing(t, e.objects); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if ids, _ := e.kv.SMembers(t.Context(), kvJobs); len(ids) != 0 {
				t.Errorf("queued: %v", ids)
			}
		})
	}
}

// TestUnknownJob: State and Rejects of unknown or malformed IDs are
// NOT_FOUND; Run refuses a malformed ID.
func TestUnknownJob(t *testing.T) {
	e := newHubEnv(t, openEmbedded(t))
	r := e.runner(t, "x")
	for _, id := range []string{"0123456789abcdef0123456789abcdef", "../../etc", "ABCDEF0123456789ABCDEF0123456789", ""} {
		if _, err := r.State(t.Context(), id); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			t.Errorf("State(%q): %v", id, err)
		}
		if err := r.Rejects(t.Context(), id, io.Discard); !licensehub.IsCode(err, licensehub.ENOTFOUND) {
			t.Errorf("Rejects(%q): %v", id, err)
		}
	}
	_, err := r.Run(t.Context(), Job{ID: "nope"}, csvOpener(t, nil), RunOptions{})
	if !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("Run with a bad ID: %v", err)
	}
	// A job whose mapping is gone fails, saying so.
	job := localJob(newJobID(), []byte("x"))
	job.Mapping = "gone"
	st, err := r.Run(t.Context(), job, csvOpener(t, []byte("x")), RunOptions{})
	if !licensehub.IsCode(err, licensehub.EINVALID) || st == nil || st.State != StateFailed || !strings.Contains(st.Error, "gone") {
		t.Errorf("Run with an unknown mapping: %+v %v", st, err)
	}
}

// TestJobFor: the CLI's job ID depends on the mapping and the file's
// bytes only, so running the same command again finds the same job.
func TestJobFor(t *testing.T) {
	e := newHubEnv(t, openEmbedded(t))
	r := e.runner(t, "cli")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.csv", "注册号\n1\n")
	b := write("b.csv", "注册号\n1\n")
	c := write("c.csv", "注册号\n2\n")
	ja, err := r.JobFor(t.Context(), testMapping, a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := r.JobFor(t.Context(), testMapping, b)
	if err != nil {
		t.Fatal(err)
	}
	jc, err := r.JobFor(t.Context(), testMapping, c)
	if err != nil {
		t.Fatal(err)
	}
	if ja.ID != jb.ID || ja.ID == jc.ID || !ValidID(ja.ID) || ja.Source != "a.csv" || jb.Source != "a.csv" {
		t.Errorf("jobs: %+v %+v %+v", ja, jb, jc)
	}
	if ja.Size != int64(len("注册号\n1\n")) || ja.Format != convert.FormatCSV || ja.CreatedBy != "hubctl" {
		t.Errorf("job: %+v", ja)
	}
	if _, err := r.JobFor(t.Context(), "nope", a); !licensehub.IsCode(err, licensehub.EINVALID) {
		t.Errorf("unknown mapping: %v", err)
	}
	st, err := r.State(t.Context(), ja.ID)
	if err != nil || st.State != StateQueued {
		t.Errorf("State of a job never run: %+v %v", st, err)
	}
}

// TestUploadedWorkbook: an uploaded XLSX job is read back through a
// temporary file (random access) that is removed when the job ends.
func TestUploadedWorkbook(t *testing.T) {
	defer func(n int) { sourcePartSize = n }(sourcePartSize)
	sourcePartSize = 2048
	e := newHubEnv(t, openEmbedded(t))
	d := generate(520, "XL")
	e.preload(t, d)
	book := bytes.NewBuffer(workbookOf(t, d.csv))
	r := e.runner(t, "xlsx")
	job, err := r.Create(t.Context(), testMapping, convert.FormatXLSX, bytes.NewReader(book.Bytes()), int64(book.Len()), "app")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "licensehub-conversion-*.xlsx"))
	st, err := r.Run(t.Context(), *job, func() (convert.Reader, error) { return r.OpenSource(t.Context(), *job) }, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The malformed CSV row (2 fields) is a short XLSX row: its missing
	// cells are empty, so the mapping rejects it for a missing field.
	want := d.counts
	want.RejectedBy = maps.Clone(want.RejectedBy)
	if n := want.RejectedBy[convert.RejectMalformedRow]; n > 0 {
		delete(want.RejectedBy, convert.RejectMalformedRow)
		want.RejectedBy[convert.RejectMissingField] += n
	}
	checkCounts(t, "workbook", st.Counts, want)
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "licensehub-conversion-*.xlsx"))
	if len(after) > len(before) {
		t.Errorf("temporary workbooks left: %v", after)
	}
}

// workbookOf is a CSV register as an XLSX workbook (Sheet1).
func workbookOf(t testing.TB, data []byte) []byte {
	t.Helper()
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	f := excelize.NewFile()
	defer f.Close()
	for i, rec := range recs {
		row := make([]any, len(rec))
		for j, v := range rec {
			row[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var book bytes.Buffer
	if _, err := f.WriteTo(&book); err != nil {
		t.Fatal(err)
	}
	return book.Bytes()
}

// TestWorkbookBomb: an XLSX upload that unpacks to more than
// XLSXMaxUnzipped is refused at Create (nothing kept); a stored job whose
// workbook is over the limit of the runner that reads it fails, saying
// why, and leaves no temporary file.
func TestWorkbookBomb(t *testing.T) {
	defer func(n int) { sourcePartSize = n }(sourcePartSize)
	sourcePartSize = 4096 // the zip's directory spans parts
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	const limit = 1 << 20
	e := newHubEnv(t, openEmbedded(t))
	book := workbookOf(t, generate(20, "ZB").csv)
	bomb := testenv.ZipWith(t, book, testenv.ZipPart{Name: "xl/worksheets/sheet1.xml", Data: "<row/>", Repeat: 50 << 20 / 6})
	if len(bomb) < 2*sourcePartSize || len(bomb) > 256<<10 {
		t.Fatalf("the bomb is %d bytes: the premise (a small zip of several parts) does not hold", len(bomb))
	}
	strict := e.runner(t, "strict", func(c *Config) { c.XLSXMaxUnzipped = limit })

	_, err := strict.Create(t.Context(), testMapping, convert.FormatXLSX, bytes.NewReader(bomb), int64(len(bomb)), "app")
	var le *licensehub.Error
	if !errors.As(err, &le) || le.Code != licensehub.EINVALID || le.Field != "source" || !strings.Contains(le.Message, "more than 1 MiB") {
		t.Errorf("Create of a bomb: %v, want INVALID_ARGUMENT field source naming 1 MiB", err)
	}
	if left := objectListing(t, e.objects); len(left) != 0 {
		t.Errorf("a refused upload left objects: %v", left)
	}
	if ids, _ := e.kv.SMembers(t.Context(), kvJobs); len(ids) != 0 {
		t.Errorf("a refused upload was queued: %v", ids)
	}
	// The same runner takes the real workbook, its directory over parts.
	if _, err := strict.Create(t.Context(), testMapping, convert.FormatXLSX, bytes.NewReader(book), int64(len(book)), "app"); err != nil {
		t.Fatalf("Create of a workbook under the limit: %v", err)
	}

	// Stored under the default limit, read under 1 MiB.
	job, err := e.runner(t, "api").Create(t.Context(), testMapping, convert.FormatXLSX, bytes.NewReader(bomb), int64(len(bomb)), "app")
	if err != nil {
		t.Fatal(err)
	}
	st, err := strict.Run(t.Context(), *job, func() (convert.Reader, error) { return strict.OpenSource(t.Context(), *job) }, RunOptions{})
	if !licensehub.IsCode(err, licensehub.EINVALID) || st == nil || st.State != StateFailed ||
		!strings.HasPrefix(st.Error, licensehub.EINVALID+": the workbook unpacks to more than 1 MiB") {
		t.Errorf("Run: %+v %v, want failed with the limit", st, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestSourceUnreadable: the uploaded source cannot be read in the middle
// of a job (the store fails the read of its fourth part once): the pass
// ends at its checkpoint, the job waits, opens the source again, skips
// what is done and ends exactly.
func TestSourceUnreadable(t *testing.T) {
	defer func(n int) { sourcePartSize = n }(sourcePartSize)
	sourcePartSize = 4096
	const failedPart = 3
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newHubEnv(t, be.open(t))
			d := generate(400, "SU")
			if len(d.csv) <= (failedPart+1)*sourcePartSize {
				t.Fatalf("the register (%d bytes) ends before part %d", len(d.csv), failedPart)
			}
			e.preload(t, d)
			flaky := &flakyObjects{ObjectStore: e.objects, failOnce: fmt.Sprintf("/source/%08d", failedPart)}
			r := e.runner(t, "runner", func(c *Config) { c.Objects = flaky })
			job, err := r.Create(t.Context(), testMapping, "", bytes.NewReader(d.csv), int64(len(d.csv)), "app")
			if err != nil {
				t.Fatal(err)
			}
			opens := 0
			st, err := r.Run(t.Context(), *job, func() (convert.Reader, error) {
				opens++
				return r.OpenSource(t.Context(), *job)
			}, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !flaky.tripped.Load() {
				t.Fatalf("part %d was never read", failedPart)
			}
			if opens < 2 {
				t.Errorf("the source was opened %d times; the failed part should have made the job read it again", opens)
			}
			checkCounts(t, "after the source came back", st.Counts, d.counts)
			e.checkLicenses(t, d, job.ID)
		})
	}
}
