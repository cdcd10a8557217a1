package policy_test

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/policy"
)

// Typed-data documents, assembled as wallets send them.

const (
	eip2612DomainType  = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`
	eip2612Type        = `"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`
	permit2DomainType  = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`
	permitDetailsType  = `"PermitDetails":[{"name":"token","type":"address"},{"name":"amount","type":"uint160"},{"name":"expiration","type":"uint48"},{"name":"nonce","type":"uint48"}]`
	permitSingleType   = `"PermitSingle":[{"name":"details","type":"PermitDetails"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]`
	permitBatchType    = `"PermitBatch":[{"name":"details","type":"PermitDetails[]"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]`
	tokenPermsType     = `"TokenPermissions":[{"name":"token","type":"address"},{"name":"amount","type":"uint256"}]`
	permitTransferType = `"PermitTransferFrom":[{"name":"permitted","type":"TokenPermissions"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`
	permitBatchXType   = `"PermitBatchTransferFrom":[{"name":"permitted","type":"TokenPermissions[]"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`
	witnessXType       = `"PermitWitnessTransferFrom":[{"name":"permitted","type":"TokenPermissions"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"},{"name":"witness","type":"Order"}],"Order":[{"name":"id","type":"uint256"}]`
	safeDomainType     = `"EIP712Domain":[{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`
	safeTxType         = `"SafeTx":[{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"data","type":"bytes"},{"name":"operation","type":"uint8"},{"name":"safeTxGas","type":"uint256"},{"name":"baseGas","type":"uint256"},{"name":"gasPrice","type":"uint256"},{"name":"gasToken","type":"address"},{"name":"refundReceiver","type":"address"},{"name":"nonce","type":"uint256"}]`
	maxUint160Dec      = "1461501637330902918203684832716283019655932542975"
	maxUint256Dec      = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
)

func typedDoc(primary, domain, message string, types ...string) string {
	return `{"types":{` + strings.Join(types, ",") + `},"primaryType":"` + primary + `","domain":` + domain + `,"message":` + message + `}`
}

func eip2612Doc(chain uint64, token, spender, value string) string {
	return typedDoc("Permit",
		fmt.Sprintf(`{"name":"Token","version":"2","chainId":%d,"verifyingContract":"%s"}`, chain, token),
		fmt.Sprintf(`{"owner":"%s","spender":"%s","value":"%s","nonce":"0","deadline":"1767225600"}`, keyAddr, spender, value),
		eip2612DomainType, eip2612Type)
}

func permit2Domain(chain uint64, contract string) string {
	return fmt.Sprintf(`{"name":"Permit2","chainId":%d,"verifyingContract":"%s"}`, chain, contract)
}

func permitSingleDoc(chain uint64, contract, token, amount, spender string) string {
	return typedDoc("PermitSingle", permit2Domain(chain, contract),
		fmt.Sprintf(`{"details":{"token":"%s","amount":"%s","expiration":"1735689600","nonce":"0"},"spender":"%s","sigDeadline":"1733099400"}`, token, amount, spender),
		permit2DomainType, permitSingleType, permitDetailsType)
}

// tokenAmount is a token and an amount of it.
type tokenAmount struct{ token, amount string }

func permitBatchDoc(spender string, grants ...tokenAmount) string {
	var d []string
	for _, g := range grants {
		d = append(d, fmt.Sprintf(`{"token":"%s","amount":"%s","expiration":"0","nonce":"1"}`, g.token, g.amount))
	}
	return typedDoc("PermitBatch", permit2Domain(1, permit2),
		fmt.Sprintf(`{"details":[%s],"spender":"%s","sigDeadline":"1733099400"}`, strings.Join(d, ","), spender),
		permit2DomainType, permitBatchType, permitDetailsType)
}

func permitTransferDoc(token, amount, spender string) string {
	return typedDoc("PermitTransferFrom", permit2Domain(1, permit2),
		fmt.Sprintf(`{"permitted":{"token":"%s","amount":"%s"},"spender":"%s","nonce":"7","deadline":"1733099400"}`, token, amount, spender),
		permit2DomainType, permitTransferType, tokenPermsType)
}

func permitBatchTransferDoc(spender string, grants ...tokenAmount) string {
	var d []string
	for _, g := range grants {
		d = append(d, fmt.Sprintf(`{"token":"%s","amount":"%s"}`, g.token, g.amount))
	}
	return typedDoc("PermitBatchTransferFrom", permit2Domain(1, permit2),
		fmt.Sprintf(`{"permitted":[%s],"spender":"%s","nonce":"7","deadline":"1733099400"}`, strings.Join(d, ","), spender),
		permit2DomainType, permitBatchXType, tokenPermsType)
}

func witnessTransferDoc(token, amount, spender string) string {
	return typedDoc("PermitWitnessTransferFrom", permit2Domain(1, permit2),
		fmt.Sprintf(`{"permitted":{"token":"%s","amount":"%s"},"spender":"%s","nonce":"7","deadline":"1733099400","witness":{"id":"1"}}`, token, amount, spender),
		permit2DomainType, witnessXType, tokenPermsType)
}

// safeTxDoc is an owner's EIP-712 signature request of a Safe transaction.
func safeTxDoc(chain uint64, safe, to string, value *big.Int, data []byte, op uint8, gasPrice int64, gasToken, refundReceiver string) string {
	if value == nil {
		value = new(big.Int)
	}
	return typedDoc("SafeTx", fmt.Sprintf(`{"chainId":%d,"verifyingContract":"%s"}`, chain, safe),
		fmt.Sprintf(`{"to":"%s","value":"%s","data":"0x%s","operation":"%d","safeTxGas":"0","baseGas":"0","gasPrice":"%d","gasToken":"%s","refundReceiver":"%s","nonce":"12"}`,
			to, value, hex.EncodeToString(data), op, gasPrice, gasToken, refundReceiver),
		safeDomainType, safeTxType)
}

func TestPermitRules(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	k := keyAddr
	for _, tt := range []struct {
		name   string
		key    string
		js     string
		rule   string
		grants []string
		msg    string
	}{
		{name: "EIP-2612 to the router within its cap", key: "hot-0", js: eip2612Doc(1, usdc, router, "5000000000"), grants: []string{gr(1, policy.GrantEIP2612, usdc, k, router, routerCap)}},
		{name: "EIP-2612 over the cap", key: "hot-0", js: eip2612Doc(1, usdc, router, "5000000001"), rule: refusal.RuleAllowanceCaps},
		{name: "EIP-2612 unlimited to the router", key: "hot-0", js: eip2612Doc(1, usdc, router, maxUint256Dec), rule: refusal.RuleAllowanceCaps, msg: "unlimited"},
		{name: "EIP-2612 unlimited to Permit2", key: "hot-0", js: eip2612Doc(1, usdc, permit2, maxUint256Dec), grants: []string{gr(1, policy.GrantEIP2612, usdc, k, permit2, nil)}},
		{name: "EIP-2612 to attacker", key: "hot-0", js: eip2612Doc(1, usdc, attacker, "1"), rule: refusal.RuleAllowanceGrants},
		{name: "EIP-2612 revocation to attacker", key: "hot-0", js: eip2612Doc(1, usdc, attacker, "0"), grants: []string{gr(1, policy.GrantEIP2612, usdc, k, attacker, new(big.Int))}},
		{name: "EIP-2612 of a token not allowlisted", key: "hot-0", js: eip2612Doc(1, safeX, router, "1"), rule: refusal.RuleAllowanceGrants},
		{name: "EIP-2612 on a chain not allowed", key: "hot-0", js: eip2612Doc(5, usdc, router, "1"), rule: refusal.RuleChains},
		{name: "EIP-2612 on chain 10 (no tokens)", key: "hot-0", js: eip2612Doc(10, usdc, router, "1"), rule: refusal.RuleAllowanceGrants},
		{name: "EIP-2612 for a key without tokens", key: "bare", js: eip2612Doc(1, usdc, router, "1"), rule: refusal.RuleAllowanceGrants},
		{name: "Permit2 single to the router", key: "hot-0", js: permitSingleDoc(1, permit2, usdc, "1000", router), grants: []string{gr(1, policy.GrantPermit2Allowance, usdc, k, router, big.NewInt(1000))}},
		{name: "Permit2 single to attacker", key: "hot-0", js: permitSingleDoc(1, permit2, usdc, "1000", attacker), rule: refusal.RuleAllowanceGrants},
		{name: "Permit2 single unlimited (2^160-1) to the router", key: "hot-0", js: permitSingleDoc(1, permit2, usdc, maxUint160Dec, router), rule: refusal.RuleAllowanceCaps, msg: "unlimited"},
		{name: "Permit2 single over the cap", key: "hot-0", js: permitSingleDoc(1, permit2, usdc, "5000000001", router), rule: refusal.RuleAllowanceCaps},
		{name: "Permit2 single revocation to attacker", key: "hot-0", js: permitSingleDoc(1, permit2, usdc, "0", attacker), grants: []string{gr(1, policy.GrantPermit2Allowance, usdc, k, attacker, new(big.Int))}},
		{name: "Permit2 of a token Permit2 may not spend", key: "hot-0", js: permitSingleDoc(1, permit2, dai, "1", router), rule: refusal.RuleAllowanceGrants, msg: "Permit2 contract"},
		{name: "Permit2 look-alike contract", key: "hot-0", js: permitSingleDoc(1, dex, usdc, "1", router), rule: refusal.RuleAllowanceGrants, msg: "Permit2 contract"},
		{name: "Permit2 batch within caps", key: "hot-0", js: permitBatchDoc(router, tokenAmount{usdc, "10"}, tokenAmount{usdc, "20"}), grants: []string{gr(1, policy.GrantPermit2Allowance, usdc, k, router, big.NewInt(10)), gr(1, policy.GrantPermit2Allowance, usdc, k, router, big.NewInt(20))}},
		{name: "Permit2 batch with a token not allowlisted", key: "hot-0", js: permitBatchDoc(router, tokenAmount{usdc, "10"}, tokenAmount{safeX, "1"}), rule: refusal.RuleAllowanceGrants},
		{name: "Permit2 batch to attacker", key: "hot-0", js: permitBatchDoc(attacker, tokenAmount{usdc, "10"}), rule: refusal.RuleAllowanceGrants},
		{name: "Permit2 transfer to the router", key: "hot-0", js: permitTransferDoc(usdc, "5000000000", router), grants: []string{gr(1, policy.GrantPermit2Transfer, usdc, k, router, routerCap)}},
		{name: "Permit2 transfer to attacker", key: "hot-0", js: permitTransferDoc(usdc, "1", attacker), rule: refusal.RuleAllowanceGrants},
		{name: "Permit2 transfer batch adds up past the cap", key: "hot-0", js: permitBatchTransferDoc(router, tokenAmount{usdc, "3000000000"}, tokenAmount{usdc, "2000000001"}), rule: refusal.RuleAllowanceCaps},
		{name: "Permit2 transfer batch adds up to the cap", key: "hot-0", js: permitBatchTransferDoc(router, tokenAmount{usdc, "3000000000"}, tokenAmount{usdc, "2000000000"}), grants: []string{gr(1, policy.GrantPermit2Transfer, usdc, k, router, big.NewInt(3e9)), gr(1, policy.GrantPermit2Transfer, usdc, k, router, big.NewInt(2e9))}},
		{name: "Permit2 unlimited transfer to the router", key: "hot-0", js: permitBatchTransferDoc(router, tokenAmount{usdc, maxUint256Dec}), rule: refusal.RuleAllowanceCaps},
		{name: "Permit2 witness transfer to the router", key: "hot-0", js: witnessTransferDoc(usdc, "1", router), grants: []string{gr(1, policy.GrantPermit2Transfer, usdc, k, router, big.NewInt(1))}},
		{name: "Permit2 witness transfer to attacker", key: "hot-0", js: witnessTransferDoc(usdc, "1", attacker), rule: refusal.RuleAllowanceGrants},
		{name: "a near-miss permit", key: "hot-0", js: strings.NewReplacer(`"name":"value"`, `"name":"amount"`, `"value":"1"`, `"amount":"1"`).Replace(eip2612Doc(1, usdc, router, "1")), rule: refusal.RuleAllowanceGrants, msg: "looks like"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := p.EvaluateTypedData(typedReq(t, c, tt.key, tt.js))
			checkDecision(t, d, tt.rule)
			if tt.msg != "" && !strings.Contains(d.Reason, tt.msg) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.msg)
			}
			if got := describeGrants(d.Grants); d.Allow && !sameList(got, tt.grants) {
				t.Errorf("grants\n%q\nwant\n%q", got, tt.grants)
			}
			if len(d.Movements) != 0 {
				t.Errorf("a permit moved %v", d.Movements)
			}
		})
	}
}

func TestSafeTxTypedData(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	transferData := erc20Transfer(t, ops, big.NewInt(100))
	for _, tt := range []struct {
		name  string
		js    string
		rule  string
		moves []string
	}{
		{name: "USDC transfer from the Safe", js: safeTxDoc(1, safeA, usdc, nil, transferData, 0, 0, zeroAddr, zeroAddr), moves: []string{mv(1, usdc, safeA, ops, big.NewInt(100))}},
		{name: "native from the Safe", js: safeTxDoc(1, safeA, treasury, oneETH, nil, 0, 0, zeroAddr, zeroAddr), moves: []string{mv(1, "native", safeA, treasury, oneETH)}},
		{name: "to attacker", js: safeTxDoc(1, safeA, usdc, nil, erc20Transfer(t, attacker, big.NewInt(1)), 0, 0, zeroAddr, zeroAddr), rule: refusal.RuleDestinations},
		{name: "DELEGATECALL to a malicious implementation", js: safeTxDoc(1, safeA, bybitImp, nil, pack(t, "transfer(address,uint256)", ga(t, attacker), big.NewInt(0)), 1, 0, zeroAddr, zeroAddr), rule: refusal.RuleSafeOperation},
		{name: "MultiSendCallOnly batch", js: safeTxDoc(1, safeA, msco, nil, multiSend(t, msCall{to: usdc, data: transferData}), 1, 0, zeroAddr, zeroAddr), moves: []string{mv(1, usdc, safeA, ops, big.NewInt(100))}},
		{name: "self call", js: safeTxDoc(1, safeA, safeA, nil, pack(t, "addOwnerWithThreshold(address,uint256)", ga(t, attacker), big.NewInt(1)), 0, 0, zeroAddr, zeroAddr), rule: refusal.RuleSafeSelfCall},
		{name: "refund", js: safeTxDoc(1, safeA, ops, nil, nil, 0, 1, zeroAddr, attacker), rule: refusal.RuleSafeRefund},
		{name: "Safe not allowlisted", js: safeTxDoc(1, safeX, ops, nil, nil, 0, 0, zeroAddr, zeroAddr), rule: refusal.RuleSafeTransactions},
		{name: "chain not allowed", js: safeTxDoc(5, safeA, ops, nil, nil, 0, 0, zeroAddr, zeroAddr), rule: refusal.RuleChains},
		{name: "operation 2", js: safeTxDoc(1, safeA, ops, nil, nil, 2, 0, zeroAddr, zeroAddr), rule: refusal.RuleSafeOperation},
		{name: "malformed data", js: safeTxDoc(1, safeA, usdc, nil, transferData[:10], 0, 0, zeroAddr, zeroAddr), rule: refusal.RuleCalldata},
		{name: "a look-alike SafeTx type", js: strings.Replace(safeTxDoc(1, safeA, ops, nil, nil, 0, 0, zeroAddr, zeroAddr), `"baseGas"`, `"dataGas"`, 2), rule: refusal.RuleSafeTransactions},
		{name: "SafeMessage", js: typedDoc("SafeMessage", fmt.Sprintf(`{"chainId":1,"verifyingContract":"%s"}`, safeA), `{"message":"0x1234"}`, safeDomainType, `"SafeMessage":[{"name":"message","type":"bytes"}]`), rule: refusal.RuleSafeTransactions},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := p.EvaluateTypedData(typedReq(t, c, "hot-0", tt.js))
			checkDecision(t, d, tt.rule)
			if got := describeMovements(d.Movements); d.Allow && !sameList(got, tt.moves) {
				t.Errorf("movements\n%q\nwant\n%q", got, tt.moves)
			}
			if d.Allow && d.Label != "treasury Safe" {
				t.Errorf("label %q", d.Label)
			}
		})
	}
	// A SafeTx whose domain is also allowlisted as a typed-data domain is
	// still checked as a Safe transaction.
	doc := fullDoc(c)
	doc.Keys[0].TypedData = &policy.TypedDataRule{Domains: []policy.TypedDataDomain{{ChainID: 1, VerifyingContract: safeA}}}
	q := compile(t, doc)
	d := q.EvaluateTypedData(typedReq(t, c, "hot-0", safeTxDoc(1, safeA, bybitImp, nil, nil, 1, 0, zeroAddr, zeroAddr)))
	checkDecision(t, d, refusal.RuleSafeOperation)
	// Without the document, a SafeTx cannot be checked.
	req := typedReq(t, c, "hot-0", safeTxDoc(1, safeA, ops, nil, nil, 0, 0, zeroAddr, zeroAddr))
	req.Data = nil
	checkDecision(t, p.EvaluateTypedData(req), refusal.RuleSafeTransactions)
}

func TestRawDigest(t *testing.T) {
	c := client(t)
	p := compile(t, fullDoc(c))
	for _, tt := range []struct {
		key  string
		n    int
		rule string
	}{
		{"raw", 32, ""},
		{"raw", 5, ""},
		{"hot-0", 32, refusal.RulePersonalMessages}, // no personal messages at all
		{"bare", 32, refusal.RulePersonalMessages},
	} {
		d := p.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c, KeyID: tt.key, Message: make([]byte, tt.n)})
		if d.Allow != (tt.rule == "") || d.Rule != tt.rule {
			t.Errorf("%s, %d bytes: %+v, want rule %q", tt.key, tt.n, d, tt.rule)
		}
	}
	doc := fullDoc(c)
	doc.Keys[0].PersonalMessages = true
	q := compile(t, doc)
	if d := q.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c, KeyID: "hot-0", Message: make([]byte, 32)}); d.Rule != refusal.RuleRawDigest {
		t.Errorf("32 bytes without raw_digest: %+v", d)
	}
	for _, tt := range []struct {
		key  string
		rule string
	}{
		{"raw", ""},
		{"hot-0", refusal.RuleRawDigest},
		{"nobody", refusal.RuleClientKeys},
	} {
		d := p.EvaluateRawDigest(&policy.RawDigest{Client: c, KeyID: tt.key})
		if d.Allow != (tt.rule == "") || d.Rule != tt.rule {
			t.Errorf("raw digest for %s: %+v, want rule %q", tt.key, d, tt.rule)
		}
	}
	if d := p.EvaluateRawDigest(&policy.RawDigest{Client: client(t), KeyID: "raw"}); d.Rule != refusal.RuleClientKeys {
		t.Errorf("raw digest from a stranger: %+v", d)
	}
}
