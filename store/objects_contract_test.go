package store_test

import (
	"testing"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/store/fs"
	miniostore "github.com/licensehub/licensehub/store/minio"
	"github.com/licensehub/licensehub/store/storetest"
)

func TestObjectStoreContract(t *testing.T) {
	t.Run("fs", func(t *testing.T) {
		storetest.ObjectStore(t, func(t *testing.T) licensehub.ObjectStore {
			s, err := fs.Open(t.TempDir())
			if err != nil {
				t.Fatalf("fs.Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	t.Run("minio", func(t *testing.T) {
		m := testenv.RequireMinIO(t)
		storetest.ObjectStore(t, func(t *testing.T) licensehub.ObjectStore {
			return openMinIO(t, m, m.Bucket(t))
		})
	})
}

// openMinIO opens a store on a bucket of the test server (m.Bucket removes
// it) and closes the store when the test ends.
func openMinIO(tb testing.TB, m testenv.MinIO, bucket string) *miniostore.Store {
	tb.Helper()
	s, err := miniostore.Open(tb.Context(), miniostore.Config{
		Endpoint:  m.Endpoint,
		AccessKey: m.AccessKey,
		SecretKey: m.SecretKey,
		Bucket:    bucket,
	})
	if err != nil {
		tb.Fatalf("minio.Open(bucket %s): %v", bucket, err)
	}
	tb.Cleanup(func() {
		// Close drops the idle keep-alive connections, whose goroutines
		// goleak would otherwise report.
		if err := s.Close(); err != nil {
			tb.Errorf("closing minio store: %v", err)
		}
	})
	return s
}
