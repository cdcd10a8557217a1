package enclave

// SetMaxAuditRecordLen lowers the cap on the audit records of e's current
// keys and log below proto.MaxAuditRecordLen, so that tests can reach a
// record that does not fit with requests of moderate size (tests only).
func SetMaxAuditRecordLen(e *Enclave, n int) {
	e.v.Load().audit.chain.SetMaxRecordSize(n)
}
