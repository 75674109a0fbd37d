package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/store"
)

// cmdExchange: hubctl exchange dlq list | dlq replay [--event ID]... [--all]
// | reconcile --date YYYY-MM-DD, in process against the hub's stores (like
// reindex).
func cmdExchange(ctx context.Context, g *globals, args []string) error {
	usage := &exitError{code: 2, msg: "usage: hubctl exchange dlq list | dlq replay [--event ID]... [--all] | reconcile --date YYYY-MM-DD  [--config FILE]"}
	switch {
	case len(args) >= 2 && args[0] == "dlq" && args[1] == "list":
		return exchangeDLQList(ctx, g, args[2:])
	case len(args) >= 2 && args[0] == "dlq" && args[1] == "replay":
		return exchangeReplay(ctx, g, args[2:])
	case len(args) >= 1 && args[0] == "reconcile":
		return exchangeReconcile(ctx, g, args[1:])
	}
	return usage
}

type eventFlags []string

func (e *eventFlags) String() string     { return strings.Join(*e, ",") }
func (e *eventFlags) Set(v string) error { *e = append(*e, v); return nil }

// exchangeEnv is the hub's exchange opened in process.
type exchangeEnv struct {
	cfg       *config.Config
	deliverer *exchange.Deliverer
	rec       *exchange.Reconciler
	close     func()
}

func openExchangeEnv(ctx context.Context, cfgPath string, needKV bool) (*exchangeEnv, error) {
	cfg, err := loadHubConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	if needKV && cfg.EmbeddedKV() {
		return nil, &exitError{code: 2, msg: "this changes the hub's Redis state: set redis.url (HUB_REDIS_URL); an embedded hub keeps it in its own process"}
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	objects, err := store.OpenObjects(octx, cfg)
	if err != nil {
		return nil, err
	}
	kv, err := store.OpenKV(octx, cfg)
	if err != nil {
		objects.Close()
		return nil, err
	}
	env := &exchangeEnv{cfg: cfg, close: func() { kv.Close(); objects.Close() }}
	cat, err := catalog.Load(cfg.Catalog.Dir)
	if err != nil {
		env.close()
		return nil, fmt.Errorf("catalog.dir: %w", err)
	}
	ring, err := openHubKeyring(cfg)
	if err != nil {
		env.close()
		return nil, err
	}
	lib, err := license.NewLibrary(license.Config{Objects: objects.Store, KV: kv.Store, Signers: ring,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName})
	if err != nil {
		env.close()
		return nil, err
	}
	x := cfg.Exchange
	env.rec = &exchange.Reconciler{Objects: objects.Store, ProvinceURL: x.ProvinceURL, Timeout: x.Timeout.D()}
	if x.ProvinceURL != "" {
		env.deliverer, err = exchange.NewDeliverer(exchange.DeliverConfig{Objects: objects.Store, KV: kv.Store,
			Licenses: lib, Signers: ring, Authority: cfg.Signing.HubAuthority, ProvinceURL: x.ProvinceURL,
			Concurrency: x.Concurrency, MaxAttempts: x.MaxAttempts, MaxRetryAfter: x.MaxRetryAfter.D(),
			Timeout: x.Timeout.D(), LeaseTTL: x.LeaseTTL.D(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			env.close()
			return nil, err
		}
		env.rec.Deliverer = env.deliverer
	}
	return env, nil
}

func exchangeDLQList(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl exchange dlq list", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration (default $HUB_CONFIG, else configs/hub.yaml if present)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	env, err := openExchangeEnv(ctx, *cfgPath, false)
	if err != nil {
		return err
	}
	defer env.close()
	if env.deliverer == nil {
		return &exitError{code: 2, msg: "exchange.province_url is not set"}
	}
	dls, err := env.deliverer.DeadLetters(ctx)
	if err != nil {
		return err
	}
	for _, d := range dls {
		fmt.Fprintf(g.stdout, "%s\t%s\tattempts=%d\t%s\t%s\n", d.EventID, d.Reason, d.Attempts, d.Time, d.Error)
	}
	fmt.Fprintf(g.stdout, "%d dead letters\n", len(dls))
	return nil
}

func exchangeReplay(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl exchange dlq replay", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration")
	var events eventFlags
	fs.Var(&events, "event", "a dead-lettered event ID to re-deliver (repeatable)")
	all := fs.Bool("all", false, "re-deliver every dead letter")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if len(events) == 0 && !*all {
		return &exitError{code: 2, msg: "name --event ID (repeatable) or --all"}
	}
	env, err := openExchangeEnv(ctx, *cfgPath, true)
	if err != nil {
		return err
	}
	defer env.close()
	if env.deliverer == nil {
		return &exitError{code: 2, msg: "exchange.province_url is not set"}
	}
	rep, err := env.deliverer.Replay(ctx, events, *all)
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Fprintln(g.stdout, string(out))
	if len(rep.Failed) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d events are still dead-lettered", len(rep.Failed))}
	}
	return nil
}

func exchangeReconcile(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl exchange reconcile", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration")
	date := fs.String("date", "", "the UTC day, YYYY-MM-DD")
	if err := fs.Parse(args); err != nil || *date == "" {
		return &exitError{code: 2, msg: "usage: hubctl exchange reconcile --date YYYY-MM-DD"}
	}
	env, err := openExchangeEnv(ctx, *cfgPath, false)
	if err != nil {
		return err
	}
	defer env.close()
	prov, err := env.rec.ProvinceDigest(ctx, *date)
	if err != nil {
		return err
	}
	rep, err := env.rec.Reconcile(ctx, *date, prov)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "date      %s\nhub       %d %s\nprovince  %d %s\n", rep.Date, rep.Hub.Count, rep.Hub.Digest, rep.Province.Count, rep.Province.Digest)
	for _, id := range rep.Missing {
		fmt.Fprintln(g.stdout, "missing at province:", id)
	}
	for _, id := range rep.Extra {
		fmt.Fprintln(g.stdout, "extra at province:  ", id)
	}
	if rep.Equal {
		fmt.Fprintln(g.stdout, "equal")
		return nil
	}
	if len(rep.Missing) == 0 || env.deliverer == nil {
		return &exitError{code: 1, msg: "the digests differ and nothing can be re-sent"}
	}
	failed, err := env.rec.Resend(ctx, *date, rep.Missing)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "re-sent %d events, %d failed\n", len(rep.Missing)-len(failed), len(failed))
	for id, e := range failed {
		fmt.Fprintf(g.stdout, "not re-sent: %s: %s\n", id, e)
	}
	if len(failed) > 0 || len(rep.Extra) > 0 {
		return &exitError{code: 1, msg: "the digests still differ"}
	}
	return nil
}
