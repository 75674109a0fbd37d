package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// cmdVerify checks a signed license document: offline against a key
// bundle (--keys), or through the hub's /v1/verify. It exits 1 when the
// document is invalid.
func cmdVerify(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl verify", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	keysPath := fs.String("keys", "", "key bundle (hubctl keys export) for offline verification; without it the hub verifies")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	// Accept the file before or after the flags: hubctl verify doc.json --keys b.json.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		return &exitError{code: 2, msg: "usage: hubctl verify FILE [--keys BUNDLE] [--json]"}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var verdict *license.Verdict
	if *keysPath != "" {
		braw, err := os.ReadFile(*keysPath)
		if err != nil {
			return err
		}
		bundle, err := signing.ParseBundle(braw)
		if err != nil {
			return fmt.Errorf("%s: %w", *keysPath, err)
		}
		v := &license.Verifier{Keys: bundle}
		if verdict, err = v.Verify(ctx, raw); err != nil {
			return &exitError{code: 1, msg: file + ": " + err.Error()}
		}
	} else if verdict, err = verifyOnHub(ctx, g, raw); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(verdict)
	} else {
		printVerdict(g.stdout, file, verdict)
	}
	if verdict.Verdict == license.VerdictInvalid {
		return &exitError{code: 1}
	}
	return nil
}

func verifyOnHub(ctx context.Context, g *globals, raw []byte) (*license.Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(g.hub, "/")+"/v1/verify", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("hub at %s is not reachable (verify offline with --keys BUNDLE): %v", g.hub, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("hub answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))}
	}
	var v license.Verdict
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("unreadable verdict: %w", err)
	}
	return &v, nil
}

func printVerdict(w io.Writer, file string, v *license.Verdict) {
	fmt.Fprintf(w, "%s: %s\n", file, strings.ToUpper(v.Verdict))
	fmt.Fprintf(w, "  identifier %s\n  signed by  %s (key %s) at %s\n  status     %s\n\n",
		v.Identifier, v.Authority, v.KeyID, v.SignedAt, v.Status)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tRESULT\tRULE\tDETAIL")
	for _, c := range v.Checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Result, c.Rule, c.Detail)
	}
	tw.Flush()
}
