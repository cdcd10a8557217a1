package enclave

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
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
	// counted is decision.Counted(), made once: the limits, the
	// unlimited-grant check and the approval thresholds all read it.
	counted []stateful.Counted
	// What summary describes the request from: kept rather than a closure
	// over them, which would cost an allocation per request.
	req *request.Request
	key *signingKey
	pol *policy.Policy
	// countedRoom is where counted is made when it fits (most requests
	// count one movement or grant): one allocation a request fewer.
	countedRoom [2]stateful.Counted
}

// summary is the canonical summary of the decided request.
func (d *decided) summary() summary.Summary {
	return summary.Request(d.req, d.key.summaryKey(), d.pol)
}

// summaryText is d.summary().String(), the text its record keeps, made
// without the lines when nothing else needs them (summary.RequestText).
func (d *decided) summaryText() string {
	return summary.RequestText(d.req, d.key.summaryKey(), d.pol)
}

// caller is who asked, after the stamp verified.
type caller struct {
	client stamp.PublicKey
	id     string // client.String(), made once
	name   string
	key    *signingKey
}

// signing is one sign request on its way through admit: what it is, the
// vault and the rules it is decided under, the time it is decided at, and
// what admit has found out so far (who asked, the decision, the record it
// gets, the limits it reserved). It replaces the long positional lists of
// admit, refused and hold, so that a step cannot be handed a value of
// another request or another ruleset.
type signing struct {
	v   *vault
	rs  *ruleset
	m   *proto.SignRequest
	now time.Time

	client stamp.PublicKey       // whose stamp verified, before admit
	c      *caller               // after authenticate
	d      *decided              // after decide
	rec    audit.Record          // the decision's record, as far as it is known
	res    *stateful.Reservation // after the limits are reserved
	line   []byte                // the signature's record, once appended
	seq    uint64

	// Where c, d and rec.RequestDigest point: one allocation a request
	// rather than one each. Nothing that outlives the request keeps a
	// pointer into them (hold copies the digest it keeps).
	caller  caller
	decided decided
	digest  [32]byte
}

func (e *Enclave) sign(v *vault, m *proto.SignRequest, now time.Time) (proto.Message, error) {
	s := &signing{v: v, m: m, now: now}
	// The stamp's signature is verified before guard.mu is taken: it
	// depends on the request alone, not on the rules in force, and a
	// policy change that waits for the read side should not wait for
	// Ed25519 verifications too.
	client, err := verifyStamp(m)
	if err != nil {
		return nil, err
	}
	s.client = client
	if resp, err := e.decideAndRecord(s); resp != nil || err != nil {
		return resp, err
	}
	// The signature is made after guard.mu is released: its decision, its
	// reservation and its record were made under the read side
	// (decideAndRecord), and nothing of the rules in force is read from
	// here on. The answer still waits for the record's acknowledgement
	// (Handle) before it leaves.
	resp, err := signRecorded(s.c.key, s.d, s.line, s.seq)
	if err != nil {
		return nil, err
	}
	if e.debug() {
		e.log.Debug("decision", "seq", resp.AuditSeq, "client", s.c.name, "key", s.c.key.id, "allow", true)
	}
	return resp, nil
}

// decideAndRecord admits s and appends the record of its signature, under
// the read side of guard.mu: a policy change appends the record that puts
// it in force under the write side (guard.putInForce), so that in the
// audit log every decision after that record is the new policy's, and none
// of the old one's follows it. Nothing here waits (appending does not; the
// wait for the record's acknowledgement comes after, in Handle), so a
// policy change waits at most for the decisions being made. It returns
// nil, nil when s is to be signed (s.line and s.seq are its record, and its
// reservation is committed), else admit's answer or refusal.
func (e *Enclave) decideAndRecord(s *signing) (proto.Message, error) {
	e.guard.mu.RLock()
	defer e.guard.mu.RUnlock()
	s.rs = e.guard.inForce()
	if resp, err := e.admit(s); resp != nil || err != nil {
		return resp, err
	}
	if e.beforeSignatureRecord != nil {
		e.beforeSignatureRecord()
	}
	line, seq, err := recordSignature(s.v.audit, s.rec)
	if err != nil {
		s.res.Release()
		return nil, err
	}
	// Committed with the record, not with the signature: a reservation
	// committed for a signature that is then withheld stays committed, the
	// record says signed, and limits err on the safe side.
	s.res.Commit()
	s.line, s.seq = line, seq
	return nil, nil
}

