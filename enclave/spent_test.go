package enclave_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// Single use of admin commands: see enclave/spent.go.

// wantAdminRefusal checks a refusal with code, rule and a message holding
// substr, and returns it.
func wantAdminRefusal(t *testing.T, m proto.Message, code, rule, substr string) *proto.Error {
	t.Helper()
	pe, ok := m.(*proto.Error)
	if !ok || pe.Code != code || pe.Rule != rule || !strings.Contains(pe.Message, substr) || len(pe.AuditRecord) != 0 {
		t.Fatalf("answer %#v, want %s (rule %s) containing %q, without a record", m, code, rule, substr)
	}
	return pe
}

// wantReplayed checks that env, sent again, is refused as replayed and
// changes nothing (no record, the same keys and policy), naming the audit
// record that carried it out.
func wantReplayed(t *testing.T, e *enclave.Enclave, env []byte, seq uint64) *proto.Error {
	t.Helper()
	waitAcked(t, e)
	before := stateOf(t, e)
	pe := wantAdminRefusal(t, e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}), refusal.CodeBadRequest, refusal.RuleReplayedCommand, "carried out already")
	if !strings.Contains(pe.Message, "by audit record "+itoa(seq)+" ") {
		t.Errorf("the refusal does not name audit record %d: %s", seq, pe.Message)
	}
	waitAcked(t, e)
	wantUnchanged(t, "a replayed admin command", before, stateOf(t, e))
	return pe
}

// adminSeq returns the audit seq of a carried-out command's answer.
func adminSeq(t *testing.T, m proto.Message) uint64 {
	t.Helper()
	ar, ok := m.(*proto.AdminResponse)
	if !ok {
		t.Fatalf("admin command answered %#v", m)
	}
	r, err := audit.Unmarshal(ar.AuditRecord)
	if err != nil {
		t.Fatal(err)
	}
	return r.Seq
}

