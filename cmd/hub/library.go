package main

import (
	"fmt"
	"log/slog"

	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/lookup"

	"github.com/licensehub/licensehub/authority"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// openLibrary loads the catalog and builds the license library on the
// shared stores; pushes are checked against the authority registry.
func openLibrary(cfg *config.Config, b *backends, ring *signing.Keyring, authorities *authority.Registry, log *slog.Logger) (*catalog.Catalog, *license.Library, error) {
	cat, err := catalog.Load(cfg.Catalog.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("catalog.dir: %w", err)
	}
	lib, err := license.NewLibrary(license.Config{
		Objects: b.objects, KV: b.kv, Signers: ring, Logger: log, Authorities: authorities,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName,
		IssueDateSkewDays: cfg.Library.IssueDateSkewDays,
	})
	if err != nil {
		return nil, nil, err
	}
	return cat, lib, nil
}

// openLookups builds the once-only lookups: matters, consents and the
// lookup service over the library and the certificate gateway.
func openLookups(cfg *config.Config, b *backends, lib *license.Library, gw *adapters.Gateway) (*api.Lookups, error) {
	matters, err := lookup.LoadMatters(cfg.Lookup.MattersFile)
	if err != nil {
		return nil, fmt.Errorf("lookup.matters_file: %w", err)
	}
	consents, err := lookup.NewConsents(lookup.ConsentsConfig{Objects: b.objects, KV: b.kv, Matters: matters})
	if err != nil {
		return nil, err
	}
	svc, err := lookup.NewService(lookup.Config{Library: lib, Gateway: gw, Matters: matters, Consents: consents,
		KV: b.kv, AccessCodeTTL: cfg.Lookup.AccessCodeTTL.D(), UseTTL: cfg.Lookup.UseTTL.D()})
	if err != nil {
		return nil, err
	}
	return &api.Lookups{Service: svc, Consents: consents}, nil
}
