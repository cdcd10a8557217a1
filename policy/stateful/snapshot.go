package stateful

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// snapshotMagic starts every snapshot; the byte after it is the version.
const snapshotMagic = "NSLIMITS"

// snapshotVersion is the only version this package reads and writes.
const snapshotVersion = 1

// Sizes in the snapshot encoding.
const (
	fixedHeaderSize = len(snapshotMagic) + 1 + 8 + 8 // magic, version, generation, time
	minTrackSize    = 1 + 1 + 1 + 8 + 8 + 4 + minBucketSize
	minBucketSize   = 8 + 1 + 1 // index, length, one byte
	maxBucketSize   = 8 + 1 + 32
	maxCountSize    = 8 + 1 + 4 // a refusal bucket
	minKeySize      = 1 + 4 + minBucketSize
)

// snapshot is the decoded form of a snapshot; encode and decode are exact
// inverses on the bytes decode accepts.
type snapshot struct {
	gen    uint64
	taken  int64 // Unix ns
	tracks []snapTrack

	refWindow, refWidth int64
	overflow            []bucket
	refKeys             []snapKey
}

type snapTrack struct {
	id      trackID
	width   int64
	buckets []bucket
	src     *track // the live track these buckets are of (Reconfigure), or nil
}

type bucket struct {
	k   int64
	amt u256
}

type snapKey struct {
	key     string
	buckets []bucket
}

// appendHeader appends the snapshot encoding of a track's scope and window.
// It is prefix-free, so comparing two headers as bytes orders tracks.
func appendHeader(b []byte, id trackID) []byte {
	b = append(b, id.kind, byte(len(id.key)))
	b = append(b, id.key...)
	if id.kind == kindAmount {
		b = binary.BigEndian.AppendUint64(b, id.chain)
		b = append(b, id.asset[:]...)
		if id.hasDest {
			b = append(b, 1)
			b = append(b, id.dest[:]...)
		} else {
			b = append(b, 0)
		}
	}
	return binary.BigEndian.AppendUint64(b, uint64(id.window))
}

func appendBuckets(b []byte, bs []bucket) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(bs)))
	for _, x := range bs {
		b = binary.BigEndian.AppendUint64(b, uint64(x.k))
		b = x.amt.appendAmount(b)
	}
	return b
}

func (s *snapshot) encode() []byte {
	b := append([]byte(snapshotMagic), snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, s.gen)
	b = binary.BigEndian.AppendUint64(b, uint64(s.taken))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.tracks)))
	for _, tr := range s.tracks {
		b = appendHeader(b, tr.id)
		b = binary.BigEndian.AppendUint64(b, uint64(tr.width))
		b = appendBuckets(b, tr.buckets)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(s.refWindow))
	b = binary.BigEndian.AppendUint64(b, uint64(s.refWidth))
	b = appendBuckets(b, s.overflow)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.refKeys)))
	for _, k := range s.refKeys {
		b = append(b, byte(len(k.key)))
		b = append(b, k.key...)
		b = appendBuckets(b, k.buckets)
	}
	return b
}

