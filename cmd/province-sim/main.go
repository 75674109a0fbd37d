// Command province-sim serves a simulated provincial platform (全省通办,
// package exchange/provsim) for the hub's exchange: it takes the hub's
// envelopes on POST /v1/events, answers GET /v1/reconcile, and pushes
// foreign licenses to the hub.
//
//	go run ./cmd/province-sim -addr 127.0.0.1:9400 -hub http://127.0.0.1:8080 \
//	    [-drop 0.3] [-error 0.05] [-throttle 0.02] [-delay 20ms -jitter 10ms] \
//	    [-down-after 10s -down-for 20s] [-keys-out province-keys.json]
//	curl -X POST 127.0.0.1:9400/_sim/knobs -d '{"drop_rate":0.3,"down_for":"20s"}'
//	curl 127.0.0.1:9400/_sim/stats
//	curl '127.0.0.1:9400/v1/reconcile?date=2026-11-26&ids=1'
//
//	go run ./cmd/province-sim push -hub http://127.0.0.1:8080 -app-id province -secret … -count 100 [-shuffle] [-duplicate 0.2]
//
// The hub's keys come from -hub-keys (a bundle file, hubctl keys export)
// or the hub's GET /v1/keys. The province's own SM2 key lives in the
// keyring directory -keys-dir (generated on first use for -authority);
// -keys-out writes its bundle, which the hub trusts as
// exchange.province_keys. Every flag can also be set by an environment
// variable PROVSIM_ + the flag name upper-cased with '-' as '_'; a flag
// on the command line wins. The secret is never printed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/internal/simcmd"
	"github.com/licensehub/licensehub/signing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// realMain runs the command (push, or the simulator) and returns its exit
// status: 0, or 2 when it fails (a bad flag included).
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	var err error
	if len(args) > 0 && args[0] == "push" {
		err = push(ctx, args[1:], stdout)
	} else {
		err = run(ctx, args, stdout, ready)
	}
	if err != nil {
		fmt.Fprintln(stderr, "province-sim:", err)
		return 2
	}
	return 0
}

