package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// Pending approvals decided under the policy in force: a policy change
// that comes into force decides every waiting request again (refused,
// signed at once, or waiting under the new rule, each with its record),
// and so does every approval.

// newApproverSet names approvers with new keys; the same name may be
// bound to another key in another set.
func newApproverSet(t testing.TB, names ...string) *approverKeys {
	t.Helper()
	a := &approverKeys{}
	for _, n := range names {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := stamp.NewEd25519Signer(priv)
		if err != nil {
			t.Fatal(err)
		}
		a.names = append(a.names, n)
		a.signers = append(a.signers, s)
	}
	return a
}

// of returns the approvers numbered idx, in a new set.
func (a *approverKeys) of(idx ...int) *approverKeys {
	out := &approverKeys{}
	for _, i := range idx {
		out.names = append(out.names, a.names[i])
		out.signers = append(out.signers, a.signers[i])
	}
	return out
}

// plus returns a set with the approvers of both.
func (a *approverKeys) plus(b *approverKeys) *approverKeys {
	return &approverKeys{names: append(append([]string{}, a.names...), b.names...), signers: append(append([]stamp.Signer{}, a.signers...), b.signers...)}
}

// withRule is doc at version with rule as hot-0's approvals (and the
// destinations dests, when given).
func withRule(doc policy.Document, version uint64, rule *stateful.ApprovalRule, dests ...string) policy.Document {
	d := withDest(doc, version, destA, destB)
	if len(dests) > 0 {
		d = withDest(doc, version, dests...)
	}
	d.Keys[0].Approvals = rule
	return d
}

func wantPending(t *testing.T, m proto.Message, approvers ...string) *proto.SignResponse {
	t.Helper()
	sr, ok := m.(*proto.SignResponse)
	if !ok || sr.Status != proto.StatusPending || strings.Join(sr.Approvers, ",") != strings.Join(approvers, ",") {
		t.Fatalf("want pending with approvals %v, got %#v", approvers, m)
	}
	return sr
}

func info(t *testing.T, e *enclave.Enclave, id string) *proto.ApprovalInfoResponse {
	t.Helper()
	m := e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id})
	ai, ok := m.(*proto.ApprovalInfoResponse)
	if !ok {
		t.Fatalf("approval info: %#v", m)
	}
	return ai
}

// recordsAbout returns the persisted records whose summary names approval
// id, in order.
func recordsAbout(t *testing.T, e *enclave.Enclave, id string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, line := range recordsOf(t, e) {
		r, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Summary, "approval "+id) {
			out = append(out, r)
		}
	}
	return out
}

func lastAbout(t *testing.T, e *enclave.Enclave, id string) audit.Record {
	t.Helper()
	rs := recordsAbout(t, e, id)
	if len(rs) == 0 {
		t.Fatalf("no record about approval %s", id)
	}
	return rs[len(rs)-1]
}

// hold sends a transfer of wei to destB and returns its body and approval
// id; it must wait for approvals.
func (f *govFixture) hold(t *testing.T, wei *big.Int) ([]byte, string) {
	t.Helper()
	body := f.body(t, "hot-0", transfer(t, 1, destB, wei), f.now.UnixMilli())
	sr := wantPending(t, f.send(t, f.hot, body))
	// The answer says what approvers sign: the host relays it as is.
	if d := api.ApprovalDigest(body); !bytes.Equal(sr.ApprovalDigest, d[:]) {
		t.Fatalf("pending answer's approval digest %x, want %x", sr.ApprovalDigest, d)
	}
	return body, sr.ApprovalID
}

// schedule submits a loosening, which waits for the time lock, and moves
// the clock to 30 minutes before it ends.
func (f *govFixture) schedule(t *testing.T, doc policy.Document) {
	t.Helper()
	if _, rec := policyResult(t, f.change(t, doc, 0, 1)); rec.Decision != "scheduled" {
		t.Fatalf("the loosening was %s", rec.Decision)
	}
	recordsOf(t, f.e) // every record acknowledged before the clock moves
	f.setNow(f.now.Add(24*time.Hour - 30*time.Minute))
}

