package enclave

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// ruleset is the policy in force with the limit state that goes with it.
// Once the enclave is unsealed the tracker is one object for the rest of
// the run: a policy change reconfigures it in place (guard.putInForce), so
// that no reservation, refusal count or checkpoint acknowledgement can
// land on a tracker that is no longer read.
type ruleset struct {
	pol     *policy.Policy
	tracker *stateful.Tracker
}

// unlimitedGrant and needsApproval apply the stateful rules of rs's policy
// (package stateful) to what the decision d of a request for key counts
// (d.counted, policy.Decision.Counted, computed once by decide): why it
// must be refused for an unlimited grant of a token a rolling limit counts
// (stateful.UnlimitedGrant), and whether it waits for approvers, under
// which rule (stateful.NeedsApproval). spends is what it spends against
// the limits (stateful.Spends).
func (rs *ruleset) unlimitedGrant(key string, d *decided) (string, bool) {
	return stateful.UnlimitedGrant(rs.pol, key, d.counted)
}

func (rs *ruleset) needsApproval(key string, d *decided) (stateful.Approvals, bool) {
	return stateful.NeedsApproval(rs.pol, key, d.counted, len(d.decision.OperatorGrants()) > 0)
}

func spends(d *decided) []stateful.Spend { return stateful.Spends(d.counted) }

// eventLog is what the guard needs of the audit log: appending event
// records (a policy change's, a freeze's). It is passed in by the caller,
// so that the guard holds no audit log of its own (the log belongs to the
// vault the request runs with).
type eventLog interface {
	appendEvent(audit.Record) ([]byte, uint64, error)
}

// guard is the rules in force: the policy and its limit state (rules),
// the freezes, and the lock that makes each decision atomic against a
// policy change (mu). Every decision reads them; only governance (a
// policy change, a checkpoint restored at unseal) replaces the policy,
// only a refusal past the policy's threshold or a rollback adds a freeze,
// and only an admin quorum lifts one (unfreeze).
type guard struct {
	// rules is the policy in force and its limit state.
	rules atomic.Pointer[ruleset]
	// mu makes each decision atomic against a policy change: a sign
	// request holds it for reading from loading the rules until its
	// record is appended (Enclave.sign, admit), an approval, a
	// re-decision of the held requests and their expiry likewise;
	// putInForce holds it for writing while it appends a policy change's
	// record and puts the policy in force.
	mu sync.RWMutex
	// frozen are the freezes in force (with their own lock, taken after
	// mu and the approvals' lock).
	frozen stateful.Freezes
	// requireCheckpoint, when > 0, is how many transactions may be signed
	// beyond the newest checkpoint the host acknowledged storing.
	requireCheckpoint int
	log               *slog.Logger
}

// init puts pol in force, with limits from zero, at now.
func (g *guard) init(pol *policy.Policy, requireCheckpoint int, log *slog.Logger, now time.Time) error {
	g.requireCheckpoint, g.log = requireCheckpoint, log
	rs, err := g.newRuleset(pol, nil, now)
	if err != nil {
		return err
	}
	g.rules.Store(rs)
	return nil
}

// inForce is the ruleset in force. A decision loads it once, under the
// read side of mu, and decides wholly under it.
func (g *guard) inForce() *ruleset { return g.rules.Load() }

