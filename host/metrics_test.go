package host

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
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

// TestEnclaveCollectorHostSide: the audit backlog is the enclave's last
// record less the last on disk (never negative), absent before the store
// opened its log; the credential expiry counts down from the pushed
// credentials' expiry, absent before the first push, negative once
// expired.
func TestEnclaveCollectorHostSide(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		enclaveSeq  uint64
		persisted   uint64
		opened      bool
		expires     time.Time
		wantBacklog float64 // -1: absent
		wantExpiry  float64
	}{
		{"in step", 10, 10, true, now.Add(time.Hour), 0, 3600},
		{"behind", 15, 10, true, now.Add(90 * time.Second), 5, 90},
		{"disk ahead of a new run", 3, 10, true, now.Add(-time.Minute), 0, -60},
		{"log not opened, nothing pushed", 7, 0, false, time.Time{}, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics()
			c := m.enclave
			c.now = func() time.Time { return now }
			c.health = func(context.Context) (*proto.HealthResponse, error) {
				return &proto.HealthResponse{State: "ready", AuditSeq: tc.enclaveSeq}, nil
			}
			c.persisted = func() (uint64, bool) { return tc.persisted, tc.opened }
			c.pushed(tc.expires)
			if got := gaugeValue(t, m, "nitrosign_audit_backlog"); got != tc.wantBacklog {
				t.Errorf("backlog %v, want %v", got, tc.wantBacklog)
			}
			if got := gaugeValue(t, m, "nitrosign_credentials_expiry_seconds"); got != tc.wantExpiry {
				t.Errorf("expiry %v, want %v", got, tc.wantExpiry)
			}
		})
	}
	// Without an audit store, and before a push, neither metric.
	m := newMetrics()
	m.enclave.health = func(context.Context) (*proto.HealthResponse, error) {
		return &proto.HealthResponse{State: "ready"}, nil
	}
	if gaugeValue(t, m, "nitrosign_audit_backlog") != -1 || gaugeValue(t, m, "nitrosign_credentials_expiry_seconds") != -1 {
		t.Error("metrics of an audit store or a credential source the host does not have")
	}
}

// gaugeValue gathers m and returns the one gauge name, -1 if absent.
func gaugeValue(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if len(mf.GetMetric()) != 1 {
				t.Fatalf("%s: %d series", name, len(mf.GetMetric()))
			}
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestMetricsDecided: a decision counts toward its outcome and rule, and
// is timed by outcome; outcomes and rules outside package refusal are
// "other".
func TestMetricsDecided(t *testing.T) {
	m := newMetrics()
	start := time.Now()
	m.decided(outcomeSigned, "", start)
	m.decided(outcomePending, "", start)
	m.decided(refusal.CodePolicyDenied, refusal.RuleChains, start)
	m.decided("made_up", "made_up", start)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "nitrosign_sign_decision_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			counts[mt.GetLabel()[0].GetValue()] = mt.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{outcomeSigned: 1, outcomePending: 1, refusal.CodePolicyDenied: 1, labelOther: 1}
	if len(counts) != len(want) {
		t.Fatalf("histogram series %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d, want %d", k, counts[k], n)
		}
	}
}
