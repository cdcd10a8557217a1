package enclave

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/internal/strictcbor"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// A checkpoint is the enclave's state that must survive a restart and that
// the host stores for it, sealed so that only an enclave holding the same
// seed can open it and nobody can alter it: the audit head the host has
// acknowledged and the head the enclave had appended, the policy in force,
// the keys added by admin commands, the freezes, the seed's sealing
// generation, the admin commands carried out whose validity has not ended
// and the policy version floor (spent.go, governance.go), and (with the
// policy engine's limits) usage in the limit windows.
//
// Format: magic "nitrosign checkpoint\n" (21 bytes), version 1 byte (2),
// generation 8 bytes big-endian, nonce 12 bytes, then the AES-256-GCM box
// (key from the seed, see stateKey) of the CBOR-encoded checkpoint, with
// everything before the nonce as additional data. Version 1 (without the
// appended head and the sealing generation) is refused: no deployment
// holds one, and without those fields a rollback could not be told.
//
// The host may hand back an older checkpoint than the newest (it is
// trusted for availability only). At start the enclave compares it with
// the host's last audit record and the sealed seed (see rollback.go): a
// checkpoint older than the log says was stored, a log behind the
// checkpoint's acknowledged head, or a seed of an older sealing generation
// is a named rollback that freezes every key; what a host that rolls back
// consistently can gain is bounded in docs/limits.md.
const (
	checkpointMagic   = "nitrosign checkpoint\n"
	checkpointVersion = 2
	checkpointHeader  = len(checkpointMagic) + 1 + 8
)

// checkpoint is the sealed state.
type checkpoint struct {
	Generation    uint64                `cbor:"1,keyasint"`
	TimeMS        int64                 `cbor:"2,keyasint"`
	AuditSeq      uint64                `cbor:"3,keyasint"`
	AuditHash     [32]byte              `cbor:"4,keyasint"`
	PolicyVersion uint64                `cbor:"5,keyasint"`
	PolicyHash    [32]byte              `cbor:"6,keyasint"`
	Keys          []checkpointKey       `cbor:"7,keyasint"`
	Limits        []byte                `cbor:"8,keyasint"`
	Frozen        []stateful.FreezeInfo `cbor:"9,keyasint"`
	// Policy is the document in force (canonical), Pending the changes
	// waiting for their time lock.
	Policy  []byte           `cbor:"10,keyasint"`
	Pending []*pendingPolicy `cbor:"11,keyasint"`
	// AppendedSeq and AppendedHash are the head of the enclave's chain when
	// the checkpoint was sealed (AuditSeq and AuditHash: the head the host
	// had acknowledged persisting then; AppendedSeq >= AuditSeq). Every
	// record up to it has its limit reservation in Limits. A host log that
	// ends between the two lost only records it never acknowledged, whose
	// answers were not released: a crash, not a rollback.
	AppendedSeq  uint64   `cbor:"12,keyasint"`
	AppendedHash [32]byte `cbor:"13,keyasint"`
	// SealGen is the newest sealing generation of the seed the enclave
	// knew of (at least 1): a sealed seed of an older generation handed
	// back later undoes a re-wrap.
	SealGen uint32 `cbor:"14,keyasint"`
	// PolicyFloor is the highest policy version ever in force, scheduled
	// or cancelled: a change must be above it. Spent holds the admin
	// commands carried out whose not_after has not passed (at most
	// MaxSpentCommands): their replay is refused. Both are absent from
	// the checkpoints of older enclave versions (floor: the versions the
	// checkpoint holds; no command remembered).
	PolicyFloor uint64       `cbor:"15,keyasint"`
	Spent       []spentEntry `cbor:"16,keyasint"`
}

// checkpointKey is a signing key added after genesis: derived from the
// seed at Path, or imported (Imported holds its 32-byte private key).
type checkpointKey struct {
	ID       string `cbor:"1,keyasint"`
	Path     string `cbor:"2,keyasint"`
	Imported []byte `cbor:"3,keyasint"`
}

// Checkpoint decoder caps. A checkpoint nests to depth 4 (the checkpoint
// map, Pending, one pending change, its Signers); its longest array is
// Spent, at most MaxSpentCommands (Keys holds at most maxKeys, Frozen one
// entry per key and one for all keys), and its largest map the
// checkpoint's 16 fields. The array cap is tied to MaxSpentCommands: below
// it, a checkpoint with a full Spent list would seal but not open. The
// sealed box is opened, and so authenticated as the enclave's own, before
// it is decoded: the caps guard against a bug, not a peer.
const (
	checkpointMaxNestedLevels  = 8
	checkpointMaxArrayElements = MaxSpentCommands
	checkpointMaxMapPairs      = 64
)

