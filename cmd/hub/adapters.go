package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/licensehub/licensehub/adapters"
	"github.com/licensehub/licensehub/adapters/publicsecurity"
	"github.com/licensehub/licensehub/adapters/sim"
	"github.com/licensehub/licensehub/adapters/socialsecurity"
	"github.com/licensehub/licensehub/adapters/tax"
	"github.com/licensehub/licensehub/adapters/upstream"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/signing"
)

// openAdapters connects the configured upstreams and builds the gateway
// that turns their answers into certificates signed with the hub's key. In
// demo mode, upstreams without a base_url are served by the simulator,
// started in process on a loopback port. The returned stop closes clients
// and the simulator.
func openAdapters(cfg *config.Config, b *backends, ring *signing.Keyring, reg prometheus.Registerer, log *slog.Logger) (*adapters.Gateway, string, func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	simURL := ""
	startSim := func() (string, error) {
		if simURL != "" {
			return simURL, nil
		}
		s := sim.New(sim.Config{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: s}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ln) }()
		stops = append(stops, func() {
			s.Close() // releases requests the hang knob holds
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if srv.Shutdown(ctx) != nil {
				srv.Close()
			}
			<-done
		})
		simURL = "http://" + ln.Addr().String()
		log.Warn("DEMO: public-security, social-security and tax upstreams are simulated", "url", simURL)
		return simURL, nil
	}

	upstreams := map[string]adapters.Connected{}
	var kinds []adapters.Kind
	for _, u := range []struct {
		name  string
		cfg   config.Upstream
		kinds []adapters.Kind
	}{
		{"publicsecurity", cfg.Adapters.PublicSecurity, publicsecurity.Kinds()},
		{"socialsecurity", cfg.Adapters.SocialSecurity, socialsecurity.Kinds()},
		{"tax", cfg.Adapters.Tax, tax.Kinds()},
	} {
		for _, k := range u.kinds {
			kinds = append(kinds, k.WithMapping(u.cfg.Mapping[k.Name]))
		}
		baseURL, appKey, secret := u.cfg.BaseURL, u.cfg.AppKey, []byte(u.cfg.Secret.Value())
		if baseURL == "" {
			if !cfg.Demo.Enabled {
				continue // not connected: its certificates answer UPSTREAM_UNAVAILABLE
			}
			url, err := startSim()
			if err != nil {
				stop()
				return nil, "", nil, err
			}
			baseURL, appKey, secret = url, sim.DefaultAppKey, []byte(sim.DefaultSecret)
		}
		c, err := upstream.New(upstream.Config{Name: u.name, BaseURL: baseURL, AppKey: appKey, Secret: secret,
			Algorithm: u.cfg.Algorithm, Timeout: u.cfg.Timeout.D(), MaxAttempts: u.cfg.MaxAttempts,
			MaxRetryAfter: u.cfg.MaxRetryAfter.D(), Concurrency: u.cfg.Concurrency,
			BreakerFailures: uint32(u.cfg.BreakerFails), BreakerOpenFor: u.cfg.BreakerOpen.D()},
			upstream.WithCache(b.kv, "upstream:"), upstream.WithLogger(log), upstream.WithRegisterer(reg))
		if err != nil {
			stop()
			return nil, "", nil, fmt.Errorf("adapters.%s: %w", u.name, err)
		}
		stops = append(stops, c.Close)
		upstreams[u.name] = c
	}
	gw, err := adapters.NewGateway(adapters.GatewayConfig{Upstreams: upstreams, Kinds: kinds, Signers: ring,
		Authority: adapters.Party{Name: "证照通（城市电子证照库）", Code: cfg.Signing.HubAuthority},
		Validity:  cfg.Adapters.CertificateValidity.D()})
	if err != nil {
		stop()
		return nil, "", nil, errors.Join(errors.New("adapters"), err)
	}
	return gw, simURL, stop, nil
}
