// Command upstream-sim serves simulated public-security, social-security
// and tax systems (package adapters/sim) on one port, under /ps, /si and
// /tax, for the hub's demo and for manual tests.
//
//	go run ./cmd/upstream-sim                       # 127.0.0.1:9100, seed 20260101
//	go run ./cmd/upstream-sim -error-rate 0.3 -latency 50ms -jitter 20ms
//	curl -X POST 127.0.0.1:9100/_sim/knobs -d '{"down":true}'
//	curl 127.0.0.1:9100/_sim/stats
//
// Every flag can also be set by an environment variable: SIM_ + the flag
// name upper-cased with '-' as '_' (SIM_ADDR, SIM_SECRET, SIM_ERROR_RATE…);
// a flag on the command line wins. The secret is never printed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/internal/simcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "upstream-sim:", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx ends, and reports the bound address
// on ready (for tests) when it is not nil.
func run(ctx context.Context, args []string, out io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("upstream-sim", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:9100", "listen address")
	seed := fs.Uint64("seed", sim.DefaultSeed, "seed of the synthetic people and companies")
	appKey := fs.String("app-key", sim.DefaultAppKey, "the app key accepted in X-App-Key")
	secret := fs.String("secret", sim.DefaultSecret, "HMAC secret (prefer SIM_SECRET)")
	alg := fs.String("alg", sim.DefaultAlgorithm, "signature algorithm: sm3 or sha256")
	notFound := fs.Float64("not-found-rate", sim.DefaultNotFoundRate, "share of valid codes that are unknown (4004)")
	latency := fs.Duration("latency", 0, "fixed latency of every answer")
	jitter := fs.Duration("jitter", 0, "random extra latency, 0..jitter")
	errorRate := fs.Float64("error-rate", 0, "share of requests answered 503")
	rateLimited := fs.Float64("rate-limited-rate", 0, "share of requests answered 429")
	retryAfter := fs.Int("retry-after", 1, "Retry-After seconds on 429 (and 503 when > 0)")
	hangRate := fs.Float64("hang-rate", 0, "share of requests never answered")
	malformedRate := fs.Float64("malformed-rate", 0, "share of answers with a broken body")
	malformed := fs.String("malformed", "", "broken body kind: truncated, html, partial, or empty for any")
	down := fs.Bool("down", false, "close every connection without answering")
	samples := fs.Int("samples", 3, "sample ID numbers and credit codes to print")

	if err := simcmd.Parse(fs, "SIM_", args); err != nil {
		return err
	}
	if *alg != "sm3" && *alg != "sha256" {
		return fmt.Errorf("-alg %q: want sm3 or sha256", *alg)
	}
	nf := *notFound
	if nf == 0 {
		nf = -1 // explicit zero: no unknown codes
	}
	knobs := sim.Knobs{Latency: *latency, Jitter: *jitter, ErrorRate: *errorRate, RateLimitedRate: *rateLimited,
		RetryAfter: *retryAfter, HangRate: *hangRate, MalformedRate: *malformedRate, Malformed: *malformed, Down: *down}
	if err := knobs.Validate(); err != nil {
		return err
	}
	s := sim.New(sim.Config{Seed: *seed, AppKey: *appKey, Secret: []byte(*secret), Algorithm: *alg,
		NotFoundRate: nf, Knobs: knobs})
	defer s.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()

	fmt.Fprintf(out, "upstream-sim: serving public security, social security and tax on %s (seed %d)\n", base, *seed)
	fmt.Fprintf(out, "auth: X-App-Key %q, HMAC-%s secret from -secret/SIM_SECRET, X-Timestamp ±5m\n", *appKey, strings.ToUpper(*alg))
	fmt.Fprint(out, s.Describe(base))
	kj, _ := knobs.MarshalJSON()
	fmt.Fprintf(out, "knobs: %s\n", kj)
	if *samples > 0 {
		fmt.Fprintf(out, "sample people:    %s\n", strings.Join(s.SamplePeople(*samples), " "))
		fmt.Fprintf(out, "sample companies: %s\n", strings.Join(s.SampleCompanies(*samples), " "))
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return simcmd.Serve(ctx, ln, s, s.Close) // Close releases hanging requests
}

// applyEnv sets each flag from SIM_<NAME> when that variable is set (kept for
// the tests; run uses simcmd.Parse).
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	return simcmd.ApplyEnv(fs, "SIM_", lookup)
}
