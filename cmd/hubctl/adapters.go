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

	"github.com/licensehub/licensehub/client"
)

// cmdCertify asks the hub for a certificate derived from an upstream
// system: hubctl certify KIND key=value... [--matter M] [--out FILE].
func cmdCertify(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl certify", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	matter := fs.String("matter", "", "the service matter the certificate is for (X-Hub-Matter)")
	reason := fs.String("reason", "", "the reason for use (X-Hub-Reason)")
	out := fs.String("out", "", "write the signed certificate here (default: standard output)")
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return &exitError{code: 2}
		}
		if fs.NArg() == 0 {
			break
		}
		positional, args = append(positional, fs.Arg(0)), fs.Args()[1:]
	}
	if len(positional) < 2 {
		return &exitError{code: 2, msg: "usage: hubctl certify KIND key=value... [--matter M] [--reason R] [--out FILE]"}
	}
	params := map[string]string{}
	for _, kv := range positional[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return &exitError{code: 2, msg: fmt.Sprintf("parameter %q is not key=value", kv)}
		}
		params[k] = v
	}
	body, _ := json.Marshal(map[string]any{"params": params})
	c, err := memberClient(g)
	if err != nil {
		return err
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if *matter != "" {
		hdr.Set("X-Hub-Matter", url.PathEscape(*matter))
	}
	if *reason != "" {
		hdr.Set("X-Hub-Reason", url.PathEscape(*reason))
	}
	resp, err := c.Do(ctx, http.MethodPost, "/v1/certificates/"+url.PathEscape(positional[0]), nil, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := client.ReadError(resp); err != nil {
		return err
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if *out != "" {
		return os.WriteFile(*out, doc, 0o644)
	}
	_, err = g.stdout.Write(append(doc, '\n'))
	return err
}

// cmdAdapters shows each upstream's breaker state, error rate and latency.
func cmdAdapters(ctx context.Context, g *globals, _ []string) error {
	var st struct {
		Upstreams []struct {
			Name      string  `json:"name"`
			BaseURL   string  `json:"base_url"`
			Breaker   string  `json:"breaker"`
			Requests  int64   `json:"requests"`
			ErrorRate float64 `json:"error_rate"`
			P50       float64 `json:"latency_p50_ms"`
			P95       float64 `json:"latency_p95_ms"`
		} `json:"upstreams"`
		Kinds []struct {
			Name, Title, Upstream string
			Params                []string
		} `json:"kinds"`
	}
	if err := getJSON(ctx, g, "/v1/adapters", nil, &st); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tBREAKER\tCALLS\tERRORS\tP50\tP95\tURL")
	for _, u := range st.Upstreams {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f%%\t%.1fms\t%.1fms\t%s\n", u.Name, u.Breaker, u.Requests, 100*u.ErrorRate, u.P50, u.P95, u.BaseURL)
	}
	tw.Flush()
	fmt.Fprintln(g.stdout)
	tw = tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTITLE\tUPSTREAM\tPARAMS")
	for _, k := range st.Kinds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.Title, k.Upstream, strings.Join(k.Params, ", "))
	}
	return tw.Flush()
}
