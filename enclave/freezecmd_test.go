package enclave_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// freeze submits a freeze command of body signed by the admins numbered
// by, valid from f.now less a minute (at) to an hour after.
func (f *govFixture) freeze(t *testing.T, at time.Time, body admin.FreezeBody, by ...int) proto.Message {
	t.Helper()
	return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: f.admins.envelope(t, f.genesis, at, admin.KindFreeze, body, by...)})
}

func (f *govFixture) unfreeze(t *testing.T, seq uint64, by ...int) proto.Message {
	t.Helper()
	return f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: f.admins.envelope(t, f.genesis, f.now, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: seq}, by...)})
}

// freezeRecord checks that m is a freeze's answer whose record froze key
// (empty: every key) for the admins named, saying reason, and returns it.
func freezeRecordOf(t *testing.T, m proto.Message, key, reason string, approvers ...string) audit.Record {
	t.Helper()
	ar, res := adminResult(t, m)
	rec, err := audit.Unmarshal(ar.AuditRecord)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != audit.KindFreeze || rec.Decision != "frozen" || rec.Rule != refusal.RuleFrozen || rec.Key != key ||
		strings.Join(rec.Approvers, ",") != strings.Join(approvers, ",") || len(rec.RequestDigest) != 32 ||
		!strings.Contains(rec.Summary, reason) || rec.Seq != res.AuditSeq || res.Kind != "freeze" ||
		res.KeyID != key || res.AllKeys != (key == "") {
		t.Fatalf("freeze answer %+v, record %+v", res, rec)
	}
	return rec
}

// TestAdminFreeze: one admin freezes a key at once; the key refuses under
// rule frozen naming the freeze's record and reason; the envelope is
// single use; a key frozen already, a key the enclave does not hold and a
// malformed body are refused and change nothing; one admin cannot lift
// the freeze, the quorum naming its record does. A freeze of every key
// freezes them all.
func TestAdminFreeze(t *testing.T) {
	f := newGov(t)
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))

	body := admin.FreezeBody{KeyID: "hot-0", Reason: "client host compromised (INC-7)"}
	env := f.admins.envelope(t, f.genesis, f.now, admin.KindFreeze, body, 2)
	rec := freezeRecordOf(t, f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}), "hot-0", "client host compromised (INC-7)", "c-admin")
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	if !strings.Contains(pe.Message, "audit record "+itoa(rec.Seq)) || !strings.Contains(pe.Message, "INC-7") || !strings.Contains(pe.Message, "c-admin") {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
	if h := health(t, f.e); h.FrozenKeys != 1 {
		t.Errorf("health: %d keys frozen, want 1", h.FrozenKeys)
	}

	head := auditHead(t, f.e)
	for _, tc := range []struct {
		name       string
		m          proto.Message
		code, rule string
		msg        string
	}{
		{"replayed", f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}), refusal.CodeBadRequest, refusal.RuleReplayedCommand, "carried out already"},
		{"frozen already", f.freeze(t, f.now.Add(time.Second), body, 0), refusal.CodeBadRequest, refusal.RuleFrozen, "hot-0 is frozen already (audit record " + itoa(rec.Seq)},
		{"unknown key", f.freeze(t, f.now, admin.FreezeBody{KeyID: "hot-9", Reason: "r"}, 0), refusal.CodeBadRequest, "", "no key hot-9"},
		{"malformed", f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: rawEnvelope(t, f.admins, f.genesis, f.now, `{"key_id":"hot-0","reason":"a\nb"}`, 0)}), refusal.CodeBadRequest, "", "not printable"},
		{"all_keys false", f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: rawEnvelope(t, f.admins, f.genesis, f.now, `{"all_keys":false,"reason":"r"}`, 0)}), refusal.CodeBadRequest, "", "all_keys"},
		{"unsigned", f.freeze(t, f.now, admin.FreezeBody{AllKeys: true, Reason: "r"}), refusal.CodeUnauthorized, "", "quorum"},
		{"unfreeze by one admin", f.unfreeze(t, rec.Seq, 2), refusal.CodeUnauthorized, "", "quorum"},
	} {
		pe, ok := tc.m.(*proto.Error)
		if !ok || pe.Code != tc.code || pe.Rule != tc.rule || !strings.Contains(pe.Message, tc.msg) {
			t.Errorf("%s: answered %#v, want %s/%q saying %q", tc.name, tc.m, tc.code, tc.rule, tc.msg)
		}
	}
	if h := auditHead(t, f.e); h != head {
		t.Fatalf("refused commands moved the audit head from %d to %d", head, h)
	}
	wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)

	if _, res := adminResult(t, f.unfreeze(t, rec.Seq, 0, 1)); res.KeyID != "hot-0" {
		t.Fatalf("unfreeze %+v", res)
	}
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))

	// Every key, by another admin.
	all := freezeRecordOf(t, f.freeze(t, f.now.Add(2*time.Second), admin.FreezeBody{AllKeys: true, Reason: "incident 42"}, 0), "", "every key frozen", "a-admin")
	wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	if h := health(t, f.e); h.FrozenKeys != h.Keys || h.Keys == 0 {
		t.Errorf("health under a freeze of every key: %d of %d frozen", h.FrozenKeys, h.Keys)
	}
	// A key may be frozen on its own under a freeze of every key: lifting
	// the freeze of every key leaves it frozen.
	own := freezeRecordOf(t, f.freeze(t, f.now.Add(3*time.Second), admin.FreezeBody{KeyID: "hot-0", Reason: "keep hot-0 stopped"}, 1), "hot-0", "keep hot-0 stopped", "b-admin")
	adminResult(t, f.unfreeze(t, all.Seq, 0, 1))
	wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	adminResult(t, f.unfreeze(t, own.Seq, 1, 2))
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))
}

