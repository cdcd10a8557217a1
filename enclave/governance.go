package enclave

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// Governance: the policy changes only by admin-quorum commands. A change
// that loosens anything (policy.Diff) waits for the genesis time lock,
// during which any one admin can cancel it; a change that only tightens
// takes effect at once. Versions only increase: a change must be above the
// version floor, the highest version ever in force, scheduled or cancelled,
// so that a cancelled change comes back only as a new, higher version that
// the admins sign again (its own envelope is refused as replayed: spent.go).

// MaxPendingPolicies bounds the changes waiting for their time lock.
const MaxPendingPolicies = 8

// pendingPolicy is a change waiting for its time lock.
type pendingPolicy struct {
	Document    []byte   `cbor:"1,keyasint"` // the canonical document
	EffectiveMS int64    `cbor:"2,keyasint"`
	Signers     []string `cbor:"3,keyasint"`
	// Digest and NotAfterMS are the scheduling command's: a cancel marks
	// it spent (zero in checkpoints of older enclave versions).
	Digest     [32]byte `cbor:"4,keyasint"`
	NotAfterMS int64    `cbor:"5,keyasint,omitempty"`
	pol        *policy.Policy
	// owedLogged: that it is due but not recorded was logged (once).
	owedLogged bool
}

// governance is what the admins govern the policy with, beyond the
// policy in force (Enclave.guard): the changes waiting for their time
// lock, the version floor, the time lock itself, and the memory of the
// admin commands carried out (spent.go), which a cancel marks. Its lock,
// mu, guards pending and floor; spent has its own, taken after mu.
type governance struct {
	mu      sync.Mutex
	pending []*pendingPolicy // by version
	// floor is the highest policy version ever in force, scheduled or
	// cancelled (kept in the checkpoint): a change must be above it.
	floor uint64
	// timeLock is how long a change that loosens waits (genesis).
	timeLock time.Duration
	spent    spentCommands
	// due is the EffectiveMS of the first pending change, math.MaxInt64
	// when none: dueAt reads it without mu, so that the tick of every
	// request takes no lock shared by all of them (mu is held while a due
	// change comes into force and the requests waiting for approvals are
	// decided again and signed, applyDue). Set under mu by noteDueLocked
	// whenever pending changes.
	due atomic.Int64
	// npending is len(pending), for health (which takes no lock), set
	// with due.
	npending atomic.Int64
}

func (g *governance) init(timeLock time.Duration) {
	g.timeLock = timeLock
	g.spent.init()
	g.due.Store(math.MaxInt64)
}

// floorLocked is the version a new change must be above: the floor, the
// version in force (inForce) and every pending one. g.mu is held.
func (g *governance) floorLocked(inForce uint64) uint64 {
	f := max(g.floor, inForce)
	for _, p := range g.pending {
		f = max(f, p.pol.Version())
	}
	return f
}

// versionFloor is floorLocked under the lock, with the version in force
// read under it (checkpoints).
func (e *Enclave) versionFloor() uint64 {
	e.gov.mu.Lock()
	defer e.gov.mu.Unlock()
	return e.gov.floorLocked(e.guard.inForce().pol.Version())
}

// scheduleLocked adds p to the changes waiting, in version order, and
// raises the floor to it. g.mu is held.
func (g *governance) scheduleLocked(p *pendingPolicy) {
	g.pending = append(g.pending, p)
	g.floor = max(g.floor, p.pol.Version())
	sort.Slice(g.pending, func(i, j int) bool { return g.pending[i].pol.Version() < g.pending[j].pol.Version() })
	g.noteDueLocked()
}

// noteDueLocked publishes when the first pending change is due, for
// dueAt. g.mu is held.
func (g *governance) noteDueLocked() {
	g.npending.Store(int64(len(g.pending)))
	if len(g.pending) == 0 {
		g.due.Store(math.MaxInt64)
		return
	}
	g.due.Store(g.pending[0].EffectiveMS)
}

