package enclave

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// DefaultAuditAckTimeout is how long an answer waits for the host to
// acknowledge its record as persisted before it is withheld (503), and how
// long the oldest record may stay unacknowledged before the enclave stops
// deciding new requests.
const DefaultAuditAckTimeout = 5 * time.Second

// A poll of the host closes the open batch of decision records with a
// signed tree head as soon as no decision is in progress that could join
// it (every request that may decide has appended its record, or is done),
// or once BatchCloseRecords records wait for one, or the first of them
// has waited BatchCloseDelay; until then it waits for more. Under load,
// when decisions are always in progress, one Ed25519 signature then
// covers up to BatchCloseRecords decisions; at low load a decision's
// answer waits for no one, and never more than BatchCloseDelay longer
// than the host's fsync. (A batch holds at most audit.MaxBatch records:
// the chain closes a full one itself.)
const (
	BatchCloseRecords = 32
	BatchCloseDelay   = time.Millisecond
)

// Why the enclave refuses to decide: each is answered 503, and the request
// changes nothing.
var (
	// errAuditBacklog: the host has not persisted enough of the records it
	// was given.
	errAuditBacklog = errors.New("too many audit records are not yet persisted by the host; refusing to decide until it catches up")
	// errAuditUnacknowledged: an answer's record was not acknowledged in
	// time; the answer (a signature, for instance) is withheld.
	errAuditUnacknowledged = errors.New("the host did not acknowledge the decision's audit record as persisted in time; the answer is withheld")
)

// auditLog is the enclave's side of the audit log: the chain, and the
// records handed over but not yet acknowledged, kept so that a host that
// lost them (a crash between receiving and persisting) can fetch them
// again.
//
// The host long-polls for records (proto.AuditRequest with WaitMS),
// persists them, and acknowledges them with the hash of the exact line it
// wrote. An answer that a record belongs to (a signature, a refusal, a
// pending approval, an admin command's result) is released only once that
// record is acknowledged together with a signature that covers it (the
// tree head of its batch): no signature leaves without its record, and
// the record's authentication, on the host's disk, and a host that never
// acknowledges obtains none.
//
// Decision records are not signed one by one: records are appended to the
// open batch, and a poll of the host closes it (audit.Chain.CloseBatch)
// with one signed tree head over all of them once it is due (awaitBatch:
// no decision in progress could join it, or BatchCloseRecords records, or
// its first has waited BatchCloseDelay), then hands over the records up
// to that head and no further. At low load a batch is the records of the
// decisions under way when the poll came; under load it is everything
// appended while the host wrote the previous batch, and at least
// BatchCloseRecords records unless the delay ran out or decisions paused
// (at most audit.MaxBatch records: the chain closes a full batch itself). The chain shares a.mu, and releases it while
// the audit key signs (events and tree heads), so the signature is made
// under no lock: appends wait for it, acknowledgements and canDecide do
// not.
type auditLog struct {
	mu      sync.Mutex
	chain   *audit.Chain // guarded by mu (ChainOptions.Lock)
	key     []byte
	pending [][]byte    // unacknowledged records, in sequence order
	signed  []bool      // whether each pending record is signed (a tree head or an event): a commitment to it and every record before it
	isHead  []bool      // whether each pending record is a tree head (heads counts them)
	hashes  [][32]byte  // each pending record's hash (the chain's head after it), which an acknowledgement must name
	since   []time.Time // when each pending record was appended
	first   uint64      // seq of pending[0]
	// heads counts the tree heads in pending. The backlog caps count the
	// other records (backlog): a tree head is the enclave's own, one per
	// batch of at least one record, so the memory held stays within twice
	// the caps, and a head never takes the room an event was promised.
	heads int
	max   int
	now   func() time.Time
	// stall is how long the oldest record may stay unacknowledged before
	// decisions stop.
	stall time.Duration

	// Of the last record appended: what a rotate record carries over.
	lastTimeMS    int64
	policyVersion uint64

	// acked is the head of the records the host acknowledged persisting:
	// at start, the head the log continues from (it came from the host's
	// disk).
	acked audit.Head
	// ackedSeq is the last signed record (tree head or event) the host
	// acknowledged: every record up to it is persisted and covered by a
	// signature persisted with it. ackCh is closed, and replaced, whenever
	// it advances: answers waiting for their acknowledgement read both
	// without a.mu.
	ackedSeq atomic.Uint64
	ackCh    atomic.Pointer[chan struct{}]
	// appendCh is closed, and replaced, when a record is appended that a
	// poll of the host waits for (appendWaited): a signed record, or the
	// wantTail-th record after the last signed one. One channel per wake,
	// not one per record.
	appendCh     chan struct{}
	appendWaited bool
	wantTail     int
	// tail is how many pending records follow the last signed one: the
	// records of the open batch that no signature covers yet, which a poll
	// hands over only once a tree head closes their batch.
	tail int
	// A poll closes the open batch once no decision is in progress
	// (deciding is 0), or tail reaches batchRecords, or the first record
	// of the tail has waited batchDelay (see awaitBatch).
	batchRecords int
	batchDelay   time.Duration
	// deciding counts the requests that may append a decision record and
	// have not finished (beginDecision, endDecision): the records that
	// may still join the open batch.
	deciding atomic.Int64
	// failing is the host's latest report that it cannot persist.
	failing string

	// checkpoint is stamped on every record appended (audit.Record's
	// Checkpoint): the newest checkpoint generation the host acknowledged
	// storing (see noteCheckpoint in rollback.go).
	checkpoint atomic.Uint64
	// unacknowledged, when set, is stamped on every record appended
	// (audit.Record's Unacknowledged): the transactions reserved since the
	// limits snapshot of that checkpoint. It is read at append time, under
	// the tracker's lock, so a record counts every reservation made before
	// it (each decision reserves before it appends), whatever the order in
	// which concurrent decisions append. Set once, before the log is used.
	unacknowledged func() uint64
}

