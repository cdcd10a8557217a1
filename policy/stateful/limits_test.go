package stateful

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
)

func TestNewRefuses(t *testing.T) {
	ok := rule("r", "hot", time.Hour, 10)
	huge := new(big.Int).Lsh(big.NewInt(1), 256)
	tests := []struct {
		name  string
		rules []TrackedLimit
		vels  []TrackedVelocity
		opts  Options
		want  string
	}{
		{"no id", []TrackedLimit{{Key: "hot", Window: time.Hour, Max: big.NewInt(1)}}, nil, Options{}, "want a rolling_limit id"},
		{"a velocity id", []TrackedLimit{{ID: RuleID{Kind: KindVelocity, Key: "hot"}, Key: "hot", Window: time.Hour, Max: big.NewInt(1)}}, nil, Options{}, "want a rolling_limit id"},
		{"a limit id on a velocity", nil, []TrackedVelocity{{ID: lid("hot", "v"), Key: "hot", Window: time.Hour, MaxTransactions: 1}}, Options{}, "want a velocity id"},
		{"another key's id", []TrackedLimit{{ID: lid("cold", "r"), Key: "hot", Window: time.Hour, Max: big.NewInt(1)}}, nil, Options{}, "not the rule's key"},
		{"negative index", []TrackedLimit{{ID: RuleID{Kind: KindRollingLimit, Key: "hot", Index: -1}, Key: "hot", Window: time.Hour, Max: big.NewInt(1)}}, nil, Options{}, "index"},
		{"index too large", []TrackedLimit{{ID: RuleID{Kind: KindRollingLimit, Key: "hot", Index: MaxRules}, Key: "hot", Window: time.Hour, Max: big.NewInt(1)}}, nil, Options{}, "index"},
		{"long id", []TrackedLimit{rule("r", strings.Repeat("k", MaxIDLen), time.Hour, 1)}, nil, Options{}, "at most 128 bytes"},
		{"duplicate id", []TrackedLimit{ok, ok}, nil, Options{}, "used twice"},
		{"key with a colon", []TrackedLimit{rule("r", "hot:1", time.Hour, 1)}, nil, Options{}, "with ':'"},
		{"empty key", []TrackedLimit{rule("r", "", time.Hour, 1)}, nil, Options{}, "key: want"},
		{"long key", []TrackedLimit{rule("r", strings.Repeat("k", MaxKeyLen+1), time.Hour, 1)}, nil, Options{}, "key: want"},
		{"zero window", []TrackedLimit{rule("r", "hot", 0, 1)}, nil, Options{}, "window"},
		{"negative window", []TrackedLimit{rule("r", "hot", -time.Second, 1)}, nil, Options{}, "window"},
		{"window too long", []TrackedLimit{rule("r", "hot", MaxTrackedWindow+1, 1)}, nil, Options{}, "window"},
		{"nil max", []TrackedLimit{{ID: lid("hot", "r"), Key: "hot", Window: time.Hour}}, nil, Options{}, "max"},
		{"negative max", []TrackedLimit{rule("r", "hot", time.Hour, -1)}, nil, Options{}, "max"},
		{"max of 2^256", []TrackedLimit{{ID: lid("hot", "r"), Key: "hot", Window: time.Hour, Max: huge}}, nil, Options{}, "max"},
		{"velocity without key", nil, []TrackedVelocity{{ID: vid("", "v"), Window: time.Hour}}, Options{}, "key: want"},
		{"negative buckets", nil, nil, Options{BucketsPerWindow: -1}, "BucketsPerWindow"},
		{"too many buckets", nil, nil, Options{BucketsPerWindow: MaxBucketsPerWindow + 1}, "BucketsPerWindow"},
		{"negative checkpoint every", nil, nil, Options{CheckpointEvery: -1}, "CheckpointEvery"},
		{"negative interval", nil, nil, Options{CheckpointInterval: -1}, "CheckpointInterval"},
		{"skew too large", nil, nil, Options{MaxSkew: 2 * time.Hour}, "MaxSkew"},
		{"refusal keys", nil, nil, Options{MaxRefusalKeys: MaxRefusalKeys + 1}, "MaxRefusalKeys"},
		{"snapshot too large", manyRules(MaxRules), nil, Options{BucketsPerWindow: MaxBucketsPerWindow}, "over the"},
		{"too many rules", manyRules(MaxRules + 1), nil, Options{}, "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTracker(tc.rules, tc.vels, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "limits: ") {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := NewTracker(manyRules(MaxRules), nil, Options{}); err != nil {
		t.Fatalf("the most rules with default options: %v", err)
	}
}

func manyRules(n int) []TrackedLimit {
	rs := make([]TrackedLimit, n)
	for i := range rs {
		key := "key" + itoa(i)
		rs[i] = TrackedLimit{ID: RuleID{Kind: KindRollingLimit, Key: key}, Key: key, ChainID: 1, Window: 24 * time.Hour, Max: big.NewInt(1)}
	}
	return rs
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// TestWindowBoundary: usage counts while its bucket's last instant is in
// the window (now−W, now], and not a nanosecond longer.
func TestWindowBoundary(t *testing.T) {
	const W = 64 * time.Second // with 64 buckets, 1 s each
	tests := []struct {
		name    string
		window  time.Duration
		at      time.Duration // time of the spend after t0
		counted time.Duration // last time it is counted, after t0
	}{
		// A spend at the last instant of its bucket expires exactly W later.
		{"last instant of a bucket", W, time.Second - 1, time.Second - 1 + W - 1},
		// One at the start of its bucket is counted for a bucket longer:
		// up to W + w − 1 ns in all.
		{"start of a bucket", W, 0, W + time.Second - 2},
		{"middle of a bucket", W, 500 * time.Millisecond, W + time.Second - 2},
		// With 1 ns buckets, the window is exact.
		{"one-nanosecond buckets", 64, 0, 63},
		{"one-nanosecond buckets, later", 64, 17, 17 + 63},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustNew(t, []TrackedLimit{rule("r", "hot", tc.window, 10)}, nil, Options{})
			if got := spend(t, tr, t0.Add(tc.at), "hot", native(destA, 10)); got != "" {
				t.Fatalf("refused by %s", got)
			}
			end := t0.Add(tc.counted)
			if rule, _ := check(t, tr, end, "hot", native(destA, 1)); rule != "r" {
				t.Fatalf("at the last counted instant: rule %q", rule)
			}
			if u := used(t, tr, end, "r"); u != 10 {
				t.Fatalf("usage %d at the last counted instant", u)
			}
			if u := used(t, tr, end.Add(1), "r"); u != 0 {
				t.Fatalf("usage %d one nanosecond later", u)
			}
			if got := spend(t, tr, end.Add(1), "hot", native(destA, 10)); got != "" {
				t.Fatalf("refused by %s one nanosecond later", got)
			}
			// The exact rolling window never holds more than the limit: the
			// second spend is at least W after the first.
			if gap := tc.counted + 1 - tc.at; gap < tc.window {
				t.Fatalf("the budget came back after %v, window %v", gap, tc.window)
			}
		})
	}
}

