package ethproxy

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
)

// nonces hands out the nonces of eth_sendTransaction, per address, with
// the rules in the package documentation. pending asks the node for an
// address's pending transaction count.
type nonces struct {
	pending func(ctx context.Context, addr ethtx.Address) (uint64, error)
	// now is the clock that expires held nonces (time.Now; tests set it).
	now func() time.Time
	// expired, when not nil, is told of each held nonce released because
	// its approval expired (for the log).
	expired func(addr ethtx.Address, nonce uint64, approvalID string)

	mu       sync.Mutex
	accounts map[ethtx.Address]*account
}

// account is the state of one address. Every field is guarded by its mu.
type account struct {
	mu sync.Mutex
	// known is true once the node's count was learned; ask, when the
	// next reservation must ask the node again (an outcome made the local
	// count doubtful).
	known, ask bool
	// next is the nonce after the highest one handed out.
	next uint64
	// inFlight are nonces handed out whose send has not finished.
	inFlight map[uint64]bool
	// released are nonces below next whose send failed without reaching
	// the pool: the lowest is handed out first, so no gap stays.
	released []uint64
	// held are nonces of sends that wait for approvals: reserved, like
	// those in flight, until the approved transaction is sent, the
	// approval ends without a signature, or it expires.
	held map[uint64]hold
	// version changes with every allocation and outcome, so that a count
	// asked from the node while something changed is not used to rewind.
	version uint64
}

// hold is a nonce held for a send that waits for approvals.
type hold struct {
	approvalID string
	expires    time.Time
}

// outcome is how a send with a managed nonce ended.
type outcome int

const (
	// sent: the node took the transaction (or already had it).
	sent outcome = iota
	// unused: nothing reached the pool (signing refused, the node refused
	// the transaction itself): the nonce is handed out again.
	unused
	// taken: the node says the nonce is used already (nonce too low, or a
	// different transaction with it in the pool): the local count is wrong.
	taken
	// unknown: the send may or may not have reached the node (a timeout,
	// a broken connection): keep the nonce, ask the node next time.
	unknown
	// held: the signer holds the transaction until approvers approve it:
	// the nonce stays reserved (see hold).
	held
)

func newNonces(pending func(context.Context, ethtx.Address) (uint64, error)) *nonces {
	return &nonces{pending: pending, now: time.Now, accounts: map[ethtx.Address]*account{}}
}

func (n *nonces) account(addr ethtx.Address) *account {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.accounts[addr]
	if a == nil {
		a = &account{inFlight: map[uint64]bool{}, held: map[uint64]hold{}}
		n.accounts[addr] = a
	}
	return a
}

// reserve hands out the next nonce of addr. The caller must call done with
// it exactly once.
func (n *nonces) reserve(ctx context.Context, addr ethtx.Address) (uint64, error) {
	a := n.account(addr)
	a.mu.Lock()
	n.expire(addr, a)
	// With sends in flight the node's count says nothing new that a
	// failure would not (its transactions are not all in the pool yet),
	// so it is asked only when idle or not synced.
	if !a.known || a.ask || len(a.inFlight) == 0 {
		v := a.version
		a.mu.Unlock()
		count, err := n.pending(ctx, addr)
		a.mu.Lock()
		if err != nil {
			if !a.known {
				a.mu.Unlock()
				return 0, err
			}
			// Known already: carry on with the local count; the node
			// refuses the send if it is wrong.
		} else {
			a.merge(count, v == a.version)
		}
	}
	nonce := a.take()
	a.mu.Unlock()
	return nonce, nil
}

