package enclave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/proto"
)

// KeyService is what the enclave asks of AWS KMS: a *kms.Client, whose
// every operation carries a Recipient so that plaintext is opened only
// inside the enclave.
type KeyService interface {
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, ciphertextBlob []byte, err error)
	Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error)
}

// Key states, as health reports them.
const (
	StateLocked    = "locked"    // waiting for the host to hand over the sealed seed
	StateReady     = "ready"     // unsealed, signing
	StateEphemeral = "ephemeral" // a seed drawn at start and never sealed
)

// unsealTimeout bounds one unseal or seal, KMS calls included.
const unsealTimeout = 2 * time.Minute

// errLocked refuses what needs keys while the enclave is locked.
func errLocked() *Refusal {
	return refuse(refusal.CodeUnavailable, "the enclave is locked: its sealed seed has not been unsealed yet (the host unseals it through KMS at start; see the host's log)")
}

// credentials takes the AWS credentials the host pushes.
func (e *Enclave) credentials(m *proto.CredentialsRequest) (proto.Message, error) {
	if e.creds == nil {
		return nil, refuse(refusal.CodeBadRequest, "this enclave does not call KMS (no kms section in its genesis configuration)")
	}
	c := aws.Credentials{
		AccessKeyID:     m.AccessKeyID,
		SecretAccessKey: m.SecretAccessKey,
		SessionToken:    m.SessionToken,
	}
	if m.ExpiresUnixMS != 0 {
		c.CanExpire, c.Expires = true, time.UnixMilli(m.ExpiresUnixMS)
	}
	if err := e.creds.Set(c); err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	return &proto.CredentialsResponse{}, nil
}

// kmsError turns a KMS failure into an answer. kms errors carry no
// secrets, so their text is passed on.
func kmsError(op string, err error) *Refusal {
	if errors.Is(err, kms.ErrAccessDenied) {
		return refuse(refusal.CodeKMSAccessDenied, "%s: KMS refused: %v", op, err)
	}
	return refuse(refusal.CodeUnavailable, "%s: %v", op, err)
}

// unseal answers an UnsealRequest: it seals a new seed (Create), or opens
// the sealed one and starts signing.
func (e *Enclave) unseal(ctx context.Context, m *proto.UnsealRequest, now time.Time) (proto.Message, error) {
	if e.keyService == nil {
		return nil, refuse(refusal.CodeBadRequest, "this enclave's seed is ephemeral (no kms section in its genesis configuration): nothing to unseal")
	}
	e.unsealMu.Lock()
	defer e.unsealMu.Unlock()
	if e.v.Load() != nil {
		return nil, refuse(refusal.CodeBadRequest, "the enclave is already unsealed")
	}
	ctx, cancel := context.WithTimeout(ctx, unsealTimeout)
	defer cancel()
	if m.Create {
		if len(m.Sealed) != 0 {
			return nil, refuse(refusal.CodeBadRequest, "create with a sealed seed: send one or the other")
		}
		sealed, err := e.createSeed(ctx)
		if err != nil {
			return nil, err
		}
		return &proto.UnsealResponse{Sealed: sealed}, nil
	}
	if len(m.Sealed) == 0 {
		return nil, refuse(refusal.CodeBadRequest, "no sealed seed (to make a new one, send create)")
	}
	ss, err := parseSealedSeed(m.Sealed)
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	if !slices.Contains(e.genesis.KMS.KeyIDs(), ss.keyID) {
		return nil, refuse(refusal.CodeBadRequest, "the sealed seed names KMS key %q, which the genesis configuration does not list", ss.keyID)
	}
	dk, err := e.keyService.Decrypt(ctx, ss.keyID, ss.kmsBlob, encryptionContext(ss.gen))
	if err != nil {
		e.log.Error("unseal: KMS Decrypt failed", "key_id", ss.keyID, "err", err)
		return nil, kmsError("unsealing the seed", err)
	}
	seed, err := ss.open(dk)
	clear(dk)
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	defer clear(seed)
	line, err := e.start(seed, ss.keyID, ss.gen, m.AuditHead, m.Checkpoint, now)
	if err != nil {
		return nil, err
	}
	v := e.v.Load()
	e.log.Info("unsealed", "keys", len(v.keys.list), "sealing_generation", ss.gen, "audit_head", v.audit.head().Seq)
	return &proto.UnsealResponse{AuditKey: v.audit.key, Keys: uint32(len(v.keys.list)), AuditRecord: line}, nil
}

