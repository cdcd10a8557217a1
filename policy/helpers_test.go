package policy_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/stamp"
)

// Addresses of the full fixture, in lower case (no checksum to get wrong).
const (
	keyAddr  = "0x9bf111518107c76da607bb6039489949b2951a10" // the signing key
	ops      = "0x1111111111111111111111111111111111111111"
	treasury = "0x2222222222222222222222222222222222222222"
	attacker = "0xbad0000000000000000000000000000000000bad"
	usdc     = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	weth     = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
	dai      = "0x6b175474e89094c44da98b954eedeac495271d0f" // allowlisted, no transfers
	router   = "0x3333333333333333333333333333333333333333" // capped spender
	permit2  = "0x000000000022d473030f116ddee9f6b43ac78ba3"
	bayc     = "0xbc4ca0eda7647a8ab7c2061c2e118a18a936f13d" // ERC-721
	items    = "0x76be3b62873462d2142405439777e971754e8e77" // ERC-1155
	punks    = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb" // ERC-721, no transfers
	seaport  = "0x1e0049783f008a0085193e00003d00cd54003c71" // NFT operator
	dex      = "0x4444444444444444444444444444444444444444" // generic contract
	safeA    = "0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe" // allowlisted Safe
	safeB    = "0x5afe00000000000000000000000000000000b0b0" // allowlisted Safe, owned by safeA
	safeX    = "0x5afe000000000000000000000000000000000bad" // not allowlisted
	msco     = "0x40a2accbd92bca938b02010e17a5b8929b49130d" // MultiSendCallOnly 1.3.0
	msend    = "0xa238cbeb142c10ef7ad8442c6d1f9e89e07e7761" // MultiSend 1.3.0 (not CallOnly)
	bybitImp = "0xbdd077f651ebe7f7b3ce16fe5f2b025be2969516" // the Bybit attacker's contract
	zeroAddr = "0x0000000000000000000000000000000000000000"
)

// Amounts.
var (
	oneETH    = big.NewInt(1e18)
	usdcCap   = big.NewInt(1_000_000_000) // 1,000 USDC per transfer
	routerCap = big.NewInt(5_000_000_000) // 5,000 USDC allowance
	maxUint   = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
)

func bi(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return v
}

func a(t testing.TB, s string) ethtx.Address {
	t.Helper()
	v, err := ethtx.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fullDoc is a policy with every kind of rule, for client c:
//   - hot-0 on chains 1 and 10: native transfers to ops and treasury (1 ETH
//     each) on both; on chain 1 fee caps, tokens (USDC: transfers and
//     spenders; WETH: transfer and transferFrom; DAI: spenders only), NFTs,
//     a generic contract, WETH deposit, Safes and a MultiSendCallOnly;
//   - split: native transfers to ops on chain 1, to treasury on chain 10;
//   - bare: chain 1, nothing else;
//   - raw: personal messages and raw digests.
func fullDoc(c stamp.PublicKey) policy.Document {
	dests := []policy.Destination{{Address: ops, Label: "ops"}, {Address: treasury, Label: "treasury"}}
	return policy.Document{
		Version: 9,
		Clients: []policy.Client{{Name: "svc", Scheme: string(c.Scheme), PublicKey: hex.EncodeToString(c.Key), Keys: []string{"hot-0", "split", "bare", "raw"}}},
		Keys: []policy.KeyRule{
			{
				Key: "hot-0", Chains: []uint64{1, 10},
				NativeTransfers: &policy.NativeTransfers{Destinations: dests, MaxPerTransactionWei: "1000000000000000000"},
				ChainRules: []policy.ChainRule{{
					ChainID: 1,
					Fees:    &policy.FeeCaps{MaxGasLimit: 500_000, MaxFeePerGasWei: "200000000000", MaxPriorityFeePerGasWei: "5000000000", MaxGasPriceWei: "100000000000"},
					Tokens: []policy.TokenRule{
						{Address: usdc, Label: "USDC",
							Transfers: &policy.TokenTransfers{Destinations: dests, MaxPerTransaction: "1000000000"},
							Spenders: []policy.Spender{
								{Address: router, Label: "router", MaxAllowance: "5000000000"},
								{Address: permit2, Label: "Permit2", MaxAllowance: "unlimited"},
							}},
						{Address: weth, Label: "WETH",
							Transfers: &policy.TokenTransfers{Destinations: dests[:1], MaxPerTransaction: "2000000000000000000", TransferFrom: true}},
						{Address: dai, Label: "DAI",
							Spenders: []policy.Spender{{Address: router, Label: "router", MaxAllowance: "1000"}}},
					},
					NFTs: []policy.NFTRule{
						{Address: bayc, Label: "BAYC", Standard: "erc721", Destinations: dests[1:], Operators: []policy.Destination{{Address: seaport, Label: "Seaport"}}},
						{Address: items, Label: "items", Standard: "erc1155", Destinations: dests[1:]},
						{Address: punks, Label: "punks", Standard: "erc721"},
					},
					Contracts: []policy.ContractRule{
						{Address: dex, Label: "dex", Functions: []policy.FunctionRule{{Selector: "0x12345678", MaxValueWei: "1000000000000000000"}, {Selector: "0xabcdef01"}}},
						{Address: weth, Label: "WETH", Functions: []policy.FunctionRule{
							{Selector: "0xd0e30db0", Signature: "deposit()", MaxValueWei: "10000000000000000000"},
							{Selector: "0x2e1a7d4d", Signature: "withdraw(uint256)"},
						}},
					},
					Safes:             []policy.Destination{{Address: safeA, Label: "treasury Safe"}, {Address: safeB, Label: "sub-Safe"}},
					MultiSendCallOnly: []policy.Destination{{Address: msco, Label: "MultiSendCallOnly 1.3.0"}},
				}},
			},
			{
				Key: "split", Chains: []uint64{1, 10},
				ChainRules: []policy.ChainRule{
					{ChainID: 1, NativeTransfers: &policy.NativeTransfers{Destinations: dests[:1], MaxPerTransactionWei: "5"}},
					{ChainID: 10, NativeTransfers: &policy.NativeTransfers{Destinations: dests[1:], MaxPerTransactionWei: "7"}},
				},
			},
			{Key: "bare", Chains: []uint64{1}},
			{Key: "raw", Chains: []uint64{1}, PersonalMessages: true, RawDigest: true},
		},
		Assets: []policy.Asset{{ChainID: 1, Address: usdc, Symbol: "USDC", Decimals: 6}},
	}
}

func compile(t testing.TB, d policy.Document) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(d)
	if err != nil {
		t.Fatal(err)
	}
	// The document round-trips through JSON to the same policy.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	q, err := policy.Parse(b)
	if err != nil {
		t.Fatalf("the JSON of a compiled document does not parse: %v", err)
	}
	if q.Hash() != p.Hash() {
		t.Fatal("Parse and Compile disagree on the hash")
	}
	return p
}

