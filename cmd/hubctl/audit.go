package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/licensehub/licensehub/audit"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store"
)

// cmdAudit verifies the sealed audit trail (offline, from the object
// store) or lists records (through the hub, as a supervisor).
func cmdAudit(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "list") {
		return &exitError{code: 2, msg: "usage: hubctl audit verify [--config FILE] [--keys BUNDLE] [--gap-grace 10m] | hubctl audit list [--app A] [--holder H] [--license L] [--matter M] [--from T] [--to T]"}
	}
	if args[0] == "verify" {
		return auditVerify(ctx, g, args[1:])
	}
	return auditList(ctx, g, args[1:])
}

// auditVerify re-reads every sealed segment from the hub's object store and
// checks the SM3 chain and the signed checkpoints, and that every record an
// instance acknowledged (numbered per instance) is sealed once. Exit 1
// names the first modified, deleted, inserted or reordered record, or the
// instance and numbers of records missing for longer than the gap grace.
func auditVerify(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl audit verify", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration (default $HUB_CONFIG, else configs/hub.yaml if present); HUB_* variables apply")
	keysPath := fs.String("keys", "", "key bundle to check checkpoint signatures with (default: the keyring in signing.keys_dir)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	grace := fs.Duration("gap-grace", audit.DefaultGapGrace, "how long an acknowledged record may be missing from the sealed trail before it is a gap (e.g. 10m, 0s)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *grace < 0 {
		return &exitError{code: 2, msg: "--gap-grace must not be negative"}
	}
	cfg, err := loadHubConfig(*cfgPath)
	if err != nil {
		return err
	}
	var keys signing.KeySource
	if *keysPath != "" {
		raw, err := os.ReadFile(*keysPath)
		if err != nil {
			return err
		}
		if keys, err = signing.ParseBundle(raw); err != nil {
			return fmt.Errorf("%s: %w", *keysPath, err)
		}
	} else {
		if keys, err = openHubKeyring(cfg); err != nil {
			return err
		}
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	objects, err := store.OpenObjects(octx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer objects.Close()

	start := time.Now()
	report, err := audit.Verify(ctx, objects.Store, keys, audit.ExpectAuthority(cfg.Signing.HubAuthority), audit.GapGrace(*grace))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	} else if report.OK {
		fmt.Fprintf(g.stdout, "audit trail OK: %d records in %d segments, chain ends at seq %d (%s), checkpoints signed by %s with %s (%.1fs)\n",
			report.Records, report.Segments, report.LastSeq, report.LastHash, report.Authority, strings.Join(report.KeyIDs, ", "),
			time.Since(start).Seconds())
		for _, in := range report.Instances {
			fmt.Fprintf(g.stdout, "instance %s: %d numbered records sealed, up to %d; acknowledged up to %d\n", in.Instance, in.Sealed, in.Top, in.Acked)
		}
		for _, w := range report.Warnings {
			fmt.Fprintln(g.stdout, "warning:", w)
		}
	}
	if !report.OK {
		msg := "audit trail BROKEN: " + report.Problem.Error()
		if n := len(report.Gaps); n > 1 && report.Problem.Kind == audit.KindGap {
			for _, gap := range report.Gaps {
				msg += "\n  " + gap.String()
			}
		}
		return &exitError{code: 1, msg: msg}
	}
	return nil
}

// memberClient signs requests as the member system in $HUBCTL_APP_ID with
// the secret in $HUBCTL_SECRET.
func memberClient(g *globals) (*client.Client, error) {
	app, secret := os.Getenv("HUBCTL_APP_ID"), os.Getenv("HUBCTL_SECRET")
	if app == "" || secret == "" {
		return nil, &exitError{code: 2, msg: "set HUBCTL_APP_ID and HUBCTL_SECRET to the member system hubctl acts as"}
	}
	return &client.Client{BaseURL: strings.TrimRight(g.hub, "/"), Credentials: client.Credentials{AppID: app, Secret: client.Secret(secret)},
		HTTP: &http.Client{Timeout: g.timeout}}, nil
}

// getJSON performs a signed GET and decodes the answer into v.
func getJSON(ctx context.Context, g *globals, path string, q url.Values, v any) error {
	c, err := memberClient(g)
	if err != nil {
		return err
	}
	resp, err := c.Do(ctx, http.MethodGet, path, q, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := client.ReadError(resp); err != nil {
		return err
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v)
}

func auditList(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl audit list", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	q := url.Values{}
	for _, name := range []string{"app", "holder", "license", "matter", "from", "to", "limit"} {
		fs.Func(name, "filter: "+name, func(v string) error { q.Set(name, v); return nil })
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	var page struct {
		Records []audit.Record `json:"records"`
		Next    string         `json:"next"`
	}
	if err := getJSON(ctx, g, "/v1/audit", q, &page); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tAPP\tOPERATION\tMATTER\tHOLDER\tLICENSES\tRESULT\tREQUEST")
	for _, r := range page.Records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format(audit.TimeLayout), r.AppID, r.Operation, r.Matter,
			r.HolderMasked, strings.Join(r.Licenses, ","), r.Result, r.RequestID)
	}
	tw.Flush()
	if page.Next != "" {
		fmt.Fprintln(g.stdout, "more: --cursor is", page.Next)
	}
	return nil
}

// cmdUsage shows who used a holder's licenses (as a citizen-facing app).
func cmdUsage(ctx context.Context, g *globals, args []string) error {
	if len(args) != 1 {
		return &exitError{code: 2, msg: "usage: hubctl usage HOLDER_CODE"}
	}
	var page struct {
		Holder string `json:"holder"`
		Usage  []struct {
			Time      string   `json:"time"`
			App       string   `json:"app_id"`
			Operation string   `json:"operation"`
			Matter    string   `json:"matter"`
			Reason    string   `json:"reason"`
			Licenses  []string `json:"licenses"`
		} `json:"usage"`
	}
	if err := getJSON(ctx, g, "/v1/holders/"+url.PathEscape(args[0])+"/usage", nil, &page); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "uses of the licenses of %s:\n", page.Holder)
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tAPP\tOPERATION\tMATTER\tREASON\tLICENSES")
	for _, u := range page.Usage {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Time, u.App, u.Operation, u.Matter, u.Reason, strings.Join(u.Licenses, ","))
	}
	tw.Flush()
	return nil
}

// loadHubConfig reads the hub's configuration as the hub does: the given
// file, else $HUB_CONFIG, else configs/hub.yaml when present, with HUB_*
// overrides.
func loadHubConfig(path string) (*config.Config, error) {
	return config.Load(config.ResolvePath(path, os.Environ()), os.Environ())
}

// openHubKeyring opens the keyring the hub's configuration names.
func openHubKeyring(cfg *config.Config) (*signing.Keyring, error) {
	var opts []signing.Option
	if pw := cfg.Signing.KeyPassword.Value(); pw != "" {
		opts = append(opts, signing.WithSinglePassword([]byte(pw)))
	}
	ring, err := signing.OpenKeyring(cfg.Signing.KeysDir, opts...)
	if err != nil {
		return nil, fmt.Errorf("signing.keys_dir: %w", err)
	}
	return ring, nil
}
