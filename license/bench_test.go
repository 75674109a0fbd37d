package license

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
)

// inFlight is how many pushes the benchmark keeps in flight.
const inFlight = 32

// BenchmarkPush pushes licenses with 32 in flight through the library
// (hub) and, in the same run, PUTs objects of the same size as a stored
// license document to the same bucket with minio-go (raw-minio-put). The
// target: hub at 60 % or more of raw.
func BenchmarkPush(b *testing.B) {
	objs := openMinIO(b, "")
	kv := openRedis(b)
	f := newFixture(b, backend{name: "minio+redis", objects: objs, kv: kv})
	par := (inFlight + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	sample := mustPush(b, f.lib, sampleRequest("BENCH-SAMPLE"))
	size := len(sample.Document)

	var seq atomic.Int64
	b.Run("hub", func(b *testing.B) {
		b.SetParallelism(par)
		b.SetBytes(int64(size))
		ctx := context.Background()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := sampleRequest(fmt.Sprintf("B-%d", seq.Add(1)))
				if _, err := f.lib.Push(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pushes/s")
	})
	b.Run("raw-minio-put", func(b *testing.B) {
		b.SetParallelism(par)
		b.SetBytes(int64(size))
		client, bucket := objs.Client(), objs.Bucket()
		body := bytes.Repeat([]byte("x"), size)
		ctx := context.Background()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := fmt.Sprintf("raw/%d.json", seq.Add(1))
				_, err := client.PutObject(ctx, bucket, key, bytes.NewReader(body), int64(size),
					miniogo.PutObjectOptions{ContentType: "application/json"})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
	})
}
