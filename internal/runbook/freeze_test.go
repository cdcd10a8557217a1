package runbook_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

// TestRunbookFreeze runs procedure 2 from its start: one dev admin (of a
// quorum of two) freezes the example key with the runbook's blocks; the
// client's next request is refused under rule frozen naming the freeze's
// record and reason, also after a restart of the stack; the envelope
// again is refused as replayed; the freeze record is found in the log as
// the runbook finds it, and the quorum's unfreeze naming it lets the key
// sign again.
func TestRunbookFreeze(t *testing.T) {
	stackTest(t)
	dir := t.TempDir()
	st := devstacktest.Start(t, dir)
	s := newSession(t, stackVars(st))
	signWithClient(t, s, st)

	s.vars["FREEZE_KEY_ID"], s.vars["FREEZE_REASON"] = devstack.ExampleKeyID, "INC-7: client host compromised (drill)"
	s.mustRun("freeze-write", nil)
	// One admin suffices: the dev admin set's quorum is two.
	if out := s.mustRun("admin-sign", admin(st, 1, "freeze.json")); !strings.Contains(out, "command   freeze") || !strings.Contains(out, "INC-7") {
		t.Fatalf("admin-sign does not show the freeze:\n%s", out)
	}
	out := s.mustRun("admin-submit", map[string]string{"ENVELOPE": "freeze.json"})
	var ans map[string]any
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatalf("admin-submit printed no JSON answer: %v\n%s", err, out)
	}
	seq, ok := ans["audit_seq"].(float64)
	if ans["kind"] != "freeze" || ans["key_id"] != devstack.ExampleKeyID || !ok || seq == 0 {
		t.Fatalf("freeze answer %v", ans)
	}
	freezeSeq := strconv.FormatFloat(seq, 'f', 0, 64)
	if signers, _ := ans["signers"].([]any); len(signers) != 1 || signers[0] != devstack.AdminName(1) {
		t.Fatalf("freeze signers %v, want %s alone", ans["signers"], devstack.AdminName(1))
	}

	wantFrozen := func(when string) {
		t.Helper()
		code, out := signTx(t, s, st, "0.01", 1)
		m := frozenSeq.FindStringSubmatch(out)
		if code != 1 || m == nil || m[1] != freezeSeq || !strings.Contains(out, "INC-7: client host compromised (drill)") || !strings.Contains(out, "frozen") {
			t.Fatalf("signing %s: exit %d, want a frozen refusal naming record %s and the reason\n%s", when, code, freezeSeq, out)
		}
	}
	wantFrozen("after the freeze")
	if o, e, code := s.run("admin-submit", map[string]string{"ENVELOPE": "freeze.json"}); code != 1 || !strings.Contains(e, "replayed_command") {
		t.Fatalf("the freeze envelope sent again: exit %d\n%s%s", code, o, e)
	}

	// The freeze is sealed in the checkpoint: it holds after a restart.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = devstacktest.Start(t, dir)
	s.vars = mergeVars(stackVars(st), map[string]string{"FREEZE_KEY_ID": s.vars["FREEZE_KEY_ID"], "FREEZE_REASON": s.vars["FREEZE_REASON"]})
	wantFrozen("after a restart")

	// A second freeze of the frozen key is refused, naming the first.
	s.mustRun("freeze-write", nil)
	s.mustRun("admin-sign", admin(st, 2, "freeze.json"))
	if o, e, code := s.run("admin-submit", map[string]string{"ENVELOPE": "freeze.json"}); code != 1 || !strings.Contains(e, "frozen already (audit record "+freezeSeq) {
		t.Fatalf("a second freeze of the frozen key: exit %d\n%s%s", code, o, e)
	}

	s.mustRun("freeze-find", nil)
	if got := s.get("FREEZE_SEQ"); got != freezeSeq {
		t.Fatalf("freeze-find found FREEZE_SEQ %q, the freeze's answer says %s", got, freezeSeq)
	}
	s.mustRun("unfreeze-write", nil)
	// One admin cannot lift it.
	s.mustRun("admin-sign", admin(st, 1, "unfreeze.json"))
	if o, e, code := s.run("admin-submit", map[string]string{"ENVELOPE": "unfreeze.json"}); code != 1 || !strings.Contains(e, "quorum") {
		t.Fatalf("an unfreeze signed by one admin: exit %d\n%s%s", code, o, e)
	}
	wantFrozen("after an unfreeze by one admin")
	if ans := quorum(t, s, st, "unfreeze.json"); ans["kind"] != "unfreeze" || ans["key_id"] != devstack.ExampleKeyID {
		t.Fatalf("unfreeze answer %v", ans)
	}
	signWithClient(t, s, st)
}
