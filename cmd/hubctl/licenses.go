package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/store"
)

// cmdPush sends a license as an issuing department's system would: a
// signed POST /v1/licenses. The signed document is printed (or written to
// --out); exit 0 for 201 (created) and 200 (an identical earlier push).
func cmdPush(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl push", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	key := fs.String("idempotency-key", "", "Idempotency-Key header: retries with the same key never create twice")
	out := fs.String("out", "", "write the signed document here (default: standard output)")
	var file string
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if file == "" {
		return &exitError{code: 2, msg: "usage: hubctl push FILE [--idempotency-key K] [--out FILE] (HUBCTL_APP_ID/HUBCTL_SECRET: an issuing department)"}
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c, err := memberClient(g)
	if err != nil {
		return err
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if *key != "" {
		hdr.Set("Idempotency-Key", *key)
	}
	resp, err := c.Do(ctx, http.MethodPost, "/v1/licenses", nil, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := client.ReadError(resp); err != nil {
		return err
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	verb := "created"
	if resp.StatusCode == http.StatusOK {
		verb = "already there (identical earlier push)"
	}
	fmt.Fprintf(g.stderr, "%s: %s\n", verb, resp.Header.Get("Location"))
	if *out != "" {
		return os.WriteFile(*out, doc, 0o644)
	}
	_, err = g.stdout.Write(append(doc, '\n'))
	return err
}

// cmdReindex rebuilds every Redis index of the license library from the
// object store (after a Redis loss, or to repair). It reads the hub's
// configuration like the hub does.
func cmdReindex(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl reindex", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration (default $HUB_CONFIG, else configs/hub.yaml if present); HUB_* variables apply")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	cfg, err := loadHubConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.EmbeddedKV() {
		return &exitError{code: 2, msg: "reindex rebuilds Redis: set redis.url (HUB_REDIS_URL); the embedded hub rebuilds its in-process index at start"}
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	objects, err := store.OpenObjects(octx, cfg)
	if err != nil {
		return err
	}
	defer objects.Close()
	kv, err := store.OpenKV(octx, cfg)
	if err != nil {
		return err
	}
	defer kv.Close()
	cat, err := catalog.Load(cfg.Catalog.Dir)
	if err != nil {
		return fmt.Errorf("catalog.dir: %w", err)
	}
	ring, err := openHubKeyring(cfg)
	if err != nil {
		return err
	}
	lib, err := license.NewLibrary(license.Config{Objects: objects.Store, KV: kv.Store, Signers: ring,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName})
	if err != nil {
		return err
	}
	report, err := lib.Reindex(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "reindexed %d licenses (%d with status records, %d holders) in %s\n",
		report.Licenses, report.StatusRecords, report.Holders, report.Took.Round(time.Millisecond))
	for _, e := range report.Errors {
		fmt.Fprintln(g.stdout, "skipped:", e)
	}
	if len(report.Errors) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d objects could not be indexed", len(report.Errors))}
	}
	return nil
}
