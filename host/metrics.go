package host

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
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
	// decisionLatency is the time to a sign request's decision, by
	// outcome.
	decisionLatency *prometheus.HistogramVec
	// enclave is the enclave's state, collected at each scrape.
	enclave *enclaveCollector
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
	m.decisionLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nitrosign_sign_decision_duration_seconds",
		Help:    "Time from a sign request's arrival to its decision (signed, pending_approval, or the error code), the enclave's decision, the vsock round trip and the audit record's confirmation included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"outcome"})
	m.signed = m.decisions.WithLabelValues(outcomeSigned, "")
	m.enclave = newEnclaveCollector()
	for _, rule := range audit.RollbackRuleNames {
		m.rollbacks.WithLabelValues(rule) // present at 0, so that an alert on increase() sees the first one
	}
	m.reg.MustRegister(m.requests, m.latency, m.decisions, m.rollbacks, m.decisionLatency, m.enclave,
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

// decided records a sign request's decision: its outcome (signed,
// pending, or the error code), the refusing rule, and how long the
// request took from its arrival to the decision (the enclave's decision,
// the vsock round trip and the audit confirmation included).
func (m *metrics) decided(outcome, rule string, start time.Time) {
	outcome = outcomeLabel(outcome)
	if outcome == outcomeSigned && rule == "" {
		m.signed.Inc()
	} else {
		m.decisions.WithLabelValues(outcome, ruleLabel(rule)).Inc()
	}
	m.decisionLatency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

// Enclave states, as nitrosign_enclave_state names them: the states the
// enclave reports (proto.HealthResponse.State), and stateUnavailable when
// it does not answer (not running, or restarting).
const (
	stateLocked      = "locked"
	stateReady       = "ready"
	stateEphemeral   = "ephemeral"
	stateUnavailable = "unavailable"
)

var enclaveStates = [...]string{stateLocked, stateReady, stateEphemeral, stateUnavailable}

// enclaveHealthTimeout bounds the health request a scrape makes.
const enclaveHealthTimeout = 2 * time.Second

// enclaveCollector exports the enclave's state at each scrape, from one
// health request (proto.HealthResponse), and what the host knows beside
// it: the audit backlog and the expiry of the credentials it pushed. The values
// are the enclave's own; they are collected on scrape rather than polled,
// so that they are never older than the scrape.
type enclaveCollector struct {
	health    func(ctx context.Context) (*proto.HealthResponse, error)
	persisted func() (uint64, bool) // the last audit record on disk; false without an audit store
	now       func() time.Time
	// credsExpire is when the credentials last pushed to the enclave
	// expire (Unix ns; 0: none pushed, or they have no expiry).
	credsExpire atomic.Int64

	state, keys, frozen, approvals, policyVersion, policyPending, policyDue,
	started, auditSeq, auditBacklog, kmsCalls, kmsLatency, credsExpiry *prometheus.Desc
}

func newEnclaveCollector() *enclaveCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &enclaveCollector{
		now:           time.Now,
		state:         d("nitrosign_enclave_state", "1 for the enclave's state (locked: waiting to be unsealed; ready: unsealed, signing; ephemeral: an unsealed test seed; unavailable: not answering, not running or restarting), 0 for the others.", "state"),
		keys:          d("nitrosign_enclave_keys", "Signing keys the enclave holds."),
		frozen:        d("nitrosign_enclave_frozen_keys", "Signing keys a freeze holds (all of them under a freeze of every key); only an admin quorum unfreezes."),
		approvals:     d("nitrosign_enclave_pending_approvals", "Sign requests held for approvals."),
		policyVersion: d("nitrosign_policy_version", "Version of the policy in force."),
		policyPending: d("nitrosign_policy_pending_changes", "Policy changes waiting for their time lock."),
		policyDue:     d("nitrosign_policy_pending_effective_timestamp_seconds", "When the first policy change waiting for its time lock comes into force (Unix seconds); absent when none waits."),
		started:       d("nitrosign_enclave_start_timestamp_seconds", "When the enclave process started (Unix seconds): a change is a restart."),
		auditSeq:      d("nitrosign_audit_enclave_seq", "Sequence number of the last audit record the enclave appended."),
		auditBacklog:  d("nitrosign_audit_backlog", "Audit records the enclave appended that are not on disk yet (its last record's seq less the last persisted): the enclave stops deciding when too many wait."),
		kmsCalls:      d("nitrosign_kms_requests_total", "The enclave's KMS calls since it started, by operation (decrypt, generate_data_key) and outcome (ok, access_denied: the key policy or the attestation refused, error: any other failure).", "op", "outcome"),
		kmsLatency:    d("nitrosign_kms_request_duration_seconds", "Duration of the enclave's KMS calls since it started, by operation, as the enclave measured them (its TLS session to KMS ends inside it).", "op"),
		credsExpiry:   d("nitrosign_credentials_expiry_seconds", "Seconds until the AWS credentials last pushed to the enclave expire (negative once they have; absent before the first push): the enclave's KMS calls fail after."),
	}
}

func (c *enclaveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.keys, c.frozen, c.approvals, c.policyVersion, c.policyPending, c.policyDue,
		c.started, c.auditSeq, c.auditBacklog, c.kmsCalls, c.kmsLatency, c.credsExpiry} {
		ch <- d
	}
}

