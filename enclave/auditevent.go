package enclave

import (
	"errors"
	"fmt"
	"time"

	"github.com/nitrosign/nitrosign/audit"
)

// Event records.
//
// A decision record is what a request answer carries: the backlog cap
// (auditLog.max) bounds how many of them the host may leave unacknowledged,
// and beyond it requests are refused (503) before they are decided. An
// event record is the record of a state change: a freeze or an unfreeze,
// an approval request expiring, an approver's decision, an admin command,
// a time-locked policy change coming into force. The rule for events is
// "record first, then apply": a change whose record cannot be appended
// does not happen (the caller answers 503 and says why), with one
// exception, the freeze, which is enforced at once (the safe direction)
// and recorded as soon as the log has room (Enclave.tick).
//
// Events may therefore not be crowded out by decisions: they may use a
// reserve of eventReserve(max) records beyond the decisions' cap. While
// decisions are refused for backlog, a freeze (triggered by the refusal
// that filled the backlog), an expiry, an unfreeze or a policy change
// still gets its record. Only when even the reserve is full do events wait
// too. The reserve bounds the memory of the unacknowledged backlog as the
// cap does: at most max + eventReserve(max) records.

// Sizes of the event reserve: a quarter of the decisions' cap, at least
// minEventReserve. With the default cap of 4096 that is 1024 records, as
// many as requests may wait for approvals (MaxPending), so that all of
// them can expire at once and be recorded.
const (
	minEventReserve     = 64
	eventReserveDivisor = 4
)

// eventReserve is how many records beyond the decisions' cap event
// records may use.
func eventReserve(decisions int) int {
	return max(minEventReserve, decisions/eventReserveDivisor)
}

// errEventBacklog refuses an event record while even the reserve for
// events is full. Callers that apply a change only with its record wrap it
// in their 503, saying what did not happen.
var errEventBacklog = errors.New("too many audit records are not yet persisted by the host, even in the reserve kept for events; the change cannot be recorded, so it is not made (retry once the host has caught up)")

// appendEvent appends an event record: like append, but it may use the
// event reserve beyond the decisions' cap. On error there is no record and
// the caller must not make the change (except a freeze, which is enforced
// and recorded later).
func (a *auditLog) appendEvent(r audit.Record) ([]byte, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.chain.WaitLocked() // a record being signed counts in the backlog
	if a.backlog() >= a.max+eventReserve(a.max) {
		return nil, 0, errEventBacklog
	}
	return a.appendLocked(r)
}

// tick does the enclave's time-driven and retry work at now, in one place:
// handle calls it once per request, before the handler of every request
// that reads or changes state that time changes, and after the audit
// poll's acknowledgement (the moment room returns in the log); see routes.
// No handler calls it, nor any of its steps, itself:
//
//  1. freezes in force whose record could not be appended yet are
//     recorded (first: no other event is recorded before them, so an
//     unfreeze always finds the freeze it names recorded);
//  2. approval requests past their expiry are expired, each with its
//     record (and one whose record cannot be appended yet stays unusable
//     and keeps its limit reservation until the record is made);
//  3. time-locked policy changes whose lock has ended come into force,
//     each with its record, in version order (and the requests waiting
//     for approvals are decided again under each, redecidePending);
//  4. requests waiting for approvals that could not yet be decided under
//     the policy in force are decided again.
//
// Each step stops at the first record that cannot be appended and is
// tried again at the next tick. The common case (nothing owed, nothing
// due) costs two atomic loads and the governance lock.
func (e *Enclave) tick(al *auditLog, now time.Time) {
	if e.guard.frozen.Owed() {
		e.guard.recordFreezes(al, now)
	}
	if e.approvals.dueAt(now) {
		e.expire(al, now)
	}
	if e.gov.dueAt(now) {
		e.applyDue(al, now)
	}
	if e.approvals.isOwed() {
		e.redecidePending(al, now)
	}
}

// eventRefusal is the 503 message of a change not made because its record
// could not be appended.
func eventRefusal(what string, err error) string {
	return fmt.Sprintf("%s: not done, because its audit record cannot be appended (%v)", what, err)
}

// msTime formats a Unix millisecond time for summaries.
func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
