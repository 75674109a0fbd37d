package main

import (
	"fmt"
	"log/slog"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// openLibrary loads the catalog and builds the license library on the
// shared stores.
func openLibrary(cfg *config.Config, b *backends, ring *signing.Keyring, log *slog.Logger) (*catalog.Catalog, *license.Library, error) {
	cat, err := catalog.Load(cfg.Catalog.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("catalog.dir: %w", err)
	}
	lib, err := license.NewLibrary(license.Config{
		Objects: b.objects, KV: b.kv, Signers: ring, Logger: log,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName,
	})
	if err != nil {
		return nil, nil, err
	}
	return cat, lib, nil
}
