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
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// Event records: every state change has its record, or does not happen
// (auditevent.go).

// newStatefulAdmins is newStatefulTB with two admins (quorum 2) in the
// genesis configuration.
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
	e, err := enclave.New(enclave.Config{Genesis: f.genesis, Now: func() time.Time { return f.now }, MaxUnackedAudit: maxUnacked})
	if err != nil {
		t.Fatal(err)
	}
	f.e = e
	return f, a
}

// auditHead is the enclave's audit head seq.
func auditHead(t *testing.T, e *enclave.Enclave) uint64 {
	t.Helper()
	return e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
}

// ackAll acknowledges every record appended so far, as a host that
// persisted them does, and returns the head it acknowledged.
func ackAll(t *testing.T, e *enclave.Enclave) uint64 {
	t.Helper()
	h := auditHead(t, e)
	e.Handle(context.Background(), &proto.AuditRequest{Ack: h})
	return h
}

// recordsFrom returns the unacknowledged records from seq on, verified.
func recordsFrom(t *testing.T, e *enclave.Enclave, from uint64) []audit.Record {
	t.Helper()
	ar := e.Handle(context.Background(), &proto.AuditRequest{From: from}).(*proto.AuditResponse)
	var out []audit.Record
	for _, line := range ar.Records {
		r, err := audit.VerifyRecord(line, ar.Key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
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
		{"default cap: a quarter", enclave.DefaultMaxUnackedAudit, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := enclave.EventReserve(tc.max); got != tc.want {
				t.Fatalf("EventReserve(%d) = %d, want %d", tc.max, got, tc.want)
			}
		})
	}
	f := newFixtureWith(t, 3)
	// The boot record is 1 of 3; events fill the 2 left and the reserve.
	if n, want := enclave.FillAuditLog(f.e), 2+enclave.EventReserve(3); n != want {
		t.Fatalf("%d event records appended, want %d", n, want)
	}
	wantCode(t, f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())), api.CodeUnavailable, "not yet persisted")
}

