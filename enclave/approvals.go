package enclave

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/summary"
)

// Approvals.
const (
	// ApprovalTTL is how long a request waits for its approvals.
	ApprovalTTL = time.Hour
	// MaxPending bounds the requests held for approvals (waiting, or
	// decided and kept until their expiry for GET /v1/approvals/{id});
	// beyond it new ones are refused (fail closed) until some expire.
	MaxPending = 1024
	// MaxPendingPerClient bounds one client's share of MaxPending, so that
	// no single client can fill the store and block approvals for every
	// other client.
	MaxPendingPerClient = MaxPending / 8
	// MaxPendingBytes bounds the memory the held requests are charged
	// (pendingCost: the compact request, its summary and a fixed
	// overhead), and MaxPendingBytesPerClient one client's share of it.
	MaxPendingBytes          = 64 << 20
	MaxPendingBytesPerClient = MaxPendingBytes / 8
	// pendingOverhead is what a held request is charged beyond its compact
	// body and summary: the struct, its map entry, the rest of its latest
	// audit record and the approvals (BenchmarkPendingMemory measures
	// about 1.9 KB in all, body and summary included, for a plain
	// transfer, which is charged some 3 to 4 KB: the charge errs high).
	pendingOverhead = 2 << 10
)

// pending is a request held for approvals. Its limit reservation is held
// until it is signed (commit), refused, rejected or expired (release),
// each with its record. It keeps the request in its compact form
// (api.CompactRequest) and nothing decoded: it is decided again from that
// form, under the policy in force, whenever that policy changes and at
// every approval (judge, reconcile), and signed from the decision made
// then.
type pending struct {
	id        string
	body      []byte   // api.CompactRequest of the stamped body
	digest    [32]byte // api.ApprovalDigest(body): what approvers sign
	client    stamp.PublicKey
	clientID  string // client.String(): the quota's key
	cost      int    // pendingCost, charged to the quotas while held
	key       *signingKey
	res       *stateful.Reservation
	rule      stateful.Approvals  // under the policy of policyHash
	summary   string              // the summary's text, for the audit records
	lines     []proto.SummaryLine // the same summary, line by line, for approvers
	expires   time.Time
	approved  []approverSig
	status    string // proto.StatusPending, proto.StatusSigned, api.StatusRejected, api.StatusExpired
	result    *proto.SignResponse
	outcome   string // why a request no longer waiting was not signed, for later answers
	reqDigest []byte
	// lastSeq and lastLine are the latest audit record about the request:
	// an approval already counted is answered with them.
	lastSeq  uint64
	lastLine []byte
	// policyHash is the hash of the policy the request was last decided
	// under: its rule and approvals are that policy's.
	policyHash [32]byte
}

// approverSig is an approval counted: by the approver of that name with
// that key. A policy that rebinds the name to another key, or drops the
// approver, drops the approval (reconcile).
type approverSig struct {
	name string
	key  stamp.PublicKey
}

// clientUse is one client's share of the held requests.
type clientUse struct {
	count, bytes int
}

// approvals is the state of the requests held for approvals: the requests
// (m), their quotas, their expiry schedule (next) and whether one is owed
// a decision under the policy in force (owed). Its lock, mu, guards all of
// it and every held request's fields; it is taken after the guard's
// (Enclave.guard.mu), since a held request is decided under the rules in
// force. The Enclave's methods that decide held requests (hold, approval,
// expire, redecidePending, reconcile) only orchestrate: they hold the
// guard's read side and mu, judge under the ruleset in force, append each
// record, and change a request only once its record is appended.
type approvals struct {
	mu sync.Mutex
	m  map[string]*pending
	// next is the earliest expiry (Unix ms) of the requests in m, 0 when
	// there are none: tick's cheap test. Written with mu held.
	next atomic.Int64
	// held is len(m), for health (which takes no lock). Written with mu
	// held.
	held atomic.Int64
	// owed is set while a request waiting may not have been decided under
	// the policy in force (its decision's record could not be appended, or
	// it was held while the policy changed): tick's cheap test for
	// redecidePending. Written with mu held.
	owed       atomic.Bool
	owedLogged bool
	// bytes and byClient are the quotas' accounts of the requests in m.
	bytes    int
	byClient map[string]*clientUse
}

// pendingCost is what a held request is charged against the byte quotas:
// its compact body, the signed transaction it may be kept with once signed
// (at most half the body, where the transaction is hex), its summary three
// times (its text, its lines, and in its latest record) and the fixed
// overhead.
func pendingCost(body []byte, summary string) int {
	return len(body) + len(body)/2 + 3*len(summary) + pendingOverhead
}

