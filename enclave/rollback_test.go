package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func asAuditError(err error, target **audit.Error) bool { return errors.As(err, target) }

// hostSim plays the host around one enclave at a time, as host/unseal.go
// and the host's audit store do: it persists every record the enclave
// hands over and acknowledges it, stores checkpoints and acknowledges
// them, and at a restart hands the next enclave a sealed seed, the last
// record of a log and a checkpoint of its choosing. A hostile host is this
// one choosing old copies.
type hostSim struct {
	t      *testing.T
	f      *sealedFixture
	admins *admins
	e      *enclave.Enclave
	fx     *fixture
	sealed []byte            // the sealed seed the host stores
	key    ed25519.PublicKey // the audit key
	log    [][]byte          // the persisted records, seq i+1 at i
	cps    map[uint64][]byte // every checkpoint stored, by generation
	cpAck  uint64            // the generation it acknowledges at its next poll
	ids    int               // request ids across runs
	signed *big.Int          // wei signed to any destination, all runs
	// noCheckpoints: do does not store the checkpoints an admin answer
	// waits for (a host that stores none, or crashes first).
	noCheckpoints bool
}

// rollbackFixture is a sealed enclave's fixture whose hot-0 may send at
// most 3 ETH a day to destB (1 ETH a transaction), with two admins (quorum
// 2) and, when maxUnacked > 0, limits.max_unacknowledged.
func rollbackFixture(t *testing.T, maxUnacked int) (*sealedFixture, *admins) {
	t.Helper()
	f := newSealedFixture(t)
	a := newAdmins(t, 2)
	withAdmins(t, f, a)
	var g map[string]any
	if err := json.Unmarshal(f.genesis, &g); err != nil {
		t.Fatal(err)
	}
	k0 := g["policy"].(map[string]any)["keys"].([]any)[0].(map[string]any)
	k0["limits"] = []map[string]any{{"chain_id": 1, "asset": "native", "destination": destB, "window": "24h", "max": ether(3).String()}}
	if maxUnacked > 0 {
		g["limits"] = map[string]any{"max_unacknowledged": maxUnacked}
	}
	f.genesis, _ = json.Marshal(g)
	return f, a
}

// newHostSim creates the seed, unseals it (the genesis record) and
// persists the log.
func newHostSim(t *testing.T, f *sealedFixture, a *admins) *hostSim {
	t.Helper()
	h := &hostSim{t: t, f: f, admins: a, cps: map[uint64][]byte{}, signed: new(big.Int)}
	e := f.startManual(t) // the hostSim is its host
	h.sealed = mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	h.e = e
	r := mustUnseal(t, e, &proto.UnsealRequest{Sealed: h.sealed})
	h.key = r.AuditKey
	h.fx = &fixture{e: e, now: f.now, hot: f.hot}
	h.persist()
	if len(h.log) != 2 {
		t.Fatalf("%d records after the first unseal, want the genesis record and its tree head", len(h.log))
	}
	return h
}

func (h *hostSim) handle(m proto.Message) proto.Message {
	return h.e.Handle(context.Background(), m)
}

// pending returns the records the enclave handed over after the log's
// end, without acknowledging them.
func (h *hostSim) pending() [][]byte {
	ar, ok := h.handle(&proto.AuditRequest{From: uint64(len(h.log)) + 1}).(*proto.AuditResponse)
	if !ok {
		h.t.Fatal("audit request refused")
	}
	return ar.Records
}

// persist appends the pending records to the log and acknowledges them,
// with the hash of the last one, as the host's audit store does.
func (h *hostSim) persist() {
	h.t.Helper()
	recs := h.pending()
	if len(recs) == 0 {
		return
	}
	h.log = append(h.log, recs...)
	last := sha256.Sum256(recs[len(recs)-1])
	if _, ok := h.handle(&proto.AuditRequest{Ack: uint64(len(h.log)), AckHash: last[:]}).(*proto.AuditResponse); !ok {
		h.t.Fatalf("the acknowledgement of records up to %d was refused", len(h.log))
	}
}

