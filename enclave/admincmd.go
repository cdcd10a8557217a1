package enclave

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// Key import: the operator encrypts the 32-byte private key with KMS
// Encrypt under the sealing key, with this encryption context (the key id
// binds the ciphertext to the command that names it). Only the attested
// enclave can decrypt it (the key policy allows Decrypt only with its
// attestation).
const (
	importPurpose = "key-import"
)

func importContext(keyID string) map[string]string {
	return map[string]string{"nitrosign:purpose": importPurpose, "nitrosign:key-id": keyID}
}

// ImportContext is the KMS encryption context an operator encrypts a key
// to import under id with.
func ImportContext(id string) map[string]string { return importContext(id) }

// AdminResult is the JSON result of an admin command.
type AdminResult struct {
	Kind    string `json:"kind"`
	KeyID   string `json:"key_id,omitempty"`
	Address string `json:"address,omitempty"`
	Path    string `json:"path,omitempty"`
	KMSKey  string `json:"kms_key_id,omitempty"`
	Sealing uint32 `json:"sealing_generation,omitempty"`
	// AllKeys is set by a freeze of every key.
	AllKeys bool     `json:"all_keys,omitempty"`
	Signers []string `json:"signers"`
	// AuditSeq is the sequence number of the command's audit record.
	AuditSeq uint64 `json:"audit_seq"`
}

// adminCommand verifies an admin-quorum command and carries it out: each
// is recorded in the audit log (kind "key"), with the admins whose
// signatures counted as its approvers, before its result leaves. A
// command is carried out once (see spent.go): its answer leaves only once
// the host has acknowledged storing a checkpoint that remembers it.
func (e *Enclave) adminCommand(ctx context.Context, m *proto.AdminRequest, now time.Time) (proto.Message, error) {
	set := e.genesis.AdminSet()
	if set == nil {
		return nil, refuse(refusal.CodeUnauthorized, "this enclave's genesis configuration names no admins: admin commands are refused")
	}
	cmd, signers, err := set.Verify(m.Envelope, now, e.genesisHash)
	if err != nil {
		code := refusal.CodeUnauthorized
		if errors.Is(err, admin.ErrMalformed) {
			code = refusal.CodeBadRequest
		}
		return nil, refuse(code, "%v", err)
	}
	if e.v.Load() == nil {
		return nil, errLocked()
	}
	resp, marks, err := e.adminExecute(ctx, cmd, signers, now)
	if err != nil || marks == 0 || e.keyService == nil {
		// Refused (nothing changed), or an ephemeral enclave, which has
		// no checkpoints: nothing survives its restart to replay against.
		return resp, err
	}
	// Outside e.unsealMu: the next command need not wait for this one's
	// record or checkpoint. The record's acknowledgement first, as for
	// every answer (Handle's released then finds it acknowledged), so
	// that a host that persists no records is named as such.
	if err := e.awaitRelease(ctx, resp); err != nil {
		return nil, err
	}
	if err := e.gov.spent.awaitStored(ctx, marks, e.ackTimeout); err != nil {
		e.log.Warn("admin answer withheld: no checkpoint holding the command is acknowledged", "kind", cmd.Kind, "digest", fmt.Sprintf("%x", cmd.Digest), "err", err)
		return nil, refuseRule(refusal.CodeUnavailable, refusal.RuleCheckpoint, fmt.Sprintf(
			"admin command %x (%s) was carried out and recorded, but %v yet: its answer is withheld. Once one is stored, sending the command again is refused as replayed (rule %s); if the enclave restarts without it, the command is not in force and sending it again carries it out: nothing is lost",
			cmd.Digest, cmd.Kind, err, refusal.RuleReplayedCommand))
	}
	return resp, nil
}

