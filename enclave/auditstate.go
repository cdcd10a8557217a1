package enclave

import (
	"github.com/nitrosign/nitrosign/audit"
)

// newAuditLogFrom returns an audit log continuing from head.
func newAuditLogFrom(s *audit.Signer, max int, head audit.Head) *auditLog {
	a := newAuditLog(s, max)
	a.chain = audit.NewChain(s, head)
	return a
}

// persistedHead returns the head of the records the host has acknowledged
// as persisted, and whether it is known: it is when nothing is pending
// (everything handed over was acknowledged). Checkpoints carry this head,
// never one the host may not have stored.
func (a *auditLog) persistedHead() (audit.Head, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) != 0 {
		return audit.Head{}, false
	}
	return a.chain.Head(), true
}
