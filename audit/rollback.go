package audit

import "strings"

// Rules of a boot record that names a rollback the enclave detected at
// start, from the most severe to the least. A boot record names the most
// severe that fired in its rule member and lists every one that fired in
// its summary, each as [RollbackNote] writes it, with the evidence (seqs,
// hashes, generations). The enclave freezes every key when any fires; only
// an admin quorum unfreezes.
const (
	// RuleAuditRollback: the host's log ends before the acknowledged head
	// of the checkpoint it handed back, or holds another record at that
	// seq: records the host had acknowledged persisting (and whose answers
	// may have been released) are gone from it.
	RuleAuditRollback = "audit_rollback"
	// RuleCheckpointRollback: the host handed back a checkpoint older than
	// its own last record says it had acknowledged storing (the record's
	// checkpoint member), or none, or one that does not open, while the
	// log says one was stored: limit usage, freezes, keys and policy would
	// go back.
	RuleCheckpointRollback = "checkpoint_rollback"
	// RuleSeedGenerationRollback: the sealed seed handed back is of an
	// older sealing generation than the checkpoint knew of: a re-wrap
	// (seal_rotate) was undone.
	RuleSeedGenerationRollback = "seed_generation_rollback"
)

// RollbackRuleNames are the rollback rules, the most severe first.
var RollbackRuleNames = []string{RuleAuditRollback, RuleCheckpointRollback, RuleSeedGenerationRollback}

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
