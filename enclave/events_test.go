package enclave_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// Event records: every state change has its record, or does not happen
// (auditevent.go).

// newStatefulAdmins is newStatefulTB with two admins (quorum 2) in the
// genesis configuration, and no host: nobody acknowledges the enclave's
// records until the test does (ackOne, ackAll, answered) or starts an
// ackHost (startAcks). Answers wait for their acknowledgement for up to a
// minute.
func newStatefulAdmins(t *testing.T, edit func(*policy.KeyRule), maxUnacked int) (*statefulFixture, *admins) {
	t.Helper()
	a := newAdmins(t, 2)
	f := newStatefulTB(t, edit, maxUnacked)
	var g map[string]any
	if err := json.Unmarshal(f.genesis, &g); err != nil {
		t.Fatal(err)
	}
	g["admins"] = a.config(2)
	f.genesis, _ = json.Marshal(g)
	e, err := enclave.New(enclave.Config{Genesis: f.genesis, Now: f.clockNow, MaxUnackedAudit: maxUnacked, AuditAckTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.host.stop() // newStatefulTB's host, of the enclave replaced here
	f.e, f.host = e, nil
	return f, a
}

// auditHead is the enclave's audit head seq.
func auditHead(t *testing.T, e *enclave.Enclave) uint64 {
	t.Helper()
	return e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
}

// ackAll acknowledges every record appended so far with the last one's
// hash, as a host that persisted them does, and returns the head it
// acknowledged. Only for an enclave that no ackHost serves: records
// acknowledged before the ackHost fetched them would be missing from its
// log (with an ackHost, waitAcked).
func ackAll(t *testing.T, e *enclave.Enclave) uint64 {
	t.Helper()
	st := fetch(t, e, 0)
	if st.Acked >= st.HeadSeq {
		return st.HeadSeq
	}
	// The fetch closes the open batch: the records end with its tree head.
	recs := fetch(t, e, st.HeadSeq).Records
	if len(recs) == 0 {
		t.Fatalf("record %d is neither acknowledged nor handed over", st.HeadSeq)
	}
	last := recs[len(recs)-1]
	if m, ok := ack(t, e, last).(*proto.AuditResponse); !ok {
		t.Fatalf("the acknowledgement of record %d was refused: %#v", st.HeadSeq, m)
	}
	r, _ := audit.Unmarshal(last)
	return r.Seq
}

// waitAcked waits until e's host (an ackHost) has acknowledged every
// record appended so far: the boot record of an unseal, whose answer does
// not wait for it, before a checkpoint that should hold it.
func waitAcked(t *testing.T, e *enclave.Enclave) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st := fetch(t, e, 0); st.Acked < st.HeadSeq; st = fetch(t, e, 0) {
		if time.Now().After(deadline) {
			t.Fatalf("the host did not acknowledge records %d to %d", st.Acked+1, st.HeadSeq)
		}
		time.Sleep(time.Millisecond)
	}
}

// ackOne acknowledges the oldest record not yet acknowledged, with its
// hash: a host that makes room for one record.
func ackOne(t *testing.T, e *enclave.Enclave) {
	t.Helper()
	recs := fetch(t, e, 1).Records
	if len(recs) == 0 {
		t.Fatal("no record waits for an acknowledgement")
	}
	if m, ok := ack(t, e, recs[0]).(*proto.AuditResponse); !ok {
		t.Fatalf("the acknowledgement was refused: %#v", m)
	}
}

// answered waits for the answer of a request sent with sendAsync, playing
// the host meanwhile: it acknowledges every record handed over, with its
// hash, until the answer comes.
func answered(t *testing.T, e *enclave.Enclave, ch <-chan proto.Message) proto.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case m := <-ch:
			return m
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer although every record is acknowledged")
		}
		ackAll(t, e)
	}
}

// persistedFrom returns the records from seq from on that e's ackHost
// persisted (once it caught up with e's head), verified.
func persistedFrom(t *testing.T, e *enclave.Enclave, from uint64) []audit.Record {
	t.Helper()
	key := fetch(t, e, 0).Key
	var out []audit.Record
	for _, r := range checkedRecords(t, recordsOf(t, e), key) {
		if r.Seq >= from {
			out = append(out, r)
		}
	}
	return out
}

