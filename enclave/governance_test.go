package enclave_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

const destC = "0x3333333333333333333333333333333333333333"

type govFixture struct {
	*fixture
	admins  *admins
	genesis []byte
	doc     policy.Document
}

func newGov(t *testing.T) *govFixture { return newGovWith(t, nil) }

func newGovWith(t *testing.T, edit func(*policy.KeyRule)) *govFixture {
	t.Helper()
	return newGovMax(t, edit, 0)
}

// newGovMax is newGovWith with a backlog cap of maxUnacked audit records
// (0: the default).
func newGovMax(t *testing.T, edit func(*policy.KeyRule), maxUnacked int) *govFixture {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hot, _ := stamp.NewEd25519Signer(priv)
	doc := policy.Document{
		Version: 1,
		Clients: []policy.Client{{Name: "hot-client", Scheme: "ed25519", PublicKey: hex.EncodeToString(hot.PublicKey().Key), Keys: []string{"hot-0"}}},
		Keys: []policy.KeyRule{{
			Key: "hot-0", Chains: []uint64{1},
			NativeTransfers: &policy.NativeTransfers{
				Destinations:         []policy.Destination{{Address: destA, Label: "A"}, {Address: destB, Label: "B"}},
				MaxPerTransactionWei: ether(1).String(),
			},
		}},
	}
	if edit != nil {
		edit(&doc.Keys[0])
	}
	a := newAdmins(t, 3)
	pol, _ := json.Marshal(doc)
	g, _ := json.Marshal(map[string]any{
		"format":     1,
		"keys":       []map[string]string{{"id": "hot-0", "path": "m/44'/60'/0'/0/0"}},
		"policy":     json.RawMessage(pol),
		"admins":     a.config(2),
		"governance": map[string]string{"time_lock": "24h"},
	})
	f := &fixture{now: time.UnixMilli(1_800_000_000_000), hot: hot}
	f.setNow(f.now) // the clock the enclave reads
	var err error
	f.e, err = enclave.New(enclave.Config{Genesis: g, Now: f.clockNow, MaxUnackedAudit: maxUnacked})
	if err != nil {
		t.Fatal(err)
	}
	f.host = startAcks(t, f.e)
	return &govFixture{fixture: f, admins: a, genesis: g, doc: doc}
}

// change submits a policy_change of doc signed by the admins numbered by.
func (f *govFixture) change(t *testing.T, doc policy.Document, by ...int) proto.Message {
	t.Helper()
	pol, err := policy.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	body := admin.PolicyChangeBody{Version: pol.Version(), PolicyHash: hex.EncodeToString(hashOf(pol)), Document: pol.Canonical()}
	return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange, body, by...)})
}

func hashOf(p *policy.Policy) []byte { h := p.Hash(); return h[:] }

func (f *govFixture) cancel(t *testing.T, doc policy.Document, by int) proto.Message {
	t.Helper()
	pol, _ := policy.Compile(doc)
	body := admin.PolicyCancelBody{Version: pol.Version(), PolicyHash: hex.EncodeToString(hashOf(pol))}
	return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyCancel, body, by)})
}

func (f *govFixture) pay(t *testing.T, to string, wei *big.Int) proto.Message {
	t.Helper()
	return f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, to, wei), f.now.UnixMilli()))
}

func policyResult(t *testing.T, m proto.Message) (enclave.PolicyResult, audit.Record) {
	t.Helper()
	ar, ok := m.(*proto.AdminResponse)
	if !ok {
		t.Fatalf("policy command answered %#v", m)
	}
	var r enclave.PolicyResult
	if err := json.Unmarshal(ar.Result, &r); err != nil {
		t.Fatal(err)
	}
	rec, err := audit.Unmarshal(ar.AuditRecord)
	if err != nil {
		t.Fatal(err)
	}
	return r, rec
}

func withDest(doc policy.Document, version uint64, dests ...string) policy.Document {
	b, _ := json.Marshal(doc)
	var d policy.Document
	json.Unmarshal(b, &d)
	d.Version = version
	d.Keys[0].NativeTransfers.Destinations = nil
	for _, a := range dests {
		d.Keys[0].NativeTransfers.Destinations = append(d.Keys[0].NativeTransfers.Destinations, policy.Destination{Address: a, Label: "d"})
	}
	return d
}

