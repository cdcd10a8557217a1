package stateful

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
)

func TestCheckpointAcknowledge(t *testing.T) {
	rules := []TrackedLimit{rule("r", "hot", time.Hour, 1000)}
	tr := mustNew(t, rules, nil, Options{RequireFresh: true, CheckpointEvery: 3})
	if err := tr.Acknowledge(0); err != nil {
		t.Fatalf("acknowledging generation 0: %v", err)
	}
	for i := range 3 {
		if got := spend(t, tr, t0, "hot", native(destA, 1)); got != "" {
			t.Fatalf("spend %d: refused by %s", i, got)
		}
	}
	if n := tr.Unacknowledged(); n != 3 {
		t.Fatalf("%d unacknowledged", n)
	}
	for _, key := range []string{"hot", "no-rules"} {
		if got := spend(t, tr, t0, key, native(destA, 1)); got != refusal.RuleCheckpoint {
			t.Fatalf("a fourth transaction (%s): refused by %q", key, got)
		}
		if rule, msg := check(t, tr, t0, key); rule != refusal.RuleCheckpoint || !strings.Contains(msg, "3 transactions") {
			t.Fatalf("Check: %q %q", rule, msg)
		}
	}
	gen, snap, err := tr.Checkpoint(t0)
	if err != nil || gen != 1 || tr.Generation() != 1 {
		t.Fatalf("Checkpoint: %d, %v", gen, err)
	}
	if g, _, err := Inspect(snap); err != nil || g != 1 {
		t.Fatalf("the snapshot says generation %d (%v)", g, err)
	}
	if got := spend(t, tr, t0, "hot", native(destA, 1)); got != refusal.RuleCheckpoint {
		t.Fatalf("before the acknowledgement: refused by %q", got)
	}
	if err := tr.Acknowledge(2); err == nil {
		t.Fatal("acknowledged a checkpoint never taken")
	}
	if err := tr.Acknowledge(1); err != nil {
		t.Fatal(err)
	}
	if got := spend(t, tr, t0, "hot", native(destA, 1)); got != "" {
		t.Fatalf("after the acknowledgement: refused by %q", got)
	}
	// A checkpoint taken, then a transaction, then the acknowledgement:
	// the transaction is still unacknowledged.
	gen, _, _ = tr.Checkpoint(t0)
	spend(t, tr, t0, "hot", native(destA, 1))
	if err := tr.Acknowledge(gen); err != nil {
		t.Fatal(err)
	}
	if n := tr.Unacknowledged(); n != 1 {
		t.Fatalf("%d unacknowledged, want 1", n)
	}
	// Acknowledging again, or an older one, does nothing.
	if err := tr.Acknowledge(1); err != nil || tr.Unacknowledged() != 1 {
		t.Fatalf("acknowledging an older checkpoint: %v, %d unacknowledged", err, tr.Unacknowledged())
	}
	// Only the newest 64 outstanding checkpoints can be acknowledged.
	first, _, _ := tr.Checkpoint(t0)
	for range maxPendingCheckpoints {
		tr.Checkpoint(t0)
	}
	if err := tr.Acknowledge(first); err == nil {
		t.Fatal("acknowledged a checkpoint 65 generations old")
	}
	if err := tr.Acknowledge(first + 1); err != nil {
		t.Fatal(err)
	}
	// A restored tracker continues the generations, and counts the
	// snapshot as acknowledged.
	gen, snap, _ = tr.Checkpoint(t0)
	back := mustRestore(t, rules, nil, Options{RequireFresh: true, CheckpointEvery: 3}, snap, t0)
	if back.Generation() != gen || back.Unacknowledged() != 0 || back.Dirty() {
		t.Fatalf("restored: generation %d (want %d), %d unacknowledged, dirty %v", back.Generation(), gen, back.Unacknowledged(), back.Dirty())
	}
	if next, _, _ := back.Checkpoint(t0); next != gen+1 {
		t.Fatalf("next generation %d", next)
	}
}

