package minio

// The shared contract (store/storetest) runs in store/objects_contract_test.go;
// these tests cover what is particular to MinIO: error mapping, bucket
// setup, timeouts, a server that goes away and multipart uploads.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"maps"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/internal/testenv"
)

func TestUserMetadataIsLowerCase(t *testing.T) {
	got := userMetadata(map[string]string{"License-Id": "L-1", "X-Amz-Meta-Issuer": "city", "plain": "p"})
	want := map[string]string{"license-id": "L-1", "issuer": "city", "plain": "p"}
	if !maps.Equal(got, want) {
		t.Errorf("userMetadata = %v, want %v", got, want)
	}
	if userMetadata(map[string]string{}) != nil {
		t.Error("empty metadata should be nil")
	}
}

func TestListPrefix(t *testing.T) {
	cases := []struct {
		prefix, query string
		ok            bool
	}{
		{"", "", true},
		{"docs", "docs", true},
		{"docs/", "docs/", true},
		{"docs/20", "docs/20", true},
		{"docs/.", "docs/", true},
		{"docs/..", "docs/", true},
		{"..", "", true},
		{"docs/..x", "docs/..x", true},
		{"/docs", "", false},
		{"docs//", "", false},
		{"../", "", false},
		{"a/./b", "", false},
		{"with space", "", false},
	}
	for _, c := range cases {
		q, ok := listPrefix(c.prefix)
		if q != c.query || ok != c.ok {
			t.Errorf("listPrefix(%q) = %q, %t; want %q, %t", c.prefix, q, ok, c.query, c.ok)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	s := &Store{}
	live := context.Background()
	expired, cancel := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		code string
	}{
		{"NoSuchKey", live, miniogo.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, licensehub.ENOTFOUND},
		{"HEAD 404", live, miniogo.ErrorResponse{StatusCode: 404}, licensehub.ENOTFOUND},
		{"NoSuchBucket", live, miniogo.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, licensehub.EUNAVAILABLE},
		{"412", live, miniogo.ErrorResponse{Code: "PreconditionFailed", StatusCode: 412}, licensehub.ECONFLICT},
		{"409 exists", live, miniogo.ErrorResponse{Code: "ObjectAlreadyExists", Message: "Object already exists", StatusCode: 409}, licensehub.ECONFLICT},
		{"409 other", live, miniogo.ErrorResponse{Code: "OperationAborted", StatusCode: 409}, licensehub.EUNAVAILABLE},
		{"400", live, miniogo.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, licensehub.EINVALID},
		{"403", live, miniogo.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, licensehub.EUNAVAILABLE},
		{"503", live, miniogo.ErrorResponse{Code: "SlowDown", StatusCode: 503}, licensehub.EUNAVAILABLE},
		{"refused", live, &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, licensehub.EUNAVAILABLE},
		{"deadline", live, &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, licensehub.ETIMEOUT},
		{"cancelled", live, context.Canceled, licensehub.ETIMEOUT},
		{"expired ctx, bare transport error", expired, errors.New("use of closed network connection"), licensehub.ETIMEOUT},
	}
	for _, c := range cases {
		err := s.wrap(c.ctx, c.err, "op", "k")
		if !licensehub.IsCode(err, c.code) {
			t.Errorf("%s: wrap = %v (code %s), want %s", c.name, err, licensehub.ErrorCode(err), c.code)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s: wrap lost the cause", c.name)
		}
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Bucket: "ok-bucket"},
		{Endpoint: "127.0.0.1:9", Bucket: ""},
		{Endpoint: "127.0.0.1:9", Bucket: "Bad_Bucket"},
	} {
		_, err := Open(t.Context(), cfg)
		if !licensehub.IsCode(err, licensehub.EINVALID) {
			t.Errorf("Open(%+v) = %v, want EINVALID", cfg, err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	begin := time.Now()
	_, err = Open(t.Context(), Config{Endpoint: addr, Bucket: "unreachable", OpTimeout: 5 * time.Second})
	if !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		t.Errorf("Open of a closed port = %v, want EUNAVAILABLE", err)
	}
	if d := time.Since(begin); d > 4*time.Second {
		t.Errorf("Open of a closed port took %v; retries should give up sooner", d)
	}
}

// openTest opens a store on a fresh bucket of the test server, reached
// through endpoint (the server itself when empty); m.Bucket removes the
// bucket when the test ends.
func openTest(t *testing.T, endpoint string, opTimeout time.Duration) *Store {
	t.Helper()
	m := testenv.RequireMinIO(t)
	if endpoint == "" {
		endpoint = m.Endpoint
	}
	cfg := Config{Endpoint: endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t), OpTimeout: opTimeout}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenConfiguresBucket(t *testing.T) {
	s := openTest(t, "", 0)
	v, err := s.client.GetBucketVersioning(t.Context(), s.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Enabled() {
		t.Errorf("versioning of a new bucket is %q, want enabled", v.Status)
	}
	if s.opTimeout != DefaultOpTimeout {
		t.Errorf("OpTimeout 0 gave %v, want the default %v", s.opTimeout, DefaultOpTimeout)
	}

	// Several instances starting at once against an existing bucket, or
	// racing to create a new one, all succeed.
	m := testenv.RequireMinIO(t)
	for _, bucket := range []string{s.bucket, testenv.Name(t)} {
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				o, err := Open(t.Context(), Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket})
				if err != nil {
					t.Errorf("concurrent Open(%s): %v", bucket, err)
					return
				}
				o.Close()
			})
		}
		wg.Wait()
		if bucket != s.bucket {
			_ = s.client.RemoveBucketWithOptions(t.Context(), bucket, miniogo.RemoveBucketOptions{ForceDelete: true})
		}
	}
}