// TestAdminFreezeThreshold: a thresholds entry for freeze in the genesis
// admin set is enforced: raised to 3 of 3, one or two admins are refused
// and change nothing; set to 1 below a quorum of 2, one suffices.
func TestAdminFreezeThreshold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
		refused   [][]int
		accepted  []int
	}{
		{"raised to every admin", 3, [][]int{{0}, {0, 2}}, []int{0, 1, 2}},
		{"raised to the quorum", 2, [][]int{{1}}, []int{1, 2}},
		{"one, as the default", 1, nil, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGov(t)
			var g map[string]any
			if err := json.Unmarshal(f.genesis, &g); err != nil {
				t.Fatal(err)
			}
			cfg := f.admins.config(2)
			cfg["thresholds"] = map[string]int{"freeze": tc.threshold}
			g["admins"] = cfg
			f.genesis, _ = json.Marshal(g)
			e, err := enclave.New(enclave.Config{Genesis: f.genesis, Now: f.clockNow})
			if err != nil {
				t.Fatal(err)
			}
			f.host.stop()
			f.e, f.host = e, startAcks(t, e)

			body := admin.FreezeBody{KeyID: "hot-0", Reason: "drill"}
			for _, by := range tc.refused {
				wantCode(t, f.freeze(t, f.now, body, by...), refusal.CodeUnauthorized, "quorum")
				wantSigned(t, f.pay(t, destA, big.NewInt(1)))
			}
			freezeRecordOf(t, f.freeze(t, f.now, body, tc.accepted...), "hot-0", "drill", namesOf(f.admins, tc.accepted)...)
			wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
		})
	}
}