// do sends m and answers it, persisting the records meanwhile (an
// enclave that releases an answer only after its record is acknowledged
// waits for that), then persists what remains.
func (h *hostSim) do(m proto.Message) proto.Message {
	done := make(chan proto.Message, 1)
	go func() { done <- h.handle(m) }()
	for {
		select {
		case r := <-done:
			h.persist()
			return r
		case <-time.After(time.Millisecond):
			h.persist()
			if !h.noCheckpoints && enclave.CheckpointWanted(h.e) { // an admin answer waits for one
				h.poll()
			}
		}
	}
}

// pay asks hot-0 to send wei to to, and counts what is signed.
func (h *hostSim) pay(to string, wei *big.Int) proto.Message {
	h.t.Helper()
	h.ids++
	h.fx.seqIDs = h.ids
	body := h.fx.body(h.t, "hot-0", transfer(h.t, 1, to, wei), h.f.now.UnixMilli())
	r := h.do(&proto.SignRequest{Body: body, Stamp: h.stamp(body)})
	if sr, ok := r.(*proto.SignResponse); ok && sr.Status == "" && len(sr.SignedTransaction) > 0 {
		h.signed.Add(h.signed, wei)
	}
	return r
}

func (h *hostSim) stamp(body []byte) string {
	h.t.Helper()
	s, err := stamp.Create(h.f.hot, body)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// payWithheld asks for a payment whose record the host receives but never
// acknowledges (it crashes first): it returns once the record is handed
// over. The enclave must not answer: the answer waits for the
// acknowledgement, until the test ends.
func (h *hostSim) payWithheld(to string, wei *big.Int) {
	h.t.Helper()
	h.ids++
	h.fx.seqIDs = h.ids
	body := h.fx.body(h.t, "hot-0", transfer(h.t, 1, to, wei), h.f.now.UnixMilli())
	req := &proto.SignRequest{Body: body, Stamp: h.stamp(body)}
	before := len(h.pending())
	done := make(chan proto.Message, 1)
	ctx := h.t.Context() // the answer waits for an acknowledgement that never comes
	go func() { done <- h.e.Handle(ctx, req) }()
	for len(h.pending()) == before {
		select {
		case r := <-done:
			h.t.Fatalf("answered without handing over a record: %#v", r)
		case <-time.After(time.Millisecond):
		}
	}
	select {
	case r := <-done:
		h.t.Fatalf("answered before the host acknowledged the record: %#v", r)
	case <-time.After(10 * time.Millisecond):
	}
}

// poll is one checkpoint poll of host/unseal.go: it acknowledges the
// checkpoint stored last time and stores a newer one if there is one.
func (h *hostSim) poll() uint64 {
	h.t.Helper()
	cr, ok := h.handle(&proto.CheckpointRequest{Ack: h.cpAck}).(*proto.CheckpointResponse)
	if !ok {
		h.t.Fatal("checkpoint request refused")
	}
	if len(cr.Sealed) > 0 {
		h.cps[cr.Generation] = cr.Sealed
	}
	h.cpAck = cr.Generation
	return cr.Generation
}

// storeCheckpoint polls until the newest checkpoint is stored and
// acknowledged, and returns its generation.
func (h *hostSim) storeCheckpoint() uint64 {
	h.t.Helper()
	gen := h.poll()
	h.poll()
	h.persist()
	return gen
}

// restart starts a new enclave and unseals it with sealed, the last record
// of log (which becomes the host's log) and the checkpoint cp; it persists
// the boot record and what follows, and returns the boot record.
func (h *hostSim) restart(sealed []byte, log [][]byte, cp []byte) audit.Record {
	h.t.Helper()
	h.log = append([][]byte(nil), log...)
	var last []byte
	if len(log) > 0 {
		last = log[len(log)-1]
	}
	h.e = h.f.startManual(h.t)
	h.fx = &fixture{e: h.e, now: h.f.now, hot: h.f.hot}
	h.cpAck = 0 // a new enclave run; the host re-reads what it has
	r := mustUnseal(h.t, h.e, &proto.UnsealRequest{Sealed: sealed, AuditHead: last, Checkpoint: cp})
	boot, err := audit.VerifyRecord(r.AuditRecord, r.AuditKey)
	if err != nil {
		h.t.Fatal(err)
	}
	if boot.Seq != uint64(len(log))+1 {
		h.t.Fatalf("boot record %d after a log of %d records", boot.Seq, len(log))
	}
	h.persist()
	return boot
}

func (h *hostSim) record(seq uint64) audit.Record {
	h.t.Helper()
	r, err := audit.Unmarshal(h.log[seq-1])
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// verify verifies the host's log and returns the report.
func (h *hostSim) verify(opts audit.VerifyOptions) (*audit.Report, error) {
	var b bytes.Buffer
	for _, l := range h.log {
		b.Write(l)
		b.WriteByte('\n')
	}
	return audit.Verify(&b, h.key, opts)
}

// unfreeze asks the admin quorum to lift the freeze of record seq.
func (h *hostSim) unfreeze(seq uint64) proto.Message {
	return h.do(&proto.AdminRequest{Envelope: h.admins.envelope(h.t, h.f.genesis, h.f.now, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: seq}, 0, 1)})
}

// wantRollbackBoot checks a boot record that names rule (and lists
// others), and that the next record freezes every key.
func (h *hostSim) wantRollbackBoot(boot audit.Record, rule string, listed []string, evidence ...string) (freezeSeq uint64) {
	h.t.Helper()
	if boot.Kind != audit.KindBoot || boot.Decision != enclave.DecisionStartedWithRollback || boot.Rule != rule {
		h.t.Fatalf("boot record: kind %s, decision %s, rule %s; want a %s boot:\n%s", boot.Kind, boot.Decision, boot.Rule, rule, boot.Summary)
	}
	if got := audit.RollbackRules(boot); strings.Join(got, ",") != strings.Join(listed, ",") {
		h.t.Fatalf("the boot record lists %v, want %v:\n%s", got, listed, boot.Summary)
	}
	for _, ev := range evidence {
		if !strings.Contains(boot.Summary, ev) {
			h.t.Errorf("the boot record does not say %q:\n%s", ev, boot.Summary)
		}
	}
	next := boot.Seq + 1 // the first record after the boot record but tree heads
	for next <= uint64(len(h.log)) && h.record(next).Kind == audit.KindTreeHead {
		next++
	}
	if strings.Contains(boot.Summary, "freeze(s) in force from the checkpoint") && uint64(len(h.log)) < next {
		return 0 // every key was frozen already (a checkpoint of the last run): no new freeze record
	}
	fr := h.record(next)
	if fr.Kind != audit.KindFreeze || fr.Decision != "frozen" || fr.Key != "" || !strings.Contains(fr.Summary, "every key frozen after a rollback detected at start ("+strings.Join(listed, ", ")) {
		h.t.Fatalf("the record after the boot record is not the freeze of every key: %+v", fr)
	}
	return fr.Seq
}

// TestRollbackReplayedCheckpoint is the observed attack: 3 ETH a day to
// one address, and a host that replays the checkpoint from before the
// spending (with its real, newer log) to get the budget again, twice. Each
// replay is a checkpoint_rollback boot record, every key is frozen, and no
// more than the 3 ETH is signed.
func TestRollbackReplayedCheckpoint(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	old := h.cps[h.storeCheckpoint()] // generation 1: nothing spent
	for range 3 {
		wantSigned(t, h.pay(destB, ether(1)))
	}
	spent := h.storeCheckpoint() // generation 2: 3 ETH spent; acknowledged
	wantRule(t, h.pay(destB, ether(1)), refusal.RuleRollingLimit)
	if r := h.record(uint64(len(h.log))); r.Checkpoint != spent {
		t.Fatalf("the refusal after checkpoint %d was acknowledged carries checkpoint %d", spent, r.Checkpoint)
	}

	for replay := 1; replay <= 2; replay++ {
		last := h.record(uint64(len(h.log)))
		boot := h.restart(h.sealed, h.log, old)
		h.wantRollbackBoot(boot, refusal.RuleCheckpointRollback, []string{refusal.RuleCheckpointRollback},
			"says checkpoint generation 2 was acknowledged stored, but the checkpoint handed back is generation 1",
			"the host's last record "+itoa(last.Seq))
		if boot.Checkpoint != spent {
			t.Errorf("replay %d: the boot record carries checkpoint %d, want %d carried over from the log", replay, boot.Checkpoint, spent)
		}
		wantRule(t, h.pay(destB, ether(1)), refusal.RuleFrozen)
		wantRule(t, h.pay(destA, big.NewInt(1)), refusal.RuleFrozen)
	}
	if h.signed.Cmp(ether(3)) != 0 {
		t.Fatalf("%s wei signed against a limit of 3 ETH", h.signed)
	}
	rep, err := h.verify(audit.VerifyOptions{AllSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 2 || rep.Warnings[0].Kind != audit.WarnRollback || rep.Warnings[1].Kind != audit.WarnRollback {
		t.Fatalf("warnings %+v", rep.Warnings)
	}
}

// TestRollbackUnfreeze: only an admin quorum lifts the freeze of a
// rollback, naming its freeze record; then the key signs again (within
// what the restored state allows: the admins' call).
func TestRollbackUnfreeze(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	old := h.cps[h.storeCheckpoint()]
	wantSigned(t, h.pay(destB, ether(1)))
	h.storeCheckpoint()
	wantSigned(t, h.pay(destA, ether(1)))
	freezeSeq := h.wantRollbackBoot(h.restart(h.sealed, h.log, old), refusal.RuleCheckpointRollback, []string{refusal.RuleCheckpointRollback})
	wantRule(t, h.pay(destA, big.NewInt(1)), refusal.RuleFrozen)

	one := h.admins.envelope(t, f.genesis, f.now, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: freezeSeq}, 0)
	wantCode(t, h.do(&proto.AdminRequest{Envelope: one}), refusal.CodeUnauthorized, "quorum")
	wantCode(t, h.unfreeze(freezeSeq-1), refusal.CodeBadRequest, "no freeze in force")
	ar, ok := h.unfreeze(freezeSeq).(*proto.AdminResponse)
	if !ok {
		t.Fatalf("unfreeze refused")
	}
	if r, err := audit.VerifyRecord(ar.AuditRecord, h.key); err != nil || r.Decision != "unfrozen" || len(r.Approvers) != 2 {
		t.Fatalf("unfreeze record %+v, %v", r, err)
	}
	wantSigned(t, h.pay(destA, big.NewInt(1)))
	// A restart from the newest checkpoint, stored after the unfreeze, is
	// clean: the log's checkpoint generation and the checkpoint agree.
	gen := h.storeCheckpoint()
	boot := h.restart(h.sealed, h.log, h.cps[gen])
	if boot.Rule != "" || boot.Decision != "started" {
		t.Fatalf("restart after the unfreeze: %s %s\n%s", boot.Decision, boot.Rule, boot.Summary)
	}
	wantSigned(t, h.pay(destA, big.NewInt(1)))
}

// TestRollbackTruncatedLog: a host that hands back a log cut before the
// head the checkpoint says it acknowledged gets an audit_rollback boot
// record and every key frozen; whoever holds a record it dropped sees the
// fork.
func TestRollbackTruncatedLog(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	h.storeCheckpoint()
	for range 2 {
		wantSigned(t, h.pay(destB, ether(1)))
	}
	gen := h.storeCheckpoint() // acknowledged head 6 (the second payment's tree head)
	dropped := h.log[2]        // the first payment's record
	boot := h.restart(h.sealed, h.log[:2], h.cps[gen])
	h.wantRollbackBoot(boot, refusal.RuleAuditRollback, []string{refusal.RuleAuditRollback},
		"the host's log ends at seq 2", "before the acknowledged head 6:")
	wantRule(t, h.pay(destB, ether(1)), refusal.RuleFrozen)
	if h.signed.Cmp(ether(2)) != 0 {
		t.Fatalf("%s wei signed", h.signed)
	}
	// The client that was answered with record 3 checks the log against it.
	_, err := h.verify(audit.VerifyOptions{ExpectHead: &audit.Head{Seq: 3, Hash: sha256.Sum256(dropped)}})
	var ae *audit.Error
	if !asAuditError(err, &ae) || ae.Kind != audit.Forked {
		t.Fatalf("verify against the dropped record: %v", err)
	}
	// An empty log with the checkpoint is the same rollback.
	boot = h.restart(h.sealed, nil, h.cps[gen])
	if boot.Kind != audit.KindGenesis || boot.Rule != refusal.RuleAuditRollback || !strings.Contains(boot.Summary, "ends at no record (an empty log)") {
		t.Fatalf("restart with an empty log: %+v", boot)
	}
}

// TestRollbackSeedGeneration: after a re-wrap, the host hands back the
// older sealed seed (it still opens: KMS still has its data key's key).
// The boot record names seed_generation_rollback and every key is frozen;
// the next re-wrap goes past the newest generation known.
func TestRollbackSeedGeneration(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	h.storeCheckpoint()
	if b := h.record(1); !strings.Contains(b.Summary, "sealed seed of sealing generation 1 under KMS key "+testKeyARN) {
		t.Errorf("the genesis record does not name the sealing: %s", b.Summary)
	}
	oldSeed := h.sealed
	ar, res := adminResult(t, h.do(&proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindSealRotate, admin.SealRotateBody{}, 0, 1)}))
	if res.Sealing != 2 {
		t.Fatalf("re-wrap to generation %d", res.Sealing)
	}
	h.sealed = ar.Sealed
	gen := h.storeCheckpoint() // a new checkpoint: it knows of generation 2
	if gen != 2 {
		t.Fatalf("no checkpoint after the re-wrap (generation %d)", gen)
	}
	boot := h.restart(oldSeed, h.log, h.cps[gen])
	h.wantRollbackBoot(boot, refusal.RuleSeedGenerationRollback, []string{refusal.RuleSeedGenerationRollback},
		"the sealed seed handed back is of sealing generation 1 (KMS key "+testKeyARN+"), but checkpoint generation 2 knew of sealing generation 2")
	wantRule(t, h.pay(destA, big.NewInt(1)), refusal.RuleFrozen)

	// The checkpoints of this run still know of generation 2, so the next
	// start with the old seed is told again; a quorum's re-wrap makes
	// generation 3.
	gen = h.storeCheckpoint()
	boot = h.restart(oldSeed, h.log, h.cps[gen])
	h.wantRollbackBoot(boot, refusal.RuleSeedGenerationRollback, []string{refusal.RuleSeedGenerationRollback})
	_, res = adminResult(t, h.do(&proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now.Add(time.Second), admin.KindSealRotate, admin.SealRotateBody{}, 0, 1)}))
	if res.Sealing != 3 {
		t.Fatalf("a re-wrap after a seed rollback makes generation %d, want 3", res.Sealing)
	}
}

