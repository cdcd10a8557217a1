package ethproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/ethtx"
)

// heldErr is what the agent answers for a transaction that waits for
// approvals: a *jsonrpc.Error of code CodeApprovalPending that implements
// Held.
type heldErr struct {
	id      string
	expires time.Time
}

func (e *heldErr) Error() string { return "waits for approvals: " + e.id }
func (e *heldErr) Unwrap() error {
	return jsonrpc.NewError(jsonrpc.CodeApprovalPending, e.Error(), nil)
}
func (e *heldErr) Approval() (string, time.Time) { return e.id, e.expires }

// approver makes the fake signer hold every transaction with value 1000
// (as the enclave's policy does above a threshold), and lets the test
// approve it later.
type approver struct {
	s   *fakeSigner
	now time.Time

	mu    sync.Mutex
	held  map[string]*ethtx.Tx
	count int
}

func newApprover(s *fakeSigner) *approver {
	ap := &approver{s: s, now: time.Unix(1_000_000, 0), held: map[string]*ethtx.Tx{}}
	s.refuse = func(tx *ethtx.Tx) error {
		if tx.Value == nil || tx.Value.Int64() != 1000 {
			return nil
		}
		ap.mu.Lock()
		defer ap.mu.Unlock()
		ap.count++
		id := fmt.Sprintf("appr-%d", ap.count)
		ap.held[id] = tx
		return &heldErr{id: id, expires: ap.now.Add(10 * time.Minute)}
	}
	return ap
}

// approve returns the held transaction id, signed.
func (ap *approver) approve(id string) (*ethtx.Tx, []byte) {
	ap.mu.Lock()
	tx := ap.held[id]
	ap.mu.Unlock()
	raw := tx.EncodeSigned(ethtx.Sign(ap.s.key, tx.SigningHash()))
	ap.s.mu.Lock()
	ap.s.signed[ethtx.TransactionHash(raw)] = tx
	ap.s.mu.Unlock()
	return tx, raw
}

// sendHeld sends a transaction that waits for approvals and returns its
// approval id.
func sendHeld(t *testing.T, p *Proxy, s *fakeSigner) string {
	t.Helper()
	_, err := p.SendTransaction(context.Background(), args(t, s.addr, `"to":"`+to+`","value":"0x3e8"`))
	var h Held
	if !errors.As(err, &h) || rpcCode(err) != jsonrpc.CodeApprovalPending {
		t.Fatalf("a send above the threshold: %v, want the signer's pending error", err)
	}
	id, _ := h.Approval()
	return id
}

// TestHeldNonce: a send that waits for approvals holds its nonce (5) while
// the next send gets 6 and reaches the node; then the approval ends in
// each way a wallet meets.
func TestHeldNonce(t *testing.T) {
	insufficient := func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
		if m == "eth_sendRawTransaction" {
			return nil, jsonrpc.NewError(-32000, "insufficient funds for gas * price + value", nil), true
		}
		return nil, nil, false
	}
	for _, tt := range []struct {
		name string
		// end ends the approval id; it returns the error of the approved
		// transaction's broadcast, if it made one.
		end func(t *testing.T, p *Proxy, n *fakeNode, ap *approver, id string) error
		// pool is the node's pool after end; next, the nonce of the
		// next send.
		pool []uint64
		next uint64
		// sendErr is in the broadcast's error, "" for none.
		sendErr string
	}{
		{"approved and sent", func(t *testing.T, p *Proxy, _ *fakeNode, ap *approver, id string) error {
			tx, raw := ap.approve(id)
			h, err := p.SendApproved(context.Background(), id, ap.s.addr, tx, raw)
			if err == nil && h != ethtx.TransactionHash(raw) {
				t.Errorf("hash %x, want %x", h, ethtx.TransactionHash(raw))
			}
			return err
		}, []uint64{5, 6}, 7, ""},
		{"rejected", func(t *testing.T, p *Proxy, _ *fakeNode, _ *approver, id string) error {
			p.ApprovalEnded(id)
			return nil
		}, []uint64{6}, 5, ""},
		{"expired without a word", func(t *testing.T, p *Proxy, _ *fakeNode, ap *approver, _ string) error {
			p.nonces.now = func() time.Time { return ap.now.Add(10*time.Minute + time.Second) }
			return nil
		}, []uint64{6}, 5, ""},
		{"approved, the node refuses it", func(t *testing.T, p *Proxy, n *fakeNode, ap *approver, id string) error {
			tx, raw := ap.approve(id)
			n.hook = insufficient
			defer func() { n.hook = nil }()
			_, err := p.SendApproved(context.Background(), id, ap.s.addr, tx, raw)
			return err
		}, []uint64{6}, 5, "insufficient funds"},
		{"approved after its nonce expired and went to another send", func(t *testing.T, p *Proxy, n *fakeNode, ap *approver, id string) error {
			p.nonces.now = func() time.Time { return ap.now.Add(time.Hour) }
			if nonce, err := send(t, p, ap.s, ""); err != nil || nonce != 5 {
				t.Fatalf("the send after the expiry: nonce %d, %v", nonce, err)
			}
			tx, raw := ap.approve(id)
			_, err := p.SendApproved(context.Background(), id, ap.s.addr, tx, raw)
			return err
		}, []uint64{5, 6}, 7, "replacement transaction underpriced"},
		{"rejected twice, then approved by mistake", func(t *testing.T, p *Proxy, _ *fakeNode, _ *approver, id string) error {
			p.ApprovalEnded(id)
			p.ApprovalEnded(id)
			p.ApprovalEnded("not-held")
			return nil
		}, []uint64{6}, 5, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSigner(1)
			n := newFakeNode(t, s)
			p := start(t, n)
			ap := newApprover(s)
			p.nonces.now = func() time.Time { return ap.now }

			id := sendHeld(t, p, s)
			if nonce, err := send(t, p, s, ""); err != nil || nonce != 6 {
				t.Fatalf("the send after the held one: nonce %d, %v; want 6", nonce, err)
			}
			err := tt.end(t, p, n, ap, id)
			if tt.sendErr == "" && err != nil {
				t.Fatalf("broadcast: %v", err)
			}
			if tt.sendErr != "" && (err == nil || !strings.Contains(err.Error(), tt.sendErr)) {
				t.Fatalf("broadcast: %v, want %q", err, tt.sendErr)
			}
			pool := n.poolNonces()
			if len(pool) != len(tt.pool) {
				t.Fatalf("pool %v, want %v", pool, tt.pool)
			}
			for _, k := range tt.pool {
				if !pool[k] {
					t.Fatalf("pool %v, want %v", pool, tt.pool)
				}
			}
			if nonce, err := send(t, p, s, ""); err != nil || nonce != tt.next {
				t.Fatalf("the next send: nonce %d, %v; want %d", nonce, err, tt.next)
			}
		})
	}
}