func TestNeedsCheckpoint(t *testing.T) {
	rules := []TrackedLimit{rule("r", "hot", time.Hour, 1000)}
	tr := mustNew(t, rules, nil, Options{CheckpointEvery: 3, CheckpointInterval: 10 * time.Second})
	steps := []struct {
		name  string
		at    time.Duration
		do    func(now time.Time)
		dirty bool
		needs bool
	}{
		{"new", 0, nil, false, false},
		{"a spend", 0, func(now time.Time) { spend(t, tr, now, "hot", native(destA, 1)) }, true, false},
		{"before the interval", 10*time.Second - 1, nil, true, false},
		{"at the interval", 10 * time.Second, nil, true, true},
		{"checkpoint", 10 * time.Second, func(now time.Time) { tr.Checkpoint(now) }, false, false},
		{"a refused spend", 11 * time.Second, func(now time.Time) { spend(t, tr, now, "hot", native(destA, 1000)) }, false, false},
		{"a spend without rules", 11 * time.Second, func(now time.Time) { spend(t, tr, now, "nobody", native(destA, 1)) }, false, false},
		{"two spends", 11 * time.Second, func(now time.Time) {
			spend(t, tr, now, "hot", native(destA, 1))
			spend(t, tr, now, "hot", native(destA, 1))
		}, true, false},
		{"the third", 11 * time.Second, func(now time.Time) { spend(t, tr, now, "hot", native(destA, 1)) }, true, true},
		{"checkpoint again", 12 * time.Second, func(now time.Time) { tr.Checkpoint(now) }, false, false},
		{"a refusal", 13 * time.Second, func(now time.Time) { tr.RecordRefusal(now, "hot") }, true, false},
		{"its interval", 23 * time.Second, nil, true, true},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.do != nil {
			s.do(now)
		}
		if tr.Dirty() != s.dirty || tr.NeedsCheckpoint(now) != s.needs {
			t.Fatalf("%s: dirty %v, needs a checkpoint %v; want %v, %v", s.name, tr.Dirty(), tr.NeedsCheckpoint(now), s.dirty, s.needs)
		}
	}
}

func TestReplayBoundFunc(t *testing.T) {
	tests := []struct {
		max   int64
		n     uint64
		perTx *big.Int
		want  int64
	}{
		{100, 5, big.NewInt(4), 20},
		{100, 25, big.NewInt(4), 100},
		{100, 30, big.NewInt(4), 100},
		{100, 0, big.NewInt(4), 0},
		{100, 5, nil, 100},
		{100, 1 << 62, big.NewInt(1 << 62), 100},
	}
	for _, tc := range tests {
		if got := ReplayBound(big.NewInt(tc.max), tc.n, tc.perTx); got.Cmp(big.NewInt(tc.want)) != 0 {
			t.Errorf("ReplayBound(%d, %d, %v) = %v, want %d", tc.max, tc.n, tc.perTx, got, tc.want)
		}
	}
}

// replaySim plays an enclave and a host around one rule of 100 a day with
// transactions of at most 4 (the policy's per-transaction cap), counting
// the true usage: every amount committed, all within one window.
type replaySim struct {
	t     *testing.T
	rules []TrackedLimit
	opts  Options
	tr    *Tracker
	now   time.Time
	total int64
	// acked are the snapshots the host acknowledged, by generation.
	acked map[uint64][]byte
}

const (
	simMax   = 100
	simPerTx = 4
	simC     = 5
)

func newReplaySim(t *testing.T, requireFresh bool) *replaySim {
	s := &replaySim{t: t, rules: []TrackedLimit{rule("day", "hot", 24*time.Hour, simMax)},
		opts: Options{RequireFresh: requireFresh, CheckpointEvery: simC, CheckpointInterval: time.Hour}, now: t0, acked: map[uint64][]byte{}}
	s.tr = mustNew(t, s.rules, nil, s.opts)
	snap := mustMarshal(t, s.tr)
	s.acked[0] = snap
	return s
}