// TestRuleMatching: each rule counts only its key, chain, asset and (if it
// names one) destination.
func TestRuleMatching(t *testing.T) {
	dayAny := rule("any", "hot", 24*time.Hour, 100)
	toA := rule("to-a", "hot", 24*time.Hour, 30)
	toA.Destination = ptr(destA)
	usdcAny := rule("usdc", "hot", 24*time.Hour, 50)
	usdcAny.Asset = usdc
	chain2 := rule("chain2", "hot", 24*time.Hour, 5)
	chain2.ChainID = 2
	cold := rule("cold", "cold", 24*time.Hour, 1)
	rules := []TrackedLimit{dayAny, toA, usdcAny, chain2, cold}

	steps := []struct {
		name   string
		key    string
		spends []Spend
		want   string // refusing rule, "" if it fits
	}{
		{"to A within both", "hot", []Spend{native(destA, 30)}, ""},
		{"to A over its rule", "hot", []Spend{native(destA, 1)}, "to-a"},
		{"to B counts against any only", "hot", []Spend{native(destB, 70)}, ""},
		{"any is full", "hot", []Spend{native(destB, 1)}, "any"},
		{"zero amount fits", "hot", []Spend{native(destB, 0)}, ""},
		{"usdc is another asset", "hot", []Spend{token(usdc, destA, 50)}, ""},
		{"usdc full", "hot", []Spend{token(usdc, destB, 1)}, "usdc"},
		{"weth has no rule", "hot", []Spend{token(weth, destB, 1_000_000)}, ""},
		{"chain 2", "hot", []Spend{{ChainID: 2, To: destA, Amount: big.NewInt(5)}}, ""},
		{"chain 2 full", "hot", []Spend{{ChainID: 2, To: destB, Amount: big.NewInt(1)}}, "chain2"},
		{"chain 3 has no rule", "hot", []Spend{{ChainID: 3, To: destB, Amount: big.NewInt(1000)}}, ""},
		{"cold is another key", "cold", []Spend{native(destA, 1)}, ""},
		{"cold full", "cold", []Spend{native(destA, 1)}, "cold"},
		{"key without rules", "warm", []Spend{native(destA, 1<<40)}, ""},
		{"no spends", "hot", nil, ""},
	}
	tr := mustNew(t, rules, nil, Options{})
	for i, s := range steps {
		now := t0.Add(time.Duration(i) * time.Minute)
		if got := spend(t, tr, now, s.key, s.spends...); got != s.want {
			t.Fatalf("step %d (%s): refused by %q, want %q", i, s.name, got, s.want)
		}
	}
	want := map[string]int64{"any": 100, "to-a": 30, "usdc": 50, "chain2": 5, "cold": 1}
	for id, w := range want {
		if u := used(t, tr, t0.Add(time.Hour), id); u != w {
			t.Errorf("usage of %s: %d, want %d", id, u, w)
		}
	}
}