// policyDoc returns the policy in force at e as a document.
func policyDoc(t *testing.T, e *enclave.Enclave) policy.Document {
	t.Helper()
	pr, ok := e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	if !ok {
		t.Fatal("policy request refused")
	}
	var d policy.Document
	if err := json.Unmarshal(pr.Document, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// changeBody is the policy_change body of doc.
func changeBody(t *testing.T, doc policy.Document) admin.PolicyChangeBody {
	t.Helper()
	pol, err := policy.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	return admin.PolicyChangeBody{Version: pol.Version(), PolicyHash: hex.EncodeToString(hashOf(pol)), Document: pol.Canonical()}
}

// cancelBody is the policy_cancel body naming doc.
func cancelBody(t *testing.T, doc policy.Document) admin.PolicyCancelBody {
	t.Helper()
	pol, err := policy.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	return admin.PolicyCancelBody{Version: pol.Version(), PolicyHash: hex.EncodeToString(hashOf(pol))}
}

// TestAdminReplayEachKind: every kind of admin command, carried out once,
// is refused when its envelope comes again (rule replayed_command, naming
// the record that carried it out), and the replay changes nothing: no
// record, no key, no policy, no new sealed seed. A command refused for
// another reason is not spent: sent again once the cause is gone, it is
// carried out.
func TestAdminReplayEachKind(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 2)
	withAdmins(t, f, a)
	e, _ := f.startUnsealed(t)
	env := func(kind admin.Kind, body any, by ...int) []byte {
		return a.envelope(t, f.genesis, f.now, kind, body, by...)
	}
	do := func(b []byte) proto.Message { return call(t, e, &proto.AdminRequest{Envelope: b}) }

	create := env(admin.KindKeyCreate, admin.KeyCreateBody{KeyID: "hot-7", Path: "m/44'/60'/0'/0/7"}, 0, 1)
	// Signed by one admin: refused (quorum), not spent.
	wantCode(t, do(env(admin.KindKeyCreate, admin.KeyCreateBody{KeyID: "hot-7", Path: "m/44'/60'/0'/0/7"}, 0)), refusal.CodeUnauthorized, "quorum")
	wantReplayed(t, e, create, adminSeq(t, do(create)))

	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	imp := env(admin.KindKeyImport, admin.KeyImportBody{KeyID: "legacy-1", EncryptedKey: hex.EncodeToString(f.kms.encrypt(t, testKeyARN, priv.Serialize(), enclave.ImportContext("legacy-1")))}, 0, 1)
	wantReplayed(t, e, imp, adminSeq(t, do(imp)))

	rotate := env(admin.KindSealRotate, admin.SealRotateBody{}, 0, 1)
	ar, res := adminResult(t, do(rotate))
	if res.Sealing != 2 || len(ar.Sealed) == 0 {
		t.Fatalf("re-wrap %+v", res)
	}
	wantReplayed(t, e, rotate, res.AuditSeq)
	// Signed in another order, or by another quorum, it is the same
	// command (the admins sign its digest).
	wantAdminRefusal(t, do(env(admin.KindSealRotate, admin.SealRotateBody{}, 1, 0)), refusal.CodeBadRequest, refusal.RuleReplayedCommand, "seal_rotate")
	// A new command re-wraps again, past the generation replays did not
	// take.
	if _, res := adminResult(t, do(a.envelope(t, f.genesis, f.now.Add(time.Second), admin.KindSealRotate, admin.SealRotateBody{}, 0, 1))); res.Sealing != 3 {
		t.Fatalf("the next re-wrap is sealing generation %d, want 3", res.Sealing)
	}

	enclave.FreezeKey(e, "hot-0", "a test")
	unfreeze := env(admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: latestFreeze(t, e)}, 0, 1)
	wantReplayed(t, e, unfreeze, adminSeq(t, do(unfreeze)))

	// Policy: a tightening applied at once, a loosening scheduled, its
	// cancel.
	doc := policyDoc(t, e)
	tighten := withDest(doc, doc.Version+1, destA)
	apply := env(admin.KindPolicyChange, changeBody(t, tighten), 0, 1)
	_, rec := policyResult(t, do(apply))
	if rec.Decision != "applied" {
		t.Fatalf("tightening: %+v", rec)
	}
	wantReplayed(t, e, apply, rec.Seq)
	loosen := withDest(doc, doc.Version+2, destA, destB, destC)
	schedule := env(admin.KindPolicyChange, changeBody(t, loosen), 0, 1)
	_, rec = policyResult(t, do(schedule))
	if rec.Decision != "scheduled" {
		t.Fatalf("loosening: %+v", rec)
	}
	scheduledAt := rec.Seq
	wantReplayed(t, e, schedule, scheduledAt)
	cancel := env(admin.KindPolicyCancel, cancelBody(t, loosen), 1)
	_, rec = policyResult(t, do(cancel))
	if rec.Decision != "cancelled" {
		t.Fatalf("cancel: %+v", rec)
	}
	wantReplayed(t, e, cancel, rec.Seq)
	// The cancelled change's envelope: refused, and the refusal says it
	// was cancelled.
	pe := wantReplayed(t, e, schedule, scheduledAt)
	if !strings.Contains(pe.Message, "cancelled by audit record "+itoa(rec.Seq)) {
		t.Errorf("the replay of a cancelled change: %s", pe.Message)
	}
	if n := enclave.SpentCommands(e); n != 8 {
		t.Errorf("%d commands remembered, want 8", n)
	}
}