// recordsFrom returns the records from seq from on that the host has not
// acknowledged yet (kept by the enclave), verified: with no host
// acknowledging, what the enclave appended.
func recordsFrom(t *testing.T, e *enclave.Enclave, from uint64) []audit.Record {
	t.Helper()
	ar := e.Handle(context.Background(), &proto.AuditRequest{From: from}).(*proto.AuditResponse)
	return checkedRecords(t, ar.Records, ar.Key)
}

func unfreezeBy(t *testing.T, f *statefulFixture, a *admins, seq uint64) proto.Message {
	t.Helper()
	return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: a.envelope(t, f.genesis, f.now, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: seq}, 0, 1)})
}

// TestEventReserve: decisions stop at the backlog cap; event records may
// use the reserve beyond it, and no further.
func TestEventReserve(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		want int
	}{
		{"small cap: the minimum reserve", 3, 64},
		{"default cap: a quarter", genesis.DefaultMaxUnackedAudit, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := enclave.EventReserve(tc.max); got != tc.want {
				t.Fatalf("EventReserve(%d) = %d, want %d", tc.max, got, tc.want)
			}
		})
	}
	f := manualFixture(t, 3, time.Minute) // a host that acknowledges nothing
	// The boot record is 1 of 3; events fill the 2 left and the reserve.
	if n, want := enclave.FillAuditLog(f.e), 2+enclave.EventReserve(3); n != want {
		t.Fatalf("%d event records appended, want %d", n, want)
	}
	wantCode(t, f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())), refusal.CodeUnavailable, "not yet persisted")
}

// TestFreezeWhileBacklogFull: the refusal that fills the decisions'
// backlog triggers a freeze; the freeze is recorded in the event reserve
// (it used to be kept with seq 0 and no record, and no quorum could lift
// it), and it is lifted by naming that record.
func TestFreezeWhileBacklogFull(t *testing.T) {
	f, a := newStatefulAdmins(t, func(k *policy.KeyRule) {
		k.Freeze = &stateful.FreezeRule{Refusals: 2, Window: "1h", Scope: "key"}
	}, 3)
	// Boot (1), two refusals (2, 3), not yet acknowledged (their answers
	// wait): the backlog of 3 is full; the second refusal freezes the key.
	refusal1 := f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, ether(2)), f.now.UnixMilli()))
	waitRecords(t, f.e, 2)
	refusal2 := f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, ether(2)), f.now.UnixMilli()))
	waitRecords(t, f.e, 4)
	select {
	case m := <-refusal1:
		t.Fatalf("a refusal answered before its record was acknowledged: %#v", m)
	case m := <-refusal2:
		t.Fatalf("a refusal answered before its record was acknowledged: %#v", m)
	default:
	}
	recs := recordsFrom(t, f.e, 1)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4 (boot, 2 refusals, the freeze)", len(recs))
	}
	fr := recs[3]
	if fr.Kind != audit.KindFreeze || fr.Decision != "frozen" || fr.Seq != 4 || fr.Key != "hot-0" {
		t.Fatalf("freeze record %+v", fr)
	}
	// Decisions wait for the host; once it caught up, the refusals are
	// answered and the key is frozen under that record.
	wantCode(t, f.pay(t, destA, big.NewInt(1)), refusal.CodeUnavailable, "not yet persisted")
	ackAll(t, f.e)
	wantRule(t, answered(t, f.e, refusal1), refusal.RuleMaxPerTransaction)
	wantRule(t, answered(t, f.e, refusal2), refusal.RuleMaxPerTransaction)
	f.host = startAcks(t, f.e)
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	if !strings.Contains(pe.Message, "audit record 4") {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
	if _, ok := unfreezeBy(t, f, a, 4).(*proto.AdminResponse); !ok {
		t.Fatal("a quorum could not lift the freeze")
	}
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))
}