func (c *enclaveCollector) Collect(ch chan<- prometheus.Metric) {
	if c.health == nil {
		return // not a server's (tests)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if ns := c.credsExpire.Load(); ns != 0 {
		gauge(c.credsExpiry, time.Unix(0, ns).Sub(c.now()).Seconds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), enclaveHealthTimeout)
	defer cancel()
	h, err := c.health(ctx)
	state := stateUnavailable
	if err == nil && slices.Contains(enclaveStates[:], h.State) {
		state = h.State
	}
	for _, s := range enclaveStates {
		gauge(c.state, b2f(s == state), s)
	}
	if state == stateUnavailable {
		return
	}
	gauge(c.keys, float64(h.Keys))
	gauge(c.frozen, float64(h.FrozenKeys))
	gauge(c.approvals, float64(h.PendingApprovals))
	gauge(c.policyVersion, float64(h.PolicyVersion))
	gauge(c.policyPending, float64(h.PendingPolicies))
	if h.PendingPolicies > 0 {
		gauge(c.policyDue, float64(h.PolicyDueUnixMS)/1000)
	}
	gauge(c.started, float64(h.StartedUnixMS)/1000)
	gauge(c.auditSeq, float64(h.AuditSeq))
	if c.persisted != nil {
		if p, ok := c.persisted(); ok {
			gauge(c.auditBacklog, float64(h.AuditSeq-min(p, h.AuditSeq)))
		}
	}
	// Every operation, from 0, so that rate() and increase() see the
	// first call.
	for _, op := range proto.KMSOps {
		var k proto.KMSStats
		if i := slices.IndexFunc(h.KMS, func(k proto.KMSStats) bool { return k.Op == op }); i >= 0 {
			k = h.KMS[i]
		}
		counter := func(v uint64, outcome string) {
			ch <- prometheus.MustNewConstMetric(c.kmsCalls, prometheus.CounterValue, float64(v), op, outcome)
		}
		counter(k.Calls-k.Errors, "ok")
		counter(k.AccessDenied, "access_denied")
		counter(k.Errors-k.AccessDenied, "error")
		buckets := make(map[float64]uint64, len(proto.KMSLatencyBoundsMS))
		var cum uint64
		for i, bound := range proto.KMSLatencyBoundsMS {
			if i < len(k.Buckets) {
				cum += k.Buckets[i]
			}
			buckets[float64(bound)/1000] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.kmsLatency, k.Calls, float64(k.SumMicros)/1e6, buckets, op)
	}
}

// exposeEnclave points the enclave collector at s: its pool, its audit
// store and its credential refresher, those it has.
func (s *Server) exposeEnclave() {
	c := s.metrics.enclave
	c.health = func(ctx context.Context) (*proto.HealthResponse, error) {
		resp, err := s.pool.callTimeout(ctx, &proto.HealthRequest{}, enclaveHealthTimeout)
		if err != nil {
			return nil, err
		}
		h, ok := resp.(*proto.HealthResponse)
		if !ok {
			return nil, proto.ErrUnexpectedResponse
		}
		return h, nil
	}
	if s.audit != nil {
		c.persisted = s.audit.persistedSeq
	}
}

// pushed records that credentials expiring at exp were pushed to the
// enclave (by the unsealer or the credential refresher).
func (c *enclaveCollector) pushed(exp time.Time) {
	if exp.IsZero() {
		c.credsExpire.Store(0)
		return
	}
	c.credsExpire.Store(exp.UnixNano())
}
