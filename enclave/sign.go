package enclave

import (
	"errors"
	"fmt"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/summary"
)

// decided is a request decoded and judged by the policy, ready to sign.
type decided struct {
	digest   [32]byte
	tx       *ethtx.Tx // nil for messages
	decision policy.Decision
	summary  func() summary.Summary
}

// caller is who asked, after the stamp verified.
type caller struct {
	client stamp.PublicKey
	name   string
	key    *signingKey
}

// admitted is a request the policy in force allows, with its limits
// reserved: ready to sign.
type admitted struct {
	c   *caller
	d   *decided
	rec audit.Record
	res *stateful.Reservation
}

func (e *Enclave) sign(v *vault, m *proto.SignRequest) proto.Message {
	e.settle(v)
	// The read side of policyMu is held until the signature's record is
	// appended, not only through admit: a policy change appends the record
	// that puts it in force under the write side (putInForce), so that in
	// the audit log every decision after that record is the new policy's,
	// and none of the old one's follows it. Nothing here waits (appending
	// does not; the wait for the record's acknowledgement comes after, in
	// Handle), so a policy change waits at most for the signatures being
	// made.
	e.policyMu.RLock()
	defer e.policyMu.RUnlock()
	var a admitted
	if answer := e.admit(v, m, &a); answer != nil {
		return answer
	}
	resp, perr := e.signDecided(v, a.c.key, a.d, a.rec)
	if perr != nil {
		a.res.Release()
		return perr
	}
	a.res.Commit()
	e.log.Debug("decision", "seq", resp.AuditSeq, "client", a.c.name, "key", a.c.key.id, "allow", true)
	return resp
}

// admit decides m under the policy in force and reserves its limits. Its
// caller holds the read side of policyMu throughout, so that the policy that
// allows it, the limits that count it, the freeze check, the refusal
// count toward a freeze and an approval hold all belong to one ruleset,
// and no policy swap falls between the decision and the reservation. It
// fills a and returns nil when the request is to be signed, else the
// answer (a refusal, recorded and counted, or a request held for
// approvals). The wait for the signature's acknowledgement happens after
// the lock is released.
func (e *Enclave) admit(v *vault, m *proto.SignRequest, a *admitted) proto.Message {
	rs := e.rules.Load()
	c, req, perr := e.authenticate(v, rs.pol, m)
	if perr != nil {
		return perr
	}
	if err := v.audit.canDecide(); err != nil {
		return &proto.Error{Code: refusal.CodeUnavailable, Rule: refusal.RuleAudit, Message: err.Error()}
	}
	// The payload is decoded only now, once the request is authentic,
	// fresh and not replayed, and the audit log can take its decision.
	r, err := request.DecodePayload(req)
	if err != nil {
		return refuse(request.Code(err), "%v", err)
	}
	d, perr := decide(rs.pol, c, r)
	if perr != nil {
		return perr
	}

	rec := audit.Record{
		TimeMS:        nowMS(e.now),
		Kind:          audit.KindDecision,
		RequestDigest: requestDigest(m.Body),
		Client:        c.client.String(),
		Key:           c.key.id,
		Summary:       d.summary().String(),
		Decision:      audit.DecisionSigned,
		Rule:          d.decision.Rule,
		PolicyVersion: rs.pol.Version(),
	}
	// A frozen key refuses everything.
	if fi, frozen := e.frozen.Get(c.key.id); frozen {
		return e.refused(v, rs, c, rec, refusal.RuleFrozen, fmt.Sprintf("key %s is frozen (%s: %s); only an admin quorum unfreezes it", c.key.id, fi.Record(), fi.Reason), false)
	}
	if !d.decision.Allow {
		return e.refused(v, rs, c, rec, d.decision.Rule, d.decision.Reason, false)
	}
	// Rolling limits and velocity: reserved now, committed with the
	// signature, released if none is made. Allowance grants count like
	// transfers; an unlimited one is refused by any limit on its token.
	if why, refused := unlimitedGrant(rs.pol, c.key.id, d.decision); refused {
		return e.refused(v, rs, c, rec, refusal.RuleRollingLimit, why, true)
	}
	res, err := rs.tracker.Reserve(e.now(), c.key.id, spends(d.decision))
	if err != nil {
		var lr *stateful.Refusal
		if errors.As(err, &lr) && lr.Rule == refusal.RuleCheckpoint {
			return &proto.Error{Code: refusal.CodeUnavailable, Rule: refusal.RuleCheckpoint, Message: "too many transactions since the last checkpoint the host stored; refusing until it stores a newer one: " + lr.Msg}
		}
		if errors.As(err, &lr) {
			return e.refused(v, rs, c, rec, lr.Rule, lr.Msg, true)
		}
		return refuse(refusal.CodeInternal, "%v", err)
	}
	if rule, ok := needsApproval(rs.pol, c.key.id, d.decision); ok {
		return e.hold(v, rs, c, m.Body, d, res, rule, rec)
	}
	a.c, a.d, a.rec, a.res = c, d, rec, res
	return nil
}

