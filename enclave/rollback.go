package enclave

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// Rollback detection at start.
//
// The host keeps three things for the enclave: the sealed seed, the sealed
// checkpoint and the audit log. It may hand back older copies of any of
// them. Each carries something about the others, so that an older copy of
// one is told by the newer copy of another:
//
//   - every audit record carries the generation of the newest checkpoint
//     the host had acknowledged storing (audit.Record.Checkpoint): a
//     checkpoint older than the host's last record says was stored is a
//     checkpoint rollback ([refusal.RuleCheckpointRollback]);
//   - the checkpoint carries the audit head the host had acknowledged
//     persisting: a log that ends before it, or holds another record
//     there, is an audit rollback ([refusal.RuleAuditRollback]);
//   - the checkpoint carries the newest sealing generation of the seed: an
//     older sealed seed is a seed generation rollback
//     ([refusal.RuleSeedGenerationRollback]).
//
// A detected rollback is a boot record naming the most severe rule (its
// summary lists them all, with the evidence), a log warning, and a freeze
// of every key that only an admin quorum lifts: it grants nothing. A host
// log that ends between the checkpoint's acknowledged and appended heads is
// not a rollback: the last run's records that the host never acknowledged
// were lost in a crash, and no answer was released for them; the boot
// record notes it. A host that rolls back the checkpoint and the log
// together (truncating the log to a record that names the older
// checkpoint) is not detected here: docs/limits.md bounds what that gains.

// DecisionStartedWithRollback is the decision of a boot record that names
// a rollback (its rule is one of audit.RollbackRuleNames).
const DecisionStartedWithRollback = "started_with_rollback"

// rollback is one rollback detected at start: its rule and the evidence.
type rollback struct {
	rule     string
	evidence string
}

// startInputs is what the host handed over at unseal, as start read it.
type startInputs struct {
	// hostRec is the host's last audit record when it is this enclave's
	// (nil otherwise), hostHead its head (zero for none), and hostSent
	// whether the host sent a record at all.
	hostRec  *audit.Record
	hostHead audit.Head
	hostSent bool
	// cp is the checkpoint, nil when none was sent or it was refused
	// (cpRefused then says why).
	cp        *checkpoint
	cpRefused string
	// sealGen and sealKeyID are the sealed seed's.
	sealGen   uint32
	sealKeyID string
}

// detectRollbacks compares the host's last record, the checkpoint and the
// seed's generation. It returns the rollbacks, the most severe first, and
// notes for the boot record: a crash that lost unacknowledged records, a
// log that went on past the checkpoint.
func detectRollbacks(in startInputs) ([]rollback, []string) {
	var found []rollback
	cp := in.cp
	hostDesc := "no record of this enclave's"
	switch {
	case in.hostRec != nil:
		hostDesc = fmt.Sprintf("seq %d (hash %x)", in.hostHead.Seq, in.hostHead.Hash)
	case !in.hostSent:
		hostDesc = "no record (an empty log)"
	}

	// audit_rollback: the log lost records the host acknowledged.
	if cp != nil && cp.AuditSeq > 0 {
		switch {
		case in.hostHead.Seq < cp.AuditSeq:
			found = append(found, rollback{refusal.RuleAuditRollback, fmt.Sprintf(
				"the host's log ends at %s, before the acknowledged head %d:%x of checkpoint generation %d: records the host acknowledged persisting are gone from it, and the records after seq %d fork from them",
				hostDesc, cp.AuditSeq, cp.AuditHash, cp.Generation, in.hostHead.Seq)})
		case in.hostHead.Seq == cp.AuditSeq && in.hostHead.Hash != cp.AuditHash:
			found = append(found, rollback{refusal.RuleAuditRollback, fmt.Sprintf(
				"the host's record %d has hash %x, but checkpoint generation %d acknowledged record %d with hash %x: the log was forked or altered",
				in.hostHead.Seq, in.hostHead.Hash, cp.Generation, cp.AuditSeq, cp.AuditHash)})
		}
	}

	// checkpoint_rollback: the checkpoint is older than the log says was
	// stored.
	if r := in.hostRec; r != nil && r.Checkpoint > 0 {
		said := fmt.Sprintf("the host's last record %d (hash %x) says checkpoint generation %d was acknowledged stored", in.hostHead.Seq, in.hostHead.Hash, r.Checkpoint)
		switch {
		case cp == nil && in.cpRefused != "":
			found = append(found, rollback{refusal.RuleCheckpointRollback, fmt.Sprintf("%s, but the checkpoint the host sent was refused (%s)", said, in.cpRefused)})
		case cp == nil:
			found = append(found, rollback{refusal.RuleCheckpointRollback, said + ", but the host sent no checkpoint"})
		case cp.Generation < r.Checkpoint:
			found = append(found, rollback{refusal.RuleCheckpointRollback, fmt.Sprintf(
				"%s, but the checkpoint handed back is generation %d (acknowledged head %d, appended head %d): its limit usage, freezes, keys and policy are older",
				said, cp.Generation, cp.AuditSeq, cp.AppendedSeq)})
		}
	}

	// seed_generation_rollback: a re-wrap was undone.
	if cp != nil && in.sealGen < cp.SealGen {
		found = append(found, rollback{refusal.RuleSeedGenerationRollback, fmt.Sprintf(
			"the sealed seed handed back is of sealing generation %d (KMS key %s), but checkpoint generation %d knew of sealing generation %d: a re-wrap was undone",
			in.sealGen, in.sealKeyID, cp.Generation, cp.SealGen)})
	}
	for i := range found {
		found[i].evidence = strings.ReplaceAll(found[i].evidence, "; ", ", ") // "; " separates the summary's notes
	}

	// A crash: the host's log ends after the acknowledged head and not past
	// the appended one (unless it holds exactly the appended record).
	var notes []string
	if cp != nil && in.hostRec != nil && in.hostHead.Seq > cp.AuditSeq && in.hostHead.Seq <= cp.AppendedSeq &&
		(in.hostHead.Seq < cp.AppendedSeq || in.hostHead.Hash != cp.AppendedHash) {
		notes = append(notes, fmt.Sprintf("the host's log ends at seq %d, after the acknowledged head %d of checkpoint generation %d and not past its appended head %d: "+
			"records appended after seq %d that the host never acknowledged were lost (a crash: no answer was released for them), not a rollback",
			in.hostHead.Seq, cp.AuditSeq, cp.Generation, cp.AppendedSeq, cp.AuditSeq))
	}
	// The log went on past the checkpoint (no newer one was stored): what
	// those records changed is not in the restored state. After a crash
	// that is up to a second of changes; docs/limits.md bounds what a host
	// that withholds newer checkpoints gains by it at each restart.
	if cp != nil && in.hostRec != nil && len(found) == 0 && in.hostHead.Seq > cp.AppendedSeq {
		notes = append(notes, fmt.Sprintf("the restored checkpoint generation %d was sealed at record %d and the host's log goes on to record %d: "+
			"what records %d to %d changed (limit usage, freezes, keys, policy) is not in the restored state",
			cp.Generation, cp.AppendedSeq, in.hostHead.Seq, cp.AppendedSeq+1, in.hostHead.Seq))
	}
	return found, notes
}