// TestRollbackSeveral: a truncated log and an older seed at once: the boot
// record names the most severe (audit_rollback) and lists both.
func TestRollbackSeveral(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	h.storeCheckpoint()
	oldSeed := h.sealed
	ar, _ := adminResult(t, h.do(&proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindSealRotate, admin.SealRotateBody{}, 0, 1)}))
	h.sealed = ar.Sealed
	wantSigned(t, h.pay(destB, ether(1)))
	gen := h.storeCheckpoint()
	boot := h.restart(oldSeed, h.log[:1], h.cps[gen])
	h.wantRollbackBoot(boot, refusal.RuleAuditRollback, []string{refusal.RuleAuditRollback, refusal.RuleSeedGenerationRollback},
		"rollback audit_rollback: the host's log ends at seq 1", "rollback seed_generation_rollback: the sealed seed handed back is of sealing generation 1")
	if ev := audit.RollbackEvidence(boot, refusal.RuleAuditRollback); strings.Contains(ev, "; ") || ev == "" {
		t.Errorf("evidence %q", ev)
	}
}

// TestRollbackMissingCheckpoint: a log that says a checkpoint was stored,
// with no checkpoint or one that does not open, is a checkpoint rollback
// (starting from nothing is replaying the empty state).
func TestRollbackMissingCheckpoint(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	gen := h.storeCheckpoint()
	wantSigned(t, h.pay(destB, ether(1)))
	for _, tc := range []struct {
		name string
		cp   []byte
		say  string
	}{
		{"none", nil, "but the host sent no checkpoint"},
		{"altered", append(bytes.Clone(h.cps[gen][:len(h.cps[gen])-1]), h.cps[gen][len(h.cps[gen])-1]^1), "but the checkpoint the host sent was refused (enclave: checkpoint: does not open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			boot := h.restart(h.sealed, h.log, tc.cp)
			h.wantRollbackBoot(boot, refusal.RuleCheckpointRollback, []string{refusal.RuleCheckpointRollback}, tc.say)
			wantRule(t, h.pay(destB, ether(1)), refusal.RuleFrozen)
		})
	}
}