// policyChange schedules or applies a quorum-signed policy change.
func (e *Enclave) policyChange(v *vault, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.PolicyChange()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	pol, err := policy.Parse(body.Document)
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	if pol.Version() != body.Version || pol.Hash() != body.Hash {
		return nil, refuse(refusal.CodeBadRequest, "the document is version %d with hash %x; the admins signed version %d with hash %x", pol.Version(), pol.Hash(), body.Version, body.Hash)
	}
	for _, id := range pol.KeyIDs() {
		if _, ok := v.keys.byID[id]; !ok {
			return nil, refuse(refusal.CodeBadRequest, "the policy has rules for key %q, which this enclave does not hold", id)
		}
	}
	e.gov.mu.Lock()
	defer e.gov.mu.Unlock()
	rs := e.guard.inForce()
	if newest := e.gov.floorLocked(rs.pol.Version()); pol.Version() <= newest {
		return nil, refuse(refusal.CodeBadRequest, "policy version %d is not above version %d (the highest in force, pending or cancelled): versions only increase, and a cancelled change comes back only as a new, higher version", pol.Version(), newest)
	}
	change := policy.Diff(rs.pol, pol)
	if !change.TimeLocked() {
		next, err := e.guard.prepare(pol)
		if err != nil {
			return nil, refuse(refusal.CodeBadRequest, "%v", err)
		}
		line, seq, aerr := e.guard.putInForce(v.audit, audit.Record{
			TimeMS: now.UnixMilli(), Kind: audit.KindPolicy, RequestDigest: cmd.Digest[:],
			Summary:  fmt.Sprintf("policy version %d (hash %x) in force at once, replacing version %d: it only tightens: %s", pol.Version(), pol.Hash(), rs.pol.Version(), listOr(change.Tightening, "no change in what is allowed")),
			Decision: "applied", PolicyVersion: pol.Version(), Approvers: signers,
		}, next, now)
		if aerr != nil {
			if errors.Is(aerr, audit.ErrRecordTooLarge) {
				return nil, appendRefusal(aerr)
			}
			return nil, refuse(refusal.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("policy version %d", pol.Version()), aerr))
		}
		e.redecidePending(v.audit, now)
		e.gov.floor = max(e.gov.floor, pol.Version())
		e.log.Info("policy applied", "version", pol.Version(), "admins", signers)
		return policyResult(cmd, pol, 0, signers, seq, line)
	}
	if len(e.gov.pending) >= MaxPendingPolicies {
		return nil, refuse(refusal.CodeBadRequest, "%d policy changes already wait for their time lock; cancel one first", MaxPendingPolicies)
	}
	eff := now.Add(e.gov.timeLock)
	line, seq, aerr := v.audit.appendEvent(audit.Record{
		TimeMS: now.UnixMilli(), Kind: audit.KindPolicy, RequestDigest: cmd.Digest[:],
		Summary:  fmt.Sprintf("policy version %d (hash %x) scheduled for %s (time lock %s); any admin can cancel it until then; it loosens: %s", pol.Version(), pol.Hash(), eff.UTC().Format(time.RFC3339), e.gov.timeLock, listWithin(change.Loosening, "; ")),
		Decision: "scheduled", PolicyVersion: rs.pol.Version(), Approvers: signers,
	})
	if aerr != nil {
		if errors.Is(aerr, audit.ErrRecordTooLarge) {
			return nil, appendRefusal(aerr)
		}
		return nil, refuse(refusal.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("scheduling policy version %d", pol.Version()), aerr))
	}
	e.gov.scheduleLocked(&pendingPolicy{Document: pol.Canonical(), EffectiveMS: eff.UnixMilli(), Signers: signers, Digest: cmd.Digest, NotAfterMS: cmd.NotAfter.UnixMilli(), pol: pol})
	e.log.Info("policy scheduled", "version", pol.Version(), "effective", eff, "admins", signers)
	return policyResult(cmd, pol, eff.UnixMilli(), signers, seq, line)
}

