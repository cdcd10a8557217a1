package ethproxy

import (
	"context"
	"errors"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
)

// TestStaleCountDoesNotRewind: a pending count asked before another send
// finished is not taken for a dropped transaction.
func TestStaleCountDoesNotRewind(t *testing.T) {
	ctx := context.Background()
	var a ethtx.Address
	answers := make(chan uint64, 1)
	asked := make(chan struct{}, 1)
	calls := 0
	m := newNonces(func(context.Context, ethtx.Address) (uint64, error) {
		calls++
		switch calls {
		case 1:
			return 10, nil
		case 2: // A's call: held until B has sent
			asked <- struct{}{}
			return <-answers, nil
		}
		return 11, nil // B's call
	})
	n, _ := m.reserve(ctx, a)
	m.done(a, n, sent) // nonce 10 sent; next is 11
	got := make(chan uint64)
	go func() {
		n, _ := m.reserve(ctx, a) // A
		got <- n
	}()
	<-asked
	nb, err := m.reserve(ctx, a) // B, while A waits for the node
	if err != nil || nb != 11 {
		t.Fatalf("B: %d, %v", nb, err)
	}
	m.done(a, nb, sent)
	answers <- 11 // stale: the node had not seen B's transaction yet
	if na := <-got; na != 12 {
		t.Errorf("A got nonce %d, want 12 (a stale count rewound the manager)", na)
	}
}

func TestReserveErrors(t *testing.T) {
	ctx := context.Background()
	var a ethtx.Address
	fail := true
	m := newNonces(func(context.Context, ethtx.Address) (uint64, error) {
		if fail {
			return 0, errors.New("node down")
		}
		return 3, nil
	})
	if _, err := m.reserve(ctx, a); err == nil {
		t.Fatal("reserve without ever reaching the node succeeded")
	}
	fail = false
	n, err := m.reserve(ctx, a)
	if err != nil || n != 3 {
		t.Fatalf("reserve: %d, %v", n, err)
	}
	m.done(a, n, sent)
	fail = true // known now: the local count carries on
	if n, err := m.reserve(ctx, a); err != nil || n != 4 {
		t.Fatalf("reserve with the node down: %d, %v", n, err)
	}
}
