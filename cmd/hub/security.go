package main

import (
	"context"
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
	return auth.NewAuthenticator(reg, b.kv, auth.WithMaxSkew(cfg.Auth.MaxSkew.D()),
		auth.WithReplayEpoch(cfg.Auth.MaxAhead.D())), auth.NewLimiter(b.kv), nil
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

// awaitReplayEpoch reads (or, on an empty nonce store, sets) the nonce
// epoch and waits until requests signed from now on can be accepted, at
// most max_ahead plus a second: on a fresh store (first start, Redis
// restarted empty, the embedded hub restarted) requests signed before
// then are refused as possible replays (auth.EpochKey). A failing store
// is only logged: every request reads the epoch again.
func awaitReplayEpoch(ctx context.Context, authn *auth.Authenticator, log *slog.Logger) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	from, err := authn.Prime(pctx)
	cancel()
	if err != nil {
		log.Warn("replay protection: cannot read the nonce epoch yet", "err", err)
		return
	}
	// Timestamps are whole seconds: the first acceptable one.
	first := from.Truncate(time.Second)
	if first.Before(from) {
		first = first.Add(time.Second)
	}
	if wait := time.Until(first); wait > 0 {
		log.Info("replay protection: the nonce store is new; waiting before serving signed requests", "wait", wait.Round(time.Millisecond).String())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}
