package policy_test

import (
	"encoding/json"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
)

// TestTransactionTypesCoverDecoder fails when package ethtx decodes a
// transaction type that the policy format does not know: each type of
// ethtx.Types must be named by the format (allowable in transaction_types)
// or refused by a rule of its own, and docs/policy.md must list its name.
func TestTransactionTypesCoverDecoder(t *testing.T) {
	known := policy.TransactionTypes()
	md, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range ethtx.Types() {
		i := slices.IndexFunc(known, func(k policy.TransactionType) bool { return k.Type == typ })
		if i < 0 {
			t.Errorf("ethtx decodes %s transactions (type 0x%02x), which the policy format does not know: name it in policy/txtypes.go (allowable, or refused with its own rule) and in docs/policy.md", typ, uint8(typ))
			continue
		}
		k := known[i]
		if k.Refused != "" && k.Why == "" {
			t.Errorf("type %s is refused without a reason", k.Name)
		}
		if !strings.Contains(string(md), "`"+k.Name+"`") {
			t.Errorf("docs/policy.md does not name transaction type `%s`", k.Name)
		}
	}
	for _, k := range known {
		if !slices.Contains(ethtx.Types(), k.Type) {
			t.Errorf("the policy format names type %s, which ethtx does not decode", k.Name)
		}
	}
	// The default allows only named, allowable types, and never one added
	// after these three.
	if !slices.Equal(policy.DefaultTransactionTypes, []string{"legacy", "eip2930", "eip1559"}) {
		t.Errorf("DefaultTransactionTypes = %v: a type added to the format must be named to be allowed", policy.DefaultTransactionTypes)
	}
}

// txOfType returns a native transfer to ops on chain 1 of type typ, within
// the fixture's caps.
func txOfType(t *testing.T, typ ethtx.Type) *ethtx.Tx {
	switch typ {
	case ethtx.TypeLegacy, ethtx.TypeAccessList:
		return newTx(t, 1, ops, big.NewInt(1), nil, legacyTx(1e9), txType(typ))
	}
	return newTx(t, 1, ops, big.NewInt(1), nil, txType(typ))
}

// TestTransactionTypesRule checks evaluation: the default allows legacy,
// EIP-2930 and EIP-1559; a key's list allows only what it names; refused
// types are refused by their own rule whatever the list; a type the
// format does not know is refused.
func TestTransactionTypesRule(t *testing.T) {
	c := client(t)
	doc := fullDoc(c)
	doc.Keys[1].TransactionTypes = []string{"eip1559"} // key "split": chain 1 allows 5 wei to ops
	p := compile(t, doc)
	for _, k := range policy.TransactionTypes() {
		t.Run(k.Name, func(t *testing.T) {
			tx := txOfType(t, k.Type)
			d := evalTx(t, p, c, "hot-0", tx)
			switch {
			case k.Refused != "":
				checkDecision(t, d, k.Refused)
			case slices.Contains(policy.DefaultTransactionTypes, k.Name):
				checkDecision(t, d, "")
			default:
				checkDecision(t, d, refusal.RuleTransactionTypes)
			}
			d = evalTx(t, p, c, "split", tx)
			switch {
			case k.Refused != "":
				checkDecision(t, d, k.Refused)
			case k.Name == "eip1559":
				checkDecision(t, d, "")
			default:
				checkDecision(t, d, refusal.RuleTransactionTypes)
				if !strings.Contains(d.Reason, `"`+k.Name+`"`) || !strings.Contains(d.Reason, "transaction_types are eip1559") {
					t.Errorf("reason %q", d.Reason)
				}
			}
		})
	}
	// A type the decoder might learn later, unknown to the format.
	for _, typ := range []ethtx.Type{0x05, 0x7f} {
		d := evalTx(t, p, c, "hot-0", newTx(t, 1, ops, big.NewInt(1), nil, txType(typ)))
		checkDecision(t, d, refusal.RuleTransactionTypes)
	}
}

// TestTransactionTypesParse checks the field: names of allowable types,
// each once, not empty; absent keeps the hash a policy had before the
// field existed.
func TestTransactionTypesParse(t *testing.T) {
	c := client(t)
	for _, tc := range []struct {
		types []string
		err   string
	}{
		{[]string{"legacy"}, ""},
		{[]string{"eip1559", "eip2930", "legacy"}, ""},
		{[]string{}, "policy: keys[0]: transaction_types: empty: list the types the key may sign"},
		{[]string{"eip1559", "eip1559"}, `policy: keys[0]: transaction_types[1]: "eip1559" listed twice`},
		{[]string{"EIP-1559"}, `policy: keys[0]: transaction_types[0]: "EIP-1559" is not a transaction type: want one of "legacy", "eip2930", "eip1559"`},
		{[]string{"eip4844"}, "policy: keys[0]: transaction_types[0]: EIP-4844 blob transactions are never allowed"},
		{[]string{"eip1559", "eip7702"}, "policy: keys[0]: transaction_types[1]: EIP-7702 set-code transactions are never allowed"},
		{[]string{"legacy", "eip2930", "eip1559", "legacy", "legacy", "legacy"}, "policy: keys[0]: transaction_types: more than 5"},
	} {
		doc := fullDoc(c)
		doc.Keys[0].TransactionTypes = tc.types
		_, err := policy.Compile(doc)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.types, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%v: error %v, want %q", tc.types, err, tc.err)
		}
	}
	// Absent: not in the canonical encoding, so hashes of earlier
	// policies stand.
	p := compile(t, fullDoc(c))
	if strings.Contains(string(p.Canonical()), "transaction_types") {
		t.Error("an absent transaction_types appears in the canonical encoding")
	}
	// Spelt out, it is part of the document (and its hash).
	doc := fullDoc(c)
	doc.Keys[0].TransactionTypes = policy.DefaultTransactionTypes
	q := compile(t, doc)
	var back policy.Document
	if err := json.Unmarshal(q.Canonical(), &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Keys[0].TransactionTypes, policy.DefaultTransactionTypes) || q.Hash() == p.Hash() {
		t.Error("an explicit transaction_types is not kept in the canonical encoding")
	}
}
