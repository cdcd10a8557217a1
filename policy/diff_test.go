package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// Addresses of the diff fixture, in lower case.
const (
	xOps      = "0x1111111111111111111111111111111111111111"
	xTreasury = "0x2222222222222222222222222222222222222222"
	xRouter   = "0x3333333333333333333333333333333333333333"
	xNew      = "0x6666666666666666666666666666666666666666"
	xNewToken = "0x7777777777777777777777777777777777777777"
	xUSDC     = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	xDAI      = "0x6b175474e89094c44da98b954eedeac495271d0f"
	xPermit2  = "0x000000000022d473030f116ddee9f6b43ac78ba3"
	xBAYC     = "0xbc4ca0eda7647a8ab7c2061c2e118a18a936f13d"
	xItems    = "0x76be3b62873462d2142405439777e971754e8e77"
	xSeaport  = "0x1e0049783f008a0085193e00003d00cd54003c71"
	xWETH     = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
	xDex      = "0x4444444444444444444444444444444444444444"
	xSafe     = "0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe"
	xSafe2    = "0x5afe00000000000000000000000000000000b0b0"
	xMSCO     = "0x40a2accbd92bca938b02010e17a5b8929b49130d"
	xMSCO141  = "0x9641d764fc13c8b624c04430c7356c1c7c8102e2"
	xMail     = "0xcccccccccccccccccccccccccccccccccccccccc"
)

// seededKey returns the hex of a deterministic Ed25519 public key.
func seededKey(name string) string {
	seed := sha256.Sum256([]byte("nitrosign diff test key " + name))
	return hex.EncodeToString(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
}

// p256Key returns the hex of a compressed P-256 public key, the same for
// the whole test run.
var p256Key = sync.OnceValue(func() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	s, err := stamp.NewP256Signer(k)
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(s.PublicKey().Key)
})

// diffBase is a document with every field of the format set: hot-0 (keys[0])
// has every section, cold (keys[1]) a per-chain native list only.
func diffBase() Document {
	dests := func() []Destination {
		return []Destination{{Address: xOps, Label: "ops"}, {Address: xTreasury, Label: "treasury"}}
	}
	return Document{
		Version: 5,
		Clients: []Client{
			{Name: "svc", Scheme: "ed25519", PublicKey: seededKey("svc"), Keys: []string{"hot-0", "cold"}},
			{Name: "ops", Scheme: "ed25519", PublicKey: seededKey("ops"), Keys: []string{"hot-0"}},
		},
		Keys: []KeyRule{
			{
				Key: "hot-0", Chains: []uint64{1, 10},
				NativeTransfers: &NativeTransfers{Destinations: dests(), MaxPerTransactionWei: "1000000000000000000"},
				TypedData:       &TypedDataRule{Domains: []TypedDataDomain{{Name: "Ether Mail", Version: "1", ChainID: 1, VerifyingContract: xMail}}},
				ChainRules: []ChainRule{{
					ChainID: 1,
					Fees:    &FeeCaps{MaxGasLimit: 500_000, MaxFeePerGasWei: "200000000000", MaxPriorityFeePerGasWei: "5000000000", MaxGasPriceWei: "100000000000"},
					Tokens: []TokenRule{
						{Address: xUSDC, Label: "USDC",
							Transfers: &TokenTransfers{Destinations: dests(), MaxPerTransaction: "1000000000"},
							Spenders: []Spender{
								{Address: xRouter, Label: "router", MaxAllowance: "5000000000"},
								{Address: xPermit2, Label: "Permit2", MaxAllowance: "unlimited"},
							}},
						{Address: xDAI, Label: "DAI", Spenders: []Spender{{Address: xRouter, Label: "router", MaxAllowance: "1000"}}},
					},
					NFTs: []NFTRule{
						{Address: xBAYC, Label: "BAYC", Standard: "erc721", Destinations: dests()[1:], Operators: []Destination{{Address: xSeaport, Label: "Seaport"}}},
					},
					Contracts: []ContractRule{
						{Address: xWETH, Label: "WETH", Functions: []FunctionRule{
							{Selector: "0xd0e30db0", Signature: "deposit()", MaxValueWei: "10000000000000000000"},
							{Selector: "0x2e1a7d4d", Signature: "withdraw(uint256)"},
						}},
					},
					Safes:             []Destination{{Address: xSafe, Label: "treasury Safe"}},
					MultiSendCallOnly: []Destination{{Address: xMSCO, Label: "MultiSendCallOnly 1.3.0"}},
				}},
				KeyConfig: stateful.KeyConfig{
					Limits: []stateful.LimitRule{
						{ChainID: 1, Asset: "native", Window: "24h", Max: "3000000000000000000"},
						{ChainID: 1, Asset: "native", Destination: xTreasury, Window: "24h", Max: "1000000000000000000"},
						{ChainID: 1, Asset: xUSDC, Window: "1h", Max: "5000000000"},
						{ChainID: 10, Asset: "native", Window: "720h", Max: "1000000000000000000"},
					},
					Velocity: &stateful.VelocityRule{Window: "1h", MaxTransactions: 100},
					Approvals: &stateful.ApprovalRule{
						Above: []stateful.ApprovalThreshold{
							{ChainID: 1, Asset: "native", Amount: "500000000000000000"},
							{ChainID: 1, Asset: xUSDC, Amount: "100000000"},
						},
						Quorum: 2,
						Approvers: []stateful.Approver{
							{Name: "alice", Scheme: "ed25519", PublicKey: seededKey("alice")},
							{Name: "bob", Scheme: "ed25519", PublicKey: seededKey("bob")},
							{Name: "carol", Scheme: "ed25519", PublicKey: seededKey("carol")},
						},
					},
					Freeze: &stateful.FreezeRule{Refusals: 100, Window: "1h", OnLimitBreach: true, Scope: "all"},
				},
			},
			{
				Key: "cold", Chains: []uint64{1},
				ChainRules: []ChainRule{{ChainID: 1, NativeTransfers: &NativeTransfers{Destinations: dests()[1:], MaxPerTransactionWei: "5000000000000000000"}}},
			},
		},
		Assets: []Asset{{ChainID: 1, Address: xUSDC, Symbol: "USDC", Decimals: 6}},
	}
}

