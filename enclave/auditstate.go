package enclave

import (
	"github.com/nitrosign/nitrosign/audit"
)

// newAuditLogFrom returns an audit log continuing from head.
func newAuditLogFrom(s *audit.Signer, max int, head audit.Head) *auditLog {
	a := newAuditLog(s, max)
	a.chain = newChain(s, head)
	return a
}

// persistedHead returns the head of the records the host has acknowledged
// as persisted, and whether it is known: the chain's head when nothing is
// pending, else the last acknowledged record's (a log continued from a
// restored head counts that head as persisted). Checkpoints carry this
// head, never one the host may not have stored.
func (a *auditLog) persistedHead() (audit.Head, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return a.chain.Head(), true
	}
	if a.acked.Seq != 0 && a.acked.Seq+1 == a.first {
		return a.acked, true
	}
	return audit.Head{}, false
}