// admit checks the quotas for a new request of client costing cost: ""
// when it may be held, else the refusal's message naming the quota.
func (a *approvals) admit(client string, cost int) string {
	u := a.byClient[client]
	if u == nil {
		u = &clientUse{}
	}
	switch {
	case len(a.m) >= MaxPending:
		return fmt.Sprintf("the approvals store is full: %d requests are held (at most %d); refusing more until some expire", len(a.m), MaxPending)
	case u.count >= MaxPendingPerClient:
		return fmt.Sprintf("this client's approvals quota is full: it has %d requests held for approvals (at most %d a client); refusing more from it until some expire", u.count, MaxPendingPerClient)
	case u.bytes+cost > MaxPendingBytesPerClient:
		return fmt.Sprintf("this client's approvals byte quota is full: its held requests are charged %d bytes, this one %d (at most %d a client); refusing more from it until some expire", u.bytes, cost, MaxPendingBytesPerClient)
	case a.bytes+cost > MaxPendingBytes:
		return fmt.Sprintf("the approvals store's byte budget is full: the held requests are charged %d bytes, this one %d (at most %d); refusing more until some expire", a.bytes, cost, MaxPendingBytes)
	}
	return ""
}

// add holds p, charging its quotas (mu held).
func (a *approvals) add(p *pending) {
	if a.m == nil {
		a.m, a.byClient = map[string]*pending{}, map[string]*clientUse{}
	}
	a.m[p.id] = p
	a.held.Store(int64(len(a.m)))
	u := a.byClient[p.clientID]
	if u == nil {
		u = &clientUse{}
		a.byClient[p.clientID] = u
	}
	u.count++
	u.bytes += p.cost
	a.bytes += p.cost
	if n := a.next.Load(); n == 0 || p.expires.UnixMilli() < n {
		a.next.Store(p.expires.UnixMilli())
	}
}

// drop forgets p, crediting its quotas (mu held).
func (a *approvals) drop(p *pending) {
	if _, ok := a.m[p.id]; !ok {
		return
	}
	delete(a.m, p.id)
	a.held.Store(int64(len(a.m)))
	a.bytes -= p.cost
	if u := a.byClient[p.clientID]; u != nil {
		u.count--
		u.bytes -= p.cost
		if u.count == 0 {
			delete(a.byClient, p.clientID)
		}
	}
}

// dueAt reports whether a request held may be past its expiry at now.
func (a *approvals) dueAt(now time.Time) bool {
	n := a.next.Load()
	return n != 0 && now.UnixMilli() >= n
}

// dueLocked returns the requests held that are past their expiry at now,
// in order of expiry (mu held).
func (a *approvals) dueLocked(now time.Time) []*pending {
	var due []*pending
	for _, p := range a.m {
		if !now.Before(p.expires) {
			due = append(due, p)
		}
	}
	sortByExpiry(due)
	return due
}

// rescheduleLocked sets next, the earliest expiry, from the requests
// still held (mu held).
func (a *approvals) rescheduleLocked() {
	var next int64
	for _, p := range a.m {
		if ms := p.expires.UnixMilli(); next == 0 || ms < next {
			next = ms
		}
	}
	a.next.Store(next)
}

// waitingLocked returns the requests still waiting for approvals at now
// that were last decided under another policy than that of hash, in order
// of expiry (mu held).
func (a *approvals) waitingLocked(now time.Time, hash [32]byte) []*pending {
	var todo []*pending
	for _, p := range a.m {
		if p.status == proto.StatusPending && now.Before(p.expires) && p.policyHash != hash {
			todo = append(todo, p)
		}
	}
	sortByExpiry(todo)
	return todo
}

// sortByExpiry orders ps by expiry, then id, so that their records are in
// that order too.
func sortByExpiry(ps []*pending) {
	sort.Slice(ps, func(i, j int) bool {
		if !ps[i].expires.Equal(ps[j].expires) {
			return ps[i].expires.Before(ps[j].expires)
		}
		return ps[i].id < ps[j].id
	})
}

// isOwed reports whether a request waiting may not have been decided
// under the policy in force: tick's cheap test.
func (a *approvals) isOwed() bool { return a.owed.Load() }

// markOwedLocked notes that a request waiting may not have been decided
// under the policy in force (mu held).
func (a *approvals) markOwedLocked() { a.owed.Store(true) }

// settleOwedLocked records the outcome of deciding the requests waiting
// again: owed when one could not be (mu held).
func (a *approvals) settleOwedLocked(owed bool) {
	if !owed {
		a.owedLogged = false
	}
	a.owed.Store(owed)
}

// firstOwedLocked reports whether a request owed a decision is to be
// logged: once, until the requests waiting are all decided again (mu
// held).
func (a *approvals) firstOwedLocked() bool {
	if a.owedLogged {
		return false
	}
	a.owedLogged = true
	return true
}

// getLocked returns the request held under id (mu held).
func (a *approvals) getLocked(id string) (*pending, bool) {
	p, ok := a.m[id]
	return p, ok
}

