package enclave_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

func ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

func milliEther(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e15)) }

// statefulFixture is an enclave (ephemeral seed) whose policy for hot-0
// has the given stateful sections.
type statefulFixture struct {
	*fixture
	genesis []byte
}

func newStateful(t *testing.T, edit func(*policy.KeyRule)) *statefulFixture {
	return newStatefulTB(t, edit, 0)
}

// newStatefulBench is a fixture with generous limits, for benchmarks.
func newStatefulBench(b *testing.B) *statefulFixture {
	return newStatefulTB(b, func(k *policy.KeyRule) {
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(1_000_000).String()}}
		k.Velocity = &stateful.VelocityRule{Window: "1h", MaxTransactions: 1 << 40}
	}, b.N+16)
}

func newStatefulTB(t testing.TB, edit func(*policy.KeyRule), maxUnacked int) *statefulFixture {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hot, _ := stamp.NewEd25519Signer(priv)
	kr := policy.KeyRule{
		Key:    "hot-0",
		Chains: []uint64{1},
		NativeTransfers: &policy.NativeTransfers{
			Destinations:         []policy.Destination{{Address: destA, Label: "A"}, {Address: destB, Label: "B"}},
			MaxPerTransactionWei: ether(1).String(),
		},
	}
	edit(&kr)
	doc := policy.Document{
		Version: 1,
		Clients: []policy.Client{{Name: "hot-client", Scheme: "ed25519", PublicKey: hex.EncodeToString(hot.PublicKey().Key), Keys: []string{"hot-0"}}},
		Keys:    []policy.KeyRule{kr},
	}
	pol, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(map[string]any{
		"format": 1,
		"keys":   []map[string]string{{"id": "hot-0", "path": "m/44'/60'/0'/0/0"}},
		"policy": json.RawMessage(pol),
	})
	f := &fixture{now: time.UnixMilli(1_800_000_000_000), hot: hot}
	f.setNow(f.now) // the clock the enclave reads
	f.e, err = enclave.New(enclave.Config{Genesis: g, Now: f.clockNow, MaxUnackedAudit: maxUnacked})
	if err != nil {
		t.Fatal(err)
	}
	f.host = startAcks(t, f.e)
	return &statefulFixture{fixture: f, genesis: g}
}

func (f *statefulFixture) pay(t *testing.T, to string, wei *big.Int) proto.Message {
	t.Helper()
	return f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, to, wei), f.now.UnixMilli()))
}

func wantSigned(t *testing.T, m proto.Message) *proto.SignResponse {
	t.Helper()
	sr, ok := m.(*proto.SignResponse)
	if !ok || sr.Status != "" || len(sr.SignedTransaction) == 0 {
		t.Fatalf("want a signature, got %#v", m)
	}
	return sr
}

func wantRule(t *testing.T, m proto.Message, rule string) *proto.Error {
	t.Helper()
	pe, ok := m.(*proto.Error)
	if !ok || pe.Code != refusal.CodePolicyDenied || pe.Rule != rule {
		t.Fatalf("want a refusal by rule %s, got %#v", rule, m)
	}
	return pe
}

// TestRollingLimitSplitAttack: 3 ETH a day to B; an over-limit amount
// split into transactions each under the per-transaction cap is refused
// once the window's sum would exceed the limit, and allowed again when
// the window has moved on. Other destinations are not counted.
func TestRollingLimitSplitAttack(t *testing.T) {
	f := newStateful(t, func(k *policy.KeyRule) {
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Destination: destB, Window: "24h", Max: ether(3).String()}}
	})
	for range 6 {
		wantSigned(t, f.pay(t, destB, milliEther(500)))
	}
	pe := wantRule(t, f.pay(t, destB, milliEther(1)), refusal.RuleRollingLimit)
	if !strings.Contains(pe.Message, "3000000000000000000") && !strings.Contains(pe.Message, "3 ") {
		t.Logf("refusal message: %s", pe.Message)
	}
	wantSigned(t, f.pay(t, destA, ether(1))) // A is not under the limit
	f.setNow(f.now.Add(25 * time.Hour))
	wantSigned(t, f.pay(t, destB, ether(1)))
}

