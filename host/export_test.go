package host

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
)

// SetAuditWriteFailure makes the server's audit log writes fail with what
// fail returns (nil: succeed), as a full or broken disk would.
func SetAuditWriteFailure(s *Server, fail func() error) {
	s.audit.mu.Lock()
	s.audit.failWrite = fail
	s.audit.mu.Unlock()
}

// DescribedMetrics returns the names of the metrics s's registry
// describes: every metric it may serve, whether it has a series now or
// not (the audit backlog has none before the audit log is opened).
func DescribedMetrics(s *Server) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		s.metrics.reg.Describe(ch)
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// CheckTLSFiles runs the TLS files' change check once, as Serve's timer
// does every Config.TLSPoll.
func CheckTLSFiles(s *Server) { s.certs.checkFiles() }