func newAuditLog(s *audit.Signer, max int) *auditLog {
	return newAuditLogFrom(s, max, audit.Head{})
}

// newAuditLogFrom returns an audit log continuing from head, which the host
// holds on disk (so it counts as acknowledged).
func newAuditLogFrom(s *audit.Signer, max int, head audit.Head) *auditLog {
	a := &auditLog{
		key: s.PublicKey(), max: max, now: time.Now,
		stall: DefaultAuditAckTimeout, acked: head,
		appendCh:     make(chan struct{}),
		batchRecords: BatchCloseRecords, batchDelay: BatchCloseDelay,
	}
	a.chain = newChain(s, head, &a.mu, a.appended)
	a.ackedSeq.Store(head.Seq)
	ch := make(chan struct{})
	a.ackCh.Store(&ch)
	return a
}

// canDecide says why a new decision must not be made now, or nil: the
// backlog of unacknowledged records is at its cap, the host reported that
// it cannot persist, or the oldest record has waited for its
// acknowledgement longer than the stall limit (the host stopped
// acknowledging). Deciding then would only pile up records, and
// reservations, that cannot be released.
func (a *auditLog) canDecide() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.backlog() >= a.max:
		return errAuditBacklog
	case a.failing != "":
		return fmt.Errorf("the host reports that it cannot persist audit records (%s); refusing to decide until it can", a.failing)
	case len(a.since) > 0 && time.Since(a.since[0]) > a.stall:
		return fmt.Errorf("the host has not acknowledged audit record %d for %s; refusing to decide until it does", a.first, time.Since(a.since[0]).Truncate(time.Millisecond))
	}
	return nil
}

// append adds a decision record (signed by the tree head of its batch)
// and keeps it until acknowledged. It fails closed: on error there is no
// record, and the caller must not answer with a signature.
func (a *auditLog) append(r audit.Record) ([]byte, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.chain.WaitLocked() // a record being signed counts in the backlog
	if a.backlog() >= a.max {
		return nil, 0, errAuditBacklog
	}
	return a.appendLocked(r)
}

// appendLocked is append, with a.mu held and the backlog checked. A
// decision record is appended unsigned (its batch's tree head signs it);
// an event record is signed, with a.mu released meanwhile.
func (a *auditLog) appendLocked(r audit.Record) ([]byte, uint64, error) {
	a.stamp(&r)
	rec, line, err := a.chain.AppendLocked(r, false)
	if err != nil {
		return nil, 0, fmt.Errorf("enclave: audit: %w", err)
	}
	return line, rec.Seq, nil
}