// TestFreezeOwedUntilRoom: with even the event reserve full, a freeze
// holds without its record; its record is written at the first
// acknowledgement that makes room (before any other event), says since
// when the freeze held, and gives the freeze its seq; a quorum then lifts
// it by that seq. Before that, an unfreeze says why it cannot be done.
func TestFreezeOwedUntilRoom(t *testing.T) {
	f, a := newStatefulAdmins(t, func(k *policy.KeyRule) {
		k.Freeze = &stateful.FreezeRule{Refusals: 2, Window: "1h", Scope: "key"}
	}, 3)
	enclave.FillAuditLog(f.e)
	full := auditHead(t, f.e)
	frozenAt := f.now
	enclave.FreezeKey(f.e, "hot-0", "a test")
	if h := auditHead(t, f.e); h != full {
		t.Fatalf("head %d after a freeze with a full log, want %d", h, full)
	}
	f.setNow(f.now.Add(time.Minute))
	// The freeze holds (no request is decided either while the log is
	// full); an unfreeze cannot name it yet, and says so.
	wantCode(t, f.pay(t, destA, big.NewInt(1)), refusal.CodeUnavailable, "not yet persisted")
	wantCode(t, unfreezeBy(t, f, a, full+1), refusal.CodeUnavailable, "key hot-0 is not recorded yet")

	// The host persists one record (the boot record): the freeze's record
	// takes the room.
	ackOne(t, f.e)
	recs := recordsFrom(t, f.e, full+1)
	if len(recs) != 1 {
		t.Fatalf("%d records after the first acknowledgement, want the freeze's", len(recs))
	}
	fr := recs[0]
	if fr.Kind != audit.KindFreeze || fr.Decision != "frozen" || fr.Key != "hot-0" || fr.TimeMS != f.now.UnixMilli() ||
		!strings.Contains(fr.Summary, "recorded late: in force since "+frozenAt.UTC().Format("2006-01-02T15:04:05.000Z")) {
		t.Fatalf("freeze record %+v", fr)
	}
	// Nothing else fits yet: an unfreeze naming the record is not done.
	// (The fetch above closed the freeze record's batch: the head is its
	// tree head.)
	head := auditHead(t, f.e)
	wantCode(t, unfreezeBy(t, f, a, fr.Seq), refusal.CodeUnavailable, "not done")
	if h := auditHead(t, f.e); h != head || h != fr.Seq+1 {
		t.Fatalf("head %d, want %d: a refused change was recorded", h, fr.Seq+1)
	}
	// Once the host caught up, the key is frozen under that record, and a
	// quorum lifts it.
	ackAll(t, f.e)
	f.host = startAcks(t, f.e)
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	if !strings.Contains(pe.Message, "audit record "+itoa(fr.Seq)) {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
	_, res := adminResult(t, unfreezeBy(t, f, a, fr.Seq))
	if res.KeyID != "hot-0" {
		t.Fatalf("unfreeze %+v", res)
	}
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))
}

// TestFreezeOwedAcrossRestart: a freeze whose record is owed travels in
// the sealed checkpoint; the next run enforces it and writes its record
// as soon as it can (at the host's first poll, or its first request),
// before the refusal it causes.
func TestFreezeOwedAcrossRestart(t *testing.T) {
	f := newSealedFixture(t)
	var g map[string]any
	if err := json.Unmarshal(f.genesis, &g); err != nil {
		t.Fatal(err)
	}
	g["audit"] = map[string]int{"max_unacknowledged": 3} // a log that fills fast
	f.genesis, _ = json.Marshal(g)
	e := f.startManual(t) // its host persists the boot record, then nothing
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	boot := mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed}).AuditRecord
	if m, ok := ack(t, e, boot).(*proto.AuditResponse); !ok {
		t.Fatalf("the acknowledgement of the boot record was refused: %#v", m)
	}
	enclave.FillAuditLog(e)
	enclave.FreezeKey(e, "hot-0", "a test")
	cp := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)

	// The host persisted only the boot record; it persists everything of
	// the next run.
	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: boot, Checkpoint: cp.Sealed})
	fx := &fixture{e: e2, now: f.now, hot: f.hot, seqIDs: 100}
	pe := wantRule(t, fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())), refusal.RuleFrozen)
	recs := persistedFrom(t, e2, 2)
	if len(recs) != 3 || recs[0].Kind != audit.KindBoot || recs[2].Decision != audit.DecisionRefused || recs[1].Kind != audit.KindFreeze || recs[1].Decision != "frozen" || recs[1].Key != "hot-0" {
		t.Fatalf("records after the restart %+v, want boot, the owed freeze, the refusal", recs)
	}
	if !strings.Contains(pe.Message, "audit record "+itoa(recs[1].Seq)) {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
}

