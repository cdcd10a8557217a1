package enclave

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// DefaultMaxUnackedAudit is how many audit records the enclave hands over
// without the host acknowledging that it persisted them before it stops
// deciding requests (503).
const DefaultMaxUnackedAudit = 4096

// errAuditBacklog refuses requests while the host has not persisted enough
// of the records it was given.
var errAuditBacklog = errors.New("too many audit records are not yet persisted by the host; refusing to decide until it catches up")

// auditLog is the enclave's side of the audit log: the chain, and the
// records handed over but not yet acknowledged, kept so that a host that
// lost them (a crash between receiving and persisting) can fetch them
// again.
type auditLog struct {
	mu      sync.Mutex
	chain   *audit.Chain
	key     []byte
	pending [][]byte // unacknowledged records, in sequence order
	first   uint64   // seq of pending[0]
	max     int
	now     func() time.Time

	// Of the last record appended: what a rotate record carries over.
	lastTimeMS    int64
	policyVersion uint64

	// acked is the head of the records the host acknowledged persisting
	// (zero until the first acknowledgement).
	acked audit.Head
}

func newAuditLog(s *audit.Signer, max int) *auditLog {
	return &auditLog{chain: newChain(s, audit.Head{}), key: s.PublicKey(), max: max, now: time.Now}
}

// full reports whether the backlog of unacknowledged records is at its cap.
func (a *auditLog) full() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending) >= a.max
}

// append adds a signed record and keeps it until acknowledged. It fails
// closed: on error there is no record, and the caller must not answer with
// a signature.
func (a *auditLog) append(r audit.Record) ([]byte, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= a.max {
		return nil, 0, errAuditBacklog
	}
	return a.appendLocked(r)
}

// appendLocked is append, with a.mu held and the backlog checked.
func (a *auditLog) appendLocked(r audit.Record) ([]byte, uint64, error) {
	rec, line, err := a.chain.Append(r, true)
	if err != nil {
		return nil, 0, fmt.Errorf("enclave: audit: %w", err)
	}
	if len(a.pending) == 0 {
		a.first = rec.Seq
	}
	a.pending = append(a.pending, line)
	a.lastTimeMS, a.policyVersion = rec.TimeMS, rec.PolicyVersion
	return line, rec.Seq, nil
}

// rotate appends the rotate record the host asked for: the signed last
// record of the host's current log segment. Like any record it is kept
// until acknowledged, so a host that crashes before persisting it fetches
// it again (and then closes the segment). It is refused, without error,
// while the backlog is full: the host retries later. a.mu is held.
func (a *auditLog) rotate() []byte {
	if len(a.pending) >= a.max {
		return nil
	}
	now := a.now
	if now == nil {
		now = time.Now
	}
	next := a.chain.Head().Seq + 1
	line, _, err := a.appendLocked(audit.Record{
		TimeMS:        max(nowMS(now), a.lastTimeMS),
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

// handle acknowledges records up to req.Ack, appends a rotate record if
// req.Rotate asks for one, and returns the records from req.From on.
func (a *auditLog) handle(req *proto.AuditRequest) *proto.AuditResponse {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.Ack >= a.first && len(a.pending) > 0 {
		n := min(int(req.Ack-a.first+1), len(a.pending))
		a.acked = audit.Head{Seq: a.first + uint64(n) - 1, Hash: sha256.Sum256(a.pending[n-1])}
		clear(a.pending[:n])
		a.pending = a.pending[n:]
		a.first += uint64(n)
	}
	var rotated []byte
	if req.Rotate {
		rotated = a.rotate()
	}
	head := a.chain.Head()
	resp := &proto.AuditResponse{Key: a.key, HeadSeq: head.Seq, HeadHash: head.Hash, Records: [][]byte{}, RotateRecord: rotated}
	if req.From != 0 && len(a.pending) > 0 && req.From >= a.first {
		for i := int(req.From - a.first); i < len(a.pending) && len(resp.Records) < proto.MaxAuditRecords; i++ {
			resp.Records = append(resp.Records, a.pending[i])
		}
	}
	return resp
}

func (a *auditLog) head() audit.Head { return a.chain.Head() }

// requestDigest is the audit record's digest of a request: SHA-256 of the
// exact body the client stamped.
func requestDigest(body []byte) []byte {
	d := sha256.Sum256(body)
	return d[:]
}

func nowMS(now func() time.Time) int64 { return now().UnixMilli() }