// TestSpendsAddUp: the spends of one transaction that match a rule are
// summed before the rule is checked.
func TestSpendsAddUp(t *testing.T) {
	toA := rule("to-a", "hot", time.Hour, 30)
	toA.Destination = ptr(destA)
	tests := []struct {
		name   string
		spends []Spend
		want   string
	}{
		{"two halves fit", []Spend{native(destA, 15), native(destA, 15)}, ""},
		{"two over", []Spend{native(destA, 20), native(destA, 11)}, "to-a"},
		{"others do not count", []Spend{native(destA, 30), native(destB, 1000), token(usdc, destA, 1000)}, ""},
		{"many small", repeatSpend(native(destA, 1), 31), "to-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustNew(t, []TrackedLimit{toA}, nil, Options{})
			if got := spend(t, tr, t0, "hot", tc.spends...); got != tc.want {
				t.Fatalf("refused by %q, want %q", got, tc.want)
			}
		})
	}
}

func repeatSpend(s Spend, n int) []Spend {
	out := make([]Spend, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestInvalidAmounts(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("r", "hot", time.Hour, 10)}, nil, Options{})
	for _, amt := range []*big.Int{nil, big.NewInt(-1), new(big.Int).Lsh(big.NewInt(1), 256)} {
		s := Spend{ChainID: 1, To: destA, Amount: amt}
		_, err := tr.Reserve(t0, "hot", []Spend{s})
		var ref *Refusal
		if err == nil || errors.As(err, &ref) {
			t.Errorf("amount %v: error %v, want a plain error", amt, err)
		}
		if err := tr.Check(t0, "hot", []Spend{s}); err == nil || errors.As(err, &ref) {
			t.Errorf("amount %v: Check says %v, want a plain error", amt, err)
		}
		// Even for a key without rules.
		if _, err := tr.Reserve(t0, "other", []Spend{s}); err == nil {
			t.Errorf("amount %v accepted for a key without rules", amt)
		}
	}
	if u := used(t, tr, t0, "r"); u != 0 {
		t.Fatalf("usage %d after invalid requests", u)
	}
	// Amounts near 2^256 cannot overflow a sum into passing.
	big255 := new(big.Int).Lsh(big.NewInt(1), 255)
	maxRule := TrackedLimit{ID: lid("k", "m"), Key: "k", ChainID: 1, Window: time.Hour, Max: new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))}
	tr = mustNew(t, []TrackedLimit{maxRule}, nil, Options{})
	s := Spend{ChainID: 1, To: destA, Amount: big255}
	if got := spend(t, tr, t0, "k", s, s); got != "m" {
		t.Fatalf("2^255 + 2^255 in one transaction: refused by %q", got)
	}
	if got := spend(t, tr, t0, "k", s); got != "" {
		t.Fatalf("2^255: refused by %q", got)
	}
	if got := spend(t, tr, t0, "k", s); got != "m" {
		t.Fatalf("a second 2^255: refused by %q", got)
	}
}

