package policy_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
)

// TestTransactionRules runs every transaction rule of the full fixture,
// allowed and refused, and checks the movements and grants of what is
// allowed.
func TestTransactionRules(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	k := keyAddr
	type tc struct {
		name   string
		key    string
		tx     *ethtx.Tx
		rule   string
		moves  []string
		grants []string
		label  string
		msg    string // the reason contains it, when set
	}
	half := big.NewInt(5e17)
	cases := []tc{
		// Native transfers, key-wide and per chain.
		{name: "native to ops on chain 1", key: "hot-0", tx: newTx(t, 1, ops, oneETH, nil), moves: []string{mv(1, "native", k, ops, oneETH)}, label: "ops"},
		{name: "native to treasury on chain 10 (key-wide list)", key: "hot-0", tx: newTx(t, 10, treasury, half, nil), moves: []string{mv(10, "native", k, treasury, half)}, label: "treasury"},
		{name: "zero-value transfer moves nothing", key: "hot-0", tx: newTx(t, 1, ops, nil, nil), label: "ops"},
		{name: "native one wei over", key: "hot-0", tx: newTx(t, 1, ops, new(big.Int).Add(oneETH, big.NewInt(1)), nil), rule: refusal.RuleMaxPerTransaction, msg: "exceeds"},
		{name: "native to attacker", key: "hot-0", tx: newTx(t, 1, attacker, big.NewInt(1), nil), rule: refusal.RuleDestinations, msg: "0xBAd0000000000000000000000000000000000Bad"},
		{name: "split: ops on chain 1", key: "split", tx: newTx(t, 1, ops, big.NewInt(5), nil), moves: []string{mv(1, "native", k, ops, big.NewInt(5))}, label: "ops"},
		{name: "split: treasury not on chain 1", key: "split", tx: newTx(t, 1, treasury, big.NewInt(1), nil), rule: refusal.RuleDestinations},
		{name: "split: treasury on chain 10", key: "split", tx: newTx(t, 10, treasury, big.NewInt(7), nil), moves: []string{mv(10, "native", k, treasury, big.NewInt(7))}, label: "treasury"},
		{name: "split: ops not on chain 10", key: "split", tx: newTx(t, 10, ops, big.NewInt(1), nil), rule: refusal.RuleDestinations},
		{name: "split: chain 10 cap", key: "split", tx: newTx(t, 10, treasury, big.NewInt(8), nil), rule: refusal.RuleMaxPerTransaction},
		{name: "bare: no native transfers", key: "bare", tx: newTx(t, 1, ops, big.NewInt(1), nil), rule: refusal.RuleNativeTransfers},
		{name: "chain not allowed", key: "hot-0", tx: newTx(t, 5, ops, big.NewInt(1), nil), rule: refusal.RuleChains, msg: "chain 5"},
		{name: "creation", key: "hot-0", tx: newTx(t, 1, "", nil, []byte{0x60}), rule: refusal.RuleContractCreation},
		{name: "blob", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, txType(ethtx.TypeBlob)), rule: refusal.RuleBlobTransactions},
		{name: "set code", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, txType(ethtx.TypeSetCode)), rule: refusal.RuleSetCode},

		// Fee caps on chain 1; chain 10 has none.
		{name: "gas limit at the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, gasLimit(500_000)), label: "ops"},
		{name: "gas limit over the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, gasLimit(500_001)), rule: refusal.RuleFeeCaps, msg: "gas limit"},
		{name: "max fee at the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, fees(200e9, 5e9)), label: "ops"},
		{name: "max fee over the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, fees(200e9+1, 1e9)), rule: refusal.RuleFeeCaps, msg: "max fee per gas"},
		{name: "priority fee over the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, fees(100e9, 5e9+1)), rule: refusal.RuleFeeCaps, msg: "priority"},
		{name: "priority fee above the max fee", key: "hot-0", tx: newTx(t, 10, ops, nil, nil, fees(1e9, 2e9)), rule: refusal.RuleFeeCaps, msg: "exceeds the max fee"},
		{name: "legacy gas price at the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, legacyTx(100e9)), label: "ops"},
		{name: "legacy gas price over the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, legacyTx(100e9+1)), rule: refusal.RuleFeeCaps, msg: "gas price"},
		{name: "EIP-2930 gas price over the cap", key: "hot-0", tx: newTx(t, 1, ops, nil, nil, legacyTx(100e9+1), txType(ethtx.TypeAccessList)), rule: refusal.RuleFeeCaps},
		{name: "no caps on chain 10", key: "hot-0", tx: newTx(t, 10, ops, nil, nil, gasLimit(30_000_000), fees(1e15, 1e12)), label: "ops"},
		{name: "fee caps before the destination", key: "hot-0", tx: newTx(t, 1, attacker, nil, nil, gasLimit(600_000)), rule: refusal.RuleFeeCaps},

		// ERC-20 transfers.
		{name: "USDC transfer at the cap", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Transfer(t, treasury, usdcCap)), moves: []string{mv(1, usdc, k, treasury, usdcCap)}, label: "treasury"},
		{name: "USDC transfer over the cap", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Transfer(t, treasury, new(big.Int).Add(usdcCap, big.NewInt(1)))), rule: refusal.RuleMaxPerTransaction, msg: "1000.000001 USDC"},
		{name: "USDC transfer to attacker", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Transfer(t, attacker, big.NewInt(1))), rule: refusal.RuleDestinations},
		{name: "USDC transfer with value", key: "hot-0", tx: newTx(t, 1, usdc, big.NewInt(1), erc20Transfer(t, ops, big.NewInt(1))), rule: refusal.RuleCallValue},
		{name: "USDC transfer on chain 10", key: "hot-0", tx: newTx(t, 10, usdc, nil, erc20Transfer(t, ops, big.NewInt(1))), rule: refusal.RuleCalldata, msg: "call transfer(address,uint256)"},
		{name: "transfer on a contract that is no token", key: "hot-0", tx: newTx(t, 1, ops, nil, erc20Transfer(t, ops, big.NewInt(1))), rule: refusal.RuleCalldata},
		{name: "USDC transferFrom not enabled", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20TransferFrom(t, attacker, ops, big.NewInt(1))), rule: refusal.RuleTokenTransfers, msg: "transferFrom"},
		{name: "WETH transferFrom", key: "hot-0", tx: newTx(t, 1, weth, nil, erc20TransferFrom(t, treasury, ops, oneETH)), moves: []string{mv(1, weth, treasury, ops, oneETH)}, label: "ops"},
		{name: "WETH transferFrom to treasury (not a WETH recipient)", key: "hot-0", tx: newTx(t, 1, weth, nil, erc20TransferFrom(t, ops, treasury, oneETH)), rule: refusal.RuleDestinations},
		{name: "DAI transfer (no transfers section)", key: "hot-0", tx: newTx(t, 1, dai, nil, erc20Transfer(t, ops, big.NewInt(1))), rule: refusal.RuleTokenTransfers},

		// ERC-20 allowances.
		{name: "approve router within the cap", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Approve(t, router, routerCap)), grants: []string{gr(1, policy.GrantApprove, usdc, k, router, routerCap)}, label: "router"},
		{name: "approve router over the cap", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Approve(t, router, new(big.Int).Add(routerCap, big.NewInt(1)))), rule: refusal.RuleAllowanceCaps},
		{name: "approve router unlimited", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Approve(t, router, maxUint)), rule: refusal.RuleAllowanceCaps, msg: "unlimited"},
		{name: "approve Permit2 unlimited (cap unlimited)", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Approve(t, permit2, maxUint)), grants: []string{gr(1, policy.GrantApprove, usdc, k, permit2, nil)}, label: "Permit2"},
		{name: "approve attacker", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Approve(t, attacker, big.NewInt(1))), rule: refusal.RuleAllowanceGrants},
		{name: "revoke attacker (approve 0)", key: "hot-0", tx: newTx(t, 1, usdc, nil, erc20Approve(t, attacker, new(big.Int))), grants: []string{gr(1, policy.GrantApprove, usdc, k, attacker, new(big.Int))}},
		{name: "approve on a token without spenders", key: "hot-0", tx: newTx(t, 1, weth, nil, erc20Approve(t, router, big.NewInt(1))), rule: refusal.RuleAllowanceGrants},
		{name: "approve on a contract that is no token", key: "hot-0", tx: newTx(t, 1, dex, nil, erc20Approve(t, router, big.NewInt(1))), rule: refusal.RuleCalldata},
		{name: "approve with value", key: "hot-0", tx: newTx(t, 1, usdc, big.NewInt(1), erc20Approve(t, router, big.NewInt(1))), rule: refusal.RuleCallValue},
		{name: "increaseAllowance within the cap", key: "hot-0", tx: newTx(t, 1, dai, nil, increaseAllowance(t, router, big.NewInt(1000))), grants: []string{gr(1, policy.GrantIncreaseAllowance, dai, k, router, big.NewInt(1000))}, label: "router"},
		{name: "increaseAllowance over the cap", key: "hot-0", tx: newTx(t, 1, dai, nil, increaseAllowance(t, router, big.NewInt(1001))), rule: refusal.RuleAllowanceCaps},
		{name: "increaseAllowance to attacker", key: "hot-0", tx: newTx(t, 1, dai, nil, increaseAllowance(t, attacker, big.NewInt(1))), rule: refusal.RuleAllowanceGrants},
		{name: "increaseAllowance of 0 to attacker is no revocation", key: "hot-0", tx: newTx(t, 1, dai, nil, increaseAllowance(t, attacker, new(big.Int))), rule: refusal.RuleAllowanceGrants},

		// NFTs.
		{name: "BAYC safeTransferFrom to treasury", key: "hot-0", tx: newTx(t, 1, bayc, nil, pack(t, "safeTransferFrom(address,address,uint256)", ga(t, k), ga(t, treasury), big.NewInt(42))), moves: []string{mv(1, bayc, k, treasury, big.NewInt(1)) + " #42"}, label: "treasury"},
		{name: "BAYC safeTransferFrom with data to treasury", key: "hot-0", tx: newTx(t, 1, bayc, nil, pack(t, "safeTransferFrom(address,address,uint256,bytes)", ga(t, k), ga(t, treasury), big.NewInt(7), []byte{1})), moves: []string{mv(1, bayc, k, treasury, big.NewInt(1)) + " #7"}, label: "treasury"},
		{name: "BAYC transferFrom to treasury", key: "hot-0", tx: newTx(t, 1, bayc, nil, erc20TransferFrom(t, k, treasury, big.NewInt(9))), moves: []string{mv(1, bayc, k, treasury, big.NewInt(1)) + " #9"}, label: "treasury"},
		{name: "BAYC to attacker", key: "hot-0", tx: newTx(t, 1, bayc, nil, pack(t, "safeTransferFrom(address,address,uint256)", ga(t, k), ga(t, attacker), big.NewInt(42))), rule: refusal.RuleDestinations},
		{name: "BAYC to ops (not a BAYC recipient)", key: "hot-0", tx: newTx(t, 1, bayc, nil, erc20TransferFrom(t, k, ops, big.NewInt(9))), rule: refusal.RuleDestinations},
		{name: "punks: no transfers", key: "hot-0", tx: newTx(t, 1, punks, nil, erc20TransferFrom(t, k, treasury, big.NewInt(9))), rule: refusal.RuleNFTTransfers},
		{name: "ERC-1155 transfer to treasury", key: "hot-0", tx: newTx(t, 1, items, nil, pack(t, "safeTransferFrom(address,address,uint256,uint256,bytes)", ga(t, k), ga(t, treasury), big.NewInt(3), big.NewInt(10), []byte{})), moves: []string{mv(1, items, k, treasury, big.NewInt(10)) + " #3"}, label: "treasury"},
		{name: "ERC-1155 transfer to attacker", key: "hot-0", tx: newTx(t, 1, items, nil, pack(t, "safeTransferFrom(address,address,uint256,uint256,bytes)", ga(t, k), ga(t, attacker), big.NewInt(3), big.NewInt(10), []byte{})), rule: refusal.RuleDestinations},
		{name: "ERC-1155 call on an ERC-721", key: "hot-0", tx: newTx(t, 1, bayc, nil, pack(t, "safeTransferFrom(address,address,uint256,uint256,bytes)", ga(t, k), ga(t, treasury), big.NewInt(3), big.NewInt(1), []byte{})), rule: refusal.RuleCalldata},
		{name: "ERC-721 transferFrom on an ERC-1155", key: "hot-0", tx: newTx(t, 1, items, nil, erc20TransferFrom(t, k, treasury, big.NewInt(3))), rule: refusal.RuleCalldata},
		{name: "setApprovalForAll Seaport", key: "hot-0", tx: newTx(t, 1, bayc, nil, setApprovalForAll(t, seaport, true)), grants: []string{gr(1, policy.GrantApprovalForAll, bayc, k, seaport, nil)}, label: "Seaport"},
		{name: "setApprovalForAll attacker", key: "hot-0", tx: newTx(t, 1, bayc, nil, setApprovalForAll(t, attacker, true)), rule: refusal.RuleAllowanceGrants},
		{name: "setApprovalForAll(false) attacker: a revocation", key: "hot-0", tx: newTx(t, 1, items, nil, setApprovalForAll(t, attacker, false)), grants: []string{gr(1, policy.GrantApprovalForAll, items, k, attacker, new(big.Int))}},
		{name: "setApprovalForAll on an ERC-20", key: "hot-0", tx: newTx(t, 1, usdc, nil, setApprovalForAll(t, permit2, false)), rule: refusal.RuleCalldata},
		{name: "ERC-721 approve of one token to Seaport", key: "hot-0", tx: newTx(t, 1, bayc, nil, erc20Approve(t, seaport, big.NewInt(5))), grants: []string{gr(1, policy.GrantApprove, bayc, k, seaport, big.NewInt(1)) + " #5"}, label: "Seaport"},
		{name: "ERC-721 approve of one token to attacker", key: "hot-0", tx: newTx(t, 1, bayc, nil, erc20Approve(t, attacker, big.NewInt(5))), rule: refusal.RuleAllowanceGrants},
		{name: "ERC-721 approve to zero clears", key: "hot-0", tx: newTx(t, 1, bayc, nil, erc20Approve(t, zeroAddr, big.NewInt(5))), grants: []string{gr(1, policy.GrantApprove, bayc, k, zeroAddr, new(big.Int)) + " #5"}},

		// Generic contract calls.
		{name: "dex call with value under the cap", key: "hot-0", tx: newTx(t, 1, dex, half, []byte{0x12, 0x34, 0x56, 0x78, 9, 9}), moves: []string{mv(1, "native", k, dex, half)}, label: "dex"},
		{name: "dex call over the value cap", key: "hot-0", tx: newTx(t, 1, dex, new(big.Int).Add(oneETH, big.NewInt(1)), []byte{0x12, 0x34, 0x56, 0x78}), rule: refusal.RuleCallValue},
		{name: "dex call without value allowed", key: "hot-0", tx: newTx(t, 1, dex, nil, []byte{0xab, 0xcd, 0xef, 0x01}), label: "dex"},
		{name: "dex call with value, cap 0", key: "hot-0", tx: newTx(t, 1, dex, big.NewInt(1), []byte{0xab, 0xcd, 0xef, 0x01}), rule: refusal.RuleCallValue},
		{name: "dex: unlisted selector", key: "hot-0", tx: newTx(t, 1, dex, nil, []byte{0xde, 0xad, 0xbe, 0xef}), rule: refusal.RuleCalldata, msg: "selector 0xdeadbeef"},
		{name: "selector on another contract", key: "hot-0", tx: newTx(t, 1, ops, nil, []byte{0x12, 0x34, 0x56, 0x78}), rule: refusal.RuleCalldata},
		{name: "selector on chain 10", key: "hot-0", tx: newTx(t, 10, dex, nil, []byte{0x12, 0x34, 0x56, 0x78}), rule: refusal.RuleCalldata},
		{name: "WETH deposit", key: "hot-0", tx: newTx(t, 1, weth, oneETH, pack(t, "deposit()")), moves: []string{mv(1, "native", k, weth, oneETH)}, label: "WETH"},
		{name: "WETH withdraw", key: "hot-0", tx: newTx(t, 1, weth, nil, pack(t, "withdraw(uint256)", oneETH)), label: "WETH"},
		{name: "multiSend called directly", key: "hot-0", tx: newTx(t, 1, msco, nil, multiSend(t, msCall{to: ops, value: big.NewInt(1)})), rule: refusal.RuleMultiSend},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			d := evalTx(t, p, c, tt.key, tt.tx)
			checkDecision(t, d, tt.rule)
			if tt.msg != "" && !strings.Contains(d.Reason, tt.msg) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.msg)
			}
			if !d.Allow {
				return
			}
			if got := describeMovements(d.Movements); !sameList(got, tt.moves) {
				t.Errorf("movements\n%q\nwant\n%q", got, tt.moves)
			}
			if got := describeGrants(d.Grants); !sameList(got, tt.grants) {
				t.Errorf("grants\n%q\nwant\n%q", got, tt.grants)
			}
			if d.Label != tt.label {
				t.Errorf("label %q, want %q", d.Label, tt.label)
			}
		})
	}
}