// TestAdminRefusedNotSpent: a command refused because its record could not
// be appended (503) changed nothing and is not spent: once the host makes
// room, the same envelope is carried out.
func TestAdminRefusedNotSpent(t *testing.T) {
	f := newGov(t)
	tighten := withDest(f.doc, 2, destA)
	env := f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange, changeBody(t, tighten), 0, 1)
	f.host.pause()
	enclave.FillAuditLog(f.e)
	wantCode(t, f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}), refusal.CodeUnavailable, "")
	if n := enclave.SpentCommands(f.e); n != 0 {
		t.Fatalf("a refused command is remembered (%d)", n)
	}
	f.host.resume()
	waitAcked(t, f.e)
	_, rec := policyResult(t, f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}))
	if rec.Decision != "applied" || rec.PolicyVersion != 2 {
		t.Fatalf("the command sent again: %+v", rec)
	}
	wantReplayed(t, f.e, env, rec.Seq)
}

// TestAdminCancelledLooseningStaysCancelled: the attack. A
// quorum-signed loosening (a new destination), cancelled by one admin, is
// sent again byte for byte: refused, and never in force after the time
// lock. The admins' new envelope for the same version is refused too (the
// version floor): it comes back only as a new, higher version, which is
// scheduled and comes into force after its own time lock.
func TestAdminCancelledLooseningStaysCancelled(t *testing.T) {
	f := newGov(t)
	addC := withDest(f.doc, 2, destA, destB, destC)
	env := f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange, changeBody(t, addC), 0, 1)
	send := func(b []byte) proto.Message {
		return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: b})
	}
	_, rec := policyResult(t, send(env))
	if rec.Decision != "scheduled" {
		t.Fatalf("%+v", rec)
	}
	policyResult(t, f.cancel(t, addC, 2))
	wantReplayed(t, f.e, env, rec.Seq)
	f.setNow(f.now.Add(25 * time.Hour))
	wantRule(t, f.pay(t, destC, big.NewInt(1)), refusal.RuleDestinations)
	if pr := f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse); pr.Version != 1 || len(pr.Pending) != 0 {
		t.Fatalf("policy version %d with %d pending after the cancel and a replay", pr.Version, len(pr.Pending))
	}
	// Re-signed (a new command: new validity), same version: the floor.
	again := f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange, changeBody(t, addC), 0, 1)
	wantCode(t, send(again), refusal.CodeBadRequest, "not above version 2")
	// A tightening below the floor is refused too, above it applied.
	wantCode(t, f.change(t, withDest(f.doc, 2, destA), 0, 1), refusal.CodeBadRequest, "cancelled")
	addC3 := withDest(f.doc, 3, destA, destB, destC)
	if _, rec := policyResult(t, f.change(t, addC3, 0, 1)); rec.Decision != "scheduled" {
		t.Fatalf("version 3: %+v", rec)
	}
	f.setNow(f.now.Add(24*time.Hour + time.Second))
	wantSigned(t, f.pay(t, destC, big.NewInt(1)))
}

// TestAdminConcurrentDuplicates: copies of one envelope sent at once are
// carried out exactly once; the others are refused as replayed.
func TestAdminConcurrentDuplicates(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 2)
	withAdmins(t, f, a)
	e, _ := f.startUnsealed(t)
	for _, env := range [][]byte{
		a.envelope(t, f.genesis, f.now, admin.KindSealRotate, admin.SealRotateBody{}, 0, 1),
		a.envelope(t, f.genesis, f.now, admin.KindKeyCreate, admin.KeyCreateBody{KeyID: "hot-7", Path: "m/44'/60'/0'/0/7"}, 0, 1),
	} {
		const copies = 8
		answers := make(chan proto.Message, copies)
		var wg sync.WaitGroup
		for range copies {
			wg.Go(func() { answers <- e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}) })
		}
		wg.Wait()
		close(answers)
		done := 0
		for m := range answers {
			if _, ok := m.(*proto.AdminResponse); ok {
				done++
				continue
			}
			wantAdminRefusal(t, m, refusal.CodeBadRequest, refusal.RuleReplayedCommand, "carried out already")
		}
		if done != 1 {
			t.Fatalf("%d of %d copies carried out, want 1", done, copies)
		}
	}
	if ks := keysOf(t, e); len(ks) != 3 {
		t.Errorf("keys %+v", ks)
	}
}

