package stateful

import (
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
)

// TestChargeUnseen: a restored tracker charged with n unseen transactions
// counts min(M, n·P) against each rolling limit and min(V, n) against each
// velocity, from the time given, and only that.
func TestChargeUnseen(t *testing.T) {
	cap3 := func(string, uint64, ethtx.Address) *big.Int { return big.NewInt(3) }
	huge := func(string, uint64, ethtx.Address) *big.Int { return new(big.Int).Lsh(big.NewInt(1), 255) }
	tests := []struct {
		name    string
		rules   []TrackedLimit
		vels    []TrackedVelocity
		n       uint64
		perTx   func(string, uint64, ethtx.Address) *big.Int
		at      time.Duration // after t0
		want    map[string]int64
		charged string
	}{
		{name: "n·P below M", rules: []TrackedLimit{rule("r", "k", time.Hour, 10)}, n: 2, perTx: cap3,
			want: map[string]int64{"r": 6}, charged: "[r:6]"},
		{name: "n·P above M", rules: []TrackedLimit{rule("r", "k", time.Hour, 10)}, n: 4, perTx: cap3,
			want: map[string]int64{"r": 10}, charged: "[r:10]"},
		{name: "no per-transaction bound: M", rules: []TrackedLimit{rule("r", "k", time.Hour, 10)}, n: 1,
			want: map[string]int64{"r": 10}, charged: "[r:10]"},
		{name: "n·P overflows 256 bits: M", rules: []TrackedLimit{rule("r", "k", time.Hour, 10)}, n: 4, perTx: huge,
			want: map[string]int64{"r": 10}, charged: "[r:10]"},
		{name: "rules sharing a track: the smallest max, once", rules: []TrackedLimit{rule("a", "k", time.Hour, 10), rule("b", "k", time.Hour, 4)}, n: 2, perTx: cap3,
			want: map[string]int64{"a": 4, "b": 4}, charged: "[a:4 b:4]"},
		{name: "velocity: min(V, n)", vels: []TrackedVelocity{{ID: vid("k", "v"), Key: "k", Window: time.Hour, MaxTransactions: 5}}, n: 2,
			want: map[string]int64{"v": 2}, charged: "[v:2]"},
		{name: "velocity: V", vels: []TrackedVelocity{{ID: vid("k", "v"), Key: "k", Window: time.Hour, MaxTransactions: 5}}, n: 9,
			want: map[string]int64{"v": 5}, charged: "[v:5]"},
		{name: "every key's rules", rules: []TrackedLimit{rule("a", "k", time.Hour, 10), rule("b", "j", time.Hour, 10)}, n: 1, perTx: cap3,
			want: map[string]int64{"a": 3, "b": 3}, charged: "[a:3 b:3]"},
		{name: "at a time the window has left: expired", rules: []TrackedLimit{rule("r", "k", time.Hour, 10)}, n: 2, perTx: cap3, at: -2 * time.Hour,
			want: map[string]int64{"r": 0}, charged: "[]"},
		{name: "n = 0: nothing", rules: []TrackedLimit{rule("r", "k", time.Hour, 10)}, n: 0, perTx: cap3,
			want: map[string]int64{"r": 0}, charged: "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustNew(t, tc.rules, tc.vels, Options{})
			tr.Usage(t0, ruleIDs(tc.rules, tc.vels)[0]) // the tracker's time is t0
			got := tr.ChargeUnseen(tc.n, tc.perTx, t0.Add(tc.at))
			if s := chargeString(got); s != tc.charged {
				t.Errorf("charged %s, want %s", s, tc.charged)
			}
			for id, want := range tc.want {
				used, _, err := tr.Usage(t0, byName(t, tr, id))
				if err != nil {
					t.Fatal(err)
				}
				if used.Int64() != want {
					t.Errorf("%s: usage %s, want %d", id, used, want)
				}
			}
			if u := tr.Unacknowledged(); u != tc.n {
				t.Errorf("Unacknowledged = %d, want %d", u, tc.n)
			}
		})
	}
}

