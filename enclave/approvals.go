package enclave

import (
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
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/limits"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// Approvals.
const (
	// ApprovalTTL is how long a request waits for its approvals.
	ApprovalTTL = time.Hour
	// MaxPending bounds the requests waiting for approvals; beyond it new
	// ones are refused (fail closed) until some are decided or expire.
	MaxPending = 1024
)

// pending is a request waiting for approvals. Its limit reservation is
// held until it is signed (commit), rejected or expired (release), each
// with its record.
type pending struct {
	id        string
	body      []byte
	digest    [32]byte // api.ApprovalDigest(body): what approvers sign
	client    stamp.PublicKey
	key       *signingKey
	d         *decided
	res       *limits.Reservation
	rule      policy.Approvals
	summary   string
	expires   time.Time
	approved  []string
	status    string // proto.StatusPending, proto.StatusSigned, api.StatusRejected, api.StatusExpired
	result    *proto.SignResponse
	reqDigest []byte
	// lastSeq and lastLine are the latest audit record about the request:
	// an approval already counted is answered with them.
	lastSeq  uint64
	lastLine []byte
	// policyHash is the hash of the policy that allowed it.
	policyHash [32]byte
}

type approvals struct {
	mu sync.Mutex
	m  map[string]*pending
	// next is the earliest expiry (Unix ms) of the requests in m, 0 when
	// there are none: settle's cheap test. Written with mu held.
	next atomic.Int64
}

// dueAt reports whether a request held may be past its expiry at now.
func (a *approvals) dueAt(now time.Time) bool {
	n := a.next.Load()
	return n != 0 && now.UnixMilli() >= n
}

// expire ends the requests past their expiry (settle calls it). A request
// still waiting for approvals becomes unusable at once (past its expiry
// nobody can approve it), and is expired with its record: its limit
// reservation is released, and it is dropped, only once the record is
// appended. While it cannot be, the request stays, marked expired, and the
// next settle tries again. Signed and rejected requests, whose records
// exist, are dropped.
func (e *Enclave) expire(v *vault, now time.Time) {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	var due []*pending
	var next int64
	for _, p := range e.approvals.m {
		if now.Before(p.expires) {
			if ms := p.expires.UnixMilli(); next == 0 || ms < next {
				next = ms
			}
			continue
		}
		due = append(due, p)
	}
	// In order of expiry, so that the records are too.
	sort.Slice(due, func(i, j int) bool {
		if !due[i].expires.Equal(due[j].expires) {
			return due[i].expires.Before(due[j].expires)
		}
		return due[i].id < due[j].id
	})
	blocked := false
	pv := e.rules.Load().pol.Version()
	for _, p := range due {
		if p.status != proto.StatusPending && p.status != api.StatusExpired {
			delete(e.approvals.m, p.id)
			continue
		}
		first := p.status == proto.StatusPending
		p.status = api.StatusExpired // unusable from now on, recorded or not
		if !blocked {
			sum := fmt.Sprintf("approval %s expired at %s with %d of %d approvals: %s", p.id, msTime(p.expires.UnixMilli()), len(p.approved), p.rule.Quorum, p.summary)
			_, _, err := v.audit.appendEvent(audit.Record{
				TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest,
				Client: p.client.String(), Key: p.key.id, Summary: sum,
				Decision: api.StatusExpired, Rule: RuleApprovals, PolicyVersion: pv, Approvers: slices.Clone(p.approved),
			})
			if err == nil {
				p.res.Release()
				delete(e.approvals.m, p.id)
				continue
			}
			blocked = true
		}
		if first {
			e.log.Error("approval request expired; its audit record is owed until the host persists the backlog", "approval", p.id)
		}
		if ms := p.expires.UnixMilli(); next == 0 || ms < next {
			next = ms
		}
	}
	e.approvals.next.Store(next)
}

// hold makes a request pending: it records it and answers 202's message.
// (Expired requests were dropped by the settle that began the request.)
func (e *Enclave) hold(v *vault, rs *ruleset, c *caller, body []byte, d *decided, res *limits.Reservation, rule policy.Approvals, rec audit.Record) proto.Message {
	now := e.now()
	idb := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, idb); err != nil {
		res.Release()
		return refuse(api.CodeUnavailable, "drawing an approval id: %v", err)
	}
	p := &pending{
		id: hex.EncodeToString(idb), body: append([]byte(nil), body...), digest: api.ApprovalDigest(body),
		client: c.client, key: c.key, d: d, res: res, rule: rule, summary: rec.Summary,
		expires: now.Add(ApprovalTTL), status: proto.StatusPending, reqDigest: rec.RequestDigest,
		policyHash: rs.pol.Hash(),
	}
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	if len(e.approvals.m) >= MaxPending {
		res.Release()
		return &proto.Error{Code: api.CodeUnavailable, Rule: RuleApprovals, Message: fmt.Sprintf("%d requests already wait for approvals; refusing more until some are decided or expire", MaxPending)}
	}
	rec.Decision = audit.DecisionPendingApproval
	rec.Rule = RuleApprovals
	rec.Summary = fmt.Sprintf("approval %s: %d of %v needed: %s", p.id, rule.Quorum, approverNames(rule), rec.Summary)
	line, seq, err := v.audit.append(rec)
	if err != nil {
		res.Release()
		return appendRefusal(err)
	}
	p.lastSeq, p.lastLine = seq, line
	if e.approvals.m == nil {
		e.approvals.m = map[string]*pending{}
	}
	e.approvals.m[p.id] = p
	if n := e.approvals.next.Load(); n == 0 || p.expires.UnixMilli() < n {
		e.approvals.next.Store(p.expires.UnixMilli())
	}
	return pendingAnswer(p, false)
}