// expire ends the requests past their expiry (tick calls it). A request
// still waiting for approvals becomes unusable at once (past its expiry
// nobody can approve it), and is expired with its record: its limit
// reservation is released, and it is dropped, only once the record is
// appended. While it cannot be, the request stays, marked expired, and the
// next tick tries again. Signed and rejected requests, whose records
// exist, are dropped.
func (e *Enclave) expire(al *auditLog, now time.Time) {
	e.guard.mu.RLock() // the records name the policy in force
	defer e.guard.mu.RUnlock()
	a := &e.approvals
	a.mu.Lock()
	defer a.mu.Unlock()
	blocked := false
	pv := e.guard.inForce().pol.Version()
	for _, p := range a.dueLocked(now) { // in order of expiry, so that the records are too
		if p.status != proto.StatusPending && p.status != api.StatusExpired {
			a.drop(p)
			continue
		}
		first := p.status == proto.StatusPending
		p.status = api.StatusExpired // unusable from now on, recorded or not
		if !blocked {
			sum := fmt.Sprintf("approval %s expired at %s with %d of %d approvals: %s", p.id, msTime(p.expires.UnixMilli()), len(p.approved), p.rule.Quorum, p.summary)
			_, _, err := al.appendEvent(audit.Record{
				TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest,
				Client: p.client.String(), Key: p.key.id, Summary: sum,
				Decision: api.StatusExpired, Rule: refusal.RuleApprovals, PolicyVersion: pv, Approvers: approverNames(p.approved),
			})
			if err == nil {
				p.res.Release()
				a.drop(p)
				continue
			}
			blocked = true
		}
		if first {
			e.log.Error("approval request expired; its audit record is owed until the host persists the backlog", "approval", p.id)
		}
	}
	a.rescheduleLocked()
}

// hold makes a request pending: it records it and answers 202's message.
// (Expired requests were dropped by the tick that began the request.)
// It keeps the request's compact form, after checking that this form
// decides as the request did (so that what approvers see, and what is
// decided again later, is what was decided), and refuses a request beyond
// the quotas, with rule approvals and a message naming the quota.
//
// s is admitted: decided, allowed and with its limits reserved; rule is
// the approval rule it waits under.
func (e *Enclave) hold(s *signing, rule stateful.Approvals) (proto.Message, error) {
	v, rs, c, d, res, rec, now := s.v, s.rs, s.c, s.d, s.res, s.rec, s.now
	compact, err := api.CompactRequest(s.m.Body)
	if err != nil {
		res.Release()
		return nil, refuse(refusal.CodeInternal, "enclave: a request that decoded has no compact form: %v", err)
	}
	idb := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, idb); err != nil {
		res.Release()
		return nil, refuse(refusal.CodeUnavailable, "drawing an approval id: %v", err)
	}
	p := &pending{
		id: hex.EncodeToString(idb), body: compact, digest: api.ApprovalDigest(compact),
		client: c.client, clientID: c.id, cost: pendingCost(compact, rec.Summary), key: c.key,
		res: res, rule: rule, summary: rec.Summary, lines: summaryLines(d.summary()), expires: now.Add(ApprovalTTL), status: proto.StatusPending,
		reqDigest: bytes.Clone(rec.RequestDigest), policyHash: rs.pol.Hash(), // rec's points into s
	}
	if vd := rs.judge(p); vd.refused || !vd.needs || vd.d.digest != d.digest || !sameRule(vd.rule, rule) {
		res.Release()
		return nil, refuse(refusal.CodeInternal, "enclave: the compact form of the request is not decided as the request: not held")
	}
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	if msg := e.approvals.admit(p.clientID, p.cost); msg != "" {
		res.Release()
		return nil, refuseRule(refusal.CodeUnavailable, refusal.RuleApprovals, msg)
	}
	rec.Decision = audit.DecisionPendingApproval
	rec.Rule = refusal.RuleApprovals
	rec.Summary = fmt.Sprintf("approval %s: %d of %v needed: %s", p.id, rule.Quorum, ruleNames(rule), rec.Summary)
	line, seq, err := v.audit.append(rec)
	if err != nil {
		res.Release()
		return nil, appendRefusal(err)
	}
	p.lastSeq, p.lastLine = seq, line
	e.approvals.add(p)
	// A policy change that came into force since this request was decided
	// did not see it (redecidePending): the next tick decides it again.
	if e.guard.inForce().pol.Hash() != p.policyHash {
		e.approvals.markOwedLocked()
	}
	return pendingAnswer(p, false), nil
}

// pendingAnswer is the 202 message of a request still waiting: with its
// latest record, which counted (or, with alreadyCounted, had already
// counted) the approver who asked.
func pendingAnswer(p *pending, alreadyCounted bool) *proto.SignResponse {
	return &proto.SignResponse{
		From: p.key.addr, Status: proto.StatusPending, ApprovalID: p.id, SummaryLines: p.lines, Quorum: uint32(p.rule.Quorum),
		Approvers: approverNames(p.approved), ExpiresMS: p.expires.UnixMilli(), AuditSeq: p.lastSeq, AuditRecord: p.lastLine,
		SignedTransaction: []byte{}, AlreadyCounted: alreadyCounted, ApprovalDigest: p.digest[:],
	}
}