// stamp sets what every record carries of the enclave's state: the
// checkpoint and the count of reservations since it. a.mu is held.
func (a *auditLog) stamp(r *audit.Record) {
	// The count before the checkpoint: checkpointRequest raises the
	// checkpoint before the tracker counts from it, so a count since
	// generation G is stamped with G or a newer one (whose count it
	// exceeds), never with an older one, whose count it could fall short of.
	if a.unacknowledged != nil {
		r.Unacknowledged = a.unacknowledged()
	}
	r.Checkpoint = a.checkpoint.Load()
}

// appended keeps a record the chain appended (tree heads included) until
// the host acknowledges it. The chain calls it with a.mu held, in
// sequence order.
func (a *auditLog) appended(rec audit.Record, line []byte) {
	if len(a.pending) == 0 {
		a.first = rec.Seq
	}
	a.pending = append(a.pending, line)
	a.signed = append(a.signed, rec.Signed())
	// The chain made rec its head before it called here: its hash is the
	// line's, computed once for the chain and kept for the acknowledgement.
	a.hashes = append(a.hashes, a.chain.HeadLocked().Hash)
	head := rec.Kind == audit.KindTreeHead
	a.isHead = append(a.isHead, head)
	if head {
		a.heads++
	}
	a.since = append(a.since, time.Now()) // real time: the stall limit and the batch delay are operational timeouts
	a.lastTimeMS, a.policyVersion = max(a.lastTimeMS, rec.TimeMS), rec.PolicyVersion
	if rec.Signed() {
		a.tail = 0
	} else {
		a.tail++
	}
	if a.appendWaited && (rec.Signed() || a.tail >= a.wantTail) {
		close(a.appendCh)
		a.appendCh = make(chan struct{})
		a.appendWaited = false
	}
}

// beginDecision notes a request that may append a decision record, until
// endDecision: while any is in progress, a poll waits (within the batch's
// size and delay) for its record to join the open batch rather than sign
// a tree head without it.
func (a *auditLog) beginDecision() { a.deciding.Add(1) }

// endDecision notes the end of a request of beginDecision (its record
// appended, or none to be). The last one in progress wakes the poll
// waiting for the open batch, which closes it: nobody else will join.
// Only that one takes a.mu, so under load (decisions always in progress)
// requests end without it.
func (a *auditLog) endDecision() {
	if a.deciding.Add(-1) != 0 {
		return
	}
	a.mu.Lock()
	if a.appendWaited && a.tail > 0 {
		close(a.appendCh)
		a.appendCh = make(chan struct{})
		a.appendWaited = false
	}
	a.mu.Unlock()
}

// waitAppend asks appended to close appendCh at the next signed record,
// or once tail records follow the last signed one. Of the polls waiting,
// the one that wants the fewest records sets the mark (each checks again
// when it wakes). a.mu is held.
func (a *auditLog) waitAppend(tail int) {
	if !a.appendWaited || tail < a.wantTail {
		a.wantTail = tail
	}
	a.appendWaited = true
}

// backlog is the number of unacknowledged records but tree heads, which
// the caps bound. a.mu is held.
func (a *auditLog) backlog() int { return len(a.pending) - a.heads }

// closeBatch closes the open batch with a signed tree head, if it holds
// records. a.mu is held (and released while the head is signed). A head
// that cannot be made (a destroyed signer at shutdown) leaves the batch
// open: its records are not handed over, and their answers are not
// released.
func (a *auditLog) closeBatch() {
	tpl := audit.Record{TimeMS: max(nowMS(a.now), a.lastTimeMS), PolicyVersion: a.policyVersion}
	a.stamp(&tpl)
	_, _, _, _ = a.chain.CloseBatchLocked(tpl)
}

// awaitAck waits until the host has acknowledged record seq as persisted,
// together with a signature that covers it (the tree head of its batch, or
// a later signed record), for at most timeout.
//
// Every answer waits here, so the timer comes from a pool rather than
// being made per answer. Since Go 1.23 a stopped timer's channel holds no
// stale value (a Reset timer fires only for the new duration), so a timer
// put back stopped is as good as a new one.
func (a *auditLog) awaitAck(ctx context.Context, seq uint64, timeout time.Duration) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			waitTimers.Put(timer)
		}
	}()
	for {
		ch := *a.ackCh.Load() // before the seq: an advance after it closes ch
		if a.ackedSeq.Load() >= seq {
			return nil
		}
		if timer == nil {
			timer = waitTimers.Get().(*time.Timer)
			timer.Reset(timeout)
		}
		select {
		case <-ch:
		case <-timer.C:
			return errAuditUnacknowledged
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", errAuditUnacknowledged, ctx.Err())
		}
	}
}