// pendingAnswer is the 202 message of a request still waiting: with its
// latest record, which counted (or, with alreadyCounted, had already
// counted) the approver who asked.
func pendingAnswer(p *pending, alreadyCounted bool) *proto.SignResponse {
	return &proto.SignResponse{
		From: p.key.addr, Status: proto.StatusPending, ApprovalID: p.id, Summary: p.summary, Quorum: uint32(p.rule.Quorum),
		Approvers: slices.Clone(p.approved), ExpiresMS: p.expires.UnixMilli(), AuditSeq: p.lastSeq, AuditRecord: p.lastLine,
		SignedTransaction: []byte{}, AlreadyCounted: alreadyCounted,
	}
}

func approverNames(r policy.Approvals) []string {
	out := make([]string, len(r.Approvers))
	for i, a := range r.Approvers {
		out[i] = a.Name
	}
	return out
}

// approval takes an approver's decision on a pending request. Each
// decision that changes the request is an event record, appended before
// the change is made: when it cannot be appended the answer is 503 and
// nothing changed (the approver sends it again later). A decision that
// changes nothing (an approval from an approver already counted) appends
// nothing: it is answered with the request's state and its latest record,
// marked AlreadyCounted, so that a replayed approval is harmless. An
// approver who approved cannot reject afterwards: an approval is not
// withdrawn (another approver can still reject).
func (e *Enclave) approval(v *vault, m *proto.ApprovalRequest) proto.Message {
	req, err := api.DecodeApprovalRequest(m.Body)
	if err != nil {
		return refuse(api.CodeBadRequest, "%v", err)
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(req.Signature, "0x"))
	if err != nil {
		return refuse(api.CodeBadRequest, "approval: signature: not hex")
	}
	e.settle(v)
	now := e.now()
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.m[req.ApprovalID]
	if !ok {
		return refuse(api.CodeNotFound, "no request waits for approval %q (unknown, or expired after %v)", req.ApprovalID, ApprovalTTL)
	}
	switch {
	case p.status == proto.StatusSigned:
		return p.result // single-use: the signature exists once; asking again returns it
	case p.status == api.StatusRejected:
		return &proto.Error{Code: api.CodeApprovalRejected, Rule: RuleApprovals, Message: "the request was rejected"}
	case p.status == api.StatusExpired || !now.Before(p.expires):
		// Past its expiry nobody can approve it, whether or not its
		// expiry record is written yet (settle writes it).
		return refuse(api.CodeNotFound, "no request waits for approval %q: it expired at %s", req.ApprovalID, msTime(p.expires.UnixMilli()))
	}
	idx := slices.IndexFunc(p.rule.Approvers, func(a policy.ApproverKey) bool { return a.Name == req.Approver })
	if idx < 0 {
		return refuse(api.CodeUnauthorized, "%q is not an approver of key %s", req.Approver, p.key.id)
	}
	pub := p.rule.Approvers[idx].PublicKey
	if pub.Equal(p.client) {
		return refuse(api.CodeUnauthorized, "the initiating client cannot approve its own request")
	}
	domain := api.DomainApprove
	if req.Decision == api.DecisionReject {
		domain = api.DomainReject
	}
	if err := admin.VerifyDigest(pub, domain, p.digest, sig); err != nil {
		return refuse(api.CodeUnauthorized, "the %s signature of %s does not verify over approval digest %x", req.Decision, req.Approver, p.digest)
	}
	if slices.Contains(p.approved, req.Approver) {
		if req.Decision == api.DecisionReject {
			return &proto.Error{Code: api.CodeBadRequest, Rule: RuleApprovals, Message: fmt.Sprintf(
				"%s already approved approval %s, and an approval is not withdrawn: nothing changed; another approver can still reject it, or it expires at %s",
				req.Approver, p.id, msTime(p.expires.UnixMilli()))}
		}
		return pendingAnswer(p, true)
	}
	rs := e.rules.Load()
	rec := audit.Record{
		TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest, Client: p.client.String(),
		Key: p.key.id, PolicyVersion: rs.pol.Version(), Rule: RuleApprovals,
	}
	if req.Decision == api.DecisionReject {
		rec.Decision, rec.Approvers = audit.DecisionRejected, []string{req.Approver}
		rec.Summary = fmt.Sprintf("approval %s rejected by %s: %s", p.id, req.Approver, p.summary)
		line, seq, err := v.audit.appendEvent(rec)
		if err != nil {
			if errors.Is(err, audit.ErrRecordTooLarge) {
				return appendRefusal(err)
			}
			return refuse(api.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("the rejection of approval %s by %s", p.id, req.Approver), err))
		}
		p.status, p.lastSeq, p.lastLine = api.StatusRejected, seq, line
		p.res.Release()
		return &proto.Error{Code: api.CodeApprovalRejected, Rule: RuleApprovals, Message: "rejected by " + req.Approver, AuditRecord: line}
	}
	approved := append(slices.Clone(p.approved), req.Approver)
	if len(approved) < p.rule.Quorum {
		rec.Decision, rec.Approvers = audit.DecisionPendingApproval, approved
		rec.Summary = fmt.Sprintf("approval %s: %d of %d (%s): %s", p.id, len(approved), p.rule.Quorum, req.Approver, p.summary)
		line, seq, err := v.audit.appendEvent(rec)
		if err != nil {
			if errors.Is(err, audit.ErrRecordTooLarge) {
				return appendRefusal(err)
			}
			return refuse(api.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("the approval of approval %s by %s", p.id, req.Approver), err))
		}
		p.approved, p.lastSeq, p.lastLine = approved, seq, line
		return pendingAnswer(p, false)
	}
	// The quorum is met. A key frozen meanwhile signs nothing.
	if fi, frozen := e.frozen.get(p.key.id); frozen {
		rec.Decision, rec.Rule, rec.Approvers = audit.DecisionRefused, RuleFrozen, approved
		rec.Summary = fmt.Sprintf("approval %s: approved, but key %s was frozen (%s): %s", p.id, p.key.id, fi.record(), p.summary)
		line, seq, err := v.audit.appendEvent(rec)
		if err != nil {
			if errors.Is(err, audit.ErrRecordTooLarge) {
				return appendRefusal(err)
			}
			return refuse(api.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("the approval of approval %s by %s", p.id, req.Approver), err))
		}
		p.approved, p.status, p.lastSeq, p.lastLine = approved, api.StatusRejected, seq, line
		p.res.Release()
		return &proto.Error{Code: api.CodePolicyDenied, Rule: RuleFrozen, Message: fmt.Sprintf("key %s was frozen (%s) before the approvals were complete", p.key.id, fi.record()), AuditRecord: line}
	}
	// The policy may have changed while the request waited: it must still
	// allow it (a tightening is not bypassed by a pending approval).
	if d, rule, reason := e.redecide(rs, p); d == nil {
		rec.Decision, rec.Rule, rec.Approvers = audit.DecisionRefused, rule, approved
		rec.Summary = fmt.Sprintf("approval %s: approved, but policy version %d refuses it now: %s", p.id, rs.pol.Version(), p.summary)
		line, seq, err := v.audit.appendEvent(rec)
		if err != nil {
			if errors.Is(err, audit.ErrRecordTooLarge) {
				return appendRefusal(err)
			}
			return refuse(api.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("the approval of approval %s by %s", p.id, req.Approver), err))
		}
		p.approved, p.status, p.lastSeq, p.lastLine = approved, api.StatusRejected, seq, line
		p.res.Release()
		return &proto.Error{Code: api.CodePolicyDenied, Rule: rule, Message: clipMessage("the policy in force no longer allows it: " + reason), AuditRecord: line}
	}
	rec.Decision, rec.Approvers, rec.Rule = audit.DecisionApproved, approved, ""
	rec.Summary = fmt.Sprintf("approval %s: approved by %s: %s", p.id, strings.Join(approved, ", "), p.summary)
	// The signature is a decision like a sign request's: not while the
	// host cannot persist or has stopped acknowledging (nothing changes,
	// the approval can be sent again).
	if err := v.audit.canDecide(); err != nil {
		return &proto.Error{Code: api.CodeUnavailable, Rule: RuleAudit, Message: err.Error()}
	}
	// The signature's record is a decision record (signDecided): without
	// room for it nothing is signed and nothing changes here.
	resp, perr := e.signDecided(v, p.key, p.d, rec)
	if perr != nil {
		return perr
	}
	p.res.Commit()
	p.approved, p.status, p.result, p.lastSeq, p.lastLine = approved, proto.StatusSigned, resp, resp.AuditSeq, resp.AuditRecord
	resp.ApprovalID, resp.Approvers = p.id, slices.Clone(approved)
	return resp
}

