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

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/kms"
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

// CodeKMSAccessDenied answers an unseal that KMS refused: usually an
// enclave image whose measurement the key policy does not name.
const CodeKMSAccessDenied = "kms_access_denied"

// unsealTimeout bounds one unseal or seal, KMS calls included.
const unsealTimeout = 2 * time.Minute

// errLocked refuses what needs keys while the enclave is locked.
func errLocked() *proto.Error {
	return refuse(api.CodeUnavailable, "the enclave is locked: its sealed seed has not been unsealed yet (the host unseals it through KMS at start; see the host's log)")
}

// credentials takes the AWS credentials the host pushes.
func (e *Enclave) credentials(m *proto.CredentialsRequest) proto.Message {
	if e.creds == nil {
		return refuse(api.CodeBadRequest, "this enclave does not call KMS (no kms section in its genesis configuration)")
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
		return refuse(api.CodeBadRequest, "%v", err)
	}
	return &proto.CredentialsResponse{}
}

// kmsError turns a KMS failure into an answer. kms errors carry no
// secrets, so their text is passed on.
func kmsError(op string, err error) *proto.Error {
	if errors.Is(err, kms.ErrAccessDenied) {
		return refuse(CodeKMSAccessDenied, "%s: KMS refused: %v", op, err)
	}
	return refuse(api.CodeUnavailable, "%s: %v", op, err)
}

// unseal answers an UnsealRequest: it seals a new seed (Create), or opens
// the sealed one and starts signing.
func (e *Enclave) unseal(ctx context.Context, m *proto.UnsealRequest) proto.Message {
	if e.keyService == nil {
		return refuse(api.CodeBadRequest, "this enclave's seed is ephemeral (no kms section in its genesis configuration): nothing to unseal")
	}
	e.unsealMu.Lock()
	defer e.unsealMu.Unlock()
	if e.v.Load() != nil {
		return refuse(api.CodeBadRequest, "the enclave is already unsealed")
	}
	ctx, cancel := context.WithTimeout(ctx, unsealTimeout)
	defer cancel()
	if m.Create {
		if len(m.Sealed) != 0 {
			return refuse(api.CodeBadRequest, "create with a sealed seed: send one or the other")
		}
		sealed, perr := e.createSeed(ctx)
		if perr != nil {
			return perr
		}
		return &proto.UnsealResponse{Sealed: sealed}
	}
	if len(m.Sealed) == 0 {
		return refuse(api.CodeBadRequest, "no sealed seed (to make a new one, send create)")
	}
	ss, err := parseSealedSeed(m.Sealed)
	if err != nil {
		return refuse(api.CodeBadRequest, "%v", err)
	}
	if !slices.Contains(e.genesis.KMS.KeyIDs(), ss.keyID) {
		return refuse(api.CodeBadRequest, "the sealed seed names KMS key %q, which the genesis configuration does not list", ss.keyID)
	}
	dk, err := e.keyService.Decrypt(ctx, ss.keyID, ss.kmsBlob, encryptionContext(ss.gen))
	if err != nil {
		e.log.Error("unseal: KMS Decrypt failed", "key_id", ss.keyID, "err", err)
		return kmsError("unsealing the seed", err)
	}
	seed, err := ss.open(dk)
	clear(dk)
	if err != nil {
		return refuse(api.CodeBadRequest, "%v", err)
	}
	defer clear(seed)
	line, perr := e.start(seed, ss.keyID, ss.gen, m.AuditHead, m.Checkpoint)
	if perr != nil {
		return perr
	}
	v := e.v.Load()
	e.log.Info("unsealed", "keys", len(v.keys), "sealing_generation", ss.gen, "audit_head", v.audit.head().Seq)
	return &proto.UnsealResponse{AuditKey: v.audit.key, Keys: uint32(len(v.keys)), AuditRecord: line}
}

// createSeed draws a new seed from the NSM and seals it under a new KMS
// data key. The seed is not used: the host must store the sealed seed and
// unseal it, so that no key is used whose seed is not stored.
func (e *Enclave) createSeed(ctx context.Context) ([]byte, *proto.Error) {
	seed := make([]byte, seedSize)
	defer clear(seed)
	if _, err := io.ReadFull(e.rand, seed); err != nil {
		return nil, refuse(api.CodeUnavailable, "drawing the seed: %v", err)
	}
	sealed, perr := e.sealUnder(ctx, e.genesis.KMS.KeyID, 1, seed)
	if perr != nil {
		return nil, perr
	}
	e.log.Info("new seed sealed", "key_id", e.genesis.KMS.KeyID)
	return sealed, nil
}

// sealUnder seals seed under a new data key of keyID.
func (e *Enclave) sealUnder(ctx context.Context, keyID string, gen uint32, seed []byte) ([]byte, *proto.Error) {
	dk, blob, err := e.keyService.GenerateDataKey(ctx, keyID, encryptionContext(gen))
	if err != nil {
		e.log.Error("seal: KMS GenerateDataKey failed", "key_id", keyID, "err", err)
		return nil, kmsError("sealing the seed", err)
	}
	defer clear(dk)
	sealed, err := sealSeed(e.rand, gen, keyID, blob, dk, seed)
	if err != nil {
		return nil, refuse(api.CodeInternal, "%v", err)
	}
	return sealed, nil
}