// TestSafeRules runs Safe transactions: execTransaction calldata as the key
// sends it to the Safe.
func TestSafeRules(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	const call, delegate = 0, 1
	usdcToOps := erc20Transfer(t, ops, big.NewInt(100))
	cases := []struct {
		name   string
		to     string // the Safe the transaction goes to
		value  *big.Int
		data   []byte
		rule   string
		moves  []string
		grants []string
		msg    string
	}{
		{name: "CALL: native from the Safe to ops", to: safeA, data: execTx(t, ops, oneETH, nil, call), moves: []string{mv(1, "native", safeA, ops, oneETH)}},
		{name: "CALL: native from the Safe to attacker", to: safeA, data: execTx(t, attacker, oneETH, nil, call), rule: refusal.RuleDestinations, msg: "in the transaction of Safe"},
		{name: "CALL: native over the cap", to: safeA, data: execTx(t, ops, new(big.Int).Add(oneETH, big.NewInt(1)), nil, call), rule: refusal.RuleMaxPerTransaction},
		{name: "CALL: USDC transfer", to: safeA, data: execTx(t, usdc, nil, usdcToOps, call), moves: []string{mv(1, usdc, safeA, ops, big.NewInt(100))}},
		{name: "CALL: USDC transfer with value", to: safeA, data: execTx(t, usdc, big.NewInt(1), usdcToOps, call), rule: refusal.RuleCallValue},
		{name: "CALL: USDC approve of the router", to: safeA, data: execTx(t, usdc, nil, erc20Approve(t, router, big.NewInt(7)), call), grants: []string{gr(1, policy.GrantApprove, usdc, safeA, router, big.NewInt(7))}},
		{name: "CALL: unknown selector", to: safeA, data: execTx(t, ops, nil, []byte{0xde, 0xad, 0xbe, 0xef}, call), rule: refusal.RuleCalldata},
		{name: "CALL: dex call", to: safeA, data: execTx(t, dex, nil, []byte{0x12, 0x34, 0x56, 0x78}, call)},
		{name: "not an allowlisted Safe", to: safeX, data: execTx(t, ops, big.NewInt(1), nil, call), rule: refusal.RuleSafeTransactions},
		{name: "value sent with execTransaction", to: safeA, value: big.NewInt(1), data: execTx(t, ops, big.NewInt(1), nil, call), rule: refusal.RuleCallValue},
		{name: "gas price refund", to: safeA, data: execTxRefund(t, ops, nil, nil, call, big.NewInt(1), zeroAddr, zeroAddr), rule: refusal.RuleSafeRefund},
		{name: "gas token", to: safeA, data: execTxRefund(t, ops, nil, nil, call, new(big.Int), usdc, zeroAddr), rule: refusal.RuleSafeRefund},
		{name: "refund receiver", to: safeA, data: execTxRefund(t, ops, nil, nil, call, new(big.Int), zeroAddr, attacker), rule: refusal.RuleSafeRefund},
		{name: "CALL to the Safe itself", to: safeA, data: execTx(t, safeA, nil, pack(t, "changeThreshold(uint256)", big.NewInt(1)), call), rule: refusal.RuleSafeSelfCall},
		{name: "DELEGATECALL to MultiSendCallOnly", to: safeA, data: execTx(t, msco, nil, multiSend(t,
			msCall{to: ops, value: big.NewInt(3)},
			msCall{to: usdc, data: usdcToOps},
			msCall{to: usdc, data: erc20Approve(t, attacker, new(big.Int))},
		), delegate), moves: []string{mv(1, "native", safeA, ops, big.NewInt(3)), mv(1, usdc, safeA, ops, big.NewInt(100))}, grants: []string{gr(1, policy.GrantApprove, usdc, safeA, attacker, new(big.Int))}},
		{name: "DELEGATECALL to MultiSendCallOnly with value", to: safeA, data: execTx(t, msco, big.NewInt(1), multiSend(t, msCall{to: ops}), delegate), rule: refusal.RuleCallValue},
		{name: "MultiSend entry to attacker", to: safeA, data: execTx(t, msco, nil, multiSend(t, msCall{to: ops, value: big.NewInt(1)}, msCall{to: usdc, data: erc20Transfer(t, attacker, big.NewInt(1))}), delegate), rule: refusal.RuleDestinations, msg: "MultiSend call 1"},
		{name: "MultiSend entry DELEGATECALL", to: safeA, data: execTx(t, msco, nil, multiSend(t, msCall{op: delegate, to: ops}), delegate), rule: refusal.RuleSafeOperation},
		{name: "MultiSend entry to the Safe", to: safeA, data: execTx(t, msco, nil, multiSend(t, msCall{to: safeA, data: pack(t, "setGuard(address)", ga(t, attacker))}), delegate), rule: refusal.RuleSafeSelfCall},
		{name: "MultiSend entry to zero (the Safe)", to: safeA, data: execTx(t, msco, nil, multiSend(t, msCall{to: zeroAddr, data: pack(t, "enableModule(address)", ga(t, attacker))}), delegate), rule: refusal.RuleSafeSelfCall},
		{name: "MultiSend nested by CALL", to: safeA, data: execTx(t, msco, nil, multiSend(t, msCall{to: msco, data: multiSend(t, msCall{to: ops})}), delegate), rule: refusal.RuleMultiSend},
		{name: "DELEGATECALL to MultiSendCallOnly, not multiSend", to: safeA, data: execTx(t, msco, nil, usdcToOps, delegate), rule: refusal.RuleSafeOperation},
		{name: "CALL to MultiSendCallOnly", to: safeA, data: execTx(t, msco, nil, multiSend(t, msCall{to: ops}), call), rule: refusal.RuleMultiSend},
		{name: "DELEGATECALL elsewhere", to: safeA, data: execTx(t, usdc, nil, usdcToOps, delegate), rule: refusal.RuleSafeOperation},
		{name: "nested Safe: A runs B's transaction", to: safeA, data: execTx(t, safeB, nil, execTx(t, usdc, nil, usdcToOps, call), call), moves: []string{mv(1, usdc, safeB, ops, big.NewInt(100))}},
		{name: "nested Safe: B's DELEGATECALL", to: safeA, data: execTx(t, safeB, nil, execTx(t, bybitImp, nil, nil, delegate), call), rule: refusal.RuleSafeOperation},
		{name: "nested Safe not allowlisted", to: safeA, data: execTx(t, safeX, nil, execTx(t, ops, nil, nil, call), call), rule: refusal.RuleSafeTransactions},
		{name: "nested Safe calls itself", to: safeA, data: execTx(t, safeB, nil, execTx(t, safeB, nil, nil, call), call), rule: refusal.RuleSafeSelfCall},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			d := evalTx(t, p, c, "hot-0", newTx(t, 1, tt.to, tt.value, tt.data))
			checkDecision(t, d, tt.rule)
			if tt.msg != "" && !strings.Contains(d.Reason, tt.msg) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.msg)
			}
			if !d.Allow {
				return
			}
			if got := describeMovements(d.Movements); !sameList(got, tt.moves) {
				t.Errorf("movements\n%q\nwant\n%q", got, tt.moves)
			}
			if got := describeGrants(d.Grants); !sameList(got, tt.grants) {
				t.Errorf("grants\n%q\nwant\n%q", got, tt.grants)
			}
		})
	}
	// A key without Safes may not run Safe transactions at all.
	d := evalTx(t, p, c, "bare", newTx(t, 1, safeA, nil, execTx(t, ops, nil, nil, call)))
	checkDecision(t, d, refusal.RuleSafeTransactions)
}

