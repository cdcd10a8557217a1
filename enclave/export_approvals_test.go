package enclave

// ApprovalStatus returns the status of approval id ("" when none is held),
// without settling or waiting for the host (tests only).
func ApprovalStatus(e *Enclave, id string) string {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	if p, ok := e.approvals.m[id]; ok {
		return p.status
	}
	return ""
}

// TrackerInForce returns the limit tracker of the rules in force, to
// compare (tests only).
func TrackerInForce(e *Enclave) any { return e.guard.inForce().tracker }
