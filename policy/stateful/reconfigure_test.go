package stateful

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
)

func mustConfig(t testing.TB, rules []TrackedLimit, vels []TrackedVelocity, opts Options) *Config {
	t.Helper()
	c, err := NewConfig(rules, vels, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewConfigRefuses: NewConfig checks what New checks.
func TestNewConfigRefuses(t *testing.T) {
	if _, err := NewConfig([]TrackedLimit{rule("r", "k", 0, 1)}, nil, Options{}); err == nil {
		t.Fatal("a zero window was accepted")
	}
	if _, err := NewConfig([]TrackedLimit{rule("r", "k", time.Hour, 1), rule("r", "k", time.Hour, 1)}, nil, Options{}); err == nil {
		t.Fatal("a repeated ID was accepted")
	}
}

// TestReconfigureKeepsTracks: tracks whose scope and window stay are the
// same objects: usage stays, and a reservation made before the change is
// released into the new configuration (a lower Max, a renamed rule).
func TestReconfigureKeepsTracks(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("r", "k", time.Hour, 10)}, []TrackedVelocity{{ID: vid("k", "v"), Key: "k", Window: time.Hour, MaxTransactions: 5}}, Options{})
	if got := spend(t, tr, t0, "k", native(destA, 4)); got != "" {
		t.Fatal(got)
	}
	res, err := tr.Reserve(t0, "k", []Spend{native(destA, 3)})
	if err != nil {
		t.Fatal(err)
	}
	tr.Reconfigure(mustConfig(t, []TrackedLimit{rule("renamed", "k", time.Hour, 8)}, []TrackedVelocity{{ID: vid("k", "v2"), Key: "k", Window: time.Hour, MaxTransactions: 5}}, Options{}), t0)
	if u := used(t, tr, t0, "renamed"); u != 7 {
		t.Fatalf("usage after the change %d, want 7", u)
	}
	if u := used(t, tr, t0, "v2"); u != 2 {
		t.Fatalf("velocity after the change %d, want 2", u)
	}
	if got := spend(t, tr, t0, "k", native(destA, 2)); got != "renamed" {
		t.Fatalf("7+2 against the new max 8: refused by %q, want renamed", got)
	}
	res.Release()
	if u := used(t, tr, t0, "renamed"); u != 4 {
		t.Fatalf("usage after releasing the earlier reservation %d, want 4", u)
	}
	if got := spend(t, tr, t0, "k", native(destA, 4)); got != "" {
		t.Fatalf("4+4 against 8 refused by %q", got)
	}
	if _, _, err := tr.Usage(t0, byName(t, tr, "r")); err == nil {
		t.Fatal("the old rule ID still answers")
	}
}

// TestReconfigureWindows: a new window of the same scope takes the usage
// of the current tracks as Restore would from a snapshot of them, and
// never counts less than was spent in it.
func TestReconfigureWindows(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("day", "k", 24*time.Hour, 1000)}, nil, Options{})
	spend(t, tr, t0, "k", native(destA, 100))
	spend(t, tr, t0.Add(20*time.Hour), "k", native(destA, 50))
	now := t0.Add(20*time.Hour + time.Minute)
	snap := mustMarshal(t, tr)
	rules := []TrackedLimit{rule("hour", "k", time.Hour, 60), rule("week", "k", 7*24*time.Hour, 1000)}
	tr.Reconfigure(mustConfig(t, rules, nil, Options{}), now)
	ref := mustRestore(t, rules, nil, Options{}, snap, now)
	for _, id := range []string{"hour", "week"} {
		if got, want := used(t, tr, now, id), used(t, ref, now, id); got != want {
			t.Errorf("%s: Reconfigure carried %d, Restore %d", id, got, want)
		}
	}
	if u := used(t, tr, now, "hour"); u < 50 {
		t.Fatalf("the hour window holds %d, less than the 50 spent in it", u)
	}
	if u := used(t, tr, now, "week"); u < 150 {
		t.Fatalf("the week window holds %d, less than the 150 spent in it", u)
	}
	if got := spend(t, tr, now, "k", native(destA, 11)); got != "hour" {
		t.Fatalf("50+11 in the hour: refused by %q, want hour", got)
	}
}

