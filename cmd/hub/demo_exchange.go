package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/exchange/provsim"
	"github.com/licensehub/licensehub/signing"
)

// demoProvinceApp is the provincial platform's member app in
// configs/members.yaml (role provincial_platform: exchange.inbound,
// exchange.read, license.read).
const demoProvinceApp = "province-platform"

// demoProvince is the provincial platform simulated in process for the
// demo; nil when the exchange is the operator's.
type demoProvince struct {
	url       string // the simulator's base URL
	keysDir   string // the province's keyring (for `province-sim push -keys-dir`)
	bundle    string // its public bundle: exchange.province_keys
	ownKeys   bool   // exchange.province_keys is this bundle
	foreignID string // the first license `province-sim push` sends
	stop      func()
}

// Stop ends the simulator (a nil demoProvince: nothing to stop).
func (p *demoProvince) Stop() {
	if p != nil && p.stop != nil {
		p.stop()
	}
}

// startDemoProvince starts the province simulator on a loopback port and
// points the exchange at it, in demo mode when the operator has not set
// exchange.province_url (as openAdapters does for the upstreams). The
// province's keyring is data_dir/demo/province-keys (made on first use),
// its bundle data_dir/demo/province-keys.json; the simulator verifies the
// hub's envelopes with the hub keyring's public keys. It must run before
// openExchange. It returns nil, nil when nothing is simulated.
func startDemoProvince(cfg *config.Config, ring *signing.Keyring, log *slog.Logger) (*demoProvince, error) {
	if !cfg.Demo.Enabled || cfg.Exchange.ProvinceURL != "" {
		return nil, nil
	}
	dir := filepath.Join(cfg.DataDir, "demo")
	p := &demoProvince{keysDir: filepath.Join(dir, "province-keys"), bundle: filepath.Join(dir, "province-keys.json")}
	signer, err := demoProvinceKey(p.keysDir, p.bundle)
	if err != nil {
		return nil, fmt.Errorf("demo province: %w", err)
	}
	// The identifier of the first foreign license `province-sim push`
	// sends with its defaults, for the printed lookup.
	pusher, err := provsim.NewPusher(provsim.PushConfig{HubURL: "http://127.0.0.1", Signer: signer, Count: 1, Statuses: -1,
		Credentials: client.Credentials{AppID: demoProvinceApp, Secret: auth.DemoSecret(demoProvinceApp)}})
	if err != nil {
		return nil, fmt.Errorf("demo province: %w", err)
	}
	if lics, _, err := pusher.Plan(context.Background()); err == nil && len(lics) > 0 {
		p.foreignID = lics[0].Event.License
	}

	sim := provsim.New(provsim.Config{HubKeys: ring.Export()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo province: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	p.stop = func() {
		sim.Close() // ends the delays the knobs hold
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}
	p.url = "http://" + ln.Addr().String()

	x := &cfg.Exchange
	x.Enabled, x.ProvinceURL = true, p.url
	if x.ProvinceKeys == "" {
		x.ProvinceKeys, p.ownKeys = p.bundle, true
	}
	log.Warn("DEMO: the provincial platform is simulated", "url", p.url, "province_keys", x.ProvinceKeys)
	return p, nil
}

// demoProvinceKey opens the province's keyring, giving it a key for
// provsim.DefaultProvinceAuthority on first use (as cmd/province-sim
// does, so that `province-sim push -keys-dir` signs with the same key),
// and writes its public bundle.
func demoProvinceKey(dir, bundle string) (signing.Signer, error) {
	now := time.Now()
	ring, err := signing.OpenKeyring(dir)
	if err == nil {
		if s, err := ring.SignerFor(provsim.DefaultProvinceAuthority, now); err == nil {
			return s, writeBundle(ring, bundle)
		}
	} else if _, statErr := os.Stat(filepath.Join(dir, signing.KeyringFile)); !errors.Is(statErr, os.ErrNotExist) {
		return nil, err // a keyring that does not open is left for the operator
	}
	if _, err := signing.Generate(dir, provsim.DefaultProvinceAuthority, now.Add(-time.Hour), now.AddDate(5, 0, 0), nil); err != nil &&
		!licensehub.IsCode(err, licensehub.ECONFLICT) {
		return nil, err
	}
	if ring, err = signing.OpenKeyring(dir); err != nil {
		return nil, err
	}
	s, err := ring.SignerFor(provsim.DefaultProvinceAuthority, now)
	if err != nil {
		return nil, err
	}
	return s, writeBundle(ring, bundle)
}

func writeBundle(ring *signing.Keyring, path string) error {
	raw, err := json.MarshalIndent(ring.Export(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

// printExchangeSteps prints how to follow the exchange with the simulated
// province. hubcurl is the function printConversionSteps defines.
func printExchangeSteps(w io.Writer, base string, p *demoProvince) {
	if p == nil {
		return
	}
	today := time.Now().UTC().Format(time.DateOnly)
	secret := auth.DemoSecret(demoProvinceApp)
	fmt.Fprintf(w, `
Exchange with the provincial platform (simulated at %[2]s; README.md, "Exchange with the provincial platform"):
  curl -s %[2]s/_sim/stats                      # "applied": the demo license's event, delivered as a signed envelope
  curl -s '%[2]s/v1/reconcile?date=%[3]s&ids=1'
  HUB_EXCHANGE_PROVINCE_URL=%[2]s go run ./cmd/hubctl exchange reconcile --date %[3]s   # hub vs province digests of the UTC day
  export HUBCTL_HUB=%[1]s HUBCTL_APP_ID=%[4]s HUBCTL_SECRET=%[5]s   # the provincial platform (hubcurl: above)
  hubcurl GET '/v1/exchange/changes?limit=10'    # the change feed (events older than exchange.feed_settle)
  hubcurl GET '/v1/exchange/reconcile?date=%[3]s&ids=1'
`, base, p.url, today, demoProvinceApp, secret)
	if !p.ownKeys {
		fmt.Fprintf(w, "  # exchange.province_keys is yours: province-sim push signs with %s, which it may not trust\n", p.keysDir)
	}
	fmt.Fprintf(w, `
The province pushes licenses issued elsewhere (signed with its key in %[2]s) into the hub:
  go run ./cmd/province-sim push -hub %[1]s -app-id %[3]s -secret %[4]s -keys-dir %[2]s -count 3
  hubcurl GET /v1/licenses/%[5]s   # a foreign license: provenance "province", status 02 (suspended by its status change)
`, base, p.keysDir, demoProvinceApp, secret, p.foreignID)
}
