package limits

import (
	"fmt"
	"math/big"
	"time"
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
