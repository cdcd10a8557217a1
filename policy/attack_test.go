package policy_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
)

// The Bybit theft (21 February 2025): the Safe's signers approved an
// execTransaction whose operation was DELEGATECALL, to a contract of the
// attacker's, with the calldata of transfer(address,uint256). Run with the
// Safe's storage, that "transfer" wrote its first argument over the Safe's
// slot 0, the singleton (implementation) address, handing the Safe to a
// second contract of the attacker's that then drained it.
const (
	bybitTrojan   = "0x96221423681a6d52e184d440a8efcebb105c7242" // the DELEGATECALL target
	bybitBackdoor = bybitImp                                     // the new "implementation"
)

// TestAttacks replays the stateless incidents against the full fixture: each
// must be refused, by the rule named.
func TestAttacks(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	const call, delegate = 0, 1
	bybitData := pack(t, "transfer(address,uint256)", ga(t, bybitBackdoor), big.NewInt(0))
	selfCalls := map[string][]byte{
		"addOwnerWithThreshold": pack(t, "addOwnerWithThreshold(address,uint256)", ga(t, attacker), big.NewInt(1)),
		"changeThreshold":       pack(t, "changeThreshold(uint256)", big.NewInt(1)),
		"setGuard":              pack(t, "setGuard(address)", ga(t, attacker)),
		"enableModule":          pack(t, "enableModule(address)", ga(t, attacker)),
		"setFallbackHandler":    pack(t, "setFallbackHandler(address)", ga(t, attacker)),
		"changeMasterCopy":      pack(t, "changeMasterCopy(address)", ga(t, bybitBackdoor)),
	}

	type attack struct {
		name string
		tx   *ethtx.Tx
		rule string
	}
	attacks := []attack{
		{"Bybit: Safe DELEGATECALL to a malicious implementation", newTx(t, 1, safeA, nil, execTx(t, bybitTrojan, nil, bybitData, delegate)), refusal.RuleSafeOperation},
		{"Safe DELEGATECALL to MultiSend (not CallOnly)", newTx(t, 1, safeA, nil, execTx(t, msend, nil, multiSend(t, msCall{to: ops, value: big.NewInt(1)}), delegate)), refusal.RuleSafeOperation},
		{"MultiSendCallOnly batch hiding a DELEGATECALL", newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t,
			msCall{to: ops, value: big.NewInt(1)},
			msCall{op: delegate, to: bybitTrojan, data: bybitData},
		), delegate)), refusal.RuleSafeOperation},
		{"Bybit nested: a Safe transaction of the sub-Safe, run by the main Safe", newTx(t, 1, safeA, nil, execTx(t, safeB, nil, execTx(t, bybitTrojan, nil, bybitData, delegate), call)), refusal.RuleSafeOperation},
		{"Bybit in a batch: MultiSendCallOnly runs the sub-Safe's DELEGATECALL", newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t,
			msCall{to: safeB, data: execTx(t, bybitTrojan, nil, bybitData, delegate)},
		), delegate)), refusal.RuleSafeOperation},
		{"unlimited approve to the attacker", newTx(t, 1, usdc, nil, erc20Approve(t, attacker, maxUint)), refusal.RuleAllowanceGrants},
		{"unlimited approve to an allowlisted spender with a cap", newTx(t, 1, usdc, nil, erc20Approve(t, router, maxUint)), refusal.RuleAllowanceCaps},
		{"approve just below unlimited", newTx(t, 1, usdc, nil, erc20Approve(t, router, new(big.Int).Sub(maxUint, big.NewInt(1)))), refusal.RuleAllowanceCaps},
		{"increaseAllowance to the attacker", newTx(t, 1, usdc, nil, increaseAllowance(t, attacker, big.NewInt(1e6))), refusal.RuleAllowanceGrants},
		{"unlimited increaseAllowance to a capped spender", newTx(t, 1, usdc, nil, increaseAllowance(t, router, maxUint)), refusal.RuleAllowanceCaps},
		{"setApprovalForAll to the attacker", newTx(t, 1, bayc, nil, setApprovalForAll(t, attacker, true)), refusal.RuleAllowanceGrants},
		{"approve to the attacker from the Safe, in a batch", newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t,
			msCall{to: usdc, data: erc20Transfer(t, ops, big.NewInt(1))},
			msCall{to: usdc, data: erc20Approve(t, attacker, maxUint)},
		), delegate)), refusal.RuleAllowanceGrants},
		{"chain id mismatch (BNB Smart Chain)", newTx(t, 56, ops, big.NewInt(1), nil), refusal.RuleChains},
		{"EIP-7702 delegation of the key's account", newTx(t, 1, ops, nil, nil, txType(ethtx.TypeSetCode)), refusal.RuleSetCode},
		{"USDC to a recipient not allowlisted", newTx(t, 1, usdc, nil, erc20Transfer(t, attacker, big.NewInt(1e6))), refusal.RuleDestinations},
		{"USDC from the Safe to a recipient not allowlisted", newTx(t, 1, safeA, nil, execTx(t, usdc, nil, erc20Transfer(t, attacker, big.NewInt(1e6)), call)), refusal.RuleDestinations},
		{"USDC pulled with transferFrom to the attacker", newTx(t, 1, weth, nil, erc20TransferFrom(t, treasury, attacker, big.NewInt(1))), refusal.RuleDestinations},
		{"fee cap overrun: a max fee of 10,000 gwei", newTx(t, 1, ops, big.NewInt(1), nil, fees(10_000e9, 1e9)), refusal.RuleFeeCaps},
		{"fee cap overrun: 30M gas", newTx(t, 1, ops, big.NewInt(1), nil, gasLimit(30_000_000)), refusal.RuleFeeCaps},
		{"fee cap overrun: legacy gas price of 10,000 gwei", newTx(t, 1, ops, big.NewInt(1), nil, legacyTx(10_000e9)), refusal.RuleFeeCaps},
		{"gas refund from the Safe to the attacker", newTx(t, 1, safeA, nil, execTxRefund(t, ops, nil, nil, call, big.NewInt(1e12), usdc, attacker)), refusal.RuleSafeRefund},
	}
	for name, data := range selfCalls {
		attacks = append(attacks,
			attack{"Safe calls itself: " + name, newTx(t, 1, safeA, nil, execTx(t, safeA, nil, data, call)), refusal.RuleSafeSelfCall},
			attack{"Safe calls itself in a batch: " + name, newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t, msCall{to: ops}, msCall{to: safeA, data: data}), delegate)), refusal.RuleSafeSelfCall},
			attack{"Safe calls itself in a batch, as address zero: " + name, newTx(t, 1, safeA, nil, execTx(t, msco, nil, multiSend(t, msCall{to: zeroAddr, data: data}), delegate)), refusal.RuleSafeSelfCall},
		)
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			d := evalTx(t, p, c, "hot-0", at.tx)
			checkDecision(t, d, at.rule)
		})
	}
}