func TestVelocity(t *testing.T) {
	vels := []TrackedVelocity{
		{ID: vid("hot", "per-10m"), Key: "hot", Window: 10 * time.Minute, MaxTransactions: 3},
		{ID: vid("hot", "per-day"), Key: "hot", Window: 24 * time.Hour, MaxTransactions: 5},
		{ID: vid("cold", "frozen"), Key: "cold", Window: time.Hour, MaxTransactions: 0},
	}
	steps := []struct {
		at   time.Duration
		key  string
		want string
	}{
		{0, "hot", ""},
		{time.Minute, "hot", ""},
		{2 * time.Minute, "hot", ""},
		{3 * time.Minute, "hot", "per-10m"},
		// Buckets are 9.375 s: the one holding 0:00 ends at 0:09.375, so
		// the first transaction is gone at 10:10, and the one holding 1:00
		// ends at 1:05.625, so the second is still there at 11:00.
		{10*time.Minute + 10*time.Second, "hot", ""},
		{11 * time.Minute, "hot", "per-10m"},
		{11*time.Minute + 10*time.Second, "hot", ""},
		{13 * time.Minute, "hot", "per-day"},
		{time.Hour, "hot", "per-day"},
		{0, "cold", "frozen"},
		{0, "other", ""},
	}
	tr := mustNew(t, nil, vels, Options{})
	for i, s := range steps {
		// A transaction with or without spends counts the same.
		var spends []Spend
		if i%2 == 0 {
			spends = []Spend{native(destA, 1)}
		}
		if got := spend(t, tr, t0.Add(s.at), s.key, spends...); got != s.want {
			t.Fatalf("step %d: refused by %q, want %q", i, got, s.want)
		}
	}
	// A released transaction gives its count back.
	tr = mustNew(t, nil, vels[:1], Options{})
	for range 3 {
		r, err := tr.Reserve(t0, "hot", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	if u := used(t, tr, t0, "per-10m"); u != 0 {
		t.Fatalf("%d transactions counted after releases", u)
	}
}

func TestReserveRelease(t *testing.T) {
	r100 := rule("r", "hot", time.Hour, 100)
	t.Run("reserved counts until released", func(t *testing.T) {
		tr := mustNew(t, []TrackedLimit{r100}, nil, Options{})
		a, err := tr.Reserve(t0, "hot", []Spend{native(destA, 60)})
		if err != nil {
			t.Fatal(err)
		}
		if got := spend(t, tr, t0, "hot", native(destA, 50)); got != "r" {
			t.Fatalf("second reservation: refused by %q", got)
		}
		a.Release()
		a.Release()
		a.Commit() // after Release: nothing
		if got := spend(t, tr, t0, "hot", native(destA, 100)); got != "" {
			t.Fatalf("after the release: refused by %q", got)
		}
	})
	t.Run("commit keeps", func(t *testing.T) {
		tr := mustNew(t, []TrackedLimit{r100}, nil, Options{})
		a, err := tr.Reserve(t0, "hot", []Spend{native(destA, 60)})
		if err != nil {
			t.Fatal(err)
		}
		a.Commit()
		a.Release() // after Commit: nothing
		if u := used(t, tr, t0, "r"); u != 60 {
			t.Fatalf("usage %d", u)
		}
	})
	t.Run("release after expiry takes nothing from newer usage", func(t *testing.T) {
		tr := mustNew(t, []TrackedLimit{r100}, nil, Options{})
		a, err := tr.Reserve(t0, "hot", []Spend{native(destA, 60)})
		if err != nil {
			t.Fatal(err)
		}
		// A full lap of the ring later, the same slot holds a new bucket.
		later := t0.Add(time.Hour + 2*time.Hour/64)
		if got := spend(t, tr, later, "hot", native(destA, 100)); got != "" {
			t.Fatalf("refused by %q", got)
		}
		a.Release()
		if u := used(t, tr, later, "r"); u != 100 {
			t.Fatalf("usage %d, want 100", u)
		}
	})
	t.Run("refused reserves nothing", func(t *testing.T) {
		toA := rule("to-a", "hot", time.Hour, 10)
		toA.Destination = ptr(destA)
		tr := mustNew(t, []TrackedLimit{r100, toA}, []TrackedVelocity{{ID: vid("hot", "v"), Key: "hot", Window: time.Hour, MaxTransactions: 10}}, Options{})
		if got := spend(t, tr, t0, "hot", native(destA, 11)); got != "to-a" {
			t.Fatalf("refused by %q", got)
		}
		for _, id := range []string{"r", "to-a", "v"} {
			if u := used(t, tr, t0, id); u != 0 {
				t.Errorf("usage of %s: %d", id, u)
			}
		}
		if tr.Dirty() {
			t.Error("a refusal made the tracker dirty")
		}
	})
}

// TestConcurrentReservations: goroutines racing for one budget never get
// more than it together, and releases return budget to the others.
func TestConcurrentReservations(t *testing.T) {
	const max, amt, workers, tries = 1000, 7, 32, 64
	tr := mustNew(t, []TrackedLimit{rule("r", "hot", time.Hour, max)},
		[]TrackedVelocity{{ID: vid("hot", "v"), Key: "hot", Window: time.Hour, MaxTransactions: 1 << 20}}, Options{})
	var mu sync.Mutex
	committed := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range tries {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				r, err := tr.Reserve(now, "hot", []Spend{native(destA, amt)})
				if err != nil {
					continue
				}
				if (w+i)%3 == 0 {
					r.Release() // signing failed
					continue
				}
				r.Commit()
				mu.Lock()
				committed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if committed*amt > max {
		t.Fatalf("%d committed reservations of %d: %d, over the limit of %d", committed, amt, committed*amt, max)
	}
	if committed != max/amt {
		t.Fatalf("%d committed, want %d (the budget filled exactly)", committed, max/amt)
	}
	if u := used(t, tr, t0.Add(time.Second), "r"); u != int64(committed*amt) {
		t.Fatalf("usage %d, want %d", u, committed*amt)
	}
}

// TestSplitAttack: an amount over the limit split into many small
// transactions is refused as soon as the window's sum would exceed the
// limit, and for as long as the window holds the earlier ones.
func TestSplitAttack(t *testing.T) {
	const eth = 1000 // amounts in milli-ether
	rules := []TrackedLimit{rule("daily", "hot", 24*time.Hour, 10*eth)}
	tr := mustNew(t, rules, nil, Options{})
	// 0.3 ETH a minute for 48 hours: 33 fit (9.9 ETH), the 34th would make
	// 10.2 ETH and is refused, and so is everything until the first ones
	// leave the window.
	var accepted []time.Duration
	for m := range 48 * 60 {
		at := time.Duration(m) * time.Minute
		if spend(t, tr, t0.Add(at), "hot", native(destA, 3*eth/10)) == "" {
			accepted = append(accepted, at)
		}
	}
	if len(accepted) < 33 || accepted[32] != 32*time.Minute {
		t.Fatalf("accepted %v", accepted[:min(len(accepted), 34)])
	}
	if accepted[33] < 24*time.Hour {
		t.Fatalf("the 34th split was accepted at %v, inside the first window", accepted[33])
	}
	// No 24 h window, exactly computed, holds more than 10 ETH.
	for i := range accepted {
		n := 0
		for j := i; j < len(accepted) && accepted[j]-accepted[i] < 24*time.Hour; j++ {
			n++
		}
		if n > 33 {
			t.Fatalf("%d splits in the 24 h from %v", n, accepted[i])
		}
	}
}

// TestBucketsAgainstExact compares the tracker with an exact computation
// over random traffic: it never lets a window exceed the limit, and it
// refuses only where the exact sum over a window one bucket longer would
// also be over.
func TestBucketsAgainstExact(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		window := time.Duration(1+rng.IntN(3600)) * time.Second
		buckets := 1 + rng.IntN(100)
		width := time.Duration(widthOf(int64(window), buckets))
		const max = 1000
		tr := mustNew(t, []TrackedLimit{rule("r", "hot", window, max)}, nil, Options{BucketsPerWindow: buckets})
		type ev struct {
			at  time.Time
			amt int64
		}
		var log []ev
		sumSince := func(from, to time.Time) (s int64) { // (from, to]
			for _, e := range log {
				if e.at.After(from) && !e.at.After(to) {
					s += e.amt
				}
			}
			return s
		}
		now := t0.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		for range 2000 {
			now = now.Add(time.Duration(rng.Int64N(int64(window) / 8)))
			amt := 1 + rng.Int64N(200)
			exact := sumSince(now.Add(-window), now)
			got := spend(t, tr, now, "hot", native(destA, amt))
			switch {
			case got == "" && exact+amt > max:
				t.Fatalf("seed %d: accepted %d with %d in the window: over %d", seed, amt, exact, max)
			case got != "" && sumSince(now.Add(-window-width), now)+amt <= max:
				t.Fatalf("seed %d: refused %d with %d in the window and one bucket", seed, amt, sumSince(now.Add(-window-width), now))
			}
			if got == "" {
				log = append(log, ev{now, amt})
			}
			for len(log) > 0 && !log[0].at.After(now.Add(-window-width)) {
				log = log[1:]
			}
		}
	}
}

// TestClockNeverGoesBack: a time earlier than one already seen counts as
// the latest, so usage cannot be made to expire sooner.
func TestClockNeverGoesBack(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("r", "hot", time.Hour, 10)}, nil, Options{})
	late := t0.Add(2 * time.Hour)
	if got := spend(t, tr, late, "hot", native(destA, 10)); got != "" {
		t.Fatal(got)
	}
	// Recorded at the latest time seen, not at t0, so it lasts until late+1h.
	if got := spend(t, tr, t0, "hot", native(destA, 1)); got != "r" {
		t.Fatalf("at an earlier time: refused by %q", got)
	}
	for _, bad := range []time.Time{{}, time.Unix(-1, 0), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if err := tr.Check(bad, "hot", []Spend{native(destA, 1)}); err == nil {
			t.Errorf("at %v the window restarted", bad)
		}
	}
	if got := spend(t, tr, late.Add(time.Hour+time.Minute), "hot", native(destA, 10)); got != "" {
		t.Fatalf("after the window: refused by %q", got)
	}
}

