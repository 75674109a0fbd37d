package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/signing"
)

// benchRuns numbers the registers of the hub runs: every run converts
// licenses of its own numbers.
var benchRuns atomic.Int64

// benchWorkers is the push concurrency of the conversion and of the raw
// PUT baseline.
var benchWorkers = envIntRaw("CONVERT_BENCH_WORKERS", 16)

// BenchmarkConvert compares the conversion's row rate with MinIO's raw
// PUT rate, on the test MinIO + Redis:
//
//	hub            a generated register (CONVERT_BENCH_HUB_ROWS rows, default
//	               100,000; ~1.4% rejects, ~1% in-file duplicates, ~1%
//	               numbers already in the library) converted by Run with 16
//	               workers into the library: parse, map, sign, store
//	               (create-only), index, checkpoint. One iteration is one
//	               whole register; ns/op, B/op and allocs/op are reported
//	               per row, with rows/s.
//	raw-minio-put  CONVERT_BENCH_RAW_OBJECTS (default 20,000) PUTs of
//	               objects of a signed license's size with minio-go, 16
//	               at a time; one iteration is the whole batch, figures
//	               are per object. (Long batches, like the hub's: the test
//	               servers share 2 cores, and a 1-second run measures the
//	               neighbours' load more than MinIO.)
//	raw-minio-create  the same, create-only (If-None-Match: *), as the
//	               library writes a license.
//
// scripts/bench.sh prints hub as a % of each baseline (the issue's
// target: >= 70 % of raw-minio-put). CONVERT_BENCH_WORKERS changes the
// concurrency of all three. Per row the library makes ~1.18 MinIO writes
// (the create-only license object, and an outbox object per ~6 rows) and
// ~6 pipelined Redis commands, on the same 2 cores as MinIO and Redis.
func BenchmarkConvert(b *testing.B) {
	s := openServers(b)
	e := newHubEnv(b, s)
	rows := envInt(b, "CONVERT_BENCH_HUB_ROWS", 100_000)
	rawObjects := envInt(b, "CONVERT_BENCH_RAW_OBJECTS", 20_000)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// A signed license as the conversion makes it: its size is the raw
	// PUT's object size.
	sample := generate(1, "SZ")
	rd, err := convert.OpenReader(bytes.NewReader(sample.csv), -1, convert.FormatCSV, convert.EncodingUTF8, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	row, err := rd.Next()
	if err != nil {
		b.Fatal(err)
	}
	req, rej := e.mapping.Request(row, newJobID())
	if rej != nil {
		b.Fatal(rej)
	}
	res, err := e.lib.Push(b.Context(), req)
	if err != nil {
		b.Fatal(err)
	}
	docSize := len(res.Document)

	b.Run("hub", func(b *testing.B) {
		r := e.runner(b, "bench", func(c *Config) {
			c.Workers, c.CheckpointRows, c.CheckpointEvery, c.Logger = benchWorkers, DefaultCheckpointRows, DefaultCheckpointEvery, quiet
			c.OpTimeout = DefaultOpTimeout
		})
		var ms0, ms1 runtime.MemStats
		var timed time.Duration
		var mallocs, bytesAlloc uint64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			d := generate(rows, fmt.Sprintf("H%03d", benchRuns.Add(1)))
			e.preload(b, d)
			job := localJob(newJobID(), d.csv)
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			start := time.Now()
			b.StartTimer()
			st, err := r.Run(b.Context(), job, csvOpener(b, d.csv), RunOptions{})
			b.StopTimer()
			timed += time.Since(start)
			runtime.ReadMemStats(&ms1)
			mallocs += ms1.Mallocs - ms0.Mallocs
			bytesAlloc += ms1.TotalAlloc - ms0.TotalAlloc
			if err != nil {
				b.Fatal(err)
			}
			if st.Counts.Summary() != d.counts.Summary() {
				b.Fatalf("counts %s, want %s", st.Counts.Summary(), d.counts.Summary())
			}
		}
		n := float64(b.N * rows)
		b.ReportMetric(float64(timed.Nanoseconds())/n, "ns/op")
		b.ReportMetric(n/timed.Seconds(), "rows/s")
		b.ReportMetric(float64(bytesAlloc)/n, "B/op")
		b.ReportMetric(float64(mallocs)/n, "allocs/op")
	})

	// The baselines: plain PUTs, and create-only PUTs (If-None-Match: *,
	// what the library's license write is), of the same size.
	for _, raw := range []struct {
		name       string
		createOnly bool
	}{{"raw-minio-put", false}, {"raw-minio-create", true}} {
		var seq atomic.Int64 // keys never repeat across the runs of a sub-benchmark
		b.Run(raw.name, func(b *testing.B) {
			client, bucket := s.minio.Client(), s.minio.Bucket()
			data := bytes.Repeat([]byte("x"), docSize)
			var timed time.Duration
			var mallocs, bytesAlloc uint64
			for i := 0; i < b.N; i++ {
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				start := time.Now()
				jobs := make(chan struct{})
				var wg sync.WaitGroup
				for range benchWorkers {
					wg.Go(func() {
						for range jobs {
							key := fmt.Sprintf("bench/%s/%d.json", raw.name, seq.Add(1))
							opts := miniogo.PutObjectOptions{ContentType: "application/json"}
							if raw.createOnly {
								opts.SetMatchETagExcept("*")
							}
							if _, err := client.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for range rawObjects {
					jobs <- struct{}{}
				}
				close(jobs)
				wg.Wait()
				timed += time.Since(start)
				runtime.ReadMemStats(&ms1)
				mallocs += ms1.Mallocs - ms0.Mallocs
				bytesAlloc += ms1.TotalAlloc - ms0.TotalAlloc
			}
			n := float64(b.N * rawObjects)
			b.ReportMetric(float64(timed.Nanoseconds())/n, "ns/op")
			b.ReportMetric(n/timed.Seconds(), "objects/s")
			b.ReportMetric(float64(docSize), "object-bytes")
			b.ReportMetric(float64(bytesAlloc)/n, "B/op")
			b.ReportMetric(float64(mallocs)/n, "allocs/op")
		})
	}
}

// BenchmarkConvertPeakMemory runs `hubctl convert` as a child process on
// generated registers and reports the child's peak resident memory
// (peak-MB; the target: < 200 MB whatever the size) and its rate.
//
//	rows=100000   on the test MinIO + Redis (the production shape).
//	rows=1000000  only with CONVERT_BENCH_ROWS=1000000 (a 1,000,000-row
//	              register: ~230 MB of CSV). At ~1,000 rows/s against
//	              MinIO on a 2-core machine it would take ~17 minutes, so
//	              it runs on the embedded filesystem store with the test
//	              Redis as KV (CONVERT_BENCH_STORE=embedded: the in-process
//	              KV too, see below; =servers: MinIO + Redis anyway).
//
// Why Redis and not the in-process KV for the 1M run: with redis.url
// empty the library's index (holder sets, natural keys, index entries,
// the outbox stream: ~1 KB a license) lives in hubctl's own heap, so the
// child's RSS would measure the index of a million licenses, not the
// converter. CONVERT_BENCH_STORE=embedded measures exactly that, for the
// record.
func BenchmarkConvertPeakMemory(b *testing.B) {
	sizes := []int{100_000}
	if n := envInt(b, "CONVERT_BENCH_ROWS", 0); n > 0 && n != 100_000 {
		sizes = append(sizes, n)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "hubctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/licensehub/licensehub/cmd/hubctl").CombinedOutput(); err != nil {
		b.Fatalf("go build hubctl: %v\n%s", err, out)
	}
	keys := filepath.Join(dir, "keys")
	now := time.Now()
	if _, err := signing.Generate(keys, testAuthority, now.Add(-time.Hour), now.AddDate(1, 0, 0), nil); err != nil {
		b.Fatal(err)
	}
	mappingFile := filepath.Join(dir, testMapping+".yaml")
	if err := os.WriteFile(mappingFile, []byte(benchMappingYAML), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, rows := range sizes {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			store := "servers"
			if rows > 100_000 {
				store = "fs+redis"
				if v := os.Getenv("CONVERT_BENCH_STORE"); v != "" {
					store = v
				}
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				sub := b.TempDir()
				file := filepath.Join(sub, "register.csv")
				if err := writeRegister(file, rows, fmt.Sprintf("M%d", i)); err != nil {
					b.Fatal(err)
				}
				cfg := benchHubConfig(b, sub, keys, store)
				cmd := exec.Command(bin, "convert", "--config", cfg, "--mapping", mappingFile, "--workers", strconv.Itoa(benchWorkers), "--quiet", file)
				for _, kv := range os.Environ() {
					if !strings.HasPrefix(kv, "HUB_") {
						cmd.Env = append(cmd.Env, kv)
					}
				}
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				start := time.Now()
				b.StartTimer()
				err := cmd.Run()
				b.StopTimer()
				took := time.Since(start)
				if err != nil {
					b.Fatalf("hubctl convert: %v\n%s%s", err, out.String(), errOut.String())
				}
				if m := regexp.MustCompile(`rows read\s+(\d+)`).FindStringSubmatch(out.String()); m == nil || m[1] != strconv.Itoa(rows) {
					b.Fatalf("hubctl read %v rows, want %d:\n%s", m, rows, out.String())
				}
				ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				if !ok {
					b.Skip("no rusage on this platform")
				}
				peak := float64(ru.Maxrss) / 1024 // KiB on Linux
				b.ReportMetric(peak, "peak-MB")
				b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
				b.Logf("%d rows on %s: %s, %.0f rows/s, peak RSS %.1f MB", rows, store, took.Round(time.Second), float64(rows)/took.Seconds(), peak)
			}
		})
	}
}

const benchMappingYAML = `name: test-register
` + testenv.RegisterMappingBody + `date_formats: ["2006-01-02", "2006年1月2日"]
`

// benchHubConfig writes a hub configuration for hubctl: store is
// "servers" (test MinIO, fresh bucket, and Redis), "fs+redis" (the
// embedded filesystem store and the test Redis) or "embedded"
// (filesystem store, in-process KV).
func benchHubConfig(b *testing.B, dir, keys, store string) string {
	b.Helper()
	c := testenv.HubConfig{Dir: dir, Keys: keys}
	if store == "servers" {
		mio := testenv.RequireMinIO(b)
		c.MinIO, c.Bucket = &mio, mio.Bucket(b)
	}
	if store == "servers" || store == "fs+redis" {
		c.RedisURL, c.RedisPrefix = testenv.RequireRedis(b), testenv.Name(b)+":"
		b.Cleanup(func() { testenv.CleanRedisPrefix(b, c.RedisURL, c.RedisPrefix) })
	}
	return testenv.WriteHubConfig(b, c)
}

// writeRegister streams a generated register of n rows (the kinds of
// generate) to path.
func writeRegister(path string, n int, prefix string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	w.Write(header)
	for i := 1; i <= n; i++ {
		number := numberOf(prefix, i)
		kind := kindOf(i)
		if kind == rowDuplicate {
			number = numberOf(prefix, i-50)
		}
		code := creditCode(i)
		issued := fmt.Sprintf("%d-%02d-%02d", 2010+i%10, 1+i%12, 1+i%28)
		address := fmt.Sprintf("长沙市岳麓区示范路%d号", i)
		switch kind {
		case rowMalformed:
			w.Write([]string{number, "缺列企业"})
			continue
		case rowBadCode:
			code = code[:17] + "0"
			if code == creditCode(i) {
				code = code[:17] + "1"
			}
		case rowBadDate:
			issued = "2015-02-30"
		case rowInvalid:
			address = strings.Repeat("长", 201)
		}
		w.Write([]string{number, fmt.Sprintf("测试企业%d有限公司", i), code, issued, "有限责任公司", "张三", issued,
			"长期", address, "软件开发", "长沙市市场监督管理局"})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("%s=%q is not a count", name, v)
	}
	return n
}

func envIntRaw(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