// TestVelocity: at most 3 transactions an hour.
func TestVelocity(t *testing.T) {
	f := newStateful(t, func(k *policy.KeyRule) {
		k.Velocity = &stateful.VelocityRule{Window: "1h", MaxTransactions: 3}
	})
	for range 3 {
		wantSigned(t, f.pay(t, destA, big.NewInt(1)))
	}
	wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleVelocity)
	f.setNow(f.now.Add(2 * time.Hour))
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))
}

// TestFreezeAfterRefusals: the third refusal within the hour freezes the
// key; a frozen key refuses even what the policy allows; the freeze is
// recorded, and only an admin quorum naming that freeze lifts it.
func TestFreezeAfterRefusals(t *testing.T) {
	f := newStateful(t, func(k *policy.KeyRule) {
		k.Freeze = &stateful.FreezeRule{Refusals: 3, Window: "1h", Scope: "key"}
	})
	for range 3 {
		wantRule(t, f.pay(t, destA, ether(2)), refusal.RuleMaxPerTransaction)
	}
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	if !strings.Contains(pe.Message, "admin quorum") {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
	// The freeze record is in the log (fetched like any record).
	key := f.e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).Key
	var freezeSeq uint64
	for _, r := range checkedRecords(t, recordsOf(t, f.e), key) {
		if r.Kind == audit.KindFreeze {
			freezeSeq = r.Seq
			if r.Decision != "frozen" || r.Key != "hot-0" {
				t.Errorf("freeze record %+v", r)
			}
		}
	}
	if freezeSeq == 0 {
		t.Fatal("no freeze record")
	}
}

// TestFreezeOnLimitBreachAndUnfreeze: with on_limit_breach, one attempt over
// a limit freezes every key (scope all); an unfreeze naming another record
// is refused, the right one lifts it, and earlier refusals no longer count.
func TestFreezeOnLimitBreachAndUnfreeze(t *testing.T) {
	admins := newAdmins(t, 2)
	f := newStateful(t, func(k *policy.KeyRule) {
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(2).String()}}
		k.Freeze = &stateful.FreezeRule{Refusals: 2, Window: "1h", OnLimitBreach: true, Scope: "all"}
	})
	// The fixture has no admins: rebuild with them.
	var g map[string]any
	json.Unmarshal(f.genesis, &g)
	g["admins"] = admins.config(2)
	f.genesis, _ = json.Marshal(g)
	e, err := enclave.New(enclave.Config{Genesis: f.genesis, Now: f.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	f.e, f.host = e, startAcks(t, e)
	wantSigned(t, f.pay(t, destA, ether(1)))
	wantSigned(t, f.pay(t, destA, ether(1)))
	wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleRollingLimit)
	wantRule(t, f.pay(t, destB, big.NewInt(0)), refusal.RuleFrozen)
	seq := latestFreeze(t, f.e)
	// Health counts every key as frozen under a freeze of all (the
	// host's nitrosign_enclave_frozen_keys).
	if h := health(t, f.e); h.FrozenKeys == 0 || h.FrozenKeys != h.Keys {
		t.Fatalf("health under a freeze of every key: %d of %d keys frozen", h.FrozenKeys, h.Keys)
	}

	unfreeze := func(s uint64) proto.Message {
		return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: admins.envelope(t, f.genesis, f.now, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: s}, 0, 1)})
	}
	wantCode(t, unfreeze(seq-1), refusal.CodeBadRequest, "no freeze in force")
	if _, ok := unfreeze(seq).(*proto.AdminResponse); !ok {
		t.Fatalf("unfreeze refused: %#v", unfreeze(seq))
	}
	if h := health(t, f.e); h.FrozenKeys != 0 {
		t.Fatalf("health after the unfreeze: %d keys frozen", h.FrozenKeys)
	}
	// Unfrozen; the refusals before the unfreeze do not count: one more
	// refusal (under the threshold of 2) does not freeze again.
	wantRule(t, f.pay(t, destA, ether(5)), refusal.RuleMaxPerTransaction)
	f.setNow(f.now.Add(25 * time.Hour))
	wantSigned(t, f.pay(t, destA, ether(1)))
}