// TestGovernanceTimeLock: adding a destination waits 24 h (a transfer to it
// inside the time lock is refused), any one admin can cancel it; removing
// a destination takes effect at once; versions only increase; a short or
// forged quorum is refused; the attestation commits to the policy in
// force.
func TestGovernanceTimeLock(t *testing.T) {
	f := newGov(t)
	addC := withDest(f.doc, 2, destA, destB, destC)

	// A short quorum and a forged signature.
	wantCode(t, f.change(t, addC, 0), refusal.CodeUnauthorized, "quorum")
	forged := f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange, admin.PolicyChangeBody{Version: 2, PolicyHash: strings.Repeat("00", 32), Document: []byte(`{}`)}, 0, 1)
	forged = []byte(strings.Replace(string(forged), `"signature": "`, `"signature": "00`, 1))
	if pe, ok := f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: forged}).(*proto.Error); !ok || (pe.Code != refusal.CodeUnauthorized && pe.Code != refusal.CodeBadRequest) {
		t.Fatalf("a forged signature: %#v", pe)
	}

	res, rec := policyResult(t, f.change(t, addC, 0, 2))
	if res.EffectiveMS != f.now.Add(24*time.Hour).UnixMilli() || rec.Decision != "scheduled" || !strings.Contains(rec.Summary, "0x3333333333333333333333333333333333333333") {
		t.Fatalf("scheduled %+v, record %+v", res, rec)
	}
	// Health says one change waits, and when it comes into force (the
	// host's nitrosign_policy_pending_changes and _effective_timestamp).
	if h := health(t, f.e); h.PendingPolicies != 1 || h.PolicyDueUnixMS != res.EffectiveMS {
		t.Fatalf("health: %d pending, due %d; want 1, %d", h.PendingPolicies, h.PolicyDueUnixMS, res.EffectiveMS)
	}
	// Inside the time lock, the new destination is refused.
	wantRule(t, f.pay(t, destC, big.NewInt(1)), refusal.RuleDestinations)
	f.setNow(f.now.Add(23 * time.Hour))
	wantRule(t, f.pay(t, destC, big.NewInt(1)), refusal.RuleDestinations)

	// One admin cancels it.
	_, crec := policyResult(t, f.cancel(t, addC, 1))
	if crec.Decision != "cancelled" || strings.Join(crec.Approvers, ",") != "b-admin" {
		t.Fatalf("cancel record %+v", crec)
	}
	if h := health(t, f.e); h.PendingPolicies != 0 || h.PolicyDueUnixMS != 0 {
		t.Fatalf("health after the cancel: %d pending, due %d", h.PendingPolicies, h.PolicyDueUnixMS)
	}
	f.setNow(f.now.Add(2 * time.Hour))
	wantRule(t, f.pay(t, destC, big.NewInt(1)), refusal.RuleDestinations)

	// Scheduled again (version 3), and in force once the lock has passed.
	addC3 := withDest(f.doc, 3, destA, destB, destC)
	policyResult(t, f.change(t, addC3, 1, 2))
	f.setNow(f.now.Add(24*time.Hour + time.Second))
	wantSigned(t, f.pay(t, destC, big.NewInt(1)))
	ud := f.e.UserData()
	if ud.PolicyVersion != 3 {
		t.Errorf("attested policy version %d, want 3", ud.PolicyVersion)
	}

	// Removing B: at once.
	dropB := withDest(f.doc, 4, destA, destC)
	res, rec = policyResult(t, f.change(t, dropB, 0, 1))
	if res.EffectiveMS != 0 || rec.Decision != "applied" {
		t.Fatalf("a tightening was not applied at once: %+v %+v", res, rec)
	}
	wantRule(t, f.pay(t, destB, big.NewInt(1)), refusal.RuleDestinations)

	// A rollback to an older version (even one that was in force) is refused.
	wantCode(t, f.change(t, withDest(f.doc, 3, destA, destB, destC), 0, 1), refusal.CodeBadRequest, "versions only increase")
	wantCode(t, f.change(t, withDest(f.doc, 4, destA), 0, 1), refusal.CodeBadRequest, "versions only increase")

	// GET /v1/policy's view.
	pr := f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	if pr.Version != 4 || pr.TimeLockMS != (24*time.Hour).Milliseconds() || len(pr.Pending) != 0 {
		t.Errorf("policy info %+v", pr)
	}
}

// TestPolicySurvivesRestart: the policy in force travels in the sealed
// checkpoint.
func TestPolicySurvivesRestart(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 2)
	withAdmins(t, f, a)
	e, sealed := f.startUnsealed(t)

	var g map[string]any
	json.Unmarshal(f.genesis, &g)
	pol := g["policy"].(map[string]any)
	pol["version"] = 8
	nt := pol["keys"].([]any)[0].(map[string]any)["native_transfers"].(map[string]any)
	nt["destinations"] = nt["destinations"].([]any)[:1] // only A
	doc, _ := json.Marshal(pol)
	p, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	body := admin.PolicyChangeBody{Version: 8, PolicyHash: hex.EncodeToString(hashOf(p)), Document: p.Canonical()}
	_, ok := e.Handle(context.Background(), &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindPolicyChange, body, 0, 1)}).(*proto.AdminResponse)
	if !ok {
		t.Fatal("policy change refused")
	}
	waitAcked(t, e)
	// The admin answer waited for a stored checkpoint holding the change:
	// the test host may hold it already (an acknowledged checkpoint is not
	// handed out again).
	cp := newestCheckpoint(t, e)

	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: hostLast(t, e), Checkpoint: cp})
	if v := e2.UserData().PolicyVersion; v != 8 {
		t.Fatalf("policy version %d after a restart, want 8", v)
	}
	fx := &fixture{e: e2, now: f.now, hot: f.hot}
	wantRule(t, fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destB, big.NewInt(1)), f.now.UnixMilli())), refusal.RuleDestinations)
}

// TestApprovalUnderTightenedPolicy: a request that waits for approvals is
// decided again when the quorum is met; a policy tightened meanwhile
// refuses it (the approvals do not bypass it).
func TestApprovalUnderTightenedPolicy(t *testing.T) {
	ap := newApprovers(t, 1)
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(1, milliEther(100)) })
	body := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(500)), f.now.UnixMilli())
	sr, ok := f.send(t, f.hot, body).(*proto.SignResponse)
	if !ok || sr.Status != proto.StatusPending {
		t.Fatalf("not pending: %#v", sr)
	}
	dropB := withDest(f.doc, 2, destA)
	dropB.Keys[0].Approvals = ap.rule(1, milliEther(100))
	if _, rec := policyResult(t, f.change(t, dropB, 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the tightening was %s", rec.Decision)
	}
	// Refused as the tightening came into force (with its record), so an
	// approval finds it rejected.
	if rec := lastAbout(t, f.e, sr.ApprovalID); rec.Decision != audit.DecisionRefused || rec.Rule != refusal.RuleDestinations {
		t.Errorf("record %+v", rec)
	}
	wantCode(t, ap.decide(t, f.e, sr.ApprovalID, 0, body, false), refusal.CodeApprovalRejected, "policy version 2 refuses it (destinations)")
}
