package host

import (
	"testing"

	"github.com/nitrosign/nitrosign/audit"
)

// rollbackCounts gathers nitrosign_audit_rollbacks_total by rule.
func rollbackCounts(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "nitrosign_audit_rollbacks_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "rule" {
					out[l.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestMetricsObserveRecord: boot records naming rollbacks count each rule
// they list; other records count nothing; every rule is exported from 0.
func TestMetricsObserveRecord(t *testing.T) {
	m := newMetrics()
	want := map[string]float64{audit.RuleAuditRollback: 0, audit.RuleCheckpointRollback: 0, audit.RuleSeedGenerationRollback: 0}
	if got := rollbackCounts(t, m); len(got) != 3 || got[audit.RuleAuditRollback] != 0 {
		t.Fatalf("before any record: %v, want %v", got, want)
	}
	notes := audit.RollbackNote(audit.RuleAuditRollback, "log before the head") + "; " + audit.RollbackNote(audit.RuleSeedGenerationRollback, "generation 1 < 2")
	for _, r := range []audit.Record{
		{Kind: audit.KindBoot, Decision: "started"},
		{Kind: audit.KindBoot, Decision: "started_with_rollback", Rule: audit.RuleCheckpointRollback},
		{Kind: audit.KindBoot, Decision: "started_with_rollback", Rule: audit.RuleAuditRollback, Summary: notes},
		{Kind: audit.KindDecision, Rule: audit.RuleAuditRollback, Summary: notes}, // not a boot record
		{Kind: audit.KindGenesis, Decision: "started_with_rollback", Rule: audit.RuleAuditRollback},
	} {
		m.observeRecord(r)
	}
	want = map[string]float64{audit.RuleAuditRollback: 2, audit.RuleCheckpointRollback: 1, audit.RuleSeedGenerationRollback: 1}
	got := rollbackCounts(t, m)
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for rule, n := range want {
		if got[rule] != n {
			t.Errorf("%s: %v, want %v", rule, got[rule], n)
		}
	}
}