// comeIntoForce moves the clock past the scheduled change's time lock and
// lets the tick put it in force (an approval info request ticks first).
func (f *govFixture) comeIntoForce(t *testing.T, version uint64) {
	t.Helper()
	recordsOf(t, f.e)
	f.setNow(f.now.Add(31 * time.Minute))
	f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: "settle"})
	if got := f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse).Version; got != version {
		t.Fatalf("policy version %d in force, want %d", got, version)
	}
}

// TestApprovalRotatedOutApprover: after a policy that removes a
// compromised approver key is in force, that key's approval no longer
// counts: the approval it gave is dropped (the record says so), and a new
// one is refused; the remaining approvers must make the quorum.
func TestApprovalRotatedOutApprover(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob", "carol")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(100)) })
	body, id := f.hold(t, milliEther(500))
	wantPending(t, ap.decide(t, f.e, id, 0, body, false), "alice")

	// alice's key is compromised: removed, which only tightens (at once).
	v2 := withRule(f.doc, 2, ap.of(1, 2).rule(2, milliEther(100)))
	if _, rec := policyResult(t, f.change(t, v2, 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the rotation was %s", rec.Decision)
	}
	rec := lastAbout(t, f.e, id)
	if rec.Decision != audit.DecisionPendingApproval || rec.PolicyVersion != 2 || len(rec.Approvers) != 0 ||
		!strings.Contains(rec.Summary, "approvals dropped, no longer by an approver with that key: alice") {
		t.Fatalf("the re-decision's record: %+v", rec)
	}
	if ai := info(t, f.e, id); len(ai.Approvers) != 0 || ai.Quorum != 2 || ai.Status != proto.StatusPending {
		t.Fatalf("after the rotation: %+v", ai)
	}
	// alice's approval again: she is no approver any more.
	wantCode(t, ap.decide(t, f.e, id, 0, body, false), refusal.CodeUnauthorized, "not an approver")
	wantPending(t, ap.decide(t, f.e, id, 1, body, false), "bob")
	done := wantSignedApproved(t, ap.decide(t, f.e, id, 2, body, false))
	if r, _ := audit.Unmarshal(done.AuditRecord); r.Decision != audit.DecisionApproved || strings.Join(r.Approvers, ",") != "bob,carol" || r.PolicyVersion != 2 {
		t.Fatalf("the signature's record: %+v", r)
	}
}

// TestApprovalNameRebound: a name rebound to a new key (a loosening, in
// force after its time lock) is another approver: the approval given with
// the old key is dropped, the old key's signature no longer verifies, and
// the new key's counts.
func TestApprovalNameRebound(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob", "carol")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(100)) })
	newAlice := newApproverSet(t, "alice")
	f.schedule(t, withRule(f.doc, 2, newAlice.plus(ap.of(1, 2)).rule(2, milliEther(100))))

	body, id := f.hold(t, milliEther(500))
	wantPending(t, ap.decide(t, f.e, id, 0, body, false), "alice") // the old key, under version 1
	f.comeIntoForce(t, 2)
	rec := lastAbout(t, f.e, id)
	if rec.Decision != audit.DecisionPendingApproval || len(rec.Approvers) != 0 || !strings.Contains(rec.Summary, "dropped, no longer by an approver with that key: alice") {
		t.Fatalf("the re-decision's record: %+v", rec)
	}
	wantCode(t, ap.decide(t, f.e, id, 0, body, false), refusal.CodeUnauthorized, "does not verify")
	wantPending(t, newAlice.decide(t, f.e, id, 0, body, false), "alice")
	done := wantSignedApproved(t, ap.decide(t, f.e, id, 2, body, false))
	if r, _ := audit.Unmarshal(done.AuditRecord); strings.Join(r.Approvers, ",") != "alice,carol" {
		t.Fatalf("the signature's record: %+v", r)
	}
}

// TestApprovalRaisedQuorum: a raised quorum applies to a request already
// waiting, with a record; the approval it had stays counted.
func TestApprovalRaisedQuorum(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob", "carol")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(100)) })
	body, id := f.hold(t, milliEther(500))
	wantPending(t, ap.decide(t, f.e, id, 0, body, false), "alice")

	if _, rec := policyResult(t, f.change(t, withRule(f.doc, 2, ap.rule(3, milliEther(100))), 0, 1)); rec.Decision != "applied" {
		t.Fatalf("raising the quorum was %s", rec.Decision)
	}
	rec := lastAbout(t, f.e, id)
	if rec.Decision != audit.DecisionPendingApproval || strings.Join(rec.Approvers, ",") != "alice" ||
		!strings.Contains(rec.Summary, "requires 3 of [alice bob carol] (was 2 of [alice bob carol])") {
		t.Fatalf("the re-decision's record: %+v", rec)
	}
	if sr := wantPending(t, ap.decide(t, f.e, id, 1, body, false), "alice", "bob"); sr.Quorum != 3 {
		t.Fatalf("quorum %d, want 3", sr.Quorum)
	}
	wantSignedApproved(t, ap.decide(t, f.e, id, 2, body, false))
}

// TestApprovalLoweredThresholdSignsAtOnce: a loosening that raises the
// threshold above a waiting request signs it as it comes into force, with
// its record; the client retrieves the signature with GET
// /v1/approvals/{id}, and an approval afterwards returns the same one.
func TestApprovalLoweredThresholdSignsAtOnce(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(100)) })
	f.schedule(t, withRule(f.doc, 2, ap.rule(2, ether(1))))
	body, id := f.hold(t, milliEther(500))
	wantPending(t, ap.decide(t, f.e, id, 0, body, false), "alice")
	f.comeIntoForce(t, 2)

	ai := info(t, f.e, id)
	if ai.Status != proto.StatusSigned || ai.Result == nil || len(ai.Result.SignedTransaction) == 0 {
		t.Fatalf("after the loosening: %+v", ai)
	}
	rec, _ := audit.Unmarshal(ai.Result.AuditRecord)
	if rec.Decision != audit.DecisionApproved || rec.PolicyVersion != 2 || !strings.Contains(rec.Summary, "policy version 2 no longer requires approvals") {
		t.Fatalf("the signature's record: %+v", rec)
	}
	again := wantSignedApproved(t, ap.decide(t, f.e, id, 1, body, false))
	if again.AuditSeq != ai.Result.AuditSeq || again.Signature != ai.Result.Signature {
		t.Fatal("an approval after the signature made another")
	}
}

