package enclave

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
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
// held until it is signed (commit), rejected or expired (release).
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
	status    string
	result    *proto.SignResponse
	lastSeq   uint64
	reqDigest []byte
	// policyHash is the hash of the policy that allowed it.
	policyHash [32]byte
}

type approvals struct {
	mu sync.Mutex
	m  map[string]*pending
}

// expire drops requests past their time, releasing their reservations and
// recording each.
func (e *Enclave) expire(v *vault, now time.Time) {
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	for id, p := range e.approvals.m {
		if now.Before(p.expires) {
			continue
		}
		if p.status == proto.StatusPending {
			p.res.Release()
			v.audit.append(audit.Record{
				TimeMS: now.UnixMilli(), Kind: audit.KindDecision, RequestDigest: p.reqDigest,
				Client: p.client.String(), Key: p.key.id, Summary: "approval " + id + " expired: " + p.summary,
				Decision: "expired", Rule: RuleApprovals, PolicyVersion: e.rules.Load().pol.Version(), Approvers: p.approved,
			})
		}
		delete(e.approvals.m, id)
	}
}

// hold makes a request pending: it records it and answers 202's message.
func (e *Enclave) hold(v *vault, rs *ruleset, c *caller, body []byte, d *decided, res *limits.Reservation, rule policy.Approvals, rec audit.Record) proto.Message {
	now := e.now()
	e.expire(v, now)
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
	p.lastSeq = seq
	if e.approvals.m == nil {
		e.approvals.m = map[string]*pending{}
	}
	e.approvals.m[p.id] = p
	return &proto.SignResponse{
		From: c.key.addr, Status: proto.StatusPending, ApprovalID: p.id, Summary: p.summary, Quorum: uint32(rule.Quorum),
		ExpiresMS: p.expires.UnixMilli(), AuditSeq: seq, AuditRecord: line, SignedTransaction: []byte{},
	}
}

func approverNames(r policy.Approvals) []string {
	out := make([]string, len(r.Approvers))
	for i, a := range r.Approvers {
		out[i] = a.Name
	}
	return out
}

// approval takes an approver's decision on a pending request.
func (e *Enclave) approval(v *vault, m *proto.ApprovalRequest) proto.Message {
	req, err := api.DecodeApprovalRequest(m.Body)
	if err != nil {
		return refuse(api.CodeBadRequest, "%v", err)
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(req.Signature, "0x"))
	if err != nil {
		return refuse(api.CodeBadRequest, "approval: signature: not hex")
	}
	now := e.now()
	if e.dueSoon() {
		e.applyDue(v)
	}
	e.expire(v, now)
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.m[req.ApprovalID]
	if !ok {
		return refuse(api.CodeNotFound, "no request waits for approval %q (unknown, or expired after %v)", req.ApprovalID, ApprovalTTL)
	}
	switch p.status {
	case proto.StatusSigned:
		return p.result // single-use: the signature exists once; asking again returns it
	case api.StatusRejected:
		return &proto.Error{Code: api.CodeApprovalRejected, Rule: RuleApprovals, Message: "the request was rejected"}
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
	rs := e.rules.Load()
	rec := audit.Record{
		TimeMS: nowMS(e.now), Kind: audit.KindDecision, RequestDigest: p.reqDigest, Client: p.client.String(),
		Key: p.key.id, PolicyVersion: rs.pol.Version(), Rule: RuleApprovals,
	}
	if req.Decision == api.DecisionReject {
		p.status = api.StatusRejected
		p.res.Release()
		rec.Decision, rec.Approvers = audit.DecisionRejected, []string{req.Approver}
		rec.Summary = fmt.Sprintf("approval %s rejected by %s: %s", p.id, req.Approver, p.summary)
		line, _, err := v.audit.append(rec)
		if err != nil {
			return appendRefusal(err)
		}
		return &proto.Error{Code: api.CodeApprovalRejected, Rule: RuleApprovals, Message: "rejected by " + req.Approver, AuditRecord: line}
	}
	if !slices.Contains(p.approved, req.Approver) {
		p.approved = append(p.approved, req.Approver)
	}
	if len(p.approved) < p.rule.Quorum {
		rec.Decision, rec.Approvers = audit.DecisionPendingApproval, slices.Clone(p.approved)
		rec.Summary = fmt.Sprintf("approval %s: %d of %d (%s): %s", p.id, len(p.approved), p.rule.Quorum, req.Approver, p.summary)
		line, seq, err := v.audit.append(rec)
		if err != nil {
			return appendRefusal(err)
		}
		p.lastSeq = seq
		return &proto.SignResponse{
			From: p.key.addr, Status: proto.StatusPending, ApprovalID: p.id, Summary: p.summary, Quorum: uint32(p.rule.Quorum),
			Approvers: slices.Clone(p.approved), ExpiresMS: p.expires.UnixMilli(), AuditSeq: seq, AuditRecord: line, SignedTransaction: []byte{},
		}
	}
	// The quorum is met. A key frozen meanwhile signs nothing.
	if fi, frozen := e.frozen.get(p.key.id); frozen {
		p.status = api.StatusRejected
		p.res.Release()
		rec.Decision, rec.Rule, rec.Approvers = audit.DecisionRefused, RuleFrozen, slices.Clone(p.approved)
		rec.Summary = fmt.Sprintf("approval %s: approved, but key %s was frozen (audit record %d): %s", p.id, p.key.id, fi.Seq, p.summary)
		line, _, err := v.audit.append(rec)
		if err != nil {
			return appendRefusal(err)
		}
		return &proto.Error{Code: api.CodePolicyDenied, Rule: RuleFrozen, Message: fmt.Sprintf("key %s was frozen (audit record %d) before the approvals were complete", p.key.id, fi.Seq), AuditRecord: line}
	}
	// The policy may have changed while the request waited: it must still
	// allow it (a tightening is not bypassed by a pending approval).
	if d, rule, reason := e.redecide(rs, p); d == nil {
		p.status = api.StatusRejected
		p.res.Release()
		rec.Decision, rec.Rule, rec.Approvers = audit.DecisionRefused, rule, slices.Clone(p.approved)
		rec.Summary = fmt.Sprintf("approval %s: approved, but policy version %d refuses it now: %s", p.id, rs.pol.Version(), p.summary)
		line, _, err := v.audit.append(rec)
		if err != nil {
			return appendRefusal(err)
		}
		return &proto.Error{Code: api.CodePolicyDenied, Rule: rule, Message: clipMessage("the policy in force no longer allows it: " + reason), AuditRecord: line}
	}
	rec.Decision, rec.Approvers, rec.Rule = audit.DecisionApproved, slices.Clone(p.approved), ""
	rec.Summary = fmt.Sprintf("approval %s: approved by %s: %s", p.id, strings.Join(p.approved, ", "), p.summary)
	resp, perr := e.signDecided(v, p.key, p.d, rec)
	if perr != nil {
		return perr
	}
	p.res.Commit()
	p.status, p.result, p.lastSeq = proto.StatusSigned, resp, resp.AuditSeq
	resp.ApprovalID, resp.Approvers = p.id, slices.Clone(p.approved)
	return resp
}

// approvalInfo describes a pending request.
func (e *Enclave) approvalInfo(v *vault, m *proto.ApprovalInfoRequest) proto.Message {
	e.expire(v, e.now())
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	p, ok := e.approvals.m[m.ID]
	if !ok {
		return refuse(api.CodeNotFound, "no request waits for approval %q (unknown, or expired after %v)", m.ID, ApprovalTTL)
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
