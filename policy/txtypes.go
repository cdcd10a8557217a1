package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
)

// TransactionType is a transaction type the policy format knows by name.
type TransactionType struct {
	// Name is how transaction_types lists it.
	Name string
	Type ethtx.Type
	// Refused, when set, is the rule that refuses every transaction of the
	// type whatever the policy says; its name may not be listed in
	// transaction_types.
	Refused string
	// Why says why a refused type is refused.
	Why string
}

// transactionTypes are the types the format knows. A type that package
// ethtx decodes and this list lacks is refused (rule transaction_types),
// and a test fails until it is added here: named, and so allowable, or
// refused with a rule of its own.
var transactionTypes = []TransactionType{
	{Name: "legacy", Type: ethtx.TypeLegacy},
	{Name: "eip2930", Type: ethtx.TypeAccessList},
	{Name: "eip1559", Type: ethtx.TypeDynamicFee},
	{Name: "eip4844", Type: ethtx.TypeBlob, Refused: refusal.RuleBlobTransactions,
		Why: "EIP-4844 blob transactions are never allowed: the policy checks neither their blobs nor their blob fees"},
	{Name: "eip7702", Type: ethtx.TypeSetCode, Refused: refusal.RuleSetCode,
		Why: "EIP-7702 set-code transactions are never allowed: they delegate the key's account to contract code, which then acts with all of its authority, outside every rule"},
}

// DefaultTransactionTypes are the types a key allows when its rule has no
// transaction_types: the three that every rule of this format checks.
// Types added to the format later are never added here: a key allows them
// only by naming them.
var DefaultTransactionTypes = []string{"legacy", "eip2930", "eip1559"}

// TransactionTypes returns every transaction type the policy format knows,
// allowable or refused.
func TransactionTypes() []TransactionType { return slices.Clone(transactionTypes) }

func transactionTypeNamed(name string) (TransactionType, bool) {
	for _, t := range transactionTypes {
		if t.Name == name {
			return t, true
		}
	}
	return TransactionType{}, false
}

func transactionTypeOf(typ ethtx.Type) (TransactionType, bool) {
	for _, t := range transactionTypes {
		if t.Type == typ {
			return t, true
		}
	}
	return TransactionType{}, false
}

// allowableNames lists the names a transaction_types list may hold, for
// errors.
func allowableNames() string {
	var names []string
	for _, t := range transactionTypes {
		if t.Refused == "" {
			names = append(names, fmt.Sprintf("%q", t.Name))
		}
	}
	return strings.Join(names, ", ")
}

// compileTransactionTypes checks a key's transaction_types: names of
// allowable types, each once, at least one; absent (nil) means
// DefaultTransactionTypes. An empty list is an error rather than "no
// transactions": the canonical encoding leaves empty lists out, which
// would turn it into the default.
func compileTransactionTypes(names []string) ([]ethtx.Type, error) {
	if names == nil {
		names = DefaultTransactionTypes
	}
	if len(names) == 0 {
		return nil, fmt.Errorf(": empty: list the types the key may sign (%s), or leave the field out for the default %s", allowableNames(), strings.Join(DefaultTransactionTypes, ", "))
	}
	if len(names) > len(transactionTypes) {
		return nil, fmt.Errorf(": more than %d", len(transactionTypes))
	}
	var out []ethtx.Type
	for j, n := range names {
		t, ok := transactionTypeNamed(n)
		if !ok {
			return nil, fmt.Errorf("[%d]: %q is not a transaction type: want one of %s", j, n, allowableNames())
		}
		if t.Refused != "" {
			return nil, fmt.Errorf("[%d]: %s", j, t.Why)
		}
		if slices.Contains(out, t.Type) {
			return nil, fmt.Errorf("[%d]: %q listed twice", j, n)
		}
		out = append(out, t.Type)
	}
	return out, nil
}

// checkType refuses a transaction whose type the key does not allow: a
// type the format refuses, by its own rule; a type the format does not
// know, or one the key's transaction_types does not name, by
// transaction_types.
func (r *keyRule) checkType(typ ethtx.Type) *Decision {
	// Each refusal is made where it is returned: a Decision declared
	// before the switch would escape, one allocation for every
	// transaction, the allowed ones included.
	t, known := transactionTypeOf(typ)
	switch {
	case !known:
		return refusing(deny(refusal.RuleTransactionTypes, "transaction type %s is not one the policy knows: refused", typ))
	case t.Refused != "":
		return refusing(deny(t.Refused, "%s (key %q)", t.Why, r.id))
	case !slices.Contains(r.txTypes, typ):
		return refusing(deny(refusal.RuleTransactionTypes, "%s transactions (%q) are not allowed for key %q: its transaction_types are %s", typ, t.Name, r.id, r.typeNames()))
	}
	return nil
}

// refusing returns d, a refusal, as checks that find none return nil.
func refusing(d Decision) *Decision { return &d }

// typeNames lists the names of the key's transaction types.
func (r *keyRule) typeNames() string {
	names := make([]string, 0, len(r.txTypes))
	for _, typ := range r.txTypes {
		t, _ := transactionTypeOf(typ)
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}