// waitTimers are the timers of awaitAck and of the host's polls, stopped.
var waitTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// rotate appends the rotate record the host asked for: the signed last
// record of the host's current log segment. Like any record it is kept
// until acknowledged, so a host that crashes before persisting it fetches
// it again (and then closes the segment). It is refused, without error,
// while the backlog is full: the host retries later. a.mu is held.
func (a *auditLog) rotate() []byte {
	a.chain.WaitLocked()
	if a.backlog() >= a.max {
		return nil
	}
	next := a.chain.HeadLocked().Seq + 1
	line, _, err := a.appendLocked(audit.Record{
		TimeMS:        max(nowMS(a.now), a.lastTimeMS),
		Kind:          audit.KindRotate,
		Decision:      "rotated",
		Summary:       fmt.Sprintf("the host rotated the audit log: this segment ends with record %d, the next one starts with record %d", next, next+1),
		PolicyVersion: a.policyVersion,
	})
	if err != nil {
		return nil
	}
	return line
}

// awaitBatch readies what a poll of the host from req.From hands over: it
// waits (up to req.WaitMS) until there is something to hand over, and
// closes the open batch once it is due. a.mu is held, and released while
// it waits and while the tree head is signed.
//
// A batch is due when it holds records after the last signed one and no
// decision is in progress that could add one (beginDecision), or it holds
// batchCloseRecords of them, or the first of them has waited
// batchCloseDelay, or the host does not wait (WaitMS 0: it asked for what
// there is now), or its wait is over. Until then the poll waits, so that a
// host that polls again at once (an fsync faster than the requests) does
// not make the enclave sign one tree head per record or two while more are
// being decided: under load a batch holds what arrives while the requests
// in progress append theirs, up to batchCloseRecords or batchCloseDelay;
// at low load a record waits for its tree head only for the decisions
// already under way (the host's poll is already waiting for it). Signed
// records the host has not received (an event, a rotate record, a full
// batch the chain closed itself, or records a host fetches again) are
// handed over at once, the open batch closed with them, as before: events
// do not wait.
func (a *auditLog) awaitBatch(ctx context.Context, req *proto.AuditRequest) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			waitTimers.Put(timer)
		}
	}()
	var deadline time.Time
	if req.WaitMS > 0 {
		deadline = time.Now().Add(time.Duration(min(req.WaitMS, proto.MaxAuditWaitMS)) * time.Millisecond)
	}
	for {
		a.chain.WaitLocked() // a record being signed is not in pending yet
		tail := a.tail
		signedEnd := a.first + uint64(len(a.pending)-tail) // after the last signed record
		now := time.Now()
		switch {
		case len(a.pending) > tail && req.From < signedEnd,
			tail > 0 && a.deciding.Load() == 0,
			tail >= a.batchRecords,
			tail > 0 && now.Sub(a.since[len(a.since)-tail]) >= a.batchDelay,
			req.WaitMS == 0 || ctx.Err() != nil || !now.Before(deadline):
			a.closeBatch()
			return
		}
		// Wake at the next append that can make the batch due (the first
		// record after the last signed one starts its clock; after that a
		// signed record, or the batch's size), when the last decision in
		// progress ends (endDecision), at the batch's delay, or at the end
		// of the host's wait.
		wait := deadline.Sub(now)
		want := 1
		if tail > 0 {
			wait = min(wait, a.batchDelay-now.Sub(a.since[len(a.since)-tail]))
			want = a.batchRecords
		}
		a.waitAppend(want)
		ch := a.appendCh
		a.mu.Unlock()
		if timer == nil {
			timer = waitTimers.Get().(*time.Timer)
		}
		timer.Reset(wait)
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		a.mu.Lock()
	}
}

