package enclave_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
)

// TestPolicyRaceStress (review of issue 12): sign requests, approvals and
// rejections, approval info polls, freezes and unfreezes race policy
// changes applied at once (a tightening that removes an approver and
// lengthens the limit's window) and time-locked ones (the loosening back,
// brought into force by the tick as the clock jumps a day, which expires the
// requests still waiting too). A watchdog fails on a deadlock with every
// goroutine's stack. Afterwards the audit log must show:
//
//   - every decision recorded between the records putting versions v and
//     w in force is made under v (the policy in force is the one that
//     decides, in log order: no decision of an older policy after a newer
//     one's record);
//   - every approval counted is by an approver of the policy its record
//     names (an approver removed by a policy in force no longer counts,
//     even when its approval races the change);
//   - no request is signed twice;
//   - the signed amounts never exceed the 24 h limit (30 ETH) in a day.
func TestPolicyRaceStress(t *testing.T) {
	cycles := 4 * raceScale()
	alice, bob := newApproverSet(t, "alice", "bob"), (*approverKeys)(nil)
	bob = alice.of(1)
	both := alice
	f := newGovWith(t, func(k *policy.KeyRule) {
		k.Approvals = both.rule(1, milliEther(500))
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(30).String()}}
		k.Freeze = &stateful.FreezeRule{Refusals: 15, Window: "1h", Scope: "key"}
	})
	approversOf := map[uint64][]string{1: both.names}
	docWith := func(version uint64, ap *approverKeys, window string) policy.Document {
		d := withRule(f.doc, version, ap.rule(1, milliEther(500)))
		d.Keys[0].Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: window, Max: ether(30).String()}}
		d.Keys[0].Freeze = &stateful.FreezeRule{Refusals: 15, Window: "1h", Scope: "key"}
		return d
	}

	// The watchdog: a deadlock fails with every goroutine's stack.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
		case <-time.After(120 * time.Second):
			buf := make([]byte, 8<<20)
			n := runtime.Stack(buf, true)
			fmt.Fprintf(os.Stderr, "TestPolicyRaceStress: no progress for 120 s, a deadlock? Goroutines:\n%s\n", buf[:n])
			panic("TestPolicyRaceStress: deadlock")
		}
	}()

	var ids atomic.Int64
	amounts := sync.Map{} // request digest (hex) -> wei
	body := func(to string, wei *big.Int) []byte {
		b, _ := json.Marshal(api.SignRequest{
			RequestID: fmt.Sprintf("race-%d", ids.Add(1)), TimestampMS: f.clockNow().UnixMilli(), Key: "hot-0",
			EthTransaction: api.NewEthTransaction(transfer(t, 1, to, wei)),
		})
		d := sha256.Sum256(b)
		amounts.Store(fmt.Sprintf("%x", d), wei)
		return b
	}
	type held struct {
		id   string
		body []byte
	}
	toAlice, toBob := make(chan held, 1024), make(chan held, 1024)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var signedN, heldN, approvedN atomic.Int64

	// The client: small payments, payments that need approval, and
	// refusals (a destination not allowed) that freeze the key now and
	// then.
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var b []byte
			switch i % 20 {
			case 0, 1, 2, 3, 4, 5, 6, 7, 8:
				b = body(destA, milliEther(100))
			case 9, 10, 11, 12, 13, 14, 15, 16, 17, 18:
				b = body(destB, milliEther(600))
			default:
				b = body(destC, big.NewInt(1))
			}
			switch a := sendStamped(f.e, f.hot, b).(type) {
			case *proto.SignResponse:
				if a.Status == proto.StatusPending {
					heldN.Add(1)
					select {
					case toAlice <- held{a.ApprovalID, b}:
					default:
					}
				} else {
					signedN.Add(1)
				}
			case *proto.Error:
				switch a.Rule {
				case refusal.RuleRollingLimit, refusal.RuleFrozen, refusal.RuleApprovals, refusal.RuleDestinations, refusal.RuleAudit:
				default:
					if a.Code != refusal.CodeStaleRequest {
						t.Errorf("sign: unexpected %s", answerOf(a))
					}
				}
			}
		}
	})
	// The approvers: alice approves everything at once (she is removed
	// and restored by the policy changes), bob approves or rejects what
	// she could not.
	approve := func(s *approverKeys, i int, h held, reject bool) proto.Message {
		return s.decideAsync(f.e, h.id, i, h.body, reject)
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case h := <-toAlice:
				switch a := approve(both, 0, h, false).(type) {
				case *proto.SignResponse:
					if a.Status != proto.StatusPending {
						approvedN.Add(1)
						continue
					}
				}
				select {
				case toBob <- h:
				default:
				}
			}
		}
	})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case h := <-toBob:
				approve(bob, 0, h, i%3 == 0)
				f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: h.id})
			}
		}
	})

	version := uint64(1)
	unfrozen := uint64(0)
	for c := range cycles {
		// At once: alice removed, the window lengthened (tightenings).
		for range 3 {
			time.Sleep(20 * time.Millisecond)
			version++
			f.mustApply(t, docWith(version, bob, "48h"), "applied")
			approversOf[version] = bob.names
		}
		// Unfreeze what froze meanwhile.
		for _, line := range f.host.records() {
			r, _ := audit.Unmarshal(line)
			if r.Kind == audit.KindFreeze && r.Decision == "frozen" && r.Seq > unfrozen {
				unfrozen = r.Seq
				f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: f.admins.envelope(t, f.genesis, f.clockNow(), admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: r.Seq}, 0, 1)})
			}
		}
		// Time-locked: alice back, the window shortened (loosenings),
		// in force a day later, when the tick (the host's next poll, a
		// request) finds it due; the requests held meanwhile expire.
		version++
		f.now = f.clockNow()
		f.mustApply(t, docWith(version, both, "24h"), "scheduled")
		approversOf[version] = both.names
		time.Sleep(30 * time.Millisecond)
		f.setNow(f.clockNow().Add(24*time.Hour + time.Minute))
		time.Sleep(30 * time.Millisecond)
		f.e.Handle(context.Background(), &proto.PolicyRequest{}) // settles
		t.Logf("cycle %d: version %d; %d signed, %d held, %d approved", c, version, signedN.Load(), heldN.Load(), approvedN.Load())
	}
	close(stop)
	wg.Wait()

	inForce := uint64(1)
	signed := map[string]bool{}
	firstSeen := map[string]int64{}
	perDay := map[int64]*big.Int{}
	for _, line := range recordsOf(t, f.e) {
		r, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == audit.KindPolicy && r.Decision == "applied" {
			inForce = r.PolicyVersion
			continue
		}
		if r.Kind != audit.KindDecision {
			continue
		}
		d := fmt.Sprintf("%x", r.RequestDigest)
		if _, ok := firstSeen[d]; !ok {
			firstSeen[d] = r.TimeMS
		}
		switch r.Decision {
		case audit.DecisionSigned, audit.DecisionApproved, audit.DecisionRefused, audit.DecisionPendingApproval, audit.DecisionRejected:
			if r.PolicyVersion != inForce {
				t.Errorf("record %d (%s, %s) decided under policy version %d, after version %d came into force: %s", r.Seq, r.Decision, r.Rule, r.PolicyVersion, inForce, r.Summary)
			}
		}
		if r.Decision != audit.DecisionSigned && r.Decision != audit.DecisionApproved {
			continue
		}
		if signed[d] {
			t.Errorf("record %d: request %s signed twice", r.Seq, d)
		}
		signed[d] = true
		for _, a := range r.Approvers {
			if !strings.Contains(","+strings.Join(approversOf[r.PolicyVersion], ",")+",", ","+a+",") {
				t.Errorf("record %d: approved by %s, not an approver of policy version %d (%v): %s", r.Seq, a, r.PolicyVersion, approversOf[r.PolicyVersion], r.Summary)
			}
		}
		wei, _ := amounts.Load(d)
		day := firstSeen[d] / (24 * 3600 * 1000)
		if perDay[day] == nil {
			perDay[day] = new(big.Int)
		}
		perDay[day].Add(perDay[day], wei.(*big.Int))
	}
	for day, sum := range perDay {
		if sum.Cmp(ether(30)) > 0 {
			t.Errorf("day %d: %s wei signed, over the 30 ETH limit", day, sum)
		}
	}
	t.Logf("%d policy versions; %d signed, %d held, %d approved by alice", version, signedN.Load(), heldN.Load(), approvedN.Load())
}

// decideAsync is decide for goroutines other than the test's.
func (a *approverKeys) decideAsync(e *enclave.Enclave, id string, i int, body []byte, reject bool) proto.Message {
	domain, decision := api.DomainApprove, api.DecisionApprove
	if reject {
		domain, decision = api.DomainReject, api.DecisionReject
	}
	sig, err := admin.SignDigest(a.signers[i], domain, api.ApprovalDigest(body))
	if err != nil {
		return &proto.Error{Code: refusal.CodeInternal, Message: err.Error()}
	}
	b, _ := json.Marshal(api.ApprovalRequest{ApprovalID: id, Decision: decision, Approver: a.names[i], Signature: hex.EncodeToString(sig)})
	return e.Handle(context.Background(), &proto.ApprovalRequest{Body: b})
}