// ruleNames lists the approvers of a rule.
func ruleNames(r stateful.Approvals) []string {
	out := make([]string, len(r.Approvers))
	for i, a := range r.Approvers {
		out[i] = a.Name
	}
	return out
}

// approverNames lists the approvers counted, never nil.
func approverNames(l []approverSig) []string {
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = a.name
	}
	return out
}

// inRule reports whether the approval a is by an approver of r: the same
// name with the same key (a name rebound to another key is another
// approver).
func inRule(r stateful.Approvals, a approverSig) bool {
	return slices.ContainsFunc(r.Approvers, func(k stateful.ApproverKey) bool { return k.Name == a.name && k.PublicKey.Equal(a.key) })
}

// sameRule reports whether two approval rules ask the same of a request
// that needs approval: the same quorum of the same approvers (names and
// keys). Thresholds only decide whether it needs approval.
func sameRule(a, b stateful.Approvals) bool {
	if a.Quorum != b.Quorum || len(a.Approvers) != len(b.Approvers) {
		return false
	}
	for _, k := range a.Approvers {
		if !inRule(b, approverSig{name: k.Name, key: k.PublicKey}) {
			return false
		}
	}
	return true
}

// verdict is a held request decided under a policy: refused (by rule, for
// reason), or allowed with its decision and whether it needs approval,
// under which rule.
type verdict struct {
	refused       bool
	rule          stateful.Approvals
	refusedBy     string
	reason        string
	d             *decided
	needs         bool
	policyHash    [32]byte
	policyVersion uint64
}

// judge decides the held request p under rs, from its compact form, as
// a sign request is decided: the allow/deny decision (which names the
// client and the key, so that a client or key removed refuses it), then
// whether it needs approval and under which rule.
func (rs *ruleset) judge(p *pending) verdict {
	pol := rs.pol
	vd := verdict{policyHash: pol.Hash(), policyVersion: pol.Version()}
	// Decoded as a sign request is (package request, then decide): a held
	// request decoded when it was held, so this fails only on a bug, and
	// then refuses it.
	r, err := request.Decode(p.body)
	if err != nil {
		vd.refused, vd.refusedBy, vd.reason = true, refusal.RuleApprovals, "the held request does not decode: "+err.Error()
		return vd
	}
	vd.d, err = decide(pol, &caller{client: p.client, id: p.clientID, key: p.key}, r)
	switch {
	case err != nil:
		vd.refused, vd.refusedBy, vd.reason = true, refusal.RuleApprovals, message(err)
	case !vd.d.decision.Allow:
		vd.refused, vd.refusedBy, vd.reason = true, vd.d.decision.Rule, vd.d.decision.Reason
	default:
		vd.rule, vd.needs = rs.needsApproval(p.key.id, vd.d)
	}
	return vd
}

// eventFailure is the answer to an approval when the record of a change
// could not be appended: nothing changed.
func eventFailure(what string, err error) *Refusal {
	if errors.Is(err, audit.ErrRecordTooLarge) {
		return appendRefusal(err)
	}
	return refuse(refusal.CodeUnavailable, "%s", eventRefusal(what, err))
}

// redecision is a request held for approvals (p) being decided again:
// with the audit log al, under the ruleset in force rs (the read side of
// guard.mu is held), whose policy's verdict on p is vd, at now. It is what
// reconcile, signPending and refusePending share, in place of five
// positional arguments each.
type redecision struct {
	al  *auditLog
	rs  *ruleset
	p   *pending
	vd  verdict
	now time.Time
}

