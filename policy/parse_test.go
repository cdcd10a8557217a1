package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// approverKey returns a fresh approver key of the given scheme, as the
// document writes it.
func approverKey(t testing.TB, scheme stamp.Scheme) (string, stamp.PublicKey) {
	t.Helper()
	if scheme == stamp.P256 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s, err := stamp.NewP256Signer(k)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(s.PublicKey().Key), s.PublicKey()
	}
	pub := client(t)
	return hex.EncodeToString(pub.Key), pub
}

// statefulDoc is fullDoc with every stateful section on hot-0.
func statefulDoc(t testing.TB, c stamp.PublicKey) (policy.Document, []stamp.PublicKey) {
	d := fullDoc(c)
	edHex, ed := approverKey(t, stamp.Ed25519)
	pHex, pk := approverKey(t, stamp.P256)
	k := &d.Keys[0]
	k.Limits = []stateful.LimitRule{
		{ChainID: 1, Asset: "native", Window: "24h", Max: "3000000000000000000"},
		{ChainID: 1, Asset: "native", Destination: treasury, Window: "24h", Max: "1000000000000000000"},
		{ChainID: 1, Asset: usdc, Window: "1h30m", Max: "5000000000"},
		{ChainID: 10, Asset: "native", Window: "720h", Max: "1"},
	}
	k.Velocity = &stateful.VelocityRule{Window: "1h", MaxTransactions: 100}
	k.Approvals = &stateful.ApprovalRule{
		Above:  []stateful.ApprovalThreshold{{ChainID: 1, Asset: "native", Amount: "500000000000000000"}, {ChainID: 1, Asset: usdc, Amount: "100000000"}},
		Quorum: 2,
		Approvers: []stateful.Approver{
			{Name: "alice", Scheme: "ed25519", PublicKey: edHex},
			{Name: "bob", Scheme: "p256", PublicKey: pHex},
		},
	}
	k.Freeze = &stateful.FreezeRule{Refusals: 10, Window: "1m", OnLimitBreach: true, Scope: "all"}
	return d, []stamp.PublicKey{ed, pk}
}