// TestExpiryRecords: a request that expires gets its expiry record and
// releases its limit reservation; when the record cannot be appended, the
// request is unusable past its expiry, keeps its reservation, and is
// recorded and released once the host makes room.
func TestExpiryRecords(t *testing.T) {
	ap := newApprovers(t, 2)
	edit := func(k *policy.KeyRule) {
		k.Approvals = ap.rule(2, milliEther(500))
		k.Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(1).String()}}
	}
	hold := func(t *testing.T, f *statefulFixture) ([]byte, string) {
		t.Helper()
		body := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(900)), f.now.UnixMilli())
		sr, ok := f.send(t, f.hot, body).(*proto.SignResponse)
		if !ok || sr.Status != proto.StatusPending {
			t.Fatalf("not pending: %#v", sr)
		}
		return body, sr.ApprovalID
	}
	wantExpiry := func(t *testing.T, r audit.Record, id string) {
		t.Helper()
		if r.Kind != audit.KindDecision || r.Decision != "expired" || r.Rule != refusal.RuleApprovals || r.Key != "hot-0" || !strings.Contains(r.Summary, "approval "+id+" expired at") {
			t.Fatalf("expiry record %+v", r)
		}
	}
	// The reservation of 0.9 of the 1 ETH limit is released once expired:
	// 0.9 fits again (it waits for approvals).
	wantRoom := func(t *testing.T, f *statefulFixture) {
		t.Helper()
		if sr, ok := f.pay(t, destB, milliEther(900)).(*proto.SignResponse); !ok || sr.Status != proto.StatusPending {
			t.Fatalf("after the expiry, the reservation was not released: %#v", sr)
		}
	}

	t.Run("recorded", func(t *testing.T) {
		f := newStatefulTB(t, edit, 0)
		_, id := hold(t, f)
		wantRule(t, f.pay(t, destB, milliEther(200)), refusal.RuleRollingLimit) // 0.9 reserved
		f.setNow(f.now.Add(enclave.ApprovalTTL))
		wantCode(t, f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}), refusal.CodeNotFound, "")
		recs := persistedFrom(t, f.e, 1)
		wantExpiry(t, recs[len(recs)-1], id)
		wantRoom(t, f)
	})

	t.Run("owed while the log is full", func(t *testing.T) {
		f := newStatefulTB(t, edit, 3)
		body, id := hold(t, f)
		f.host.stop() // the host persists nothing for a while
		enclave.FillAuditLog(f.e)
		full := auditHead(t, f.e)
		f.setNow(f.now.Add(enclave.ApprovalTTL + time.Minute))
		// Past its expiry nobody can approve it, recorded or not.
		wantCode(t, ap.decide(t, f.e, id, 0, body, false), refusal.CodeNotFound, "expired at")
		wantCode(t, f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}), refusal.CodeNotFound, "expired at")
		if h := auditHead(t, f.e); h != full {
			t.Fatalf("head %d, want %d", h, full)
		}
		// Room returns: the expiry is recorded at that acknowledgement.
		ackOne(t, f.e)
		recs := recordsFrom(t, f.e, full+1)
		if len(recs) != 1 {
			t.Fatalf("%d records after the acknowledgement, want the expiry's", len(recs))
		}
		wantExpiry(t, recs[0], id)
		wantCode(t, ap.decide(t, f.e, id, 0, body, false), refusal.CodeNotFound, "")
		ackAll(t, f.e)
		f.host = startAcks(t, f.e) // the host is back
		wantRoom(t, f)
	})
}