// health is e's answer to a health request.
func health(t *testing.T, e *enclave.Enclave) *proto.HealthResponse {
	t.Helper()
	h, ok := e.Handle(context.Background(), &proto.HealthRequest{}).(*proto.HealthResponse)
	if !ok {
		t.Fatal("no health answer")
	}
	return h
}

func latestFreeze(t *testing.T, e *enclave.Enclave) uint64 {
	t.Helper()
	var seq uint64
	for _, line := range recordsOf(t, e) {
		r, _ := audit.Unmarshal(line)
		if r.Kind == audit.KindFreeze && r.Decision == "frozen" {
			seq = r.Seq
		}
	}
	if seq == 0 {
		t.Fatal("no freeze record")
	}
	return seq
}

// approverKeys names approvers with their keys.
type approverKeys struct {
	names   []string
	signers []stamp.Signer
}

func newApprovers(t *testing.T, n int) *approverKeys {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("approver-%d", i+1)
	}
	return newApproverSet(t, names...)
}

func (a *approverKeys) rule(quorum uint64, above *big.Int) *stateful.ApprovalRule {
	r := &stateful.ApprovalRule{Quorum: quorum, Above: []stateful.ApprovalThreshold{{ChainID: 1, Asset: "native", Amount: above.String()}}}
	for i, s := range a.signers {
		r.Approvers = append(r.Approvers, stateful.Approver{Name: a.names[i], Scheme: "ed25519", PublicKey: hex.EncodeToString(s.PublicKey().Key)})
	}
	return r
}