// start derives the vault from seed, restores the checkpoint, continues the
// audit log from the host's head and writes the boot record. It returns
// the boot record's line.
func (e *Enclave) start(seed []byte, keyID string, gen uint32, hostHead, sealedCP []byte) ([]byte, *proto.Error) {
	sk, err := stateKey(seed)
	if err != nil {
		return nil, refuse(api.CodeInternal, "%v", err)
	}
	defer clear(sk)
	var notes []string
	mismatch := false
	var cp *checkpoint
	if len(sealedCP) > 0 {
		if cp, err = openCheckpoint(sk, sealedCP); err != nil {
			notes = append(notes, fmt.Sprintf("the checkpoint the host sent was refused (%v)", err))
			mismatch = true
		}
	}
	var extra []checkpointKey
	if cp != nil {
		extra = cp.Keys
	}
	signer, err := audit.NewSigner(seed)
	if err != nil {
		return nil, refuse(api.CodeInternal, "%v", err)
	}
	head, headNote := continueFrom(hostHead, signer.PublicKey(), cp)
	signer.Destroy()
	if headNote != "" {
		notes = append(notes, headNote)
		mismatch = true
	}
	v, err := newVault(seed, e.genesis.Keys, extra, e.maxAck, head)
	if err != nil {
		return nil, refuse(api.CodeInternal, "%v", err)
	}
	v.audit.now, v.audit.stall = e.now, e.ackTimeout
	v.sealKeyID, v.sealGen = keyID, gen
	v.seed = bytes.Clone(seed)
	if cp != nil {
		e.cpGen = cp.Generation
		if note, err := e.restorePolicy(cp, e.now()); err != nil {
			notes = append(notes, fmt.Sprintf("the checkpoint's policy was refused (%v): the genesis policy is in force", err))
			mismatch = true
		} else if note != "" {
			notes = append(notes, note)
		}
		if len(cp.Limits) > 0 {
			rs, err := e.newRuleset(e.rules.Load().pol, cp.Limits, e.now())
			if err != nil {
				notes = append(notes, fmt.Sprintf("the checkpoint's limit usage was refused (%v): limits start from zero", err))
				mismatch = true
			} else {
				e.rules.Store(rs)
			}
		}
		e.frozen.set(cp.Frozen)
		if len(cp.Frozen) > 0 {
			notes = append(notes, fmt.Sprintf("%d freeze(s) in force from the checkpoint", len(cp.Frozen)))
		}
	} else if len(sealedCP) == 0 && len(hostHead) > 0 {
		notes = append(notes, "the host sent no checkpoint although its audit log has records: limit usage and freezes start from zero")
		mismatch = true
	}
	line, perr := e.boot(v, mismatch, notes)
	if perr != nil {
		v.destroy()
		return nil, perr
	}
	e.v.Store(v)
	return line, nil
}

// continueFrom decides where the audit log continues: after the host's
// last record, when it is this enclave's (its signature verifies, or its
// hash is the sealed checkpoint's). A head behind the checkpoint's, or
// forked from it, is noted: records were lost, withheld or replaced.
func continueFrom(line []byte, pub []byte, cp *checkpoint) (audit.Head, string) {
	var head audit.Head
	var note string
	if len(line) > 0 {
		line = bytes.TrimSuffix(line, []byte("\n"))
		hash := sha256.Sum256(line)
		rec, err := audit.VerifyRecord(line, pub)
		switch {
		case err == nil:
			head = audit.Head{Seq: rec.Seq, Hash: hash}
		case cp != nil && hash == cp.AuditHash:
			if r, uerr := audit.Unmarshal(line); uerr == nil && r.Seq == cp.AuditSeq {
				head = audit.Head{Seq: r.Seq, Hash: hash}
			}
		}
		if head.Seq == 0 {
			note = fmt.Sprintf("the host's last audit record is not this enclave's (%v)", errOr(err, "unsigned"))
		}
	}
	if cp == nil || cp.AuditSeq == 0 {
		return head, note
	}
	switch {
	case head.Seq < cp.AuditSeq:
		msg := fmt.Sprintf("the host's audit log ends at seq %d, before the sealed checkpoint's head %d:%x: records were lost or withheld; continuing from the host's head, so records after it are forked", head.Seq, cp.AuditSeq, cp.AuditHash)
		note = join(note, msg)
	case head.Seq == cp.AuditSeq && head.Hash != cp.AuditHash:
		note = join(note, fmt.Sprintf("the host's audit record %d differs from the sealed checkpoint's (%x): the log was forked or altered", head.Seq, cp.AuditHash))
	}
	return head, note
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// RuleAuditCheckpoint is the rule of a boot record whose audit head did
// not match the sealed checkpoint.
const RuleAuditCheckpoint = "audit_checkpoint"

// boot appends the boot (or, for a new log, genesis) record to v's log.
func (e *Enclave) boot(v *vault, mismatch bool, notes []string) ([]byte, *proto.Error) {
	ud := e.userData(v)
	kind, decision := audit.KindBoot, "started"
	if v.audit.head().Seq == 0 {
		kind = audit.KindGenesis
	}
	rule := ""
	if mismatch {
		decision, rule = "started_with_mismatch", RuleAuditCheckpoint
	}
	sum := fmt.Sprintf("nitrosign enclave %s started (%s); %d keys (hash %x); policy version %d (hash %x)",
		Version, e.stateOf(v), ud.KeyCount, ud.KeysHash, ud.PolicyVersion, ud.PolicyHash)
	for _, n := range notes {
		sum += "; " + n
	}
	line, _, err := v.audit.append(audit.Record{
		TimeMS:        nowMS(e.now),
		Kind:          kind,
		Summary:       sum,
		Decision:      decision,
		Rule:          rule,
		PolicyVersion: e.rules.Load().pol.Version(),
	})
	if err != nil {
		return nil, refuse(api.CodeUnavailable, "%v", err)
	}
	if mismatch {
		e.log.Warn("audit head mismatch at start", "notes", notes)
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