// TestApprovalReplay: an approval from an approver already counted adds
// no record and changes nothing (a captured POST replayed 50 times appends
// one record); an approver who approved cannot reject; a replayed
// rejection or final approval is answered as before, with no record.
func TestApprovalReplay(t *testing.T) {
	ap := newApprovers(t, 3)
	f := newStatefulTB(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(500)) }, 0)
	post := func(i int, id string, body []byte, reject bool) []byte {
		t.Helper()
		domain, decision := api.DomainApprove, api.DecisionApprove
		if reject {
			domain, decision = api.DomainReject, api.DecisionReject
		}
		sig, err := admin.SignDigest(ap.signers[i], domain, api.ApprovalDigest(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(api.ApprovalRequest{ApprovalID: id, Decision: decision, Approver: ap.names[i], Signature: hex.EncodeToString(sig)})
		return b
	}
	send := func(b []byte) proto.Message {
		return f.e.Handle(context.Background(), &proto.ApprovalRequest{Body: b})
	}
	holdOne := func() ([]byte, string) {
		t.Helper()
		body := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(900)), f.now.UnixMilli())
		return body, f.send(t, f.hot, body).(*proto.SignResponse).ApprovalID
	}

	body, id := holdOne()
	first := post(0, id, body, false)
	counted, ok := send(first).(*proto.SignResponse)
	if !ok || counted.Status != proto.StatusPending || counted.AlreadyCounted {
		t.Fatalf("first approval: %#v", counted)
	}
	head := auditHead(t, f.e)
	if head != counted.AuditSeq+1 {
		t.Fatalf("head %d, the approval's record %d (and its tree head)", head, counted.AuditSeq)
	}

	for _, tc := range []struct {
		name  string
		body  []byte
		check func(t *testing.T, m proto.Message)
	}{
		{"the same POST, byte for byte", first, func(t *testing.T, m proto.Message) {
			sr, ok := m.(*proto.SignResponse)
			if !ok || sr.Status != proto.StatusPending || !sr.AlreadyCounted || sr.AuditSeq != counted.AuditSeq ||
				string(sr.AuditRecord) != string(counted.AuditRecord) || !slices.Equal(sr.Approvers, []string{ap.names[0]}) {
				t.Fatalf("replayed approval: %#v", m)
			}
		}},
		{"a fresh approval by the same approver", post(0, id, body, false), func(t *testing.T, m proto.Message) {
			if sr, ok := m.(*proto.SignResponse); !ok || !sr.AlreadyCounted {
				t.Fatalf("approval again: %#v", m)
			}
		}},
		{"a rejection by an approver who approved", post(0, id, body, true), func(t *testing.T, m proto.Message) {
			pe, ok := m.(*proto.Error)
			if !ok || pe.Code != refusal.CodeBadRequest || pe.Rule != refusal.RuleApprovals || !strings.Contains(pe.Message, "already approved") || len(pe.AuditRecord) != 0 {
				t.Fatalf("rejection after approval: %#v", m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				tc.check(t, send(tc.body))
			}
			if h := auditHead(t, f.e); h != head {
				t.Fatalf("head %d after the replays, want %d", h, head)
			}
		})
	}

	// The quorum: signed once; the final approval replayed returns the
	// same signature, with no record.
	final := post(2, id, body, false)
	done := wantSignedApproved(t, send(final))
	for range 50 {
		again := wantSignedApproved(t, send(final))
		if again.AuditSeq != done.AuditSeq || again.Signature != done.Signature {
			t.Fatal("a replayed final approval made a new signature")
		}
	}
	if h := auditHead(t, f.e); h != done.AuditSeq+1 {
		t.Fatalf("head %d, want %d (the signature's record and its tree head)", h, done.AuditSeq+1)
	}

	// A rejection replayed: one record.
	body2, id2 := holdOne()
	reject := post(1, id2, body2, true)
	wantCode(t, send(reject), refusal.CodeApprovalRejected, "rejected by "+ap.names[1])
	head = auditHead(t, f.e)
	for range 50 {
		pe, ok := send(reject).(*proto.Error)
		if !ok || pe.Code != refusal.CodeApprovalRejected || len(pe.AuditRecord) != 0 {
			t.Fatalf("replayed rejection: %#v", pe)
		}
	}
	if h := auditHead(t, f.e); h != head {
		t.Fatalf("head %d after replayed rejections, want %d", h, head)
	}
}