// merge takes the node's pending count into account. quiet says nothing
// changed locally while the node was asked.
func (a *account) merge(count uint64, quiet bool) {
	a.ask = false
	switch {
	case !a.known:
		a.next, a.known = count, true
	case count > a.next:
		// Another sender, or a restart: jump forward.
		a.next = count
		a.released = nil
	case count < a.next && quiet && len(a.inFlight) == 0 && len(a.held) == 0 && !slices.Contains(a.released, count):
		// Every nonce handed out has been sent, yet the node's pool
		// stops at count: the transaction with nonce count was dropped
		// (or never arrived). Rewind, so that the gap is filled. (A gap
		// at a released nonce, say a held one whose approval ended, is
		// filled by the next allocation without forgetting the nonces
		// sent above it.)
		a.next = count
		a.released = nil
		return
	}
	// Released nonces below the node's count were used by someone else.
	a.released = slices.DeleteFunc(a.released, func(r uint64) bool { return r < count })
}

func (a *account) take() uint64 {
	a.version++
	var nonce uint64
	if len(a.released) > 0 {
		nonce, a.released = a.released[0], a.released[1:]
	} else {
		nonce = a.next
		a.next++
	}
	a.inFlight[nonce] = true
	return nonce
}

// done records how the send with nonce ended (a held send goes to hold
// instead).
func (n *nonces) done(addr ethtx.Address, nonce uint64, o outcome) {
	a := n.account(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.finish(nonce, o)
}

// hold records that the send with the in-flight nonce waits for the
// approval approvalID, which expires at expires: the nonce stays reserved
// until settle, or until an allocation after expires releases it.
func (n *nonces) hold(addr ethtx.Address, nonce uint64, approvalID string, expires time.Time) {
	a := n.account(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version++
	delete(a.inFlight, nonce)
	a.held[nonce] = hold{approvalID: approvalID, expires: expires}
}

// settle records how the send held for approvalID with nonce ended: sent
// once approved and broadcast (or a broadcast's other outcome), unused
// when the approval ended without a signature. A hold that is gone
// already (released when its approval expired, so the nonce may have gone
// to another send) is settled as a transaction with the caller's nonce: a
// broadcast that reached the node marks the nonce used.
func (n *nonces) settle(addr ethtx.Address, nonce uint64, approvalID string, o outcome) {
	a := n.account(addr)
	a.mu.Lock()
	h, ok := a.held[nonce]
	if ok && h.approvalID == approvalID {
		delete(a.held, nonce)
		a.finish(nonce, o)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	switch o {
	case sent, unknown:
		n.used(addr, nonce)
	case taken:
		a.mu.Lock()
		a.ask = true
		a.mu.Unlock()
	}
}

// expire releases the held nonces of a whose approval has expired: the
// approved transaction can no longer be signed, so without this a
// forgotten approval would stall the address. a.mu is held.
func (n *nonces) expire(addr ethtx.Address, a *account) {
	now := n.now()
	for nonce, h := range a.held {
		if now.Before(h.expires) {
			continue
		}
		delete(a.held, nonce)
		a.finish(nonce, unused)
		if n.expired != nil {
			n.expired(addr, nonce, h.approvalID)
		}
	}
}

// finish applies the outcome o of the send with nonce. a.mu is held.
func (a *account) finish(nonce uint64, o outcome) {
	a.version++
	delete(a.inFlight, nonce)
	switch o {
	case unused:
		if nonce+1 == a.next {
			a.next--
			// Collapse released nonces now at the top.
			for len(a.released) > 0 && a.released[len(a.released)-1]+1 == a.next {
				a.released = a.released[:len(a.released)-1]
				a.next--
			}
		} else if nonce < a.next {
			i, _ := slices.BinarySearch(a.released, nonce)
			a.released = slices.Insert(a.released, i, nonce)
		}
	case taken, unknown, held:
		// held reaches here only through done, not hold: the nonce is
		// then kept as if sent, and the node asked.
		a.ask = true
	}
}

// used records that a transaction with a caller's nonce was sent: a later
// allocation starts above it, and asks the node.
func (n *nonces) used(addr ethtx.Address, nonce uint64) {
	a := n.account(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version++
	if a.known && nonce >= a.next {
		a.next = nonce + 1
	}
	a.released = slices.DeleteFunc(a.released, func(r uint64) bool { return r == nonce })
	a.ask = true
}
