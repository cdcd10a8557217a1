package stateful

import (
	"math/big"
	"slices"
	"sync/atomic"
	"time"
)

// Config is a configuration of a Tracker (its rules, velocities and
// options), checked and laid out by NewConfig so that putting it in force
// with Tracker.Reconfigure cannot fail: a caller that must record a change
// before making it (the enclave appends an audit record first) checks it
// with NewConfig, records it, then applies it. A Config may be applied more
// than once, to one Tracker or several; the layout NewConfig built serves
// the first Reconfigure, and later ones build their own.
type Config struct {
	rules []TrackedLimit
	vels  []TrackedVelocity
	opts  Options
	// next is a Tracker New built from the configuration, holding nothing;
	// the first Reconfigure adopts its layout (taken is then set).
	next  *Tracker
	taken atomic.Bool
}

// NewConfig checks rules, velocities and opts as New does and returns them
// ready for Reconfigure. It keeps copies: later changes to the caller's
// values do not affect it.
func NewConfig(rules []TrackedLimit, velocities []TrackedVelocity, opts Options) (*Config, error) {
	nt, err := NewTracker(rules, velocities, opts)
	if err != nil {
		return nil, err
	}
	c := &Config{rules: slices.Clone(rules), vels: slices.Clone(velocities), opts: opts, next: nt}
	for i := range c.rules {
		r := &c.rules[i]
		r.Max = new(big.Int).Set(r.Max)
		if r.Destination != nil {
			d := *r.Destination
			r.Destination = &d
		}
	}
	return c, nil
}

// layout returns a Tracker holding nothing, laid out for c, whose
// structures the caller may take over.
func (c *Config) layout() *Tracker {
	if c.taken.CompareAndSwap(false, true) {
		return c.next
	}
	nt, err := NewTracker(c.rules, c.vels, c.opts)
	if err != nil { // NewConfig built the same copies without error
		panic("limits: a checked configuration no longer builds: " + err.Error())
	}
	return nt
}

