package stateful

import (
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestNeedsApproval: a request needs approvals when its counted value of a
// threshold's chain and asset adds up to more than the threshold, when it
// grants an unlimited allowance of such an asset, or when it makes an
// operator of a collection; otherwise not, nor for a key without
// approvers.
func TestNeedsApproval(t *testing.T) {
	src := source{"hot": {Approvals: &Approvals{Quorum: 1, Above: []Threshold{{ChainID: 1, Asset: usdc, Amount: big.NewInt(100)}}}}}
	move := func(asset [20]byte, amt int64) Counted {
		return Counted{ChainID: 1, Asset: asset, To: destA, Amount: big.NewInt(amt)}
	}
	for _, tc := range []struct {
		name     string
		key      string
		counted  []Counted
		operator bool
		want     bool
	}{
		{"at the threshold", "hot", []Counted{move(usdc, 60), move(usdc, 40)}, false, false},
		{"over it in sum", "hot", []Counted{move(usdc, 60), move(usdc, 41)}, false, true},
		{"another asset", "hot", []Counted{move(weth, 1000)}, false, false},
		{"unlimited grant", "hot", []Counted{{ChainID: 1, Asset: usdc, To: destB, Unlimited: true, Grant: "approve"}}, false, true},
		{"operator grant", "hot", nil, true, true},
		{"no approvers", "cold", []Counted{move(usdc, 1000)}, true, false},
	} {
		if _, got := NeedsApproval(src, tc.key, tc.counted, tc.operator); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestUnlimitedGrantAndSpends: an unlimited grant of a token a limit
// counts is refused with the limit named, and counts as two spends of
// 2^256-1 should it reach the tracker, which no limit holds.
func TestUnlimitedGrantAndSpends(t *testing.T) {
	src := source{"hot": {Limits: []Limit{{ChainID: 1, Asset: usdc, Window: time.Hour, Max: big.NewInt(500)}}}}
	grant := []Counted{{ChainID: 1, Asset: usdc, To: destB, Unlimited: true, Grant: "approve"}}
	why, refused := UnlimitedGrant(src, "hot", grant)
	if !refused || !strings.HasPrefix(why, "approve grant of an unlimited allowance of token ") || !strings.Contains(why, "at most 500 base units per 1h0m0s") {
		t.Fatalf("UnlimitedGrant: %q, %v", why, refused)
	}
	if _, refused := UnlimitedGrant(src, "hot", []Counted{{ChainID: 1, Asset: weth, To: destB, Unlimited: true}}); refused {
		t.Fatal("an unlimited grant of a token no limit counts refused")
	}
	sp := Spends(append(grant, Counted{ChainID: 1, To: destA, Amount: big.NewInt(7)}))
	if len(sp) != 3 || sp[0].Amount.Cmp(maxUint256) != 0 || sp[1].Amount.Cmp(maxUint256) != 0 || sp[2].Amount.Int64() != 7 || sp[2].To != destA {
		t.Fatalf("Spends: %+v", sp)
	}
	var room [1]Spend
	if app := AppendSpends(room[:0], append(grant, Counted{ChainID: 1, To: destA, Amount: big.NewInt(7)})); !reflect.DeepEqual(app, sp) {
		t.Fatalf("AppendSpends = %+v, Spends = %+v", app, sp)
	}
	rules, vels := TrackerRules(source{"hot": {Limits: []Limit{{ChainID: 1, Asset: usdc, Window: time.Hour, Max: maxUint256}}}})
	tr := mustNew(t, rules, vels, Options{})
	if got := spend(t, tr, t0, "hot", sp...); got == "" {
		t.Fatal("the tracker took an unlimited grant")
	}
}