// TestApprovalTighteningRefusesPending: a tightening that refuses a
// waiting request refuses it as it comes into force, with its record, and
// releases its limit reservation.
func TestApprovalTighteningRefusesPending(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob")
	f := newGovWith(t, func(k *policy.KeyRule) {
		k.Approvals = ap.rule(1, milliEther(100))
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(1).String()}}
	})
	body, id := f.hold(t, milliEther(600))
	tracker := enclave.TrackerInForce(f.e)
	v2 := withRule(f.doc, 2, ap.rule(1, milliEther(100)), destA) // destB removed
	v2.Keys[0].Limits = f.doc.Keys[0].Limits
	if _, rec := policyResult(t, f.change(t, v2, 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the tightening was %s", rec.Decision)
	}
	rec := lastAbout(t, f.e, id)
	if rec.Decision != audit.DecisionRefused || rec.Rule != refusal.RuleDestinations || rec.PolicyVersion != 2 {
		t.Fatalf("the refusal's record: %+v", rec)
	}
	if ai := info(t, f.e, id); ai.Status != api.StatusRejected || ai.Result != nil {
		t.Fatalf("after the tightening: %+v", ai)
	}
	wantCode(t, ap.decide(t, f.e, id, 0, body, false), refusal.CodeApprovalRejected, "policy version 2 refuses it")
	// The 0.6 ETH reservation was released: 0.5 more fits the 1 ETH a day.
	// The tracker is the run's one, reconfigured in place by the change.
	if enclave.TrackerInForce(f.e) != tracker {
		t.Fatal("the policy change replaced the limit tracker")
	}
	wantPending(t, f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, milliEther(500)), f.now.UnixMilli())))
}

