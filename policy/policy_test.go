package policy_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/stamp"
)

func client(t testing.TB) stamp.PublicKey {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	return stamp.PublicKey{Scheme: stamp.Ed25519, Key: pub}
}

func doc(c stamp.PublicKey) policy.Document {
	return policy.Document{
		Version: 3,
		Clients: []policy.Client{{Name: "svc", Scheme: "ed25519", PublicKey: hex.EncodeToString(c.Key), Keys: []string{"hot-0", "bare"}}},
		Keys: []policy.KeyRule{
			{Key: "hot-0", Chains: []uint64{1, 11155111}, NativeTransfers: &policy.NativeTransfers{
				Destinations:         []policy.Destination{{Address: "0x1111111111111111111111111111111111111111", Label: "ops"}},
				MaxPerTransactionWei: "1000",
			}},
			{Key: "bare", Chains: []uint64{1}},
		},
	}
}

func addr(t *testing.T, s string) *ethtx.Address {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return &a
}

func TestEvaluateTransaction(t *testing.T) {
	c := client(t)
	p, err := policy.Compile(doc(c))
	if err != nil {
		t.Fatal(err)
	}
	const (
		legacy  = ethtx.TypeLegacy
		al      = ethtx.TypeAccessList
		dynamic = ethtx.TypeDynamicFee
		blob    = ethtx.TypeBlob
		setCode = ethtx.TypeSetCode
	)
	ops := "0x1111111111111111111111111111111111111111"
	for _, tc := range []struct {
		name  string
		who   stamp.PublicKey
		key   string
		typ   ethtx.Type
		chain int64
		to    string
		value int64
		data  []byte
		rule  string
		label string
	}{
		{"allowed at the limit", c, "hot-0", dynamic, 1, ops, 1000, nil, "", "ops"},
		{"allowed on the second chain", c, "hot-0", dynamic, 11155111, ops, 0, nil, "", "ops"},
		{"legacy transfer", c, "hot-0", legacy, 1, ops, 1, nil, "", "ops"},
		{"EIP-2930 transfer", c, "hot-0", al, 1, ops, 1, nil, "", "ops"},
		{"one wei over", c, "hot-0", dynamic, 1, ops, 1001, nil, refusal.RuleMaxPerTransaction, ""},
		{"other chain", c, "hot-0", dynamic, 5, ops, 1, nil, refusal.RuleChains, ""},
		{"creation", c, "hot-0", dynamic, 1, "", 0, []byte{0x60}, refusal.RuleContractCreation, ""},
		{"blob transaction to an allowlisted address", c, "hot-0", blob, 1, ops, 0, nil, refusal.RuleBlobTransactions, ""},
		{"set-code transaction to an allowlisted address", c, "hot-0", setCode, 1, ops, 0, nil, refusal.RuleSetCode, ""},
		{"calldata", c, "hot-0", dynamic, 1, ops, 0, []byte{1, 2, 3, 4}, refusal.RuleCalldata, ""},
		{"short calldata", c, "hot-0", dynamic, 1, ops, 0, []byte{1}, refusal.RuleCalldata, ""},
		{"not on the allowlist", c, "hot-0", dynamic, 1, "0x2222222222222222222222222222222222222222", 1, nil, refusal.RuleDestinations, ""},
		{"key without transfers", c, "bare", dynamic, 1, ops, 1, nil, refusal.RuleNativeTransfers, ""},
		{"key the client may not use", c, "cold", dynamic, 1, ops, 1, nil, refusal.RuleClientKeys, ""},
		{"unregistered client", client(t), "hot-0", dynamic, 1, ops, 1, nil, refusal.RuleClientKeys, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := &ethtx.Tx{Type: tc.typ, ChainID: big.NewInt(tc.chain), Value: big.NewInt(tc.value), Data: tc.data}
			if tc.to != "" {
				tx.To = addr(t, tc.to)
			}
			// As the enclave: calldata decoded for calls. Calldata that
			// does not decode is refused before any policy (bad_request);
			// given none, the policy refuses the call (rule calldata).
			var call calldata.Call
			if tx.To != nil {
				call, _ = calldata.Decode(tx.Data)
			}
			d := p.EvaluateTransaction(&policy.Transaction{Client: tc.who, KeyID: tc.key, Tx: tx, Call: call})
			if d.Allow != (tc.rule == "") || d.Rule != tc.rule || d.Label != tc.label {
				t.Fatalf("decision %+v, want rule %q label %q", d, tc.rule, tc.label)
			}
			if !d.Allow && d.Reason == "" {
				t.Error("refusal without a reason")
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	c := client(t)
	mutate := func(f func(d *policy.Document)) string {
		d := doc(c)
		f(&d)
		b, _ := json.Marshal(d)
		return string(b)
	}
	for _, tc := range []struct {
		name, doc, msg string
	}{
		{"version 0", mutate(func(d *policy.Document) { d.Version = 0 }), "version"},
		{"no chains", mutate(func(d *policy.Document) { d.Keys[0].Chains = nil }), "chains"},
		{"chain 0", mutate(func(d *policy.Document) { d.Keys[0].Chains = []uint64{0} }), "chain id"},
		{"duplicate chain", mutate(func(d *policy.Document) { d.Keys[0].Chains = []uint64{1, 1} }), "twice"},
		{"bad address", mutate(func(d *policy.Document) { d.Keys[0].NativeTransfers.Destinations[0].Address = "0x11" }), "destinations[0].address"},
		{"bad checksum", mutate(func(d *policy.Document) {
			d.Keys[0].NativeTransfers.Destinations[0].Address = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
		}), "address"},
		{"duplicate destination", mutate(func(d *policy.Document) {
			d.Keys[0].NativeTransfers.Destinations = append(d.Keys[0].NativeTransfers.Destinations, d.Keys[0].NativeTransfers.Destinations[0])
		}), "twice"},
		{"label with control character", mutate(func(d *policy.Document) { d.Keys[0].NativeTransfers.Destinations[0].Label = "a\nb" }), "label"},
		{"limit with leading zero", mutate(func(d *policy.Document) { d.Keys[0].NativeTransfers.MaxPerTransactionWei = "01" }), "max_per_transaction_wei"},
		{"limit negative", mutate(func(d *policy.Document) { d.Keys[0].NativeTransfers.MaxPerTransactionWei = "-1" }), "max_per_transaction_wei"},
		{"limit 2^256", mutate(func(d *policy.Document) {
			d.Keys[0].NativeTransfers.MaxPerTransactionWei = new(big.Int).Lsh(big.NewInt(1), 256).String()
		}), "2^256"},
		{"duplicate key rule", mutate(func(d *policy.Document) { d.Keys = append(d.Keys, d.Keys[0]) }), "twice"},
		{"client uses a key without rules", mutate(func(d *policy.Document) { d.Clients[0].Keys = []string{"nope"} }), "no rules"},
		{"client with no keys", mutate(func(d *policy.Document) { d.Clients[0].Keys = nil }), "empty"},
		{"bad client key", mutate(func(d *policy.Document) { d.Clients[0].PublicKey = "abcd" }), "clients[0]"},
		{"bad scheme", mutate(func(d *policy.Document) { d.Clients[0].Scheme = "rsa" }), "clients[0]"},
		{"duplicate client name", mutate(func(d *policy.Document) {
			d.Clients = append(d.Clients, d.Clients[0])
		}), "twice"},
		{"unknown field", `{"version":1,"clients":[],"keys":[],"allow_all":true}`, "allow_all"},
		{"duplicate field", `{"version":1,"version":2,"clients":[],"keys":[]}`, "duplicate"},
		{"trailing data", `{"version":1,"clients":[],"keys":[]} {}`, "strictjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("err = %v, want a policy error mentioning %q", err, tc.msg)
			}
		})
	}
}

func TestHash(t *testing.T) {
	c := client(t)
	d := doc(c)
	b, _ := json.Marshal(d)
	p1, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	// The same document with other white space hashes the same.
	var indented []byte
	indented, _ = json.MarshalIndent(d, "", "    ")
	p2, err := policy.Parse(indented)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Hash() != p2.Hash() {
		t.Error("white space changed the policy hash")
	}
	d.Keys[0].NativeTransfers.MaxPerTransactionWei = "1001"
	p3, err := policy.Compile(d)
	if err != nil {
		t.Fatal(err)
	}
	if p3.Hash() == p1.Hash() {
		t.Error("a changed limit left the hash unchanged")
	}
	if p1.Version() != 3 {
		t.Errorf("version %d", p1.Version())
	}
}

func strp(s string) *string { return &s }

func TestEvaluateMessages(t *testing.T) {
	c := client(t)
	d := doc(c)
	d.Keys[0].PersonalMessages = true
	d.Keys[0].TypedData = &policy.TypedDataRule{Domains: []policy.TypedDataDomain{
		{Name: "Ether Mail", Version: "1", ChainID: 1, VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
		{ChainID: 11155111, VerifyingContract: "0x000000000022D473030F116dDEE9F6B43aC78BA3"},
	}}
	p, err := policy.Compile(d)
	if err != nil {
		t.Fatal(err)
	}
	mail := addr(t, "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")
	permit2 := addr(t, "0x000000000022D473030F116dDEE9F6B43aC78BA3")
	for _, tc := range []struct {
		name string
		key  string
		dom  policy.Domain
		rule string
	}{
		{"mail", "hot-0", policy.Domain{Name: strp("Ether Mail"), Version: strp("1"), ChainID: big.NewInt(1), VerifyingContract: mail}, ""},
		{"mail, other version", "hot-0", policy.Domain{Name: strp("Ether Mail"), Version: strp("2"), ChainID: big.NewInt(1), VerifyingContract: mail}, refusal.RuleTypedDataDomains},
		{"mail, no name", "hot-0", policy.Domain{Version: strp("1"), ChainID: big.NewInt(1), VerifyingContract: mail}, refusal.RuleTypedDataDomains},
		{"mail, other chain", "hot-0", policy.Domain{Name: strp("Ether Mail"), Version: strp("1"), ChainID: big.NewInt(5), VerifyingContract: mail}, refusal.RuleTypedDataDomains},
		{"mail, no chain", "hot-0", policy.Domain{Name: strp("Ether Mail"), Version: strp("1"), VerifyingContract: mail}, refusal.RuleTypedDataDomains},
		{"mail, no contract", "hot-0", policy.Domain{Name: strp("Ether Mail"), Version: strp("1"), ChainID: big.NewInt(1)}, refusal.RuleTypedDataDomains},
		{"second domain, any name", "hot-0", policy.Domain{Name: strp("Permit2"), ChainID: big.NewInt(11155111), VerifyingContract: permit2}, ""},
		{"huge chain id", "hot-0", policy.Domain{ChainID: new(big.Int).Lsh(big.NewInt(1), 70), VerifyingContract: permit2}, refusal.RuleTypedDataDomains},
		{"empty domain", "hot-0", policy.Domain{}, refusal.RuleTypedDataDomains},
		{"key without typed data", "bare", policy.Domain{Name: strp("Ether Mail"), Version: strp("1"), ChainID: big.NewInt(1), VerifyingContract: mail}, refusal.RuleTypedDataDomains},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := p.EvaluateTypedData(&policy.TypedData{Client: c, KeyID: tc.key, Domain: tc.dom, PrimaryType: "Mail"})
			if dec.Allow != (tc.rule == "") || dec.Rule != tc.rule {
				t.Fatalf("decision %+v, want rule %q", dec, tc.rule)
			}
		})
	}
	if dec := p.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c, KeyID: "hot-0", Message: []byte("hello")}); !dec.Allow {
		t.Errorf("personal message on hot-0: %+v", dec)
	}
	for _, n := range []int{0, 31, 33} {
		if dec := p.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c, KeyID: "hot-0", Message: make([]byte, n)}); !dec.Allow {
			t.Errorf("%d-byte personal message: %+v", n, dec)
		}
	}
	if dec := p.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c, KeyID: "hot-0", Message: make([]byte, 32)}); dec.Rule != refusal.RuleRawDigest {
		t.Errorf("32-byte personal message: %+v, want rule %s", dec, refusal.RuleRawDigest)
	}
	if dec := p.EvaluatePersonalMessage(&policy.PersonalMessage{Client: c, KeyID: "bare"}); dec.Rule != refusal.RulePersonalMessages {
		t.Errorf("personal message on bare: %+v", dec)
	}
	if dec := p.EvaluatePersonalMessage(&policy.PersonalMessage{Client: client(t), KeyID: "hot-0"}); dec.Rule != refusal.RuleClientKeys {
		t.Errorf("personal message from a stranger: %+v", dec)
	}
}