// handle applies the host's acknowledgement and report, appends a rotate
// record if req.Rotate asks for one, and returns the records from req.From
// on, waiting for them up to req.WaitMS. An acknowledgement beyond the
// head, or whose hash is not the enclave's record's, is refused and
// changes nothing: the host's log is not this enclave's.
func (a *auditLog) handle(ctx context.Context, req *proto.AuditRequest) (*proto.AuditResponse, error) {
	a.mu.Lock()
	if err := a.ackLocked(req.Ack, req.AckHash); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	a.failing = req.Failing
	var rotated []byte
	if req.Rotate {
		rotated = a.rotate()
	}
	if req.From != 0 {
		a.awaitBatch(ctx, req)
	}
	defer a.mu.Unlock()
	head := a.chain.HeadLocked()
	resp := &proto.AuditResponse{Key: a.key, HeadSeq: head.Seq, HeadHash: head.Hash, Records: [][]byte{}, RotateRecord: rotated, Acked: a.acked.Seq}
	if req.From != 0 && len(a.pending) > 0 {
		// Records before the first pending one were acknowledged, and are
		// no longer kept: a host that asks for them gets the first one it
		// can have, and sees the gap.
		from := max(req.From, a.first)
		if from-a.first < uint64(len(a.pending)) {
			resp.Records = make([][]byte, 0, min(uint64(len(a.pending))-(from-a.first), proto.MaxAuditRecords))
		}
		end := 0 // records in resp up to the last signed one
		for i := from - a.first; i < uint64(len(a.pending)) && len(resp.Records) < proto.MaxAuditRecords; i++ {
			resp.Records = append(resp.Records, a.pending[i])
			if a.signed[i] {
				end = len(resp.Records)
			}
		}
		clear(resp.Records[end:])
		resp.Records = resp.Records[:end]
	}
	return resp, nil
}

// ackLocked applies an acknowledgement of the records up to seq, whose last
// one hashes to hash. a.mu is held.
func (a *auditLog) ackLocked(seq uint64, hash []byte) error {
	head := a.chain.HeadLocked()
	switch {
	case seq <= a.acked.Seq:
		return nil // already acknowledged (acknowledgements are cumulative)
	case seq > head.Seq:
		return refuseRule(refusal.CodeBadRequest, refusal.RuleAudit, fmt.Sprintf("acknowledgement of audit record %d, beyond the enclave's last record %d", seq, head.Seq))
	case len(hash) != sha256.Size:
		return refuseRule(refusal.CodeBadRequest, refusal.RuleAudit, fmt.Sprintf("acknowledgement of audit record %d without the record's hash", seq))
	}
	i := seq - a.first
	got := a.hashes[i]
	if subtle.ConstantTimeCompare(got[:], hash) != 1 {
		return refuseRule(refusal.CodeBadRequest, refusal.RuleAudit, fmt.Sprintf("acknowledgement of audit record %d names record hash %x, but the enclave's record %d hashes to %x: the host's log is not this enclave's", seq, hash, seq, got))
	}
	n := i + 1
	// Answers are released up to the last signed record acknowledged: a
	// record persisted without the signature that covers it (a host that
	// acknowledges in the middle of a batch) releases nothing yet.
	covered := uint64(0)
	for j := i + 1; j > 0; j-- {
		if a.signed[j-1] {
			covered = a.first + j - 1
			break
		}
	}
	a.acked = audit.Head{Seq: seq, Hash: got}
	for _, h := range a.isHead[:n] {
		if h {
			a.heads--
		}
	}
	// The records left move to the front, so that appends reuse the
	// slices' room instead of growing them again: what is left is what
	// was appended since the host's poll, about a batch.
	left := copy(a.pending, a.pending[n:])
	clear(a.pending[left:])
	a.pending = a.pending[:left]
	a.signed = a.signed[:copy(a.signed, a.signed[n:])]
	a.isHead = a.isHead[:copy(a.isHead, a.isHead[n:])]
	a.hashes = a.hashes[:copy(a.hashes, a.hashes[n:])]
	a.since = a.since[:copy(a.since, a.since[n:])]
	a.tail = min(a.tail, len(a.pending)) // the tail is never more than what is pending
	a.first += n
	if covered > a.ackedSeq.Load() {
		a.ackedSeq.Store(covered)
		next := make(chan struct{})
		close(*a.ackCh.Swap(&next))
	}
	return nil
}

// persistedHead returns the head of the records the host has acknowledged
// as persisted. Checkpoints carry this head, never one the host may not
// have stored.
func (a *auditLog) persistedHead() (audit.Head, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked, true
}

// hostFailing returns the host's latest report that it cannot persist
// records, or "".
func (a *auditLog) hostFailing() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failing
}

// head returns the head of the chain (a.mu must not be held).
func (a *auditLog) head() audit.Head { return a.chain.Head() }

func nowMS(now func() time.Time) int64 { return now().UnixMilli() }