// TestSignatureAttacks replays the incidents that need only a signature:
// permits, and the owners' signature of the Bybit Safe transaction.
func TestSignatureAttacks(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	bybitData := pack(t, "transfer(address,uint256)", ga(t, bybitBackdoor), big.NewInt(0))
	for _, at := range []struct {
		name string
		js   string
		rule string
	}{
		{"Bybit: the owners' SafeTx signature of the DELEGATECALL", safeTxDoc(1, safeA, bybitTrojan, nil, bybitData, 1, 0, zeroAddr, zeroAddr), refusal.RuleSafeOperation},
		{"SafeTx adding an owner", safeTxDoc(1, safeA, safeA, nil, pack(t, "addOwnerWithThreshold(address,uint256)", ga(t, attacker), big.NewInt(1)), 0, 0, zeroAddr, zeroAddr), refusal.RuleSafeSelfCall},
		{"Permit2 single: everything to the attacker", permitSingleDoc(1, permit2, usdc, maxUint160Dec, attacker), refusal.RuleAllowanceGrants},
		{"Permit2 single: a little to the attacker", permitSingleDoc(1, permit2, usdc, "1", attacker), refusal.RuleAllowanceGrants},
		{"Permit2 batch to the attacker", permitBatchDoc(attacker, tokenAmount{usdc, maxUint160Dec}, tokenAmount{dai, maxUint160Dec}), refusal.RuleAllowanceGrants},
		{"Permit2 transfer batch to the attacker", permitBatchTransferDoc(attacker, tokenAmount{usdc, "1000000"}), refusal.RuleAllowanceGrants},
		{"Permit2 witness transfer to the attacker", witnessTransferDoc(usdc, "1000000", attacker), refusal.RuleAllowanceGrants},
		{"EIP-2612 permit to the attacker", eip2612Doc(1, usdc, attacker, maxUint256Dec), refusal.RuleAllowanceGrants},
		{"EIP-2612 permit signed for another chain", eip2612Doc(56, usdc, router, "1"), refusal.RuleChains},
	} {
		t.Run(at.name, func(t *testing.T) {
			d := p.EvaluateTypedData(typedReq(t, c, "hot-0", at.js))
			checkDecision(t, d, at.rule)
		})
	}
	// The Bybit refusal says why.
	d := evalTx(t, p, c, "hot-0", newTx(t, 1, safeA, nil, execTx(t, bybitTrojan, nil, bybitData, 1)))
	if !strings.Contains(d.Reason, "DELEGATECALL") || !strings.Contains(d.Reason, "Bybit") {
		t.Errorf("reason %q", d.Reason)
	}
}