// reconcile brings r.p, a request waiting for approvals, to the verdict
// r.vd of the policy in force: each change is an audit record, appended before
// it is made.
//
//   - refused: p is refused with its record and its reservation released;
//   - no longer needing approval, or with the approvals kept meeting the
//     policy's quorum: p is signed at once (signPending);
//   - otherwise p waits under the policy's rule: approvals by approvers no
//     longer in its set (by name and key) are dropped, and a changed
//     quorum or approver set is recorded, saying so.
//
// It returns done when p was decided now, with the final answer (resp, a
// signature, or err, a recorded refusal); not done and no error when p
// waits; or not done and err when the record could not be appended or a
// signature cannot be decided now: nothing changed, and the request is
// decided again at the next approval or tick.
func (e *Enclave) reconcile(r *redecision) (done bool, resp proto.Message, err error) {
	al, p, vd, now := r.al, r.p, r.vd, r.now
	rec := audit.Record{
		TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest, Client: p.client.String(),
		Key: p.key.id, PolicyVersion: vd.policyVersion, Rule: refusal.RuleApprovals,
	}
	if vd.refused {
		rec.Decision, rec.Rule, rec.Approvers = audit.DecisionRefused, vd.refusedBy, approverNames(p.approved)
		rec.Summary = fmt.Sprintf("approval %s: policy version %d refuses it now (%s); its approvals no longer count: %s", p.id, vd.policyVersion, vd.refusedBy, p.summary)
		line, seq, err := al.appendEvent(rec)
		if err != nil {
			return false, nil, eventFailure(fmt.Sprintf("the refusal of approval %s under policy version %d", p.id, vd.policyVersion), err)
		}
		p.status, p.lastSeq, p.lastLine, p.policyHash = api.StatusRejected, seq, line, vd.policyHash
		p.outcome = clipMessage(fmt.Sprintf("policy version %d refuses it (%s): %s", vd.policyVersion, vd.refusedBy, vd.reason))
		p.res.Release()
		return true, nil, recorded(refusal.CodePolicyDenied, vd.refusedBy, clipMessage("the policy in force no longer allows it: "+vd.reason), line)
	}
	var kept, dropped []approverSig
	for _, a := range p.approved {
		if vd.needs && inRule(vd.rule, a) {
			kept = append(kept, a)
		} else {
			dropped = append(dropped, a)
		}
	}
	var droppedNote string
	if vd.needs && len(dropped) > 0 {
		droppedNote = fmt.Sprintf("; approvals dropped, no longer by an approver with that key: %s", strings.Join(approverNames(dropped), ", "))
	}
	switch {
	case !vd.needs:
		return e.signPending(r, p.approved, fmt.Sprintf("policy version %d no longer requires approvals for it", vd.policyVersion))
	case len(kept) >= vd.rule.Quorum:
		return e.signPending(r, kept, fmt.Sprintf("policy version %d requires %d of %v, and %s approved%s", vd.policyVersion, vd.rule.Quorum, ruleNames(vd.rule), strings.Join(approverNames(kept), ", "), droppedNote))
	case len(dropped) == 0 && sameRule(p.rule, vd.rule):
		p.policyHash = vd.policyHash // nothing changes for it
		return false, nil, nil
	}
	rec.Decision, rec.Approvers = audit.DecisionPendingApproval, approverNames(kept)
	rec.Summary = fmt.Sprintf("approval %s: policy version %d requires %d of %v (was %d of %v)%s; %d of %d approved: %s",
		p.id, vd.policyVersion, vd.rule.Quorum, ruleNames(vd.rule), p.rule.Quorum, ruleNames(p.rule), droppedNote, len(kept), vd.rule.Quorum, p.summary)
	line, seq, err := al.appendEvent(rec)
	if err != nil {
		return false, nil, eventFailure(fmt.Sprintf("the new approval rule of approval %s under policy version %d", p.id, vd.policyVersion), err)
	}
	p.rule, p.approved, p.lastSeq, p.lastLine, p.policyHash = vd.rule, kept, seq, line, vd.policyHash
	return false, nil, nil
}

