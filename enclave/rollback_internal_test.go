package enclave

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
)

// TestDetectRollbacks: each rule fires on its evidence and only then; the
// most severe comes first; a head between the acknowledged and appended
// heads is a crash note, not a rollback.
func TestDetectRollbacks(t *testing.T) {
	h := func(seq uint64, b byte) audit.Head { return audit.Head{Seq: seq, Hash: [32]byte{b}} }
	// The checkpoint: generation 5, acknowledged head 10, appended 12,
	// sealing generation 2.
	cp := &checkpoint{Generation: 5, AuditSeq: 10, AuditHash: [32]byte{10}, AppendedSeq: 12, AppendedHash: [32]byte{12}, SealGen: 2}
	rec := func(head audit.Head, ck uint64) (*audit.Record, audit.Head) {
		return &audit.Record{Seq: head.Seq, Kind: audit.KindDecision, Checkpoint: ck}, head
	}
	type in = startInputs
	with := func(head audit.Head, ck uint64, c *checkpoint, gen uint32) in {
		r, hd := rec(head, ck)
		return in{hostRec: r, hostHead: hd, hostSent: true, cp: c, sealGen: gen, sealKeyID: "k"}
	}
	for _, tc := range []struct {
		name  string
		in    startInputs
		rules []string
		note  string // in a note, "" for none
		say   string // in the first rollback's evidence
	}{
		{"log at the acknowledged head", with(h(10, 10), 5, cp, 2), nil, "", ""},
		{"log at the appended head", with(h(12, 12), 5, cp, 2), nil, "", ""},
		{"log between the heads: a crash", with(h(11, 11), 5, cp, 2), nil, "ends at seq 11, after the acknowledged head 10", ""},
		{"another record at the appended seq: a crash", with(h(12, 99), 5, cp, 2), nil, "not past its appended head 12", ""},
		{"log past the checkpoint", with(h(20, 20), 5, cp, 2), nil, "what records 13 to 20 changed", ""},
		{"the log names an older checkpoint", with(h(12, 12), 4, cp, 2), nil, "", ""},
		{"a newer seed", with(h(12, 12), 5, cp, 3), nil, "", ""},
		{"log before the acknowledged head", with(h(9, 9), 4, cp, 2), []string{refusal.RuleAuditRollback}, "", "ends at seq 9 (hash 09"},
		{"another record at the acknowledged head", with(h(10, 11), 5, cp, 2), []string{refusal.RuleAuditRollback}, "", "the host's record 10 has hash 0b"},
		{"empty log", in{cp: cp, sealGen: 2}, []string{refusal.RuleAuditRollback}, "", "ends at no record (an empty log)"},
		{"foreign record", in{hostSent: true, cp: cp, sealGen: 2}, []string{refusal.RuleAuditRollback}, "", "ends at no record of this enclave's"},
		{"older checkpoint", with(h(30, 30), 7, cp, 2), []string{refusal.RuleCheckpointRollback}, "", "says checkpoint generation 7 was acknowledged stored, but the checkpoint handed back is generation 5"},
		{"no checkpoint", with(h(30, 30), 7, nil, 2), []string{refusal.RuleCheckpointRollback}, "", "but the host sent no checkpoint"},
		{"refused checkpoint", in{hostRec: &audit.Record{Seq: 30, Checkpoint: 7}, hostHead: h(30, 30), hostSent: true, cpRefused: "x; y", sealGen: 2},
			[]string{refusal.RuleCheckpointRollback}, "", "was refused (x, y)"},
		{"no checkpoint, none named", with(h(30, 30), 0, nil, 2), nil, "", ""},
		{"older seed", with(h(20, 20), 5, cp, 1), []string{refusal.RuleSeedGenerationRollback}, "", "sealing generation 1 (KMS key k), but checkpoint generation 5 knew of sealing generation 2"},
		{"all three, most severe first", with(h(10, 11), 7, cp, 1),
			[]string{refusal.RuleAuditRollback, refusal.RuleCheckpointRollback, refusal.RuleSeedGenerationRollback}, "", "the log was forked or altered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, notes := detectRollbacks(tc.in)
			var rules []string
			for _, r := range found {
				rules = append(rules, r.rule)
				if strings.Contains(r.evidence, "; ") {
					t.Errorf("evidence with a note separator: %q", r.evidence)
				}
			}
			if strings.Join(rules, ",") != strings.Join(tc.rules, ",") {
				t.Fatalf("rules %v, want %v", rules, tc.rules)
			}
			if tc.say != "" && !strings.Contains(found[0].evidence, tc.say) {
				t.Errorf("evidence %q does not say %q", found[0].evidence, tc.say)
			}
			all := strings.Join(notes, " | ")
			if tc.note == "" && len(notes) != 0 || tc.note != "" && !strings.Contains(all, tc.note) {
				t.Errorf("notes %q, want %q", all, tc.note)
			}
		})
	}
}

// TestCheckpointVersion1Refused: a version 1 checkpoint is refused with an
// error that says why, before anything is decrypted.
func TestCheckpointVersion1Refused(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	good, err := sealCheckpoint(bytes.NewReader(make([]byte, 64)), key, &checkpoint{Generation: 1, SealGen: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openCheckpoint(key, good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		version byte
		want    string
	}{
		{"version 1", 1, "format version 1 is not read by this enclave (version 2 adds the appended audit head and the sealing generation"},
		{"version 3", 3, "unknown format version"},
		{"version 0", 0, "unknown format version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			b[len(checkpointMagic)] = tc.version
			if _, err := openCheckpoint(key, b); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "enclave: checkpoint: ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		cp   checkpoint
		want string
	}{
		{"appended before acknowledged", checkpoint{Generation: 1, SealGen: 1, AuditSeq: 5, AppendedSeq: 4}, "appended head before the acknowledged head"},
		{"no sealing generation", checkpoint{Generation: 1}, "no sealing generation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := sealCheckpoint(bytes.NewReader(make([]byte, 64)), key, &tc.cp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := openCheckpoint(key, b); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestNoteCheckpointNeverDecreases: the generation stamped on records only
// grows, whatever order acknowledgements come in.
func TestNoteCheckpointNeverDecreases(t *testing.T) {
	var a auditLog
	for _, step := range []struct{ note, want uint64 }{{3, 3}, {2, 3}, {0, 3}, {7, 7}, {7, 7}, {6, 7}} {
		a.noteCheckpoint(step.note)
		if got := a.checkpoint.Load(); got != step.want {
			t.Fatalf("after noting %d: %d, want %d", step.note, got, step.want)
		}
	}
}