func mustCompile(t testing.TB, name string, d Document) *Policy {
	t.Helper()
	p, err := Compile(d)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// Shorthands for the mutations.
func hot(d *Document) *KeyRule    { return &d.Keys[0] }
func cold(d *Document) *KeyRule   { return &d.Keys[1] }
func hot1(d *Document) *ChainRule { return &d.Keys[0].ChainRules[0] }
func usdcRule(d *Document) *TokenRule {
	return &hot1(d).Tokens[0]
}

// Kinds of change.
const (
	loosens  = iota // time locked; the reverse change only tightens
	tightens        // not time locked; the reverse change is time locked
	neutral         // neither loosens nor tightens, nor does its reverse
	both            // time locked, and so is the reverse change
	// paperTightens: not time locked, and neither is the reverse change
	// (what the change tightens binds only on paper).
	paperTightens
)

type diffCase struct {
	name string
	// fields are the document fields (classifiedFields paths) the case
	// exercises.
	fields []string
	// old changes the base into the old document (optional); change makes
	// the new document from the old.
	old, change func(*Document)
	kind        int
	// want is a substring of a Loosening message (loosens, both) or of a
	// Tightening message (tightens).
	want string
}

func diffCases() []diffCase {
	return []diffCase{
		{name: "identical", kind: neutral, change: func(*Document) {}},
		{name: "version only", fields: []string{"version"}, kind: neutral, change: func(d *Document) { d.Version++ }},

		// Clients.
		{name: "client added", kind: loosens, want: "client ops-2 added",
			change: func(d *Document) {
				d.Clients = append(d.Clients, Client{Name: "ops-2", Scheme: "ed25519", PublicKey: seededKey("ops-2"), Keys: []string{"cold"}})
			}},
		{name: "client gains a key", fields: []string{"clients[].keys"}, kind: loosens, want: "client ops: key cold added",
			change: func(d *Document) { d.Clients[1].Keys = append(d.Clients[1].Keys, "cold") }},
		{name: "client public key changed", fields: []string{"clients[].public_key"}, kind: both, want: "client ops: public key changed from ed25519:",
			change: func(d *Document) { d.Clients[1].PublicKey = seededKey("mallory") }},
		{name: "client scheme and key changed", fields: []string{"clients[].scheme"}, kind: both, want: "client ops: public key changed",
			change: func(d *Document) { d.Clients[1].Scheme, d.Clients[1].PublicKey = "p256", p256Key() }},
		{name: "client renamed", fields: []string{"clients[].name"}, kind: neutral,
			change: func(d *Document) { d.Clients[1].Name = "operations" }},
		{name: "client removed", kind: tightens, want: "client ops removed",
			change: func(d *Document) { d.Clients = d.Clients[:1] }},

		// Keys and chains.
		{name: "key rule added", fields: []string{"keys[].key"}, kind: loosens, want: "key warm added (chains 1)",
			change: func(d *Document) { d.Keys = append(d.Keys, KeyRule{Key: "warm", Chains: []uint64{1}}) }},
		{name: "key renamed", fields: []string{"keys[].key"}, kind: both, want: "key cold-2 added",
			change: func(d *Document) { cold(d).Key, d.Clients[0].Keys[1] = "cold-2", "cold-2" }},
		{name: "key removed", kind: tightens, want: "key cold removed",
			change: func(d *Document) { d.Keys, d.Clients[0].Keys = d.Keys[:1], d.Clients[0].Keys[:1] }},
		{name: "key with a freeze of scope all removed", fields: []string{"keys[].freeze.scope"}, kind: both, want: "freeze for key hot-0: removed with the key; its scope was all",
			change: func(d *Document) {
				d.Keys, d.Clients = d.Keys[1:], d.Clients[:1]
				d.Clients[0].Keys = []string{"cold"}
			}},
		{name: "chain added", fields: []string{"keys[].chains"}, kind: loosens, want: "key cold: chain 10 added",
			change: func(d *Document) { cold(d).Chains = append(cold(d).Chains, 10) }},
		{name: "chain removed with its limit", fields: []string{"keys[].chains"}, kind: tightens, want: "limit on chain 10 native per 720h (max 1 ETH (1000000000000000000 wei)) removed with its chain or token",
			change: func(d *Document) { hot(d).Chains, hot(d).Limits = []uint64{1}, hot(d).Limits[:3] }},
		{name: "chain rules moved to another chain", fields: []string{"keys[].chain_rules[].chain_id"}, kind: both, want: "key cold chain 10: native destination 0x2222222222222222222222222222222222222222 (treasury) added",
			old:    func(d *Document) { cold(d).Chains = []uint64{1, 10} },
			change: func(d *Document) { cold(d).ChainRules[0].ChainID = 10 }},

		// Transaction types.
		{name: "transaction type removed", fields: []string{"keys[].transaction_types"}, kind: tightens, want: "key cold: transaction type legacy (legacy) no longer allowed",
			change: func(d *Document) { cold(d).TransactionTypes = []string{"eip1559", "eip2930"} }},
		{name: "transaction types spelt out as the default", fields: []string{"keys[].transaction_types"}, kind: neutral,
			change: func(d *Document) { cold(d).TransactionTypes = []string{"eip1559", "legacy", "eip2930"} }},
		{name: "transaction type added back", fields: []string{"keys[].transaction_types"}, kind: loosens, want: "key cold: transaction type eip2930 (EIP-2930) allowed",
			old:    func(d *Document) { cold(d).TransactionTypes = []string{"eip1559"} },
			change: func(d *Document) { cold(d).TransactionTypes = []string{"eip1559", "eip2930"} }},

		// Native transfers, key-wide (every chain of hot-0) and per chain.
		{name: "key-wide native destination added", fields: []string{"keys[].native_transfers.destinations[].address"}, kind: loosens,
			want: "key hot-0 chain 10: native destination 0x6666666666666666666666666666666666666666 (new) added",
			change: func(d *Document) {
				hot(d).NativeTransfers.Destinations = append(hot(d).NativeTransfers.Destinations, Destination{Address: xNew, Label: "new"})
			}},
		{name: "key-wide native label changed", fields: []string{"keys[].native_transfers.destinations[].label"}, kind: neutral,
			change: func(d *Document) { hot(d).NativeTransfers.Destinations[0].Label = "treasury" }},
		{name: "native destination address changed, label kept", fields: []string{"keys[].native_transfers.destinations[].address"}, kind: both,
			want:   "key hot-0 chain 1: native destination 0x6666666666666666666666666666666666666666 (ops) added",
			change: func(d *Document) { hot(d).NativeTransfers.Destinations[0].Address = xNew }},
		{name: "key-wide native max raised", fields: []string{"keys[].native_transfers.max_per_transaction_wei"}, kind: loosens,
			want:   "key hot-0 chain 1: native max per transaction raised from 1 ETH (1000000000000000000 wei) to 2 ETH (2000000000000000000 wei)",
			change: func(d *Document) { hot(d).NativeTransfers.MaxPerTransactionWei = "2000000000000000000" }},
		{name: "per-chain native destination added", fields: []string{"keys[].chain_rules[].native_transfers.destinations[].address"}, kind: loosens,
			want: "key cold chain 1: native destination 0x1111111111111111111111111111111111111111 added",
			change: func(d *Document) {
				nt := cold(d).ChainRules[0].NativeTransfers
				nt.Destinations = append(nt.Destinations, Destination{Address: xOps})
			}},
		{name: "per-chain native label changed", fields: []string{"keys[].chain_rules[].native_transfers.destinations[].label"}, kind: neutral,
			change: func(d *Document) { cold(d).ChainRules[0].NativeTransfers.Destinations[0].Label = "" }},
		{name: "per-chain native max raised", fields: []string{"keys[].chain_rules[].native_transfers.max_per_transaction_wei"}, kind: loosens,
			want:   "key cold chain 1: native max per transaction raised",
			change: func(d *Document) { cold(d).ChainRules[0].NativeTransfers.MaxPerTransactionWei = "5000000000000000001" }},
		{name: "native transfers turned off", kind: tightens, want: "key cold chain 1: native transfers turned off",
			change: func(d *Document) { cold(d).ChainRules = nil }},
		{name: "native transfers turned on", kind: loosens, want: "key cold chain 1: native transfers turned on, at most 5 ETH",
			old: func(d *Document) { cold(d).ChainRules = nil },
			change: func(d *Document) {
				cold(d).NativeTransfers = &NativeTransfers{Destinations: []Destination{{Address: xTreasury}}, MaxPerTransactionWei: "5000000000000000000"}
			}},
		{name: "key-wide native list moved into the chains", kind: neutral,
			change: func(d *Document) {
				nt := hot(d).NativeTransfers
				hot(d).NativeTransfers = nil
				hot1(d).NativeTransfers = nt
				hot(d).ChainRules = append(hot(d).ChainRules, ChainRule{ChainID: 10, NativeTransfers: nt})
			}},

		// Messages.
		{name: "personal messages turned on", fields: []string{"keys[].personal_messages"}, kind: loosens, want: "key hot-0: personal messages turned on",
			change: func(d *Document) { hot(d).PersonalMessages = true }},
		{name: "raw digests turned on", fields: []string{"keys[].raw_digest"}, kind: loosens, want: "key cold: raw digests turned on",
			change: func(d *Document) { cold(d).RawDigest = true }},
		{name: "typed data turned on", kind: loosens, want: "key cold: typed data domain (chain 1, verifying contract 0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC, name any, version any) added",
			change: func(d *Document) {
				cold(d).TypedData = &TypedDataRule{Domains: []TypedDataDomain{{ChainID: 1, VerifyingContract: xMail}}}
			}},
		{name: "typed data domain name dropped (any name)", fields: []string{"keys[].typed_data.domains[].name"}, kind: loosens, want: "name any, version \"1\") added",
			change: func(d *Document) { hot(d).TypedData.Domains[0].Name = "" }},
		{name: "typed data domain version dropped (any version)", fields: []string{"keys[].typed_data.domains[].version"}, kind: loosens, want: "version any) added",
			change: func(d *Document) { hot(d).TypedData.Domains[0].Version = "" }},
		{name: "typed data domain chain changed", fields: []string{"keys[].typed_data.domains[].chain_id"}, kind: both, want: "typed data domain (chain 10,",
			change: func(d *Document) { hot(d).TypedData.Domains[0].ChainID = 10 }},
		{name: "typed data domain contract changed", fields: []string{"keys[].typed_data.domains[].verifying_contract"}, kind: both, want: "verifying contract 0x6666666666666666666666666666666666666666",
			change: func(d *Document) { hot(d).TypedData.Domains[0].VerifyingContract = xNew }},
		{name: "typed data domain covered by a wildcard", kind: neutral,
			old: func(d *Document) { hot(d).TypedData.Domains[0].Name = "" },
			change: func(d *Document) {
				hot(d).TypedData.Domains = append(hot(d).TypedData.Domains, TypedDataDomain{Name: "Other", Version: "1", ChainID: 1, VerifyingContract: xMail})
			}},

		// Fees.
		{name: "gas limit cap raised", fields: []string{"keys[].chain_rules[].fees.max_gas_limit"}, kind: loosens, want: "key hot-0 chain 1: max gas limit raised from 500000 to 600000",
			change: func(d *Document) { hot1(d).Fees.MaxGasLimit = 600_000 }},
		{name: "max fee cap raised", fields: []string{"keys[].chain_rules[].fees.max_fee_per_gas_wei"}, kind: loosens, want: "max fee per gas raised from 200000000000 wei to 300000000000 wei",
			change: func(d *Document) { hot1(d).Fees.MaxFeePerGasWei = "300000000000" }},
		{name: "priority fee cap raised", fields: []string{"keys[].chain_rules[].fees.max_priority_fee_per_gas_wei"}, kind: loosens, want: "max priority fee per gas raised",
			change: func(d *Document) { hot1(d).Fees.MaxPriorityFeePerGasWei = "6000000000" }},
		{name: "gas price cap raised", fields: []string{"keys[].chain_rules[].fees.max_gas_price_wei"}, kind: loosens, want: "max gas price raised",
			change: func(d *Document) { hot1(d).Fees.MaxGasPriceWei = "100000000001" }},
		{name: "fee caps removed", kind: loosens, want: "key hot-0 chain 1: fee caps removed",
			change: func(d *Document) { hot1(d).Fees = nil }},

		// Tokens.
		{name: "token added", fields: []string{"keys[].chain_rules[].tokens[].address"}, kind: loosens, want: "key hot-0 chain 1: token 0x7777777777777777777777777777777777777777 (new) added",
			change: func(d *Document) {
				hot1(d).Tokens = append(hot1(d).Tokens, TokenRule{Address: xNewToken, Label: "new", Spenders: []Spender{{Address: xRouter, MaxAllowance: "1"}}})
			}},
		{name: "token label changed", fields: []string{"keys[].chain_rules[].tokens[].label"}, kind: neutral,
			change: func(d *Document) { usdcRule(d).Label = "USD Coin" }},
		{name: "token recipient added", fields: []string{"keys[].chain_rules[].tokens[].transfers.destinations[].address"}, kind: loosens,
			want: "token 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 (USDC): recipient 0x6666666666666666666666666666666666666666 added",
			change: func(d *Document) {
				tt := usdcRule(d).Transfers
				tt.Destinations = append(tt.Destinations, Destination{Address: xNew})
			}},
		{name: "token recipient label changed", fields: []string{"keys[].chain_rules[].tokens[].transfers.destinations[].label"}, kind: neutral,
			change: func(d *Document) { usdcRule(d).Transfers.Destinations[1].Label = "cold storage" }},
		{name: "token max per transaction raised", fields: []string{"keys[].chain_rules[].tokens[].transfers.max_per_transaction"}, kind: loosens,
			want:   "max per transaction raised from 1000 USDC (1000000000 base units) to 2000 USDC (2000000000 base units)",
			change: func(d *Document) { usdcRule(d).Transfers.MaxPerTransaction = "2000000000" }},
		{name: "transferFrom turned on", fields: []string{"keys[].chain_rules[].tokens[].transfers.transfer_from"}, kind: loosens, want: "(USDC): transferFrom turned on",
			change: func(d *Document) { usdcRule(d).Transfers.TransferFrom = true }},
		{name: "token transfers turned on", kind: loosens, want: "(DAI): transfers turned on (transferFrom too), at most 5 base units",
			change: func(d *Document) {
				hot1(d).Tokens[1].Transfers = &TokenTransfers{Destinations: []Destination{{Address: xOps}}, MaxPerTransaction: "5", TransferFrom: true}
			}},
		{name: "spender added", fields: []string{"keys[].chain_rules[].tokens[].spenders[].address"}, kind: loosens, want: "(DAI): spender 0x1E0049783F008A0085193E00003D00cd54003c71 (Seaport) added, max allowance unlimited",
			change: func(d *Document) {
				hot1(d).Tokens[1].Spenders = append(hot1(d).Tokens[1].Spenders, Spender{Address: xSeaport, Label: "Seaport", MaxAllowance: "unlimited"})
			}},
		{name: "spender label changed", fields: []string{"keys[].chain_rules[].tokens[].spenders[].label"}, kind: neutral,
			change: func(d *Document) { usdcRule(d).Spenders[1].Label = "" }},
		{name: "spender cap raised", fields: []string{"keys[].chain_rules[].tokens[].spenders[].max_allowance"}, kind: loosens,
			want:   "spender 0x3333333333333333333333333333333333333333 (router) max allowance raised from 5000 USDC (5000000000 base units) to 6000 USDC",
			change: func(d *Document) { usdcRule(d).Spenders[0].MaxAllowance = "6000000000" }},
		{name: "spender cap made unlimited", fields: []string{"keys[].chain_rules[].tokens[].spenders[].max_allowance"}, kind: loosens,
			want:   "(router) max allowance raised from 5000 USDC (5000000000 base units) to unlimited",
			change: func(d *Document) { usdcRule(d).Spenders[0].MaxAllowance = "unlimited" }},
		{name: "token removed with its limit and threshold", kind: tightens, want: "threshold on chain 1 USDC 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 (above 100 USDC (100000000 base units)) removed with its chain or token",
			change: func(d *Document) {
				hot1(d).Tokens = hot1(d).Tokens[1:]
				hot(d).Limits = slices.Delete(hot(d).Limits, 2, 3)
				hot(d).Approvals.Above = hot(d).Approvals.Above[:1]
			}},

		// NFTs.
		{name: "collection added", fields: []string{"keys[].chain_rules[].nfts[].address"}, kind: loosens, want: "key hot-0 chain 1: collection 0x76BE3b62873462d2142405439777e971754E8E77 (items) added (erc1155)",
			change: func(d *Document) {
				hot1(d).NFTs = append(hot1(d).NFTs, NFTRule{Address: xItems, Label: "items", Standard: "erc1155"})
			}},
		{name: "collection label changed", fields: []string{"keys[].chain_rules[].nfts[].label"}, kind: neutral,
			change: func(d *Document) { hot1(d).NFTs[0].Label = "apes" }},
		{name: "collection standard changed", fields: []string{"keys[].chain_rules[].nfts[].standard"}, kind: both, want: "standard changed from erc721 to erc1155",
			change: func(d *Document) { hot1(d).NFTs[0].Standard = "erc1155" }},
		{name: "collection recipient added", fields: []string{"keys[].chain_rules[].nfts[].destinations[].address"}, kind: loosens, want: "(BAYC): recipient 0x1111111111111111111111111111111111111111 (ops) added",
			change: func(d *Document) {
				hot1(d).NFTs[0].Destinations = append(hot1(d).NFTs[0].Destinations, Destination{Address: xOps, Label: "ops"})
			}},
		{name: "collection recipient label changed", fields: []string{"keys[].chain_rules[].nfts[].destinations[].label"}, kind: neutral,
			change: func(d *Document) { hot1(d).NFTs[0].Destinations[0].Label = "vault" }},
		{name: "collection operator added", fields: []string{"keys[].chain_rules[].nfts[].operators[].address"}, kind: loosens, want: "(BAYC): operator 0x6666666666666666666666666666666666666666 added",
			change: func(d *Document) {
				hot1(d).NFTs[0].Operators = append(hot1(d).NFTs[0].Operators, Destination{Address: xNew})
			}},
		{name: "collection operator label changed", fields: []string{"keys[].chain_rules[].nfts[].operators[].label"}, kind: neutral,
			change: func(d *Document) { hot1(d).NFTs[0].Operators[0].Label = "OpenSea" }},

		// Generic contracts.
		{name: "contract added", fields: []string{"keys[].chain_rules[].contracts[].address"}, kind: loosens, want: "contract 0x4444444444444444444444444444444444444444 (dex): function 0x12345678 added, max value 0 ETH (0 wei)",
			change: func(d *Document) {
				hot1(d).Contracts = append(hot1(d).Contracts, ContractRule{Address: xDex, Label: "dex", Functions: []FunctionRule{{Selector: "0x12345678"}}})
			}},
		{name: "contract label changed", fields: []string{"keys[].chain_rules[].contracts[].label"}, kind: neutral,
			change: func(d *Document) { hot1(d).Contracts[0].Label = "Wrapped Ether" }},
		{name: "function added", fields: []string{"keys[].chain_rules[].contracts[].functions[].selector"}, kind: loosens, want: "(WETH): function 0x12345678 added",
			change: func(d *Document) {
				c := &hot1(d).Contracts[0]
				c.Functions = append(c.Functions, FunctionRule{Selector: "0x12345678"})
			}},
		{name: "function removed", fields: []string{"keys[].chain_rules[].contracts[].functions[].selector"}, kind: tightens, want: "(WETH): function 0x2e1a7d4d withdraw(uint256) removed",
			change: func(d *Document) { hot1(d).Contracts[0].Functions = hot1(d).Contracts[0].Functions[:1] }},
		{name: "function signature dropped", fields: []string{"keys[].chain_rules[].contracts[].functions[].signature"}, kind: neutral,
			change: func(d *Document) { hot1(d).Contracts[0].Functions[1].Signature = "" }},
		{name: "function max value raised", fields: []string{"keys[].chain_rules[].contracts[].functions[].max_value_wei"}, kind: loosens,
			want:   "function 0xd0e30db0 deposit(): max value raised from 10 ETH (10000000000000000000 wei) to 20 ETH",
			change: func(d *Document) { hot1(d).Contracts[0].Functions[0].MaxValueWei = "20000000000000000000" }},

		// Safes and MultiSendCallOnly.
		{name: "Safe added", fields: []string{"keys[].chain_rules[].safes[].address"}, kind: loosens, want: "key hot-0 chain 1: Safe 0x5Afe00000000000000000000000000000000B0b0 (sub-Safe) added",
			change: func(d *Document) {
				hot1(d).Safes = append(hot1(d).Safes, Destination{Address: xSafe2, Label: "sub-Safe"})
			}},
		{name: "Safe label changed", fields: []string{"keys[].chain_rules[].safes[].label"}, kind: neutral,
			change: func(d *Document) { hot1(d).Safes[0].Label = "main Safe" }},
		{name: "MultiSendCallOnly added", fields: []string{"keys[].chain_rules[].multisend_call_only[].address"}, kind: loosens, want: "MultiSendCallOnly 0x9641d764fc13c8B624c04430C7356C1C7C8102e2 added",
			change: func(d *Document) {
				hot1(d).MultiSendCallOnly = append(hot1(d).MultiSendCallOnly, Destination{Address: xMSCO141})
			}},
		{name: "MultiSendCallOnly label changed", fields: []string{"keys[].chain_rules[].multisend_call_only[].label"}, kind: neutral,
			change: func(d *Document) { hot1(d).MultiSendCallOnly[0].Label = "" }},

		// Rolling limits.
		{name: "limit max raised", fields: []string{"keys[].limits[].max"}, kind: loosens,
			want:   "key hot-0: limit on chain 1 native per 24h: max raised from 3 ETH (3000000000000000000 wei) to 5 ETH (5000000000000000000 wei)",
			change: func(d *Document) { hot(d).Limits[0].Max = "5000000000000000000" }},
		{name: "token limit max raised", fields: []string{"keys[].limits[].max"}, kind: loosens,
			want:   "limit on chain 1 USDC 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 per 1h: max raised from 5000 USDC (5000000000 base units) to 5000.000001 USDC",
			change: func(d *Document) { hot(d).Limits[2].Max = "5000000001" }},
		{name: "limit removed", kind: loosens, want: "key hot-0: limit on chain 1 native to 0x2222222222222222222222222222222222222222 per 24h (max 1 ETH (1000000000000000000 wei)) removed",
			change: func(d *Document) { hot(d).Limits = slices.Delete(hot(d).Limits, 1, 2) }},
		{name: "limit window shortened", fields: []string{"keys[].limits[].window"}, kind: loosens, want: "window shortened from 24h to 1h",
			change: func(d *Document) { hot(d).Limits[0].Window = "1h" }},
		{name: "limit moved to another chain", fields: []string{"keys[].limits[].chain_id"}, kind: both, want: "limit on chain 10 native per 720h (max 1 ETH (1000000000000000000 wei)) removed",
			change: func(d *Document) { hot(d).Limits[3].ChainID = 1 }},
		{name: "limit moved to another asset", fields: []string{"keys[].limits[].asset"}, kind: both, want: "limit on chain 1 USDC 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 per 1h (max 5000 USDC (5000000000 base units)) removed",
			change: func(d *Document) { hot(d).Limits[2].Asset, hot(d).Limits[2].Max = "native", "1" }},
		{name: "limit moved to another destination", fields: []string{"keys[].limits[].destination"}, kind: both, want: "limit on chain 1 native to 0x2222222222222222222222222222222222222222 per 24h",
			change: func(d *Document) { hot(d).Limits[1].Destination = xOps }},
		{name: "limit widened to every destination", fields: []string{"keys[].limits[].destination"}, kind: both, want: "to 0x2222222222222222222222222222222222222222 per 24h (max 1 ETH (1000000000000000000 wei)) removed",
			change: func(d *Document) { hot(d).Limits[1].Destination, hot(d).Limits[1].Window = "", "48h" }},
		{name: "limit added", kind: tightens, want: "key cold: limit on chain 1 native per 24h added, max 1 ETH",
			change: func(d *Document) {
				cold(d).Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: "1000000000000000000"}}
			}},
		{name: "limit window lengthened", fields: []string{"keys[].limits[].window"}, kind: tightens, want: "removed, implied by the limit per 48h of 3 ETH",
			change: func(d *Document) { hot(d).Limits[0].Window = "48h" }},
		{name: "limit raised but implied by a longer one", kind: paperTightens, want: "raised to 5 ETH (5000000000000000000 wei), implied by the limit per 48h of 3 ETH",
			old: func(d *Document) {
				hot(d).Limits = append(hot(d).Limits, stateful.LimitRule{ChainID: 1, Asset: "native", Window: "48h", Max: "3000000000000000000"})
			},
			change: func(d *Document) { hot(d).Limits[0].Max = "5000000000000000000" }},

		// Velocity.
		{name: "velocity raised", fields: []string{"keys[].velocity.max_transactions"}, kind: loosens, want: "velocity for key hot-0: max transactions raised 100 → 101",
			change: func(d *Document) { hot(d).Velocity.MaxTransactions = 101 }},
		{name: "velocity window shortened", fields: []string{"keys[].velocity.window"}, kind: loosens, want: "velocity for key hot-0: window shortened 1h → 59m",
			change: func(d *Document) { hot(d).Velocity.Window = "59m" }},
		{name: "velocity removed", kind: loosens, want: "velocity for key hot-0 removed (was 100 transactions per 1h)",
			change: func(d *Document) { hot(d).Velocity = nil }},

		// Approvals.
		{name: "approval threshold raised", fields: []string{"keys[].approvals.above[].amount"}, kind: loosens,
			want:   "approvals for key hot-0: threshold on chain 1 native raised from 0.5 ETH (500000000000000000 wei) to 1 ETH (1000000000000000000 wei)",
			change: func(d *Document) { hot(d).Approvals.Above[0].Amount = "1000000000000000000" }},
		{name: "approval threshold removed", kind: loosens, want: "approvals for key hot-0: threshold on chain 1 native (above 0.5 ETH (500000000000000000 wei)) removed",
			change: func(d *Document) { hot(d).Approvals.Above = hot(d).Approvals.Above[1:] }},
		{name: "approval threshold moved to another chain", fields: []string{"keys[].approvals.above[].chain_id"}, kind: both, want: "threshold on chain 1 native (above",
			change: func(d *Document) { hot(d).Approvals.Above[0].ChainID = 10 }},
		{name: "approval threshold moved to another asset", fields: []string{"keys[].approvals.above[].asset"}, kind: both, want: "threshold on chain 1 USDC",
			change: func(d *Document) { hot(d).Approvals.Above[1].Asset = xDAI }},
		{name: "quorum lowered", fields: []string{"keys[].approvals.quorum"}, kind: loosens, want: "approvals for key hot-0: quorum lowered 2 → 1",
			change: func(d *Document) { hot(d).Approvals.Quorum = 1 }},
		{name: "approver added", kind: loosens, want: "approvals for key hot-0: approver dave added (public key ed25519:",
			change: func(d *Document) {
				hot(d).Approvals.Approvers = append(hot(d).Approvals.Approvers, stateful.Approver{Name: "dave", Scheme: "ed25519", PublicKey: seededKey("dave")})
			}},
		{name: "approver renamed", fields: []string{"keys[].approvals.approvers[].name"}, kind: neutral,
			change: func(d *Document) { hot(d).Approvals.Approvers[2].Name = "caroline" }},
		{name: "approver key changed", fields: []string{"keys[].approvals.approvers[].public_key"}, kind: both, want: "approvals for key hot-0: approver bob: public key changed",
			change: func(d *Document) { hot(d).Approvals.Approvers[1].PublicKey = seededKey("mallory") }},
		{name: "approver scheme and key changed", fields: []string{"keys[].approvals.approvers[].scheme"}, kind: both, want: "approver bob: public key changed from ed25519:",
			change: func(d *Document) {
				hot(d).Approvals.Approvers[1].Scheme, hot(d).Approvals.Approvers[1].PublicKey = "p256", p256Key()
			}},
		{name: "approvals removed with their only chain", kind: tightens, want: "approvals for key cold removed with their chains or tokens",
			old: func(d *Document) {
				cold(d).Chains = []uint64{1, 10}
				cold(d).Approvals = &stateful.ApprovalRule{
					Above:     []stateful.ApprovalThreshold{{ChainID: 10, Asset: "native", Amount: "1"}},
					Quorum:    1,
					Approvers: []stateful.Approver{{Name: "dave", Scheme: "ed25519", PublicKey: seededKey("dave")}},
				}
			},
			change: func(d *Document) { cold(d).Chains, cold(d).Approvals = []uint64{1}, nil }},
		{name: "approvals removed", kind: loosens, want: "approvals for key hot-0 removed (was quorum 2 of 3)",
			change: func(d *Document) { hot(d).Approvals = nil }},

		// Freezes.
		{name: "freeze refusals raised", fields: []string{"keys[].freeze.refusals"}, kind: loosens, want: "freeze for key hot-0: refusals threshold raised 100 → 200",
			change: func(d *Document) { hot(d).Freeze.Refusals = 200 }},
		{name: "refusals no longer freeze", fields: []string{"keys[].freeze.refusals"}, kind: loosens, want: "freeze for key hot-0: refusals no longer freeze (was 100 within 1h)",
			change: func(d *Document) { hot(d).Freeze.Refusals, hot(d).Freeze.Window = 0, "" }},
		{name: "freeze window shortened", fields: []string{"keys[].freeze.window"}, kind: loosens, want: "freeze for key hot-0: refusals window shortened 1h → 30m",
			change: func(d *Document) { hot(d).Freeze.Window = "30m" }},
		{name: "freeze on limit breach turned off", fields: []string{"keys[].freeze.on_limit_breach"}, kind: loosens, want: "freeze for key hot-0: on_limit_breach turned off",
			change: func(d *Document) { hot(d).Freeze.OnLimitBreach = false }},
		{name: "freeze scope narrowed", fields: []string{"keys[].freeze.scope"}, kind: loosens, want: "freeze for key hot-0: scope narrowed from all to key",
			change: func(d *Document) { hot(d).Freeze.Scope = "key" }},
		{name: "freeze removed", kind: loosens, want: "freeze for key hot-0 removed",
			change: func(d *Document) { hot(d).Freeze = nil }},

		// Assets name tokens; caps are in base units.
		{name: "asset symbol changed", fields: []string{"assets[].symbol"}, kind: neutral, change: func(d *Document) { d.Assets[0].Symbol = "USDC.e" }},
		{name: "asset decimals changed", fields: []string{"assets[].decimals"}, kind: neutral, change: func(d *Document) { d.Assets[0].Decimals = 18 }},
		{name: "asset moved to another chain", fields: []string{"assets[].chain_id"}, kind: neutral, change: func(d *Document) { d.Assets[0].ChainID = 10 }},
		{name: "asset moved to another address", fields: []string{"assets[].address"}, kind: neutral, change: func(d *Document) { d.Assets[0].Address = xDAI }},
		{name: "asset added", kind: neutral,
			change: func(d *Document) {
				d.Assets = append(d.Assets, Asset{ChainID: 1, Address: xDAI, Symbol: "DAI", Decimals: 18})
			}},

		// One removal and one addition.
		{name: "mixed: a destination swapped for another", kind: both, want: "key hot-0 chain 1: native destination 0x6666666666666666666666666666666666666666 (new) added",
			change: func(d *Document) {
				hot(d).NativeTransfers.Destinations[0] = Destination{Address: xNew, Label: "new"}
			}},
	}
}