// reader reads a snapshot; the first problem sticks in err, and every read
// after it returns zeros.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("limits: snapshot: offset %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.fail("truncated")
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// count reads a count of items of at least minSize bytes each, at most max
// of them and no more than the bytes left can hold.
func (r *reader) count(what string, max, minSize int) int {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		r.fail("%d %s, at most %d", n, what, max)
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) {
		r.fail("%d %s do not fit in the %d bytes left", n, what, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

// window reads a window and a bucket width.
func (r *reader) window() (window, width int64) {
	window, width = int64(r.u64()), int64(r.u64())
	if r.err != nil {
		return 0, 0
	}
	if window <= 0 || window > int64(MaxTrackedWindow) {
		r.fail("window of %d ns", window)
		return 0, 0
	}
	if width <= 0 || width > window {
		r.fail("bucket width of %d ns in a window of %d ns", width, window)
		return 0, 0
	}
	return window, width
}

// buckets reads the buckets of a window: non-empty amounts of at most
// maxLen bytes, bucket indexes increasing, each bucket starting no later
// than taken and live at taken, their sum within 256 bits.
func (r *reader) buckets(taken, window, width int64, nonEmpty bool, maxLen int) []bucket {
	lo := max(floorDiv(taken-window+1, width), 0)
	hi := floorDiv(taken, width)
	n := r.count("buckets", int(hi-lo+1), minBucketSize)
	if r.err != nil {
		return nil
	}
	if n == 0 && nonEmpty {
		r.fail("no buckets")
		return nil
	}
	bs := make([]bucket, 0, n)
	var sum u256
	for i := range n {
		k := int64(r.u64())
		l := int(r.u8())
		if r.err != nil {
			return nil
		}
		switch {
		case k < lo || k > hi:
			r.fail("bucket %d is not live at the snapshot's time (buckets %d to %d are)", k, lo, hi)
		case i > 0 && k <= bs[i-1].k:
			r.fail("bucket %d after bucket %d", k, bs[i-1].k)
		case l == 0 || l > maxLen:
			r.fail("amount of %d bytes, want 1 to %d", l, maxLen)
		}
		v := r.bytes(l)
		if r.err != nil {
			return nil
		}
		if v[0] == 0 {
			r.fail("amount with a leading zero byte")
			return nil
		}
		amt := fromBytes(v)
		var over bool
		if sum, over = sum.add(amt); over {
			r.fail("the amounts of a window overflow 256 bits")
			return nil
		}
		bs = append(bs, bucket{k, amt})
	}
	return bs
}

func decode(b []byte) (*snapshot, error) {
	if len(b) > MaxSnapshotSize {
		return nil, fmt.Errorf("limits: snapshot: %d bytes, limit %d", len(b), MaxSnapshotSize)
	}
	r := &reader{b: b}
	if m := r.bytes(len(snapshotMagic)); r.err != nil || string(m) != snapshotMagic {
		return nil, errors.New("limits: snapshot: not a limits snapshot")
	}
	if v := r.u8(); r.err == nil && v != snapshotVersion {
		return nil, fmt.Errorf("limits: snapshot: version %d, want %d", v, snapshotVersion)
	}
	s := &snapshot{gen: r.u64(), taken: int64(r.u64())}
	if r.err == nil && (s.taken < 0 || s.taken >= maxTime.UnixNano()) {
		r.fail("time of %d ns is before 1970 or after 2199", s.taken)
	}
	n := r.count("tracks", 2*MaxRules, minTrackSize)
	var prev []byte
	for range n {
		start := r.off
		var id trackID
		id.kind = r.u8()
		if r.err == nil && id.kind != kindAmount && id.kind != kindVelocity {
			r.fail("track of kind %d", id.kind)
		}
		kl := int(r.u8())
		if r.err == nil && kl == 0 {
			r.fail("empty key")
		}
		id.key = string(r.bytes(kl))
		if id.kind == kindAmount {
			id.chain = r.u64()
			copy(id.asset[:], r.bytes(20))
			switch f := r.u8(); {
			case r.err != nil:
			case f == 1:
				id.hasDest = true
				copy(id.dest[:], r.bytes(20))
			case f != 0:
				r.fail("destination flag %d", f)
			}
		}
		var width int64
		id.window, width = r.window()
		if r.err != nil {
			break
		}
		header := r.b[start : r.off-8] // up to the window, without the width
		if prev != nil && bytes.Compare(prev, header) >= 0 {
			r.fail("tracks out of order or repeated")
			break
		}
		prev = header
		bs := r.buckets(s.taken, id.window, width, true, 32)
		if r.err != nil {
			break
		}
		s.tracks = append(s.tracks, snapTrack{id: id, width: width, buckets: bs})
	}
	s.refWindow, s.refWidth = r.window()
	if r.err == nil {
		s.overflow = r.buckets(s.taken, s.refWindow, s.refWidth, false, 4)
	}
	n = r.count("refusal keys", MaxRefusalKeys, minKeySize)
	for i := range n {
		kl := int(r.u8())
		key := string(r.bytes(kl))
		if r.err == nil && i > 0 && key <= s.refKeys[i-1].key {
			r.fail("refusal keys out of order or repeated")
		}
		bs := r.buckets(s.taken, s.refWindow, s.refWidth, true, 4)
		if r.err != nil {
			break
		}
		s.refKeys = append(s.refKeys, snapKey{key, bs})
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

// worstSnapshotSize returns the largest snapshot t can write.
func (t *Tracker) worstSnapshotSize() int64 {
	size := int64(fixedHeaderSize + 4)
	for _, tr := range t.tracks {
		size += int64(len(tr.header)) + 8 + 4 + int64(len(tr.slots))*maxBucketSize
	}
	refSlots := t.refWindow/t.refWidth + 2
	size += 8 + 8 + 4 + refSlots*maxCountSize + 4
	size += int64(t.opts.MaxRefusalKeys) * (1 + MaxKeyLen + 4 + refSlots*maxCountSize)
	return size
}

// liveBuckets returns the non-empty buckets of tr live at now.
func liveBuckets(tr *track, now int64) []bucket {
	var bs []bucket
	tr.live(now, func(k int64, amt u256) { bs = append(bs, bucket{k, amt}) })
	return bs
}

// snapshot returns t's state; t.mu is held.
func (t *Tracker) snapshot() *snapshot {
	s := &snapshot{gen: t.gen, taken: t.now, refWindow: t.refWindow, refWidth: t.refWidth}
	for _, tr := range t.tracks {
		if bs := liveBuckets(tr, t.now); len(bs) > 0 {
			s.tracks = append(s.tracks, snapTrack{id: tr.id, width: tr.width, buckets: bs})
		}
	}
	s.overflow = liveBuckets(t.overflow, t.now)
	for key, tr := range t.refusals {
		if bs := liveBuckets(tr, t.now); len(bs) > 0 {
			s.refKeys = append(s.refKeys, snapKey{key, bs})
		}
	}
	slices.SortFunc(s.refKeys, func(a, b snapKey) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	return s
}

// MarshalBinary returns a snapshot of t: its usage, refusal counts,
// generation and time (the latest time it has seen). It is deterministic:
// the same state gives the same bytes. It holds every amount reserved and
// not released, committed or not. Snapshots are for the enclave to seal;
// the format is in docs/limits.md.
func (t *Tracker) MarshalBinary() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.marshal()
}

func (t *Tracker) marshal() ([]byte, error) {
	b := t.snapshot().encode()
	if len(b) > MaxSnapshotSize { // New rules this out
		return nil, fmt.Errorf("limits: snapshot of %d bytes, limit %d", len(b), MaxSnapshotSize)
	}
	return b, nil
}

// Inspect checks that snapshot is well-formed, as Restore does before
// using it, and returns its generation and the time it was taken.
func Inspect(snapshot []byte) (gen uint64, taken time.Time, err error) {
	s, err := decode(snapshot)
	if err != nil {
		return 0, time.Time{}, err
	}
	return s.gen, time.Unix(0, s.taken).UTC(), nil
}

// Restore returns a Tracker for rules and velocities holding the usage and
// refusal counts of snapshot, a snapshot of an earlier Tracker, at time now.
//
// The decoder is strict: the versioned header, every length and count, the
// order of tracks, buckets and keys, canonical amounts and the absence of
// trailing bytes are checked, and so is time: a snapshot taken more than
// Options.MaxSkew after now is refused, and every bucket in it must be
// live at the time it was taken. Buckets no longer live at now are
// dropped, as are refusal counts older than Options.RefusalWindow.
//
// Usage is keyed by scope (key, chain, asset and destination or "any", or
// the key for velocity) and window, not by rule ID, so it survives a policy
// change that renames a rule or changes its Max or window: a rule takes the
// usage of a snapshot's track with the same scope (the one with the same
// window, else the shortest longer one, else the longest shorter one,
// passing over those with no usage left in the rule's window), moved
// conservatively into the rule's buckets (each amount to the bucket holding
// the last instant at which it can have been spent). A rule whose scope no
// track of the snapshot had starts with no usage, and a window longer than
// the snapshot's holds only what the snapshot's window kept. Tracks that no
// rule reads are dropped.
//
// The restored Tracker carries the snapshot's generation, taken as
// acknowledged: its next checkpoint is the one after.
func Restore(rules []TrackedLimit, velocities []TrackedVelocity, opts Options, snapshot []byte, now time.Time) (*Tracker, error) {
	s, err := decode(snapshot)
	if err != nil {
		return nil, err
	}
	t, err := NewTracker(rules, velocities, opts)
	if err != nil {
		return nil, err
	}
	ns, ok := unixNano(now)
	if !ok {
		return nil, fmt.Errorf("limits: restore time %v is before 1970 or after 2199", now)
	}
	if s.taken > ns+int64(t.opts.MaxSkew) {
		return nil, fmt.Errorf("limits: snapshot taken at %v, %v after now, more than the %v skew allowed", time.Unix(0, s.taken).UTC(), time.Duration(s.taken-ns), t.opts.MaxSkew)
	}
	t.now = max(ns, s.taken)

	stored := map[scope][]*snapTrack{}
	for i := range s.tracks {
		st := &s.tracks[i]
		stored[st.id.scope] = append(stored[st.id.scope], st)
	}
	for _, tr := range t.tracks {
		tr.advance(t.now)
		bs, _ := pick(tr, stored[tr.id.scope], s.taken)
		for _, b := range bs {
			tr.add(b.k, b.amt) // cannot overflow: the decoder checked the sum
		}
	}

	t.overflow.advance(t.now)
	restoreCounts := func(dst *track, bs []bucket) {
		for _, b := range bs {
			if k, ok := rebucket(dst, b.k, s.refWidth, s.taken); ok {
				dst.addCount(k, b.amt)
			}
		}
	}
	restoreCounts(t.overflow, s.overflow)
	for _, sk := range s.refKeys {
		var tr *track
		if len(sk.key) <= MaxKeyLen && len(t.refusals) < t.opts.MaxRefusalKeys {
			tr = t.newRefusalTrack(sk.key)
			tr.advance(t.now)
		} else {
			tr = t.overflow
		}
		restoreCounts(tr, sk.buckets)
		if tr != t.overflow {
			if tr.sum(t.now, t.refWindow).isZero() {
				continue // nothing left in the window
			}
			t.refusals[sk.key] = tr
		}
	}

	t.gen, t.ackedGen = s.gen, s.gen
	return t, nil
}

// pick chooses, among the snapshot's tracks of the scope of dst (which has
// been advanced to the restore time), the one whose usage dst takes, and
// returns that usage in dst's buckets. Tracks are tried in order of
// preference: the same window, then longer windows from the shortest (they
// saw every spend of dst's window, in coarser buckets), then shorter ones
// from the longest; the first that leaves any usage in dst's window is
// taken. It returns the candidate taken too (nil if none).
func pick(dst *track, cands []*snapTrack, taken int64) ([]bucket, *snapTrack) {
	d := dst.id.window
	rank := func(w int64) (int, int64) {
		switch {
		case w == d:
			return 0, 0
		case w > d:
			return 1, w
		default:
			return 2, -w
		}
	}
	cands = slices.Clone(cands)
	slices.SortFunc(cands, func(a, b *snapTrack) int {
		ra, wa := rank(a.id.window)
		rb, wb := rank(b.id.window)
		if ra != rb {
			return ra - rb
		}
		return cmp.Compare(wa, wb)
	})
	for _, c := range cands {
		var bs []bucket
		for _, b := range c.buckets {
			k, ok := rebucket(dst, b.k, c.width, taken)
			if !ok {
				continue
			}
			if n := len(bs); n > 0 && bs[n-1].k == k {
				bs[n-1].amt, _ = bs[n-1].amt.add(b.amt) // within 256 bits: the decoder checked the sum
			} else {
				bs = append(bs, bucket{k, b.amt})
			}
		}
		if len(bs) > 0 {
			return bs, c
		}
	}
	return nil, nil
}

// rebucket maps bucket k of width w, from a snapshot taken at taken, to the
// bucket of dst holding the last instant at which its amounts can have been
// recorded (the bucket's last instant, or taken if earlier), so that they
// stay counted at least as long as they would have. ok is false if that
// bucket is no longer live in dst (which has been advanced to the restore
// time).
func rebucket(dst *track, k, w, taken int64) (int64, bool) {
	last := min((k+1)*w-1, taken)
	nk := floorDiv(last, dst.width)
	return nk, nk >= dst.low
}