// createSeed draws a new seed from the NSM and seals it under a new KMS
// data key. The seed is not used: the host must store the sealed seed and
// unseal it, so that no key is used whose seed is not stored.
func (e *Enclave) createSeed(ctx context.Context) ([]byte, error) {
	seed := make([]byte, seedSize)
	defer clear(seed)
	if _, err := io.ReadFull(e.rand, seed); err != nil {
		return nil, refuse(refusal.CodeUnavailable, "drawing the seed: %v", err)
	}
	sealed, err := e.sealUnder(ctx, e.genesis.KMS.KeyID, 1, seed)
	if err != nil {
		return nil, err
	}
	e.log.Info("new seed sealed", "key_id", e.genesis.KMS.KeyID)
	return sealed, nil
}

// sealUnder seals seed under a new data key of keyID.
func (e *Enclave) sealUnder(ctx context.Context, keyID string, gen uint32, seed []byte) ([]byte, error) {
	dk, blob, err := e.keyService.GenerateDataKey(ctx, keyID, encryptionContext(gen))
	if err != nil {
		e.log.Error("seal: KMS GenerateDataKey failed", "key_id", keyID, "err", err)
		return nil, kmsError("sealing the seed", err)
	}
	defer clear(dk)
	sealed, err := sealSeed(e.rand, gen, keyID, blob, dk, seed)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	return sealed, nil
}

// start derives the vault from seed, restores the checkpoint, continues the
// audit log from the host's head, compares the three for rollbacks (see
// rollback.go) and writes the boot record, freezing every key after a
// detected rollback. It returns the boot record's line.
func (e *Enclave) start(seed []byte, keyID string, gen uint32, hostHead, sealedCP []byte, now time.Time) ([]byte, error) {
	sk, err := stateKey(seed)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	defer clear(sk)
	var st bootStatus
	var cp *checkpoint
	in := startInputs{hostSent: len(hostHead) > 0, sealGen: gen, sealKeyID: keyID}
	if len(sealedCP) > 0 {
		if cp, err = openCheckpoint(sk, sealedCP); err != nil {
			in.cpRefused = err.Error()
			st.mismatch = true
			st.notes = append(st.notes, fmt.Sprintf("the checkpoint the host sent was refused (%v)", err))
		}
	}
	in.cp = cp
	var extra []checkpointKey
	if cp != nil {
		extra = cp.Keys
	}
	signer, err := audit.NewSigner(seed)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	head, hostRec, headNote := continueFrom(hostHead, signer.PublicKey(), cp)
	signer.Destroy()
	if headNote != "" {
		st.notes = append(st.notes, headNote)
		st.mismatch = true
	}
	in.hostRec, in.hostHead = hostRec, head
	rollbacks, notes := detectRollbacks(in)
	st.rollbacks = rollbacks
	st.notes = append(st.notes, notes...)
	v, err := newVault(seed, e.genesis.Keys, extra, e.maxAck, head)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	v.audit.now, v.audit.stall = e.now, e.ackTimeout
	v.keys.sealKeyID, v.keys.sealGen, v.keys.sealGenMax = keyID, gen, gen
	v.keys.seed = bytes.Clone(seed)
	// The newest checkpoint generation known to be stored: the one handed
	// back, or a newer one the host's log names. Records carry it on, and
	// new checkpoints are numbered after it, so that a replay is told again
	// at the next start and no generation is handed out twice.
	var stored uint64
	if cp != nil {
		stored = cp.Generation
		v.keys.sealGenMax = max(gen, cp.SealGen)
	}
	if hostRec != nil {
		stored = max(stored, hostRec.Checkpoint)
	}
	v.audit.noteCheckpoint(stored)
	e.cp.startAt(stored)
	if cp != nil {
		if note, err := e.restorePolicy(cp, now); err != nil {
			st.notes = append(st.notes, fmt.Sprintf("the checkpoint's policy was refused (%v): the genesis policy is in force", err))
			st.mismatch = true
		} else if note != "" {
			st.notes = append(st.notes, note)
		}
		if len(cp.Limits) > 0 {
			if err := e.guard.restoreLimits(cp.Limits, now); err != nil {
				st.notes = append(st.notes, fmt.Sprintf("the checkpoint's limit usage was refused (%v): limits start from zero", err))
				st.mismatch = true
			}
		}
		if err := e.gov.spent.restore(cp.Spent, now); err != nil {
			st.notes = append(st.notes, fmt.Sprintf("the checkpoint's admin commands carried out were refused (%v): none is remembered", err))
			st.mismatch = true
		}
		e.guard.frozen.Set(cp.Frozen)
		if len(cp.Frozen) > 0 {
			st.notes = append(st.notes, fmt.Sprintf("%d freeze(s) in force from the checkpoint", len(cp.Frozen)))
		}
		if note := e.chargeUnseen(cp, hostRec, head, rollbacks); note != "" {
			st.notes = append(st.notes, note)
		}
	} else if len(sealedCP) == 0 && len(hostHead) > 0 {
		st.notes = append(st.notes, "the host sent no checkpoint although its audit log has records: limit usage and freezes start from zero")
		st.mismatch = true
	}
	if e.keyService != nil { // an ephemeral enclave has no checkpoints to count from
		v.audit.unacknowledged = func() uint64 { return e.guard.inForce().tracker.Unacknowledged() }
	}
	line, err := e.boot(v, st, now)
	if err != nil {
		v.keys.destroy()
		return nil, err
	}
	if len(rollbacks) > 0 {
		e.freezeForRollbacks(v.audit, rollbacks, now)
	}
	e.v.Store(v)
	return line, nil
}