func TestStatefulAccessors(t *testing.T) {
	c := client(t)
	d, approvers := statefulDoc(t, c)
	p := compile(t, d)
	r, ok := p.KeyRules("hot-0")
	if !ok {
		t.Fatal("hot-0 has no rules")
	}
	lims := r.Limits
	if len(lims) != 4 {
		t.Fatalf("%d limits", len(lims))
	}
	tr := a(t, treasury)
	want := []stateful.Limit{
		{ChainID: 1, Window: 24 * time.Hour, Max: bi("3000000000000000000")},
		{ChainID: 1, Destination: &tr, Window: 24 * time.Hour, Max: bi("1000000000000000000")},
		{ChainID: 1, Asset: a(t, usdc), Window: 90 * time.Minute, Max: big.NewInt(5e9)},
		{ChainID: 10, Window: 720 * time.Hour, Max: big.NewInt(1)},
	}
	for i, w := range want {
		g := lims[i]
		if g.ChainID != w.ChainID || g.Asset != w.Asset || g.Window != w.Window || g.Max.Cmp(w.Max) != 0 ||
			(g.Destination == nil) != (w.Destination == nil) || (g.Destination != nil && *g.Destination != *w.Destination) {
			t.Errorf("limit %d = %+v, want %+v", i, g, w)
		}
	}
	if v := r.Velocity; v == nil || v.Window != time.Hour || v.MaxTransactions != 100 {
		t.Errorf("velocity %+v", v)
	}
	ap := r.Approvals
	if ap == nil || ap.Quorum != 2 || len(ap.Approvers) != 2 || ap.Approvers[0].Name != "alice" || !ap.Approvers[0].PublicKey.Equal(approvers[0]) ||
		!ap.Approvers[1].PublicKey.Equal(approvers[1]) || len(ap.Above) != 2 || ap.Above[1].Asset != a(t, usdc) || ap.Above[1].Amount.Int64() != 1e8 {
		t.Fatalf("approvals %+v", ap)
	}
	if f := r.Freeze; f == nil || f.Refusals != 10 || f.Window != time.Minute || !f.OnLimitBreach || f.Scope != stateful.FreezeAll {
		t.Errorf("freeze %+v", f)
	}
	// Copies: changing them changes nothing.
	lims[0].Max.SetInt64(0)
	*lims[1].Destination = ethtx.Address{}
	ap.Above[0].Amount.SetInt64(0)
	ap.Approvers[0].PublicKey.Key[0] ^= 1
	r.Velocity.MaxTransactions = 1
	r.Freeze.Refusals = 1
	again, _ := p.KeyRules("hot-0")
	if again.Limits[0].Max.Sign() == 0 || *again.Limits[1].Destination != tr || again.Approvals.Above[0].Amount.Sign() == 0 ||
		!again.Approvals.Approvers[0].PublicKey.Equal(approvers[0]) || again.Velocity.MaxTransactions != 100 || again.Freeze.Refusals != 10 {
		t.Error("KeyRules returned the policy's own values")
	}
	if r, ok := p.KeyRules("bare"); !ok || r.Limits != nil || r.Velocity != nil || r.Approvals != nil || r.Freeze != nil {
		t.Errorf("bare: %+v %v, want no stateful rules", r, ok)
	}
	if r, ok := p.KeyRules("nobody"); ok || r.Limits != nil || r.Velocity != nil || r.Approvals != nil || r.Freeze != nil {
		t.Errorf("nobody: %+v %v, want no key", r, ok)
	}
	if ids := p.KeyIDs(); strings.Join(ids, ",") != "hot-0,split,bare,raw" {
		t.Errorf("KeyIDs = %v", ids)
	}
	// A freeze on limit breaches only.
	d.Keys[0].Freeze = &stateful.FreezeRule{OnLimitBreach: true, Scope: "key"}
	if r, _ := compile(t, d).KeyRules("hot-0"); r.Freeze == nil || r.Freeze.Refusals != 0 || r.Freeze.Window != 0 || r.Freeze.Scope != stateful.FreezeKey {
		t.Errorf("freeze %+v", r.Freeze)
	}
}

