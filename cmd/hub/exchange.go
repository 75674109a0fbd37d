package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// hubExchange is the exchange with the provincial platform as the hub
// runs it: the deliverer (nil unless exchange.enabled), and the routes.
type hubExchange struct {
	deliverer *exchange.Deliverer
	routes    *api.Exchange
	// inbound takes the province's envelopes (POST /v1/exchange/inbound);
	// nil without exchange.province_keys. Who may call it is the member
	// registry's business (the provincial_platform role).
	inbound *exchange.Inbound
}

// openExchange builds the exchange: the feed and reconcile routes always,
// the deliverer when exchange.enabled. It records a catalog change event
// when the loaded catalog's digest has none yet.
func openExchange(ctx context.Context, cfg *config.Config, b *backends, cat *catalog.Catalog, lib *license.Library,
	ring *signing.Keyring, reg prometheus.Registerer, log *slog.Logger) (*hubExchange, error) {
	x := cfg.Exchange
	rec := &exchange.Reconciler{Objects: b.objects, ProvinceURL: x.ProvinceURL, Timeout: x.Timeout.D()}
	hx := &hubExchange{routes: &api.Exchange{
		Feed:   &exchange.Feed{Objects: b.objects, Authority: cfg.Signing.HubAuthority, Settle: x.FeedSettle.D()},
		Digest: rec.Digest,
	}}
	if x.ProvinceKeys != "" {
		raw, err := os.ReadFile(x.ProvinceKeys)
		if err != nil {
			return nil, fmt.Errorf("exchange.province_keys: %w", err)
		}
		keys, err := signing.ParseBundle(raw)
		if err != nil {
			return nil, fmt.Errorf("exchange.province_keys: %s: %w", x.ProvinceKeys, err)
		}
		if hx.inbound, err = exchange.NewInbound(exchange.InboundConfig{Library: lib, Objects: b.objects, KV: b.kv,
			Keys: keys}); err != nil {
			return nil, fmt.Errorf("exchange: %w", err)
		}
	}
	if err := recordCatalog(ctx, b, cat, log); err != nil {
		log.Warn("exchange: recording the catalog change failed; retried at the next start", "err", err.Error())
	}
	if !x.Enabled {
		return hx, nil
	}
	d, err := newDeliverer(cfg, b, lib, ring, reg, log)
	if err != nil {
		return nil, err
	}
	hx.deliverer = d
	return hx, nil
}

// newDeliverer builds the deliverer from the configuration (hub and hubctl).
func newDeliverer(cfg *config.Config, b *backends, lib exchange.LicenseReader, ring signing.SignerSource,
	reg prometheus.Registerer, log *slog.Logger) (*exchange.Deliverer, error) {
	x := cfg.Exchange
	d, err := exchange.NewDeliverer(exchange.DeliverConfig{Objects: b.objects, KV: b.kv, Licenses: lib, Signers: ring,
		Authority: cfg.Signing.HubAuthority, ProvinceURL: x.ProvinceURL, Concurrency: x.Concurrency,
		MaxAttempts: x.MaxAttempts, MaxRetryAfter: x.MaxRetryAfter.D(), Timeout: x.Timeout.D(), LeaseTTL: x.LeaseTTL.D(),
		CheckpointEvents: x.CheckpointEvents, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	return d, nil
}

// recordCatalog emits the catalog change event of the loaded catalog once
// per digest (SM3 of its types, JSON-encoded in code order).
func recordCatalog(ctx context.Context, b *backends, cat *catalog.Catalog, log *slog.Logger) error {
	types := cat.Types()
	raw, err := json.Marshal(types)
	if err != nil {
		return err
	}
	codes := make([]string, 0, len(types))
	for _, t := range types {
		codes = append(codes, t.Code)
	}
	sort.Strings(codes)
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	change := exchange.CatalogChange{Digest: exchange.CatalogDigest(raw), Types: codes}
	ok, err := exchange.RecordCatalogChange(c, b.objects, b.kv, change, time.Now())
	if ok {
		log.Info("exchange: catalog change recorded", "digest", change.Digest, "types", len(codes))
	}
	return err
}

// inboundRoute is the inbound receiver for api.Options (a nil interface,
// not a nil pointer, when there is none: the route is then not mounted).
func (hx *hubExchange) inboundRoute() api.InboundReceiver {
	if hx.inbound == nil {
		return nil
	}
	return hx.inbound
}

// run starts the deliverer (when enabled) until stop is called.
func (hx *hubExchange) run() (stop func()) {
	if hx.deliverer == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hx.deliverer.Run(ctx) }()
	return func() { cancel(); <-done }
}