func (a *approverKeys) decide(t testing.TB, e *enclave.Enclave, id string, i int, body []byte, reject bool) proto.Message {
	t.Helper()
	domain, decision := api.DomainApprove, api.DecisionApprove
	if reject {
		domain, decision = api.DomainReject, api.DecisionReject
	}
	sig, err := admin.SignDigest(a.signers[i], domain, api.ApprovalDigest(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(api.ApprovalRequest{ApprovalID: id, Decision: decision, Approver: a.names[i], Signature: hex.EncodeToString(sig)})
	return e.Handle(context.Background(), &proto.ApprovalRequest{Body: b})
}

// TestApprovals: above the threshold a request waits for 2 of 3
// approvers; each approval counts once; an approval over another request,
// or by a non-approver, is refused; the quorum signs; a rejection ends it;
// an expired request releases its limit reservation.
func TestApprovals(t *testing.T) {
	ap := newApprovers(t, 3)
	f := newStateful(t, func(k *policy.KeyRule) {
		k.Approvals = ap.rule(2, milliEther(500))
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(2).String()}}
	})
	wantSigned(t, f.pay(t, destA, milliEther(500))) // at the threshold: no approval needed

	body := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(900)), f.now.UnixMilli())
	resp := f.send(t, f.hot, body)
	sr, ok := resp.(*proto.SignResponse)
	if !ok || sr.Status != proto.StatusPending || sr.ApprovalID == "" || sr.Quorum != 2 || sr.Signature != ([65]byte{}) || len(sr.AuditRecord) == 0 {
		t.Fatalf("over the threshold: %#v", resp)
	}
	id := sr.ApprovalID
	// The summary's lines render to the text its record keeps, the
	// destination's label apart from its address.
	held, err := audit.Unmarshal(sr.AuditRecord)
	if err != nil {
		t.Fatal(err)
	}
	if text := summaryText(t, sr.SummaryLines); !strings.HasSuffix(held.Summary, " needed: "+text) || !strings.Contains(text, "to: "+destB+` ("B")`+"\n") {
		t.Fatalf("the pending answer's summary lines render to\n%s\nthe record says\n%s", text, held.Summary)
	}
	labelled := false
	for _, l := range sr.SummaryLines {
		labelled = labelled || l.Key == "to" && l.Value == destB && len(l.Labels) == 1 && l.Labels[0].Text == ` ("B")`
	}
	if !labelled {
		t.Fatalf("the destination's line does not keep its label apart: %+v", sr.SummaryLines)
	}
	info := f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}).(*proto.ApprovalInfoResponse)
	if string(info.Body) != string(body) || info.Digest != api.ApprovalDigest(body) || !strings.Contains(summaryText(t, info.SummaryLines), "value: 0.9") {
		t.Fatalf("info %+v", info)
	}

	// A signature over another request's digest does not count.
	other := f.body(t, "hot-0", transfer(t, 1, destB, ether(1)), f.now.UnixMilli())
	wantCode(t, ap.decide(t, f.e, id, 0, other, false), refusal.CodeUnauthorized, "does not verify")
	// The first approval: still pending; again by the same approver: no change.
	for range 2 {
		p, ok := ap.decide(t, f.e, id, 0, body, false).(*proto.SignResponse)
		if !ok || p.Status != proto.StatusPending || len(p.Approvers) != 1 {
			t.Fatalf("first approval: %#v", p)
		}
	}
	// The second approver: signed, with the approvers recorded.
	done := wantSignedApproved(t, ap.decide(t, f.e, id, 2, body, false))
	rec, _ := audit.Unmarshal(done.AuditRecord)
	if rec.Decision != audit.DecisionApproved || strings.Join(rec.Approvers, ",") != "approver-1,approver-3" {
		t.Errorf("approval record %+v", rec)
	}
	if tx := signedFields(t, done.SignedTransaction); tx.Value.Cmp(milliEther(900)) != 0 {
		t.Fatalf("signed a transaction of %v wei", tx.Value)
	}
	// Single use: asking again returns the same signature, no new one.
	again := wantSignedApproved(t, ap.decide(t, f.e, id, 1, body, false))
	if again.AuditSeq != done.AuditSeq {
		t.Error("a second signature was made")
	}

	// A rejection.
	body2 := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(600)), f.now.UnixMilli())
	id2 := f.send(t, f.hot, body2).(*proto.SignResponse).ApprovalID
	wantCode(t, ap.decide(t, f.e, id2, 1, body2, true), refusal.CodeApprovalRejected, "rejected by approver-2")
	wantCode(t, ap.decide(t, f.e, id2, 0, body2, false), refusal.CodeApprovalRejected, "rejected")

	// Expiry releases the reservation: 0.5 + 0.9 signed; 0.6 rejected
	// (released); a 0.6 pending then expired must leave room for 0.6.
	body3 := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(600)), f.now.UnixMilli())
	id3 := f.send(t, f.hot, body3).(*proto.SignResponse).ApprovalID
	f.setNow(f.now.Add(enclave.ApprovalTTL + time.Minute))
	wantCode(t, ap.decide(t, f.e, id3, 0, body3, false), refusal.CodeNotFound, "expired")
	f.setNow(f.now.Add(-enclave.ApprovalTTL - time.Minute + time.Second))
	// Within the day: 0.5 + 0.9 used; 0.6 fits (2 ETH limit) only if the
	// expired reservation was released.
	body4 := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(600)), f.now.UnixMilli())
	if p, ok := f.send(t, f.hot, body4).(*proto.SignResponse); !ok || p.Status != proto.StatusPending {
		t.Fatalf("after an expiry, the reservation was not released: %#v", f.send(t, f.hot, body4))
	}
}

func wantSignedApproved(t *testing.T, m proto.Message) *proto.SignResponse {
	t.Helper()
	sr, ok := m.(*proto.SignResponse)
	if !ok || sr.Status != "" || len(sr.SignedTransaction) == 0 {
		t.Fatalf("want the approved signature, got %#v", m)
	}
	return sr
}