// TestServerGoesAway puts a proxy between the store and MinIO and then
// stops it: Ping and the operations fail with EUNAVAILABLE, promptly.
func TestServerGoesAway(t *testing.T) {
	m := testenv.RequireMinIO(t)
	target, err := url.Parse("http://" + m.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer proxy.Close()
	s := openTest(t, strings.TrimPrefix(proxy.URL, "http://"), 0)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping while the server is up: %v", err)
	}
	if _, err := s.Put(t.Context(), "k", strings.NewReader("v"), 1, licensehub.PutOptions{}); err != nil {
		t.Fatalf("Put while the server is up: %v", err)
	}

	proxy.Close()
	begin := time.Now()
	err = s.Ping(t.Context())
	if !licensehub.IsCode(err, licensehub.EUNAVAILABLE) && !licensehub.IsCode(err, licensehub.ETIMEOUT) {
		t.Errorf("Ping with the server gone = %v, want EUNAVAILABLE or ETIMEOUT", err)
	}
	if d := time.Since(begin); d > pingTimeout+time.Second {
		t.Errorf("Ping with the server gone took %v, want at most about %v", d, pingTimeout)
	}
	_, err = s.Head(t.Context(), "k")
	if !licensehub.IsCode(err, licensehub.EUNAVAILABLE) {
		t.Errorf("Head with the server gone = %v, want EUNAVAILABLE", err)
	}
}

// TestOpTimeoutCoversGetBody: the per-call timeout of Get lasts until its
// reader is closed, so a reader held too long fails with ETIMEOUT. (A
// deadline is the subject here: the test waits until it has certainly
// passed; only the Get and its first KiB must fit in OpTimeout.)
func TestOpTimeoutCoversGetBody(t *testing.T) {
	s := openTest(t, "", time.Minute)
	data := make([]byte, 8<<20)
	if _, err := s.Put(t.Context(), "big", bytes.NewReader(data), int64(len(data)), licensehub.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	s.opTimeout = 2 * time.Second
	begin := time.Now()
	rc, _, err := s.Get(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(begin.Add(s.opTimeout + 200*time.Millisecond)))
	_, err = io.ReadAll(rc)
	if !licensehub.IsCode(err, licensehub.ETIMEOUT) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reading a Get body past OpTimeout = %v, want ETIMEOUT wrapping context.DeadlineExceeded", err)
	}
}

// TestMultipartUnknownSize writes bodies of unknown size larger than one
// part, which go up as multipart uploads: Create is still create-only.
func TestMultipartUnknownSize(t *testing.T) {
	s := openTest(t, "", time.Minute)
	data := make([]byte, partSize+partSize/2)
	rand.Read(data)
	stream := func() io.Reader { return struct{ io.Reader }{bytes.NewReader(data)} }

	info, err := s.Create(t.Context(), "multi", stream(), -1, licensehub.PutOptions{Metadata: map[string]string{"n": "1"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Create reported Size %d, want %d", info.Size, len(data))
	}
	_, err = s.Create(t.Context(), "multi", stream(), -1, licensehub.PutOptions{Metadata: map[string]string{"n": "2"}})
	if !licensehub.IsCode(err, licensehub.ECONFLICT) {
		t.Errorf("second multipart Create = %v, want ECONFLICT", err)
	}
	rc, got, err := s.Get(t.Context(), "multi")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(body, data) || got.Metadata["n"] != "1" || got.ETag != info.ETag {
		t.Errorf("after a refused Create: %d bytes (equal %t), metadata %v, ETag %q (want %q), err %v",
			len(body), bytes.Equal(body, data), got.Metadata, got.ETag, info.ETag, err)
	}
}
