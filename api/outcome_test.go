package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/license"
)

// outboxDown fails every outbox object write while armed: a push then
// stores its license object and fails at the step after it.
type outboxDown struct {
	licensehub.ObjectStore
	armed atomic.Bool
	hits  atomic.Int64
}

func (o *outboxDown) Create(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	if o.armed.Load() && strings.HasPrefix(key, "outbox/") {
		o.hits.Add(1)
		return licensehub.ObjectInfo{}, licensehub.Errorf(licensehub.EUNAVAILABLE, "injected: object store down")
	}
	return o.ObjectStore.Create(ctx, key, r, size, opts)
}

// TestPushOutcomeUnknownOverHTTP: a push whose license object is stored
// but whose exchange event cannot be recorded answers 503 OUTCOME_UNKNOWN
// telling the client to retry with the same Idempotency-Key; that retry
// answers 200 with the stored license.
func TestPushOutcomeUnknownOverHTTP(t *testing.T) {
	tl := newTestLibrary(t)
	objs := &outboxDown{ObjectStore: tl.objects}
	lib, err := license.NewLibrary(license.Config{Objects: objs, KV: tl.kv, Signers: tl.ring,
		Catalog: license.CatalogFunc(tl.cat.Validator), DefaultValidUntil: tl.cat.DefaultValidUntil, TypeName: tl.cat.TypeName})
	if err != nil {
		t.Fatal(err)
	}
	h := startWith(t, Options{Auth: auth.NewAuthenticator(writeRegistry(t), tl.kv), Limiter: auth.NewLimiter(tl.kv),
		Audit: newTrail(t, tl.kv), Keys: tl.ring, Verifier: &license.Verifier{Keys: tl.ring, Status: lib}, Catalog: tl.cat, Library: lib}, nil)
	withKey := func(r *http.Request) { r.Header.Set(HeaderIdempotencyKey, "unknown-1") }

	objs.armed.Store(true)
	resp, b := h.call(t, "issuer", "POST", "/v1/licenses", pushBody, time.Now(), withKey)
	objs.armed.Store(false)
	e := decodeError(t, b)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Code != licensehub.EOUTCOMEUNKNOWN ||
		e.Message != "the license may have been stored; retry with the same Idempotency-Key" || objs.hits.Load() == 0 {
		t.Fatalf("push with the outbox failing: %d %s (outbox writes refused: %d), want 503 %s", resp.StatusCode, b, objs.hits.Load(), licensehub.EOUTCOMEUNKNOWN)
	}

	resp, doc := h.call(t, "issuer", "POST", "/v1/licenses", pushBody, time.Now(), withKey)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Location"), "/v1/licenses/1.2.156.3005.2.") {
		t.Fatalf("retry with the same Idempotency-Key: %d %s, want 200 and the stored license", resp.StatusCode, doc)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/licenses/")
	rec, err := lib.Get(context.Background(), id)
	if err != nil || string(rec.Document) != string(doc) {
		t.Fatalf("the retry's answer is not the stored license: %v", err)
	}
}
