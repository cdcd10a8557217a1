package enclave_test

import (
	"bytes"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
	"github.com/nitrosign/nitrosign/internal/rlp"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// The attack suite, end to end through the enclave (stamp, decoding,
// policy, stateful rules, audit record). Each incident must be refused by
// the rule named, and the refusal recorded. The incidents that need
// several steps have their own tests:
//
//   - a transfer to an address added inside the time lock, a forged or
//     short admin quorum, a rollback to an older policy version:
//     TestGovernanceTimeLock;
//   - an over-limit amount split into many small transactions:
//     TestRollingLimitSplitAttack;
//   - an increaseAllowance loop, approve after approve, and EIP-2612 and
//     Permit2 permits past a rolling limit and an approval threshold, an
//     unlimited grant of a limited token, setApprovalForAll without
//     approval: TestGrantLoopAttack;
//   - a replayed request: TestReplayRefusedEvenAfterPolicyRefusal;
//   - Permit2 and EIP-2612 signatures for an attacker, and the rest of the
//     stateless incidents in more variants: package policy's TestAttacks.

const (
	attackSafe   = "0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe"
	bybitTrojan  = "0x96221423681a6d52e184d440a8efcebb105c7242"
	bybitImpl    = "0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516"
	attacker     = "0xbadbadbadbadbadbadbadbadbadbadbadbadbad0"
	attackUSDC   = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	maxUint256Hx = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
)

// packCall returns the calldata of a call of sig with args
// (internal/abitest, cross-checked against go-ethereum's abi.Pack in
// crosscheck/abitest).
func packCall(t *testing.T, sig string, args ...any) []byte {
	t.Helper()
	b, err := abitest.Pack(sig, args...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addr is the address s, which the test wrote right.
func addr(s string) ethtx.Address {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// signedFields returns the fields of a signed typed transaction: its
// encoding without the signature values (the last three), decoded as the
// unsigned transaction it was signed from. (crosscheck/devstack decodes
// the enclave's signed transactions with go-ethereum.)
func signedFields(t *testing.T, signed []byte) *ethtx.Tx {
	t.Helper()
	if len(signed) == 0 || signed[0] >= 0x80 {
		t.Fatalf("signed transaction %x is not a typed transaction", signed)
	}
	content, rest, err := rlp.SplitList(signed[1:])
	if err != nil || len(rest) != 0 {
		t.Fatalf("signed transaction %x: %v, %d trailing bytes", signed, err, len(rest))
	}
	var items [][]byte
	for len(content) > 0 {
		_, _, next, err := rlp.Split(content)
		if err != nil {
			t.Fatalf("signed transaction %x: %v", signed, err)
		}
		items = append(items, content[:len(content)-len(next)])
		content = next
	}
	if len(items) < 3 {
		t.Fatalf("signed transaction %x has %d fields", signed, len(items))
	}
	tx, err := ethtx.DecodeUnsigned(append([]byte{signed[0]}, rlp.AppendList(nil, bytes.Join(items[:len(items)-3], nil))...))
	if err != nil {
		t.Fatalf("signed transaction %x: %v", signed, err)
	}
	return tx
}

func txTo(t *testing.T, chain int64, to string, typ ethtx.Type, data []byte) []byte {
	t.Helper()
	a, err := ethtx.ParseAddress(to)
	if err != nil {
		t.Fatal(err)
	}
	tx := &ethtx.Tx{Type: typ, ChainID: big.NewInt(chain), Nonce: 1, GasLimit: 200000,
		MaxFeePerGas: big.NewInt(2e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: &a, Value: new(big.Int), Data: data}
	if typ == ethtx.TypeSetCode {
		tx.AuthorizationList = []ethtx.Authorization{{ChainID: big.NewInt(1), Address: a, Nonce: 0, YParity: 0, R: [32]byte{31: 1}, S: [32]byte{31: 1}}}
	}
	return tx.EncodeUnsigned()
}

func TestAttackSuite(t *testing.T) {
	f := newStateful(t, func(k *policy.KeyRule) {
		k.ChainRules = []policy.ChainRule{{
			ChainID: 1,
			Safes:   []policy.Destination{{Address: attackSafe, Label: "treasury Safe"}},
			Tokens: []policy.TokenRule{{Address: attackUSDC, Label: "USDC",
				Transfers: &policy.TokenTransfers{Destinations: []policy.Destination{{Address: destA, Label: "A"}}, MaxPerTransaction: "1000000000"}}},
		}}
		k.Freeze = &stateful.FreezeRule{Refusals: 1000, Window: "1h", Scope: "key"}
	})
	ga := addr
	maxUint, _ := new(big.Int).SetString(maxUint256Hx, 16)
	// Bybit (February 2025): the signers approved a Safe transaction whose
	// operation was DELEGATECALL to the attacker's contract, with the
	// calldata of transfer(address,uint256) that overwrote the Safe's
	// implementation slot.
	bybit := packCall(t, "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
		ga(bybitTrojan), big.NewInt(0), packCall(t, "transfer(address,uint256)", ga(bybitImpl), big.NewInt(0)), uint8(1),
		big.NewInt(0), big.NewInt(0), big.NewInt(0), ethtx.Address{}, ethtx.Address{}, []byte{1})
	selfCall := packCall(t, "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
		ga(attackSafe), big.NewInt(0), packCall(t, "addOwnerWithThreshold(address,uint256)", ga(attacker), big.NewInt(1)), uint8(0),
		big.NewInt(0), big.NewInt(0), big.NewInt(0), ethtx.Address{}, ethtx.Address{}, []byte{1})
	for _, tc := range []struct {
		name, rule string
		unsigned   []byte
	}{
		{"Bybit: Safe DELEGATECALL to a malicious implementation", refusal.RuleSafeOperation, txTo(t, 1, attackSafe, ethtx.TypeDynamicFee, bybit)},
		{"a Safe transaction adding an attacker as owner", refusal.RuleSafeSelfCall, txTo(t, 1, attackSafe, ethtx.TypeDynamicFee, selfCall)},
		{"an unlimited approve to an attacker", refusal.RuleAllowanceGrants, txTo(t, 1, attackUSDC, ethtx.TypeDynamicFee, packCall(t, "approve(address,uint256)", ga(attacker), maxUint))},
		{"USDC to a recipient not allowlisted", refusal.RuleDestinations, txTo(t, 1, attackUSDC, ethtx.TypeDynamicFee, packCall(t, "transfer(address,uint256)", ga(attacker), big.NewInt(1e6)))},
		{"a chain id mismatch (a mainnet-allowed transfer on BNB Smart Chain)", refusal.RuleChains, txTo(t, 56, destA, ethtx.TypeDynamicFee, nil)},
		{"an EIP-7702 delegation of the key's account", refusal.RuleSetCode, txTo(t, 1, attacker, ethtx.TypeSetCode, nil)},
		{"an EIP-4844 blob transaction", refusal.RuleBlobTransactions, blobTx(t, destA)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.send(t, f.hot, f.body(t, "hot-0", tc.unsigned, f.now.UnixMilli()))
			pe := wantRule(t, resp, tc.rule)
			rec, err := audit.Unmarshal(pe.AuditRecord)
			if err != nil || rec.Decision != audit.DecisionRefused || rec.Rule != tc.rule {
				t.Fatalf("audit record %+v, %v", rec, err)
			}
		})
	}
	// The enclave still signs what the policy allows.
	if _, ok := f.pay(t, destA, big.NewInt(1)).(*proto.SignResponse); !ok {
		t.Fatal("an allowed transfer was refused after the attacks")
	}
}

// blobTx is an EIP-4844 transaction to `to` with one blob hash.
func blobTx(t *testing.T, to string) []byte {
	t.Helper()
	a, err := ethtx.ParseAddress(to)
	if err != nil {
		t.Fatal(err)
	}
	tx := &ethtx.Tx{Type: ethtx.TypeBlob, ChainID: big.NewInt(1), Nonce: 1, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(2e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: &a, Value: big.NewInt(1),
		MaxFeePerBlobGas: big.NewInt(1), BlobVersionedHashes: [][32]byte{{0: 1}}}
	return tx.EncodeUnsigned()
}

// TestTransactionTypesAllowList: a key signs only the transaction types its
// policy names; others are refused by rule transaction_types, recorded.
func TestTransactionTypesAllowList(t *testing.T) {
	f := newStateful(t, func(k *policy.KeyRule) { k.TransactionTypes = []string{"eip1559"} })
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))
	a, _ := ethtx.ParseAddress(destA)
	for _, typ := range []ethtx.Type{ethtx.TypeLegacy, ethtx.TypeAccessList} {
		tx := &ethtx.Tx{Type: typ, ChainID: big.NewInt(1), Nonce: 1, GasLimit: 21000, GasPrice: big.NewInt(1e9), To: &a, Value: big.NewInt(1)}
		pe := wantRule(t, f.send(t, f.hot, f.body(t, "hot-0", tx.EncodeUnsigned(), f.now.UnixMilli())), refusal.RuleTransactionTypes)
		rec, err := audit.Unmarshal(pe.AuditRecord)
		if err != nil || rec.Decision != audit.DecisionRefused || rec.Rule != refusal.RuleTransactionTypes || !strings.Contains(pe.Message, "eip1559") {
			t.Fatalf("%s: %q, record %+v, %v", typ, pe.Message, rec, err)
		}
	}
}