// spend makes one transaction of amt; an honest host persists and
// acknowledges each checkpoint the enclave seals when due.
func (s *replaySim) spend(amt int64, honest bool) string {
	s.now = s.now.Add(time.Minute)
	if s.tr.NeedsCheckpoint(s.now) {
		gen, snap, err := s.tr.Checkpoint(s.now)
		if err != nil {
			s.t.Fatal(err)
		}
		if honest {
			s.acked[gen] = snap
			if err := s.tr.Acknowledge(gen); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	got := spend(s.t, s.tr, s.now, "hot", native(destA, amt))
	if got == "" {
		s.total += amt
	}
	return got
}

// spendAll spends amt until a rule refuses, and returns that rule.
func (s *replaySim) spendAll(amt int64, honest bool) string {
	for {
		if got := s.spend(amt, honest); got != "" {
			return got
		}
	}
}

// restart restores the enclave from the acknowledged checkpoint gen.
func (s *replaySim) restart(gen uint64) {
	s.now = s.now.Add(time.Minute)
	s.tr = mustRestore(s.t, s.rules, nil, s.opts, s.acked[gen], s.now)
}

// checkpointNow seals a checkpoint now, which the host acknowledges.
func (s *replaySim) checkpointNow() uint64 {
	gen, snap, err := s.tr.Checkpoint(s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	s.acked[gen] = snap
	if err := s.tr.Acknowledge(gen); err != nil {
		s.t.Fatal(err)
	}
	return gen
}

// TestReplayBoundHolds: with RequireFresh, a host that restores the newest
// acknowledged checkpoint gains at most min(Max, C·P) on top of Max, and
// the bound is tight.
func TestReplayBoundHolds(t *testing.T) {
	bound := simMax + ReplayBound(big.NewInt(simMax), simC, big.NewInt(simPerTx)).Int64() // 120
	tests := []struct {
		name      string
		after     int   // honest transactions of 3 after the newest acknowledged checkpoint
		wantTotal int64 // true usage of the window in the end
	}{
		// 30 known, C×4 = 20 hidden, 70 more: exactly the bound.
		{"right after a checkpoint", 0, 120},
		// 30 known, 2×3 + 3×4 = 18 hidden, 70 more.
		{"two transactions after it", 2, 118},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newReplaySim(t, true)
			for range 10 - tc.after {
				if got := s.spend(3, true); got != "" {
					t.Fatalf("refused by %s", got)
				}
			}
			newest := s.checkpointNow()
			for range tc.after {
				if got := s.spend(3, true); got != "" {
					t.Fatalf("refused by %s", got)
				}
			}
			// The host stops acknowledging and lets the enclave spend the
			// most it will: it stops at C unacknowledged transactions.
			if got := s.spendAll(simPerTx, false); got != refusal.RuleCheckpoint {
				t.Fatalf("refused by %q, want %q", got, refusal.RuleCheckpoint)
			}
			if n := s.tr.Unacknowledged(); n != simC {
				t.Fatalf("%d unacknowledged transactions, want %d", n, simC)
			}
			// The host restarts the enclave from the newest acknowledged
			// checkpoint, and the enclave spends all it is allowed,
			// honestly again.
			s.restart(newest)
			if got := s.spendAll(1, true); got != "day" {
				t.Fatalf("refused by %q", got)
			}
			if s.total > bound {
				t.Fatalf("the window holds %d, over the bound %d", s.total, bound)
			}
			if s.total != tc.wantTotal {
				t.Fatalf("the window holds %d, want %d", s.total, tc.wantTotal)
			}
		})
	}
}

// TestReplayBoundExceeded: where its premise fails (no RequireFresh and
// checkpoints that do not reach the host, or an older checkpoint), the
// extra is more than C transactions' worth, and exactly what the general
// formula with the true n gives.
func TestReplayBoundExceeded(t *testing.T) {
	cBound := int64(simMax) + ReplayBound(big.NewInt(simMax), simC, big.NewInt(simPerTx)).Int64() // 120
	tests := []struct {
		name         string
		requireFresh bool
		hidden       int    // transactions of P after the newest acknowledged checkpoint
		replay       string // "newest", "previous" or "first"
		wantTotal    int64
		n            uint64 // transactions the replayed checkpoint hides
	}{
		// 30 known, 15×4 = 60 hidden, 70 more: 160 = 100 + min(100, 15×4).
		{"no RequireFresh, checkpoints lost", false, 15, "newest", 160, 15},
		// The host replays the checkpoint before the newest acknowledged
		// one: 15 known, 5×3 + 5×4 = 35 hidden, 85 more: 135 ≤ 100 + 10×4.
		{"older acknowledged checkpoint", true, simC, "previous", 135, 10},
		// The first, empty checkpoint: 0 known, 50 hidden, 100 more: 150,
		// and the extra stays at most Max.
		{"the first checkpoint", true, simC, "first", 150, 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newReplaySim(t, tc.requireFresh)
			var gens []uint64
			for range 10 {
				s.spend(3, true)
				if g := s.tr.Generation(); len(gens) == 0 || gens[len(gens)-1] != g {
					gens = append(gens, g)
				}
			}
			// A checkpoint of the first 10, acknowledged.
			gen := s.checkpointNow()
			gens = append(gens, gen)
			for i := range tc.hidden {
				if got := s.spend(simPerTx, false); got != "" {
					t.Fatalf("hidden transaction %d refused by %s", i, got)
				}
			}
			var replay uint64
			switch tc.replay {
			case "newest":
				replay = gen
			case "previous":
				replay = gens[len(gens)-2]
			case "first":
				replay = 0
			}
			s.restart(replay)
			if got := s.spendAll(1, true); got != "day" {
				t.Fatalf("refused by %q", got)
			}
			if s.total != tc.wantTotal {
				t.Fatalf("the window holds %d, want %d", s.total, tc.wantTotal)
			}
			if s.total <= cBound {
				t.Fatalf("the window holds %d, within the C bound %d: the case shows nothing", s.total, cBound)
			}
			general := simMax + ReplayBound(big.NewInt(simMax), tc.n, big.NewInt(simPerTx)).Int64()
			if s.total > general || s.total-simMax > simMax {
				t.Fatalf("the window holds %d, over the general bound %d or 2·Max", s.total, general)
			}
		})
	}
}
