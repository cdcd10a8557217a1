package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
)

func TestRollbackRules(t *testing.T) {
	notes := "nitrosign enclave started; " + RollbackNote(refusal.RuleCheckpointRollback, "record 9 says checkpoint 3, the checkpoint is generation 1") +
		"; " + RollbackNote(refusal.RuleSeedGenerationRollback, "sealing generation 1, the checkpoint knew of 2")
	for _, tc := range []struct {
		name string
		r    Record
		want []string
	}{
		{"plain boot", Record{Kind: KindBoot, Decision: "started", Summary: "nitrosign enclave started"}, nil},
		{"mismatch boot", Record{Kind: KindBoot, Rule: "audit_checkpoint", Summary: "the host's last audit record is not this enclave's"}, nil},
		{"rule only", Record{Kind: KindBoot, Rule: refusal.RuleAuditRollback}, []string{refusal.RuleAuditRollback}},
		{"rule and notes, most severe first", Record{Kind: KindBoot, Rule: refusal.RuleCheckpointRollback, Summary: notes},
			[]string{refusal.RuleCheckpointRollback, refusal.RuleSeedGenerationRollback}},
		{"genesis", Record{Kind: KindGenesis, Rule: refusal.RuleCheckpointRollback, Summary: notes}, []string{refusal.RuleCheckpointRollback, refusal.RuleSeedGenerationRollback}},
		{"a decision naming a rollback rule is not a rollback", Record{Kind: KindDecision, Rule: refusal.RuleAuditRollback, Summary: notes}, nil},
		{"a rule name without the note form", Record{Kind: KindBoot, Summary: "no audit_rollback here"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RollbackRules(tc.r); !slices.Equal(got, tc.want) {
				t.Fatalf("RollbackRules = %v, want %v", got, tc.want)
			}
		})
	}
	r := Record{Kind: KindBoot, Summary: notes}
	if ev := RollbackEvidence(r, refusal.RuleCheckpointRollback); ev != "record 9 says checkpoint 3, the checkpoint is generation 1" {
		t.Errorf("evidence %q", ev)
	}
	if ev := RollbackEvidence(r, refusal.RuleSeedGenerationRollback); ev != "sealing generation 1, the checkpoint knew of 2" {
		t.Errorf("evidence %q", ev)
	}
	if ev := RollbackEvidence(r, refusal.RuleAuditRollback); ev != "" {
		t.Errorf("evidence of a rule not named: %q", ev)
	}
}

// rollbackLog is a log of 8 records: genesis; decisions with checkpoint
// 1, 2; a boot record naming two rollbacks (checkpoint carried over: 2); a
// decision at 3; a boot record of an enclave that continued with
// checkpoint 1 (a decrease); a decision at 1; a decision at 4.
func rollbackLog(t testing.TB) *testLog {
	t.Helper()
	l := &testLog{signer: testSigner(t, 1)}
	l.chain = newLegacyChain(l.signer, Head{})
	l.append(t, Record{TimeMS: 1, Kind: KindGenesis, Decision: "started", Summary: "genesis"}, true)
	for _, ck := range []uint64{1, 2} {
		r := sampleDecision(2)
		r.Checkpoint = ck
		l.append(t, r, true)
	}
	l.append(t, Record{TimeMS: 2, Kind: KindBoot, Decision: "started_with_rollback", Rule: refusal.RuleAuditRollback, Checkpoint: 2,
		Summary: "nitrosign enclave started; " + RollbackNote(refusal.RuleAuditRollback, "the host's log ends at seq 3, before the checkpoint's acknowledged head 5") +
			"; " + RollbackNote(refusal.RuleCheckpointRollback, "record 3 says checkpoint generation 2, the checkpoint handed back is generation 1")}, true)
	for _, ck := range []uint64{3} {
		r := sampleDecision(3)
		r.Checkpoint = ck
		l.append(t, r, true)
	}
	l.append(t, Record{TimeMS: 3, Kind: KindBoot, Decision: "started", Checkpoint: 1, Summary: "nitrosign enclave started"}, true)
	for _, ck := range []uint64{1, 4} {
		r := sampleDecision(4)
		r.Checkpoint = ck
		l.append(t, r, true)
	}
	return l
}

