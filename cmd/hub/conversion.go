package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/authority"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/convert/runner"
	"github.com/licensehub/licensehub/license"
)

// configError is a problem with the configuration found after it loaded
// (a file it points at is bad): the hub exits 2, as for a bad key.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// openConversions loads the legacy sources' mappings and builds the
// conversion runner on the shared stores. owner names this instance in
// the jobs' leases (the audit trail's instance ID). Every mapping must
// name a registered authority (checkMappingAuthorities).
func openConversions(cfg *config.Config, b *backends, cat *catalog.Catalog, authorities *authority.Registry, lib *license.Library, owner string, log *slog.Logger) (*runner.Runner, *api.Conversions, error) {
	c := cfg.Conversion
	mappings, err := convert.LoadMappings(c.MappingsDir)
	if err != nil {
		return nil, nil, &configError{fmt.Errorf("conversion.mappings_dir: %s", plain(err))}
	}
	// Face fields get their catalog types (dates, numbers), and a mapping
	// that misses a required face field stops the hub here, not at row 1.
	for _, name := range slices.Sorted(maps.Keys(mappings)) {
		if err := mappings[name].BindCatalog(cat); err != nil {
			return nil, nil, &configError{fmt.Errorf("conversion.mappings_dir: %s", plain(err))}
		}
	}
	if err := checkMappingAuthorities(authorities, mappings); err != nil {
		return nil, nil, err
	}
	r, err := runner.New(runner.Config{
		Library: lib, Objects: b.objects, KV: b.kv, Mappings: mappings,
		Workers: c.Workers, CheckpointRows: c.CheckpointRows, CheckpointEvery: c.CheckpointEvery.D(), LeaseTTL: c.LeaseTTL.D(),
		Owner: owner, Logger: log, OpTimeout: cfg.MinIO.Timeout.D(), XLSXMaxUnzipped: int64(c.XLSXMaxUnzipped),
	})
	if err != nil {
		return nil, nil, err
	}
	log.Info("conversion mappings loaded", "dir", c.MappingsDir, "mappings", len(mappings))
	return r, &api.Conversions{Runner: r, Mappings: mappings, MaxUpload: int64(c.MaxUpload)}, nil
}

// plain is err for an operator: its message and cause, without the code.
func plain(err error) string {
	var e *licensehub.Error
	if !errors.As(err, &e) || e.Message == "" {
		return err.Error()
	}
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}
