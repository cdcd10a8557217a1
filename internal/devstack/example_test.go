package devstack_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// TestExamplePolicy checks the example policy's rules without starting the
// stack: what it allows and refuses, and its stateful sections.
func TestExamplePolicy(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	client := stamp.PublicKey{Scheme: stamp.Ed25519, Key: pub}
	b, err := json.Marshal(devstack.ExamplePolicy(client))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		t.Fatalf("the example policy does not parse: %v", err)
	}
	a := func(s string) ethtx.Address {
		v, err := ethtx.ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	usdc, destA, destB := a(devstack.ExampleUSDC), a(devstack.ExampleDestinationA), a(devstack.ExampleDestinationB)
	other := a("0x3333333333333333333333333333333333333333")
	word := func(v *big.Int) []byte { return v.FillBytes(make([]byte, 32)) }
	addrWord := func(x ethtx.Address) []byte { return append(make([]byte, 12), x[:]...) }
	call := func(sel []byte, to ethtx.Address, amount *big.Int) []byte {
		return append(append(append([]byte{}, sel...), addrWord(to)...), word(amount)...)
	}
	transfer := []byte{0xa9, 0x05, 0x9c, 0xbb}
	approve := []byte{0x09, 0x5e, 0xa7, 0xb3}
	oneETH, _ := new(big.Int).SetString(devstack.ExampleMaxPerTransactionWei, 10)
	for _, tc := range []struct {
		name  string
		chain int64
		to    ethtx.Address
		value *big.Int
		data  []byte
		rule  string
	}{
		{"1 ETH to A on mainnet", 1, destA, oneETH, nil, ""},
		{"1 ETH to B on Sepolia", 11155111, destB, oneETH, nil, ""},
		{"1 ETH and 1 wei to B", 1, destB, new(big.Int).Add(oneETH, big.NewInt(1)), nil, refusal.RuleMaxPerTransaction},
		{"ETH to another address", 1, other, big.NewInt(1), nil, refusal.RuleDestinations},
		{"1,000 USDC to A", 1, usdc, new(big.Int), call(transfer, destA, big.NewInt(1_000_000_000)), ""},
		{"1,000.000001 USDC to B", 1, usdc, new(big.Int), call(transfer, destB, big.NewInt(1_000_000_001)), refusal.RuleMaxPerTransaction},
		{"USDC to another address", 1, usdc, new(big.Int), call(transfer, other, big.NewInt(1)), refusal.RuleDestinations},
		{"USDC on Sepolia", 11155111, usdc, new(big.Int), call(transfer, destA, big.NewInt(1)), refusal.RuleCalldata},
		{"USDC approve of A", 1, usdc, new(big.Int), call(approve, destA, big.NewInt(1)), refusal.RuleAllowanceGrants},
		{"USDC approve revocation", 1, usdc, new(big.Int), call(approve, other, new(big.Int)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := calldata.Decode(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(tc.chain), GasLimit: 60000,
				MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9), To: &tc.to, Value: tc.value, Data: tc.data}
			d := p.EvaluateTransaction(&policy.Transaction{Client: client, KeyID: devstack.ExampleKeyID, Tx: tx, Call: c})
			if d.Allow != (tc.rule == "") || d.Rule != tc.rule {
				t.Fatalf("decision %+v, want rule %q", d, tc.rule)
			}
		})
	}

	r, _ := p.KeyRules(devstack.ExampleKeyID)
	limits := r.Limits
	if len(limits) != 1 || limits[0].ChainID != 1 || limits[0].Asset != (ethtx.Address{}) || limits[0].Destination == nil ||
		*limits[0].Destination != destB || limits[0].Window != 24*time.Hour || limits[0].Max.String() != devstack.ExampleDailyLimitWei {
		t.Errorf("limits %+v, want 3 ETH a day to B on chain 1", limits)
	}
	if f := r.Freeze; f == nil || f.Refusals != devstack.ExampleFreezeRefusals || f.Window != time.Hour || f.OnLimitBreach || f.Scope != stateful.FreezeKey {
		t.Errorf("freeze %+v, want 100 refusals in 1h, not on a limit breach, scope key", f)
	}
	if r.Approvals != nil {
		t.Error("the example has approvals")
	}
	if r.Velocity != nil {
		t.Error("the example has a velocity limit")
	}
}

// TestExamplePolicyDocumented checks that docs/policy.md shows the example
// policy as it is.
func TestExamplePolicyDocumented(t *testing.T) {
	md, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	client := stamp.PublicKey{Scheme: stamp.Ed25519, Key: pub}
	var documented string
	for _, block := range strings.Split(string(md), "```json\n")[1:] {
		if js := block[:strings.Index(block, "```")]; strings.Contains(js, devstack.ExampleClientName) {
			documented = strings.Replace(js, `"HEX"`, `"`+hex.EncodeToString(pub)+`"`, 1)
		}
	}
	if documented == "" {
		t.Fatal("docs/policy.md does not show the example policy")
	}
	got, err := policy.Parse([]byte(documented))
	if err != nil {
		t.Fatalf("the documented example: %v", err)
	}
	b, _ := json.Marshal(devstack.ExamplePolicy(client))
	want, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != want.Hash() {
		t.Errorf("docs/policy.md shows\n%s\nthe example policy is\n%s", got.Canonical(), want.Canonical())
	}
}