// TestVerifyWarnings: a log that verifies reports its rollback boot records
// and the decreases of the checkpoint member, with the evidence, in both
// signature modes and across files.
func TestVerifyWarnings(t *testing.T) {
	l := rollbackLog(t)
	want := []Warning{
		{Seq: 4, Line: 4, Kind: WarnRollback, Rules: []string{refusal.RuleAuditRollback, refusal.RuleCheckpointRollback},
			Msg: "the enclave detected at start: audit_rollback (the host's log ends at seq 3, before the checkpoint's acknowledged head 5); " +
				"checkpoint_rollback (record 3 says checkpoint generation 2, the checkpoint handed back is generation 1)"},
		{Seq: 6, Line: 6, Kind: WarnCheckpointDecrease,
			Msg: "record 6 says checkpoint generation 1 was the newest the host had acknowledged storing, but record 5 said 3: the enclave continued from an older state than the log had recorded"},
	}
	for _, m := range modes {
		rep, err := Verify(bytes.NewReader(l.bytes()), l.pub(), m.opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Warnings) != len(want) || rep.WarningsOmitted != 0 {
			t.Fatalf("%s: warnings %+v", m.name, rep.Warnings)
		}
		for i := range want {
			got := rep.Warnings[i]
			got.file = 0
			if got.Seq != want[i].Seq || got.Line != want[i].Line || got.Kind != want[i].Kind || !slices.Equal(got.Rules, want[i].Rules) || got.Msg != want[i].Msg {
				t.Errorf("%s: warning %d:\n got %+v\nwant %+v", m.name, i, got, want[i])
			}
		}
		if s := rep.Warnings[0].String(); !strings.HasPrefix(s, "line 4 (seq 4): rollback: the enclave detected at start: audit_rollback (") {
			t.Errorf("String() = %s", s)
		}
	}

	// From seq 5 on (a later segment), the decrease at 6 is still seen;
	// the boot record at 4 is not in the range.
	from := Head{Seq: 4, Hash: l.recs[3].Hash()}
	rep, err := Verify(bytes.NewReader(joinLines(l.lines[4:])), l.pub(), VerifyOptions{FromSeq: from.Seq + 1, FromHash: from.Hash})
	if err != nil || len(rep.Warnings) != 1 || rep.Warnings[0].Kind != WarnCheckpointDecrease || rep.Warnings[0].Line != 2 {
		t.Fatalf("from seq 5: %+v, %v", rep, err)
	}

	// A file's warnings name it; a file verified alone from a given head
	// cannot see a decrease at its first record (it has no previous one).
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	if err := os.WriteFile(a, joinLines(l.lines[:5]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, joinLines(l.lines[5:]), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = VerifyFiles([]string{a}, l.pub(), VerifyOptions{})
	if err != nil || len(rep.Warnings) != 1 || rep.Warnings[0].Path != a || rep.Warnings[0].Line != 4 ||
		!strings.HasPrefix(rep.Warnings[0].String(), a+":4 (seq 4): rollback: ") {
		t.Fatalf("file a: %+v, %v", rep, err)
	}
	rep, err = VerifyFiles([]string{b}, l.pub(), VerifyOptions{FromSeq: 6, FromHash: l.recs[4].Hash()})
	if err != nil || len(rep.Warnings) != 0 {
		t.Fatalf("file b: %+v, %v", rep, err)
	}
}

// TestVerifyWarningsCapped: a log full of decreases lists MaxWarnings and
// counts the rest.
func TestVerifyWarningsCapped(t *testing.T) {
	l := &testLog{signer: testSigner(t, 1)}
	l.chain = newLegacyChain(l.signer, Head{})
	n := MaxWarnings*2 + 10
	for i := range n {
		r := Record{TimeMS: 1, Kind: KindDecision, Decision: DecisionSigned, Checkpoint: uint64(2 - i%2)}
		l.append(t, r, i == n-1)
	}
	rep, err := Verify(bytes.NewReader(l.bytes()), l.pub(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != MaxWarnings || rep.WarningsOmitted != n/2-MaxWarnings {
		t.Fatalf("%d warnings listed, %d omitted", len(rep.Warnings), rep.WarningsOmitted)
	}
}
