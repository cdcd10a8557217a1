package host

// SetAuditWriteFailure makes the server's audit log writes fail with what
// fail returns (nil: succeed), as a full or broken disk would.
func SetAuditWriteFailure(s *Server, fail func() error) {
	s.audit.mu.Lock()
	s.audit.failWrite = fail
	s.audit.mu.Unlock()
}

// CheckTLSFiles runs the TLS files' change check once, as Serve's timer
// does every Config.TLSPoll.
func CheckTLSFiles(s *Server) { s.certs.checkFiles() }