// The checkpoint encoding writes nil slices as null; checkpoints already
// sealed were written so (either decodes the same).
var (
	checkpointDecMode = strictcbor.DecMode(strictcbor.Limits{
		MaxNestedLevels:  checkpointMaxNestedLevels,
		MaxArrayElements: checkpointMaxArrayElements,
		MaxMapPairs:      checkpointMaxMapPairs,
	})
	checkpointEncMode = strictcbor.EncMode(cbor.NilContainerAsNull)
)

// sealCheckpoint encodes and seals c under key.
func sealCheckpoint(rand io.Reader, key []byte, c *checkpoint) ([]byte, error) {
	body, err := checkpointEncMode.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("enclave: checkpoint: %w", err)
	}
	defer clear(body)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, checkpointHeader+sealNonceSize+len(body)+aead.Overhead())
	out = append(out, checkpointMagic...)
	out = append(out, checkpointVersion)
	out = binary.BigEndian.AppendUint64(out, c.Generation)
	nonce := make([]byte, sealNonceSize)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("enclave: checkpoint: nonce: %w", err)
	}
	out = append(out, nonce...)
	out = aead.Seal(out, nonce, body, out[:checkpointHeader])
	if len(out) > proto.MaxCheckpointLen {
		return nil, fmt.Errorf("enclave: checkpoint of %d bytes, limit %d", len(out), proto.MaxCheckpointLen)
	}
	return out, nil
}

// openCheckpoint opens a sealed checkpoint: one that is not this seed's,
// or was altered, is refused.
func openCheckpoint(key, b []byte) (*checkpoint, error) {
	if len(b) > proto.MaxCheckpointLen {
		return nil, errors.New("enclave: checkpoint: too large")
	}
	if len(b) < checkpointHeader+sealNonceSize+16 || string(b[:len(checkpointMagic)]) != checkpointMagic {
		return nil, errors.New("enclave: checkpoint: not a nitrosign checkpoint")
	}
	switch b[len(checkpointMagic)] {
	case checkpointVersion:
	case 1:
		return nil, errors.New("enclave: checkpoint: format version 1 is not read by this enclave (version 2 adds the appended audit head and the sealing generation, for rollback detection)")
	default:
		return nil, errors.New("enclave: checkpoint: unknown format version")
	}
	gen := binary.BigEndian.Uint64(b[len(checkpointMagic)+1:])
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := b[checkpointHeader : checkpointHeader+sealNonceSize]
	body, err := aead.Open(nil, nonce, b[checkpointHeader+sealNonceSize:], b[:checkpointHeader])
	if err != nil {
		return nil, errors.New("enclave: checkpoint: does not open (not this seed's, or altered)")
	}
	defer clear(body)
	var c checkpoint
	if err := checkpointDecMode.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("enclave: checkpoint: %w", err)
	}
	switch {
	case c.Generation != gen:
		return nil, errors.New("enclave: checkpoint: generation differs from its header")
	case c.AppendedSeq < c.AuditSeq:
		return nil, errors.New("enclave: checkpoint: appended head before the acknowledged head")
	case c.SealGen == 0:
		return nil, errors.New("enclave: checkpoint: no sealing generation")
	}
	return &c, nil
}

// checkpoints is the state of the checkpoints this run sealed: the
// latest, what it was made from, and the newest the host acknowledged
// storing. Its lock serialises the host's checkpoint polls
// (checkpointRequest holds it throughout); it comes first in the lock
// order (see Enclave.guard): the poll reads the governance, the
// freezes, the admin commands' memory, the audit log and the tracker
// under it.
type checkpoints struct {
	mu     sync.Mutex
	gen    uint64  // generation of the latest checkpoint
	acked  uint64  // generation the host acknowledged storing
	sealed []byte  // the latest sealed checkpoint
	last   cpState // what it was made from
	// limits is the latest limits snapshot, of generation limitsGen;
	// ackLimits the one in the latest sealed checkpoint.
	limits    []byte
	limitsGen uint64
	ackLimits uint64
}

// startAt numbers the checkpoints of this run after gen, the newest
// generation known to be stored (at start, before any poll).
func (c *checkpoints) startAt(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen = gen
}

// acknowledgeLocked takes the host's acknowledgement that it stored
// generation ack: when that is the latest checkpoint, it returns the admin
// command marks and the limits snapshot generation the checkpoint holds,
// for the caller to pass on, and true.
func (c *checkpoints) acknowledgeLocked(ack uint64) (spentMarks, limitsGen uint64, ok bool) {
	if ack == 0 || ack != c.gen {
		return 0, 0, false
	}
	c.acked = ack
	return c.last.spentMarks, c.ackLimits, true
}

// limitsLocked returns the limits snapshot for the next checkpoint, and its
// generation: a new one from t when its usage changed, else the latest.
func (c *checkpoints) limitsLocked(t *stateful.Tracker, now time.Time) ([]byte, uint64, error) {
	if t.Dirty() || c.limits == nil {
		gen, snap, err := t.Checkpoint(now)
		if err != nil {
			return nil, 0, err
		}
		c.limits, c.limitsGen = snap, gen
	}
	return c.limits, c.limitsGen, nil
}

