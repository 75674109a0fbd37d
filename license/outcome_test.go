package license

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

// faultObjects fails Create and Put of keys under prefix while armed.
type faultObjects struct {
	licensehub.ObjectStore
	prefix atomic.Pointer[string]
	hits   atomic.Int64
}

func (o *faultObjects) fails(key string) bool {
	p := o.prefix.Load()
	if p != nil && strings.HasPrefix(key, *p) {
		o.hits.Add(1)
		return true
	}
	return false
}

func (o *faultObjects) Create(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	if o.fails(key) {
		return licensehub.ObjectInfo{}, licensehub.Errorf(licensehub.EUNAVAILABLE, "injected: object store down")
	}
	return o.ObjectStore.Create(ctx, key, r, size, opts)
}

func (o *faultObjects) Put(ctx context.Context, key string, r io.Reader, size int64, opts licensehub.PutOptions) (licensehub.ObjectInfo, error) {
	if o.fails(key) {
		return licensehub.ObjectInfo{}, licensehub.Errorf(licensehub.EUNAVAILABLE, "injected: object store down")
	}
	return o.ObjectStore.Put(ctx, key, r, size, opts)
}

// faultKV fails the named methods while armed.
type faultKV struct {
	licensehub.KV
	method atomic.Pointer[string]
	hits   atomic.Int64
}

func (k *faultKV) fails(m string) error {
	if p := k.method.Load(); p != nil && *p == m {
		k.hits.Add(1)
		return licensehub.Errorf(licensehub.EUNAVAILABLE, "injected: KV down")
	}
	return nil
}

func (k *faultKV) XAdd(ctx context.Context, key string, fields map[string]string) (string, error) {
	if err := k.fails("XAdd"); err != nil {
		return "", err
	}
	return k.KV.XAdd(ctx, key, fields)
}

func (k *faultKV) SAdd(ctx context.Context, key string, members ...string) error {
	if err := k.fails("SAdd"); err != nil {
		return err
	}
	return k.KV.SAdd(ctx, key, members...)
}

func (k *faultKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := k.fails("Set"); err != nil {
		return err
	}
	return k.KV.Set(ctx, key, value, ttl)
}