// TestApprovalInfoWaitsForAck: GET /v1/approvals/{id} of a signed request
// carries the signature only once the host has acknowledged its record.
func TestApprovalInfoWaitsForAck(t *testing.T) {
	ap := newApproverSet(t, "alice")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(1, milliEther(100)) })
	body, id := f.hold(t, milliEther(500))
	recordsOf(t, f.e)
	f.host.pause()
	approved := make(chan proto.Message, 1)
	go func() { approved <- ap.decide(t, f.e, id, 0, body, false) }()
	// The signature's record is appended, not acknowledged.
	for deadline := time.Now().Add(10 * time.Second); info0(f.e, id) != proto.StatusSigned; {
		if time.Now().After(deadline) {
			t.Fatal("the approval did not sign")
		}
		time.Sleep(time.Millisecond)
	}
	got := make(chan proto.Message, 1)
	go func() { got <- f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}) }()
	select {
	case m := <-got:
		t.Fatalf("the signature left before its record was acknowledged: %#v", m)
	case <-time.After(50 * time.Millisecond):
	}
	f.host.resume()
	ai, ok := (<-got).(*proto.ApprovalInfoResponse)
	if !ok || ai.Result == nil || len(ai.Result.SignedTransaction) == 0 {
		t.Fatalf("after the acknowledgement: %#v", ai)
	}
	wantSignedApproved(t, <-approved)
}

// info0 is the status of approval id, read without an answer that waits
// for the host.
func info0(e *enclave.Enclave, id string) string { return enclave.ApprovalStatus(e, id) }

// TestApprovalSignedOnceTheHostPersists: a loosening that lifts the
// threshold comes into force while the host reports it cannot persist:
// the policy record is an event and is made, but the signature is a
// decision and waits; the request keeps waiting, and once the host
// persists again, the next tick signs it.
func TestApprovalSignedOnceTheHostPersists(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(100)) })
	f.schedule(t, withRule(f.doc, 2, ap.rule(2, ether(1))))
	_, id := f.hold(t, milliEther(500))
	recordsOf(t, f.e)
	f.host.pause()
	f.e.Handle(context.Background(), &proto.AuditRequest{Failing: "writing the audit log: no space left on device"})
	f.setNow(f.now.Add(31 * time.Minute))
	if ai := info(t, f.e, id); ai.Status != proto.StatusPending || ai.Result != nil {
		t.Fatalf("signed while the host cannot persist: %+v", ai)
	}
	if got := f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse).Version; got != 2 {
		t.Fatalf("policy version %d in force, want 2", got)
	}
	f.host.resume() // its next poll reports nothing failing, and settles
	for deadline := time.Now().Add(10 * time.Second); enclave.ApprovalStatus(f.e, id) != proto.StatusSigned; {
		if time.Now().After(deadline) {
			t.Fatal("not signed after the host recovered")
		}
		time.Sleep(time.Millisecond)
	}
	if ai := info(t, f.e, id); ai.Result == nil || len(ai.Result.SignedTransaction) == 0 {
		t.Fatalf("after the host recovered: %+v", ai)
	}
}

// TestApprovalRotationRacesApprovals: approvals by a key being rotated
// out race the rotation; whatever the order, once the rotation is in force
// that key's approvals no longer count, so the remaining approver alone
// completes no quorum: nothing is signed. (Under -race, also a check of
// the locking between policy changes and approvals.)
func TestApprovalRotationRacesApprovals(t *testing.T) {
	ap := newApproverSet(t, "alice", "bob", "carol")
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(100)) })
	const n = 16
	bodies, ids := make([][]byte, n), make([]string, n)
	for i := range n {
		bodies[i], ids[i] = f.hold(t, milliEther(200))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			ap.decide(t, f.e, ids[i], 0, bodies[i], false) // alice: counted, or refused once rotated out
		}
	}()
	if _, rec := policyResult(t, f.change(t, withRule(f.doc, 2, ap.of(1, 2).rule(2, milliEther(100))), 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the rotation was %s", rec.Decision)
	}
	<-done
	for i := range n {
		m := ap.decide(t, f.e, ids[i], 1, bodies[i], false) // bob
		if sr, ok := m.(*proto.SignResponse); !ok || sr.Status != proto.StatusPending || strings.Join(sr.Approvers, ",") != "bob" {
			t.Fatalf("request %d after the rotation, approved by bob: %#v", i, m)
		}
	}
	for _, line := range recordsOf(t, f.e) {
		if r, _ := audit.Unmarshal(line); r.Decision == audit.DecisionApproved {
			t.Fatalf("signed: %+v", r)
		}
	}
}