// noteCheckpoint records that the host acknowledged storing checkpoint
// gen: records appended from now on carry it. It never goes down.
func (a *auditLog) noteCheckpoint(gen uint64) {
	for {
		cur := a.checkpoint.Load()
		if gen <= cur || a.checkpoint.CompareAndSwap(cur, gen) {
			return
		}
	}
}

// freezeForRollbacks freezes every key after rollbacks detected at start,
// recorded, at now, after the boot record that names them.
func (e *Enclave) freezeForRollbacks(al *auditLog, found []rollback, now time.Time) {
	rules := make([]string, len(found))
	evidence := make([]string, len(found))
	for i, r := range found {
		rules[i], evidence[i] = r.rule, r.evidence
	}
	boot := al.head().Seq
	e.guard.freeze(al, e.guard.inForce(), stateful.AllKeys, "", fmt.Sprintf("a rollback detected at start (%s, boot record %d)", strings.Join(rules, ", "), boot), now)
	e.log.Warn("rollback detected at start: every key is frozen until an admin quorum unfreezes it",
		"rules", rules, "evidence", evidence, "boot_seq", boot)
}

// chargeUnseen charges the restored limits with the transactions the host's
// last record says were reserved after the checkpoint's snapshot, at their
// worst case (stateful.Tracker.ChargeUnseen), and returns the boot record's
// note ("" when nothing is charged).
//
// Without it, a host that stores checkpoint G and then never lets a newer
// one be acknowledged could restart the enclave with G and its whole log
// again and again: every record names G, so nothing is detected, and each
// restart would grant again what the last run spent beyond G. With it, the
// spending after G stays counted across any number of such restarts: the
// charge is in the new run's records (their unacknowledged count starts
// at n) until a checkpoint holding it is acknowledged.
//
// Nothing is charged when a rollback was detected (every key is frozen),
// when the host's record is not this enclave's, or when the log ends at or
// before the checkpoint's appended head: every transaction of those
// records has its reservation in the checkpoint's snapshot. A last record
// that names an older checkpoint than cp counts since that older one's
// snapshot, which is more than since cp's: charging it errs on the safe
// side.
func (e *Enclave) chargeUnseen(cp *checkpoint, hostRec *audit.Record, head audit.Head, found []rollback) string {
	if len(found) > 0 || hostRec == nil || head.Seq <= cp.AppendedSeq || hostRec.Unacknowledged == 0 || hostRec.Checkpoint > cp.Generation {
		return ""
	}
	n := hostRec.Unacknowledged
	rs := e.guard.inForce()
	charged := rs.tracker.ChargeUnseen(n, perTransactionBound(rs.pol), time.UnixMilli(cp.TimeMS))
	var parts []string
	for _, c := range charged {
		parts = append(parts, fmt.Sprintf("%s %s", c.Rule, c.Amount))
	}
	what := "no limit applies"
	if len(parts) > 0 {
		what = strings.Join(parts, ", ")
	}
	e.log.Warn("transactions after the restored checkpoint are charged at their worst case",
		"checkpoint", cp.Generation, "transactions", n, "record", head.Seq)
	return fmt.Sprintf("the host's record %d says %d transaction(s) were reserved after the snapshot of checkpoint generation %d, which the restored limit usage does not hold: "+
		"charged at their worst case from the checkpoint's time (%s), and counted beyond the acknowledged checkpoint until a newer one is stored",
		head.Seq, n, cp.Generation, what)
}

// perTransactionBound returns the per-transaction bound of ChargeUnseen:
// the most one transaction can add to a rolling limit of key on chain in
// asset, or nil for none but the limit's max.
//
// It is nil everywhere: the policy's per-transaction caps do not bound a
// transaction (a Safe's MultiSend makes up to calldata.MaxMultiSendCalls
// movements, each up to a cap; generic calls have caps of their own), and
// a bound that is not sound would let a replay through. So each unseen
// transaction is charged a limit's whole max: a restore that hides any
// transaction fills each rolling limit for one window (fail closed).
func perTransactionBound(*policy.Policy) func(key string, chain uint64, asset ethtx.Address) *big.Int {
	return nil
}
