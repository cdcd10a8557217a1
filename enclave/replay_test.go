package enclave

import (
	"testing"
	"time"
)

func TestReplayGuardRemembersForAWindow(t *testing.T) {
	const w = 10 * time.Second
	g := newReplayGuard(w, 100)
	t0 := time.Unix(1_700_000_000, 0)
	if r := g.check(t0, "c", "a"); r != replayFresh {
		t.Fatalf("first sight = %v", r)
	}
	for _, dt := range []time.Duration{0, time.Second, w - time.Nanosecond, w, w + w/2, 2*w - time.Nanosecond} {
		if r := g.check(t0.Add(dt), "c", "a"); r != replaySeen {
			t.Fatalf("at +%v: %v, want seen (an id must be remembered at least one window)", dt, r)
		}
	}
	// The same id from another client is another request.
	if r := g.check(t0.Add(time.Second), "d", "a"); r != replayFresh {
		t.Fatalf("other client: %v", r)
	}
	// After two full windows with no activity, it may be forgotten.
	if r := g.check(t0.Add(3*w), "c", "a"); r != replayFresh {
		t.Fatalf("after 3 windows: %v, want forgotten", r)
	}
}

func TestReplayGuardInsertedLateInWindow(t *testing.T) {
	const w = 10 * time.Second
	g := newReplayGuard(w, 100)
	t0 := time.Unix(1_700_000_000, 0)
	g.check(t0, "c", "first") // opens the generation at t0
	late := t0.Add(w - time.Millisecond)
	g.check(late, "c", "late")
	if r := g.check(late.Add(w-time.Millisecond), "c", "late"); r != replaySeen {
		t.Fatalf("id seen late in a generation forgotten before a full window: %v", r)
	}
}

func TestReplayGuardFailsClosedWhenFull(t *testing.T) {
	g := newReplayGuard(time.Minute, 3)
	t0 := time.Unix(1_700_000_000, 0)
	for _, id := range []string{"1", "2", "3"} {
		if r := g.check(t0, "c", id); r != replayFresh {
			t.Fatalf("%s: %v", id, r)
		}
	}
	if r := g.check(t0, "c", "4"); r != replayFull {
		t.Fatalf("fourth id with room for three: %v, want full", r)
	}
	if r := g.check(t0, "c", "2"); r != replaySeen {
		t.Fatalf("a seen id while full: %v, want seen", r)
	}
	// Once the ids expire, there is room again.
	if r := g.check(t0.Add(3*time.Minute), "c", "4"); r != replayFresh {
		t.Fatalf("after expiry: %v", r)
	}
}

func TestReplayGuardKeysAreUnambiguous(t *testing.T) {
	g := newReplayGuard(time.Minute, 10)
	t0 := time.Unix(1_700_000_000, 0)
	g.check(t0, "ab", "c")
	if r := g.check(t0, "a", "bc"); r != replayFresh {
		t.Fatalf("(a, bc) collides with (ab, c)")
	}
}