func TestLabels(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	for _, tt := range []struct {
		key   string
		chain uint64
		addr  string
		label string
	}{
		{"hot-0", 1, ops, "ops"},
		{"hot-0", 10, ops, "ops"},
		{"hot-0", 1, router, "router"},
		{"hot-0", 1, seaport, "Seaport"},
		{"hot-0", 1, safeA, "treasury Safe"},
		{"hot-0", 1, msco, "MultiSendCallOnly 1.3.0"},
		{"hot-0", 1, dex, "dex"},
		{"hot-0", 1, usdc, "USDC"},
		{"hot-0", 1, bayc, "BAYC"},
		{"hot-0", 10, usdc, ""},
		{"hot-0", 5, ops, ""},
		{"split", 1, treasury, ""},
		{"split", 10, treasury, "treasury"},
		{"nobody", 1, ops, ""},
	} {
		l, ok := p.Label(tt.key, tt.chain, a(t, tt.addr))
		if l != tt.label || ok != (tt.label != "") {
			t.Errorf("Label(%s, %d, %s) = %q, %v, want %q", tt.key, tt.chain, tt.addr, l, ok, tt.label)
		}
	}
}

// TestUndecodedCall checks that the policy never decodes calldata itself: a
// call given without its decoded calldata is refused (rule calldata), even
// when that calldata is an allowed transfer, and the same call decoded is
// allowed.
func TestUndecodedCall(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	tx := newTx(t, 1, usdc, nil, erc20Transfer(t, ops, big.NewInt(5)))
	checkDecision(t, evalTx(t, p, c, "hot-0", tx), "")
	d := p.EvaluateTransaction(&policy.Transaction{Client: c, KeyID: "hot-0", From: a(t, keyAddr), Tx: tx})
	checkDecision(t, d, refusal.RuleCalldata)
	if !strings.Contains(d.Reason, "not decoded") {
		t.Errorf("reason %q does not say the calldata was not decoded", d.Reason)
	}
}