// TestCrashBetweenAckedAndAppended: the host received records it never
// acknowledged (it crashed before it could); a checkpoint sealed then
// holds the acknowledged head and, beyond it, the appended one. A log that
// ends between the two is a crash, not a rollback: the enclave starts
// clean with a note, and the limit usage of the lost records stays counted
// (the safe side).
func TestCrashBetweenAckedAndAppended(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	h.storeCheckpoint()
	wantSigned(t, h.pay(destB, ether(1))) // record 3 and its tree head 4, acknowledged
	h.payWithheld(destB, ether(1))        // record 5, tree head 6
	h.payWithheld(destB, ether(1))        // record 7, tree head 8
	gen := h.poll()                       // sealed with acknowledged head 4, appended head 8; stored
	// The host wrote records 5 and 6 and crashed before acknowledging
	// anything.
	log := append(append([][]byte(nil), h.log...), h.pending()[:2]...)
	boot := h.restart(h.sealed, log, h.cps[gen])
	if boot.Rule != "" || boot.Decision != "started" || len(audit.RollbackRules(boot)) != 0 {
		t.Fatalf("a crash was taken for a rollback: %s %s\n%s", boot.Decision, boot.Rule, boot.Summary)
	}
	if !strings.Contains(boot.Summary, "the host's log ends at seq 6, after the acknowledged head 4 of checkpoint generation "+itoa(gen)+" and not past its appended head 8") {
		t.Errorf("no crash note:\n%s", boot.Summary)
	}
	for s := boot.Seq + 1; s <= uint64(len(h.log)); s++ {
		if h.record(s).Kind != audit.KindTreeHead {
			t.Errorf("records after the boot record: the enclave froze something (%d records)", len(h.log))
		}
	}
	// The 3 ETH of records 2 to 4 are still counted: nothing more to destB.
	wantRule(t, h.pay(destB, big.NewInt(1)), refusal.RuleRollingLimit)
	wantSigned(t, h.pay(destA, big.NewInt(1)))
	if rep, err := h.verify(audit.VerifyOptions{}); err != nil || len(rep.Warnings) != 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestCrashRestoreBound: the bound of docs/limits.md at its exact value.
// With limits.max_unacknowledged C = 2, M = 3 ETH and P = 1 ETH, a host
// that restores the newest checkpoint it acknowledged, withholding the
// newer ones, hides at most C transactions, and the host's last record
// says how many: the restart charges them at their worst case, so the day
// holds what was signed before the restore. The restore is not a rollback
// the enclave can tell; the boot record notes the records the restored
// state lacks and the charge. Done again from the same checkpoint, each
// restore charges them again and grants nothing (docs/limits.md).
func TestCrashRestoreBound(t *testing.T) {
	const c = 2
	f, a := rollbackFixture(t, c)
	h := newHostSim(t, f, a)
	gen := h.storeCheckpoint()
	for range c {
		wantSigned(t, h.pay(destB, ether(1)))
	}
	wantCode(t, h.pay(destB, ether(1)), refusal.CodeUnavailable, "checkpoint") // C beyond the acknowledged checkpoint
	boot := h.restart(h.sealed, h.log, h.cps[gen])
	if boot.Rule != "" || !strings.Contains(boot.Summary, "is not in the restored state") {
		t.Fatalf("restore of the newest acknowledged checkpoint: %s\n%s", boot.Rule, boot.Summary)
	}
	// The C transactions the checkpoint lacks are charged at their worst
	// case (P = M: the whole day), so nothing more is signed
	// (TestReplayBudgetHonestCrash, budget_test.go).
	h.storeCheckpoint()
	wantRule(t, h.pay(destB, ether(1)), refusal.RuleRollingLimit)
	if h.signed.Cmp(ether(c)) != 0 {
		t.Fatalf("%s wei signed in the day, want the %d ETH signed before the restore", h.signed, c)
	}

	// Across restores: a host that withholds every newer checkpoint and
	// restores the same one each time gains nothing.
	f2, a2 := rollbackFixture(t, c)
	h2 := newHostSim(t, f2, a2)
	gen = h2.storeCheckpoint()
	for restore := 0; restore <= 2; restore++ {
		if restore > 0 {
			h2.restart(h2.sealed, h2.log, h2.cps[gen])
		}
		if restore == 0 {
			for range c {
				wantSigned(t, h2.pay(destB, ether(1)))
			}
		}
		wantCode(t, h2.pay(destB, ether(1)), refusal.CodeUnavailable, "checkpoint")
	}
	if h2.signed.Cmp(ether(c)) != 0 {
		t.Fatalf("%s wei after two restores", h2.signed)
	}
}

// TestConsistentRollback: a host that rolls back the checkpoint and the
// log together (cutting the log to before the first record that names the
// newer checkpoint) is not told by the enclave: it gains up to M more, and
// leaves a fork that whoever holds a dropped record sees (docs/limits.md).
func TestConsistentRollback(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	old := h.cps[h.storeCheckpoint()] // acknowledged head 2 (the genesis record's tree head)
	var answered []byte
	for range 3 {
		answered = wantSigned(t, h.pay(destB, ether(1))).AuditRecord
	}
	h.storeCheckpoint()
	boot := h.restart(h.sealed, h.log[:2], old)
	if boot.Rule != "" || len(audit.RollbackRules(boot)) != 0 {
		t.Fatalf("a consistent rollback was told: %s\n%s", boot.Rule, boot.Summary)
	}
	for range 3 {
		wantSigned(t, h.pay(destB, ether(1)))
	}
	wantRule(t, h.pay(destB, ether(1)), refusal.RuleRollingLimit)
	if h.signed.Cmp(ether(6)) != 0 { // M + M
		t.Fatalf("%s wei signed", h.signed)
	}
	// The client answered with the last record of the dropped branch sees
	// the fork.
	rec, err := audit.Unmarshal(answered)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.verify(audit.VerifyOptions{ExpectHead: &audit.Head{Seq: rec.Seq, Hash: sha256.Sum256(answered)}})
	var ae *audit.Error
	if !asAuditError(err, &ae) || ae.Kind != audit.Forked {
		t.Fatalf("verify against the answered record: %v", err)
	}
}

// TestRecordsCarryTheAcknowledgedCheckpoint: records name the newest
// checkpoint the host acknowledged storing, from the acknowledgement on;
// a restart carries it over.
func TestRecordsCarryTheAcknowledgedCheckpoint(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	if r := h.record(1); r.Checkpoint != 0 {
		t.Fatalf("genesis record carries checkpoint %d", r.Checkpoint)
	}
	gen := h.poll() // stored, not yet acknowledged
	wantSigned(t, h.pay(destA, big.NewInt(1)))
	if r := h.record(3); r.Checkpoint != 0 {
		t.Fatalf("a record before the acknowledgement carries checkpoint %d", r.Checkpoint)
	}
	h.poll() // acknowledged
	wantSigned(t, h.pay(destA, big.NewInt(1)))
	if r := h.record(5); r.Checkpoint != gen {
		t.Fatalf("a record after the acknowledgement carries checkpoint %d, want %d", r.Checkpoint, gen)
	}
	// An acknowledgement of a generation never handed out changes nothing.
	h.handle(&proto.CheckpointRequest{Ack: gen + 5})
	wantSigned(t, h.pay(destA, big.NewInt(1)))
	if r := h.record(7); r.Checkpoint != gen {
		t.Fatalf("checkpoint %d after a bogus acknowledgement", r.Checkpoint)
	}
	newest := h.storeCheckpoint()
	boot := h.restart(h.sealed, h.log, h.cps[newest])
	if boot.Checkpoint != newest || boot.Rule != "" {
		t.Fatalf("boot record: checkpoint %d, rule %q", boot.Checkpoint, boot.Rule)
	}
	// Generations go on after the restored one.
	if g := h.poll(); g != newest+1 {
		t.Fatalf("first checkpoint after the restart: generation %d, want %d", g, newest+1)
	}
}
