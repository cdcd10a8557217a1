package enclave_test

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

const (
	grantRouter  = "0x3333333333333333333333333333333333333333"
	permit2Addr  = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
	grantBAYC    = "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D"
	grantSeaport = "0x1E0049783F008A0085193E00003D00cd54003c71"
)

// grantPermit is an EIP-2612 permit of value USDC base units to spender.
func grantPermit(spender, value string) json.RawMessage {
	s := strings.Replace(usdcPermit, `"spender":"0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516"`, `"spender":"`+spender+`"`, 1)
	return json.RawMessage(strings.Replace(s, `"value":"115792089237316195423570985008687907853269984665640564039457584007913129639935"`, `"value":"`+value+`"`, 1))
}

// grantPermit2 is a Permit2 PermitSingle of amount USDC base units to
// spender.
func grantPermit2(spender, amount string) json.RawMessage {
	s := strings.Replace(permit2Single, `"spender":"0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516"`, `"spender":"`+spender+`"`, 1)
	return json.RawMessage(strings.Replace(s, `"amount":"1461501637330902918203684832716283019655932542975"`, `"amount":"`+amount+`"`, 1))
}

// TestGrantLoopAttack: allowance grants count against the rolling limit
// and the approval threshold of their token like transfers of the granted
// amount. With 200 USDC a day and approvals above 50 USDC, five
// increaseAllowance(100 USDC) and an approve(100 USDC) to an allowlisted
// spender (a spender with a cap of 1,000 USDC, each grant well under it)
// get 200 USDC of grants signed in the day, each only with an approval.
// EIP-2612 and Permit2 permits count the same; an unlimited grant is
// refused by the limit; revocations and decreaseAllowance pass and count
// nothing; setApprovalForAll needs approval.
func TestGrantLoopAttack(t *testing.T) {
	ap := newApprovers(t, 1)
	f := newStateful(t, func(k *policy.KeyRule) {
		k.ChainRules = []policy.ChainRule{{
			ChainID: 1,
			Tokens: []policy.TokenRule{{Address: attackUSDC, Label: "USDC", Spenders: []policy.Spender{
				{Address: grantRouter, Label: "router", MaxAllowance: "1000000000"},
				{Address: permit2Addr, Label: "Permit2", MaxAllowance: "unlimited"},
			}}},
			NFTs: []policy.NFTRule{{Address: grantBAYC, Label: "BAYC", Standard: "erc721", Operators: []policy.Destination{{Address: grantSeaport, Label: "Seaport"}}}},
			Contracts: []policy.ContractRule{{Address: attackUSDC, Label: "USDC", Functions: []policy.FunctionRule{
				{Selector: "0xa457c2d7", Signature: "decreaseAllowance(address,uint256)"},
			}}},
		}}
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: attackUSDC, Window: "24h", Max: "200000000"}}
		k.Approvals = ap.rule(1, big.NewInt(1))
		k.Approvals.Above = []stateful.ApprovalThreshold{{ChainID: 1, Asset: attackUSDC, Amount: "50000000"}}
		k.Freeze = &stateful.FreezeRule{Refusals: 1000, Window: "1h", Scope: "key"}
	})
	ga := addr
	usdc := func(n int64) *big.Int { return big.NewInt(n * 1e6) }
	call := func(to string, data []byte) []byte {
		return f.body(t, "hot-0", txTo(t, 1, to, ethtx.TypeDynamicFee, data), f.now.UnixMilli())
	}
	increase := func(n int64) []byte {
		return call(attackUSDC, packCall(t, "increaseAllowance(address,uint256)", ga(grantRouter), usdc(n)))
	}
	approve := func(spender string, amount *big.Int) []byte {
		return call(attackUSDC, packCall(t, "approve(address,uint256)", ga(spender), amount))
	}
	// pending sends body and expects it held for approval.
	pending := func(body []byte) func() *proto.SignResponse {
		t.Helper()
		sr, ok := f.send(t, f.hot, body).(*proto.SignResponse)
		if !ok || sr.Status != proto.StatusPending {
			t.Fatalf("want the request held for approval, got %#v", sr)
		}
		return func() *proto.SignResponse {
			sr, ok := ap.decide(t, f.e, sr.ApprovalID, 0, body, false).(*proto.SignResponse)
			if !ok || sr.Status != "" || sr.Signature == ([65]byte{}) {
				t.Fatalf("want the approved signature, got %#v", sr)
			}
			return sr
		}
	}

	// The loop: five increaseAllowance(100) and one approve(100). Each is
	// above the threshold and waits; a waiting request keeps its
	// reservation, so the third is refused by the limit, and so is every
	// one after it.
	var held []func() *proto.SignResponse
	var refused int
	for i, body := range [][]byte{increase(100), increase(100), increase(100), increase(100), increase(100), approve(grantRouter, usdc(100))} {
		if i < 2 {
			held = append(held, pending(body))
			continue
		}
		pe := wantRule(t, f.send(t, f.hot, body), refusal.RuleRollingLimit)
		if !strings.Contains(pe.Message, "200000000") {
			t.Errorf("refusal %q does not name the limit", pe.Message)
		}
		refused++
	}
	granted := new(big.Int)
	for _, sign := range held {
		tx := signedFields(t, sign().SignedTransaction)
		granted.Add(granted, new(big.Int).SetBytes(tx.Data[36:68]))
	}
	if granted.Cmp(usdc(200)) != 0 || refused != 4 {
		t.Fatalf("%s base units granted, %d refused: want 200 USDC and 4", granted, refused)
	}

	// The window is full: permits count the same, and are refused.
	wantRule(t, f.send(t, f.hot, f.messageBody(t, "eth_typed_data", grantPermit(grantRouter, "1000000"))), refusal.RuleRollingLimit)
	wantRule(t, f.send(t, f.hot, f.messageBody(t, "eth_typed_data", grantPermit2(grantRouter, "1000000"))), refusal.RuleRollingLimit)
	wantRule(t, f.send(t, f.hot, increase(1)), refusal.RuleRollingLimit)
	// Revocations and decreaseAllowance pass, with no approval, and count
	// nothing.
	wantSigned(t, f.send(t, f.hot, approve(grantRouter, new(big.Int))))
	wantSigned(t, f.send(t, f.hot, approve(attacker, new(big.Int))))
	wantSigned(t, f.send(t, f.hot, call(attackUSDC, packCall(t, "decreaseAllowance(address,uint256)", ga(grantRouter), usdc(100)))))
	if sr, ok := f.send(t, f.hot, f.messageBody(t, "eth_typed_data", grantPermit(attacker, "0"))).(*proto.SignResponse); !ok || sr.Status != "" || sr.Signature == ([65]byte{}) {
		t.Fatal("a permit of 0 (a revocation) is not signed at once")
	}
	// An unlimited grant is refused by any limit on its token, even to a
	// spender whose cap is "unlimited".
	maxUint, _ := new(big.Int).SetString(maxUint256Hx, 16)
	pe := wantRule(t, f.send(t, f.hot, approve(permit2Addr, maxUint)), refusal.RuleRollingLimit)
	if !strings.Contains(pe.Message, "unlimited") {
		t.Errorf("refusal %q", pe.Message)
	}
	// setApprovalForAll hands over a whole collection: it needs approval;
	// revoking it does not.
	pending(call(grantBAYC, packCall(t, "setApprovalForAll(address,bool)", ga(grantSeaport), true)))()
	wantSigned(t, f.send(t, f.hot, call(grantBAYC, packCall(t, "setApprovalForAll(address,bool)", ga(attacker), false))))

	// A day later: a grant at the threshold signs at once; permits above
	// it wait, and fill the window with it.
	f.setNow(f.now.Add(25 * time.Hour))
	wantSigned(t, f.send(t, f.hot, approve(grantRouter, usdc(50))))
	signPermit := pending(f.messageBody(t, "eth_typed_data", grantPermit(grantRouter, "90000000")))
	signPermit2 := pending(f.messageBody(t, "eth_typed_data", grantPermit2(grantRouter, "60000000")))
	wantRule(t, f.send(t, f.hot, f.messageBody(t, "eth_typed_data", grantPermit2(grantRouter, "1"))), refusal.RuleRollingLimit)
	signPermit()
	signPermit2()
	// Unlimited Permit2 allowances (2^160-1) are unlimited too.
	wantRule(t, f.send(t, f.hot, f.messageBody(t, "eth_typed_data", grantPermit2(grantRouter, "1461501637330902918203684832716283019655932542975"))), "allowance_caps")
	wantRule(t, f.send(t, f.hot, f.messageBody(t, "eth_typed_data", grantPermit2(permit2Addr, "1461501637330902918203684832716283019655932542975"))), refusal.RuleRollingLimit)
}
