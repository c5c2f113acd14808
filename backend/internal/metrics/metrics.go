// Package metrics exposes the backend's anonymous Prometheus metrics on /metrics. Labels take
// values from small closed sets (outcomes, token kinds); no user id, model output or request
// content ever becomes a label or a value.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/codingplan/codingplan/backend/internal/gateway"
	wire "github.com/codingplan/codingplan/shared"
)

const namespace = "codingplan"

// Outcomes a stream can end with: "ok" or an error code.
var outcomes = []string{
	"ok",
	string(wire.CodeUnauthorized), string(wire.CodeTokenExpired), string(wire.CodeRateLimited),
	string(wire.CodeQuotaExceeded), string(wire.CodeBadRequest), string(wire.CodeTooLarge),
	string(wire.CodeUpstreamUnavailable), string(wire.CodeUpstreamError), string(wire.CodeCanceled),
	string(wire.CodeInternal),
}

// Metrics implements gateway.Observer, lease.Observer and conns.Observer.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	tokens         *prometheus.CounterVec
	firstToken     prometheus.Histogram
	duration       prometheus.Histogram
	activeStreams  prometheus.Gauge
	connections    prometheus.Gauge
	leaseWait      prometheus.Histogram
	leaseRejected  prometheus.Counter
	valkeyErrors   prometheus.Counter
	upstreamErrors *prometheus.CounterVec
	leasesLost     prometheus.Counter
	revoked        prometheus.Counter
	revokeChecks   prometheus.Counter
	refused        *prometheus.CounterVec
	unchecked      prometheus.Counter
}

// New registers every metric, plus the Go runtime and process collectors, in a registry of
// its own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	latency := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Model streams that ended, by outcome: ok or the error code sent to the client.",
		}, []string{"outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tokens_total",
			Help: "Tokens reported by model providers, by kind: prompt or completion.",
		}, []string{"kind"}),
		firstToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "time_to_first_token_seconds",
			Help:    "From a request frame to its first delta frame being queued.",
			Buckets: latency,
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "stream_duration_seconds",
			Help:    "From a request frame to its done or error frame.",
			Buckets: append(latency, 60, 120, 300),
		}),
		activeStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "active_streams", Help: "Model streams running on this node.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections", Help: "Open websocket connections on this node.",
		}),
		leaseWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "lease_wait_seconds",
			Help:    "Time requests waited for a concurrency lease before admission (0 when admitted at once).",
			Buckets: []float64{0, .001, .005, .01, .05, .1, .25, .5, 1, 2, 5},
		}),
		leaseRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "lease_rejections_total",
			Help: "Requests refused with rate_limited after waiting for a lease.",
		}),
		valkeyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "valkey_errors_total", Help: "Failed Valkey calls.",
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "upstream_errors_total",
			Help: "Streams ended by a model provider failure, by code: upstream_unavailable or upstream_error.",
		}, []string{"code"}),
	}
	m.leasesLost = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "leases_lost_total",
		Help: "Leases lost while their stream ran (not confirmed by Valkey in time, or no longer fitting the limit after Valkey lost them); each stopped its stream.",
	})
	m.revoked = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "revoked_connections_total",
		Help: "Websocket connections closed because their account's access was revoked (or moved to a plan this server does not offer).",
	})
	m.revokeChecks = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "revocation_check_errors_total",
		Help: "Denylist reads that failed (Valkey unreachable or slow); each let its token through (fail open).",
	})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "upgrade_refusals_total",
		Help: "Websocket upgrades refused with 429 for a limit, by reason: address (upgrades per client address), user_node (one user's connections on this node), user (one user's connections on all nodes).",
	}, []string{"reason"})
	m.unchecked = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "conn_limit_unchecked_total",
		Help: "Websocket upgrades admitted without the cross-node per-user connection limit, because Valkey was unreachable (the per-node limit still applied).",
	})
	reg.MustRegister(m.revoked, m.revokeChecks, m.refused, m.unchecked)
	for _, r := range []string{gateway.RefusedAddress, gateway.RefusedUserNode, gateway.RefusedUser} {
		m.refused.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.tokens, m.firstToken, m.duration, m.activeStreams, m.connections,
		m.leaseWait, m.leaseRejected, m.valkeyErrors, m.upstreamErrors, m.leasesLost)
	for _, o := range outcomes {
		m.requests.WithLabelValues(o)
	}
	m.tokens.WithLabelValues("prompt")
	m.tokens.WithLabelValues("completion")
	m.upstreamErrors.WithLabelValues(string(wire.CodeUpstreamUnavailable))
	m.upstreamErrors.WithLabelValues(string(wire.CodeUpstreamError))
	return m
}

// WatchReady adds codingplan_lease_degraded: 1 while ready returns an error (Valkey unreachable,
// the outage policy applies), else 0.
func (m *Metrics) WatchReady(ready func() error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "lease_degraded",
		Help: "1 while Valkey is unreachable and the outage policy applies.",
	}, func() float64 {
		if ready() != nil {
			return 1
		}
		return 0
	}))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Connection implements gateway.Observer.
func (m *Metrics) Connection(delta int) { m.connections.Add(float64(delta)) }

// StreamStarted implements gateway.Observer.
func (m *Metrics) StreamStarted() { m.activeStreams.Inc() }

// StreamEnded implements gateway.Observer.
func (m *Metrics) StreamEnded(s gateway.StreamStats) {
	m.activeStreams.Dec()
	outcome := s.Outcome
	if !known(outcome) {
		outcome = string(wire.CodeInternal)
	}
	m.requests.WithLabelValues(outcome).Inc()
	m.tokens.WithLabelValues("prompt").Add(float64(s.Usage.PromptTokens))
	m.tokens.WithLabelValues("completion").Add(float64(s.Usage.CompletionTokens))
	if s.FirstToken > 0 {
		m.firstToken.Observe(s.FirstToken.Seconds())
	}
	m.duration.Observe(s.Duration.Seconds())
	if outcome == string(wire.CodeUpstreamUnavailable) || outcome == string(wire.CodeUpstreamError) {
		m.upstreamErrors.WithLabelValues(outcome).Inc()
	}
}

func known(outcome string) bool {
	for _, o := range outcomes {
		if o == outcome {
			return true
		}
	}
	return false
}

// Revoked implements gateway.Observer.
func (m *Metrics) Revoked() { m.revoked.Inc() }

// RevocationCheckFailed implements gateway.Observer.
func (m *Metrics) RevocationCheckFailed() { m.revokeChecks.Inc() }

// Refused implements gateway.Observer.
func (m *Metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Unchecked implements conns.Observer.
func (m *Metrics) Unchecked() { m.unchecked.Inc() }

// Acquired implements lease.Observer.
func (m *Metrics) Acquired(wait time.Duration) { m.leaseWait.Observe(wait.Seconds()) }

// Rejected implements lease.Observer.
func (m *Metrics) Rejected() { m.leaseRejected.Inc() }

// ValkeyError implements lease.Observer.
func (m *Metrics) ValkeyError() { m.valkeyErrors.Inc() }

// Lost implements lease.Observer.
func (m *Metrics) Lost() { m.leasesLost.Inc() }