func TestRefusals(t *testing.T) {
	t.Run("window", func(t *testing.T) {
		tr := mustNew(t, nil, nil, Options{RefusalWindow: 64 * time.Minute}) // buckets of 1 min
		for i := range 5 {
			tr.RecordRefusal(t0.Add(time.Duration(i)*time.Minute+30*time.Second), "hot")
		}
		tr.RecordRefusal(t0, "cold")
		tests := []struct {
			at     time.Duration
			key    string
			window time.Duration
			want   int
		}{
			// Queries in time order: time never goes back in a Tracker.
			{5*time.Minute - 2, "hot", 2 * time.Minute, 3}, // 2:30, whose bucket ends at 2:59.999999999, 3:30, 4:30
			{5*time.Minute - 1, "hot", 2 * time.Minute, 2}, // now it does not
			{5 * time.Minute, "hot", 2 * time.Minute, 2},   // 3:30 and 4:30
			{5 * time.Minute, "hot", time.Hour, 5},
			{5 * time.Minute, "hot", 0, 0},
			{5 * time.Minute, "cold", time.Hour, 1},
			{5 * time.Minute, "warm", time.Hour, 0},
			{64 * time.Minute, "hot", time.Hour, 1},
			{64 * time.Minute, "hot", 24 * time.Hour, 5},   // capped at the refusal window
			{65*time.Minute - 1, "hot", 24 * time.Hour, 4}, // the first bucket has left the 64 min window
			{69*time.Minute - 2, "hot", 1000 * time.Hour, 1},
			{69*time.Minute - 1, "hot", 1000 * time.Hour, 0},
			{69 * time.Minute, "hot", 1000 * time.Hour, 0},
		}
		for _, tc := range tests {
			if got := tr.Refusals(t0.Add(tc.at), tc.key, tc.window); got != tc.want {
				t.Errorf("Refusals(%v, %s, %v) = %d, want %d", tc.at, tc.key, tc.window, got, tc.want)
			}
		}
	})
	t.Run("overflow", func(t *testing.T) {
		tr := mustNew(t, nil, nil, Options{MaxRefusalKeys: 2, RefusalWindow: time.Hour})
		tr.RecordRefusal(t0, "a")
		tr.RecordRefusal(t0, "b")
		tr.RecordRefusal(t0, "c")                              // no room: overflow
		tr.RecordRefusal(t0, strings.Repeat("x", MaxKeyLen+1)) // too long: overflow
		for key, want := range map[string]int{"a": 3, "b": 3, "c": 2, "d": 2} {
			if got := tr.Refusals(t0, key, time.Hour); got != want {
				t.Errorf("%s: %d refusals, want %d", key, got, want)
			}
		}
		// Once a and b have left the window, their counters are reused.
		later := t0.Add(2 * time.Hour)
		tr.RecordRefusal(later, "d")
		tr.RecordRefusal(later, "e")
		tr.RecordRefusal(later, "f")
		for key, want := range map[string]int{"d": 2, "e": 2, "f": 1, "a": 1} {
			if got := tr.Refusals(later, key, time.Hour); got != want {
				t.Errorf("later, %s: %d refusals, want %d", key, got, want)
			}
		}
	})
	t.Run("dirty", func(t *testing.T) {
		tr := mustNew(t, nil, nil, Options{})
		if tr.Dirty() {
			t.Fatal("new tracker dirty")
		}
		tr.RecordRefusal(t0, "a")
		if !tr.Dirty() {
			t.Fatal("a refusal is not a change")
		}
	})
}