// continueFrom decides where the audit log continues: after the host's
// last record, when it is this enclave's (its signature verifies, or its
// hash is one the sealed checkpoint holds). It returns that head, the
// record (nil when the host sent none or one not this enclave's) and a
// note when the record is not this enclave's. Comparing the head with the
// checkpoint's is detectRollbacks' work.
func continueFrom(line []byte, pub []byte, cp *checkpoint) (audit.Head, *audit.Record, string) {
	if len(line) == 0 {
		return audit.Head{}, nil, ""
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	hash := sha256.Sum256(line)
	rec, err := audit.VerifyRecord(line, pub)
	if err == nil {
		return audit.Head{Seq: rec.Seq, Hash: hash}, &rec, ""
	}
	if cp != nil && (hash == cp.AuditHash || hash == cp.AppendedHash) {
		if r, uerr := audit.Unmarshal(line); uerr == nil && (r.Seq == cp.AuditSeq && hash == cp.AuditHash || r.Seq == cp.AppendedSeq && hash == cp.AppendedHash) {
			return audit.Head{Seq: r.Seq, Hash: hash}, &r, ""
		}
	}
	return audit.Head{}, nil, fmt.Sprintf("the host's last audit record is not this enclave's (%v)", errOr(err, "unsigned"))
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// bootStatus is what a boot record says beyond the start itself.
type bootStatus struct {
	// mismatch: the head or checkpoint could not be used
	// (refusal.RuleAuditCheckpoint).
	mismatch bool
	notes    []string
	// rollbacks detected, the most severe first: the record names the
	// first and lists them all.
	rollbacks []rollback
}

// boot appends the boot (or, for a new log, genesis) record to v's log.
func (e *Enclave) boot(v *vault, st bootStatus, now time.Time) ([]byte, error) {
	ud := e.userData(v)
	kind, decision := audit.KindBoot, "started"
	if v.audit.head().Seq == 0 {
		kind = audit.KindGenesis
	}
	rule := ""
	switch {
	case len(st.rollbacks) > 0:
		decision, rule = DecisionStartedWithRollback, st.rollbacks[0].rule
	case st.mismatch:
		decision, rule = "started_with_mismatch", refusal.RuleAuditCheckpoint
	}
	sum := fmt.Sprintf("nitrosign enclave %s started (%s); %d keys (hash %x); policy version %d (hash %x)",
		Version, e.stateOf(v), ud.KeyCount, ud.KeysHash, ud.PolicyVersion, ud.PolicyHash)
	if v.keys.sealKeyID != "" {
		sum += fmt.Sprintf("; sealed seed of sealing generation %d under KMS key %s", v.keys.sealGen, v.keys.sealKeyID)
	}
	for _, n := range st.notes {
		sum += "; " + n
	}
	for _, r := range st.rollbacks {
		sum += "; " + audit.RollbackNote(r.rule, r.evidence)
	}
	if len(st.rollbacks) > 0 {
		sum += "; every key is frozen until an admin quorum unfreezes it"
	}
	line, _, err := v.audit.append(audit.Record{
		TimeMS:        now.UnixMilli(),
		Kind:          kind,
		Summary:       sum,
		Decision:      decision,
		Rule:          rule,
		PolicyVersion: e.guard.inForce().pol.Version(),
	})
	if err != nil {
		return nil, refuse(refusal.CodeUnavailable, "%v", err)
	}
	if st.mismatch {
		e.log.Warn("audit head mismatch at start", "notes", st.notes)
	}
	return line, nil
}

func (e *Enclave) stateOf(v *vault) string {
	switch {
	case v == nil:
		return StateLocked
	case e.keyService == nil:
		return StateEphemeral
	default:
		return StateReady
	}
}