// signPending signs r.p, allowed by r.vd, approved by approved (why says how
// the approvals suffice), with its record. A key frozen meanwhile signs
// nothing: p is refused, with its record. As for a sign request, nothing
// is decided while the host cannot persist (not done, err: nothing
// changed). Its results are reconcile's.
func (e *Enclave) signPending(r *redecision, approved []approverSig, why string) (done bool, resp proto.Message, err error) {
	al, p, vd, now := r.al, r.p, r.vd, r.now
	rec := audit.Record{
		TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest, Client: p.client.String(),
		Key: p.key.id, PolicyVersion: vd.policyVersion, Approvers: approverNames(approved),
	}
	if fi, frozen := e.guard.frozen.Get(p.key.id); frozen {
		rec.Decision, rec.Rule = audit.DecisionRefused, refusal.RuleFrozen
		rec.Summary = fmt.Sprintf("approval %s: %s, but key %s was frozen (%s): %s", p.id, why, p.key.id, fi.Record(), p.summary)
		line, seq, err := al.appendEvent(rec)
		if err != nil {
			return false, nil, eventFailure(fmt.Sprintf("the refusal of approval %s (key %s frozen)", p.id, p.key.id), err)
		}
		p.approved, p.status, p.lastSeq, p.lastLine, p.policyHash = approved, api.StatusRejected, seq, line, vd.policyHash
		p.outcome = fmt.Sprintf("key %s was frozen (%s) before it could be signed", p.key.id, fi.Record())
		p.res.Release()
		return true, nil, recorded(refusal.CodePolicyDenied, refusal.RuleFrozen, p.outcome, line)
	}
	// The signature is a decision like a sign request's: not while the
	// host cannot persist or has stopped acknowledging.
	if err := al.canDecide(); err != nil {
		return false, nil, refuseRule(refusal.CodeUnavailable, refusal.RuleAudit, err.Error())
	}
	// What it spends must fit the rolling limits in force now, counted
	// from now: it is signed now, maybe long after it was held (its
	// reservation may have left a short window meanwhile, and the key spent
	// that budget again), and the policy in force may have lowered its
	// limits. Its reservation is renewed: given back and taken again at
	// now, at once; refused, the request is refused with its record.
	if why, refused := r.rs.unlimitedGrant(p.key.id, vd.d); refused {
		return e.refusePending(r, approved, refusal.RuleRollingLimit, why)
	}
	res, err := p.res.Renew(now, p.key.id, spends(vd.d))
	if err != nil {
		var lr *stateful.Refusal
		switch {
		case errors.As(err, &lr) && lr.Rule == refusal.RuleCheckpoint:
			return false, nil, checkpointRefusal(lr)
		case errors.As(err, &lr):
			// p.res is released (Renew); releasing it again changes
			// nothing, and renewing it reserves afresh.
			return e.refusePending(r, approved, lr.Rule, lr.Msg)
		}
		return e.refusePending(r, approved, refusal.RuleApprovals, err.Error())
	}
	p.res = res
	rec.Decision = audit.DecisionApproved
	rec.Summary = fmt.Sprintf("approval %s: %s: %s", p.id, why, p.summary)
	// The signature's record is a decision record (signDecided): without
	// room for it nothing is signed and nothing changes here (the renewed
	// reservation is kept while the request waits).
	sr, err := signDecided(al, p.key, vd.d, rec)
	if err != nil {
		return false, nil, err
	}
	p.res.Commit()
	sr.ApprovalID, sr.Approvers = p.id, approverNames(approved)
	p.approved, p.status, p.result, p.lastSeq, p.lastLine, p.policyHash = approved, proto.StatusSigned, sr, sr.AuditSeq, sr.AuditRecord, vd.policyHash
	return true, sr, nil
}

// refusePending refuses r.p, whose approvals (approved) sufficed under r.vd,
// because rule refuses what it spends now (why), with its record; its
// reservation is released. When the record cannot be appended nothing
// else changes (not done, err), and the request is decided again later.
func (e *Enclave) refusePending(r *redecision, approved []approverSig, rule, why string) (done bool, resp proto.Message, err error) {
	p, vd := r.p, r.vd
	line, seq, err := r.al.appendEvent(audit.Record{
		TimeMS: r.now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest, Client: p.client.String(),
		Key: p.key.id, PolicyVersion: vd.policyVersion, Approvers: approverNames(approved),
		Decision: audit.DecisionRefused, Rule: rule,
		Summary: fmt.Sprintf("approval %s: approved, but refused when it was to be signed (%s: %s): %s", p.id, rule, why, p.summary),
	})
	if err != nil {
		return false, nil, eventFailure(fmt.Sprintf("the refusal of approval %s (%s)", p.id, rule), err)
	}
	p.approved, p.status, p.lastSeq, p.lastLine, p.policyHash = approved, api.StatusRejected, seq, line, vd.policyHash
	p.outcome = clipMessage(fmt.Sprintf("refused when it was to be signed (%s): %s", rule, why))
	p.res.Release()
	return true, nil, recorded(refusal.CodePolicyDenied, rule, p.outcome, line)
}

// redecidePending decides every request waiting for approvals again under
// the policy in force; governance calls it as a policy change comes into
// force, and tick while one is owed. Each is refused, signed at once, or
// left waiting under the new rule, with its record (reconcile). One whose
// record cannot be appended yet, or that cannot be signed while the host
// does not persist, keeps waiting and is decided again at the next tick
// (or approval, which decides it again anyway, so that the policy in
// force always governs).
func (e *Enclave) redecidePending(al *auditLog, now time.Time) {
	// Under the read side of guard.mu, as every decision: no policy comes
	// into force between the judgement and its record (guard.putInForce).
	e.guard.mu.RLock()
	defer e.guard.mu.RUnlock()
	rs := e.guard.inForce()
	a := &e.approvals
	a.mu.Lock()
	defer a.mu.Unlock()
	owed := false
	for _, p := range a.waitingLocked(now, rs.pol.Hash()) {
		if done, _, err := e.reconcile(&redecision{al: al, rs: rs, p: p, vd: rs.judge(p), now: now}); !done && err != nil {
			owed = true
			if a.firstOwedLocked() {
				e.log.Error("a request waiting for approvals cannot be decided under the policy in force yet; it keeps waiting and is decided at the next approval or request", "approval", p.id, "version", rs.pol.Version())
			}
		}
	}
	a.settleOwedLocked(owed)
}

