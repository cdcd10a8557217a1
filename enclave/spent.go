package enclave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
)

// Single use of admin commands. admin.Set.Verify says only that a command
// is authorized; within its validity window (at most admin.MaxValidity,
// 7 days) the same envelope verifies again. So the enclave remembers the
// digest of every command it carried out until the command's not_after,
// and refuses a replay (refusal.RuleReplayedCommand) without changing anything.
// The memory is in the sealed checkpoint, so a restart does not forget
// it, and an admin command's answer is released only once the host has
// acknowledged storing a checkpoint that holds its digest (and its
// effect): an answer the admins saw is never forgotten by a restart.

// MaxSpentCommands bounds the admin commands remembered (those whose
// not_after has not passed): at most 80 bytes each in a checkpoint, so
// 320 KiB at the bound, within proto.MaxCheckpointLen with the rest. At the
// bound, new commands are refused (refusal.RuleCommandMemoryFull) until the
// oldest expires, at most admin.MaxValidity later; a policy_cancel is
// carried out even then (see adminExecute).
const MaxSpentCommands = 4096

// spentEntry is a command carried out (or a cancelled policy change).
type spentEntry struct {
	Digest     [32]byte `cbor:"1,keyasint"`
	NotAfterMS int64    `cbor:"2,keyasint"` // the command's not_after: remembered until then
	Seq        uint64   `cbor:"3,keyasint"` // its audit record
	AtMS       int64    `cbor:"4,keyasint"` // when it was carried out
	// CancelSeq, for a scheduled policy change that a policy_cancel
	// cancelled, is the cancel's audit record.
	CancelSeq uint64 `cbor:"5,keyasint,omitempty"`
}

// spentCommands is the enclave's memory of admin commands carried out,
// and what the host has acknowledged storing of it.
type spentCommands struct {
	mu  sync.Mutex
	m   map[[32]byte]*spentEntry
	max int // MaxSpentCommands; tests lower it
	// marks counts the admin commands carried out in this run: the
	// checkpoint state that says whether a new checkpoint is due.
	// stored is the marks the newest checkpoint the host acknowledged
	// storing holds; storedCh is closed (and replaced) when it grows.
	marks    uint64
	stored   uint64
	storedCh chan struct{}
}

func (s *spentCommands) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[32]byte]*spentEntry{}
	}
	if s.max == 0 {
		s.max = MaxSpentCommands
	}
	if s.storedCh == nil {
		s.storedCh = make(chan struct{})
	}
}

// pruneLocked forgets the commands whose validity has ended: Verify
// refuses them now. s.mu is held.
func (s *spentCommands) pruneLocked(nowMS int64) {
	for d, en := range s.m {
		if nowMS >= en.NotAfterMS {
			delete(s.m, d)
		}
	}
}

// check refuses a command carried out before (refusal.RuleReplayedCommand), or
// one the memory has no room for (refusal.RuleCommandMemoryFull; not a kind
// that only stops: a cancel, whose replay finds nothing to cancel, or a
// freeze, whose replay finds the target frozen already or, after an
// unfreeze, halts signing again, which the host can do anyway by dropping
// requests: see adminExecute). e.unsealMu is
// held, so no other command is checked or marked meanwhile.
func (s *spentCommands) check(cmd *admin.Command, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now.UnixMilli())
	if en, ok := s.m[cmd.Digest]; ok {
		by := fmt.Sprintf("by audit record %d at %s", en.Seq, fmtMS(en.AtMS))
		if en.Seq == 0 { // a change scheduled by an older enclave version, then cancelled
			by = "before " + fmtMS(en.AtMS)
		}
		msg := fmt.Sprintf("admin command %x (%s) was carried out already, %s; a command is carried out once (remembered until its not_after_ms, %s): to do it again, sign a new command",
			cmd.Digest, cmd.Kind, by, fmtMS(en.NotAfterMS))
		if en.CancelSeq != 0 {
			msg += fmt.Sprintf("; the change it scheduled was cancelled by audit record %d, and comes back only as a new, higher version", en.CancelSeq)
		}
		return refuseRule(refusal.CodeBadRequest, refusal.RuleReplayedCommand, msg)
	}
	if len(s.m) >= s.max && !cmd.Kind.OnlyStops() {
		oldest := int64(0)
		for _, en := range s.m {
			if oldest == 0 || en.NotAfterMS < oldest {
				oldest = en.NotAfterMS
			}
		}
		return refuseRule(refusal.CodeUnavailable, refusal.RuleCommandMemoryFull, fmt.Sprintf(
			"this enclave remembers %d admin commands whose validity has not ended, the most it may (so that none can be replayed); nothing changed: a new command is accepted once the oldest expires, at %s (a policy_cancel or a freeze is accepted even now)",
			len(s.m), fmtMS(oldest)))
	}
	return nil
}