// pack returns the calldata of a call of sig with args (internal/abitest,
// cross-checked against go-ethereum's abi.Pack in crosscheck/abitest).
func pack(t testing.TB, sig string, args ...any) []byte {
	t.Helper()
	b, err := abitest.Pack(sig, args...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ga is the address of s as pack takes it.
func ga(t testing.TB, s string) ethtx.Address { return a(t, s) }

func erc20Transfer(t testing.TB, to string, amount *big.Int) []byte {
	return pack(t, "transfer(address,uint256)", ga(t, to), amount)
}

func erc20TransferFrom(t testing.TB, from, to string, amount *big.Int) []byte {
	return pack(t, "transferFrom(address,address,uint256)", ga(t, from), ga(t, to), amount)
}

func erc20Approve(t testing.TB, spender string, amount *big.Int) []byte {
	return pack(t, "approve(address,uint256)", ga(t, spender), amount)
}

func increaseAllowance(t testing.TB, spender string, amount *big.Int) []byte {
	return pack(t, "increaseAllowance(address,uint256)", ga(t, spender), amount)
}

func setApprovalForAll(t testing.TB, operator string, approved bool) []byte {
	return pack(t, "setApprovalForAll(address,bool)", ga(t, operator), approved)
}

// execTx is Safe.execTransaction with no refund and empty signatures
// (the policy does not read them).
func execTx(t testing.TB, to string, value *big.Int, data []byte, op uint8) []byte {
	return execTxRefund(t, to, value, data, op, new(big.Int), zeroAddr, zeroAddr)
}

func execTxRefund(t testing.TB, to string, value *big.Int, data []byte, op uint8, gasPrice *big.Int, gasToken, refundReceiver string) []byte {
	if value == nil {
		value = new(big.Int)
	}
	return pack(t, "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
		ga(t, to), value, data, op, big.NewInt(0), big.NewInt(0), gasPrice, ga(t, gasToken), ga(t, refundReceiver), []byte{1, 2, 3})
}

// msCall is one MultiSend entry.
type msCall struct {
	op    uint8
	to    string
	value *big.Int
	data  []byte
}

// multiSend packs entries as MultiSend.multiSend(bytes) takes them.
func multiSend(t testing.TB, calls ...msCall) []byte {
	var txs []byte
	for _, c := range calls {
		to := a(t, c.to)
		v := c.value
		if v == nil {
			v = new(big.Int)
		}
		txs = append(txs, c.op)
		txs = append(txs, to[:]...)
		txs = append(txs, v.FillBytes(make([]byte, 32))...)
		txs = append(txs, big.NewInt(int64(len(c.data))).FillBytes(make([]byte, 32))...)
		txs = append(txs, c.data...)
	}
	return pack(t, "multiSend(bytes)", txs)
}

// txOpt changes a test transaction.
type txOpt func(*ethtx.Tx)

func legacyTx(gasPrice int64) txOpt {
	return func(tx *ethtx.Tx) {
		tx.Type, tx.GasPrice, tx.MaxFeePerGas, tx.MaxPriorityFeePerGas = ethtx.TypeLegacy, big.NewInt(gasPrice), nil, nil
	}
}

func gasLimit(g uint64) txOpt { return func(tx *ethtx.Tx) { tx.GasLimit = g } }

func fees(maxFee, prio int64) txOpt {
	return func(tx *ethtx.Tx) { tx.MaxFeePerGas, tx.MaxPriorityFeePerGas = big.NewInt(maxFee), big.NewInt(prio) }
}

func txType(typ ethtx.Type) txOpt { return func(tx *ethtx.Tx) { tx.Type = typ } }

// newTx returns an EIP-1559 transaction within the fixture's fee caps.
func newTx(t testing.TB, chain uint64, to string, value *big.Int, data []byte, opts ...txOpt) *ethtx.Tx {
	t.Helper()
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: new(big.Int).SetUint64(chain), Nonce: 1, GasLimit: 100_000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9), Value: value, Data: data}
	if tx.Value == nil {
		tx.Value = new(big.Int)
	}
	if to != "" {
		addr := a(t, to)
		tx.To = &addr
	}
	for _, o := range opts {
		o(tx)
	}
	return tx
}

