package stateful

import (
	"fmt"
	"math/big"
	"math/bits"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
)

// Checkpoint takes a snapshot for the enclave to seal and hand to the host:
// it advances the tracker's time to now, increments the generation and
// returns it with the snapshot (which carries it). The checkpoint is
// outstanding until Acknowledge(gen). On error nothing changes.
func (t *Tracker) Checkpoint(now time.Time) (gen uint64, snapshot []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock(now)
	t.gen++
	b, err := t.marshal()
	if err != nil {
		t.gen--
		return 0, nil, err
	}
	t.pending = append(t.pending, pendingCheckpoint{t.gen, t.seq})
	if len(t.pending) > maxPendingCheckpoints {
		t.pending = append(t.pending[:0], t.pending[len(t.pending)-maxPendingCheckpoints:]...)
	}
	t.ckptSeq = t.seq
	t.dirty = false
	return t.gen, b, nil
}

// Acknowledge records the host's word that it has persisted checkpoint
// gen, so that the transactions before it no longer count as
// unacknowledged (Options.RequireFresh). Acknowledging gen again, or a
// generation older than one acknowledged, does nothing; acknowledging a
// generation never handed out, or one of more than 64 checkpoints ago, is
// an error.
//
// The acknowledgement is only the host's word, like its acknowledgement of
// audit records: it bounds what is lost when the host restores the newest
// checkpoint (after a crash, or on purpose), not what a host that keeps and
// replays older checkpoints can hide (see the package documentation).
func (t *Tracker) Acknowledge(gen uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen <= t.ackedGen {
		return nil
	}
	for i, p := range t.pending {
		if p.gen == gen {
			t.ackedGen, t.ackedSeq = p.gen, p.seq
			t.pending = append(t.pending[:0], t.pending[i+1:]...)
			return nil
		}
	}
	if gen > t.gen {
		return fmt.Errorf("limits: acknowledging checkpoint %d, but the newest is %d", gen, t.gen)
	}
	return fmt.Errorf("limits: acknowledging checkpoint %d, no longer outstanding", gen)
}

// Generation returns the generation of the newest checkpoint (or of the
// snapshot t was restored from; 0 for a new Tracker with no checkpoint).
func (t *Tracker) Generation() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gen
}

// Dirty reports whether t has reserved a transaction or recorded a refusal
// since its newest checkpoint (or since it was created or restored).
func (t *Tracker) Dirty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dirty
}

// NeedsCheckpoint reports whether a checkpoint is due at now: t is dirty,
// and Options.CheckpointEvery transactions have been reserved since the
// newest checkpoint or the oldest change it lacks is
// Options.CheckpointInterval old.
func (t *Tracker) NeedsCheckpoint(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.clock(now)
	return t.dirty && (t.seq-t.ckptSeq >= uint64(t.opts.CheckpointEvery) || ns-t.dirtySince >= int64(t.opts.CheckpointInterval))
}

// Unacknowledged returns the number of transactions reserved since the
// newest acknowledged checkpoint was taken (released ones included): the n
// of ReplayBound if the host restored that checkpoint now. With
// Options.RequireFresh it never exceeds Options.CheckpointEvery.
func (t *Tracker) Unacknowledged() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq - t.ackedSeq
}

// ReplayBound returns the most by which the usage of a rule with maximum
// max can exceed max in some window after the enclave restores a
// checkpoint behind which n transactions were reserved (the usage they
// added is what the checkpoint hides), each adding at most perTx to the
// rule (nil: no cap other than max): min(max, n·perTx).
//
// Usage in every window then stays at most max + ReplayBound(max, n,
// perTx). With Options.RequireFresh and the host restoring the newest
// acknowledged checkpoint, n ≤ Options.CheckpointEvery. For a velocity
// limit the same argument gives min(MaxTransactions, n) transactions. See
// the package documentation for the argument and for older checkpoints.
func ReplayBound(max *big.Int, n uint64, perTx *big.Int) *big.Int {
	if perTx == nil {
		return new(big.Int).Set(max)
	}
	b := new(big.Int).Mul(new(big.Int).SetUint64(n), perTx)
	if b.Cmp(max) > 0 {
		b.Set(max)
	}
	return b
}