// TestAdminSpentExpiryAndBound: a command is remembered until its
// not_after (then Verify refuses it as expired anyway). At the bound, new
// commands are refused (rule command_memory_full, 503) and change
// nothing, except a policy_cancel, whose replay finds nothing to cancel,
// and a freeze, whose replay finds the key frozen already;
// once the oldest expire, commands are accepted again.
func TestAdminSpentExpiryAndBound(t *testing.T) {
	f := newGov(t)
	enclave.SetMaxSpentCommands(f.e, 2)
	tighten := f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange, changeBody(t, withDest(f.doc, 2, destA, destB)), 0, 1)
	send := func(b []byte) proto.Message {
		return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: b})
	}
	policyResult(t, send(tighten))
	addC := withDest(f.doc, 3, destA, destB, destC)
	policyResult(t, f.change(t, addC, 0, 1))
	head := auditHead(t, f.e)
	wantAdminRefusal(t, f.change(t, withDest(f.doc, 4, destA), 0, 1), refusal.CodeUnavailable, refusal.RuleCommandMemoryFull, "remembers 2 admin commands")
	if h := auditHead(t, f.e); h != head {
		t.Fatalf("a refusal at the bound was recorded (head %d, was %d)", h, head)
	}
	// A cancel is carried out even at the bound: not remembered, and its
	// replay finds no change to cancel.
	cancel := f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyCancel, cancelBody(t, addC), 1)
	policyResult(t, send(cancel))
	wantCode(t, send(cancel), refusal.CodeBadRequest, "no pending policy change")
	// So is a freeze, so that the emergency stop always works: not
	// remembered, its replay while it is in force finds the key frozen
	// already.
	freeze := f.admins.envelope(t, f.genesis, f.now, admin.KindFreeze, admin.FreezeBody{KeyID: "hot-0", Reason: "at the bound"}, 2)
	adminResult(t, send(freeze))
	wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	wantAdminRefusal(t, send(freeze), refusal.CodeBadRequest, refusal.RuleFrozen, "frozen already")
	if n := enclave.SpentCommands(f.e); n != 2 {
		t.Fatalf("%d commands remembered at a bound of 2", n)
	}

	// The envelopes are valid from a minute ago until an hour from now.
	f.setNow(f.now.Add(time.Hour - time.Millisecond))
	wantAdminRefusal(t, send(tighten), refusal.CodeBadRequest, refusal.RuleReplayedCommand, "")
	f.setNow(f.now.Add(time.Millisecond))
	if n := enclave.SpentCommands(f.e); n != 0 {
		t.Fatalf("%d commands remembered after their validity", n)
	}
	wantCode(t, send(tighten), refusal.CodeUnauthorized, "expired")
	if _, rec := policyResult(t, f.change(t, withDest(f.doc, 4, destA), 0, 1)); rec.Decision != "applied" {
		t.Fatalf("after expiry: %+v", rec)
	}
}

