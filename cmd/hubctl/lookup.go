package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/ident"
)

// signedJSON sends a signed request with hdr and prints the JSON answer
// indented.
func signedJSON(ctx context.Context, g *globals, method, path string, q url.Values, body []byte, hdr http.Header) error {
	c, err := memberClient(g)
	if err != nil {
		return err
	}
	if hdr == nil {
		hdr = http.Header{}
	}
	if body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(ctx, method, path, q, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := client.ReadError(resp); err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || len(raw) == 0 {
		return err
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		out.Reset()
		out.Write(raw)
	}
	out.WriteByte('\n')
	_, err = g.stdout.Write(out.Bytes())
	return err
}

// cmdConsent: hubctl consent create|revoke (as a citizen-facing app).
func cmdConsent(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 || args[0] != "create" && args[0] != "revoke" {
		return &exitError{code: 2, msg: "usage: hubctl consent create --holder CODE --matter M [--app APP] [--hours N] | hubctl consent revoke ID --holder CODE"}
	}
	fs := flag.NewFlagSet("hubctl consent", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	holder := fs.String("holder", "", "the applicant's holder code (resident ID number or credit code)")
	matter := fs.String("matter", "", "the service matter the consent is for")
	app := fs.String("app", "", "only this approval system may use it")
	hours := fs.Int("hours", 24, "how long the consent is valid")
	sub, rest := args[0], args[1:]
	var id string
	if sub == "revoke" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return &exitError{code: 2}
	}
	if sub == "revoke" {
		if id == "" || *holder == "" {
			return &exitError{code: 2, msg: "usage: hubctl consent revoke ID --holder CODE"}
		}
		if err := signedJSON(ctx, g, http.MethodDelete, "/v1/consents/"+url.PathEscape(id), url.Values{"holder": {*holder}}, nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(g.stderr, "consent", id, "revoked")
		return nil
	}
	codeType := ident.HolderCreditCode
	if ident.ValidateResidentID(*holder) == nil {
		codeType = ident.HolderResidentID
	}
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{"holder_code": *holder, "holder_code_type": codeType, "matter": *matter,
		"app": *app, "from": now.Add(-time.Minute), "until": now.Add(time.Duration(*hours) * time.Hour)})
	return signedJSON(ctx, g, http.MethodPost, "/v1/consents", nil, body, nil)
}

// lookupHeaders carries the consent or the operator acting by duty.
func lookupFlags(fs *flag.FlagSet) func() http.Header {
	consent := fs.String("consent", "", "the applicant's consent token")
	operator := fs.String("operator", "", "operator acting by duty: account,name,department,role")
	reason := fs.String("reason", "", "reason for use (用证事由)")
	return func() http.Header {
		h := http.Header{}
		if *consent != "" {
			h.Set("X-Hub-Consent", *consent)
		}
		if *reason != "" {
			h.Set("X-Hub-Reason", url.PathEscape(*reason))
		}
		if parts := strings.SplitN(*operator, ",", 4); len(parts) == 4 {
			for i, name := range []string{"Account", "Name", "Department", "Role"} {
				h.Set("X-Hub-Operator-"+name, url.PathEscape(parts[i]))
			}
		}
		return h
	}
}

// cmdLookup: hubctl lookup --holder CODE --matter M (--consent T | --operator …).
func cmdLookup(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl lookup", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	holder := fs.String("holder", "", "holder code")
	matter := fs.String("matter", "", "service matter")
	headers := lookupFlags(fs)
	if err := fs.Parse(args); err != nil || *holder == "" || *matter == "" {
		return &exitError{code: 2, msg: "usage: hubctl lookup --holder CODE --matter M (--consent TOKEN | --operator acct,name,dept,role --reason R)"}
	}
	return signedJSON(ctx, g, http.MethodGet, "/v1/holders/"+url.PathEscape(*holder)+"/licenses", url.Values{"matter": {*matter}}, nil, headers())
}

// cmdMaterials: hubctl materials --matter M --holder CODE --name N [--input k=v]...
func cmdMaterials(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("hubctl materials", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	holder := fs.String("holder", "", "the applicant's holder code")
	name := fs.String("name", "", "the applicant's name")
	matter := fs.String("matter", "", "service matter")
	inputs := map[string]string{}
	fs.Func("input", "key=value the matter's certificates need (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", v)
		}
		inputs[k] = val
		return nil
	})
	headers := lookupFlags(fs)
	if err := fs.Parse(args); err != nil || *holder == "" || *matter == "" {
		return &exitError{code: 2, msg: "usage: hubctl materials --matter M --holder CODE --name N [--input k=v]... (--consent TOKEN | --operator …)"}
	}
	body, _ := json.Marshal(map[string]any{"holder_code": *holder, "holder_name": *name, "inputs": inputs})
	return signedJSON(ctx, g, http.MethodPost, "/v1/matters/"+url.PathEscape(*matter)+"/materials", nil, body, headers())
}
