package upstream

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	queries  *prometheus.CounterVec
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	breaker  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "licensehub_upstream_queries_total",
			Help: "Upstream queries by upstream, service and outcome (ok, cache_hit, not_found, invalid, bad_response, unavailable, timeout).",
		}, []string{"upstream", "service", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "licensehub_upstream_calls_total",
			Help: "HTTP attempts to upstreams by upstream, service and outcome (ok, http_4xx, http_429, http_5xx, http_other, error, cancelled, breaker_open).",
		}, []string{"upstream", "service", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "licensehub_upstream_call_duration_seconds",
			Help:    "Latency of HTTP attempts to upstreams.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"upstream", "service"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "licensehub_upstream_breaker_state",
			Help: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
		}, []string{"upstream"}),
	}
	if reg == nil {
		return m, nil
	}
	// Several clients share the collectors: reuse one already registered.
	var err error
	m.queries, err = register(reg, m.queries)
	if err != nil {
		return nil, err
	}
	if m.attempts, err = register(reg, m.attempts); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.breaker, err = register(reg, m.breaker); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
