package host

import (
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
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
	want := map[string]float64{refusal.RuleAuditRollback: 0, refusal.RuleCheckpointRollback: 0, refusal.RuleSeedGenerationRollback: 0}
	if got := rollbackCounts(t, m); len(got) != 3 || got[refusal.RuleAuditRollback] != 0 {
		t.Fatalf("before any record: %v, want %v", got, want)
	}
	notes := audit.RollbackNote(refusal.RuleAuditRollback, "log before the head") + "; " + audit.RollbackNote(refusal.RuleSeedGenerationRollback, "generation 1 < 2")
	for _, r := range []audit.Record{
		{Kind: audit.KindBoot, Decision: "started"},
		{Kind: audit.KindBoot, Decision: "started_with_rollback", Rule: refusal.RuleCheckpointRollback},
		{Kind: audit.KindBoot, Decision: "started_with_rollback", Rule: refusal.RuleAuditRollback, Summary: notes},
		{Kind: audit.KindDecision, Rule: refusal.RuleAuditRollback, Summary: notes}, // not a boot record
		{Kind: audit.KindGenesis, Decision: "started_with_rollback", Rule: refusal.RuleAuditRollback},
	} {
		m.observeRecord(r)
	}
	want = map[string]float64{refusal.RuleAuditRollback: 2, refusal.RuleCheckpointRollback: 1, refusal.RuleSeedGenerationRollback: 1}
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

// TestMetricsLabelsBounded: label values from the enclave's answers are
// the host's outcomes and the codes and rules package refusal defines;
// anything else, however code-like, is "other".
func TestMetricsLabelsBounded(t *testing.T) {
	for _, code := range refusal.Codes() {
		if got := outcomeLabel(code); got != code {
			t.Errorf("outcomeLabel(%q) = %q", code, got)
		}
	}
	for _, o := range []string{outcomeOK, outcomeSigned, outcomePending} {
		if got := outcomeLabel(o); got != o {
			t.Errorf("outcomeLabel(%q) = %q", o, got)
		}
	}
	for _, rule := range append(refusal.Rules(), "") {
		if got := ruleLabel(rule); got != rule {
			t.Errorf("ruleLabel(%q) = %q", rule, got)
		}
	}
	for _, bad := range []string{"bad_request_2", "Policy_denied", "frozen\n", "x", strings.Repeat("a", 1000)} {
		if got := outcomeLabel(bad); got != labelOther {
			t.Errorf("outcomeLabel(%q) = %q, want other", bad, got)
		}
		if got := ruleLabel(bad); got != labelOther {
			t.Errorf("ruleLabel(%q) = %q, want other", bad, got)
		}
	}
	if got := outcomeLabel(""); got != labelOther {
		t.Errorf(`outcomeLabel("") = %q, want other`, got)
	}
}