// approval takes an approver's decision on a pending request. The request
// is first decided again under the policy in force (reconcile): refused,
// signed at once, or waiting under that policy's rule, so that only an
// approver of the policy in force, with the key it names, counts. Each
// decision that changes the request is an event record, appended before
// the change is made: when it cannot be appended the answer is 503 and
// nothing changed (the approver sends it again later). A decision that
// changes nothing (an approval from an approver already counted) appends
// nothing: it is answered with the request's state and its latest record,
// marked AlreadyCounted, so that a replayed approval is harmless. An
// approver who approved cannot reject afterwards: an approval is not
// withdrawn (another approver can still reject).
func (e *Enclave) approval(al *auditLog, m *proto.ApprovalRequest, now time.Time) (proto.Message, error) {
	req, err := api.DecodeApprovalRequest(m.Body)
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(req.Signature, "0x"))
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "approval: signature: not hex")
	}
	domain := api.DomainApprove
	if req.Decision == api.DecisionReject {
		domain = api.DomainReject
	}
	// The signature is verified before the locks are taken (preverify),
	// so that no approval holds approvals.mu, which every approval and
	// every request held for approval takes, nor the read side of
	// guard.mu, for a verification; under the locks its result is used
	// when the key the approver has then is the key it was verified with.
	pre := e.preverify(req.ApprovalID, req.Approver, domain, sig, now)
	// The approval is judged, counted and signed under the read side of
	// guard.mu, as a sign request is decided (sign): a policy change that
	// removes this approver is either in force before the approval is
	// judged (and it no longer counts) or recorded after its decision's
	// record; never in between.
	e.guard.mu.RLock()
	defer e.guard.mu.RUnlock()
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.getLocked(req.ApprovalID)
	if !ok {
		return nil, refuse(refusal.CodeNotFound, "no request waits for approval %q (unknown, or expired after %v)", req.ApprovalID, ApprovalTTL)
	}
	switch {
	case p.status == proto.StatusSigned:
		return p.result, nil // single-use: the signature exists once; asking again returns it
	case p.status == api.StatusRejected:
		msg := "the request was rejected"
		if p.outcome != "" {
			msg += ": " + p.outcome
		}
		return nil, refuseRule(refusal.CodeApprovalRejected, refusal.RuleApprovals, msg)
	case p.status == api.StatusExpired || !now.Before(p.expires):
		// Past its expiry nobody can approve it, whether or not its
		// expiry record is written yet (the tick writes it).
		return nil, refuse(refusal.CodeNotFound, "no request waits for approval %q: it expired at %s", req.ApprovalID, msTime(p.expires.UnixMilli()))
	}
	// Decided again under the policy in force: its rule from now on.
	rs := e.guard.inForce()
	r := &redecision{al: al, rs: rs, p: p, vd: rs.judge(p), now: now}
	if done, resp, err := e.reconcile(r); done || err != nil {
		return resp, err
	}
	idx := slices.IndexFunc(p.rule.Approvers, func(a stateful.ApproverKey) bool { return a.Name == req.Approver })
	if idx < 0 {
		return nil, refuse(refusal.CodeUnauthorized, "%q is not an approver of key %s under policy version %d", req.Approver, p.key.id, rs.pol.Version())
	}
	me := approverSig{name: req.Approver, key: p.rule.Approvers[idx].PublicKey}
	if me.key.Equal(p.client) {
		return nil, refuse(refusal.CodeUnauthorized, "the initiating client cannot approve its own request")
	}
	if err := pre.verify(me.key, domain, p.digest, sig); err != nil {
		return nil, refuse(refusal.CodeUnauthorized, "the %s signature of %s does not verify over approval digest %x", req.Decision, req.Approver, p.digest)
	}
	if slices.ContainsFunc(p.approved, func(a approverSig) bool { return a.name == me.name && a.key.Equal(me.key) }) {
		if req.Decision == api.DecisionReject {
			return nil, refuseRule(refusal.CodeBadRequest, refusal.RuleApprovals, fmt.Sprintf(
				"%s already approved approval %s, and an approval is not withdrawn: nothing changed; another approver can still reject it, or it expires at %s",
				req.Approver, p.id, msTime(p.expires.UnixMilli())))
		}
		return pendingAnswer(p, true), nil
	}
	rec := audit.Record{
		TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest, Client: p.client.String(),
		Key: p.key.id, PolicyVersion: rs.pol.Version(), Rule: refusal.RuleApprovals,
	}
	if req.Decision == api.DecisionReject {
		rec.Decision, rec.Approvers = audit.DecisionRejected, []string{req.Approver}
		rec.Summary = fmt.Sprintf("approval %s rejected by %s: %s", p.id, req.Approver, p.summary)
		line, seq, err := al.appendEvent(rec)
		if err != nil {
			return nil, eventFailure(fmt.Sprintf("the rejection of approval %s by %s", p.id, req.Approver), err)
		}
		p.status, p.lastSeq, p.lastLine, p.outcome = api.StatusRejected, seq, line, "rejected by "+req.Approver
		p.res.Release()
		return nil, recorded(refusal.CodeApprovalRejected, refusal.RuleApprovals, "rejected by "+req.Approver, line)
	}
	approved := append(slices.Clone(p.approved), me)
	if len(approved) < p.rule.Quorum {
		rec.Decision, rec.Approvers = audit.DecisionPendingApproval, approverNames(approved)
		rec.Summary = fmt.Sprintf("approval %s: %d of %d (%s): %s", p.id, len(approved), p.rule.Quorum, req.Approver, p.summary)
		line, seq, err := al.appendEvent(rec)
		if err != nil {
			return nil, eventFailure(fmt.Sprintf("the approval of approval %s by %s", p.id, req.Approver), err)
		}
		p.approved, p.lastSeq, p.lastLine = approved, seq, line
		return pendingAnswer(p, false), nil
	}
	// The quorum is met.
	_, resp, err := e.signPending(r, approved, "approved by "+strings.Join(approverNames(approved), ", "))
	return resp, err
}