// TestFreezeWhileBacklogFull: the refusal that fills the decisions'
// backlog triggers a freeze; the freeze is recorded in the event reserve
// (it used to be kept with seq 0 and no record, and no quorum could lift
// it), and it is lifted by naming that record.
func TestFreezeWhileBacklogFull(t *testing.T) {
	f, a := newStatefulAdmins(t, func(k *policy.KeyRule) {
		k.Freeze = &policy.FreezeRule{Refusals: 2, Window: "1h", Scope: "key"}
	}, 3)
	// Boot (1), two refusals (2, 3): the backlog of 3 is full; the second
	// refusal freezes the key.
	wantRule(t, f.pay(t, destA, ether(2)), policy.RuleMaxPerTransaction)
	wantRule(t, f.pay(t, destA, ether(2)), policy.RuleMaxPerTransaction)
	recs := recordsFrom(t, f.e, 1)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4 (boot, 2 refusals, the freeze)", len(recs))
	}
	fr := recs[3]
	if fr.Kind != audit.KindFreeze || fr.Decision != "frozen" || fr.Seq != 4 || fr.Key != "hot-0" {
		t.Fatalf("freeze record %+v", fr)
	}
	// Decisions wait for the host; once it caught up, the key is frozen
	// under that record.
	wantCode(t, f.pay(t, destA, big.NewInt(1)), api.CodeUnavailable, "not yet persisted")
	ackAll(t, f.e)
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), enclave.RuleFrozen)
	if !strings.Contains(pe.Message, "audit record 4") {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
	ackAll(t, f.e)
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
		k.Freeze = &policy.FreezeRule{Refusals: 2, Window: "1h", Scope: "key"}
	}, 3)
	enclave.FillAuditLog(f.e)
	full := auditHead(t, f.e)
	frozenAt := f.now
	enclave.FreezeKey(f.e, "hot-0", "a test")
	if h := auditHead(t, f.e); h != full {
		t.Fatalf("head %d after a freeze with a full log, want %d", h, full)
	}
	f.now = f.now.Add(time.Minute)
	// The freeze holds (no request is decided either while the log is
	// full); an unfreeze cannot name it yet, and says so.
	wantCode(t, f.pay(t, destA, big.NewInt(1)), api.CodeUnavailable, "")
	wantCode(t, unfreezeBy(t, f, a, full+1), api.CodeUnavailable, "key hot-0 is not recorded yet")

	// The host persists one record: the freeze's record takes the room.
	f.e.Handle(context.Background(), &proto.AuditRequest{Ack: 1})
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
	wantCode(t, unfreezeBy(t, f, a, fr.Seq), api.CodeUnavailable, "not done")
	if h := auditHead(t, f.e); h != fr.Seq {
		t.Fatalf("head %d, want %d: a refused change was recorded", h, fr.Seq)
	}
	// Once the host caught up, the key is frozen under that record, and a
	// quorum lifts it.
	ackAll(t, f.e)
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), enclave.RuleFrozen)
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
// at its first request.
func TestFreezeOwedAcrossRestart(t *testing.T) {
	f := newSealedFixture(t)
	e := f.start(t)
	sealed := mustUnseal(t, e, &proto.UnsealRequest{Create: true}).Sealed
	boot := mustUnseal(t, e, &proto.UnsealRequest{Sealed: sealed}).AuditRecord
	call(t, e, &proto.AuditRequest{Ack: 1})
	enclave.FillAuditLog(e)
	enclave.FreezeKey(e, "hot-0", "a test")
	cp := call(t, e, &proto.CheckpointRequest{}).(*proto.CheckpointResponse)

	// The host persisted only the boot record.
	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: boot, Checkpoint: cp.Sealed})
	fx := &fixture{e: e2, now: f.now, hot: f.hot, seqIDs: 100}
	pe := wantRule(t, fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())), enclave.RuleFrozen)
	recs := recordsFrom(t, e2, 2)
	if len(recs) < 2 || recs[1].Kind != audit.KindFreeze || recs[1].Decision != "frozen" || recs[1].Key != "hot-0" {
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
		k.Limits = []policy.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(1).String()}}
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
		if r.Kind != audit.KindDecision || r.Decision != "expired" || r.Rule != enclave.RuleApprovals || r.Key != "hot-0" || !strings.Contains(r.Summary, "approval "+id+" expired at") {
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
		wantRule(t, f.pay(t, destB, milliEther(200)), enclave.RuleRollingLimit) // 0.9 reserved
		f.now = f.now.Add(enclave.ApprovalTTL)
		wantCode(t, f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}), api.CodeNotFound, "")
		recs := recordsFrom(t, f.e, 1)
		wantExpiry(t, recs[len(recs)-1], id)
		wantRoom(t, f)
	})

	t.Run("owed while the log is full", func(t *testing.T) {
		f := newStatefulTB(t, edit, 3)
		body, id := hold(t, f)
		enclave.FillAuditLog(f.e)
		full := auditHead(t, f.e)
		f.now = f.now.Add(enclave.ApprovalTTL + time.Minute)
		// Past its expiry nobody can approve it, recorded or not.
		wantCode(t, ap.decide(t, f.e, id, 0, body, false), api.CodeNotFound, "expired at")
		wantCode(t, f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}), api.CodeNotFound, "expired at")
		if h := auditHead(t, f.e); h != full {
			t.Fatalf("head %d, want %d", h, full)
		}
		// Room returns: the expiry is recorded at that acknowledgement.
		f.e.Handle(context.Background(), &proto.AuditRequest{Ack: 1})
		recs := recordsFrom(t, f.e, full+1)
		if len(recs) != 1 {
			t.Fatalf("%d records after the acknowledgement, want the expiry's", len(recs))
		}
		wantExpiry(t, recs[0], id)
		wantCode(t, ap.decide(t, f.e, id, 0, body, false), api.CodeNotFound, "")
		ackAll(t, f.e)
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
	if head != counted.AuditSeq {
		t.Fatalf("head %d, the approval's record %d", head, counted.AuditSeq)
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
			if !ok || pe.Code != api.CodeBadRequest || pe.Rule != enclave.RuleApprovals || !strings.Contains(pe.Message, "already approved") || len(pe.AuditRecord) != 0 {
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
	if h := auditHead(t, f.e); h != done.AuditSeq {
		t.Fatalf("head %d, want %d", h, done.AuditSeq)
	}

	// A rejection replayed: one record.
	body2, id2 := holdOne()
	reject := post(1, id2, body2, true)
	wantCode(t, send(reject), api.CodeApprovalRejected, "rejected by "+ap.names[1])
	head = auditHead(t, f.e)
	for range 50 {
		pe, ok := send(reject).(*proto.Error)
		if !ok || pe.Code != api.CodeApprovalRejected || len(pe.AuditRecord) != 0 {
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
	ackAll(t, f.e)
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
			wantCode(t, tc.do(), api.CodeUnavailable, "not done, because its audit record cannot be appended")
			tc.unchanged(t)
			if h := auditHead(t, f.e); h != full {
				t.Fatalf("head %d, want %d", h, full)
			}
		})
	}
	ackAll(t, f.e)
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
	ackAll(t, f.e)
	f.now = f.now.Add(24*time.Hour + time.Second)
	enclave.FillAuditLog(f.e)
	full := auditHead(t, f.e)
	pr := f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	if pr.Version != 1 || len(pr.Pending) != 1 || f.e.UserData().PolicyVersion != 1 {
		t.Fatalf("a due change came into force without its record: version %d, %d pending", pr.Version, len(pr.Pending))
	}
	// Room returns: in force, with its record.
	f.e.Handle(context.Background(), &proto.AuditRequest{Ack: full})
	recs := recordsFrom(t, f.e, full+1)
	if len(recs) != 1 || recs[0].Kind != audit.KindPolicy || recs[0].Decision != "applied" || recs[0].PolicyVersion != 2 {
		t.Fatalf("records %+v, want the change applied", recs)
	}
	ackAll(t, f.e)
	wantSigned(t, f.pay(t, destC, big.NewInt(1)))

	// Overtaken: version 3 (loosening, time-locked), then version 4 (a
	// tightening, at once); when 3 is due, it is dropped with a record.
	dropC := withDest(f.doc, 4, destA, destB)
	policyResult(t, f.change(t, withDest(f.doc, 3, destA, destB, destC, "0x4444444444444444444444444444444444444444"), 0, 1))
	if _, rec := policyResult(t, f.change(t, dropC, 0, 1)); rec.Decision != "applied" {
		t.Fatalf("the tightening was %s", rec.Decision)
	}
	f.now = f.now.Add(24*time.Hour + time.Second)
	before := auditHead(t, f.e)
	pr = f.e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse)
	if pr.Version != 4 || len(pr.Pending) != 0 {
		t.Fatalf("version %d, %d pending", pr.Version, len(pr.Pending))
	}
	recs = recordsFrom(t, f.e, before+1)
	if len(recs) != 1 || recs[0].Decision != "superseded" || !strings.Contains(recs[0].Summary, "version 4 is already in force") {
		t.Fatalf("records %+v, want the superseded change", recs)
	}
}
