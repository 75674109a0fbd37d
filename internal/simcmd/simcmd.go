// Package simcmd holds what the simulator commands (cmd/upstream-sim,
// cmd/province-sim) share: flags from the environment and serving until
// the context ends.
package simcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ApplyEnv sets each flag of fs from prefix + the flag name upper-cased
// with '-' as '_' (SIM_ERROR_RATE for -error-rate) when lookup finds that
// variable.
func ApplyEnv(fs *flag.FlagSet, prefix string, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(name); ok && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}

// Parse sets fs from the environment (see ApplyEnv), then from args, which
// win; it fails on arguments left over.
func Parse(fs *flag.FlagSet, prefix string, args []string) error {
	if err := ApplyEnv(fs, prefix, os.LookupEnv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// Serve serves h on ln until ctx ends or serving fails. When ctx ends it
// calls release (to let hanging requests go), then shuts the server down,
// closing it when that takes more than 5 seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, release func()) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	release()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
