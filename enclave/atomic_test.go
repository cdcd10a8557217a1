package enclave_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// Policy changes racing requests (issue 12): a change never loses a
// reservation or a refusal count, and every request is decided and
// reserved wholly under one policy version, the one its record names.

// raceBatch is how many requests spendRace's callers release at once.
const raceBatch = 50

// raceScale is 1 in go test and 10 with NITROSIGN_CHAOS=1.
func raceScale() int {
	if chaos() {
		return 10
	}
	return 1
}

// withVersion returns a copy of doc with the version set and, if max is not
// nil, hot-0's native limit (24 h) set to max.
func withVersion(doc policy.Document, version uint64, max *big.Int) policy.Document {
	b, _ := json.Marshal(doc)
	var d policy.Document
	json.Unmarshal(b, &d)
	d.Version = version
	if max != nil {
		d.Keys[0].Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: max.String()}}
	}
	return d
}

// mustApply submits a policy change and fails unless it has the decision
// want ("applied" or "scheduled").
func (f *govFixture) mustApply(t *testing.T, doc policy.Document, want string) {
	t.Helper()
	if _, rec := policyResult(t, f.change(t, doc, 0, 1)); rec.Decision != want {
		t.Fatalf("policy version %d: %s, want %s", doc.Version, rec.Decision, want)
	}
}

// sendStamped is fixture.send for goroutines other than the test's.
func sendStamped(e *enclave.Enclave, s stamp.Signer, body []byte) proto.Message {
	h, err := stamp.Create(s, body)
	if err != nil {
		return &proto.Error{Code: refusal.CodeInternal, Message: err.Error()}
	}
	return e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: h})
}

// spendRace sends n payments of 0.01 ETH to destA, one goroutine each,
// while gov runs in the test goroutine: release(k) lets k more of them go
// (those released together run at once), done reports how many have been
// answered. Those gov does not release go when it returns. spendRace
// returns the records of those signed, and fails on any answer but a
// signature or a rolling-limit refusal.
func spendRace(t *testing.T, f *govFixture, n int, gov func(release func(k int), done func() int)) []audit.Record {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = f.body(t, "hot-0", transfer(t, 1, destA, milliEther(10)), f.now.UnixMilli())
	}
	answers := make([]proto.Message, n)
	var answered atomic.Int64
	tokens := make(chan struct{}, n)
	released := 0
	release := func(k int) {
		for ; k > 0 && released < n; k-- {
			tokens <- struct{}{}
			released++
		}
	}
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Go(func() {
			<-tokens
			answers[i] = sendStamped(f.e, f.hot, bodies[i])
			answered.Add(1)
		})
	}
	gov(release, func() int { return int(answered.Load()) })
	release(n)
	wg.Wait()
	var signed []audit.Record
	for _, m := range answers {
		switch a := m.(type) {
		case *proto.SignResponse:
			rec, err := audit.Unmarshal(a.AuditRecord)
			if err != nil || rec.Decision != audit.DecisionSigned {
				t.Fatalf("signed, with the record %+v (%v)", rec, err)
			}
			signed = append(signed, rec)
		case *proto.Error:
			if a.Rule != refusal.RuleRollingLimit {
				t.Fatalf("refused: %s: %s", a.Rule, a.Message)
			}
		default:
			t.Fatalf("answered %#v", m)
		}
	}
	return signed
}

// answerOf describes an answer briefly, for failures.
func answerOf(m proto.Message) string {
	switch a := m.(type) {
	case *proto.Error:
		return a.Code + "/" + a.Rule + ": " + a.Message
	case *proto.SignResponse:
		return "signed (" + a.Status + ")"
	}
	return fmt.Sprintf("%T", m)
}

// signedSum returns how many of the records (0.01 ETH each) have a policy
// version in [from, to).
func signedSum(recs []audit.Record, from, to uint64) int {
	n := 0
	for _, r := range recs {
		if r.PolicyVersion >= from && r.PolicyVersion < to {
			n++
		}
	}
	return n
}

// until runs step until done() reaches n, or for at most a few seconds,
// which is plenty: the requests run without waiting for anything.
func until(done func() int, n int, step func()) {
	deadline := time.Now().Add(30 * time.Second)
	for done() < n && time.Now().Before(deadline) {
		step()
	}
}

func newLimitGov(t *testing.T, max *big.Int) *govFixture {
	return newGovWith(t, func(k *policy.KeyRule) {
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: max.String()}}
	})
}

// TestLimitAtomicVersionOnly: 0.01 ETH spends against a 3 ETH/24 h limit,
// with changes of the version alone applying meanwhile, sign exactly 3 ETH
// (before issue 12 they signed 3.01 to 3.14 ETH: reservations made on the
// tracker a change replaced were lost).
func TestLimitAtomicVersionOnly(t *testing.T) {
	s := raceScale()
	limit := 300 * s // in 0.01 ETH
	f := newLimitGov(t, milliEther(int64(10*limit)))
	version := uint64(1)
	n := limit * 4 / 3
	signed := spendRace(t, f, n, func(release func(int), done func() int) {
		for i := 0; i < n; i += raceBatch {
			release(raceBatch)
			version++
			f.mustApply(t, withVersion(f.doc, version, nil), "applied")
		}
		until(done, n, func() {
			version++
			f.mustApply(t, withVersion(f.doc, version, nil), "applied")
		})
	})
	if len(signed) != limit {
		t.Fatalf("signed %d × 0.01 ETH against a limit of %d × 0.01 ETH, with %d policy changes", len(signed), limit, version-1)
	}
}