// TestReconfigureDroppedRule: a reservation in a track no rule reads any
// more is harmless on Release and Commit, and a key that lost its rules
// is unlimited.
func TestReconfigureDroppedRule(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("a", "k", time.Hour, 10), rule("b", "j", time.Hour, 10)}, nil, Options{})
	ra, err := tr.Reserve(t0, "k", []Spend{native(destA, 5)})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := tr.Reserve(t0, "j", []Spend{native(destA, 5)})
	if err != nil {
		t.Fatal(err)
	}
	tr.Reconfigure(mustConfig(t, []TrackedLimit{rule("b", "j", time.Hour, 10)}, nil, Options{}), t0)
	ra.Release()
	rb.Commit()
	ra.Commit()
	if u := used(t, tr, t0, "b"); u != 5 {
		t.Fatalf("b holds %d, want 5", u)
	}
	if got := spend(t, tr, t0, "k", native(destA, 1000)); got != "" {
		t.Fatalf("a key with no rules was refused by %q", got)
	}
	// Back again: the old track is gone, so the rule starts from what the
	// tracker still holds for its scope (nothing).
	tr.Reconfigure(mustConfig(t, []TrackedLimit{rule("a", "k", time.Hour, 10), rule("b", "j", time.Hour, 10)}, nil, Options{}), t0)
	if u := used(t, tr, t0, "a"); u != 0 {
		t.Fatalf("a holds %d after coming back, want 0", u)
	}
}

// TestReconfigureRefusals: refusal counts survive, in the same counters or
// moved into a new refusal window; the checkpoint bookkeeping is
// untouched (the count beyond the acknowledged checkpoint, and the
// acknowledgement of a checkpoint taken before the change).
func TestReconfigureRefusals(t *testing.T) {
	rules := []TrackedLimit{rule("r", "k", time.Hour, 10)}
	opts := Options{RequireFresh: true, CheckpointEvery: 3, RefusalWindow: time.Hour}
	tr := mustNew(t, rules, nil, opts)
	for range 3 {
		tr.RecordRefusal(t0, "k")
	}
	tr.RecordRefusal(t0, "j")
	spend(t, tr, t0, "k", native(destA, 1))
	gen, _, err := tr.Checkpoint(t0)
	if err != nil {
		t.Fatal(err)
	}
	spend(t, tr, t0, "k", native(destA, 1))
	spend(t, tr, t0, "k", native(destA, 1))

	tr.Reconfigure(mustConfig(t, rules, nil, opts), t0)
	if n := tr.Refusals(t0, "k", time.Hour); n != 3 {
		t.Fatalf("refusals of k after a change %d, want 3", n)
	}
	if u := tr.Unacknowledged(); u != 3 {
		t.Fatalf("Unacknowledged = %d, want 3", u)
	}
	if got := spend(t, tr, t0, "k", native(destA, 1)); got != refusal.RuleCheckpoint {
		t.Fatalf("a fourth transaction beyond the acknowledged checkpoint: %q, want %s", got, refusal.RuleCheckpoint)
	}
	if err := tr.Acknowledge(gen); err != nil {
		t.Fatalf("acknowledging the checkpoint taken before the change: %v", err)
	}
	if u := tr.Unacknowledged(); u != 2 {
		t.Fatalf("Unacknowledged after the acknowledgement = %d, want 2", u)
	}

	// A longer refusal window, and one counter for one key at most.
	later := t0.Add(10 * time.Minute)
	opts2 := opts
	opts2.RefusalWindow, opts2.MaxRefusalKeys = 48*time.Hour, 1
	tr.Reconfigure(mustConfig(t, rules, nil, opts2), later)
	if n := tr.Refusals(later, "k", 48*time.Hour); n < 3 { // one of the keys counts in the overflow counter
		t.Fatalf("refusals of k lost: %d, want at least 3", n)
	}
	if n := tr.Refusals(later, "j", 48*time.Hour); n < 1 {
		t.Fatalf("refusals of j lost: %d", n)
	}
	// A shorter one drops only what is older than it.
	tr.RecordRefusal(later, "k")
	opts3 := opts2
	opts3.RefusalWindow = 5 * time.Minute
	tr.Reconfigure(mustConfig(t, rules, nil, opts3), later)
	if n := tr.Refusals(later, "k", time.Minute); n < 1 {
		t.Fatalf("the refusal just recorded was lost: %d", n)
	}
}

