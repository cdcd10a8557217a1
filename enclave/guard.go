package enclave

import (
	"fmt"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// ruleset is the policy in force with the limit state that goes with it.
// Once the enclave is unsealed the tracker is one object for the rest of
// the run: a policy change reconfigures it in place (putInForce), so that
// no reservation, refusal count or checkpoint acknowledgement can land on
// a tracker that is no longer read.
type ruleset struct {
	pol     *policy.Policy
	tracker *stateful.Tracker
}

// newRuleset makes the ruleset of pol, carrying usage over from snapshot
// (nil: none).
func (e *Enclave) newRuleset(pol *policy.Policy, snapshot []byte, now time.Time) (*ruleset, error) {
	rules, vels := stateful.TrackerRules(pol)
	opts := stateful.TrackerOptions(pol, e.requireCheckpoint)
	var t *stateful.Tracker
	var err error
	if len(snapshot) > 0 {
		t, err = stateful.Restore(rules, vels, opts, snapshot, now)
	} else {
		t, err = stateful.NewTracker(rules, vels, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("enclave: limits: %w", err)
	}
	return &ruleset{pol: pol, tracker: t}, nil
}

// nextPolicy is a policy checked and ready to be put in force by
// putInForce: its limits are laid out, so that putting it in force cannot
// fail once its audit record is appended.
type nextPolicy struct {
	pol    *policy.Policy
	limits *stateful.Config
}

// preparePolicy checks that pol's limits can be put in force.
func (e *Enclave) preparePolicy(pol *policy.Policy) (*nextPolicy, error) {
	rules, vels := stateful.TrackerRules(pol)
	c, err := stateful.NewConfig(rules, vels, stateful.TrackerOptions(pol, e.requireCheckpoint))
	if err != nil {
		return nil, fmt.Errorf("enclave: limits: %w", err)
	}
	return &nextPolicy{pol: pol, limits: c}, nil
}

// putInForce appends rec, the event record that puts next in force, and
// puts next in force at now once it is appended (record first, then
// apply), both under the write side of policyMu. Every decision (a sign
// request's, from admit through its record; an approval's; a re-decision
// of a held request) is made under the read side, so that in the audit
// log the decisions before rec are the old policy's and those after it
// the new one's: no decision of the old policy, an approval by an
// approver it removes say, is recorded after the record of the policy
// that replaced it. Only the audit log's and the tracker's locks are
// taken inside, and neither waits: nothing here waits for the approvals
// or the freezes, which readers may hold.
func (e *Enclave) putInForce(v *vault, rec audit.Record, next *nextPolicy, now time.Time) ([]byte, uint64, error) {
	e.policyMu.Lock()
	defer e.policyMu.Unlock()
	line, seq, err := v.audit.appendEvent(rec)
	if err != nil {
		return nil, 0, err
	}
	e.swapLocked(next, now)
	return line, seq, nil
}

// swapPolicy puts next in force at now without a record (a policy
// restored from a checkpoint at the start), under the write side of
// policyMu.
func (e *Enclave) swapPolicy(next *nextPolicy, now time.Time) {
	e.policyMu.Lock()
	defer e.policyMu.Unlock()
	e.swapLocked(next, now)
}

// swapLocked reconfigures the tracker in force in place
// (stateful.Tracker.Reconfigure: usage, reservations, refusal counts and
// checkpoint bookkeeping carry over) and publishes the new ruleset, so
// that every request's decision and reservation is made wholly under the
// old policy or wholly under the new one. policyMu is held for writing.
func (e *Enclave) swapLocked(next *nextPolicy, now time.Time) {
	t := e.rules.Load().tracker
	t.Reconfigure(next.limits, now)
	e.rules.Store(&ruleset{pol: next.pol, tracker: t})
}

// spends, unlimitedGrant and needsApproval apply the stateful rules of
// pol (package stateful) to what the decision counts
// (policy.Decision.Counted): the spends it makes against the limits
// (stateful.Spends), why it must be refused for an unlimited grant of a
// token a rolling limit counts (stateful.UnlimitedGrant), and whether it
// waits for approvers (stateful.NeedsApproval).
func spends(d policy.Decision) []stateful.Spend { return stateful.Spends(d.Counted()) }

func unlimitedGrant(pol *policy.Policy, key string, d policy.Decision) (string, bool) {
	return stateful.UnlimitedGrant(pol, key, d.Counted())
}

func needsApproval(pol *policy.Policy, key string, d policy.Decision) (stateful.Approvals, bool) {
	return stateful.NeedsApproval(pol, key, d.Counted(), len(d.OperatorGrants()) > 0)
}

// afterRefusal counts a refusal of key and freezes per the policy
// (stateful.Freezes.AfterRefusal): after Refusals in Window, or on any
// limit breach when OnLimitBreach. It records the freeze in v's audit log.
func (e *Enclave) afterRefusal(v *vault, rs *ruleset, key string, limitBreach bool) {
	if target, reason, trips := e.frozen.AfterRefusal(rs.tracker, rs.pol, key, limitBreach, e.now()); trips {
		e.freeze(v, rs, target, key, reason)
	}
}

// freeze freezes target (a key, or stateful.AllKeys) and records it. The
// freeze holds from now on even when its record cannot be appended yet
// (fail closed): it is then kept with seq 0 and recorded by settle as soon
// as the log has room, before any other event.
func (e *Enclave) freeze(v *vault, rs *ruleset, target, because, reason string) {
	now := e.now()
	fi, added, err := e.frozen.Freeze(target, because, reason, now, func(fi stateful.FreezeInfo) (uint64, error) {
		_, seq, err := v.audit.appendEvent(freezeRecord(fi, rs.pol.Version(), now))
		return seq, err
	})
	switch {
	case !added:
	case err != nil:
		e.log.Error("frozen; the freeze's audit record is owed until the host persists the backlog", "target", target, "reason", reason, "err", err)
	default:
		e.log.Warn("frozen", "target", target, "reason", reason, "seq", fi.Seq)
	}
}

// recordFreezes appends the records owed for freezes in force, in key
// order, stopping at the first that cannot be appended (settle tries
// again). Each freeze's seq is then its record's.
func (e *Enclave) recordFreezes(v *vault, now time.Time) {
	pv := e.rules.Load().pol.Version()
	e.frozen.RecordOwed(func(fi stateful.FreezeInfo) (uint64, error) {
		_, seq, err := v.audit.appendEvent(freezeRecord(fi, pv, now))
		if err == nil {
			e.log.Warn("frozen: the freeze's owed audit record is written", "target", fi.Key, "seq", seq)
		}
		return seq, err
	})
}

// freezeRecord is the record of the freeze fi, appended at now (later than
// the freeze itself when its record was owed: the summary then says since
// when it is in force).
func freezeRecord(fi stateful.FreezeInfo, policyVersion uint64, now time.Time) audit.Record {
	what := describeTarget(fi.Key)
	var sum string
	switch {
	case fi.Because != "":
		sum = fmt.Sprintf("%s frozen after %s (key %s); only an admin quorum unfreezes it", what, fi.Reason, fi.Because)
	case fi.SinceMS != 0: // no key caused it (a rollback detected at start)
		sum = fmt.Sprintf("%s frozen after %s; only an admin quorum unfreezes it", what, fi.Reason)
	default:
		sum = fmt.Sprintf("%s frozen (%s), as restored from a sealed checkpoint that held no record of it; only an admin quorum unfreezes it", what, fi.Reason)
	}
	if fi.SinceMS != 0 && fi.SinceMS != now.UnixMilli() {
		sum += fmt.Sprintf("; recorded late: in force since %s, when its record could not be appended", msTime(fi.SinceMS))
	}
	key := fi.Because
	if key == "" {
		key = strings.TrimPrefix(fi.Key, stateful.AllKeys)
	}
	return audit.Record{
		TimeMS:        now.UnixMilli(),
		Kind:          audit.KindFreeze,
		Key:           key,
		Summary:       sum,
		Decision:      "frozen",
		Rule:          refusal.RuleFrozen,
		PolicyVersion: policyVersion,
	}
}