// PolicyResult is the JSON result of a policy command.
type PolicyResult struct {
	Kind        string   `json:"kind"`
	Version     uint64   `json:"version"`
	Hash        string   `json:"policy_hash"`
	EffectiveMS int64    `json:"effective_at_ms,omitempty"`
	Signers     []string `json:"signers"`
	AuditSeq    uint64   `json:"audit_seq"`
}

func policyResult(cmd *admin.Command, pol *policy.Policy, eff int64, signers []string, seq uint64, line []byte) (proto.Message, error) {
	r := PolicyResult{Kind: string(cmd.Kind), Version: pol.Version(), Hash: fmt.Sprintf("%x", pol.Hash()), EffectiveMS: eff, Signers: signers, AuditSeq: seq}
	return jsonAdminResponse(r, line)
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return listWithin(l, "; ")
}

// policyCancel cancels a pending change: one admin suffices.
func (e *Enclave) policyCancel(al *auditLog, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.PolicyCancel()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	e.gov.mu.Lock()
	defer e.gov.mu.Unlock()
	for i, p := range e.gov.pending {
		if p.pol.Version() != body.Version || p.pol.Hash() != body.Hash {
			continue
		}
		line, seq, aerr := al.appendEvent(audit.Record{
			TimeMS: now.UnixMilli(), Kind: audit.KindPolicy, RequestDigest: cmd.Digest[:],
			Summary:  fmt.Sprintf("policy version %d (hash %x) cancelled before its time lock ended", body.Version, body.Hash),
			Decision: "cancelled", PolicyVersion: e.guard.inForce().pol.Version(), Approvers: signers,
		})
		if aerr != nil {
			if errors.Is(aerr, audit.ErrRecordTooLarge) {
				return nil, appendRefusal(aerr)
			}
			return nil, refuse(refusal.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("the cancellation of policy version %d", body.Version), aerr))
		}
		e.gov.cancelLocked(i, seq, now)
		return policyResult(cmd, p.pol, 0, signers, seq, line)
	}
	return nil, refuse(refusal.CodeBadRequest, "no pending policy change has version %d and hash %x", body.Version, body.Hash)
}

// applyDue puts in force the pending changes whose time lock has ended, in
// version order (tick calls it). Each comes into force only with its
// record: one that cannot be recorded stays pending, with every later one,
// and is tried again at the next tick. A change overtaken by a higher
// version in force, or whose limits cannot be carried over, is dropped,
// also only with its record.
func (e *Enclave) applyDue(al *auditLog, now time.Time) {
	e.gov.mu.Lock()
	defer e.gov.mu.Unlock()
	defer e.gov.noteDueLocked()
	for len(e.gov.pending) > 0 && now.UnixMilli() >= e.gov.pending[0].EffectiveMS {
		p := e.gov.pending[0]
		rs := e.guard.inForce()
		rec := audit.Record{TimeMS: now.UnixMilli(), Kind: audit.KindPolicy, PolicyVersion: rs.pol.Version(), Approvers: p.Signers}
		var next *nextPolicy
		if p.pol.Version() <= rs.pol.Version() {
			rec.Decision = "superseded"
			rec.Summary = fmt.Sprintf("policy version %d (hash %x) not put in force when its time lock ended: version %d is already in force; dropped", p.pol.Version(), p.pol.Hash(), rs.pol.Version())
		} else if n, err := e.guard.prepare(p.pol); err != nil {
			rec.Decision = "failed"
			rec.Summary = fmt.Sprintf("policy version %d (hash %x) could not be put in force when its time lock ended (%v); dropped, version %d stays in force", p.pol.Version(), p.pol.Hash(), err, rs.pol.Version())
		} else {
			next = n
			rec.Decision, rec.PolicyVersion = "applied", p.pol.Version()
			rec.Summary = fmt.Sprintf("policy version %d (hash %x) in force: its time lock ended", p.pol.Version(), p.pol.Hash())
		}
		var err error
		if next != nil {
			_, _, err = e.guard.putInForce(al, rec, next, now)
		} else {
			_, _, err = al.appendEvent(rec)
		}
		if err != nil {
			// Not recorded, not applied: tried again at the next tick.
			if !p.owedLogged {
				p.owedLogged = true
				e.log.Error("a policy change is due but cannot be recorded yet; it is not in force", "version", p.pol.Version(), "err", err)
			}
			return
		}
		e.gov.pending = e.gov.pending[1:]
		if next == nil {
			e.log.Warn("a due policy change was dropped", "version", p.pol.Version(), "decision", rec.Decision)
			continue
		}
		e.redecidePending(al, now)
		e.log.Info("policy applied", "version", p.pol.Version())
	}
}

