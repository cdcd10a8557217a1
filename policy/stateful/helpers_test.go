package stateful

import (
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
)

// t0 is a round time: bucket boundaries of round windows fall on it.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func addr(b byte) ethtx.Address { return ethtx.Address{0: 0xaa, 19: b} }

func ptr(a ethtx.Address) *ethtx.Address { return &a }

var (
	destA = addr(0xa)
	destB = addr(0xb)
	usdc  = addr(0xc0)
	weth  = addr(0xc1)
)

// native is a spend of amt wei on chain 1 to to.
func native(to ethtx.Address, amt int64) Spend {
	return Spend{ChainID: 1, To: to, Amount: big.NewInt(amt)}
}

// token is a spend of amt units of asset on chain 1 to to.
func token(asset, to ethtx.Address, amt int64) Spend {
	return Spend{ChainID: 1, Asset: asset, To: to, Amount: big.NewInt(amt)}
}

// The tests name their rules ("daily", "v"); a name stands for the index
// of its RuleID, the same for every key, so that the tests can give rules
// of one key distinct IDs by name and read the names back from refusals
// and charges.
var testNames = struct {
	sync.Mutex
	index map[string]int
	names []string
}{index: map[string]int{}}

// nameIndex returns the index that stands for name.
func nameIndex(name string) int {
	testNames.Lock()
	defer testNames.Unlock()
	i, ok := testNames.index[name]
	if !ok {
		i = len(testNames.names)
		testNames.index[name] = i
		testNames.names = append(testNames.names, name)
	}
	return i
}

// nameOf returns the name of id (see nameIndex).
func nameOf(id RuleID) string {
	testNames.Lock()
	defer testNames.Unlock()
	if id == (RuleID{}) {
		return ""
	}
	if id.Index < 0 || id.Index >= len(testNames.names) {
		return id.String()
	}
	return testNames.names[id.Index]
}

// lid is the ID of the rolling limit of key named name.
func lid(key, name string) RuleID {
	return RuleID{Kind: KindRollingLimit, Key: key, Index: nameIndex(name)}
}

// vid is the ID of the velocity limit of key named name.
func vid(key, name string) RuleID {
	return RuleID{Kind: KindVelocity, Key: key, Index: nameIndex(name)}
}

// byName returns the ID of tr's rule or velocity named name.
func byName(t testing.TB, tr *Tracker, name string) RuleID {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, id := range tr.ruleOrder {
		if nameOf(id) == name {
			return id
		}
	}
	// An ID the tracker does not hold, for the tests of unknown IDs.
	return RuleID{Kind: KindRollingLimit, Key: "none", Index: nameIndex(name)}
}

func rule(id, key string, window time.Duration, max int64) TrackedLimit {
	return TrackedLimit{ID: lid(key, id), Key: key, ChainID: 1, Window: window, Max: big.NewInt(max)}
}

func mustNew(t testing.TB, rules []TrackedLimit, vels []TrackedVelocity, opts Options) *Tracker {
	t.Helper()
	tr, err := NewTracker(rules, vels, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func mustRestore(t testing.TB, rules []TrackedLimit, vels []TrackedVelocity, opts Options, snap []byte, now time.Time) *Tracker {
	t.Helper()
	tr, err := Restore(rules, vels, opts, snap, now)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func mustMarshal(t testing.TB, tr *Tracker) []byte {
	t.Helper()
	b, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spend reserves and commits, returning the refusing rule ("" if signed):
// its ID, or its rule name when it has none (refusal.RuleCheckpoint).
func spend(t testing.TB, tr *Tracker, now time.Time, key string, spends ...Spend) string {
	t.Helper()
	r, err := tr.Reserve(now, key, spends)
	if err != nil {
		return refusedBy(t, err)
	}
	r.Commit()
	return ""
}

// check is spend with Check: the refusing rule ("" if it would fit) and
// the message.
func check(t testing.TB, tr *Tracker, now time.Time, key string, spends ...Spend) (string, string) {
	t.Helper()
	err := tr.Check(now, key, spends)
	if err == nil {
		return "", ""
	}
	return refusedBy(t, err), err.(*Refusal).Msg
}

// refusedBy returns the ID of the limit a *Refusal names, or its rule when
// it has no ID (refusal.RuleCheckpoint), after checking that its rule is
// one a Tracker refuses with. (TestRefusalRules checks which.)
func refusedBy(t testing.TB, err error) string {
	t.Helper()
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("Reserve: %v", err)
	}
	switch ref.Rule {
	case refusal.RuleCheckpoint:
		if ref.ID != (RuleID{}) {
			t.Fatalf("refusal %+v: a checkpoint refusal with an ID", ref)
		}
		return ref.Rule
	case refusal.RuleRollingLimit, refusal.RuleVelocity:
		if ref.ID.Kind.Rule() != ref.Rule {
			t.Fatalf("refusal %+v: its rule is not its ID's kind's", ref)
		}
		return nameOf(ref.ID)
	default:
		t.Fatalf("refusal %+v: rule %q is not a limits rule", ref, ref.Rule)
		return ""
	}
}

// used returns the usage of rule id at now as an int64.
func used(t testing.TB, tr *Tracker, now time.Time, id string) int64 {
	t.Helper()
	u, _, err := tr.Usage(now, byName(t, tr, id))
	if err != nil {
		t.Fatal(err)
	}
	if !u.IsInt64() {
		t.Fatalf("usage %v", u)
	}
	return u.Int64()
}
