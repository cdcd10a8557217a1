package stateful

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestRestoreSnapshotOf7f43a4e: a limits snapshot sealed before the rule
// ids were typed (written by package enclave/limits at commit 7f43a4e, for
// the rules its enclave built from compatSource's policy, with ids such as
// "rolling_limit:hot:1" and "velocity:hot") restores under the rules
// TrackerRules builds now, with the usage and refusal counts it held, and
// a snapshot of the restored tracker at the same time is the same bytes.
func TestRestoreSnapshotOf7f43a4e(t *testing.T) {
	snap, err := os.ReadFile("testdata/snapshot-7f43a4e.bin")
	if err != nil {
		t.Fatal(err)
	}
	src := compatSource()
	rules, vels := TrackerRules(src)
	opts := TrackerOptions(src, 64)
	gen, taken, err := Inspect(snap)
	if err != nil || gen != 1 {
		t.Fatalf("Inspect: generation %d, %v", gen, err)
	}
	tr, err := Restore(rules, vels, opts, snap, taken)
	if err != nil {
		t.Fatal(err)
	}
	// The usage the tracker of 7f43a4e reported when it took the snapshot.
	for id, want := range map[string]int64{
		"rolling_limit:cold:0": 200,
		"rolling_limit:hot:0":  15,
		"rolling_limit:hot:1":  1250,
		"rolling_limit:hot:2":  15,
		"velocity:hot":         2,
	} {
		rid, err := ParseRuleID(id)
		if err != nil {
			t.Fatal(err)
		}
		u, _, err := tr.Usage(taken, rid)
		if err != nil || u.Int64() != want {
			t.Errorf("%s: usage %v (%v), want %d", id, u, err, want)
		}
	}
	if n := tr.Refusals(taken, "hot", time.Hour); n != 5 {
		t.Errorf("refusals of hot: %d, want 5", n)
	}
	if n := tr.Refusals(taken, "cold", time.Hour); n != 1 {
		t.Errorf("refusals of cold: %d, want 1", n)
	}
	if again := mustMarshal(t, tr); !bytes.Equal(again, snap) {
		t.Fatalf("the restored tracker's snapshot differs:\n got %x\nwant %x", again, snap)
	}
}