// TestLimitsAndFreezesSurviveRestart: usage and freezes travel in the
// sealed checkpoint: after a restart, 2 of the 2.5 ETH spent leave 0.5, and a
// frozen key stays frozen.
func TestLimitsAndFreezesSurviveRestart(t *testing.T) {
	f := newSealedFixture(t)
	var g map[string]any
	json.Unmarshal(f.genesis, &g)
	pol := g["policy"].(map[string]any)
	k0 := pol["keys"].([]any)[0].(map[string]any)
	k0["limits"] = []map[string]any{{"chain_id": 1, "asset": "native", "window": "24h", "max": milliEther(2500).String()}}
	k0["freeze"] = map[string]any{"refusals": 2, "window": "1h", "on_limit_breach": false, "scope": "key"}
	f.genesis, _ = json.Marshal(g)

	e := f.start(t)
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	r := mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed})
	fx := &fixture{e: e, now: f.now, hot: f.hot}
	_ = r
	for range 2 {
		wantSigned(t, fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destA, ether(1)), f.now.UnixMilli())))
	}
	cp := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)

	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: hostLast(t, e), Checkpoint: cp.Sealed})
	fx2 := &fixture{e: e2, now: f.now, hot: f.hot, seqIDs: 100}
	wantRule(t, fx2.send(t, f.hot, fx2.body(t, "hot-0", transfer(t, 1, destA, milliEther(600)), f.now.UnixMilli())), refusal.RuleRollingLimit)
	wantSigned(t, fx2.send(t, f.hot, fx2.body(t, "hot-0", transfer(t, 1, destA, milliEther(500)), f.now.UnixMilli())))
	// Freeze it (a second refusal), checkpoint, restart: still frozen.
	wantRule(t, fx2.send(t, f.hot, fx2.body(t, "hot-0", transfer(t, 1, destA, ether(5)), f.now.UnixMilli())), "max_per_transaction")
	recs := recordsOf(t, e2)
	lastLine := recs[len(recs)-1] // the tree head after the freeze
	if r, _ := audit.Unmarshal(recs[len(recs)-2]); r.Kind != audit.KindFreeze {
		t.Fatalf("the last record is not the freeze: %+v", r)
	}
	cp2 := call(t, e2, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)
	e3 := f.start(t)
	mustUnseal(t, e3, &proto.UnsealRequest{Sealed: sealed, AuditHead: lastLine, Checkpoint: cp2.Sealed})
	fx3 := &fixture{e: e3, now: f.now, hot: f.hot, seqIDs: 200}
	wantRule(t, fx3.send(t, f.hot, fx3.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), fx3.now.UnixMilli())), refusal.RuleFrozen)
}

// TestRequireCheckpoint: with limits.max_unacknowledged 2, the third
// transaction beyond the last checkpoint the host stored is refused (503,
// rule checkpoint) until the host stores and acknowledges a newer one. (A
// key without limits has no usage to hide, and is not held back.)
func TestRequireCheckpoint(t *testing.T) {
	f := newSealedFixture(t)
	var g map[string]any
	json.Unmarshal(f.genesis, &g)
	g["limits"] = map[string]any{"max_unacknowledged": 2}
	k0 := g["policy"].(map[string]any)["keys"].([]any)[0].(map[string]any)
	k0["limits"] = []map[string]any{{"chain_id": 1, "asset": "native", "window": "24h", "max": ether(3).String()}}
	f.genesis, _ = json.Marshal(g)
	e, _ := f.startUnsealed(t)
	fx := &fixture{e: e, now: f.now, hot: f.hot}
	pay := func() proto.Message {
		return fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	}
	wantSigned(t, pay())
	wantSigned(t, pay())
	pe, ok := pay().(*proto.Error)
	if !ok || pe.Code != refusal.CodeUnavailable || pe.Rule != "checkpoint" {
		t.Fatalf("the third transaction: %#v", pe)
	}
	// The host persists the records, stores a checkpoint and acknowledges it.
	waitAcked(t, e)
	cp := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)
	wantCode(t, pay(), refusal.CodeUnavailable, "checkpoint")
	call(t, e, &proto.CheckpointRequest{Ack: cp.Generation})
	wantSigned(t, pay())
}

// summaryText renders summary lines as the host does (api.SummaryText):
// the text of the audit record's summary.
func summaryText(t *testing.T, lines []proto.SummaryLine) string {
	t.Helper()
	out := make([]api.SummaryLine, len(lines))
	for i, l := range lines {
		out[i] = api.SummaryLine{Key: l.Key, Value: l.Value}
		for _, lb := range l.Labels {
			out[i].Labels = append(out[i].Labels, api.SummaryLabel{At: int(lb.At), End: int(lb.End), Text: lb.Text})
		}
	}
	text, err := api.SummaryText(out)
	if err != nil {
		t.Fatal(err)
	}
	return text
}