// rawEnvelope is an envelope of a freeze command with body exactly as
// given, which the admin package's writers refuse to write when it is
// malformed, signed by the admins numbered by.
func rawEnvelope(t *testing.T, a *admins, genesis []byte, now time.Time, body string, by ...int) []byte {
	t.Helper()
	cmd := fmt.Sprintf(`{"kind":"freeze","genesis_hash":"%x","not_before_ms":%d,"not_after_ms":%d,"body":%s}`,
		sha256.Sum256(genesis), now.Add(-time.Minute).UnixMilli(), now.Add(time.Hour).UnixMilli(), body)
	type sig struct {
		Admin     string `json:"admin"`
		Signature string `json:"signature"`
	}
	var sigs []sig
	for _, i := range by {
		s, err := admin.SignDigest(a.signers[i], admin.DomainCommand, sha256.Sum256([]byte(cmd)))
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig{a.names[i], hex.EncodeToString(s)})
	}
	b, err := json.Marshal(map[string]any{"command": cmd, "signatures": sigs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func namesOf(a *admins, by []int) []string {
	var out []string
	for _, i := range by {
		out = append(out, a.names[i])
	}
	return out
}

// TestAdminFreezeSurvivesRestart: the freeze travels in the sealed
// checkpoint, the command's envelope stays spent across the restart, and
// the quorum lifts the freeze in the next run by its record.
func TestAdminFreezeSurvivesRestart(t *testing.T) {
	f := newSealedFixture(t)
	a := newAdmins(t, 3)
	withAdmins(t, f, a)
	e, sealed := f.startUnsealed(t)
	fx := &fixture{e: e, now: f.now, hot: f.hot}
	pay := func(fx *fixture) proto.Message {
		return fx.send(t, f.hot, fx.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	}
	wantSigned(t, pay(fx))
	env := a.envelope(t, f.genesis, f.now, admin.KindFreeze, admin.FreezeBody{KeyID: "hot-0", Reason: "restart drill"}, 1)
	ar, res := adminResult(t, call(t, e, &proto.AdminRequest{Envelope: env}))
	if res.AuditSeq == 0 || len(ar.AuditRecord) == 0 {
		t.Fatalf("freeze %+v", res)
	}
	wantRule(t, pay(fx), refusal.RuleFrozen)
	waitAcked(t, e)
	cp := newestCheckpoint(t, e)

	e2 := f.start(t)
	mustUnseal(t, e2, &proto.UnsealRequest{Sealed: sealed, AuditHead: hostLast(t, e), Checkpoint: cp})
	fx2 := &fixture{e: e2, now: f.now, hot: f.hot, seqIDs: 100}
	pe := wantRule(t, pay(fx2), refusal.RuleFrozen)
	if !strings.Contains(pe.Message, "audit record "+itoa(res.AuditSeq)) || !strings.Contains(pe.Message, "restart drill") {
		t.Errorf("frozen refusal after the restart: %s", pe.Message)
	}
	wantCode(t, call(t, e2, &proto.AdminRequest{Envelope: env}), refusal.CodeBadRequest, "carried out already")
	unfreeze := a.envelope(t, f.genesis, f.now, admin.KindUnfreeze, admin.UnfreezeBody{FreezeSeq: res.AuditSeq}, 0, 2)
	if _, u := adminResult(t, call(t, e2, &proto.AdminRequest{Envelope: unfreeze})); u.KeyID != "hot-0" {
		t.Fatalf("unfreeze %+v", u)
	}
	wantSigned(t, pay(fx2))
}

// TestAdminFreezeOwed: with the audit log full, the freeze holds at once
// (fail closed) and the answer says its record is owed; the record is
// written first once the host makes room, naming the admin and the
// reason; the same envelope then finds the key frozen already, and the
// quorum lifts the freeze by that record.
func TestAdminFreezeOwed(t *testing.T) {
	f, a := newStatefulAdmins(t, func(*policy.KeyRule) {}, 3)
	enclave.FillAuditLog(f.e)
	full := auditHead(t, f.e)
	env := a.envelope(t, f.genesis, f.now, admin.KindFreeze, admin.FreezeBody{KeyID: "hot-0", Reason: "owed drill"}, 1)
	wantCode(t, f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}), refusal.CodeUnavailable, "hot-0 is frozen, in force now")
	if h := auditHead(t, f.e); h != full {
		t.Fatalf("head %d after a freeze with a full log, want %d", h, full)
	}
	ackOne(t, f.e)
	recs := recordsFrom(t, f.e, full+1)
	if len(recs) != 1 || recs[0].Kind != audit.KindFreeze || recs[0].Key != "hot-0" ||
		!strings.Contains(recs[0].Summary, "a freeze by admin b-admin: owed drill") {
		t.Fatalf("records after the first acknowledgement: %+v", recs)
	}
	ackAll(t, f.e)
	f.host = startAcks(t, f.e)
	pe := wantRule(t, f.pay(t, destA, big.NewInt(1)), refusal.RuleFrozen)
	if !strings.Contains(pe.Message, "audit record "+itoa(recs[0].Seq)) {
		t.Errorf("frozen refusal: %s", pe.Message)
	}
	wantCode(t, f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env}), refusal.CodeBadRequest, "frozen already")
	adminResult(t, unfreezeBy(t, f, a, recs[0].Seq))
	wantSigned(t, f.pay(t, destA, big.NewInt(1)))
}

// TestAdminFreezeAtomic: requests decided while a freeze comes are decided
// wholly before it or wholly after it: in the audit log, every decision
// before the freeze's record signed and every one after it was refused
// under rule frozen, and no answer contradicts its record.
func TestAdminFreezeAtomic(t *testing.T) {
	const n = 40
	for round := range 3 * raceScale() {
		f := newGov(t)
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())
		}
		answers := make([]proto.Message, n)
		var wg sync.WaitGroup
		var done atomic.Int64
		start := make(chan struct{})
		for i := range bodies {
			wg.Go(func() {
				<-start
				answers[i] = sendStamped(f.e, f.hot, bodies[i])
				done.Add(1)
			})
		}
		env := f.admins.envelope(t, f.genesis, f.now, admin.KindFreeze, admin.FreezeBody{KeyID: "hot-0", Reason: "race"}, 0)
		close(start)
		// The freeze comes while requests are being decided: after the
		// first answers, before the last.
		for done.Load() < n/8 {
			runtime.Gosched()
		}
		m := f.e.Handle(context.Background(), &proto.AdminRequest{Envelope: env})
		wg.Wait()
		rec := freezeRecordOf(t, m, "hot-0", "race", "a-admin")
		signed, refused := 0, 0
		for _, line := range recordsOf(t, f.e) {
			r, _ := audit.Unmarshal(line)
			if r.Kind != audit.KindDecision {
				continue
			}
			switch {
			case r.Seq < rec.Seq && r.Decision == audit.DecisionSigned:
				signed++
			case r.Seq > rec.Seq && r.Rule == refusal.RuleFrozen:
				refused++
			default:
				t.Fatalf("round %d: decision %d (%s, rule %s) against the freeze at %d", round, r.Seq, r.Decision, r.Rule, rec.Seq)
			}
		}
		answeredSigned := 0
		for _, a := range answers {
			switch a := a.(type) {
			case *proto.SignResponse:
				answeredSigned++
			case *proto.Error:
				if a.Rule != refusal.RuleFrozen {
					t.Fatalf("round %d: answer %#v", round, a)
				}
			}
		}
		if signed+refused != n || answeredSigned != signed {
			t.Fatalf("round %d: %d signed and %d refused records, %d signatures answered, of %d", round, signed, refused, answeredSigned, n)
		}
	}
}
