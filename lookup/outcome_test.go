package lookup

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
)

// setFailKV fails Set while armed (the consent state write).
type setFailKV struct {
	licensehub.KV
	armed atomic.Bool
}

func (k *setFailKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if k.armed.Load() && strings.Contains(key, "consent-state") {
		return licensehub.Errorf(licensehub.EUNAVAILABLE, "injected: KV down")
	}
	return k.KV.Set(ctx, key, value, ttl)
}

// TestRevokeOutcomeUnknown: the revocation marker (the system of record)
// is written, the KV state write after it fails: Revoke answers
// OUTCOME_UNKNOWN (not "nothing happened"), the marker is there, and
// retrying the same revocation completes it.
func TestRevokeOutcomeUnknown(t *testing.T) {
	f := newFixture(t)
	kv := &setFailKV{KV: f.kv}
	cons := f.consents(t, kv)
	con := f.consent(t, holderOrg, matterSetup, "")
	kv.armed.Store(true)
	err := cons.Revoke(ctxT(t), con.ID, holderOrg)
	kv.armed.Store(false)
	if !licensehub.IsCode(err, licensehub.EOUTCOMEUNKNOWN) || !strings.Contains(err.Error(), "retry the same request") {
		t.Fatalf("revoke with the KV failing after the marker: %v, want OUTCOME_UNKNOWN", err)
	}
	if _, err := f.objects.Head(ctxT(t), revokedKey(con.ID)); err != nil {
		t.Fatalf("the revocation marker is not stored: %v", err)
	}
	if err := cons.Revoke(ctxT(t), con.ID, holderOrg); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := cons.Check(ctxT(t), con.Token, holderOrg, matterSetup, "scjg-approval", f.clk.Now()); ForbiddenReason(err) != ReasonConsentRevoked {
		t.Fatalf("after the retry Check: %v, want consent_revoked", err)
	}
}