// TestParseRefusalsFull covers the validation of every section beyond the
// basic ones of TestParseRefusals.
func TestParseRefusalsFull(t *testing.T) {
	c := client(t)
	base, _ := statefulDoc(t, c)
	clientHex := hex.EncodeToString(c.Key)
	cr := func(d *policy.Document) *policy.ChainRule { return &d.Keys[0].ChainRules[0] }
	for _, tt := range []struct {
		name string
		f    func(d *policy.Document)
		msg  string
	}{
		{"chain rule for a chain not in chains", func(d *policy.Document) { cr(d).ChainID = 5 }, "not in chains"},
		{"chain rule twice", func(d *policy.Document) {
			d.Keys[0].ChainRules = append(d.Keys[0].ChainRules, policy.ChainRule{ChainID: 1})
		}, "listed twice"},
		{"native transfers for the key and the chain", func(d *policy.Document) { cr(d).NativeTransfers = d.Keys[0].NativeTransfers }, "one or the other"},
		{"fees without gas limit", func(d *policy.Document) { cr(d).Fees.MaxGasLimit = 0 }, "fees.max_gas_limit"},
		{"fees without gas price", func(d *policy.Document) { cr(d).Fees.MaxGasPriceWei = "" }, "fees.max_gas_price_wei"},
		{"fees with a leading zero", func(d *policy.Document) { cr(d).Fees.MaxFeePerGasWei = "01" }, "fees.max_fee_per_gas_wei"},
		{"token twice", func(d *policy.Document) { cr(d).Tokens = append(cr(d).Tokens, cr(d).Tokens[0]) }, "listed twice"},
		{"token zero address", func(d *policy.Document) { cr(d).Tokens[0].Address = zeroAddr }, "zero address"},
		{"token bad checksum", func(d *policy.Document) { cr(d).Tokens[0].Address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eb48" }, "tokens[0].address"},
		{"token label with a newline", func(d *policy.Document) { cr(d).Tokens[0].Label = "a\nb" }, "tokens[0].label"},
		{"token transfers without destinations", func(d *policy.Document) { cr(d).Tokens[0].Transfers.Destinations = nil }, "transfers.destinations: empty"},
		{"token transfers cap negative", func(d *policy.Document) { cr(d).Tokens[0].Transfers.MaxPerTransaction = "-1" }, "max_per_transaction"},
		{"token transfers to zero", func(d *policy.Document) {
			cr(d).Tokens[0].Transfers.Destinations = []policy.Destination{{Address: zeroAddr}}
		}, "zero address"},
		{"spender twice", func(d *policy.Document) {
			cr(d).Tokens[0].Spenders = append(cr(d).Tokens[0].Spenders, cr(d).Tokens[0].Spenders[0])
		}, "listed twice"},
		{"spender cap word", func(d *policy.Document) { cr(d).Tokens[0].Spenders[0].MaxAllowance = "infinite" }, "unlimited"},
		{"spender cap empty", func(d *policy.Document) { cr(d).Tokens[0].Spenders[0].MaxAllowance = "" }, "max_allowance"},
		{"spender cap 2^256", func(d *policy.Document) {
			cr(d).Tokens[0].Spenders[0].MaxAllowance = new(big.Int).Lsh(big.NewInt(1), 256).String()
		}, "2^256"},
		{"NFT standard", func(d *policy.Document) { cr(d).NFTs[0].Standard = "erc20" }, "standard"},
		{"NFT that is a token", func(d *policy.Document) { cr(d).NFTs[0].Address = usdc }, "also an ERC-20"},
		{"NFT twice", func(d *policy.Document) { cr(d).NFTs = append(cr(d).NFTs, cr(d).NFTs[0]) }, "listed twice"},
		{"NFT operator twice", func(d *policy.Document) {
			cr(d).NFTs[0].Operators = append(cr(d).NFTs[0].Operators, cr(d).NFTs[0].Operators[0])
		}, "listed twice"},
		{"contract without functions", func(d *policy.Document) { cr(d).Contracts[0].Functions = nil }, "functions"},
		{"selector upper case", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0xABCDEF12" }, "lower-case"},
		{"selector short", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x123456" }, "selector"},
		{"selector twice", func(d *policy.Document) {
			cr(d).Contracts[0].Functions = append(cr(d).Contracts[0].Functions, cr(d).Contracts[0].Functions[0])
		}, "listed twice"},
		{"selector of transfer", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0xa9059cbb" }, "transfer"},
		{"selector of approve", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x095ea7b3" }, "approve"},
		{"selector of execTransaction", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x6a761202" }, "execTransaction"},
		{"selector of multiSend", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x8d80ff0a" }, "multiSend"},
		{"selector of setApprovalForAll", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0xa22cb465" }, "setApprovalForAll"},
		{"selector of Permit2 approve", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x87517c45" }, "Permit2 approve"},
		{"selector of approveHash", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0xd4d9bdcd" }, "approveHash"},
		{"selector of execTransactionFromModule", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x468721a7" }, "execTransactionFromModule"},
		{"selector of safeBatchTransferFrom", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].Selector = "0x2eb2c2d6" }, "safeBatchTransferFrom"},
		{"signature of another selector", func(d *policy.Document) { cr(d).Contracts[1].Functions[0].Signature = "deposit(uint256)" }, "has selector"},
		{"value cap with a leading zero", func(d *policy.Document) { cr(d).Contracts[0].Functions[0].MaxValueWei = "00" }, "max_value_wei"},
		{"contract that is a Safe", func(d *policy.Document) { cr(d).Contracts[0].Address = safeA }, "allowlisted Safe"},
		{"contract that is a MultiSendCallOnly", func(d *policy.Document) { cr(d).Contracts[0].Address = msco }, "MultiSendCallOnly"},
		{"contract twice", func(d *policy.Document) { cr(d).Contracts = append(cr(d).Contracts, cr(d).Contracts[0]) }, "listed twice"},
		{"Safe twice", func(d *policy.Document) { cr(d).Safes = append(cr(d).Safes, cr(d).Safes[0]) }, "listed twice"},
		{"Safe that is a token", func(d *policy.Document) { cr(d).Safes[0].Address = usdc }, "safes"},
		{"Safe that is a MultiSendCallOnly", func(d *policy.Document) { cr(d).Safes[0].Address = msco }, "safes"},
		{"MultiSendCallOnly that is a token", func(d *policy.Document) { cr(d).MultiSendCallOnly[0].Address = weth }, "multisend_call_only"},
		{"MultiSendCallOnly zero", func(d *policy.Document) { cr(d).MultiSendCallOnly[0].Address = zeroAddr }, "zero address"},
		{"limit on a chain not in chains", func(d *policy.Document) { d.Keys[0].Limits[0].ChainID = 5 }, "limits[0].chain_id"},
		{"limit on an unknown asset", func(d *policy.Document) { d.Keys[0].Limits[0].Asset = "ETH" }, "native"},
		{"limit on a token not the key's", func(d *policy.Document) { d.Keys[0].Limits[0].Asset = bayc }, "not one of the key's tokens"},
		{"limit on a token of another chain", func(d *policy.Document) { d.Keys[0].Limits[3].Asset = usdc }, "not one of the key's tokens"},
		{"limit window of days", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "1d" }, "window"},
		{"limit window of milliseconds", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "90000ms" }, "window"},
		{"limit window too short", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "59s" }, "outside"},
		{"limit window too long", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "721h" }, "outside"},
		{"limit window with a leading zero", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "01h" }, "window"},
		{"limit window with a fraction", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "1.5h" }, "window"},
		{"limit window units out of order", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "30m1h" }, "window"},
		{"limit window negative", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "-1h" }, "window"},
		{"limit window empty", func(d *policy.Document) { d.Keys[0].Limits[0].Window = "" }, "window"},
		{"limit max missing", func(d *policy.Document) { d.Keys[0].Limits[0].Max = "" }, "limits[0].max"},
		{"limit destination bad", func(d *policy.Document) { d.Keys[0].Limits[0].Destination = "0x12" }, "destination"},
		{"limit twice", func(d *policy.Document) { d.Keys[0].Limits = append(d.Keys[0].Limits, d.Keys[0].Limits[1]) }, "listed twice"},
		{"velocity zero", func(d *policy.Document) { d.Keys[0].Velocity.MaxTransactions = 0 }, "max_transactions"},
		{"velocity window", func(d *policy.Document) { d.Keys[0].Velocity.Window = "31d" }, "velocity.window"},
		{"approvals without thresholds", func(d *policy.Document) { d.Keys[0].Approvals.Above = nil }, "above"},
		{"approvals threshold twice", func(d *policy.Document) {
			d.Keys[0].Approvals.Above = append(d.Keys[0].Approvals.Above, d.Keys[0].Approvals.Above[0])
		}, "listed twice"},
		{"approvals threshold chain", func(d *policy.Document) { d.Keys[0].Approvals.Above[0].ChainID = 5 }, "not in chains"},
		{"approvals threshold amount", func(d *policy.Document) { d.Keys[0].Approvals.Above[0].Amount = "1e18" }, "amount"},
		{"quorum 0", func(d *policy.Document) { d.Keys[0].Approvals.Quorum = 0 }, "quorum"},
		{"quorum above the approvers", func(d *policy.Document) { d.Keys[0].Approvals.Quorum = 3 }, "quorum"},
		{"no approvers", func(d *policy.Document) { d.Keys[0].Approvals.Approvers = nil }, "approvers"},
		{"approver name twice", func(d *policy.Document) { d.Keys[0].Approvals.Approvers[1].Name = "alice" }, "listed twice"},
		{"approver key twice", func(d *policy.Document) {
			d.Keys[0].Approvals.Approvers[1] = d.Keys[0].Approvals.Approvers[0]
			d.Keys[0].Approvals.Approvers[1].Name = "carol"
		}, "same key"},
		{"approver bad name", func(d *policy.Document) { d.Keys[0].Approvals.Approvers[0].Name = "alice smith" }, "name"},
		{"approver bad scheme", func(d *policy.Document) { d.Keys[0].Approvals.Approvers[0].Scheme = "rsa" }, "approvers[0]"},
		{"approver is a client", func(d *policy.Document) { d.Keys[0].Approvals.Approvers[0].PublicKey = clientHex }, "client"},
		{"approver small-order key", func(d *policy.Document) {
			d.Keys[0].Approvals.Approvers[0].PublicKey = "0100000000000000000000000000000000000000000000000000000000000000"
		}, "small order"},
		{"approver with two names", func(d *policy.Document) {
			d.Keys[2].Approvals = &stateful.ApprovalRule{Above: []stateful.ApprovalThreshold{{ChainID: 1, Asset: "native", Amount: "1"}}, Quorum: 1,
				Approvers: []stateful.Approver{{Name: "mallory", Scheme: "ed25519", PublicKey: d.Keys[0].Approvals.Approvers[0].PublicKey}}}
		}, "one key, one name"},
		{"freeze scope", func(d *policy.Document) { d.Keys[0].Freeze.Scope = "everything" }, "freeze.scope"},
		{"freeze without window", func(d *policy.Document) { d.Keys[0].Freeze.Window = "" }, "freeze.window"},
		{"freeze that never freezes", func(d *policy.Document) { d.Keys[0].Freeze = &stateful.FreezeRule{Scope: "key"} }, "never freeze"},
		{"freeze window without refusals", func(d *policy.Document) {
			d.Keys[0].Freeze = &stateful.FreezeRule{Window: "1h", OnLimitBreach: true, Scope: "key"}
		}, "only with refusals"},
		{"client small-order key", func(d *policy.Document) {
			d.Clients[0].PublicKey = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
		}, "small order"},
		{"client key listed twice", func(d *policy.Document) { d.Clients[0].Keys = append(d.Clients[0].Keys, "bare") }, "listed twice"},
		{"asset symbol not UTF-8", func(d *policy.Document) { d.Assets[0].Symbol = "\xff" }, "symbol"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(base)
			var d policy.Document
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if _, err := policy.Compile(d); err != nil {
				t.Fatalf("the base document is refused: %v", err)
			}
			tt.f(&d)
			_, err := policy.Compile(d)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("err = %v, want a policy error mentioning %q", err, tt.msg)
			}
		})
	}
}