// TestDiffCases runs every case, and its reverse.
func TestDiffCases(t *testing.T) {
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			od := cloneDoc(t, diffBase())
			if tc.old != nil {
				tc.old(&od)
			}
			nd := cloneDoc(t, od)
			tc.change(&nd)
			op, np := mustCompile(t, "old", od), mustCompile(t, "new", nd)

			c := Diff(op, np)
			if !reflect.DeepEqual(c, Diff(op, np)) {
				t.Fatal("Diff is not deterministic")
			}
			r := Diff(np, op)
			t.Logf("loosening: %q", c.Loosening)
			t.Logf("tightening: %q", c.Tightening)
			switch tc.kind {
			case loosens, both:
				if !c.TimeLocked() {
					t.Fatalf("not time locked: %+v", c)
				}
				checkHas(t, "Loosening", c.Loosening, tc.want)
				if tc.kind == loosens && (r.TimeLocked() || len(r.Tightening) == 0) {
					t.Fatalf("the reverse change should only tighten: %+v", r)
				}
				if tc.kind == both && !r.TimeLocked() {
					t.Fatalf("the reverse change should be time locked too: %+v", r)
				}
			case tightens, paperTightens:
				if c.TimeLocked() {
					t.Fatalf("time locked: %+v", c)
				}
				checkHas(t, "Tightening", c.Tightening, tc.want)
				if r.TimeLocked() != (tc.kind == tightens) {
					t.Fatalf("the reverse change: time locked %v: %+v", r.TimeLocked(), r)
				}
			case neutral:
				if c.TimeLocked() || len(c.Tightening) != 0 {
					t.Fatalf("want a neutral change: %+v", c)
				}
				if r.TimeLocked() || len(r.Tightening) != 0 {
					t.Fatalf("want a neutral reverse change: %+v", r)
				}
			}
		})
	}
}

