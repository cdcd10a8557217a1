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
}

func newAuditLog(s *audit.Signer, max int) *auditLog {
	return &auditLog{chain: audit.NewChain(s, audit.Head{}), key: s.PublicKey(), max: max}
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
	rec, line, err := a.chain.Append(r, true)
	if err != nil {
		return nil, 0, fmt.Errorf("enclave: audit: %w", err)
	}
	if len(a.pending) == 0 {
		a.first = rec.Seq
	}
	a.pending = append(a.pending, line)
	return line, rec.Seq, nil
}

// handle acknowledges records up to req.Ack and returns those from
// req.From on.
func (a *auditLog) handle(req *proto.AuditRequest) *proto.AuditResponse {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.Ack >= a.first && len(a.pending) > 0 {
		n := min(int(req.Ack-a.first+1), len(a.pending))
		clear(a.pending[:n])
		a.pending = a.pending[n:]
		a.first += uint64(n)
	}
	head := a.chain.Head()
	resp := &proto.AuditResponse{Key: a.key, HeadSeq: head.Seq, HeadHash: head.Hash, Records: [][]byte{}}
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
