package enclave_test

import (
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// TestHeldRequestSignedWithinLimits (review of issue 12): a request held
// for approvals is signed when its quorum is met, which may be up to an
// hour after it was held; what it spends must fit the rolling limits in
// force then, counted at the time of the signature:
//
//   - "window": with a 10 minute window, the reservation made when it was
//     held has left the window by the time it is approved; the key spent
//     its limit meanwhile, and signing it would put twice the limit in ten
//     minutes (before the fix it was signed);
//   - "tightened": a policy change lowers the limit below what the held
//     request reserved (an incident response: stop the outflow); the
//     approval must not sign it (before the fix it was signed: the
//     re-decision checked the rules and approvers, not the limits).
func TestHeldRequestSignedWithinLimits(t *testing.T) {
	for _, tc := range []string{"window", "tightened"} {
		t.Run(tc, func(t *testing.T) {
			ap := newApproverSet(t, "alice")
			f := newGovWith(t, func(k *policy.KeyRule) {
				k.Approvals = ap.rule(1, milliEther(500))
				k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "10m", Max: ether(1).String()}}
			})
			body, id := f.hold(t, ether(1))
			switch tc {
			case "window":
				f.setNow(f.now.Add(11 * time.Minute))
				wantSigned(t, f.pay(t, destA, milliEther(500)))
				wantSigned(t, f.pay(t, destA, milliEther(500)))
			case "tightened":
				doc := withRule(f.doc, 2, ap.rule(1, milliEther(500)))
				doc.Keys[0].Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "10m", Max: milliEther(500).String()}}
				f.mustApply(t, doc, "applied")
			}
			wantRule(t, ap.decide(t, f.e, id, 0, body, false), refusal.RuleRollingLimit)
			if tc == "tightened" {
				// Refused, its reservation was given back: the lowered
				// limit is free.
				wantSigned(t, f.pay(t, destA, milliEther(500)))
			}
		})
	}
}

// TestRefusalCountAcrossRefusalWindowChange (review of issue 12): refusals
// counted toward a freeze survive a policy change that lengthens the
// refusal window beyond the default (the tracker moves its refusal counts
// into new buckets), and a shortening back.
func TestRefusalCountAcrossRefusalWindowChange(t *testing.T) {
	f := newGovWith(t, func(k *policy.KeyRule) {
		k.Freeze = &stateful.FreezeRule{Refusals: 4, Window: "1h", Scope: "key"}
	})
	refuse := func(want string) {
		t.Helper()
		wantRule(t, f.pay(t, destC, milliEther(1)), want)
	}
	refuse(refusal.RuleDestinations)
	f.setNow(f.now.Add(10 * time.Minute))
	refuse(refusal.RuleDestinations)
	doc := withDest(f.doc, 2, destA, destB)
	doc.Keys[0].Freeze = &stateful.FreezeRule{Refusals: 4, Window: "720h", Scope: "key"}
	f.mustApply(t, doc, "applied") // a longer window tightens
	f.setNow(f.now.Add(10 * time.Minute))
	refuse(refusal.RuleDestinations)
	doc = withDest(f.doc, 3, destA, destB)
	doc.Keys[0].Freeze = &stateful.FreezeRule{Refusals: 3, Window: "720h", Scope: "key"}
	f.mustApply(t, doc, "applied")   // fewer refusals tighten
	refuse(refusal.RuleDestinations) // the 4th: over 3 in 30 days, frozen now
	refuse(refusal.RuleFrozen)
}