// TestOutcomeUnknown injects a backend failure at the call after (or
// before) the durable write of a push, a new version and a status change:
// after it the answer is OUTCOME_UNKNOWN (the record is stored) and a
// retry of the same request, the fault gone, completes it; before it the
// answer is the backend's own code and nothing was stored.
func TestOutcomeUnknown(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		objs := &faultObjects{ObjectStore: b.objects}
		kv := &faultKV{KV: b.kv}
		b.objects = objs
		f := newFixture(t, b)
		f.lib = f.library(t, kv)
		ctx := ctxT(t)

		arm := func(objPrefix, kvMethod string) func() {
			if objPrefix != "" {
				objs.prefix.Store(&objPrefix)
			}
			if kvMethod != "" {
				kv.method.Store(&kvMethod)
			}
			objs.hits.Store(0)
			kv.hits.Store(0)
			return func() {
				objs.prefix.Store(nil)
				kv.method.Store(nil)
				if objs.hits.Load()+kv.hits.Load() == 0 {
					t.Fatalf("the fault (%q, %q) was never hit", objPrefix, kvMethod)
				}
			}
		}
		exists := func(key string) bool {
			_, err := b.objects.Head(ctx, key)
			if err != nil && !licensehub.IsCode(err, licensehub.ENOTFOUND) {
				t.Fatal(err)
			}
			return err == nil
		}

		pushes := []struct {
			name, objPrefix, kvMethod string
			want                      string
			stored                    bool
		}{
			{"outbox object after the license", outboxPrefix, "", licensehub.EOUTCOMEUNKNOWN, true},
			{"outbox stream after the license", "", "XAdd", licensehub.EOUTCOMEUNKNOWN, true},
			{"holder index after the license", "", "SAdd", licensehub.EOUTCOMEUNKNOWN, true},
			{"idempotency record before the license", idempotencyPrefix, "", licensehub.EOBJECTSTORE, false},
			{"license object itself", licensesPrefix, "", licensehub.EOBJECTSTORE, false},
		}
		for i, tc := range pushes {
			t.Run("push/"+tc.name, func(t *testing.T) {
				req := sampleRequest("OUTCOME-" + string(rune('A'+i)))
				req.IdempotencyKey = "idem-" + req.Number
				disarm := arm(tc.objPrefix, tc.kvMethod)
				_, err := f.lib.Push(ctx, req)
				disarm()
				if code := licensehub.ErrorCode(err); code != tc.want {
					t.Fatalf("push: %v, want %s", err, tc.want)
				}
				if tc.want == licensehub.EOUTCOMEUNKNOWN && !strings.Contains(err.Error(), "retry with the same Idempotency-Key") {
					t.Errorf("message %q does not tell to retry with the same Idempotency-Key", err)
				}
				id, _, herr := f.lib.Holds(ctx, req.TypeCode, req.Issuer.Code, req.Number)
				if herr != nil {
					t.Fatal(herr)
				}
				if got := exists(licenseKey(id)); got != tc.stored {
					t.Fatalf("license object stored = %v after %s, want %v", got, tc.want, tc.stored)
				}
				res, err := f.lib.Push(ctx, req)
				if err != nil {
					t.Fatalf("retry with the same Idempotency-Key: %v", err)
				}
				if res.Identifier != id {
					t.Fatalf("retry answered %s, want %s", res.Identifier, id)
				}
				if rec, err := f.lib.Get(ctx, id); err != nil || string(rec.Document) != string(res.Document) {
					t.Fatalf("after the retry Get: %v", err)
				}
			})
		}

		t.Run("new version/supersede after the version", func(t *testing.T) {
			first := mustPush(t, f.lib, sampleRequest("OUTCOME-V"))
			v := sampleRequest("OUTCOME-V")
			v.IdempotencyKey = "idem-version"
			v.ValidUntil = "2032-11-19"
			disarm := arm(statusPrefix, "")
			_, err := f.lib.NewVersion(ctx, first.Identifier, v, OpRenew)
			disarm()
			if !licensehub.IsCode(err, licensehub.EOUTCOMEUNKNOWN) || !strings.Contains(err.Error(), "Idempotency-Key") {
				t.Fatalf("new version: %v, want OUTCOME_UNKNOWN", err)
			}
			next, err := f.lib.NewVersion(ctx, first.Identifier, v, OpRenew)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			st, err := f.lib.Get(ctx, first.Identifier)
			if err != nil || st.SupersededBy != next.Identifier {
				t.Fatalf("after the retry the first version is not superseded by %s: %+v %v", next.Identifier, st, err)
			}
		})

		status := []struct {
			name, objPrefix, kvMethod string
			want                      string
			recorded                  bool
		}{
			{"outbox after the status record", outboxPrefix, "", licensehub.EOUTCOMEUNKNOWN, true},
			{"pending marker before the status record", "", "Set", licensehub.EUNAVAILABLE, false},
			{"status record itself", statusPrefix, "", licensehub.EOBJECTSTORE, false},
		}
		for i, tc := range status {
			t.Run("status/"+tc.name, func(t *testing.T) {
				lic := mustPush(t, f.lib, sampleRequest("OUTCOME-S"+string(rune('A'+i))))
				disarm := arm(tc.objPrefix, tc.kvMethod)
				_, err := f.lib.ChangeStatus(ctx, lic.Identifier, OpSuspend, "inspection", "app-market")
				disarm()
				if code := licensehub.ErrorCode(err); code != tc.want {
					t.Fatalf("change: %v, want %s", err, tc.want)
				}
				if got := exists(statusKey(lic.Identifier, 1)); got != tc.recorded {
					t.Fatalf("status record stored = %v, want %v", got, tc.recorded)
				}
				rec, err := f.lib.ChangeStatus(ctx, lic.Identifier, OpSuspend, "inspection", "app-market")
				if err != nil || rec.Seq != 1 || rec.To != StatusSuspended {
					t.Fatalf("retry: %+v %v", rec, err)
				}
			})
		}
	})
}