func checkHas(t *testing.T, list string, msgs []string, want string) {
	t.Helper()
	if want == "" {
		t.Fatal("the case names no message")
	}
	for _, m := range msgs {
		if strings.Contains(m, want) {
			return
		}
	}
	t.Fatalf("%s %q: no message contains %q", list, msgs, want)
}

func cloneDoc(t testing.TB, d Document) Document {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var out Document
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDiffMixed checks that a change with a removal and an addition is time
// locked and lists both.
func TestDiffMixed(t *testing.T) {
	od := diffBase()
	nd := cloneDoc(t, od)
	hot(&nd).NativeTransfers.Destinations[0] = Destination{Address: xNew, Label: "new"}
	c := Diff(mustCompile(t, "old", od), mustCompile(t, "new", nd))
	if !c.TimeLocked() {
		t.Fatalf("not time locked: %+v", c)
	}
	checkHas(t, "Loosening", c.Loosening, "native destination 0x6666666666666666666666666666666666666666 (new) added")
	checkHas(t, "Tightening", c.Tightening, "native destination 0x1111111111111111111111111111111111111111 (ops) removed")
	// Both chains of the key-wide list, in order.
	want := []string{
		"key hot-0 chain 1: native destination 0x6666666666666666666666666666666666666666 (new) added",
		"key hot-0 chain 10: native destination 0x6666666666666666666666666666666666666666 (new) added",
	}
	if !slices.Equal(c.Loosening, want) {
		t.Fatalf("Loosening %q, want %q", c.Loosening, want)
	}
}

// TestDiffSpelling checks that what does not change the rules (address case,
// list order, where a native list is written) does not count.
func TestDiffSpelling(t *testing.T) {
	od := diffBase()
	nd := cloneDoc(t, od)
	upper := func(s *string) { *s = "0x" + strings.ToUpper((*s)[2:]) }
	h := hot(&nd)
	slices.Reverse(h.Chains)
	slices.Reverse(h.NativeTransfers.Destinations)
	for i := range h.NativeTransfers.Destinations {
		upper(&h.NativeTransfers.Destinations[i].Address)
	}
	c1 := hot1(&nd)
	slices.Reverse(c1.Tokens)
	for i := range c1.Tokens {
		upper(&c1.Tokens[i].Address)
		slices.Reverse(c1.Tokens[i].Spenders)
	}
	slices.Reverse(c1.Contracts[0].Functions)
	slices.Reverse(h.Limits)
	for i := range h.Limits {
		if h.Limits[i].Asset != "native" {
			upper(&h.Limits[i].Asset)
		}
	}
	slices.Reverse(h.Approvals.Above)
	slices.Reverse(h.Approvals.Approvers)
	h.Approvals.Approvers[0].PublicKey = strings.ToUpper(h.Approvals.Approvers[0].PublicKey)
	nd.Clients[0].PublicKey = strings.ToUpper(nd.Clients[0].PublicKey)
	slices.Reverse(nd.Clients)
	slices.Reverse(nd.Keys)
	c := Diff(mustCompile(t, "old", od), mustCompile(t, "new", nd))
	if c.TimeLocked() || len(c.Tightening) != 0 {
		t.Fatalf("want a neutral change: %+v", c)
	}
}

// TestDiffNil checks that a nil policy allows nothing.
func TestDiffNil(t *testing.T) {
	p := mustCompile(t, "base", diffBase())
	if c := Diff(nil, p); !c.TimeLocked() {
		t.Fatalf("from nothing: %+v", c)
	}
	if c := Diff(p, nil); c.TimeLocked() || len(c.Tightening) == 0 {
		t.Fatalf("to nothing: %+v", c)
	}
	if c := Diff(nil, nil); c.TimeLocked() || len(c.Tightening) != 0 {
		t.Fatalf("nothing to nothing: %+v", c)
	}
}

// TestDiffDestinationSubsets is a property test: for random sets of native
// destinations and token recipients (random labels too), the change is time
// locked exactly when a new set is not within the old one, and lists
// tightenings exactly when an old set is not within the new one.
func TestDiffDestinationSubsets(t *testing.T) {
	const pool = 10
	addrs := make([]string, pool)
	for i := range addrs {
		addrs[i] = "0x" + strings.Repeat("0", 38) + hex.EncodeToString([]byte{byte(i + 1)})
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	set := func(mask uint) []Destination {
		var ds []Destination
		for i := range pool {
			if mask&(1<<i) != 0 {
				ds = append(ds, Destination{Address: addrs[i], Label: []string{"", "a", "b"}[rng.IntN(3)]})
			}
		}
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		return ds
	}
	doc := func(native, token uint) Document {
		d := diffBase()
		hot(&d).NativeTransfers.Destinations = set(native)
		usdcRule(&d).Transfers.Destinations = set(token)
		return d
	}
	subset := func(a, b uint) bool { return a&^b == 0 }
	for range 1000 {
		on, nn := rng.UintN(1<<pool), rng.UintN(1<<pool)
		ot, nt := 1+rng.UintN(1<<pool-1), 1+rng.UintN(1<<pool-1) // recipients: at least one
		if rng.IntN(4) == 0 {
			nn = on & rng.UintN(1<<pool) // a subset, more often than by chance
		}
		c := Diff(mustCompile(t, "old", doc(on, ot)), mustCompile(t, "new", doc(nn, nt)))
		if want := !(subset(nn, on) && subset(nt, ot)); c.TimeLocked() != want {
			t.Fatalf("native %010b -> %010b, token %010b -> %010b: TimeLocked %v, want %v: %+v", on, nn, ot, nt, c.TimeLocked(), want, c)
		}
		if want := !(subset(on, nn) && subset(ot, nt)); (len(c.Tightening) > 0) != want {
			t.Fatalf("native %010b -> %010b, token %010b -> %010b: tightening %q", on, nn, ot, nt, c.Tightening)
		}
	}
}

// TestDiffLimitProperty is a property test of one rolling limit: the change
// is time locked unless the new limit's window is at least as long and its
// max at most as high.
func TestDiffLimitProperty(t *testing.T) {
	windows := []string{"1m", "59m", "1h", "24h", "48h", "720h"}
	rng := mrand.New(mrand.NewPCG(3, 4))
	for range 500 {
		ow, nw := rng.IntN(len(windows)), rng.IntN(len(windows))
		om, nm := 1+rng.IntN(5), 1+rng.IntN(5)
		gone := rng.IntN(8) == 0
		od, nd := diffBase(), diffBase()
		hot(&od).Limits[1].Window, hot(&od).Limits[1].Max = windows[ow], big.NewInt(int64(om)).String()
		hot(&nd).Limits[1].Window, hot(&nd).Limits[1].Max = windows[nw], big.NewInt(int64(nm)).String()
		if gone {
			hot(&nd).Limits = slices.Delete(hot(&nd).Limits, 1, 2)
		}
		c := Diff(mustCompile(t, "old", od), mustCompile(t, "new", nd))
		if want := gone || nw < ow || nm > om; c.TimeLocked() != want {
			t.Fatalf("%s/%d -> %s/%d (gone %v): TimeLocked %v, want %v: %+v", windows[ow], om, windows[nw], nm, gone, c.TimeLocked(), want, c)
		}
	}
}

// docPaths lists the JSON paths of the leaf fields of t, as
// classifiedFields writes them.
func docPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" {
				docPaths(f.Type, prefix, out) // encoding/json flattens it
				continue
			}
			if name == "" {
				name = f.Name
			}
			if prefix != "" {
				name = prefix + "." + name
			}
			docPaths(f.Type, name, out)
		}
		return
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct {
			docPaths(e, prefix+"[]", out)
			return
		}
	}
	out[prefix] = true
}