// TestRefusalRules: a refusal names the rule of the kind of limit that
// refused (the enclave answers with it, whatever the limit's ID), and the
// limit's ID.
func TestRefusalRules(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("daily", "hot", time.Hour, 10), rule("warm", "warm", time.Hour, 10)},
		[]TrackedVelocity{{ID: vid("hot", "twice"), Key: "hot", Window: time.Hour, MaxTransactions: 2}},
		Options{RequireFresh: true, CheckpointEvery: 3})
	want := func(err error, rule, id string) {
		t.Helper()
		var ref *Refusal
		if !errors.As(err, &ref) || ref.Rule != rule || nameOf(ref.ID) != id {
			t.Fatalf("refusal %v (%+v), want rule %q, id %q", err, ref, rule, id)
		}
	}
	want(tr.Check(t0, "hot", []Spend{native(destA, 11)}), refusal.RuleRollingLimit, "daily")
	for range 2 {
		if got := spend(t, tr, t0, "hot", native(destA, 1)); got != "" {
			t.Fatalf("refused by %q", got)
		}
	}
	want(tr.Check(t0, "hot", []Spend{native(destA, 1)}), refusal.RuleVelocity, "twice")
	if got := spend(t, tr, t0, "warm", native(destA, 1)); got != "" {
		t.Fatalf("refused by %q", got)
	}
	_, err := tr.Reserve(t0, "warm", nil)
	want(err, refusal.RuleCheckpoint, "")
}
