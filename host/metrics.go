package host

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
)

// metrics are the host's Prometheus metrics, on a registry of their own so
// that several servers (tests) do not collide.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	rollbacks *prometheus.CounterVec
	signed    prometheus.Counter // decisions, outcome signed
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nitrosign_http_requests_total",
			Help: "HTTP requests answered, by endpoint and outcome (ok, or the error code).",
		}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nitrosign_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"endpoint"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nitrosign_sign_decisions_total",
			Help: "Sign requests by outcome (signed, or the error code) and refusing policy rule.",
		}, []string{"outcome", "rule"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nitrosign_audit_rollbacks_total",
			Help: "Rollbacks the enclave detected at start, by rule (audit_rollback, checkpoint_rollback, seed_generation_rollback), counted from the boot records persisted. Every key is frozen after one: alert on any increase.",
		}, []string{"rule"}),
	}
	m.signed = m.decisions.WithLabelValues(outcomeSigned, "")
	for _, rule := range audit.RollbackRuleNames {
		m.rollbacks.WithLabelValues(rule) // present at 0, so that an alert on increase() sees the first one
	}
	m.reg.MustRegister(m.requests, m.latency, m.decisions, m.rollbacks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Outcomes of answers that are not errors, besides outcomePending (a 202).
const (
	outcomeOK     = "ok"     // nitrosign_http_requests_total
	outcomeSigned = "signed" // nitrosign_sign_decisions_total
)

// labelOther stands for a code or rule that package refusal does not
// define.
const labelOther = "other"

// outcomeLabel bounds an outcome label to the host's own outcomes and the
// codes package refusal defines, so that no answer of the enclave (which
// the host forwards without trusting) can add series to the metrics: any
// other value is counted as "other".
func outcomeLabel(s string) string {
	if s == outcomeOK || s == outcomeSigned || s == outcomePending || refusal.IsCode(s) {
		return s
	}
	return labelOther
}

// ruleLabel bounds a rule label to "" (no rule) and the rules package
// refusal defines; any other value is counted as "other".
func ruleLabel(s string) string {
	if s == "" || refusal.IsRule(s) {
		return s
	}
	return labelOther
}

// observe records one answered request.
func (m *metrics) observe(endpoint, outcome string, start time.Time) {
	m.requests.WithLabelValues(endpoint, outcomeLabel(outcome)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
}

// observeRecord counts what a persisted audit record tells the operator:
// each rollback rule a boot record names (audit.RollbackRules; a boot
// record lists every rule that fired, so one start may count several).
// The host's audit store calls it for every record it persists; the record
// is the enclave's (only its rules are counted, none from elsewhere), so
// the label values are the fixed rule names.
func (m *metrics) observeRecord(r audit.Record) {
	for _, rule := range audit.RollbackRules(r) {
		m.rollbacks.WithLabelValues(rule).Inc()
	}
}

// endpointMetrics are an endpoint's series, looked up once rather than at
// every request.
type endpointMetrics struct {
	m       *metrics
	name    string
	ok      prometheus.Counter
	latency prometheus.Observer
}

func (m *metrics) endpoint(name string) *endpointMetrics {
	return &endpointMetrics{m: m, name: name, ok: m.requests.WithLabelValues(name, outcomeOK), latency: m.latency.WithLabelValues(name)}
}

// observe records one answered request, as metrics.observe does.
func (e *endpointMetrics) observe(outcome string, start time.Time) {
	if outcome == outcomeOK {
		e.ok.Inc()
	} else {
		e.m.requests.WithLabelValues(e.name, outcomeLabel(outcome)).Inc()
	}
	e.latency.Observe(time.Since(start).Seconds())
}