// provinceKey opens (creating on first use) the province's keyring and
// returns its signer, writing its bundle to keysOut when set.
func provinceKey(dir, authority, keysOut string) (signing.Signer, error) {
	now := time.Now()
	ring, err := signing.OpenKeyring(dir)
	if err != nil || len(ring.Keys()) == 0 {
		if _, gerr := signing.Generate(dir, authority, now.Add(-time.Hour), now.AddDate(5, 0, 0), nil); gerr != nil &&
			!licensehub.IsCode(gerr, licensehub.ECONFLICT) {
			return nil, fmt.Errorf("province key in %s: %w", dir, gerr)
		}
		if ring, err = signing.OpenKeyring(dir); err != nil {
			return nil, err
		}
	}
	s, err := ring.SignerFor(authority, now)
	if err != nil {
		return nil, err
	}
	if keysOut != "" {
		raw, err := json.MarshalIndent(ring.Export(), "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(keysOut, append(raw, '\n'), 0o644); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// run serves until ctx ends, and reports the bound address on ready (for
// tests) when it is not nil.
func run(ctx context.Context, args []string, out io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("province-sim", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:9400", "listen address")
	hub := fs.String("hub", "http://127.0.0.1:8080", "the hub's URL (its GET /v1/keys verifies the envelopes)")
	hubKeys := fs.String("hub-keys", "", "the hub's key bundle file (instead of GET /v1/keys)")
	keysDir := fs.String("keys-dir", "province-keyring", "the province's keyring directory (created on first use)")
	authority := fs.String("authority", provsim.DefaultProvinceAuthority, "the province's authority code")
	keysOut := fs.String("keys-out", "", "write the province's key bundle here (the hub's exchange.province_keys)")
	seed := fs.Uint64("seed", provsim.DefaultSeed, "seed of the knobs' random choices")
	drop := fs.Float64("drop", 0, "share of POST /v1/events dropped (connection closed), half before applying, half after")
	errRate := fs.Float64("error", 0, "share of POST /v1/events answered 503")
	throttle := fs.Float64("throttle", 0, "share of POST /v1/events answered 429 (Retry-After: 1)")
	delay := fs.Duration("delay", 0, "latency added to every POST /v1/events")
	jitter := fs.Duration("jitter", 0, "random extra latency, 0..jitter")
	downAfter := fs.Duration("down-after", 0, "start an outage this long after starting (with -down-for)")
	downFor := fs.Duration("down-for", 0, "length of the outage: every /v1/ connection closed")
	if err := simcmd.Parse(fs, "PROVSIM_", args); err != nil {
		return err
	}
	knobs := provsim.Knobs{DropRate: *drop, ErrorRate: *errRate, ThrottleRate: *throttle, Delay: *delay, Jitter: *jitter}
	if *downFor > 0 {
		knobs.DownFrom = time.Now().Add(*downAfter)
		knobs.DownUntil = knobs.DownFrom.Add(*downFor)
	}
	if err := knobs.Validate(); err != nil {
		return err
	}
	if _, err := provinceKey(*keysDir, *authority, *keysOut); err != nil {
		return err
	}
	cfg := provsim.Config{HubURL: *hub, Seed: *seed, Knobs: knobs}
	if *hubKeys != "" {
		raw, err := os.ReadFile(*hubKeys)
		if err != nil {
			return err
		}
		b, err := signing.ParseBundle(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", *hubKeys, err)
		}
		cfg.HubKeys = b
	}
	s := provsim.New(cfg)
	defer s.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "province-sim: provincial platform on %s (authority %s, seed %d)\n", base, *authority, *seed)
	fmt.Fprintf(out, "  POST %s/v1/events   GET %s/v1/reconcile?date=YYYY-MM-DD&ids=1\n", base, base)
	fmt.Fprintf(out, "  admin: GET|POST %s/_sim/knobs, GET|DELETE %s/_sim/stats\n", base, base)
	if *hubKeys != "" {
		fmt.Fprintf(out, "  hub keys: %s\n", *hubKeys)
	} else {
		fmt.Fprintf(out, "  hub keys: %s/v1/keys\n", strings.TrimRight(*hub, "/"))
	}
	if *keysOut != "" {
		abs, _ := filepath.Abs(*keysOut)
		fmt.Fprintf(out, "  province key bundle: %s (set exchange.province_keys to it)\n", abs)
	}
	kj, _ := knobs.MarshalJSON()
	fmt.Fprintf(out, "  knobs: %s\n", kj)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return simcmd.Serve(ctx, ln, s, s.Close)
}

// push sends foreign licenses and their status changes to the hub.
func push(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("province-sim push", flag.ContinueOnError)
	fs.SetOutput(out)
	hub := fs.String("hub", "http://127.0.0.1:8080", "the hub's URL")
	appID := fs.String("app-id", provsim.DefaultProvinceAppID, "the provincial platform's app ID on the hub")
	secret := fs.String("secret", "", "the app's HMAC secret (prefer PROVSIM_SECRET)")
	keysDir := fs.String("keys-dir", "province-keyring", "the province's keyring directory (created on first use)")
	authority := fs.String("authority", provsim.DefaultProvinceAuthority, "the province's authority code")
	keysOut := fs.String("keys-out", "", "write the province's key bundle here")
	count := fs.Int("count", 10, "foreign licenses to push")
	statuses := fs.Int("statuses", 1, "status changes per license")
	shuffle := fs.Bool("shuffle", false, "send the status changes in a random order")
	dup := fs.Float64("duplicate", 0, "share of status changes sent twice")
	batch := fs.Int("batch", 50, "envelopes per request (1: a single envelope body)")
	seed := fs.Uint64("seed", provsim.DefaultSeed, "seed of the licenses and the shuffle")
	timeout := fs.Duration("timeout", 30*time.Second, "per request")
	if err := simcmd.ApplyEnv(fs, "PROVSIM_", os.LookupEnv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("push: -secret (or PROVSIM_SECRET) is required")
	}
	signer, err := provinceKey(*keysDir, *authority, *keysOut)
	if err != nil {
		return err
	}
	p, err := provsim.NewPusher(provsim.PushConfig{HubURL: *hub, Signer: signer, Count: *count, Statuses: *statuses,
		Shuffle: *shuffle, Duplicate: *dup, Batch: *batch, Seed: *seed, Timeout: *timeout,
		Credentials: client.Credentials{AppID: *appID, Secret: []byte(*secret)},
		HTTP:        &http.Client{Transport: &http.Transport{}}})
	if err != nil {
		return err
	}
	res, err := p.Push(ctx)
	fmt.Fprintf(out, "province-sim push: %d licenses, %d events, %d envelopes sent in %d requests (HTTP %v)\n",
		res.Licenses, res.Events, res.Sent, res.Requests, res.Statuses)
	return err
}