// TestAdminReplayAfterRestart: the commands carried out travel in the
// sealed checkpoint, which the host stored before each answer left: after
// a restart from the newest checkpoint it stored, each is refused as
// replayed, a cancelled version stays below the floor, and a higher one is
// accepted.
func TestAdminReplayAfterRestart(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	h := newHostSim(t, f, a)
	env := func(kind admin.Kind, body any, by ...int) []byte {
		return a.envelope(t, f.genesis, f.now, kind, body, by...)
	}
	doc := policyDoc(t, h.e)
	addC := withDest(doc, doc.Version+1, destA, destB, destC)
	cmds := [][]byte{
		env(admin.KindKeyCreate, admin.KeyCreateBody{KeyID: "hot-7", Path: "m/44'/60'/0'/0/7"}, 0, 1),
		env(admin.KindPolicyChange, changeBody(t, addC), 0, 1),
		env(admin.KindPolicyCancel, cancelBody(t, addC), 1),
		env(admin.KindSealRotate, admin.SealRotateBody{}, 0, 1),
	}
	var seqs []uint64
	for _, c := range cmds {
		m := h.do(&proto.AdminRequest{Envelope: c})
		seqs = append(seqs, adminSeq(t, m))
		if ar := m.(*proto.AdminResponse); len(ar.Sealed) > 0 {
			h.sealed = ar.Sealed
		}
	}
	// No checkpoint poll after the last answer: the one stored before it
	// left holds every command.
	boot := h.restart(h.sealed, h.log, h.cps[h.cpAck])
	if boot.Rule != "" {
		t.Fatalf("restart: %+v", boot)
	}
	if n := enclave.SpentCommands(h.e); n != len(cmds) {
		t.Fatalf("%d commands remembered after the restart, want %d", n, len(cmds))
	}
	for i, c := range cmds {
		h.persist()
		wantReplayed(t, h.e, c, seqs[i])
	}
	wantCode(t, h.do(&proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now.Add(time.Second), admin.KindPolicyChange, changeBody(t, addC), 0, 1)}), refusal.CodeBadRequest, "not above version")
	addC2 := withDest(doc, doc.Version+2, destA, destB, destC)
	if _, rec := policyResult(t, h.do(&proto.AdminRequest{Envelope: env(admin.KindPolicyChange, changeBody(t, addC2), 0, 1)})); rec.Decision != "scheduled" {
		t.Fatalf("a higher version: %+v", rec)
	}
	if ks := keysOf(t, h.e); len(ks) != 3 {
		t.Errorf("keys after the restart %+v", ks)
	}
}

// TestAdminAnswerWaitsForCheckpoint: a command's answer leaves only once
// the host has stored a checkpoint that holds it. A host that stores none
// gets 503 (rule checkpoint), saying the command was carried out; the
// enclave refuses its replay meanwhile. A restart from the older checkpoint
// has forgotten the command and its effect alike: sent again, it is
// carried out, and nothing is lost.
func TestAdminAnswerWaitsForCheckpoint(t *testing.T) {
	f, a := rollbackFixture(t, 0)
	f.ackTimeout = 300 * time.Millisecond
	h := newHostSim(t, f, a)
	gen := h.storeCheckpoint()
	create := a.envelope(t, f.genesis, f.now, admin.KindKeyCreate, admin.KeyCreateBody{KeyID: "hot-7", Path: "m/44'/60'/0'/0/7"}, 0, 1)

	h.noCheckpoints = true
	wantAdminRefusal(t, h.do(&proto.AdminRequest{Envelope: create}), refusal.CodeUnavailable, refusal.RuleCheckpoint, "was carried out and recorded")
	if ks := keysOf(t, h.e); len(ks) != 3 {
		t.Fatalf("keys %+v", ks)
	}
	h.persist()
	wantAdminRefusal(t, h.handle(&proto.AdminRequest{Envelope: create}), refusal.CodeBadRequest, refusal.RuleReplayedCommand, "")

	// The host restarts the enclave with the checkpoint it has.
	if boot := h.restart(h.sealed, h.log, h.cps[gen]); boot.Rule != "" {
		t.Fatalf("restart: %+v", boot)
	}
	if ks := keysOf(t, h.e); len(ks) != 2 {
		t.Fatalf("keys after the restart %+v", ks)
	}
	h.noCheckpoints = false
	_, res := adminResult(t, h.do(&proto.AdminRequest{Envelope: create}))
	if res.KeyID != "hot-7" {
		t.Fatalf("sent again: %+v", res)
	}
	boot := h.restart(h.sealed, h.log, h.cps[h.cpAck])
	if boot.Rule != "" {
		t.Fatalf("restart: %+v", boot)
	}
	h.persist()
	wantReplayed(t, h.e, create, res.AuditSeq)
}