// approvalInfo describes a pending request. One past its expiry is
// answered as not found, as after its expiry record.
func (e *Enclave) approvalInfo(v *vault, m *proto.ApprovalInfoRequest) proto.Message {
	e.settle(v)
	now := e.now()
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.m[m.ID]
	if !ok {
		return refuse(api.CodeNotFound, "no request waits for approval %q (unknown, or expired after %v)", m.ID, ApprovalTTL)
	}
	if p.status == api.StatusExpired || (p.status == proto.StatusPending && !now.Before(p.expires)) {
		return refuse(api.CodeNotFound, "no request waits for approval %q: it expired at %s", m.ID, msTime(p.expires.UnixMilli()))
	}
	return &proto.ApprovalInfoResponse{
		ID: p.id, Status: p.status, Body: p.body, Digest: p.digest, Summary: p.summary, Quorum: uint32(p.rule.Quorum),
		Approvers: append([]string{}, p.approved...), ExpiresMS: p.expires.UnixMilli(), AuditSeq: p.lastSeq, Result: p.result,
	}
}

// redecide decides a pending request again under the policy in force. It
// returns nil and the refusing rule when that policy refuses it.
func (e *Enclave) redecide(rs *ruleset, p *pending) (*decided, string, string) {
	if rs.pol.Hash() == p.policyHash {
		return p.d, "", ""
	}
	req, err := api.DecodeSignRequest(p.body)
	if err != nil {
		return nil, RuleApprovals, err.Error()
	}
	c := &caller{client: p.client, key: p.key}
	var d *decided
	var perr *proto.Error
	switch {
	case req.EthTransaction != nil:
		d, perr = e.decideTransaction(rs.pol, c, req.EthTransaction)
	case req.EthPersonalMessage != nil:
		d, perr = e.decidePersonalMessage(rs.pol, c, req.EthPersonalMessage)
	case req.EthTypedData != nil:
		d, perr = e.decideTypedData(rs.pol, c, req.EthTypedData)
	default:
		return nil, RuleApprovals, "no payload"
	}
	if perr != nil {
		return nil, RuleApprovals, perr.Message
	}
	if !d.decision.Allow {
		return nil, d.decision.Rule, d.decision.Reason
	}
	return d, "", ""
}