// TestReconfigureSnapshot: a snapshot after a change that keeps every
// track is the one before it (nothing was rebuilt), and a Config serves
// several trackers.
func TestReconfigureSnapshot(t *testing.T) {
	rules := []TrackedLimit{rule("r", "k", time.Hour, 10), {ID: lid("k", "d"), Key: "k", ChainID: 1, Destination: ptr(destB), Window: time.Hour, Max: big.NewInt(3)}}
	c := mustConfig(t, rules, nil, Options{})
	rules[0].Max.SetInt64(0) // NewConfig keeps its own copies
	for range 2 {
		tr := mustNew(t, rules, nil, Options{})
		spend(t, tr, t0, "k", native(destB, 2), native(destA, 1))
		before := mustMarshal(t, tr)
		tr.Reconfigure(c, t0)
		if after := mustMarshal(t, tr); !bytes.Equal(before, after) {
			t.Fatal("the snapshot changed although every track was kept")
		}
		if got := spend(t, tr, t0, "k", native(destA, 7)); got != "" {
			t.Fatalf("3+7 against the config's max 10 refused by %q", got)
		}
	}
}

// TestReconfigureConcurrent: reservations racing changes of the
// configuration never exceed the limit in force, and a change that keeps
// the tracks loses none of them (run with -race).
func TestReconfigureConcurrent(t *testing.T) {
	const max = 300
	rules := func(v int) []TrackedLimit {
		return []TrackedLimit{rule("r", "k", time.Hour, max), rule("other", "j", time.Duration(v+1)*time.Minute, 5)}
	}
	tr := mustNew(t, rules(0), nil, Options{})
	var wg sync.WaitGroup
	signed := make(chan int, 8)
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 2 * max / 8 {
				res, err := tr.Reserve(t0, "k", []Spend{native(destA, 1)})
				if err != nil {
					continue
				}
				if n%5 == 4 { // some are not signed and come back
					res.Release()
					res, err = tr.Reserve(t0, "k", []Spend{native(destA, 1)})
					if err != nil {
						continue
					}
				}
				res.Commit()
				n++
			}
			signed <- n
		})
	}
	wg.Go(func() {
		for v := range 200 {
			tr.Reconfigure(mustConfig(t, rules(v), nil, Options{}), t0)
			tr.RecordRefusal(t0, "k")
		}
	})
	wg.Wait()
	close(signed)
	total := 0
	for n := range signed {
		total += n
	}
	if total != max || used(t, tr, t0, "r") != max {
		t.Fatalf("signed %d, usage %d, want exactly %d", total, used(t, tr, t0, "r"), max)
	}
	if n := tr.Refusals(t0, "k", time.Hour); n != 200 {
		t.Fatalf("refusals %d, want 200", n)
	}
}

