package host

// Crash points of a seal of the live audit segment.
const (
	AuditCrashWritten = crashWritten
	AuditCrashRenamed = crashRenamed
	AuditCrashCreated = crashCreated
)

// SetAuditCrash makes the server's audit store call crash at each step of
// sealing a segment; an error stops the seal there, as a crash would.
func SetAuditCrash(s *Server, crash func(point string) error) {
	s.audit.mu.Lock()
	s.audit.crash = crash
	s.audit.mu.Unlock()
}