// TestHeldWalletNonce: a send with the wallet's nonce that waits for
// approvals reserves nothing; once approved and sent, managed nonces
// start above it.
func TestHeldWalletNonce(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	ap := newApprover(s)
	_, err := p.SendTransaction(context.Background(), args(t, s.addr, `"to":"`+to+`","value":"0x3e8","nonce":"0x5"`))
	var h Held
	if !errors.As(err, &h) {
		t.Fatalf("held send with the wallet's nonce: %v", err)
	}
	id, _ := h.Approval()
	tx, raw := ap.approve(id)
	if _, err := p.SendApproved(context.Background(), id, s.addr, tx, raw); err != nil {
		t.Fatal(err)
	}
	if nonce, err := send(t, p, s, ""); err != nil || nonce != 6 {
		t.Fatalf("the next send: nonce %d, %v; want 6", nonce, err)
	}
}

// TestHeldNonceUnit: the nonce manager's rules for held nonces.
func TestHeldNonceUnit(t *testing.T) {
	ctx := context.Background()
	var a ethtx.Address
	now := time.Unix(100, 0)
	count := uint64(10)
	m := newNonces(func(context.Context, ethtx.Address) (uint64, error) { return count, nil })
	m.now = func() time.Time { return now }
	var expired []string
	m.expired = func(_ ethtx.Address, nonce uint64, id string) { expired = append(expired, fmt.Sprint(id, "=", nonce)) }

	n10, _ := m.reserve(ctx, a)
	m.hold(a, n10, "a", now.Add(time.Minute))
	n11, _ := m.reserve(ctx, a)
	m.hold(a, n11, "b", now.Add(2*time.Minute))
	n12, _ := m.reserve(ctx, a)
	m.done(a, n12, sent)
	// The node's count stays at 10 (11 and 12 wait behind 10): with
	// nonces held, it is not taken for a dropped transaction.
	if n, _ := m.reserve(ctx, a); n != 13 {
		t.Fatalf("with holds, a count below next rewound: got %d, want 13", n)
	}
	m.done(a, 13, unused)
	// Settling with another approval's id does not touch the hold.
	m.settle(a, n10, "b", unused)
	if n, _ := m.reserve(ctx, a); n != 13 {
		t.Fatalf("a settle with the wrong id released the nonce: got %d", n)
	}
	m.done(a, 13, unused)
	now = now.Add(time.Minute) // a expires; b does not
	if n, _ := m.reserve(ctx, a); n != 10 {
		t.Fatalf("after a's expiry: got %d, want 10", n)
	}
	if len(expired) != 1 || expired[0] != "a=10" {
		t.Fatalf("expired %v", expired)
	}
	m.done(a, 10, sent)
	m.settle(a, n11, "b", sent)
	count = 13
	if n, _ := m.reserve(ctx, a); n != 13 {
		t.Fatalf("after b was sent: got %d, want 13", n)
	}
}

// TestReleasedHoldIsNotADrop: once a held nonce is released, the node's
// pending count stops at it (the transactions above wait behind the gap);
// that is not a dropped transaction, so the manager does not rewind and
// hand out the nonces sent above it again.
func TestReleasedHoldIsNotADrop(t *testing.T) {
	ctx := context.Background()
	var a ethtx.Address
	m := newNonces(func(context.Context, ethtx.Address) (uint64, error) { return 5, nil })
	n5, _ := m.reserve(ctx, a)
	m.hold(a, n5, "x", time.Now().Add(time.Hour))
	n6, _ := m.reserve(ctx, a)
	m.done(a, n6, sent)
	m.settle(a, n5, "x", unused) // rejected
	// Two allocations at once: 5 fills the gap, the other gets 7.
	if n, _ := m.reserve(ctx, a); n != 5 {
		t.Fatalf("the first allocation after the release: %d, want 5", n)
	}
	if n, _ := m.reserve(ctx, a); n != 7 {
		t.Fatalf("the second allocation, the first in flight: %d, want 7 (6 was sent)", n)
	}
}
