package stateful

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// AllKeys is the freeze target that freezes every key (a freeze of scope
// FreezeAll).
const AllKeys = "*"

// FreezeInfo is an active freeze: the seq of the audit record that froze,
// 0 while that record is owed (it could not be appended yet; the enclave
// appends it with [Freezes.RecordOwed]). Sealed checkpoints carry it as
// CBOR with these keys.
type FreezeInfo struct {
	// Key is the target: a key, or AllKeys.
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

// Record names the freeze's audit record, for messages.
func (fi FreezeInfo) Record() string {
	if fi.Seq == 0 {
		return "its audit record is not written yet: the host has not persisted the audit backlog"
	}
	return fmt.Sprintf("audit record %d", fi.Seq)
}

// Freezes are the active freezes, sticky across restarts (the enclave
// seals [Freezes.List] in its checkpoints and restores it with
// [Freezes.Set]). A freeze and its audit record go together: the methods
// that add or lift one call back to append the record with the freezes
// locked, so that no other freeze or unfreeze comes between. The zero
// value has none; it is safe for concurrent use.
type Freezes struct {
	mu sync.Mutex
	m  map[string]FreezeInfo
	// since is when each key (or AllKeys) was last unfrozen: refusals
	// before it do not count toward the next freeze.
	since map[string]time.Time
	// owed is set while a freeze in m has no record yet (Seq 0): the
	// enclave's cheap test before RecordOwed. Written with mu held.
	owed atomic.Bool
}

// Owed reports whether a freeze's record is owed.
func (f *Freezes) Owed() bool { return f.owed.Load() }

// countFrom returns the window over which refusals of key count: the
// policy's, shortened to the time since the last unfreeze.
func (f *Freezes) countFrom(key string, now time.Time, window time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range []string{key, AllKeys} {
		if t, ok := f.since[k]; ok && now.Sub(t) < window {
			window = now.Sub(t)
		}
	}
	return window
}

// Get returns the freeze that holds key: the freeze of every key, or
// key's own.
func (f *Freezes) Get(key string) (FreezeInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fi, ok := f.m[AllKeys]; ok {
		return fi, true
	}
	fi, ok := f.m[key]
	return fi, ok
}

// List returns the freezes in force, by target.
func (f *Freezes) List() []FreezeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FreezeInfo, 0, len(f.m))
	for _, fi := range f.m {
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Set restores the freezes of a checkpoint. One without its record (a
// checkpoint sealed while the record was owed, or by an older version that
// kept such freezes with seq 0) is owed: RecordOwed records it.
func (f *Freezes) Set(list []FreezeInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = map[string]FreezeInfo{}
	owed := false
	for _, fi := range list {
		f.m[fi.Key] = fi
		owed = owed || fi.Seq == 0
	}
	f.owed.Store(owed)
}

// AfterRefusal counts a refusal of key at now in t and returns the freeze
// the freeze rule of key in src calls for, if any: after Refusals within
// Window (refusals before the last unfreeze of key, or of every key, do
// not count), or on any limit breach (limitBreach) when OnLimitBreach. The
// target is key, or AllKeys for a rule of scope FreezeAll. The caller
// freezes it with Freeze.
func (f *Freezes) AfterRefusal(t *Tracker, src Source, key string, limitBreach bool, now time.Time) (target, reason string, trips bool) {
	t.RecordRefusal(now, key)
	fr := view(src, key).Freeze
	if fr == nil {
		return "", "", false
	}
	switch {
	case limitBreach && fr.OnLimitBreach:
		reason = "an attempt over a limit"
	case fr.Refusals > 0 && uint64(t.Refusals(now, key, f.countFrom(key, now, fr.Window))) >= fr.Refusals:
		reason = fmt.Sprintf("%d refusals within %s", fr.Refusals, fr.Window)
	default:
		return "", "", false
	}
	target = key
	if fr.Scope == FreezeAll {
		target = AllKeys
	}
	return target, reason, true
}

// Freeze freezes target (a key, or AllKeys) at now, because of key because
// ("" when no key caused it), unless it is frozen already (added false).
// record appends the freeze's audit record and returns its seq; it is
// called with f locked. The freeze holds even when record fails (fail
// closed): it is then kept with seq 0, its record owed, and Freeze returns
// record's error.
func (f *Freezes) Freeze(target, because, reason string, now time.Time, record func(FreezeInfo) (uint64, error)) (fi FreezeInfo, added bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, already := f.m[target]; already {
		return FreezeInfo{}, false, nil
	}
	fi = FreezeInfo{Key: target, Reason: reason, Because: because, SinceMS: now.UnixMilli()}
	if f.m == nil {
		f.m = map[string]FreezeInfo{}
	}
	seq, err := record(fi)
	if err != nil {
		f.m[target] = fi
		f.owed.Store(true)
		return fi, true, err
	}
	fi.Seq, fi.Because, fi.SinceMS = seq, "", 0
	f.m[target] = fi
	return fi, true, nil
}

// RecordOwed appends the records owed for freezes in force, in target
// order, with record (called with f locked), stopping at the first that
// fails (the caller tries again later). Each freeze's seq is then its
// record's.
func (f *Freezes) RecordOwed(record func(FreezeInfo) (uint64, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	targets := make([]string, 0, len(f.m))
	for k, fi := range f.m {
		if fi.Seq == 0 {
			targets = append(targets, k)
		}
	}
	sort.Strings(targets)
	for _, k := range targets {
		fi := f.m[k]
		seq, err := record(fi)
		if err != nil {
			return
		}
		fi.Seq, fi.Because, fi.SinceMS = seq, "", 0
		f.m[k] = fi
	}
	f.owed.Store(false)
}

// Unfreeze lifts the freeze made by audit record seq. It returns its
// target, or "" when no freeze in force was made by record seq, with owed
// then listing the targets whose freeze's record is owed (in order: the
// freeze meant may be one of them). record appends the unfreeze's audit
// record, called with f locked; the freeze is lifted only if it succeeds
// (else Unfreeze returns its error), and refusals of the target before
// now() no longer count toward its next freeze.
func (f *Freezes) Unfreeze(seq uint64, now time.Time, record func(target string) error) (target string, owed []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, fi := range f.m {
		if fi.Seq == seq {
			target = k
		}
		if fi.Seq == 0 {
			owed = append(owed, k)
		}
	}
	if target == "" {
		sort.Strings(owed)
		return "", owed, nil
	}
	if err := record(target); err != nil {
		return target, nil, err
	}
	delete(f.m, target)
	if f.since == nil {
		f.since = map[string]time.Time{}
	}
	f.since[target] = now
	return target, nil, nil
}