// Reconfigure puts c in force in t at now, in place, under t's lock: a
// Reserve, Check, RecordRefusal or Refusals runs entirely under the old
// configuration or entirely under the new one, and none of t's state is
// lost in between.
//
//   - A track whose scope (key, chain, asset, destination or "any", or the
//     key for velocity) and window are unchanged, and whose bucket width is
//     too, is kept as it is: the same object, with its usage and every
//     outstanding Reservation's amounts in it, so that their Commit and
//     Release act on the live state. A change of a rule's Max or ID, or of
//     the policy's version alone, keeps every track.
//   - A new track takes the usage of t's tracks of the same scope as
//     Restore takes a snapshot's (the same window, else the shortest longer
//     one, else the longest shorter one, moved conservatively into its
//     buckets), so that it never counts less than was spent in its window
//     and t saw.
//   - A track no rule reads any more is dropped. A Reservation holding
//     amounts in it stays harmless: its Commit and Release change nothing
//     that is read in it.
//   - A Reservation made before the change and released after it is taken
//     out of the new tracks that took its amounts too (through any chain of
//     changes), in the bucket its amounts were moved to: it gives back
//     exactly what it added, never more. (The link from a track to the
//     tracks that took its usage is forgotten once those buckets have left
//     their windows; a release can no longer change anything there.)
//   - Refusal counts are kept, moved into new buckets if the refusal window
//     or its bucket width changes, with keys beyond the new
//     Options.MaxRefusalKeys counted in the overflow counter.
//   - The checkpoint bookkeeping (generation, transactions reserved since
//     the newest checkpoint and the newest acknowledged one, checkpoints
//     awaiting acknowledgement, dirty) is untouched: a checkpoint taken
//     before the change is acknowledged as before, and its snapshot,
//     restored under the new rules, gives what Reconfigure gives (Restore
//     carries usage by scope the same way).
//
// The new options apply from now on (CheckpointEvery, RequireFresh and the
// rest).
func (t *Tracker) Reconfigure(c *Config, now time.Time) {
	n := c.layout() // allocated outside t's lock
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.clock(now)
	t.config++

	// The usage of every current track, as candidates for the new tracks,
	// and the tracks that can be kept as they are.
	kept := make(map[trackID]*track, len(t.tracks))
	cands := map[scope][]*snapTrack{}
	for _, tr := range t.tracks {
		tr.advance(ns)
		kept[tr.id] = tr
		tr.pruneCopies(ns)
		if bs := liveBuckets(tr, ns); len(bs) > 0 {
			cands[tr.id.scope] = append(cands[tr.id.scope], &snapTrack{id: tr.id, width: tr.width, buckets: bs, src: tr})
		}
	}
	repl := make(map[*track]*track, len(n.tracks))
	for i, tr := range n.tracks {
		if old := kept[tr.id]; old != nil && old.width == tr.width {
			old.header = tr.header // the same bytes: the same id
			repl[tr] = old
			n.tracks[i] = old
			continue
		}
		tr.advance(ns)
		bs, from := pick(tr, cands[tr.id.scope], ns)
		for _, b := range bs {
			tr.add(b.k, b.amt) // within 2^256: one track's live usage
		}
		if from != nil {
			from.src.copies = append(from.src.copies, trackCopy{dst: tr, gen: t.config, at: ns, low: from.src.low})
		}
	}
	if len(repl) > 0 {
		swap := func(trs []*track) {
			for i, tr := range trs {
				if old, ok := repl[tr]; ok {
					trs[i] = old
				}
			}
		}
		for _, ks := range n.keys {
			swap(ks.tracks)
			swap(ks.vtracks)
		}
		for id, r := range n.rules {
			if old, ok := repl[r.tr]; ok {
				r.tr = old
				n.rules[id] = r
			}
		}
	}
	t.opts, t.keys, t.tracks, t.rules, t.ruleOrder = n.opts, n.keys, n.tracks, n.rules, n.ruleOrder

	if n.refWindow == t.refWindow && n.refWidth == t.refWidth && len(t.refusals) <= n.opts.MaxRefusalKeys {
		return // the refusal counters fit as they are
	}
	// Move every refusal count into the new window's buckets. Counts older
	// than the new window are dropped (nothing reads them).
	oldWidth, oldOverflow, oldRefusals := t.refWidth, t.overflow, t.refusals
	t.refWindow, t.refWidth = n.refWindow, n.refWidth
	t.refusals = make(map[string]*track, min(len(oldRefusals), n.opts.MaxRefusalKeys))
	t.overflow = n.overflow
	t.overflow.advance(ns)
	move := func(dst, src *track) {
		src.advance(ns)
		src.live(ns, func(k int64, amt u256) {
			if nk, ok := rebucket(dst, k, oldWidth, ns); ok {
				dst.addCount(nk, amt)
			}
		})
	}
	move(t.overflow, oldOverflow)
	keys := make([]string, 0, len(oldRefusals))
	for key := range oldRefusals {
		keys = append(keys, key)
	}
	slices.Sort(keys) // which keys keep their own counter must not depend on map order
	for _, key := range keys {
		src := oldRefusals[key]
		src.advance(ns)
		if src.sum(ns, src.id.window).isZero() {
			continue
		}
		dst := t.overflow
		if len(t.refusals) < t.opts.MaxRefusalKeys {
			dst = t.newRefusalTrack(key)
			dst.advance(ns)
		}
		move(dst, src)
		if dst != t.overflow && !dst.sum(ns, t.refWindow).isZero() {
			t.refusals[key] = dst
		}
	}
}

// pruneCopies forgets the copies of t that no release can reach any more:
// those whose buckets that could hold a released amount have all left the
// copy's window (a copy's own copies included, as long as the copy is
// kept). Forgetting one errs on the safe side: a release then leaves the
// amount counted in the copy.
func (t *track) pruneCopies(now int64) {
	t.copies = slices.DeleteFunc(t.copies, func(c trackCopy) bool {
		if len(c.dst.copies) > 0 {
			c.dst.pruneCopies(now)
			if len(c.dst.copies) > 0 {
				return false
			}
		}
		last := floorDiv(c.at, c.dst.width) // the latest bucket a release can reach
		return c.dst.minLive(now) > last
	})
}