// adminExecute carries out a verified command, under e.unsealMu so that
// two copies of one envelope cannot both be carried out: the replay check
// and the mark that the command is spent are taken under the lock that
// serialises the commands. It returns the answer and, when the command
// was carried out, the marks count its checkpoint must hold, or the
// refusal (nothing changed, and the admins can send it again).
//
// The command acts at now, the time the request arrived, and on the state
// as the tick before it left it (routes): owed records (a freeze's first
// of all) written, expiries and due policy changes applied, so that an
// unfreeze finds the freeze it names recorded.
func (e *Enclave) adminExecute(ctx context.Context, cmd *admin.Command, signers []string, now time.Time) (proto.Message, uint64, error) {
	e.unsealMu.Lock()
	defer e.unsealMu.Unlock()
	v := e.v.Load() // the newest, under the lock
	if err := e.gov.spent.check(cmd, now); err != nil {
		e.log.Warn("admin command refused", "kind", cmd.Kind, "digest", fmt.Sprintf("%x", cmd.Digest), "rule", ruleOf(err))
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, unsealTimeout)
	defer cancel()
	var resp proto.Message
	var err error
	switch cmd.Kind {
	case admin.KindKeyCreate:
		resp, err = e.keyCreate(v, cmd, signers, now)
	case admin.KindKeyImport:
		resp, err = e.keyImport(ctx, v, cmd, signers, now)
	case admin.KindSealRotate:
		resp, err = e.sealRotate(ctx, v, cmd, signers, now)
	case admin.KindUnfreeze:
		resp, err = e.unfreeze(v.audit, cmd, signers, now)
	case admin.KindFreeze:
		resp, err = e.freezeCommand(v, cmd, signers, now)
	case admin.KindPolicyChange:
		resp, err = e.policyChange(v, cmd, signers, now)
	case admin.KindPolicyCancel:
		resp, err = e.policyCancel(v.audit, cmd, signers, now)
	default:
		return nil, 0, refuse(refusal.CodeBadRequest, "admin command %s is not carried out by this enclave version", cmd.Kind)
	}
	if err != nil {
		return nil, 0, err
	}
	ar, ok := resp.(*proto.AdminResponse)
	if !ok {
		return resp, 0, nil
	}
	// Carried out: its effect is in place and its record appended. The
	// mark comes after the effect, so that a checkpoint holding the mark
	// holds the effect too (checkpointRequest reads the marks first).
	rec, err := audit.Unmarshal(ar.AuditRecord)
	if err != nil {
		return nil, e.gov.spent.mark(cmd, 0, now), refuse(refusal.CodeInternal, "enclave: an admin answer's own audit record does not parse: %v", err)
	}
	return resp, e.gov.spent.mark(cmd, rec.Seq, now), nil
}

// publishKey records the new key k in v's audit log, then makes it usable:
// it publishes nk, v's keyring with k added, with v's audit log.
func (e *Enclave) publishKey(v *vault, nk *keyring, k *signingKey, cmd *admin.Command, signers []string, now time.Time, decision, summary string) (proto.Message, error) {
	line, seq, err := v.audit.appendEvent(audit.Record{
		TimeMS:        now.UnixMilli(),
		Kind:          audit.KindKey,
		RequestDigest: cmd.Digest[:],
		Key:           k.id,
		Summary:       summary,
		Decision:      decision,
		PolicyVersion: e.guard.inForce().pol.Version(),
		Approvers:     signers,
	})
	if err != nil {
		if errors.Is(err, audit.ErrRecordTooLarge) {
			return nil, appendRefusal(err)
		}
		return nil, refuse(refusal.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("%s of key %s", cmd.Kind, k.id), err))
	}
	e.v.Store(&vault{keys: nk, audit: v.audit})
	e.log.Info("key "+decision, "key", k.id, "address", k.addr.Hex(), "admins", signers)
	return adminResponse(AdminResult{Kind: string(cmd.Kind), KeyID: k.id, Address: k.addr.Hex(), Path: k.path, Signers: signers, AuditSeq: seq}, nil, line)
}

func jsonAdminResponse(r any, line []byte) (proto.Message, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	return &proto.AdminResponse{Result: b, AuditRecord: line}, nil
}

func adminResponse(r AdminResult, sealed, line []byte) (proto.Message, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	return &proto.AdminResponse{Result: b, Sealed: sealed, AuditRecord: line}, nil
}

