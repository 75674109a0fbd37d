package store_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
)

// BenchmarkObjectPutGet writes a 4 KiB object and reads it back in full,
// through the hub's MinIO ObjectStore ("hub") and through minio-go called
// directly ("raw-minio-go"), on the same bucket of the test server. Every
// iteration uses a new key, so neither side pays for a growing version
// history.
func BenchmarkObjectPutGet(b *testing.B) {
	m := testenv.RequireMinIO(b)
	s := openMinIO(b, m, testenv.Name(b))
	client, bucket := s.Client(), s.Bucket()

	data := make([]byte, 4<<10)
	rand.Read(data)
	const contentType = "application/octet-stream"

	b.Run("hub", func(b *testing.B) {
		ctx := b.Context()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			key := fmt.Sprintf("bench/hub/%d", i)
			i++
			if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), licensehub.PutOptions{ContentType: contentType}); err != nil {
				b.Fatal(err)
			}
			rc, _, err := s.Get(ctx, key)
			if err != nil {
				b.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || len(got) != len(data) {
				b.Fatalf("read %d bytes, err %v; want %d", len(got), err, len(data))
			}
		}
	})

	b.Run("raw-minio-go", func(b *testing.B) {
		ctx := b.Context()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			key := fmt.Sprintf("bench/raw/%d", i)
			i++
			if _, err := client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), miniogo.PutObjectOptions{ContentType: contentType}); err != nil {
				b.Fatal(err)
			}
			obj, err := client.GetObject(ctx, bucket, key, miniogo.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || len(got) != len(data) {
				b.Fatalf("read %d bytes, err %v; want %d", len(got), err, len(data))
			}
		}
	})
}
