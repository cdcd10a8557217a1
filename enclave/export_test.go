package enclave

import (
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// Hooks for the tests of package enclave_test (compiled into tests only).

// EventReserve is eventReserve: how many records beyond the decisions'
// backlog cap max event records may use.
func EventReserve(max int) int { return eventReserve(max) }

// FillAuditLog appends filler event records until even the event reserve
// is full, and returns how many it appended: the state of an enclave whose
// host persists nothing for a long while.
func FillAuditLog(e *Enclave) int {
	v := e.v.Load()
	n := 0
	for {
		_, _, err := v.audit.appendEvent(audit.Record{TimeMS: nowMS(e.now), Kind: "test_filler", Decision: "filler", Summary: "a test fills the log"})
		if err != nil {
			return n
		}
		n++
	}
}

// FreezeKey freezes key as its refusals would under a freeze rule of
// scope key: a freeze can be triggered only by a refusal, whose record
// leaves room for the freeze's in the reserve, so a freeze the log cannot
// record is reached here directly.
func FreezeKey(e *Enclave, key, reason string) {
	e.guard.freeze(e.v.Load().audit, e.guard.inForce(), key, key, reason, e.now())
}

// SetMaxAuditRecordLen lowers the cap on the audit records of e's current
// keys and log below proto.MaxAuditRecordLen, so that tests can reach a
// record that does not fit with requests of moderate size (tests only).
func SetMaxAuditRecordLen(e *Enclave, n int) {
	e.v.Load().audit.chain.SetMaxRecordSize(n)
}

// CheckpointWanted reports whether an admin command's answer waits for the
// host to store a checkpoint that holds it: the test hosts store
// checkpoints only then, so that tests that play the host's checkpoint
// polls themselves see the generations they expect.
func CheckpointWanted(e *Enclave) bool { return e.keyService != nil && e.gov.spent.waiting() }

// SetMaxSpentCommands lowers MaxSpentCommands for e (tests).
func SetMaxSpentCommands(e *Enclave, n int) {
	e.gov.spent.mu.Lock()
	e.gov.spent.max = n
	e.gov.spent.mu.Unlock()
}

// SpentCommands returns how many admin commands e remembers now (those
// whose validity has ended are forgotten first).
func SpentCommands(e *Enclave) int {
	l, _ := e.gov.spent.snapshot(e.now())
	return len(l)
}

// TickOf says when the time-driven transitions run for requests of type
// typ: "before" or "after" its handler, "never", or "" when the enclave
// has no route for it (tests only).
func TickOf(typ proto.Type) string {
	r, ok := routes[typ]
	if !ok {
		return ""
	}
	switch r.tick {
	case tickBefore:
		return "before"
	case tickAfter:
		return "after"
	case tickNever:
		return "never"
	}
	return "unset"
}

// OweFreeze puts in force a freeze of key whose audit record is owed, as
// a checkpoint sealed while its record could not be appended restores it
// (tests only).
func OweFreeze(e *Enclave, key string) {
	e.guard.frozen.Set(append(e.guard.frozen.List(), stateful.FreezeInfo{Key: key, Reason: "a test", Because: key, SinceMS: e.now().UnixMilli()}))
}

// SetBeforeSignatureRecord makes f run just before each sign request's
// signature record is appended. Set it before e answers any request.
func SetBeforeSignatureRecord(e *Enclave, f func()) { e.beforeSignatureRecord = f }

// Decides reports whether requests of type typ count as decisions in
// progress, which polls wait for before closing the open batch (tests
// only).
func Decides(typ proto.Type) bool { return routes[typ].decides }

// DecisionsInProgress returns how many requests of e may still append a
// decision record to the open batch (tests only).
func DecisionsInProgress(e *Enclave) int64 { return e.v.Load().audit.deciding.Load() }