// TestLimitAtomicTightening: a lower limit applied at once while spends
// race it: what is signed under it, counted with what was signed before,
// stays within it, and no more than the old limit is ever signed.
func TestLimitAtomicTightening(t *testing.T) {
	s := raceScale()
	limit, tight := 300*s, 200*s
	f := newLimitGov(t, milliEther(int64(10*limit)))
	version, tightAt := uint64(1), uint64(0)
	n := limit * 4 / 3
	signed := spendRace(t, f, n, func(release func(int), done func() int) {
		max := milliEther(int64(10 * limit))
		for i := 0; i < n; i += raceBatch {
			release(raceBatch)
			version++
			if tightAt == 0 && i >= n/4 {
				tightAt, max = version, milliEther(int64(10*tight))
			}
			f.mustApply(t, withVersion(f.doc, version, max), "applied")
		}
		until(done, n, func() {
			version++
			f.mustApply(t, withVersion(f.doc, version, max), "applied")
		})
	})
	before, after := signedSum(signed, 0, tightAt), signedSum(signed, tightAt, 1<<63)
	t.Logf("tightened to %d at version %d: %d signed before, %d after", tight, tightAt, before, after)
	if tightAt == 0 {
		t.Fatal("the tightening never applied")
	}
	if len(signed) > limit {
		t.Fatalf("signed %d, over the limit %d", len(signed), limit)
	}
	if after > 0 && before+after > tight {
		t.Fatalf("%d signed under the tightened limit of %d, with %d before it", after, tight, before)
	}
	if before < tight && before+after != tight {
		t.Fatalf("signed %d in all, want the tightened limit %d exactly (nothing else refuses)", before+after, tight)
	}
}

// TestLimitAtomicLoosening: a raised limit coming into force when its time
// lock ends (the clock moves while spends race) counts every reservation
// made before it: exactly the new limit is signed, and no more than the
// old one under the old version.
func TestLimitAtomicLoosening(t *testing.T) {
	s := raceScale()
	limit, loose := 300*s, 400*s
	f := newLimitGov(t, milliEther(int64(10*limit)))
	f.mustApply(t, withVersion(f.doc, 2, milliEther(int64(10*loose))), "scheduled")
	due := f.now.Add(24 * time.Hour)
	f.setNow(due.Add(-2 * time.Second)) // the spends all fall in one window
	n := loose * 5 / 4
	version := uint64(2)
	signed := spendRace(t, f, n, func(release func(int), done func() int) {
		for i := 0; i < n/3; i += raceBatch {
			release(raceBatch)
			until(done, i, func() { time.Sleep(time.Millisecond) })
		}
		release(raceBatch)
		f.setNow(due.Add(time.Second)) // the next tick puts version 2 in force
		for i := n/3 + raceBatch; i < n; i += raceBatch {
			release(raceBatch)
			if f.e.UserData().PolicyVersion < 2 {
				f.e.Handle(context.Background(), &proto.PolicyRequest{}) // settles
				continue
			}
			version++
			f.mustApply(t, withVersion(f.doc, version, milliEther(int64(10*loose))), "applied")
		}
	})
	old := signedSum(signed, 0, 2)
	t.Logf("%d signed under version 1, %d in all, %d policy changes after the loosening", old, len(signed), version-2)
	if old > limit {
		t.Fatalf("%d signed under version 1, over its limit %d", old, limit)
	}
	if len(signed) != loose {
		t.Fatalf("signed %d, want the loosened limit %d exactly", len(signed), loose)
	}
}

// TestFreezeAtomic: a freeze after N refusals triggers at exactly the N-th
// refusal while policy changes of the version alone apply meanwhile (before
// issue 12 a refusal counted on a tracker a change replaced was lost).
func TestFreezeAtomic(t *testing.T) {
	const refusals = 25
	for round := range 3 * raceScale() {
		f := newGovWith(t, func(k *policy.KeyRule) {
			k.Freeze = &stateful.FreezeRule{Refusals: refusals, Window: "1h", Scope: "key"}
		})
		bodies := make([][]byte, refusals+2)
		for i := range bodies {
			bodies[i] = f.body(t, "hot-0", transfer(t, 1, destC, big.NewInt(1)), f.now.UnixMilli())
		}
		answers := make([]proto.Message, len(bodies))
		var done atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			defer done.Store(true)
			for i, b := range bodies {
				answers[i] = sendStamped(f.e, f.hot, b)
			}
		})
		version := uint64(1)
		for !done.Load() {
			version++
			f.mustApply(t, withVersion(f.doc, version, nil), "applied")
		}
		wg.Wait()
		for i, m := range answers {
			want := refusal.RuleDestinations
			if i >= refusals {
				want = refusal.RuleFrozen
			}
			if pe, ok := m.(*proto.Error); !ok || pe.Rule != want {
				t.Fatalf("round %d (%d policy changes): request %d answered %s, want a refusal by %s", round, version-1, i+1, answerOf(m), want)
			}
		}
	}
}