// preverified is the outcome of an approval's signature verified
// before the locks were taken (Enclave.preverify), over digest with key.
type preverified struct {
	done   bool
	key    stamp.PublicKey
	digest [32]byte
	err    error
}

// verify is admin.VerifyDigest(key, domain, digest, sig), taken from pre
// when pre verified sig over the same digest with the same key (the
// domain and sig are the approval's own), else computed now.
func (pre *preverified) verify(key stamp.PublicKey, domain string, digest [32]byte, sig []byte) error {
	if pre.done && pre.key.Equal(key) && pre.digest == digest {
		return pre.err
	}
	return admin.VerifyDigest(key, domain, digest, sig)
}

// preverify verifies an approver's signature on the request held under
// id outside the locks of approval: with the key the policy in force
// gives approver for the request's key, over the request's approval
// digest, both read now. It verifies nothing for a request that is not
// waiting, or an approver the policy does not name; approval then decides
// as before, verifying under the locks if it comes to that.
func (e *Enclave) preverify(id, approver, domain string, sig []byte, now time.Time) preverified {
	e.approvals.mu.Lock()
	p, ok := e.approvals.getLocked(id)
	var keyID string
	var digest [32]byte
	if ok {
		ok = p.status == proto.StatusPending && now.Before(p.expires)
		keyID, digest = p.key.id, p.digest
	}
	e.approvals.mu.Unlock()
	if !ok {
		return preverified{}
	}
	rules, ok := e.guard.inForce().pol.KeyRulesView(keyID)
	if !ok || rules.Approvals == nil {
		return preverified{}
	}
	i := slices.IndexFunc(rules.Approvals.Approvers, func(a stateful.ApproverKey) bool { return a.Name == approver })
	if i < 0 {
		return preverified{}
	}
	key := rules.Approvals.Approvers[i].PublicKey
	return preverified{done: true, key: key, digest: digest, err: admin.VerifyDigest(key, domain, digest, sig)}
}

// info describes the request held under id at now (GET
// /v1/approvals/{id}). One past its expiry is answered as not found, as
// after its expiry record. The signature of a signed request travels in
// the answer's Result, which Enclave.released withholds until the host
// has acknowledged its record. It reads the approvals only: nothing is
// decided, and no record is appended.
func (a *approvals) info(id string, now time.Time) (proto.Message, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.getLocked(id)
	if !ok {
		return nil, refuse(refusal.CodeNotFound, "no request waits for approval %q (unknown, or expired after %v)", id, ApprovalTTL)
	}
	if p.status == api.StatusExpired || (p.status == proto.StatusPending && !now.Before(p.expires)) {
		return nil, refuse(refusal.CodeNotFound, "no request waits for approval %q: it expired at %s", id, msTime(p.expires.UnixMilli()))
	}
	return &proto.ApprovalInfoResponse{
		ID: p.id, Status: p.status, Body: p.body, Digest: p.digest, SummaryLines: p.lines, Quorum: uint32(p.rule.Quorum),
		Approvers: approverNames(p.approved), ExpiresMS: p.expires.UnixMilli(), AuditSeq: p.lastSeq, Result: p.result,
	}, nil
}

// summaryLines is s as the host protocol carries it: line by line, the
// policy's labels apart, so that approvers compare the substance with
// their own decoding and ignore the labels as whole fields.
func summaryLines(s summary.Summary) []proto.SummaryLine {
	out := make([]proto.SummaryLine, len(s.Lines))
	for i, l := range s.Lines {
		out[i] = proto.SummaryLine{Key: l.Key, Value: l.Value}
		for _, lb := range l.Labels {
			out[i].Labels = append(out[i].Labels, proto.SummaryLabel{At: uint32(lb.At), End: uint32(lb.End), Text: lb.Text})
		}
	}
	return out
}