// evalTx decodes tx's calldata and evaluates it for key, as the enclave
// does.
func evalTx(t testing.TB, p *policy.Policy, c stamp.PublicKey, key string, tx *ethtx.Tx) policy.Decision {
	t.Helper()
	var call calldata.Call
	if tx.To != nil {
		var err error
		if call, err = calldata.Decode(tx.Data); err != nil {
			t.Fatalf("test calldata does not decode: %v", err)
		}
	}
	return p.EvaluateTransaction(&policy.Transaction{Client: c, KeyID: key, From: a(t, keyAddr), Tx: tx, Call: call})
}

// typedReq parses an eth_signTypedData_v4 document and makes the request
// the enclave would make of it.
func typedReq(t testing.TB, c stamp.PublicKey, key, js string) *policy.TypedData {
	t.Helper()
	td, err := ethmsg.ParseTypedData([]byte(js))
	if err != nil {
		t.Fatalf("test typed data does not parse: %v", err)
	}
	dom := td.Domain()
	pm, pmErr := td.Permit()
	return &policy.TypedData{
		Client: c, KeyID: key, From: a(t, keyAddr), PrimaryType: td.PrimaryType(),
		Domain: policy.Domain{Name: dom.Name, Version: dom.Version, ChainID: dom.ChainID, VerifyingContract: dom.VerifyingContract},
		Permit: pm, PermitErr: pmErr, Data: td,
	}
}

// checkDecision fails unless d allows (rule "") or refuses with rule, with
// a reason when it refuses and nothing moved or granted.
func checkDecision(t testing.TB, d policy.Decision, rule string) {
	t.Helper()
	if d.Allow != (rule == "") || d.Rule != rule {
		t.Fatalf("decision %+v, want rule %q", d, rule)
	}
	if !d.Allow && (d.Reason == "" || len(d.Movements) != 0 || len(d.Grants) != 0) {
		t.Fatalf("refusal %+v: want a reason and no movements or grants", d)
	}
}

// mv and gr describe movements and grants compactly for comparisons.
func mv(chain uint64, asset, from, to string, amount *big.Int) string {
	return fmt.Sprintf("%d %s %s->%s %s", chain, asset, from, to, amount)
}

func describeMovements(ms []policy.Movement) []string {
	var out []string
	for _, m := range ms {
		asset := "native"
		if m.Asset != (ethtx.Address{}) {
			asset = strings.ToLower(m.Asset.Hex())
		}
		s := mv(m.ChainID, asset, strings.ToLower(m.From.Hex()), strings.ToLower(m.To.Hex()), m.Amount)
		if m.TokenID != nil {
			s += " #" + m.TokenID.String()
		}
		out = append(out, s)
	}
	return out
}

func gr(chain uint64, kind policy.GrantKind, token, owner, spender string, amount *big.Int) string {
	am := "unlimited"
	if amount != nil {
		am = amount.String()
	}
	return fmt.Sprintf("%d %s %s %s->%s %s", chain, kind, token, owner, spender, am)
}

func describeGrants(gs []policy.Grant) []string {
	var out []string
	for _, g := range gs {
		s := gr(g.ChainID, g.Kind, strings.ToLower(g.Token.Hex()), strings.ToLower(g.Owner.Hex()), strings.ToLower(g.Spender.Hex()), g.Amount)
		if g.TokenID != nil {
			s += " #" + g.TokenID.String()
		}
		out = append(out, s)
	}
	return out
}

func sameList(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
