package enclave

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/limits"
	"github.com/nitrosign/nitrosign/policy"
)

// Rules of the stateful checks, as refusals name them.
const (
	// RuleFrozen: the key (or every key) is frozen; only an admin quorum
	// unfreezes it.
	RuleFrozen = "frozen"
	// RuleRollingLimit: the request would exceed a rolling-window limit.
	RuleRollingLimit = "rolling_limit"
	// RuleVelocity: the request would exceed the key's transaction count
	// in its window.
	RuleVelocity = "velocity"
	// RuleApprovals: the approvals store is full (fail closed).
	RuleApprovals = "approvals"
)

// allKeys is the freeze entry that freezes every key.
const allKeys = "*"

// ruleset is the policy in force with the limit state that goes with it;
// both change together (a policy change restores the usage into trackers
// for its rules).
type ruleset struct {
	pol     *policy.Policy
	tracker *limits.Tracker
}

// limitRules returns the limits package's rules for pol.
func limitRules(pol *policy.Policy) ([]limits.Rule, []limits.Velocity) {
	var rules []limits.Rule
	var vels []limits.Velocity
	for _, k := range pol.KeyIDs() {
		for i, l := range pol.KeyLimits(k) {
			rules = append(rules, limits.Rule{
				ID: fmt.Sprintf("%s:%s:%d", RuleRollingLimit, k, i), Key: k,
				ChainID: l.ChainID, Asset: l.Asset, Destination: l.Destination, Window: l.Window, Max: l.Max,
			})
		}
		if v, ok := pol.KeyVelocity(k); ok {
			vels = append(vels, limits.Velocity{ID: RuleVelocity + ":" + k, Key: k, Window: v.Window, MaxTransactions: v.MaxTransactions})
		}
	}
	return rules, vels
}

// limitsOptions are the tracker's options: refusals are kept as long as
// the longest freeze window needs, and with requireEvery > 0 the tracker
// refuses once that many transactions are beyond the newest checkpoint the
// host acknowledged storing (see docs/limits.md, the replay bound).
func limitsOptions(pol *policy.Policy, requireEvery int) limits.Options {
	o := limits.Options{RefusalWindow: limits.DefaultRefusalWindow}
	for _, k := range pol.KeyIDs() {
		if fr, ok := pol.KeyFreeze(k); ok && fr.Window > o.RefusalWindow {
			o.RefusalWindow = fr.Window
		}
	}
	if requireEvery > 0 {
		o.RequireFresh, o.CheckpointEvery = true, requireEvery
	}
	return o
}

// newRuleset makes the ruleset of pol, carrying usage over from snapshot
// (nil: none).
func (e *Enclave) newRuleset(pol *policy.Policy, snapshot []byte, now time.Time) (*ruleset, error) {
	rules, vels := limitRules(pol)
	opts := limitsOptions(pol, e.requireCheckpoint)
	var t *limits.Tracker
	var err error
	if len(snapshot) > 0 {
		t, err = limits.Restore(rules, vels, opts, snapshot, now)
	} else {
		t, err = limits.New(rules, vels, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("enclave: limits: %w", err)
	}
	return &ruleset{pol: pol, tracker: t}, nil
}

// ruleName maps a limit refusal to the rule a refusal names.
func ruleName(id string) string {
	switch {
	case strings.HasPrefix(id, RuleRollingLimit):
		return RuleRollingLimit
	case strings.HasPrefix(id, RuleVelocity):
		return RuleVelocity
	default:
		return id
	}
}

// spends are the movements a decision makes, for the limits: every
// movement counts against the signing key's limits, including those of a
// Safe the key signs for (the key is what moves them).
func spends(d policy.Decision) []limits.Spend {
	out := make([]limits.Spend, 0, len(d.Movements))
	for _, m := range d.Movements {
		if m.TokenID != nil { // NFTs: counted by the transfer rules, not the amount limits
			continue
		}
		out = append(out, limits.Spend{ChainID: m.ChainID, Asset: m.Asset, To: m.To, Amount: m.Amount})
	}
	return out
}

// freezeInfo is an active freeze: the seq of the record that froze.
type freezeInfo struct {
	Key    string `cbor:"1,keyasint"`
	Seq    uint64 `cbor:"2,keyasint"`
	Reason string `cbor:"3,keyasint"`
}

// freezes are the active freezes, sticky across restarts (in checkpoints).
type freezes struct {
	mu sync.Mutex
	m  map[string]freezeInfo
	// since is when each key (or allKeys) was last unfrozen: refusals
	// before it do not count toward the next freeze.
	since map[string]time.Time
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

func (f *freezes) set(list []freezeInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = map[string]freezeInfo{}
	for _, fi := range list {
		f.m[fi.Key] = fi
	}
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
	if fr.Scope == policy.FreezeAll {
		target = allKeys
	}
	e.freeze(v, rs, target, key, reason)
}

// freeze freezes target (a key, or allKeys) and records it.
func (e *Enclave) freeze(v *vault, rs *ruleset, target, because, reason string) {
	e.frozen.mu.Lock()
	defer e.frozen.mu.Unlock()
	if _, already := e.frozen.m[target]; already {
		return
	}
	what := "key " + target
	if target == allKeys {
		what = "every key"
	}
	by := ""
	if because != "" { // "": no key caused it (a rollback at start)
		by = " (key " + because + ")"
	}
	_, seq, err := v.audit.append(audit.Record{
		TimeMS:        nowMS(e.now),
		Kind:          audit.KindFreeze,
		Key:           because,
		Summary:       fmt.Sprintf("%s frozen after %s%s; only an admin quorum unfreezes it", what, reason, by),
		Decision:      "frozen",
		Rule:          RuleFrozen,
		PolicyVersion: rs.pol.Version(),
	})
	if err != nil {
		// The freeze holds even if it could not be recorded now: fail
		// closed. seq 0 names no record; an unfreeze then names 0.
		e.log.Error("freeze not recorded", "err", err)
	}
	if e.frozen.m == nil {
		e.frozen.m = map[string]freezeInfo{}
	}
	e.frozen.m[target] = freezeInfo{Key: target, Seq: seq, Reason: reason}
	e.log.Warn("frozen", "target", target, "reason", reason, "seq", seq)
}

// needsApproval returns the key's approval rule when a movement exceeds one
// of its thresholds.
func needsApproval(pol *policy.Policy, key string, d policy.Decision) (policy.Approvals, bool) {
	ap, ok := pol.KeyApprovals(key)
	if !ok || ap.Quorum == 0 {
		return ap, false
	}
	for _, m := range d.Movements {
		for _, th := range ap.Above {
			if th.ChainID == m.ChainID && th.Asset == m.Asset && m.Amount.Cmp(th.Amount) > 0 {
				return ap, true
			}
		}
	}
	return ap, false
}
