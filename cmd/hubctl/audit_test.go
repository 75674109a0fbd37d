package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
)

// TestAuditVerify seals a small trail the way the hub does, checks that
// hubctl confirms it, then edits one record in the sealed segment and
// expects hubctl to fail naming that record.
func TestAuditVerify(t *testing.T) {
	const hubAuthority = "11330100MB1234567E"
	data := t.TempDir()
	keysDir := filepath.Join(data, "keys")
	now := time.Now().UTC()
	ring := testkeys.KeyringIn(t, keysDir, now.Add(-time.Minute), now.AddDate(1, 0, 0), hubAuthority)
	objects, err := fs.Open(filepath.Join(data, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	journal, err := audit.OpenFileJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	lock := mem.New()
	defer lock.Close()
	trail, err := audit.New(audit.Config{Journal: journal, Objects: objects, Signers: ring, Authority: hubAuthority,
		Lock: lock, HolderKey: []byte("test-holder-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if err := trail.Append(ctx, audit.Record{AppID: "scjg-approval", Operation: "license.read",
			Reason: fmt.Sprintf("办件 %d", i), Result: audit.ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := trail.Seal(ctx); err != nil {
		t.Fatal(err)
	}

	t.Setenv("HUB_DATA_DIR", data)
	t.Setenv("HUB_SIGNING_KEYS_DIR", keysDir)
	t.Setenv("HUB_SIGNING_HUB_AUTHORITY", hubAuthority)
	code, out, stderr := hubctl(t, "audit", "verify")
	if code != 0 || !strings.Contains(out, "audit trail OK: 5 records in 1 segments") {
		t.Fatalf("untouched trail: exit %d\n%s%s", code, out, stderr)
	}

	// Edit the third record in place, as someone with write access to the bucket could.
	key := audit.SegmentKey(1)
	rc, info, err := objects.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	seg, _ := io.ReadAll(rc)
	rc.Close()
	edited := bytes.Replace(seg, []byte("办件 2"), []byte("办件 9"), 1)
	if bytes.Equal(edited, seg) {
		t.Fatal("record 3 not found in the segment")
	}
	if _, err := objects.Put(ctx, key, bytes.NewReader(edited), int64(len(edited)), licensehub.PutOptions{ContentType: info.ContentType}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = hubctl(t, "audit", "verify")
	if code != 1 || !strings.Contains(stderr, "modified in segment 1 line 3 (record seq 3)") {
		t.Errorf("edited trail: exit %d, stderr %q", code, stderr)
	}
}

// TestAuditVerifyGap: a hub instance acknowledges 5 records; the third is
// deleted from the shared journal before it is sealed (and the instance
// does not publish it again). hubctl audit verify fails naming the
// instance and the record once the gap grace has passed, and only warns
// within it.
func TestAuditVerifyGap(t *testing.T) {
	const hubAuthority = "11330100MB1234567E"
	data := t.TempDir()
	keysDir := filepath.Join(data, "keys")
	now := time.Now().UTC()
	ring := testkeys.KeyringIn(t, keysDir, now.Add(-time.Minute), now.AddDate(1, 0, 0), hubAuthority)
	objects, err := fs.Open(filepath.Join(data, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := audit.OpenLocalJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	kv := mem.New()
	defer kv.Close()
	trail, err := audit.New(audit.Config{Journal: audit.NewStreamJournal(kv, "audit:journal"), Local: local, Objects: objects,
		Signers: ring, Authority: hubAuthority, Lock: kv, HolderKey: []byte("test-holder-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := trail.Reconcile(ctx); err != nil { // as the hub starts
		t.Fatal(err)
	}
	for i := range 5 {
		if err := trail.Append(ctx, audit.Record{AppID: "scjg-approval", Operation: "license.read",
			Reason: fmt.Sprintf("办件 %d", i), Result: audit.ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	if err := trail.Reconcile(ctx); err != nil { // publishes "acknowledged up to 5"
		t.Fatal(err)
	}
	// Someone with access to Redis deletes the third record from the stream.
	es, err := kv.XRange(ctx, "audit:journal", "", 0)
	if err != nil || len(es) != 5 {
		t.Fatalf("stream: %d entries, %v", len(es), err)
	}
	if err := kv.Delete(ctx, "audit:journal"); err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if i != 2 {
			if _, err := kv.XAdd(ctx, "audit:journal", e.Fields); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := trail.Seal(ctx); err != nil {
		t.Fatal(err)
	}

	t.Setenv("HUB_DATA_DIR", data)
	t.Setenv("HUB_SIGNING_KEYS_DIR", keysDir)
	t.Setenv("HUB_SIGNING_HUB_AUTHORITY", hubAuthority)
	code, out, stderr := hubctl(t, "audit", "verify", "--gap-grace", "0s")
	want := "gap: instance " + local.InstanceID() + ": record 3 acknowledged by "
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("gap: exit %d, stdout %q, stderr %q; want %q", code, out, stderr, want)
	}
	code, out, stderr = hubctl(t, "audit", "verify")
	if code != 0 || !strings.Contains(out, "audit trail OK: 4 records") || !strings.Contains(out, "warning: instance "+local.InstanceID()+": record 3") {
		t.Errorf("within the grace: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