// dueAt reports whether a pending change may be due at now, cheaply: an
// atomic load, no lock (applyDue decides under the lock).
func (g *governance) dueAt(now time.Time) bool {
	return now.UnixMilli() >= g.due.Load()
}

// pendingList returns the pending changes (for checkpoints and GET
// /v1/policy).
func (g *governance) pendingList() []*pendingPolicy {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*pendingPolicy(nil), g.pending...)
}

// restorePolicy restores the policy in force and the pending changes from a
// checkpoint.
func (e *Enclave) restorePolicy(cp *checkpoint, now time.Time) (string, error) {
	var note string
	if len(cp.Policy) > 0 {
		pol, err := policy.Parse(cp.Policy)
		if err != nil {
			return "", fmt.Errorf("the checkpoint's policy: %w", err)
		}
		if pol.Hash() != cp.PolicyHash || pol.Version() != cp.PolicyVersion {
			return "", fmt.Errorf("the checkpoint's policy does not match its hash")
		}
		if pol.Version() > e.guard.inForce().pol.Version() {
			next, err := e.guard.prepare(pol)
			if err != nil {
				return "", err
			}
			e.guard.swap(next, now)
			note = fmt.Sprintf("policy version %d (hash %x) in force from the checkpoint", pol.Version(), pol.Hash())
		}
	}
	// The floor: the checkpoint's, or (from an older enclave version's
	// checkpoint, which has none) the highest version it holds.
	return note, e.gov.restore(cp.Pending, max(cp.PolicyFloor, cp.PolicyVersion, e.guard.inForce().pol.Version()))
}

// restore replaces the pending changes with those of a checkpoint, and
// raises the floor to floor and to each of them.
func (g *governance) restore(pending []*pendingPolicy, floor uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.noteDueLocked()
	g.pending = nil
	g.floor = max(g.floor, floor)
	for _, p := range pending {
		pol, err := policy.Parse(p.Document)
		if err != nil {
			return fmt.Errorf("a pending policy in the checkpoint: %w", err)
		}
		p.pol = pol
		g.pending = append(g.pending, p)
		g.floor = max(g.floor, pol.Version())
	}
	return nil
}

// cancelLocked drops the pending change i, cancelled by audit record seq
// at now. The cancelled version stays below the floor, and the envelope
// that scheduled it stays spent: it cannot be scheduled again. g.mu is
// held.
func (g *governance) cancelLocked(i int, seq uint64, now time.Time) {
	p := g.pending[i]
	g.pending = append(g.pending[:i], g.pending[i+1:]...)
	g.noteDueLocked()
	g.floor = max(g.floor, p.pol.Version())
	g.spent.markCancelled(p.Digest, p.NotAfterMS, seq, now)
}

// policyInfo answers GET /v1/policy (after the tick that put the changes
// due in force).
func (e *Enclave) policyInfo() proto.Message {
	rs := e.guard.inForce()
	resp := &proto.PolicyResponse{Document: rs.pol.Canonical(), Version: rs.pol.Version(), Hash: rs.pol.Hash(), TimeLockMS: e.gov.timeLock.Milliseconds(), Pending: []proto.PendingPolicy{}}
	for _, p := range e.gov.pendingList() {
		resp.Pending = append(resp.Pending, proto.PendingPolicy{Document: p.Document, Version: p.pol.Version(), Hash: p.pol.Hash(), EffectiveMS: p.EffectiveMS, Signers: p.Signers})
	}
	return resp
}
