// Package testenv tells tests where the real Redis and MinIO servers that
// ./scripts/test.sh starts are listening.
//
// The test command exports:
//
//	HUB_TEST_REDIS_URL          redis://127.0.0.1:PORT/0
//	HUB_TEST_MINIO_ENDPOINT     127.0.0.1:PORT
//	HUB_TEST_MINIO_ACCESS_KEY   root user
//	HUB_TEST_MINIO_SECRET_KEY   root password
//	HUB_TEST_REQUIRE_BACKENDS=1 missing servers fail tests instead of skipping
//
// A plain `go test ./...` without them skips the integration tests and says so.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO holds the coordinates of the test MinIO server.
type MinIO struct {
	Endpoint  string
	AccessKey string
	SecretKey string
}

// RequireMinIO returns the test MinIO server or skips (fails, under the test
// command) when none is configured.
func RequireMinIO(tb testing.TB) MinIO {
	tb.Helper()
	m := MinIO{
		Endpoint:  os.Getenv("HUB_TEST_MINIO_ENDPOINT"),
		AccessKey: os.Getenv("HUB_TEST_MINIO_ACCESS_KEY"),
		SecretKey: os.Getenv("HUB_TEST_MINIO_SECRET_KEY"),
	}
	if m.Endpoint == "" {
		missing(tb, "HUB_TEST_MINIO_ENDPOINT")
	}
	return m
}

// RequireRedis returns the test Redis URL or skips (fails, under the test
// command) when none is configured.
func RequireRedis(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("HUB_TEST_REDIS_URL")
	if u == "" {
		missing(tb, "HUB_TEST_REDIS_URL")
	}
	return u
}

func missing(tb testing.TB, env string) {
	tb.Helper()
	if os.Getenv("HUB_TEST_REQUIRE_BACKENDS") == "1" {
		tb.Fatalf("%s is not set but HUB_TEST_REQUIRE_BACKENDS=1: the test command failed to start its servers", env)
	}
	tb.Skipf("%s not set: integration test skipped (run ./scripts/test.sh to run it against a real server)", env)
}

// Name returns a unique, lower-case name for buckets and key prefixes, so
// tests and packages running in parallel never share state.
func Name(tb testing.TB) string {
	tb.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	base := strings.ToLower(tb.Name())
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, base)
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return strings.Trim("t-"+strings.Trim(base, "-")+"-"+hex.EncodeToString(b[:]), "-")
}

// Bucket returns a fresh bucket name for this test and removes the bucket
// with every object version when the test ends (after cleanups registered
// later, such as closing the store that created it).
func (m MinIO) Bucket(tb testing.TB) string {
	tb.Helper()
	name := Name(tb)
	tb.Cleanup(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections() // idle keep-alives would upset goleak
		c, err := miniogo.New(m.Endpoint, &miniogo.Options{
			Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Transport: tr})
		if err != nil {
			tb.Logf("removing bucket %s: %v", name, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// MinIO's force delete removes the bucket with all its versions.
		err = c.RemoveBucketWithOptions(ctx, name, miniogo.RemoveBucketOptions{ForceDelete: true})
		if err != nil && miniogo.ToErrorResponse(err).Code != "NoSuchBucket" {
			tb.Logf("removing bucket %s (best-effort): %v", name, err)
		}
	})
	return name
}

// RequireTool returns the path of a command-line tool (openssl, jq, ...)
// or skips; under the test command, which installs them, it fails instead.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(tb, name+" on PATH")
	}
	return path
}
