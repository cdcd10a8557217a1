package enclave

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/proto"
)

// TestSpentCheckpointAtTheBound: a checkpoint holding MaxSpentCommands
// commands (the longest kind name, the largest times and seqs) seals within
// proto.MaxCheckpointLen with room for the rest of the state, opens within
// the decoder's limits, and restores them all; one more than the bound is
// refused at restore.
func TestSpentCheckpointAtTheBound(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	now := time.UnixMilli(1_800_000_000_000)
	var entries []spentEntry
	for i := range MaxSpentCommands {
		var d [32]byte
		binary.BigEndian.PutUint64(d[:], uint64(i))
		entries = append(entries, spentEntry{Digest: d, NotAfterMS: now.Add(admin.MaxValidity).UnixMilli(), Seq: 1<<53 - 1 - uint64(i), AtMS: now.UnixMilli(), CancelSeq: 1<<53 - 1})
	}
	cp := &checkpoint{Generation: 1, SealGen: 1, PolicyFloor: 1 << 40, Spent: entries}
	sealed, err := sealCheckpoint(rand.Reader, key, cp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a checkpoint holding %d commands: %d bytes (%d a command), limit %d", MaxSpentCommands, len(sealed), len(sealed)/MaxSpentCommands, proto.MaxCheckpointLen)
	if len(sealed) > proto.MaxCheckpointLen/2 {
		t.Errorf("the commands remembered take %d of the checkpoint's %d bytes", len(sealed), proto.MaxCheckpointLen)
	}
	got, err := openCheckpoint(key, sealed)
	if err != nil {
		t.Fatal(err)
	}
	var s spentCommands
	s.init()
	if err := s.restore(got.Spent, now); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.snapshot(now); len(l) != MaxSpentCommands || got.PolicyFloor != 1<<40 {
		t.Fatalf("%d commands restored, floor %d", len(l), got.PolicyFloor)
	}
	if err := s.restore(append(entries, spentEntry{Digest: [32]byte{0xff}}), now); err == nil {
		t.Error("a checkpoint holding more than the bound was restored")
	}
	if err := s.restore([]spentEntry{entries[0], entries[0]}, now); err == nil {
		t.Error("a command remembered twice was restored")
	}
	// Expired ones are dropped at restore.
	if err := s.restore(entries[:3], now.Add(admin.MaxValidity)); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.snapshot(now); len(l) != 0 {
		t.Errorf("%d expired commands restored", len(l))
	}
}