func TestAssetsAndLabels(t *testing.T) {
	c := client(t)
	d := doc(c)
	d.Assets = []policy.Asset{{ChainID: 1, Address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", Symbol: "USDC", Decimals: 6}}
	p, err := policy.Compile(d)
	if err != nil {
		t.Fatal(err)
	}
	usdc := addr(t, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	if a, ok := p.Asset(1, *usdc); !ok || a.Symbol != "USDC" || a.Decimals != 6 {
		t.Errorf("Asset(1, USDC) = %+v, %v", a, ok)
	}
	if _, ok := p.Asset(5, *usdc); ok {
		t.Error("USDC known on chain 5")
	}
	if l, ok := p.Label("hot-0", 1, *addr(t, "0x1111111111111111111111111111111111111111")); !ok || l != "ops" {
		t.Errorf("Label = %q, %v", l, ok)
	}
	if _, ok := p.Label("bare", 1, *addr(t, "0x1111111111111111111111111111111111111111")); ok {
		t.Error("label for a key without destinations")
	}
	// Checksummed is Hex, whether made at Compile (a labelled address, an
	// asset) or on the call (any other), in a policy and in none.
	for _, a := range []string{"0x1111111111111111111111111111111111111111", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "0x9bf111518107c76Da607BB6039489949B2951a10"} {
		if got, want := p.Checksummed(*addr(t, a)), addr(t, a).Hex(); got != want {
			t.Errorf("Checksummed(%s) = %s, want %s", a, got, want)
		}
		if got, want := new(policy.Policy).Checksummed(*addr(t, a)), addr(t, a).Hex(); got != want {
			t.Errorf("zero policy: Checksummed(%s) = %s, want %s", a, got, want)
		}
	}
	for _, tc := range []struct {
		name string
		a    policy.Asset
		msg  string
	}{
		{"chain 0", policy.Asset{Address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", Symbol: "X", Decimals: 6}, "chain_id"},
		{"bad address", policy.Asset{ChainID: 1, Address: "0x12", Symbol: "X"}, "address"},
		{"empty symbol", policy.Asset{ChainID: 1, Address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}, "symbol"},
		{"symbol with space", policy.Asset{ChainID: 1, Address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", Symbol: "US DC"}, "symbol"},
		{"decimals 78", policy.Asset{ChainID: 1, Address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", Symbol: "X", Decimals: 78}, "decimals"},
	} {
		d := doc(c)
		d.Assets = []policy.Asset{tc.a}
		if _, err := policy.Compile(d); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.msg)
		}
	}
	d = doc(c)
	d.Keys[0].TypedData = &policy.TypedDataRule{}
	if _, err := policy.Compile(d); err == nil || !strings.Contains(err.Error(), "typed_data.domains") {
		t.Errorf("empty domain list: err = %v", err)
	}
	d.Keys[0].TypedData = &policy.TypedDataRule{Domains: []policy.TypedDataDomain{{ChainID: 1, VerifyingContract: "0x1"}}}
	if _, err := policy.Compile(d); err == nil || !strings.Contains(err.Error(), "verifying_contract") {
		t.Errorf("bad contract: err = %v", err)
	}
}
