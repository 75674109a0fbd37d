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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/licensehub/licensehub/signing"
)

// cmdKeys manages the issuing authorities' keyring.
func cmdKeys(ctx context.Context, g *globals, args []string) error {
	subs := map[string]func(context.Context, *globals, []string) error{
		"gen": keysGen, "rotate": keysRotate, "list": keysList, "export": keysExport, "compromise": keysCompromise,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		return &exitError{code: 2, msg: "usage: hubctl keys gen|rotate|list|export|compromise [flags] (-h for each)"}
	}
	return subs[args[0]](ctx, g, args[1:])
}

// keyFlags are the flags every keys subcommand shares.
type keyFlags struct {
	fs          *flag.FlagSet
	dir         string
	passwordEnv string
}

func newKeyFlags(name string, g *globals) *keyFlags {
	k := &keyFlags{fs: flag.NewFlagSet("hubctl keys "+name, flag.ContinueOnError)}
	k.fs.SetOutput(g.stderr)
	def := os.Getenv("HUBCTL_KEYS_DIR")
	if def == "" {
		def = "./data/keys"
	}
	k.fs.StringVar(&k.dir, "dir", def, "keyring directory, as the hub's signing.keys_dir ($HUBCTL_KEYS_DIR)")
	k.fs.StringVar(&k.passwordEnv, "password-env", "", "name of an environment variable holding the password that encrypts new key files")
	return k
}

func (k *keyFlags) parse(args []string) error {
	if err := k.fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if k.fs.NArg() > 0 {
		return &exitError{code: 2, msg: "unexpected arguments: " + strings.Join(k.fs.Args(), " ")}
	}
	return nil
}

func (k *keyFlags) password() ([]byte, error) {
	if k.passwordEnv == "" {
		return nil, nil
	}
	pw := os.Getenv(k.passwordEnv)
	if pw == "" {
		return nil, fmt.Errorf("--password-env %s: the variable is empty or unset", k.passwordEnv)
	}
	return []byte(pw), nil
}

func keysGen(_ context.Context, g *globals, args []string) error {
	k := newKeyFlags("gen", g)
	authority := k.fs.String("authority", "", "the issuing authority's unified social credit code (required)")
	years := k.fs.Int("years", 5, "validity of the key in years")
	if err := k.parse(args); err != nil {
		return err
	}
	if *authority == "" {
		return &exitError{code: 2, msg: "keys gen: --authority is required"}
	}
	pw, err := k.password()
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	info, err := signing.Generate(k.dir, *authority, now, now.AddDate(*years, 0, 0), pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "generated key %s for %s in %s (valid %s to %s)\n", info.KeyID, info.Authority, k.dir,
		info.NotBefore.Format(time.DateOnly), info.NotAfter.Format(time.DateOnly))
	return nil
}

func keysRotate(_ context.Context, g *globals, args []string) error {
	k := newKeyFlags("rotate", g)
	authority := k.fs.String("authority", "", "the issuing authority's unified social credit code (required)")
	years := k.fs.Int("years", 5, "validity of the new key in years")
	if err := k.parse(args); err != nil {
		return err
	}
	if *authority == "" {
		return &exitError{code: 2, msg: "keys rotate: --authority is required"}
	}
	pw, err := k.password()
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	nk, old, err := signing.Rotate(k.dir, *authority, now, now.AddDate(*years, 0, 0), pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "authority %s now signs with %s; %s retired at %s (its signatures stay verifiable)\n",
		*authority, nk.KeyID, old.KeyID, now.Format(time.RFC3339))
	fmt.Fprintln(g.stdout, "restart or reload the hub instances to pick the new key up")
	return nil
}

func keysCompromise(_ context.Context, g *globals, args []string) error {
	k := newKeyFlags("compromise", g)
	kid := k.fs.String("kid", "", "the compromised key's ID (required)")
	at := k.fs.String("at", "", "when it was compromised, RFC 3339 (default now); signatures claiming a later time are rejected")
	if err := k.parse(args); err != nil {
		return err
	}
	if *kid == "" {
		return &exitError{code: 2, msg: "keys compromise: --kid is required"}
	}
	when := time.Now().UTC().Truncate(time.Second)
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return &exitError{code: 2, msg: "keys compromise: --at must be RFC 3339, e.g. 2026-11-26T08:00:00Z"}
		}
		when = t
	}
	if err := signing.MarkCompromised(k.dir, *kid, when); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "key %s marked compromised at %s\n", *kid, when.Format(time.RFC3339))
	return nil
}

func keysList(ctx context.Context, g *globals, args []string) error {
	k := newKeyFlags("list", g)
	if err := k.parse(args); err != nil {
		return err
	}
	ring, err := openKeyring(k)
	if err != nil {
		return err
	}
	printKeys(g.stdout, ring.Keys())
	return nil
}

func openKeyring(k *keyFlags) (*signing.Keyring, error) {
	var opts []signing.Option
	if pw, err := k.password(); err != nil {
		return nil, err
	} else if pw != nil {
		opts = append(opts, signing.WithPassword(func(string) ([]byte, error) { return pw, nil }))
	}
	return signing.OpenKeyring(k.dir, opts...)
}

func printKeys(w io.Writer, keys []signing.KeyInfo) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tAUTHORITY\tSTATE\tNOT BEFORE\tNOT AFTER\tCERT")
	for _, k := range keys {
		cert := "-"
		if k.CertificatePEM != "" {
			cert = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Authority, k.State,
			k.NotBefore.Format(time.DateOnly), k.NotAfter.Format(time.DateOnly), cert)
	}
	tw.Flush()
}

// keysExport writes an offline verification bundle, from a local keyring
// (--dir) or from a running hub's registry.
func keysExport(ctx context.Context, g *globals, args []string) error {
	k := newKeyFlags("export", g)
	out := k.fs.String("out", "", "write the bundle here (default: standard output)")
	fromHub := k.fs.Bool("from-hub", false, "fetch the public keys from the hub's /v1/keys instead of reading --dir")
	if err := k.parse(args); err != nil {
		return err
	}
	var bundle signing.Bundle
	if *fromHub {
		keys, err := fetchKeys(ctx, g)
		if err != nil {
			return err
		}
		bundle = signing.ExportBundle(keys, time.Now().UTC())
	} else {
		ring, err := openKeyring(k)
		if err != nil {
			return err
		}
		bundle = signing.ExportBundle(ring, time.Now().UTC())
	}
	raw, err := json.MarshalIndent(bundle, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	if *out == "" {
		_, err = g.stdout.Write(raw)
		return err
	}
	if err := os.WriteFile(*out, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "wrote %d keys to %s\n", len(bundle.KeyInfos), *out)
	return nil
}

// fetchKeys reads the hub's key registry and checks it like a bundle.
func fetchKeys(ctx context.Context, g *globals) (*signing.Bundle, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(g.hub, "/")+"/v1/keys", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hub at %s is not reachable: %w", g.hub, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/keys: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var list struct {
		Keys []signing.KeyInfo `json:"keys"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("GET /v1/keys: %w", err)
	}
	b, err := json.Marshal(signing.Bundle{Version: signing.BundleVersion, GeneratedAt: time.Now().UTC(), KeyInfos: list.Keys})
	if err != nil {
		return nil, err
	}
	bundle, err := signing.ParseBundle(b) // checks every key ID against its key
	if err != nil {
		return nil, errors.New("the hub's key registry does not check out: " + err.Error())
	}
	return bundle, nil
}