// refused records a refusal, counts it toward a freeze, and answers it.
func (e *Enclave) refused(v *vault, rs *ruleset, c *caller, rec audit.Record, rule, reason string, limitBreach bool) proto.Message {
	rec.Decision, rec.Rule = audit.DecisionRefused, rule
	line, seq, err := v.audit.append(rec)
	if err != nil {
		return appendRefusal(err)
	}
	e.log.Debug("decision", "seq", seq, "client", c.name, "key", c.key.id, "allow", false, "rule", rule)
	if rule != refusal.RuleFrozen {
		e.afterRefusal(v, rs, c.key.id, limitBreach)
	}
	return &proto.Error{Code: refusal.CodePolicyDenied, Rule: rule, Message: clipMessage(reason), AuditRecord: line}
}

// signDecided records the signature, then makes it. The answer carries
// the record, and Handle releases it only once the host has acknowledged
// the record as persisted (Enclave.release): no persisted record, no
// signature. A reservation committed for a signature that is then withheld
// stays committed: the record says signed, and limits err on the safe side.
func (e *Enclave) signDecided(v *vault, k *signingKey, d *decided, rec audit.Record) (*proto.SignResponse, *proto.Error) {
	line, seq, err := v.audit.append(rec)
	if err != nil {
		return nil, appendRefusal(err)
	}
	sig := ethtx.Sign(k.priv, d.digest)
	resp := &proto.SignResponse{From: k.addr, Signature: sig, Digest: d.digest, AuditSeq: seq, AuditRecord: line, SignedTransaction: []byte{}}
	if d.tx != nil {
		resp.SignedTransaction = d.tx.EncodeSigned(sig)
		resp.TransactionHash = ethtx.TransactionHash(resp.SignedTransaction)
	}
	return resp, nil
}

// authenticate runs the checks every sign request passes before its payload
// is looked at: stamp, registered client, strict body, freshness, replay,
// key.
func (e *Enclave) authenticate(v *vault, pol *policy.Policy, m *proto.SignRequest) (*caller, *api.SignRequest, *proto.Error) {
	client, err := stamp.Verify(m.Stamp, m.Body)
	if err != nil {
		if errors.Is(err, stamp.ErrMissing) {
			return nil, nil, refuse(refusal.CodeUnauthorized, "missing %s header", stamp.Header)
		}
		return nil, nil, refuse(refusal.CodeUnauthorized, "%v", err)
	}
	name, ok := pol.Client(client)
	if !ok {
		return nil, nil, refuse(refusal.CodeUnauthorized, "client key %s is not registered in the policy", client)
	}
	req, err := request.Parse(m.Body)
	if err != nil {
		return nil, nil, refuse(request.Code(err), "%v", err)
	}

	now := e.now()
	ts := time.UnixMilli(req.TimestampMS)
	switch {
	case ts.Before(now.Add(-MaxRequestAge)):
		return nil, nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is more than %v old", MaxRequestAge)
	case ts.After(now.Add(MaxClockSkew)):
		return nil, nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is more than %v in the future", MaxClockSkew)
	case ts.Before(e.started.Truncate(time.Millisecond)): // timestamps have millisecond resolution
		return nil, nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is before the enclave started (%s); send a new request", e.started.UTC().Format(time.RFC3339))
	}
	switch e.replay.check(now, client.String(), req.RequestID) {
	case replaySeen:
		return nil, nil, refuse(refusal.CodeReplayedRequest, "request_id %q was already used", req.RequestID)
	case replayFull:
		return nil, nil, refuse(refusal.CodeUnavailable, "too many requests in the replay window; retry shortly")
	}
	key, perr := v.lookupKey(req.Key)
	if perr != nil {
		return nil, nil, perr
	}
	return &caller{client: client, name: name, key: key}, req, nil
}

func (k *signingKey) summaryKey() summary.Key {
	return summary.Key{ID: k.id, Address: k.addr, Path: k.path}
}

// decide judges the decoded request r for caller c under pol: the one
// place where a decoded request becomes the policy's input, for a new sign
// request (admit) and for a request held for approvals (judge). The policy
// receives only decoded values: a call's calldata is always r's (decoded
// once, by package request), never decoded again by the policy.
func decide(pol *policy.Policy, c *caller, r *request.Request) (*decided, *proto.Error) {
	d := &decided{digest: r.Digest}
	switch {
	case r.Transaction != nil:
		t := r.Transaction
		d.tx = t.Tx
		d.decision = pol.EvaluateTransaction(&policy.Transaction{Client: c.client, KeyID: c.key.id, From: c.key.addr, Tx: t.Tx, Call: t.Call})
	case r.PersonalMessage != nil:
		d.decision = pol.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c.client, KeyID: c.key.id, Message: r.PersonalMessage.Message})
	case r.TypedData != nil:
		td := r.TypedData
		d.decision = pol.EvaluateTypedData(&policy.TypedData{
			Client: c.client, KeyID: c.key.id, From: c.key.addr, PrimaryType: td.Data.PrimaryType(),
			Domain:    policy.Domain{Name: td.Domain.Name, Version: td.Domain.Version, ChainID: td.Domain.ChainID, VerifyingContract: td.Domain.VerifyingContract},
			Permit:    td.Permit,
			PermitErr: td.PermitErr,
			Data:      td.Data,
		})
	default:
		// A Request from package request always has a payload.
		return nil, refuse(refusal.CodeInternal, "enclave: a decoded request without a payload")
	}
	d.summary = func() summary.Summary { return summary.Request(r, c.key.summaryKey(), pol) }
	return d, nil
}