func (e *Enclave) keyCreate(v *vault, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.KeyCreate()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	if v.keys.master == nil {
		return nil, refuse(refusal.CodeBadRequest, "this enclave's seed is ephemeral: keys are added in its genesis configuration")
	}
	if len(v.keys.list) >= genesis.MaxKeys {
		return nil, refuse(refusal.CodeBadRequest, "this enclave holds %d keys, the most it may", len(v.keys.list))
	}
	nk, k, err := v.keys.with(checkpointKey{ID: body.KeyID, Path: body.Parsed.String()})
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	return e.publishKey(v, nk, k, cmd, signers, now, "created",
		fmt.Sprintf("key %s created at %s: address %s", k.id, k.path, k.addr.Hex()))
}

func (e *Enclave) keyImport(ctx context.Context, v *vault, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.KeyImport()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	if e.keyService == nil {
		return nil, refuse(refusal.CodeBadRequest, "this enclave's seed is ephemeral: it has no KMS key to import with")
	}
	if _, taken := v.keys.byID[body.KeyID]; taken {
		return nil, refuse(refusal.CodeBadRequest, "key %s: the id is taken", body.KeyID)
	}
	if len(v.keys.list) >= genesis.MaxKeys {
		return nil, refuse(refusal.CodeBadRequest, "this enclave holds %d keys, the most it may", len(v.keys.list))
	}
	scalar, err := e.keyService.Decrypt(ctx, v.keys.sealKeyID, body.Blob, importContext(body.KeyID))
	if errors.Is(err, kms.ErrInvalidCiphertext) {
		// The operator's blob, not the service: the same envelope is
		// refused again, so say so with a 400 rather than "retry later".
		e.log.Warn("key import: the encrypted key does not decrypt", "key", body.KeyID, "err", err)
		return nil, refuse(refusal.CodeBadRequest, "the encrypted key does not decrypt under KMS key %s with the encryption context of key id %s (it was encrypted for another key id or under another KMS key, or is damaged): %v", v.keys.sealKeyID, body.KeyID, err)
	}
	if err != nil {
		e.log.Error("key import: KMS Decrypt failed", "key", body.KeyID, "err", err)
		return nil, kmsError("decrypting the imported key", err)
	}
	if len(scalar) != 32 {
		clear(scalar)
		return nil, refuse(refusal.CodeBadRequest, "the imported key decrypts to %d bytes; want the 32-byte secp256k1 private key", len(scalar))
	}
	nk, k, err := v.keys.with(checkpointKey{ID: body.KeyID, Imported: scalar})
	if err != nil {
		clear(scalar)
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	return e.publishKey(v, nk, k, cmd, signers, now, "imported",
		fmt.Sprintf("key %s imported (KMS-encrypted by an operator): address %s", k.id, k.addr.Hex()))
}

// sealRotate re-wraps the seed under a new data key (of the same KMS key,
// or another the genesis lists). The seed never leaves the enclave in
// clear; the host stores the new sealed seed before answering. The old
// sealed seed still opens (KMS can still decrypt its data key) until the
// operator retires the old KMS key.
func (e *Enclave) sealRotate(ctx context.Context, v *vault, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.SealRotate()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	kr := v.keys
	if e.keyService == nil || kr.seed == nil {
		return nil, refuse(refusal.CodeBadRequest, "this enclave's seed is ephemeral: there is no sealing to rotate")
	}
	target := kr.sealKeyID
	if body.KMSKeyID != "" {
		target = body.KMSKeyID
	}
	if !slices.Contains(e.genesis.KMS.KeyIDs(), target) {
		return nil, refuse(refusal.CodeBadRequest, "KMS key %q is not listed in the genesis configuration (kms.key_id, kms.additional_key_ids)", target)
	}
	gen := max(kr.sealGen, kr.sealGenMax) + 1 // past any generation known, so that no older one is newer
	sealed, err := e.sealUnder(ctx, target, gen, kr.seed)
	if err != nil {
		return nil, err
	}
	nk := *kr
	nk.sealKeyID, nk.sealGen, nk.sealGenMax = target, gen, gen
	line, seq, err := v.audit.appendEvent(audit.Record{
		TimeMS:        now.UnixMilli(),
		Kind:          audit.KindKey,
		RequestDigest: cmd.Digest[:],
		Summary:       fmt.Sprintf("seed re-wrapped under a new data key of KMS key %s (sealing generation %d)", target, gen),
		Decision:      "rewrapped",
		PolicyVersion: e.guard.inForce().pol.Version(),
		Approvers:     signers,
	})
	if err != nil {
		// The new sealed seed is dropped: the host never stores it.
		if errors.Is(err, audit.ErrRecordTooLarge) {
			return nil, appendRefusal(err)
		}
		return nil, refuse(refusal.CodeUnavailable, "%s", eventRefusal("the re-wrap of the seed", err))
	}
	e.v.Store(&vault{keys: &nk, audit: v.audit})
	e.log.Info("seed re-wrapped", "kms_key_id", target, "generation", gen, "admins", signers)
	return adminResponse(AdminResult{Kind: string(cmd.Kind), KMSKey: target, Sealing: gen, Signers: signers, AuditSeq: seq}, sealed, line)
}

// unfreeze lifts the freeze that the audit record FreezeSeq made: naming
// the record means an old unfreeze cannot lift a newer freeze. Refusals
// before the unfreeze no longer count toward the next freeze.
//
// A freeze whose record is owed (it could not be appended when the freeze
// took effect) has no seq to name yet. It needs none for long: the tick,
// which runs before every admin command and after every audit
// acknowledgement, appends owed freeze records before any other event.
// So whenever an unfreeze can be recorded, the freeze it lifts has its
// record, and while a freeze's record cannot be appended no unfreeze
// could be recorded either (its own record would not fit). A quorum can
// therefore always lift a freeze, once the host persists records again;
// until then the refusal below says so.
func (e *Enclave) unfreeze(al *auditLog, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.Unfreeze()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	var what string
	var line []byte
	var seq uint64
	target, owedTargets, err := e.guard.frozen.Unfreeze(body.FreezeSeq, now, func(target string) error {
		what = describeTarget(target)
		var err error
		line, seq, err = al.appendEvent(audit.Record{
			TimeMS:        now.UnixMilli(),
			Kind:          audit.KindFreeze,
			RequestDigest: cmd.Digest[:],
			Key:           strings.TrimPrefix(target, stateful.AllKeys),
			Summary:       fmt.Sprintf("%s unfrozen (the freeze of audit record %d)", what, body.FreezeSeq),
			Decision:      "unfrozen",
			PolicyVersion: e.guard.inForce().pol.Version(),
			Approvers:     signers,
		})
		return err
	})
	if target == "" {
		if len(owedTargets) > 0 {
			owed := make([]string, len(owedTargets))
			for i, k := range owedTargets {
				owed[i] = describeTarget(k)
			}
			return nil, refuse(refusal.CodeUnavailable, "no freeze in force was made by audit record %d; the freeze of %s is not recorded yet (the host has not persisted the audit backlog): it is recorded before any other event once the host catches up; then name its record", body.FreezeSeq, strings.Join(owed, ", "))
		}
		return nil, refuse(refusal.CodeBadRequest, "no freeze in force was made by audit record %d", body.FreezeSeq)
	}
	if err != nil {
		if errors.Is(err, audit.ErrRecordTooLarge) {
			return nil, appendRefusal(err)
		}
		return nil, refuse(refusal.CodeUnavailable, "%s", eventRefusal(fmt.Sprintf("the unfreeze of %s (the freeze of audit record %d)", what, body.FreezeSeq), err))
	}
	e.log.Info("unfrozen", "target", target, "admins", signers)
	return adminResponse(AdminResult{Kind: string(cmd.Kind), KeyID: strings.TrimPrefix(target, stateful.AllKeys), Signers: signers, AuditSeq: seq}, nil, line)
}

// freezeCommand freezes the key the command names, or every key, through
// the machinery of the policy's sticky freezes (guard.frozen): the freeze
// is in force for every decision after it, survives restarts in the
// checkpoint, and only an unfreeze naming its audit record lifts it.
//
// It holds the write side of guard.mu while it freezes, as a policy change
// does (putInForce): no decision is in flight, so that in the audit log
// every decision before the freeze's record was made before the freeze
// and every one after it sees it. A request decided (recorded) before it
// is not recalled: its signature may still leave.
//
// A target frozen already is refused (rule frozen, naming the freeze in
// force), changing nothing: a target holds one freeze at a time, lifted by
// the unfreeze naming its record. A key frozen by a freeze of every key
// can still be frozen on its own, so that it stays frozen when every key
// is unfrozen.
//
// If the freeze's record cannot be appended (the host has not persisted
// the backlog), the freeze holds anyway (fail closed): its record is owed
// and written before any other event once the log has room (recordFreezes),
// as for a sticky freeze, and the answer is a refusal saying so.
func (e *Enclave) freezeCommand(v *vault, cmd *admin.Command, signers []string, now time.Time) (proto.Message, error) {
	body, err := cmd.Freeze()
	if err != nil {
		return nil, refuse(refusal.CodeBadRequest, "%v", err)
	}
	target := stateful.AllKeys
	if !body.AllKeys {
		if _, ok := v.keys.byID[body.KeyID]; !ok {
			return nil, refuse(refusal.CodeBadRequest, "freeze: this enclave holds no key %s; nothing changed (nitrosign keys lists them)", body.KeyID)
		}
		target = body.KeyID
	}
	what := describeTarget(target)
	g := &e.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, fi := range g.frozen.List() {
		if fi.Key == target {
			return nil, refuseRule(refusal.CodeBadRequest, refusal.RuleFrozen, fmt.Sprintf(
				"freeze: %s is frozen already (%s: %s); nothing changed: a target holds one freeze, lifted by the unfreeze naming its record", what, fi.Record(), fi.Reason))
		}
	}
	reason := fmt.Sprintf("a freeze by admin %s: %s", strings.Join(signers, ", "), body.Reason)
	pv := g.inForce().pol.Version()
	var line []byte
	fi, added, err := g.frozen.Freeze(target, "", reason, now, func(stateful.FreezeInfo) (uint64, error) {
		var seq uint64
		var err error
		line, seq, err = v.audit.appendEvent(audit.Record{
			TimeMS:        now.UnixMilli(),
			Kind:          audit.KindFreeze,
			RequestDigest: cmd.Digest[:],
			Key:           body.KeyID,
			Summary:       fmt.Sprintf("%s frozen by admin command (%s); only an admin quorum unfreezes it", what, reason),
			Decision:      "frozen",
			Rule:          refusal.RuleFrozen,
			PolicyVersion: pv,
			Approvers:     signers,
		})
		return seq, err
	})
	switch {
	case !added: // frozen since the check: no decision (so no sticky freeze) runs under guard.mu's write side, but refuse rather than answer without a record
		return nil, refuseRule(refusal.CodeBadRequest, refusal.RuleFrozen, fmt.Sprintf("freeze: %s is frozen already; nothing changed", what))
	case err != nil:
		e.log.Error("frozen by admin command; the freeze's audit record is owed until the host persists the backlog", "target", target, "admins", signers, "err", err)
		return nil, refuse(refusal.CodeUnavailable,
			"freeze: %s is frozen, in force now, but its audit record could not be appended (%v): it is written before any other event once the host persists the audit backlog, and its seq, which an unfreeze names, is then in the log", what, err)
	}
	e.log.Warn("frozen by admin command", "target", target, "admins", signers, "seq", fi.Seq)
	return adminResponse(AdminResult{Kind: string(cmd.Kind), KeyID: body.KeyID, AllKeys: body.AllKeys, Signers: signers, AuditSeq: fi.Seq}, nil, line)
}

// describeTarget names a freeze's target (a key, or stateful.AllKeys) for
// humans.
func describeTarget(target string) string {
	if target == stateful.AllKeys {
		return "every key"
	}
	return "key " + target
}