// unchangedLocked answers a poll when state is what the latest checkpoint
// was made from: the latest again, or nothing new once it is acknowledged.
func (c *checkpoints) unchangedLocked(state cpState) (*proto.CheckpointResponse, bool) {
	if c.sealed == nil || state != c.last {
		return nil, false
	}
	if c.acked == c.gen {
		return &proto.CheckpointResponse{Generation: c.gen, Sealed: []byte{}}, true
	}
	return &proto.CheckpointResponse{Generation: c.gen, Sealed: c.sealed}, true
}

// sealedLocked makes sealed, of generation gen, made from state, the latest
// checkpoint.
func (c *checkpoints) sealedLocked(gen uint64, sealed []byte, state cpState) {
	c.gen, c.sealed, c.last, c.ackLimits = gen, sealed, state, c.limitsGen
}

// checkpointRequest answers the host's poll: it records the host's
// acknowledgement and returns a newly sealed checkpoint when the state
// changed since the last one.
func (e *Enclave) checkpointRequest(m *proto.CheckpointRequest, now time.Time) (proto.Message, error) {
	// The admin commands carried out are read first: each is marked after
	// its effect is in place, so everything read below holds the effect
	// of every command in spent. An admin answer waits for the
	// acknowledgement of a checkpoint holding its mark (spentMarks).
	spent, spentMarks := e.gov.spent.snapshot(now)
	v := e.v.Load()
	if v == nil {
		return nil, errLocked()
	}
	if e.keyService == nil {
		return &proto.CheckpointResponse{Sealed: []byte{}}, nil // ephemeral: nothing survives a restart
	}
	cp := &e.cp
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if marks, limitsGen, ok := cp.acknowledgeLocked(m.Ack); ok {
		e.gov.spent.noteStored(marks)
		// Records appended from now on say the host stored it, before
		// the tracker lets transactions count from it: any transaction
		// the acknowledgement allows has a record that names it.
		v.audit.noteCheckpoint(m.Ack)
		if limitsGen != 0 {
			e.guard.inForce().tracker.Acknowledge(limitsGen)
		}
	}
	// The appended head is read before the limits snapshot is taken, so
	// that every record up to it (reserved before it was appended) has its
	// reservation in the snapshot.
	appended := v.audit.head()
	head, ok := v.audit.persistedHead()
	if !ok {
		head = cp.last.head
	}
	// The pending changes are read before the policy in force: a change
	// coming into force in between (applyDue) is then in the checkpoint as
	// pending or in force, never lost from both (one in force and still
	// listed as pending is dropped as superseded when it comes due).
	pend := e.gov.pendingList()
	rs := e.guard.inForce()
	snap, limitsGen, err := cp.limitsLocked(rs.tracker, now)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	frozen := e.guard.frozen.List()
	var pendKey strings.Builder
	for _, p := range pend {
		fmt.Fprintf(&pendKey, "%d:%x;", p.pol.Version(), p.pol.Hash())
	}
	floor := e.versionFloor()
	state := cpState{head: head, appended: appended, sealGen: v.keys.sealGenMax, keys: len(v.keys.extra), policy: rs.pol.Hash(), limitsGen: limitsGen, frozen: fmt.Sprint(frozen), pending: pendKey.String(), floor: floor, spentMarks: spentMarks}
	if resp, ok := cp.unchangedLocked(state); ok {
		return resp, nil
	}
	c := &checkpoint{
		Generation:    cp.gen + 1,
		TimeMS:        now.UnixMilli(),
		AuditSeq:      head.Seq,
		AuditHash:     head.Hash,
		PolicyVersion: rs.pol.Version(),
		PolicyHash:    rs.pol.Hash(),
		Keys:          v.keys.extra,
		Limits:        snap,
		Frozen:        frozen,
		Policy:        rs.pol.Canonical(),
		Pending:       pend,
		AppendedSeq:   appended.Seq,
		AppendedHash:  appended.Hash,
		SealGen:       v.keys.sealGenMax,
		PolicyFloor:   floor,
		Spent:         spent,
	}
	sealed, err := sealCheckpoint(e.rand, v.keys.stateKey, c)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	cp.sealedLocked(c.Generation, sealed, state)
	return &proto.CheckpointResponse{Generation: c.Generation, Sealed: sealed}, nil
}

// cpState is what a checkpoint depends on, to tell whether a new one is
// due.
type cpState struct {
	head      audit.Head
	appended  audit.Head
	sealGen   uint32
	keys      int
	policy    [32]byte
	limitsGen uint64
	frozen    string
	pending   string
	floor     uint64
	// spentMarks counts the admin commands carried out (this run) that
	// the checkpoint holds.
	spentMarks uint64
}
