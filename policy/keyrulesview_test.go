package policy_test

import (
	"math/big"
	"reflect"
	"testing"

	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// TestKeyRulesViewShared checks that the stateful checks, which read a
// key's rules through KeyRulesView without copying them, hand out only
// copies: a caller changing the rule NeedsApproval returns changes nothing
// in the policy.
func TestKeyRulesViewShared(t *testing.T) {
	p, err := policy.Parse([]byte(seedReplacer().Replace(seedSections["approvals"])))
	if err != nil {
		t.Fatal(err)
	}
	view, ok := p.KeyRulesView("k")
	if !ok || view.Approvals == nil {
		t.Fatal("no approvals in the view")
	}
	before, _ := p.KeyRules("k")
	if !reflect.DeepEqual(*view, before) {
		t.Fatalf("view %+v differs from KeyRules %+v", *view, before)
	}
	for _, tc := range []struct {
		name     string
		counted  []stateful.Counted
		operator bool
	}{
		{"operator grant", nil, true},
		{"above the threshold", []stateful.Counted{{ChainID: 1, Amount: big.NewInt(2)}}, false},
		{"unlimited", []stateful.Counted{{ChainID: 1, Unlimited: true}}, false},
	} {
		rule, needs := stateful.NeedsApproval(p, "k", tc.counted, tc.operator)
		if !needs || !reflect.DeepEqual(rule, *before.Approvals) {
			t.Fatalf("%s: NeedsApproval = %+v, %v; want %+v", tc.name, rule, needs, *before.Approvals)
		}
		rule.Approvers[0].PublicKey.Key[0] ^= 0xff
		rule.Approvers[0].Name = "mallory"
		rule.Above[0].Amount.SetInt64(1e9)
		if after, _ := p.KeyRules("k"); !reflect.DeepEqual(after, before) {
			t.Fatalf("%s: changing the returned rule changed the policy: %+v", tc.name, after)
		}
	}
	if _, needs := stateful.NeedsApproval(p, "k", []stateful.Counted{{ChainID: 1, Amount: big.NewInt(1)}}, false); needs {
		t.Error("at the threshold: needs approval")
	}
	if _, ok := p.KeyRulesView("nope"); ok {
		t.Error("a view of an unknown key")
	}
}
