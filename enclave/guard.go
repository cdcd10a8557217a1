package enclave

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

// allKeys is the freeze entry that freezes every key.
const allKeys = "*"

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

// freezeInfo is an active freeze: the seq of the record that froze, 0 while
// that record is owed (it could not be appended yet; settle appends it).
type freezeInfo struct {
	Key    string `cbor:"1,keyasint"`
	Seq    uint64 `cbor:"2,keyasint"`
	Reason string `cbor:"3,keyasint"`
	// Because (the key whose refusal froze) and SinceMS (when the freeze
	// took effect) are kept while the record is owed, so that it can be
	// written later, after a restart too (checkpoints carry them); they are
	// dropped once the record holds them.
	Because string `cbor:"4,keyasint,omitempty"`
	SinceMS int64  `cbor:"5,keyasint,omitempty"`
}

// record names the freeze's audit record, for messages.
func (fi freezeInfo) record() string {
	if fi.Seq == 0 {
		return "its audit record is not written yet: the host has not persisted the audit backlog"
	}
	return fmt.Sprintf("audit record %d", fi.Seq)
}

// freezes are the active freezes, sticky across restarts (in checkpoints).
type freezes struct {
	mu sync.Mutex
	m  map[string]freezeInfo
	// since is when each key (or allKeys) was last unfrozen: refusals
	// before it do not count toward the next freeze.
	since map[string]time.Time
	// owed is set while a freeze in m has no record yet (Seq 0): settle's
	// cheap test. Written with mu held.
	owed atomic.Bool
}

// countFrom returns the window over which refusals of key count: the
// policy's, shortened to the time since the last unfreeze.
func (f *freezes) countFrom(key string, now time.Time, window time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range []string{key, allKeys} {
		if t, ok := f.since[k]; ok && now.Sub(t) < window {
			window = now.Sub(t)
		}
	}
	return window
}

func (f *freezes) get(key string) (freezeInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fi, ok := f.m[allKeys]; ok {
		return fi, true
	}
	fi, ok := f.m[key]
	return fi, ok
}

func (f *freezes) list() []freezeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]freezeInfo, 0, len(f.m))
	for _, fi := range f.m {
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// set restores the freezes of a checkpoint. One without its record (a
// checkpoint sealed while the record was owed, or by an older version that
// kept such freezes with seq 0) is recorded by the next settle.
func (f *freezes) set(list []freezeInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = map[string]freezeInfo{}
	owed := false
	for _, fi := range list {
		f.m[fi.Key] = fi
		owed = owed || fi.Seq == 0
	}
	f.owed.Store(owed)
}

// afterRefusal counts a refusal of key and freezes per the policy: after
// Refusals in Window, or on any limit breach when OnLimitBreach. It
// records the freeze in v's audit log.
func (e *Enclave) afterRefusal(v *vault, rs *ruleset, key string, limitBreach bool) {
	now := e.now()
	rs.tracker.RecordRefusal(now, key)
	fr, ok := rs.pol.KeyFreeze(key)
	if !ok {
		return
	}
	var reason string
	switch {
	case limitBreach && fr.OnLimitBreach:
		reason = "an attempt over a limit"
	case fr.Refusals > 0 && uint64(rs.tracker.Refusals(now, key, e.frozen.countFrom(key, now, fr.Window))) >= fr.Refusals:
		reason = fmt.Sprintf("%d refusals within %s", fr.Refusals, fr.Window)
	default:
		return
	}
	target := key
	if fr.Scope == stateful.FreezeAll {
		target = allKeys
	}
	e.freeze(v, rs, target, key, reason)
}

// freeze freezes target (a key, or allKeys) and records it. The freeze
// holds from now on even when its record cannot be appended yet (fail
// closed): it is then kept with seq 0 and recorded by settle as soon as the
// log has room, before any other event.
func (e *Enclave) freeze(v *vault, rs *ruleset, target, because, reason string) {
	e.frozen.mu.Lock()
	defer e.frozen.mu.Unlock()
	if _, already := e.frozen.m[target]; already {
		return
	}
	now := e.now()
	fi := freezeInfo{Key: target, Reason: reason, Because: because, SinceMS: now.UnixMilli()}
	if e.frozen.m == nil {
		e.frozen.m = map[string]freezeInfo{}
	}
	_, seq, err := v.audit.appendEvent(freezeRecord(fi, rs.pol.Version(), now))
	if err != nil {
		e.frozen.m[target] = fi
		e.frozen.owed.Store(true)
		e.log.Error("frozen; the freeze's audit record is owed until the host persists the backlog", "target", target, "reason", reason, "err", err)
		return
	}
	fi.Seq, fi.Because, fi.SinceMS = seq, "", 0
	e.frozen.m[target] = fi
	e.log.Warn("frozen", "target", target, "reason", reason, "seq", seq)
}

// recordFreezes appends the records owed for freezes in force, in key
// order, stopping at the first that cannot be appended (settle tries
// again). Each freeze's seq is then its record's.
func (e *Enclave) recordFreezes(v *vault, now time.Time) {
	e.frozen.mu.Lock()
	defer e.frozen.mu.Unlock()
	targets := make([]string, 0, len(e.frozen.m))
	for k, fi := range e.frozen.m {
		if fi.Seq == 0 {
			targets = append(targets, k)
		}
	}
	sort.Strings(targets)
	pv := e.rules.Load().pol.Version()
	for _, k := range targets {
		fi := e.frozen.m[k]
		_, seq, err := v.audit.appendEvent(freezeRecord(fi, pv, now))
		if err != nil {
			return
		}
		fi.Seq, fi.Because, fi.SinceMS = seq, "", 0
		e.frozen.m[k] = fi
		e.log.Warn("frozen: the freeze's owed audit record is written", "target", k, "seq", seq)
	}
	e.frozen.owed.Store(false)
}

// freezeRecord is the record of the freeze fi, appended at now (later than
// the freeze itself when its record was owed: the summary then says since
// when it is in force).
func freezeRecord(fi freezeInfo, policyVersion uint64, now time.Time) audit.Record {
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
		key = strings.TrimPrefix(fi.Key, allKeys)
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