// TestEventsNotDoneWithoutRecord: with even the event reserve full, every
// change that needs its record is refused (503, saying why) and nothing
// changes; once the host makes room, the same command succeeds.
func TestEventsNotDoneWithoutRecord(t *testing.T) {
	ap := newApprovers(t, 3)
	f := newGovMax(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(2, milliEther(500)) }, 3)
	body := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(900)), f.now.UnixMilli())
	id := f.send(t, f.hot, body).(*proto.SignResponse).ApprovalID
	addC := withDest(f.doc, 2, destA, destB, destC)
	addC.Keys[0].Approvals = ap.rule(2, milliEther(500))
	policyResult(t, f.change(t, addC, 0, 1)) // scheduled: pending
	f.host.stop()                            // the host persists nothing for a while
	enclave.FillAuditLog(f.e)
	full := auditHead(t, f.e)
	dropB := withDest(f.doc, 3, destA)
	dropB.Keys[0].Approvals = ap.rule(2, milliEther(500))

	info := func() *proto.ApprovalInfoResponse {
		return f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}).(*proto.ApprovalInfoResponse)
	}
	polInfo := func() *proto.PolicyResponse {
		return f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	}
	for _, tc := range []struct {
		name      string
		do        func() proto.Message
		unchanged func(t *testing.T)
	}{
		{"an approval", func() proto.Message { return ap.decide(t, f.e, id, 0, body, false) }, func(t *testing.T) {
			if in := info(); in.Status != proto.StatusPending || len(in.Approvers) != 0 {
				t.Fatalf("approval state %+v", in)
			}
		}},
		{"a rejection", func() proto.Message { return ap.decide(t, f.e, id, 1, body, true) }, func(t *testing.T) {
			if in := info(); in.Status != proto.StatusPending {
				t.Fatalf("approval state %+v", in)
			}
		}},
		{"a tightening policy change", func() proto.Message { return f.change(t, dropB, 0, 1) }, func(t *testing.T) {
			if pi := polInfo(); pi.Version != 1 || len(pi.Pending) != 1 {
				t.Fatalf("policy %d, %d pending", pi.Version, len(pi.Pending))
			}
		}},
		{"a policy cancel", func() proto.Message { return f.cancel(t, addC, 2) }, func(t *testing.T) {
			if pi := polInfo(); len(pi.Pending) != 1 {
				t.Fatalf("%d pending", len(pi.Pending))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.do(), refusal.CodeUnavailable, "not done, because its audit record cannot be appended")
			tc.unchanged(t)
			if h := auditHead(t, f.e); h != full {
				t.Fatalf("head %d, want %d", h, full)
			}
		})
	}
	ackAll(t, f.e)
	f.host = startAcks(t, f.e) // the host is back
	if sr, ok := ap.decide(t, f.e, id, 0, body, false).(*proto.SignResponse); !ok || sr.AlreadyCounted || len(sr.Approvers) != 1 {
		t.Fatalf("the approval once the host caught up: %#v", sr)
	}
	if _, rec := policyResult(t, f.change(t, dropB, 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the tightening was %s", rec.Decision)
	}
}

// TestPolicyDueWhileLogFull: a time-locked change whose lock ends while
// its record cannot be appended does not come into force until it is
// recorded; a due change overtaken by a higher version in force is
// dropped with its record.
func TestPolicyDueWhileLogFull(t *testing.T) {
	f := newGovMax(t, nil, 3)
	addC := withDest(f.doc, 2, destA, destB, destC)
	policyResult(t, f.change(t, addC, 0, 1))
	f.host.stop() // the host persists nothing for a while
	f.setNow(f.now.Add(24*time.Hour + time.Second))
	enclave.FillAuditLog(f.e)
	full := auditHead(t, f.e)
	pr := f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	if pr.Version != 1 || len(pr.Pending) != 1 || f.e.UserData().PolicyVersion != 1 {
		t.Fatalf("a due change came into force without its record: version %d, %d pending", pr.Version, len(pr.Pending))
	}
	// Room returns: in force, with its record.
	ackAll(t, f.e)
	recs := recordsFrom(t, f.e, full+1)
	if len(recs) != 1 || recs[0].Kind != audit.KindPolicy || recs[0].Decision != "applied" || recs[0].PolicyVersion != 2 {
		t.Fatalf("records %+v, want the change applied", recs)
	}
	f.host = startAcks(t, f.e) // the host is back
	wantSigned(t, f.pay(t, destC, big.NewInt(1)))

	// Overtaken: version 3 (loosening, time-locked), then version 4 (a
	// tightening, at once); when 3 is due, it is dropped with a record.
	dropC := withDest(f.doc, 4, destA, destB)
	policyResult(t, f.change(t, withDest(f.doc, 3, destA, destB, destC, "0x4444444444444444444444444444444444444444"), 0, 1))
	if _, rec := policyResult(t, f.change(t, dropC, 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the tightening was %s", rec.Decision)
	}
	f.setNow(f.now.Add(24*time.Hour + time.Second))
	before := auditHead(t, f.e)
	pr = f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	if pr.Version != 4 || len(pr.Pending) != 0 {
		t.Fatalf("version %d, %d pending", pr.Version, len(pr.Pending))
	}
	recs = persistedFrom(t, f.e, before+1)
	if len(recs) != 1 || recs[0].Decision != "superseded" || !strings.Contains(recs[0].Summary, "version 4 is already in force") {
		t.Fatalf("records %+v, want the superseded change", recs)
	}
}
