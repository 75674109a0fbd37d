// Command hub is the licensehub server.
//
//	go run ./cmd/hub                 # embedded mode: ./data and an in-process store
//	HUB_MINIO_ENDPOINT=http://127.0.0.1:9000 HUB_MINIO_ACCESS_KEY=... \
//	HUB_MINIO_SECRET_KEY=... HUB_REDIS_URL=redis://127.0.0.1:6379/0 go run ./cmd/hub
//
// Flags: -config FILE (or HUB_CONFIG), -print-config, -version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/licensehub/licensehub/api"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/internal/logging"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/store"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default $HUB_CONFIG, else configs/hub.yaml if present)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (secrets redacted) and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "licensehub hub", version)
		return 0
	}
	path := config.ResolvePath(*configPath, environ)
	cfg, err := config.Load(path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "hub: %s: %v\n", orDefaults(path), err)
		return 2
	}
	if *printConfig {
		fmt.Fprint(stdout, cfg.Dump())
		return 0
	}
	log := logging.New(stdout, cfg.Log.Level, cfg.Log.Format)
	if err := serve(ctx, cfg, log, nil); err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "hub: %s: %v\n", orDefaults(path), err)
			return 2
		}
		log.Error("hub stopped with an error", "error", err.Error())
		return 1
	}
	return 0
}

func orDefaults(path string) string {
	if path == "" {
		return "built-in defaults"
	}
	return path
}

// serve runs the hub until ctx ends, then shuts down gracefully. ready, if
// not nil, receives the listening address once requests are accepted.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready chan<- string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	b, err := openBackends(openCtx, cfg, store.NewMetrics(reg), log)
	cancel()
	if err != nil {
		return err
	}
	defer b.close(log)

	keyCfg := newKeyringConfig(cfg.Signing)
	if cfg.Demo.Enabled {
		if err := ensureDemoKeys(keyCfg, cfg.Signing.HubAuthority); err != nil {
			return err
		}
	}
	ring, err := openKeyring(keyCfg)
	if err != nil {
		return err
	}
	log.Info("keyring loaded", "dir", keyCfg.dir, "keys", len(ring.Keys()))

	authn, limiter, err := openAuth(cfg, b)
	if err != nil {
		return err
	}
	trail, err := openAudit(cfg, b, ring, log)
	if err != nil {
		return err
	}
	authorities, err := openAuthorities(cfg, authn.Registry(), ring, log)
	if err != nil {
		return err
	}
	cat, lib, err := openLibrary(cfg, b, ring, authorities, log)
	if err != nil {
		return err
	}
	gateway, simURL, stopAdapters, err := openAdapters(cfg, b, ring, reg, log)
	if err != nil {
		return err
	}
	defer stopAdapters()
	lookups, err := openLookups(cfg, b, lib, gateway)
	if err != nil {
		return err
	}

	conv, conversions, err := openConversions(cfg, b, cat, authorities, lib, trail.InstanceID(), log)
	if err != nil {
		return err
	}

	var demo *demoFiles
	if cfg.Demo.Enabled {
		if demo, err = seedDemo(ctx, lib, ring, cfg.DataDir); err != nil {
			return err
		}
	}
	sweepCtx, stopSweeper := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() { defer close(swept); lib.RunSweeper(sweepCtx, cfg.Library.SweepInterval.D()) }()
	defer func() { stopSweeper(); <-swept }()

	// The sealer runs until the server has stopped, then seals once more.
	sealCtx, stopSealer := context.WithCancel(context.Background())
	sealed := make(chan struct{})
	go func() { defer close(sealed); trail.Run(sealCtx) }()
	defer func() {
		stopSealer()
		<-sealed
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := trail.FinalSeal(fctx); err != nil {
			log.Warn("final audit seal failed; the records stay journaled and are sealed at the next start", "error", err.Error())
		}
	}()

	// Conversion jobs queued by any instance run here too, one runner per
	// job (a lease); stopped, checkpointed, before the stores close.
	convertCtx, stopRunner := context.WithCancel(context.Background())
	converted := make(chan struct{})
	go func() { defer close(converted); conv.Serve(convertCtx, cfg.Conversion.Poll.D()) }()
	defer func() { stopRunner(); <-converted }()

	// The exchange with the provincial platform: feed and reconcile routes
	// always; delivery (one leader across instances) when enabled, stopped
	// before the stores close.
	province, err := startDemoProvince(cfg, ring, log) // demo: the province simulated in process
	if err != nil {
		return err
	}
	defer province.Stop()
	hx, err := openExchange(ctx, cfg, b, cat, lib, ring, reg, log)
	if err != nil {
		return err
	}
	stopDelivery := hx.run()
	defer stopDelivery()

	srv := api.New(api.Options{Config: cfg.Server, Logger: log, Registry: reg, Backends: b.readiness, Version: version,
		Keys: ring, Verifier: &license.Verifier{Keys: ring, Status: lib}, Auth: authn, Limiter: limiter, Audit: trail,
		Catalog: cat, Authorities: authorities, Library: lib, Gateway: gateway, Lookups: lookups, Conversions: conversions, Exchange: hx.routes, Inbound: hx.inboundRoute()})
	awaitReplayEpoch(ctx, authn, log)
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("server.addr: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	log.Info("licensehub listening", "addr", addr, "version", version,
		"object_store", b.objectsKind, "kv", b.kvKind, "embedded", b.embedded())
	if cfg.Demo.Enabled {
		printNextSteps(os.Stderr, addr, b)
		printDemoSteps(os.Stderr, "http://"+addr, keyCfg.dir, simURL, demo)
		printConversionSteps(os.Stderr, "http://"+addr, demo)
		printExchangeSteps(os.Stderr, "http://"+addr, province)
	}
	if ready != nil {
		ready <- addr
	}

	select {
	case err := <-served:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; waiting for in-flight requests",
		"timeout", cfg.Server.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	} else if err != nil {
		log.Warn("shutdown timeout reached; remaining connections were closed", "timeout", cfg.Server.ShutdownTimeout.String())
	}
	if err := <-served; err != nil {
		return fmt.Errorf("server: %w", err)
	}
	log.Info("stopped")
	return nil
}

func printNextSteps(w io.Writer, addr string, b *backends) {
	base := "http://" + addr
	mode := "MinIO + Redis"
	if b.embedded() {
		mode = fmt.Sprintf("EMBEDDED (%s objects, %s kv) — for trying things out, not production", b.objectsKind, b.kvKind)
	}
	fmt.Fprintf(w, `
licensehub is running on %[1]s  [%[2]s]

Try:
  curl -s %[1]s/healthz
  curl -s %[1]s/readyz
  curl -s %[1]s/metrics | grep licensehub_
  go run ./cmd/hubctl --hub %[1]s status

Stop with Ctrl-C (in-flight requests finish first).
`, base, mode)
}
