package host

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nitrosign/nitrosign/audit"
)

// auditMetrics are the audit store's metrics: whether records are being
// persisted, and why not.
type auditMetrics struct {
	// failing is 1 while writing fails (retried), broken 1 while the
	// enclave's records cannot continue the log on disk.
	failing, broken prometheus.Gauge
	writeErrors     prometheus.Counter
	persisted       prometheus.Gauge
	// record, when set, is told of each record persisted (kind, rule and
	// decision only): the rollback counter (metrics.observeRecord).
	record func(audit.Record)
}

func newAuditMetrics(reg prometheus.Registerer) *auditMetrics {
	m := &auditMetrics{
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nitrosign_audit_persist_failing",
			Help: "1 while writing the audit log fails (the host retries, and the enclave decides nothing meanwhile), else 0.",
		}),
		broken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nitrosign_audit_log_broken",
			Help: "1 while the enclave's audit records do not continue the log on disk (nothing is written until the enclave restarts), else 0.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nitrosign_audit_write_errors_total",
			Help: "Failed writes (or fsyncs) of audit log batches; each is cut off and retried.",
		}),
		persisted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nitrosign_audit_persisted_seq",
			Help: "Sequence number of the last audit record written and fsynced.",
		}),
	}
	reg.MustRegister(m.failing, m.broken, m.writeErrors, m.persisted)
	return m
}

// setState sets the failing and broken gauges from the store's reasons.
func (m *auditMetrics) setState(failing, broken string) {
	m.failing.Set(b2f(failing != ""))
	m.broken.Set(b2f(broken != ""))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// persistedSeq returns the sequence number of the last audit record on
// disk, false before the store has opened a log.
func (s *auditStore) persistedSeq() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == 0 {
		return 0, false
	}
	return s.next - 1, true
}
