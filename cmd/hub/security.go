package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/signing"
)

// auditJournalKey is the Redis stream that journals audit records.
const auditJournalKey = "audit:journal"

// openAuth loads the member systems and builds request authentication and
// the rate limiter, both on the shared KV (nonces and counters).
func openAuth(cfg *config.Config, b *backends) (*auth.Authenticator, *auth.Limiter, error) {
	var opts []auth.LoadOption
	if cfg.Demo.Enabled {
		opts = append(opts, auth.AllowDemoSecrets())
	}
	reg, err := auth.LoadRegistry(cfg.Auth.MembersFile, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("auth.members_file: %w", err)
	}
	return auth.NewAuthenticator(reg, b.kv, auth.WithMaxSkew(cfg.Auth.MaxSkew.D())), auth.NewLimiter(b.kv), nil
}

// openAudit builds the audit trail: records are journaled in this
// instance's local journal (fsynced, numbered) and, with Redis, in the
// shared stream too, and sealed into segments signed with the hub's own
// key.
func openAudit(cfg *config.Config, b *backends, ring *signing.Keyring, log *slog.Logger) (*audit.Trail, error) {
	if _, err := ring.SignerFor(cfg.Signing.HubAuthority, time.Now()); err != nil {
		return nil, fmt.Errorf("signing.hub_authority: %s has no active key to sign audit checkpoints (hubctl keys gen --authority %s): %w",
			cfg.Signing.HubAuthority, cfg.Signing.HubAuthority, err)
	}
	local, err := audit.OpenLocalJournal(cfg.Audit.JournalDir)
	if err != nil {
		return nil, fmt.Errorf("audit.journal_dir: %w", err)
	}
	b.closers = append(b.closers, local.Close)
	var journal audit.Journal // embedded: the local journal is the only one
	if !cfg.EmbeddedKV() {
		journal = audit.NewStreamJournal(b.kv, auditJournalKey)
	}
	log.Info("audit journal opened", "dir", cfg.Audit.JournalDir, "instance", local.InstanceID(), "acked", local.Acked())
	holderKey := []byte(cfg.Audit.HolderKey.Value())
	if len(holderKey) == 0 && cfg.Demo.Enabled {
		// Demo only (config validation requires a key otherwise): a fixed,
		// published key, so demo data stays searchable across restarts.
		sum := sm3.Sum([]byte("licensehub demo audit holder key"))
		holderKey = sum[:]
	}
	return audit.New(audit.Config{
		Journal: journal, Local: local, Objects: b.objects, Signers: ring, Authority: cfg.Signing.HubAuthority,
		Lock: b.kv, HolderKey: holderKey, SegmentSize: cfg.Audit.SegmentRecords,
		SealInterval: cfg.Audit.SealInterval.D(), Logger: log,
	})
}