// mark remembers a command carried out with its audit record seq, and
// returns the marks count to wait for (see awaitStored). A command that
// does not fit (a cancel at the bound: check let it through) is carried
// out without being remembered; it is still counted, so that its effect
// is checkpointed before its answer leaves.
func (s *spentCommands) mark(cmd *admin.Command, seq uint64, at time.Time) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[cmd.Digest]; !ok && len(s.m) < s.max {
		s.m[cmd.Digest] = &spentEntry{Digest: cmd.Digest, NotAfterMS: cmd.NotAfter.UnixMilli(), Seq: seq, AtMS: at.UnixMilli()}
	}
	s.marks++
	return s.marks
}

// markCancelled notes that the scheduled policy change with digest d
// (valid until notAfterMS) was cancelled by audit record seq: it counts
// as spent (it was when it was scheduled; a change restored from a
// checkpoint of an older enclave version may not have been), and a replay
// says so. Without room it is not remembered: the version floor refuses
// it anyway.
func (s *spentCommands) markCancelled(d [32]byte, notAfterMS int64, seq uint64, at time.Time) {
	if d == ([32]byte{}) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	en, ok := s.m[d]
	if !ok {
		if len(s.m) >= s.max || at.UnixMilli() >= notAfterMS {
			return
		}
		en = &spentEntry{Digest: d, NotAfterMS: notAfterMS, AtMS: at.UnixMilli()}
		s.m[d] = en
	}
	en.CancelSeq = seq
}

// snapshot returns the commands remembered at now (sorted, for a
// deterministic checkpoint) and the marks count they cover.
func (s *spentCommands) snapshot(now time.Time) ([]spentEntry, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now.UnixMilli())
	out := make([]spentEntry, 0, len(s.m))
	for _, en := range s.m {
		out = append(out, *en)
	}
	slices.SortFunc(out, func(a, b spentEntry) int { return bytes.Compare(a.Digest[:], b.Digest[:]) })
	return out, s.marks
}

// restore takes the commands a checkpoint remembers: those still valid at
// now, each once, at most max of them (a checkpoint holds no more: the
// enclave that sealed it refused beyond the bound).
func (s *spentCommands) restore(entries []spentEntry, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(entries) > s.max {
		return fmt.Errorf("%d admin commands remembered, limit %d", len(entries), s.max)
	}
	clear(s.m)
	for _, en := range entries {
		if _, dup := s.m[en.Digest]; dup {
			return fmt.Errorf("admin command %x remembered twice", en.Digest)
		}
		if now.UnixMilli() >= en.NotAfterMS {
			continue
		}
		s.m[en.Digest] = &en
	}
	return nil
}

// noteStored records that the host acknowledged storing a checkpoint
// holding marks (the checkpoints' lock is held by the caller).
func (s *spentCommands) noteStored(marks uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if marks > s.stored {
		s.stored = marks
		close(s.storedCh)
		s.storedCh = make(chan struct{})
	}
}

// errCheckpointUnacknowledged: no checkpoint holding the command was
// acknowledged in time.
var errCheckpointUnacknowledged = errors.New("the host has not acknowledged storing a checkpoint that holds it")

// awaitStored waits until the host has acknowledged storing a checkpoint
// that holds marks, for at most timeout.
func (s *spentCommands) awaitStored(ctx context.Context, marks uint64, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		done, ch := s.stored >= marks, s.storedCh
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return errCheckpointUnacknowledged
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", errCheckpointUnacknowledged, ctx.Err())
		}
	}
}

// waiting reports whether an admin answer waits for a checkpoint that is
// not acknowledged yet (tests: their host stores checkpoints only then).
func (s *spentCommands) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks > s.stored
}

func fmtMS(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
