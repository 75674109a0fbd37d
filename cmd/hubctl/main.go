// Command hubctl is the licensehub operator and client CLI.
//
//	hubctl [--hub URL] status                 readiness of a running hub and its backends
//	hubctl keys gen --authority CODE          new SM2 key for an issuing authority
//	hubctl keys rotate --authority CODE       new active key; the old one retires
//	hubctl keys list | export [--out FILE]    the keyring; an offline verification bundle
//	hubctl keys compromise --kid KID [--at T] reject signatures claiming a later time
//	hubctl verify FILE [--keys BUNDLE]        verify a signed license (offline with a bundle)
//	hubctl audit verify [--config FILE]       re-read and check every sealed audit segment
//	hubctl audit list [--app A] [--holder H]  audit records (HUBCTL_APP_ID/HUBCTL_SECRET: a supervisor)
//	hubctl usage HOLDER_CODE                  who used a holder's licenses (as a citizen-facing app)
//	hubctl push FILE [--idempotency-key K]    push a license (as an issuing department)
//	hubctl reindex [--config FILE]            rebuild the Redis indexes from the object store
//	hubctl convert --mapping M FILE           convert a legacy register into licenses (resumable; --dry-run)
//	hubctl convert rejects|status JOBID       a conversion's rejected rows (CSV) or state
//	hubctl exchange dlq list|replay [--event ID]... [--all]   dead-lettered exchange events (in process)
//	hubctl exchange reconcile --date D        compare a day with the province, re-send what it lacks
//	hubctl certify KIND k=v... [--matter M]   a certificate derived from an upstream system
//	hubctl adapters                           upstream breaker state, error rate and latency
//	hubctl version
//
// --hub defaults to $HUBCTL_HUB, else http://127.0.0.1:8080.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

var version = "dev"

// command is one hubctl subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, g *globals, args []string) error
}

type globals struct {
	hub     string
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer
}

var commands = map[string]command{
	"status":    {"show whether the hub and each of its backends are ready", cmdStatus},
	"keys":      {"manage authority keys: gen, rotate, list, export, compromise", cmdKeys},
	"verify":    {"verify a signed license: offline with --keys BUNDLE, else on the hub", cmdVerify},
	"audit":     {"verify the sealed audit trail (offline) or list records (as a supervisor)", cmdAudit},
	"certify":   {"a certificate from the public-security, social-security or tax system, signed by the hub", cmdCertify},
	"adapters":  {"upstream systems: breaker state, error rate, latency (administrators)", cmdAdapters},
	"consent":   {"create or revoke an applicant's consent (as a citizen-facing app)", cmdConsent},
	"lookup":    {"licenses of a holder for a matter, minimised (as an approval system)", cmdLookup},
	"materials": {"every material a matter needs, gathered at once (as an approval system)", cmdMaterials},
	"push":      {"push a license as an issuing department (HUBCTL_APP_ID/HUBCTL_SECRET)", cmdPush},
	"reindex":   {"rebuild the Redis indexes of the license library from the object store", cmdReindex},
	"convert":   {"convert a legacy license register into signed licenses (存量证照), resumably", cmdConvert},
	"exchange":  {"the provincial exchange: dead letters (list, replay) and daily reconciliation", cmdExchange},
	"usage":     {"who used a holder's licenses (as a citizen-facing app)", cmdUsage},
	"version": {"print hubctl's version", func(_ context.Context, g *globals, _ []string) error {
		fmt.Fprintln(g.stdout, "licensehub hubctl", version)
		return nil
	}},
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("hubctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultHub := os.Getenv("HUBCTL_HUB")
	if defaultHub == "" {
		defaultHub = "http://127.0.0.1:8080"
	}
	fs.StringVar(&g.hub, "hub", defaultHub, "hub base URL ($HUBCTL_HUB)")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "deadline for each call to the hub")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		usage(stderr, fs)
		return 2
	}
	cmd, ok := commands[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(stderr, "hubctl: unknown command %q\n\n", fs.Arg(0))
		usage(stderr, fs)
		return 2
	}
	if err := cmd.run(ctx, g, fs.Args()[1:]); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stderr, "hubctl:", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "hubctl:", err)
		return 1
	}
	return 0
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: hubctl [flags] COMMAND [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nflags:")
	fs.PrintDefaults()
}

// cmdStatus prints /readyz as a table and exits 1 when the hub is not ready.
func cmdStatus(ctx context.Context, g *globals, _ []string) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(g.hub, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("hub at %s is not reachable: %v", g.hub, err)}
	}
	defer resp.Body.Close()
	var r struct {
		Status   string `json:"status"`
		Backends []struct {
			Name      string  `json:"name"`
			Kind      string  `json:"kind"`
			Status    string  `json:"status"`
			LatencyMS float64 `json:"latency_ms"`
			Error     string  `json:"error"`
			Settings  []struct {
				Name, Value, Verdict, Note string
			} `json:"settings"`
		} `json:"backends"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return fmt.Errorf("unreadable /readyz answer (HTTP %d): %w", resp.StatusCode, err)
	}
	fmt.Fprintf(g.stdout, "hub %s: %s\n", g.hub, r.Status)
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tKIND\tSTATUS\tLATENCY\tERROR")
	for _, b := range r.Backends {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fms\t%s\n", b.Name, b.Kind, b.Status, b.LatencyMS, b.Error)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	header := false
	for _, b := range r.Backends {
		for _, st := range b.Settings {
			if !header {
				fmt.Fprintln(tw, "\nBACKEND\tSETTING\tVALUE\tVERDICT\tNOTE")
				header = true
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Name, st.Name, st.Value, st.Verdict, st.Note)
		}
	}
	tw.Flush()
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1}
	}
	return nil
}
