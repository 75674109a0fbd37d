package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

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
			return openMinIO(t, m, testenv.Name(t))
		})
	})
}

// openMinIO opens a store on a fresh bucket of the test server; cleanup
// removes the bucket with everything in it and closes the store.
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
		// tb.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := removeBucket(ctx, s.Client(), bucket); err != nil {
			tb.Logf("removing test bucket %s (best-effort): %v", bucket, err)
		}
		// Close drops the idle keep-alive connections, whose goroutines
		// goleak would otherwise report.
		if err := s.Close(); err != nil {
			tb.Errorf("closing minio store: %v", err)
		}
	})
	return s
}

// removeBucket deletes every version and delete marker in bucket, the
// uploads left incomplete, then the bucket itself.
func removeBucket(ctx context.Context, c *miniogo.Client, bucket string) error {
	var errs []error
	for obj := range c.ListObjects(ctx, bucket, miniogo.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			errs = append(errs, obj.Err)
			break
		}
		err := c.RemoveObject(ctx, bucket, obj.Key, miniogo.RemoveObjectOptions{VersionID: obj.VersionID})
		if err != nil {
			errs = append(errs, err)
		}
	}
	for up := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err != nil {
			errs = append(errs, up.Err)
			break
		}
		if err := c.RemoveIncompleteUpload(ctx, bucket, up.Key); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.RemoveBucket(ctx, bucket); err != nil {
		// Whatever the listing missed: MinIO's force delete (an extension)
		// removes a bucket with its contents.
		ferr := c.RemoveBucketWithOptions(ctx, bucket, miniogo.RemoveBucketOptions{ForceDelete: true})
		if ferr == nil {
			return nil
		}
		errs = append(errs, err, ferr)
	}
	return errors.Join(errs...)
}