// Charge is what ChargeUnseen counted against one rule or velocity.
type Charge struct {
	// Rule is the ID of the TrackedLimit or TrackedVelocity.
	Rule RuleID
	// Amount is what was added to its usage: an amount in the asset's
	// smallest unit, or a number of transactions for a velocity.
	Amount *big.Int
}

// ChargeUnseen counts, at their worst case, n transactions that were
// reserved after the snapshot t was restored from and that t cannot see
// (the host restored a checkpoint that lags its log): each rolling-limit
// track is charged min(M, n·P), where M is the smallest Max of the rules
// that read it and P the per-transaction bound perTx returns for the
// track's key, chain and asset (nil, or a nil perTx: no bound but M), and
// each velocity track min(V, n), V being the smallest MaxTransactions.
// The hidden usage is at most both figures (the run that reserved those
// transactions kept every window at most M), so each window stays at most
// what it would hold had t seen them, plus nothing.
//
// The charge is recorded at time at (the time the restored snapshot was
// taken), so that it leaves each window as the real transactions would;
// where that bucket is no longer live, the charge has expired already. The
// n transactions also count as unacknowledged (Unacknowledged, and with
// Options.RequireFresh toward CheckpointEvery) until a checkpoint taken
// after this call is acknowledged: that checkpoint's snapshot holds the
// charge. It returns what was charged to each rule and velocity with
// something charged, in the order New got them. n = 0 changes nothing.
func (t *Tracker) ChargeUnseen(n uint64, perTx func(key string, chain uint64, asset ethtx.Address) *big.Int, at time.Time) []Charge {
	if n == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.clock(at)
	at64, ok := unixNano(at)
	if !ok || at64 > ns {
		at64 = ns
	}
	nn := u256{n}
	// The charge of each track: the least over the rules that read it.
	charge := map[*track]u256{}
	lower := func(tr *track, c u256) {
		if old, seen := charge[tr]; !seen || c.cmp(old) < 0 {
			charge[tr] = c
		}
	}
	for _, ks := range t.keys {
		for _, r := range ks.rules {
			tr := ks.tracks[r.track]
			c := r.max
			var p *big.Int
			if perTx != nil {
				p = perTx(tr.id.key, tr.id.chain, ethtx.Address(tr.id.asset))
			}
			if pp, ok := fromBig(p); ok {
				if prod, over := mulSmall(pp, n); !over && prod.cmp(c) < 0 {
					c = prod
				}
			}
			lower(tr, c)
		}
		for _, v := range ks.vels {
			c := v.max
			if nn.cmp(c) < 0 {
				c = nn
			}
			lower(ks.vtracks[v.track], c)
		}
	}
	for tr, c := range charge {
		tr.advance(ns)
		k := floorDiv(at64, tr.width)
		if c.isZero() || k < tr.low {
			charge[tr] = u256{}
			continue // nothing to charge, or expired already
		}
		if !tr.add(k, c) { // the usage is within 2^256: charge what room is left
			room := u256{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}.sub(tr.total)
			tr.add(k, room)
			charge[tr] = room
		}
	}
	var out []Charge
	for _, id := range t.ruleOrder {
		if c := charge[t.rules[id].tr]; !c.isZero() {
			out = append(out, Charge{Rule: id, Amount: c.big()})
		}
	}
	t.seq += n
	t.touch(ns)
	return out
}

// mulSmall returns a·n and whether it overflowed 256 bits.
func mulSmall(a u256, n uint64) (u256, bool) {
	var r u256
	var carry uint64
	for i := range a {
		hi, lo := bits.Mul64(a[i], n)
		var c uint64
		r[i], c = bits.Add64(lo, carry, 0)
		carry = hi + c
	}
	return r, carry != 0
}
