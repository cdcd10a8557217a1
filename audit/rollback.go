package audit

import (
	"strings"

	"github.com/nitrosign/nitrosign/api/refusal"
)

// RollbackRuleNames are the rules of a boot record that names a rollback
// the enclave detected at start (package refusal defines them), the most
// severe first. A boot record names the most severe that fired in its rule
// member and lists every one that fired in its summary, each as
// [RollbackNote] writes it, with the evidence (seqs, hashes, generations).
// The enclave freezes every key when any fires; only an admin quorum
// unfreezes.
var RollbackRuleNames = []string{refusal.RuleAuditRollback, refusal.RuleCheckpointRollback, refusal.RuleSeedGenerationRollback}

// RollbackNote is how a boot record's summary lists one detected rollback:
// "rollback RULE: EVIDENCE".
func RollbackNote(rule, evidence string) string {
	return "rollback " + rule + ": " + evidence
}

// RollbackRules returns the rollback rules a boot (or genesis) record
// names, in its rule member or as notes in its summary, the most severe
// first; nil for any other record. Only the enclave writes a boot record's
// summary, so a record that verifies says what the enclave detected.
func RollbackRules(r Record) []string {
	if r.Kind != KindBoot && r.Kind != KindGenesis {
		return nil
	}
	var out []string
	for _, rule := range RollbackRuleNames {
		if r.Rule == rule || strings.Contains(r.Summary, RollbackNote(rule, "")) {
			out = append(out, rule)
		}
	}
	return out
}

// RollbackEvidence returns the evidence the summary gives for rule (the
// text of its note up to the next "; "), or "" when it gives none.
func RollbackEvidence(r Record, rule string) string {
	_, after, ok := strings.Cut(r.Summary, RollbackNote(rule, ""))
	if !ok {
		return ""
	}
	ev, _, _ := strings.Cut(after, "; ")
	return ev
}