// TestGrantLoopCounted: an increaseAllowance loop, approve after approve,
// and permit after permit each pass the stateless rules (each grant is
// under the spender's cap), so what bounds their sum is the enclave's
// rolling limits and approval thresholds (enclave TestGrantLoopAttack).
// Each grant must therefore be counted at its full amount, whatever its
// form, for them to sum.
func TestGrantLoopCounted(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	hundred := big.NewInt(100e6)
	decisions := []policy.Decision{}
	for range 5 {
		decisions = append(decisions, evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, increaseAllowance(t, router, hundred))))
	}
	decisions = append(decisions,
		evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, router, hundred))),
		evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, router, hundred))),
		p.EvaluateTypedData(typedReq(t, c, "hot-0", eip2612Doc(1, usdc, router, "100000000"))),
		p.EvaluateTypedData(typedReq(t, c, "hot-0", permitSingleDoc(1, permit2, usdc, "100000000", router))),
		p.EvaluateTypedData(typedReq(t, c, "hot-0", permitTransferDoc(usdc, "100000000", router))),
		evalTx(t, p, c, "hot-0", newTx(t, 1, safeA, nil, execTx(t, usdc, nil, increaseAllowance(t, router, hundred), 0))),
	)
	sum := new(big.Int)
	for i, d := range decisions {
		checkDecision(t, d, "")
		counted := d.Counted()
		if len(counted) != 1 || counted[0].Unlimited || counted[0].Amount.Cmp(hundred) != 0 || counted[0].Asset != a(t, usdc) || counted[0].To != a(t, router) {
			t.Fatalf("grant %d counts %+v, want 100 USDC to the router", i, counted)
		}
		sum.Add(sum, counted[0].Amount)
	}
	if sum.Cmp(big.NewInt(1_100e6)) != 0 {
		t.Fatalf("the loop counts %s, want 1,100 USDC", sum)
	}
	// Unlimited grants count as unlimited, in every form.
	for _, d := range []policy.Decision{
		evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, erc20Approve(t, permit2, maxUint))),
		evalTx(t, p, c, "hot-0", newTx(t, 1, usdc, nil, increaseAllowance(t, permit2, maxUint))),
		p.EvaluateTypedData(typedReq(t, c, "hot-0", eip2612Doc(1, usdc, permit2, maxUint256Dec))),
		p.EvaluateTypedData(typedReq(t, c, "hot-0", permitSingleDoc(1, permit2, usdc, maxUint160Dec, permit2))),
	} {
		checkDecision(t, d, "")
		if cs := d.Counted(); len(cs) != 1 || !cs[0].Unlimited || cs[0].Amount != nil {
			t.Errorf("unlimited grant counts %+v", cs)
		}
	}
}