// TestSizeCaps checks that every list has a cap.
func TestSizeCaps(t *testing.T) {
	c := client(t)
	addr := func(i int) string { return fmt.Sprintf("0x%040x", i+1) }
	dests := func(n int) []policy.Destination {
		out := make([]policy.Destination, n)
		for i := range out {
			out[i] = policy.Destination{Address: addr(i)}
		}
		return out
	}
	cr := func(d *policy.Document) *policy.ChainRule { return &d.Keys[0].ChainRules[0] }
	for _, tt := range []struct {
		name string
		f    func(d *policy.Document)
		msg  string
	}{
		{"native destinations", func(d *policy.Document) { d.Keys[0].NativeTransfers.Destinations = dests(4097) }, "more than 4096"},
		{"chains", func(d *policy.Document) {
			d.Keys[0].Chains = nil
			for i := range 65 {
				d.Keys[0].Chains = append(d.Keys[0].Chains, uint64(i+1))
			}
		}, "chains"},
		{"chain rules", func(d *policy.Document) {
			for i := range 64 {
				d.Keys[0].ChainRules = append(d.Keys[0].ChainRules, policy.ChainRule{ChainID: uint64(100 + i)})
			}
		}, "more than 64"},
		{"tokens", func(d *policy.Document) {
			cr(d).Tokens = nil
			for i := range 1025 {
				cr(d).Tokens = append(cr(d).Tokens, policy.TokenRule{Address: addr(i)})
			}
		}, "tokens: more than 1024"},
		{"spenders", func(d *policy.Document) {
			cr(d).Tokens[0].Spenders = nil
			for i := range 257 {
				cr(d).Tokens[0].Spenders = append(cr(d).Tokens[0].Spenders, policy.Spender{Address: addr(i), MaxAllowance: "1"})
			}
		}, "spenders: more than 256"},
		{"nft operators", func(d *policy.Document) { cr(d).NFTs[0].Operators = dests(257) }, "operators: more than 256"},
		{"contracts", func(d *policy.Document) {
			cr(d).Contracts = nil
			for i := range 1025 {
				cr(d).Contracts = append(cr(d).Contracts, policy.ContractRule{Address: addr(i), Functions: []policy.FunctionRule{{Selector: "0x12345678"}}})
			}
		}, "contracts: more than 1024"},
		{"functions", func(d *policy.Document) {
			cr(d).Contracts[0].Functions = nil
			for i := range 65 {
				cr(d).Contracts[0].Functions = append(cr(d).Contracts[0].Functions, policy.FunctionRule{Selector: fmt.Sprintf("0x%08x", 0x10000000+i)})
			}
		}, "functions"},
		{"safes", func(d *policy.Document) { cr(d).Safes = dests(257) }, "safes: more than 256"},
		{"multisend", func(d *policy.Document) { cr(d).MultiSendCallOnly = dests(17) }, "multisend_call_only: more than 16"},
		{"limits", func(d *policy.Document) {
			for i := range 257 {
				d.Keys[0].Limits = append(d.Keys[0].Limits, stateful.LimitRule{ChainID: 1, Asset: "native", Destination: addr(i), Window: "1h", Max: "1"})
			}
		}, "limits: more than 256"},
		{"assets", func(d *policy.Document) {
			for i := range 4097 {
				d.Assets = append(d.Assets, policy.Asset{ChainID: 2, Address: addr(i), Symbol: "X"})
			}
		}, "assets: more than 4096"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := fullDoc(c)
			tt.f(&d)
			_, err := policy.Compile(d)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	c := client(t)
	d, _ := statefulDoc(t, c)
	indented, _ := json.MarshalIndent(d, "", "\t")
	p, err := policy.Parse(indented)
	if err != nil {
		t.Fatal(err)
	}
	q, err := policy.Parse(p.Canonical())
	if err != nil {
		t.Fatalf("the canonical form does not parse: %v", err)
	}
	if p.Hash() != q.Hash() || string(p.Canonical()) != string(q.Canonical()) {
		t.Error("the canonical form is not canonical")
	}
	// An older document (no new sections) keeps its hash: the new fields
	// are left out when empty.
	old := `{"version":1,"clients":[],"keys":[{"key":"k","chains":[1],"native_transfers":{"destinations":[],"max_per_transaction_wei":"0"}}]}`
	o, err := policy.Parse([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if string(o.Canonical()) != old {
		t.Errorf("canonical form of an old document changed:\n%s\n%s", o.Canonical(), old)
	}
	// Changing any rule changes the hash.
	d.Keys[0].Freeze.Refusals++
	if compile(t, d).Hash() == p.Hash() {
		t.Error("a changed freeze rule left the hash unchanged")
	}
}

// TestCompileKeepsNothing checks that a compiled policy does not share the
// document's memory: changing the document afterwards changes nothing.
func TestCompileKeepsNothing(t *testing.T) {
	c := client(t)
	d := fullDoc(c)
	p := compile(t, d)
	d.Clients[0].Keys[0] = "bare"
	d.Keys[0].NativeTransfers.Destinations[0].Address = attacker
	d.Version = 100
	if dec := evalTx(t, p, c, "hot-0", newTx(t, 1, ops, big.NewInt(1), nil)); !dec.Allow {
		t.Errorf("after changing the document: %+v", dec)
	}
	if p.Version() != 9 {
		t.Errorf("version %d", p.Version())
	}
}