// TestReconfigureReleaseIntoCopies: a reservation made before a change of
// window, released after it, is taken out of the new window too, through
// chains of changes; one made after a copy is not taken out twice.
func TestReconfigureReleaseIntoCopies(t *testing.T) {
	tr := mustNew(t, []TrackedLimit{rule("day", "k", 24*time.Hour, 1000)}, nil, Options{})
	r1, _ := tr.Reserve(t0, "k", []Spend{native(destA, 100)})
	r2, _ := tr.Reserve(t0, "k", []Spend{native(destA, 30)})
	spend(t, tr, t0, "k", native(destA, 50))
	tr.Reconfigure(mustConfig(t, []TrackedLimit{rule("hour", "k", time.Hour, 1000), rule("week", "k", 7*24*time.Hour, 1000)}, nil, Options{}), t0)
	r3, _ := tr.Reserve(t0, "k", []Spend{native(destA, 7)})
	r1.Release()
	if h, w := used(t, tr, t0, "hour"), used(t, tr, t0, "week"); h != 87 || w != 87 {
		t.Fatalf("after releasing 100 reserved before the change: hour %d, week %d, want 87", h, w)
	}
	tr.Reconfigure(mustConfig(t, []TrackedLimit{rule("two", "k", 2*time.Hour, 1000), rule("week", "k", 7*24*time.Hour, 1000)}, nil, Options{}), t0)
	r2.Release()
	r3.Release()
	if h, w := used(t, tr, t0, "two"), used(t, tr, t0, "week"); h != 50 || w != 50 {
		t.Fatalf("after releasing across two changes: two hours %d, week %d, want 50", h, w)
	}
}

// TestReconfigureNeverUndercounts: random reservations, commits, releases
// and changes of window: at a fixed time every rule counts exactly what is
// committed or outstanding; as time passes, never less than that in its
// window. (As time passes a rule "c" keeps a day's usage throughout: a
// window longer than every earlier one can only hold what they kept, as in
// Restore.)
func TestReconfigureNeverUndercounts(t *testing.T) {
	windows := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 24 * time.Hour}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, moving := range []bool{false, true} {
		type held struct {
			res *Reservation
			amt int64
			at  time.Time
		}
		var outstanding []held
		var kept []held // committed
		ids := []string{"a", "b"}
		config := func() *Config {
			var rules []TrackedLimit
			for _, id := range ids {
				rules = append(rules, rule(id, "k", windows[rng.IntN(len(windows))], 1<<40))
			}
			if moving {
				rules = append(rules, rule("c", "k", 24*time.Hour, 1<<40))
			}
			return mustConfig(t, rules, nil, Options{BucketsPerWindow: 4})
		}
		tr := mustNew(t, nil, nil, Options{BucketsPerWindow: 4})
		tr.Reconfigure(config(), t0)
		now := t0
		for step := range 2000 {
			if moving {
				now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
			}
			switch op := rng.IntN(10); {
			case op < 4:
				amt := int64(1 + rng.IntN(100))
				res, err := tr.Reserve(now, "k", []Spend{native(destA, amt)})
				if err != nil {
					t.Fatal(err)
				}
				outstanding = append(outstanding, held{res, amt, now})
			case op < 6 && len(outstanding) > 0:
				i := rng.IntN(len(outstanding))
				outstanding[i].res.Commit()
				kept = append(kept, outstanding[i])
				outstanding = append(outstanding[:i], outstanding[i+1:]...)
			case op < 8 && len(outstanding) > 0:
				i := rng.IntN(len(outstanding))
				outstanding[i].res.Release()
				outstanding = append(outstanding[:i], outstanding[i+1:]...)
			default:
				tr.Reconfigure(config(), now)
			}
			for _, id := range ids {
				_, _, err := tr.Usage(now, lid("k", id))
				if err != nil {
					t.Fatal(err)
				}
				u := used(t, tr, now, id)
				w := tr.rules[lid("k", id)].tr.id.window
				var exact int64
				for _, h := range append(slices.Clone(kept), outstanding...) {
					if h.at.UnixNano() > now.UnixNano()-w {
						exact += h.amt
					}
				}
				if u < exact || !moving && u != exact {
					t.Fatalf("moving %v, step %d: rule %s (window %v) counts %d, want %d", moving, step, id, time.Duration(w), u, exact)
				}
			}
		}
	}
}