// admit decides s.m under the policy in force (s.rs) and reserves its
// limits. Its caller holds the read side of guard.mu throughout, so that
// the policy that allows it, the limits that count it, the freeze check,
// the refusal count toward a freeze and an approval hold all belong to one
// ruleset, and no policy swap falls between the decision and the
// reservation. It fills s and returns nil, nil when the request is to be
// signed, else the answer (a request held for approvals) or the refusal
// (recorded and counted, or not decided). The wait for the signature's
// acknowledgement happens after the lock is released.
func (e *Enclave) admit(s *signing) (proto.Message, error) {
	req, err := e.authenticate(&s.caller, s.v.keys, s.rs.pol, s.client, s.m, s.now)
	if err != nil {
		return nil, err
	}
	c := &s.caller
	s.c = c
	if err := s.v.audit.canDecide(); err != nil {
		return nil, refuseRule(refusal.CodeUnavailable, refusal.RuleAudit, err.Error())
	}
	// The payload is decoded only now, once the request is authentic,
	// fresh and not replayed, and the audit log can take its decision.
	r, err := request.DecodePayload(req)
	if err != nil {
		return nil, refuse(request.Code(err), "%v", err)
	}
	if err := decideInto(&s.decided, s.rs.pol, c, r); err != nil {
		return nil, err
	}
	s.d = &s.decided
	d := s.d.decision
	s.digest = sha256.Sum256(s.m.Body) // the request digest: SHA-256 of the exact body stamped
	s.rec = audit.Record{
		TimeMS:        s.now.UnixMilli(),
		Kind:          audit.KindDecision,
		RequestDigest: s.digest[:],
		Client:        c.id,
		Key:           c.key.id,
		Summary:       s.d.summaryText(),
		Decision:      audit.DecisionSigned,
		Rule:          d.Rule,
		PolicyVersion: s.rs.pol.Version(),
	}
	// A frozen key refuses everything.
	if fi, frozen := e.guard.frozen.Get(c.key.id); frozen {
		return nil, e.refused(s, refusal.RuleFrozen, fmt.Sprintf("key %s is frozen (%s: %s); only an admin quorum unfreezes it", c.key.id, fi.Record(), fi.Reason), false)
	}
	if !d.Allow {
		return nil, e.refused(s, d.Rule, d.Reason, false)
	}
	// Rolling limits and velocity: reserved now, committed with the
	// signature, released if none is made. Allowance grants count like
	// transfers; an unlimited one is refused by any limit on its token.
	if why, refused := s.rs.unlimitedGrant(c.key.id, s.d); refused {
		return nil, e.refused(s, refusal.RuleRollingLimit, why, true)
	}
	// Reserve keeps nothing of the spends: they are made in room on the
	// stack.
	var room [4]stateful.Spend
	res, err := s.rs.tracker.Reserve(s.now, c.key.id, stateful.AppendSpends(room[:0], s.d.counted))
	if err != nil {
		var lr *stateful.Refusal
		if errors.As(err, &lr) && lr.Rule == refusal.RuleCheckpoint {
			return nil, checkpointRefusal(lr)
		}
		if errors.As(err, &lr) {
			return nil, e.refused(s, lr.Rule, lr.Msg, true)
		}
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	s.res = res
	if rule, ok := s.rs.needsApproval(c.key.id, s.d); ok {
		return e.hold(s, rule)
	}
	return nil, nil
}

// debug reports whether the log takes debug records. The sign path asks
// first: the arguments of a log call are boxed, a few allocations a
// request, even when the record is then dropped.
func (e *Enclave) debug() bool { return e.log.Enabled(context.Background(), slog.LevelDebug) }

// checkpointRefusal is the 503 of a transaction beyond those the limits
// allow past the newest checkpoint the host acknowledged storing.
func checkpointRefusal(lr *stateful.Refusal) *Refusal {
	return refuseRule(refusal.CodeUnavailable, refusal.RuleCheckpoint, "too many transactions since the last checkpoint the host stored; refusing until it stores a newer one: "+lr.Msg)
}

// refused records the refusal of s by rule (for reason), counts it toward
// a freeze (limitBreach: it breached a limit), and returns it.
func (e *Enclave) refused(s *signing, rule, reason string, limitBreach bool) error {
	rec := s.rec
	rec.Decision, rec.Rule = audit.DecisionRefused, rule
	line, seq, err := s.v.audit.append(rec)
	if err != nil {
		return appendRefusal(err)
	}
	if e.debug() {
		e.log.Debug("decision", "seq", seq, "client", s.c.name, "key", s.c.key.id, "allow", false, "rule", rule)
	}
	if rule != refusal.RuleFrozen {
		e.guard.afterRefusal(s.v.audit, s.rs, s.c.key.id, limitBreach, s.now)
	}
	return recorded(refusal.CodePolicyDenied, rule, clipMessage(reason), line)
}

// signDecided records the signature, then makes it. The answer carries
// the record, and Handle releases it only once the host has acknowledged
// the record as persisted (Enclave.release): no persisted record, no
// signature. A reservation committed for a signature that is then withheld
// stays committed: the record says signed, and limits err on the safe side.
// A request released by its approvals takes this path, under the locks of
// its re-decision; a sign request records under guard.mu and signs after
// it (sign).
func signDecided(al *auditLog, k *signingKey, d *decided, rec audit.Record) (*proto.SignResponse, error) {
	line, seq, err := recordSignature(al, rec)
	if err != nil {
		return nil, err
	}
	return signRecorded(k, d, line, seq)
}

// recordSignature appends rec, the record of a signature about to be made.
func recordSignature(al *auditLog, rec audit.Record) (line []byte, seq uint64, err error) {
	line, seq, err = al.append(rec)
	if err != nil {
		return nil, 0, appendRefusal(err)
	}
	return line, seq, nil
}

// signRecorded makes the signature of d with k, whose record (line, at seq)
// is appended, and the answer that carries both. It refuses, rather than
// answer with a signature Ethereum cannot express, in the 1-in-2^127 case
// of a nonce point whose x coordinate is at least the curve order (see
// ethtx.Sign); the record says signed, and the reservation stays
// committed.
func signRecorded(k *signingKey, d *decided, line []byte, seq uint64) (*proto.SignResponse, error) {
	sig := ethtx.Sign(k.priv, d.digest)
	if sig[64] > 1 {
		return nil, refuse(refusal.CodeInternal, "enclave: the signature of record %d has yParity %d, which Ethereum cannot express; send the request again with another request_id", seq, sig[64])
	}
	resp := &proto.SignResponse{From: k.addr, Signature: sig, Digest: d.digest, AuditSeq: seq, AuditRecord: line, SignedTransaction: []byte{}}
	if d.tx != nil {
		resp.SignedTransaction = d.tx.EncodeSigned(sig)
		resp.TransactionHash = ethtx.TransactionHash(resp.SignedTransaction)
	}
	return resp, nil
}

// verifyStamp verifies m's stamp and returns the key that made it: the
// first check of every sign request, and the only one that needs no rules
// in force.
func verifyStamp(m *proto.SignRequest) (stamp.PublicKey, error) {
	client, err := stamp.Verify(m.Stamp, m.Body)
	if err != nil {
		if errors.Is(err, stamp.ErrMissing) {
			return stamp.PublicKey{}, refuse(refusal.CodeUnauthorized, "missing %s header", stamp.Header)
		}
		return stamp.PublicKey{}, refuse(refusal.CodeUnauthorized, "%v", err)
	}
	return client, nil
}

// authenticate runs the checks every sign request passes before its payload
// is looked at, after its stamp verified as client's (verifyStamp):
// registered client, strict body, freshness, replay, key. It fills c with
// who asked.
func (e *Enclave) authenticate(c *caller, kr *keyring, pol *policy.Policy, client stamp.PublicKey, m *proto.SignRequest, now time.Time) (*api.SignRequest, error) {
	id, name, ok := pol.ClientIdentity(client)
	if !ok {
		return nil, refuse(refusal.CodeUnauthorized, "client key %s is not registered in the policy", client)
	}
	req, err := request.Parse(m.Body)
	if err != nil {
		return nil, refuse(request.Code(err), "%v", err)
	}

	ts := time.UnixMilli(req.TimestampMS)
	switch {
	case ts.Before(now.Add(-MaxRequestAge)):
		return nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is more than %v old", MaxRequestAge)
	case ts.After(now.Add(MaxClockSkew)):
		return nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is more than %v in the future", MaxClockSkew)
	case ts.Before(e.started.Truncate(time.Millisecond)): // timestamps have millisecond resolution
		return nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is before the enclave started (%s); send a new request", e.started.UTC().Format(time.RFC3339))
	}
	switch e.replay.check(now, ts, id, req.RequestID) {
	case replaySeen:
		return nil, refuse(refusal.CodeReplayedRequest, "request_id %q was already used", req.RequestID)
	case replayFull:
		return nil, refuse(refusal.CodeUnavailable, "too many requests in the replay window; retry shortly")
	case replayStale:
		// Only after the enclave's clock was set back: the replay guard
		// may have forgotten the ids of requests stamped this early.
		return nil, refuse(refusal.CodeStaleRequest, "timestamp_ms is older than the replay guard remembers (the enclave's clock went back); send a new request")
	}
	key, err := kr.lookupKey(req.Key)
	if err != nil {
		return nil, err
	}
	*c = caller{client: client, id: id, name: name, key: key}
	return req, nil
}

func (k *signingKey) summaryKey() summary.Key {
	if k.summary.ID == "" {
		// A signingKey that keyring.add did not make (tests).
		return summary.NewKey(k.id, k.addr, k.path)
	}
	return k.summary
}

// decide judges the decoded request r for caller c under pol: the one
// place where a decoded request becomes the policy's input, for a new sign
// request (admit) and for a request held for approvals (judge). The policy
// receives only decoded values: a call's calldata is always r's (decoded
// once, by package request), never decoded again by the policy.
func decide(pol *policy.Policy, c *caller, r *request.Request) (*decided, error) {
	d := new(decided)
	if err := decideInto(d, pol, c, r); err != nil {
		return nil, err
	}
	return d, nil
}

// decideInto is decide, into d.
func decideInto(d *decided, pol *policy.Policy, c *caller, r *request.Request) error {
	*d = decided{digest: r.Digest}
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
		return refuse(refusal.CodeInternal, "enclave: a decoded request without a payload")
	}
	if d.decision.Allow {
		// Counted's nil for a refusal is kept: only an allowed decision
		// counts anything.
		d.counted = d.decision.AppendCounted(d.countedRoom[:0])
	}
	d.req, d.key, d.pol = r, c.key, pol
	return nil
}
