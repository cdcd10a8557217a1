package stateful

import (
	"errors"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
)

// TestRenew: a reservation renewed counts from the time of the renewal:
// within its window it still fits (its own amount is given back first),
// past its window it must fit again beside what was spent since, and a
// refusal releases it; a checkpoint refusal changes nothing.
func TestRenew(t *testing.T) {
	dst := addr(1)
	tr := mustNew(t, []TrackedLimit{rule("r", "hot", 10*time.Minute, 10)}, nil, Options{})
	old, err := tr.Reserve(t0, "hot", []Spend{native(dst, 10)})
	if err != nil {
		t.Fatal(err)
	}
	// Within the window: it fits again, and still holds the budget.
	res, err := old.Renew(t0.Add(time.Minute), "hot", []Spend{native(dst, 10)})
	if err != nil {
		t.Fatalf("renewed within its window: %v", err)
	}
	if _, err := tr.Reserve(t0.Add(time.Minute), "hot", []Spend{native(dst, 1)}); err == nil {
		t.Fatal("the renewed reservation does not hold the budget")
	}
	old.Release() // already given back by Renew: nothing happens
	if _, err := tr.Reserve(t0.Add(time.Minute), "hot", []Spend{native(dst, 1)}); err == nil {
		t.Fatal("releasing the renewed-away reservation gave budget back twice")
	}
	// Past its window, with the limit spent meanwhile: refused, released.
	later := t0.Add(12 * time.Minute)
	spent, err := tr.Reserve(later, "hot", []Spend{native(dst, 10)})
	if err != nil {
		t.Fatalf("past the window: %v", err)
	}
	spent.Commit()
	var lr *Refusal
	if _, err := res.Renew(later, "hot", []Spend{native(dst, 10)}); !errors.As(err, &lr) || lr.Rule != refusal.RuleRollingLimit || nameOf(lr.ID) != "r" {
		t.Fatalf("renewed past its window beside a spent limit: %v", err)
	}
	// Refused and released: at the window after "spent", the limit is
	// free (the renewal at t0+1m is gone).
	if _, err := tr.Reserve(later.Add(11*time.Minute), "hot", []Spend{native(dst, 10)}); err != nil {
		t.Fatalf("a refused renewal kept its amounts: %v", err)
	}

	// RequireFresh: a checkpoint refusal keeps the reservation as it is.
	tr = mustNew(t, []TrackedLimit{rule("r", "hot", 10*time.Minute, 10)}, nil, Options{RequireFresh: true, CheckpointEvery: 1})
	held, err := tr.Reserve(t0, "hot", []Spend{native(dst, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Renew(t0, "hot", []Spend{native(dst, 4)}); !errors.As(err, &lr) || lr.Rule != refusal.RuleCheckpoint {
		t.Fatalf("renewal beyond the checkpoint bound: %v", err)
	}
	if used, _, _ := tr.Usage(t0, byName(t, tr, "r")); used.Int64() != 4 {
		t.Fatalf("a checkpoint refusal changed the reservation: %s used", used)
	}
}