// TestDiffClassifiesEveryField fails when a field is added to the Document
// types (or removed) without classifiedFields saying how Diff classifies
// it, and when a classified field outside the stateful sections has no
// case in diffCases.
func TestDiffClassifiesEveryField(t *testing.T) {
	paths := map[string]bool{}
	docPaths(reflect.TypeFor[Document](), "", paths)
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		if _, ok := classifiedFields[p]; !ok {
			t.Errorf("document field %s is not classified: add it to classifiedFields in diff.go, handle it in Diff, and add a case to diffCases", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(classifiedFields)) {
		if !paths[p] {
			t.Errorf("classifiedFields lists %s, which is no field of Document", p)
		}
	}
	covered := map[string]bool{}
	for _, tc := range diffCases() {
		for _, f := range tc.fields {
			if _, ok := classifiedFields[f]; !ok {
				t.Errorf("case %q names %s, which classifiedFields does not list", tc.name, f)
			}
			covered[f] = true
		}
	}
	statefulFields := stateful.DiffFields()
	for _, p := range slices.Sorted(maps.Keys(classifiedFields)) {
		// The stateful sections' fields are package stateful's: its
		// TestDiffCases has a case for each (the cases here that change
		// them check the classification in a whole policy).
		if sp, ok := strings.CutPrefix(p, "keys[]."); ok && statefulFields[sp] != "" {
			continue
		}
		if !covered[p] {
			t.Errorf("no case of diffCases changes %s", p)
		}
	}
}

// TestDiffUnclassifiedField checks the run-time guard: a field the
// classifier does not know counts as a loosening when it changes.
func TestDiffUnclassifiedField(t *testing.T) {
	od := diffBase()
	nd := cloneDoc(t, od)
	hot1(&nd).Fees.MaxGasLimit = 1 // a tightening, if the classifier knew the field
	op, np := mustCompile(t, "old", od), mustCompile(t, "new", nd)
	if got := unclassified(op.canon, np.canon, classifiedFields); len(got) != 0 {
		t.Fatalf("with every field classified: %q", got)
	}
	known := maps.Clone(classifiedFields)
	delete(known, "keys[].chain_rules[].fees.max_gas_limit")
	delete(known, "clients[].name")
	got := unclassified(op.canon, np.canon, known)
	if want := []string{"field keys[].chain_rules[].fees.max_gas_limit changed, which the classifier does not know"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := unclassified(op.canon, []byte("{"), classifiedFields); len(got) != 1 {
		t.Fatalf("an undecodable document: %q", got)
	}
	if got := unclassified(op.canon, []byte(`{"version":5,"extra":{"a":[1,2]}}`), classifiedFields); !slices.Contains(got, "field extra.a changed, which the classifier does not know") {
		t.Fatalf("a new section: %q", got)
	}
	if Diff(op, np).TimeLocked() {
		t.Fatal("lowering the gas limit cap is not a loosening")
	}
}