// TestApprovalReservationAcrossPolicyChange: a request waiting for
// approvals holds its reservation across policy changes; rejected, or
// expired, it gives the budget back under the policy now in force.
func TestApprovalReservationAcrossPolicyChange(t *testing.T) {
	for _, end := range []string{"rejected", "expired"} {
		t.Run(end, func(t *testing.T) {
			ap := newApprovers(t, 1)
			f := newGovWith(t, func(k *policy.KeyRule) {
				k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(3).String()}}
				k.Approvals = ap.rule(1, milliEther(500))
			})
			body := f.body(t, "hot-0", transfer(t, 1, destB, ether(1)), f.now.UnixMilli())
			sr, ok := f.send(t, f.hot, body).(*proto.SignResponse)
			if !ok || sr.Status != proto.StatusPending {
				t.Fatalf("not held: %#v", sr)
			}
			for range 4 {
				wantSigned(t, f.pay(t, destA, milliEther(500)))
			}
			wantRule(t, f.pay(t, destA, milliEther(500)), refusal.RuleRollingLimit) // 1 held + 2 signed
			// A change of the version alone, then a lower limit (both keep
			// the track the reservation is in), then a longer window (a new
			// track, which takes the usage and the reservation).
			for v, max := range []*big.Int{nil, milliEther(2900), milliEther(2900)} {
				doc := withVersion(f.doc, uint64(v+2), max)
				doc.Keys[0].Approvals = ap.rule(1, milliEther(500))
				if v == 2 {
					doc.Keys[0].Limits[0].Window = "48h"
				}
				f.mustApply(t, doc, "applied")
			}
			switch end {
			case "rejected":
				if pe, ok := ap.decide(t, f.e, sr.ApprovalID, 0, body, true).(*proto.Error); !ok || pe.Code != refusal.CodeApprovalRejected {
					t.Fatalf("rejection answered %#v", pe)
				}
			case "expired":
				f.setNow(f.now.Add(enclave.ApprovalTTL))
				f.e.Handle(context.Background(), &proto.PolicyRequest{}) // settles
			}
			// 2 ETH signed, 2.9 ETH in 48 h the limit in force.
			wantSigned(t, f.pay(t, destA, milliEther(500)))
			wantSigned(t, f.pay(t, destA, milliEther(400)))
			wantRule(t, f.pay(t, destA, milliEther(1)), refusal.RuleRollingLimit)
		})
	}
}

// TestCheckpointAckAcrossPolicyChange: with max_unacknowledged 2, a
// checkpoint taken before a policy change and acknowledged after it lets
// transactions count from it again (before issue 12 the tracker that
// replaced the old one took the checkpoint as acknowledged already, and
// kept counting the transactions before it as unacknowledged: refused
// until yet another checkpoint was stored).
func TestCheckpointAckAcrossPolicyChange(t *testing.T) {
	f, a := rollbackFixture(t, 2)
	e, _ := f.startUnsealed(t)
	fx := &fixture{e: e, now: f.now, hot: f.hot}
	pay := func() proto.Message {
		return fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destB, big.NewInt(1)), f.now.UnixMilli()))
	}
	wantSigned(t, pay())
	wantSigned(t, pay())
	wantCode(t, pay(), refusal.CodeUnavailable, "checkpoint")
	waitAcked(t, e)
	cp := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)

	var g map[string]any
	json.Unmarshal(f.genesis, &g)
	doc := g["policy"].(map[string]any)
	doc["version"] = 100 // the same rules, a new version
	b, _ := json.Marshal(doc)
	pol, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	body := admin.PolicyChangeBody{Version: 100, PolicyHash: hex.EncodeToString(hashOf(pol)), Document: pol.Canonical()}
	if _, rec := policyResult(t, e.Handle(context.Background(), &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindPolicyChange, body, 0, 1)})); rec.Decision != "applied" {
		t.Fatalf("the policy change was %s", rec.Decision)
	}
	// The admin answer waited for a stored checkpoint holding the change
	// (single use): the host acknowledged one taken after the two
	// payments, so two more fit before the next acknowledgement.
	if g := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse).Generation; g <= cp.Generation {
		t.Fatalf("checkpoint generation %d after the change, %d before", g, cp.Generation)
	}
	wantSigned(t, pay())
	wantSigned(t, pay())
	wantCode(t, pay(), refusal.CodeUnavailable, "checkpoint")
	cp = call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)
	call(t, e, &proto.CheckpointRequest{Ack: cp.Generation})
	// The acknowledgement reached the tracker of the rules in force.
	wantSigned(t, pay())
	wantSigned(t, pay())
	wantCode(t, pay(), refusal.CodeUnavailable, "checkpoint")
}