// newRuleset makes the ruleset of pol, carrying usage over from snapshot
// (nil: none).
func (g *guard) newRuleset(pol *policy.Policy, snapshot []byte, now time.Time) (*ruleset, error) {
	rules, vels := stateful.TrackerRules(pol)
	opts := stateful.TrackerOptions(pol, g.requireCheckpoint)
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

// restoreLimits replaces the limit state in force with the usage of a
// checkpoint's snapshot, under the policy in force (at unseal, before any
// request is decided). On error nothing changes.
func (g *guard) restoreLimits(snapshot []byte, now time.Time) error {
	rs, err := g.newRuleset(g.inForce().pol, snapshot, now)
	if err != nil {
		return err
	}
	g.rules.Store(rs)
	return nil
}

// nextPolicy is a policy checked and ready to be put in force by
// putInForce: its limits are laid out, so that putting it in force cannot
// fail once its audit record is appended.
type nextPolicy struct {
	pol    *policy.Policy
	limits *stateful.Config
}

// prepare checks that pol's limits can be put in force.
func (g *guard) prepare(pol *policy.Policy) (*nextPolicy, error) {
	rules, vels := stateful.TrackerRules(pol)
	c, err := stateful.NewConfig(rules, vels, stateful.TrackerOptions(pol, g.requireCheckpoint))
	if err != nil {
		return nil, fmt.Errorf("enclave: limits: %w", err)
	}
	return &nextPolicy{pol: pol, limits: c}, nil
}

// putInForce appends rec, the event record that puts next in force, to
// log, and puts next in force at now once it is appended (record first,
// then apply), both under the write side of mu. Every decision (a sign
// request's, from admit through its record; an approval's; a re-decision
// of a held request) is made under the read side, so that in the audit
// log the decisions before rec are the old policy's and those after it
// the new one's: no decision of the old policy, an approval by an
// approver it removes say, is recorded after the record of the policy
// that replaced it. Only the audit log's and the tracker's locks are
// taken inside, and neither waits: nothing here waits for the approvals
// or the freezes, which readers may hold.
func (g *guard) putInForce(log eventLog, rec audit.Record, next *nextPolicy, now time.Time) ([]byte, uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	line, seq, err := log.appendEvent(rec)
	if err != nil {
		return nil, 0, err
	}
	g.swapLocked(next, now)
	return line, seq, nil
}

// swap puts next in force at now without a record (a policy restored
// from a checkpoint at the start), under the write side of mu.
func (g *guard) swap(next *nextPolicy, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.swapLocked(next, now)
}

// swapLocked reconfigures the tracker in force in place
// (stateful.Tracker.Reconfigure: usage, reservations, refusal counts and
// checkpoint bookkeeping carry over) and publishes the new ruleset, so
// that every request's decision and reservation is made wholly under the
// old policy or wholly under the new one. mu is held for writing.
func (g *guard) swapLocked(next *nextPolicy, now time.Time) {
	t := g.rules.Load().tracker
	t.Reconfigure(next.limits, now)
	g.rules.Store(&ruleset{pol: next.pol, tracker: t})
}

// afterRefusal counts a refusal of key at now and freezes per the policy
// of rs (stateful.Freezes.AfterRefusal): after Refusals in Window, or on
// any limit breach when OnLimitBreach. It records the freeze in log.
func (g *guard) afterRefusal(log eventLog, rs *ruleset, key string, limitBreach bool, now time.Time) {
	if target, reason, trips := g.frozen.AfterRefusal(rs.tracker, rs.pol, key, limitBreach, now); trips {
		g.freeze(log, rs, target, key, reason, now)
	}
}

// freeze freezes target (a key, or stateful.AllKeys) at now and records
// it in log. The freeze holds from now on even when its record cannot be
// appended yet (fail closed): it is then kept with seq 0 and recorded by
// the tick (recordFreezes) as soon as the log has room, before any other
// event.
func (g *guard) freeze(log eventLog, rs *ruleset, target, because, reason string, now time.Time) {
	fi, added, err := g.frozen.Freeze(target, because, reason, now, func(fi stateful.FreezeInfo) (uint64, error) {
		_, seq, err := log.appendEvent(freezeRecord(fi, rs.pol.Version(), now))
		return seq, err
	})
	switch {
	case !added:
	case err != nil:
		g.log.Error("frozen; the freeze's audit record is owed until the host persists the backlog", "target", target, "reason", reason, "err", err)
	default:
		g.log.Warn("frozen", "target", target, "reason", reason, "seq", fi.Seq)
	}
}

// recordFreezes appends to log the records owed for freezes in force, in
// key order, stopping at the first that cannot be appended (the next tick
// tries again). Each freeze's seq is then its record's.
func (g *guard) recordFreezes(log eventLog, now time.Time) {
	pv := g.inForce().pol.Version()
	g.frozen.RecordOwed(func(fi stateful.FreezeInfo) (uint64, error) {
		_, seq, err := log.appendEvent(freezeRecord(fi, pv, now))
		if err == nil {
			g.log.Warn("frozen: the freeze's owed audit record is written", "target", fi.Key, "seq", seq)
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
