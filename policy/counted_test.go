package policy_test

import (
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

func describeCounted(cs []stateful.Counted) []string {
	var out []string
	for _, c := range cs {
		asset := "native"
		if c.Asset != [20]byte{} {
			asset = strings.ToLower(c.Asset.Hex())
		}
		am := "unlimited"
		if !c.Unlimited {
			am = c.Amount.String()
		}
		kind := "move"
		if c.Grant != "" {
			kind = c.Grant
		}
		out = append(out, fmt.Sprintf("%d %s %s ->%s %s", c.ChainID, kind, asset, strings.ToLower(c.To.Hex()), am))
	}
	return out
}

// TestCounted checks what a decision counts for the stateful rules:
// movements of coin and tokens, and every non-zero ERC-20 grant as its
// amount to the spender (unlimited ones as unlimited); no revocations, no
// NFTs. setApprovalForAll(true) is reported by OperatorGrants instead.
func TestCounted(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	hundred := big.NewInt(100e6)
	const call, delegate = 0, 1
	move := func(asset, to string, am *big.Int) string { return fmt.Sprintf("1 move %s ->%s %s", asset, to, am) }
	grant := func(kind policy.GrantKind, asset, to, am string) string {
		return fmt.Sprintf("1 %s %s ->%s %s", kind, asset, to, am)
	}
	for _, tc := range []struct {
		name      string
		d         policy.Decision
		want      []string
		operators int
	}{
		{name: "native transfer", d: evalTx(t, p, c, "hot-0", newTx(t, 1, ops, oneETH, nil)), want: []string{move("native", ops, oneETH)}},
		{name: "approve", d: evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, router, hundred))),
			want: []string{grant(policy.GrantApprove, usdc, router, "100000000")}},
		{name: "increaseAllowance", d: evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, increaseAllowance(t, router, hundred))),
			want: []string{grant(policy.GrantIncreaseAllowance, usdc, router, "100000000")}},
		{name: "unlimited approve of Permit2", d: evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, permit2, maxUint))),
			want: []string{grant(policy.GrantApprove, usdc, permit2, "unlimited")}},
		{name: "revocation", d: evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, attacker, new(big.Int))))},
		{name: "setApprovalForAll", d: evalTx(t, p, c, "hot-0", newTx(t, 1, bayc, nil, setApprovalForAll(t, seaport, true))), operators: 1},
		{name: "setApprovalForAll revoked", d: evalTx(t, p, c, "hot-0", newTx(t, 1, bayc, nil, setApprovalForAll(t, attacker, false)))},
		{name: "ERC-721 approve of one token", d: evalTx(t, p, c, "hot-0", newTx(t, 1, bayc, nil, erc20Approve(t, seaport, big.NewInt(7))))},
		{name: "Safe batch: transfer, approve, increaseAllowance, revoke", d: evalTx(t, p, c, "hot-0", newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t,
			msCall{to: usdc, data: erc20Transfer(t, ops, big.NewInt(5))},
			msCall{to: usdc, data: erc20Approve(t, router, hundred)},
			msCall{to: usdc, data: increaseAllowance(t, router, hundred)},
			msCall{to: usdc, data: erc20Approve(t, attacker, new(big.Int))},
		), delegate))),
			want: []string{move(usdc, ops, big.NewInt(5)), grant(policy.GrantApprove, usdc, router, "100000000"), grant(policy.GrantIncreaseAllowance, usdc, router, "100000000")}},
		{name: "Safe setApprovalForAll", d: evalTx(t, p, c, "hot-0", newTx(t, 1, safeA, nil, execTx(t, bayc, nil, setApprovalForAll(t, seaport, true), call))), operators: 1},
		{name: "EIP-2612 permit", d: p.EvaluateTypedData(typedReq(t, c, "hot-0", eip2612Doc(1, usdc, router, "100000000"))),
			want: []string{grant(policy.GrantEIP2612, usdc, router, "100000000")}},
		{name: "EIP-2612 permit of 0", d: p.EvaluateTypedData(typedReq(t, c, "hot-0", eip2612Doc(1, usdc, attacker, "0")))},
		{name: "Permit2 single", d: p.EvaluateTypedData(typedReq(t, c, "hot-0", permitSingleDoc(1, permit2, usdc, "100000000", router))),
			want: []string{grant(policy.GrantPermit2Allowance, usdc, router, "100000000")}},
		{name: "Permit2 single of 0", d: p.EvaluateTypedData(typedReq(t, c, "hot-0", permitSingleDoc(1, permit2, usdc, "0", attacker)))},
		{name: "Permit2 transfer batch", d: p.EvaluateTypedData(typedReq(t, c, "hot-0", permitBatchTransferDoc(router, tokenAmount{usdc, "100000000"}, tokenAmount{usdc, "5"}))),
			want: []string{grant(policy.GrantPermit2Transfer, usdc, router, "100000000"), grant(policy.GrantPermit2Transfer, usdc, router, "5")}},
		{name: "refused", d: evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, attacker, hundred)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeCounted(tc.d.Counted()); !sameList(got, tc.want) {
				t.Errorf("Counted() = %q, want %q (decision %+v)", got, tc.want, tc.d)
			}
			// AppendCounted appends what Counted returns, after what out
			// holds.
			prior := stateful.Counted{ChainID: 99}
			app := tc.d.AppendCounted([]stateful.Counted{prior})
			if len(app) == 0 || app[0] != prior || !reflect.DeepEqual(app[1:], append([]stateful.Counted{}, tc.d.Counted()...)) {
				t.Errorf("AppendCounted = %+v, want %+v after %+v", app, tc.d.Counted(), prior)
			}
			if got := len(tc.d.OperatorGrants()); got != tc.operators {
				t.Errorf("%d operator grants, want %d", got, tc.operators)
			}
		})
	}
}