func ruleIDs(rules []TrackedLimit, vels []TrackedVelocity) []RuleID {
	var ids []RuleID
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	for _, v := range vels {
		ids = append(ids, v.ID)
	}
	return ids
}

func chargeString(cs []Charge) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = nameOf(c.Rule) + ":" + c.Amount.String()
	}
	return fmt.Sprint(s)
}

// TestChargeUnseenExpires: the charge is recorded at the snapshot's time
// and leaves the window as transactions of that time would.
func TestChargeUnseenExpires(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("r", "k", time.Hour, 10)}, nil, Options{BucketsPerWindow: 60})
	at := t0
	tr.ChargeUnseen(2, func(string, uint64, ethtx.Address) *big.Int { return big.NewInt(3) }, at)
	if rule, _ := check(t, tr, at.Add(30*time.Minute), "k", native(destA, 5)); rule != "r" {
		t.Fatalf("5 more within the window of a 6 charge: rule %q", rule)
	}
	if rule, msg := check(t, tr, at.Add(30*time.Minute), "k", native(destA, 4)); rule != "" {
		t.Fatalf("4 more within the window of a 6 charge: %s", msg)
	}
	if rule, msg := check(t, tr, at.Add(time.Hour+time.Minute), "k", native(destA, 10)); rule != "" {
		t.Fatalf("after the window: %s", msg)
	}
}

// TestChargeUnseenRequireFresh: with RequireFresh the charged transactions
// count toward CheckpointEvery until a checkpoint taken after the charge
// is acknowledged, and that checkpoint's snapshot holds the charge.
func TestChargeUnseenRequireFresh(t *testing.T) {
	rules := []TrackedLimit{rule("r", "k", time.Hour, 10)}
	opts := Options{RequireFresh: true, CheckpointEvery: 2}
	tr := mustNew(t, rules, nil, opts)
	tr.ChargeUnseen(2, func(string, uint64, ethtx.Address) *big.Int { return big.NewInt(1) }, t0)
	_, err := tr.Reserve(t0, "k", []Spend{native(destA, 1)})
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Rule != refusal.RuleCheckpoint {
		t.Fatalf("reserve with C charged transactions unacknowledged: %v", err)
	}
	if !tr.Dirty() {
		t.Fatal("a charge leaves the tracker clean: no checkpoint would hold it")
	}
	gen, snap, err := tr.Checkpoint(t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Acknowledge(gen); err != nil {
		t.Fatal(err)
	}
	if u := tr.Unacknowledged(); u != 0 {
		t.Fatalf("Unacknowledged after the acknowledgement = %d", u)
	}
	if _, err := tr.Reserve(t0, "k", []Spend{native(destA, 1)}); err != nil {
		t.Fatalf("reserve after the acknowledgement: %v", err)
	}
	back := mustRestore(t, rules, nil, opts, snap, t0)
	if used, _, _ := back.Usage(t0, byName(t, back, "r")); used.Int64() != 2 {
		t.Fatalf("the acknowledged snapshot holds usage %s, want the charge 2", used)
	}
}

func TestMulSmall(t *testing.T) {
	max := u256{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	tests := []struct {
		name string
		a    u256
		n    uint64
		want u256
		over bool
	}{
		{"small", u256{3}, 4, u256{12}, false},
		{"carry into the next limb", u256{1 << 63}, 2, u256{0, 1}, false},
		{"zero", max, 0, u256{}, false},
		{"overflow", max, 2, u256{}, true},
		{"top limb overflow", u256{0, 0, 0, 1 << 63}, 2, u256{}, true},
	}
	for _, tc := range tests {
		got, over := mulSmall(tc.a, tc.n)
		if over != tc.over || !over && got != tc.want {
			t.Errorf("%s: got %v, %v", tc.name, got, over)
		}
	}
}
