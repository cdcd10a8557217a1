package stateful

import (
	"math/big"
	"math/bits"
)

// u256 is an unsigned 256-bit integer in four 64-bit limbs, least
// significant first. Amounts are kept in this fixed form rather than as
// *big.Int so that recording and checking them allocates nothing. Every EVM
// amount (a uint256) fits.
type u256 [4]uint64

var one = u256{1}

// add returns a+b and whether the sum overflowed 256 bits.
func (a u256) add(b u256) (u256, bool) {
	var r u256
	var c uint64
	r[0], c = bits.Add64(a[0], b[0], 0)
	r[1], c = bits.Add64(a[1], b[1], c)
	r[2], c = bits.Add64(a[2], b[2], c)
	r[3], c = bits.Add64(a[3], b[3], c)
	return r, c != 0
}

// addSat returns a+b, or the largest u256 if the sum overflows.
func (a u256) addSat(b u256) u256 {
	r, over := a.add(b)
	if over {
		return u256{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	}
	return r
}

// sub returns a-b, or zero if b > a (which the bookkeeping never lets
// happen; zero is the safe floor).
func (a u256) sub(b u256) u256 {
	var r u256
	var c uint64
	r[0], c = bits.Sub64(a[0], b[0], 0)
	r[1], c = bits.Sub64(a[1], b[1], c)
	r[2], c = bits.Sub64(a[2], b[2], c)
	r[3], c = bits.Sub64(a[3], b[3], c)
	if c != 0 {
		return u256{}
	}
	return r
}

// cmp returns -1, 0 or +1 as a is less than, equal to or greater than b.
func (a u256) cmp(b u256) int {
	for i := 3; i >= 0; i-- {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	return 0
}

func (a u256) isZero() bool { return a == u256{} }

// fromBig converts x, which must be non-negative and below 2^256.
func fromBig(x *big.Int) (u256, bool) {
	if x == nil || x.Sign() < 0 || x.BitLen() > 256 {
		return u256{}, false
	}
	var r u256
	if bits.UintSize == 64 {
		for i, w := range x.Bits() {
			r[i] = uint64(w)
		}
		return r, true
	}
	var b [32]byte
	x.FillBytes(b[:])
	return fromBytes(b[:]), true
}

// fromBytes reads a big-endian integer of at most 32 bytes.
func fromBytes(b []byte) u256 {
	var r u256
	for i, j := len(b)-1, 0; i >= 0; i, j = i-1, j+1 {
		r[j/8] |= uint64(b[i]) << (8 * (j % 8))
	}
	return r
}

// bytes32 returns a as 32 big-endian bytes.
func (a u256) bytes32() [32]byte {
	var b [32]byte
	for j := range 32 {
		b[31-j] = byte(a[j/8] >> (8 * (j % 8)))
	}
	return b
}

// big returns a as a new *big.Int.
func (a u256) big() *big.Int {
	b := a.bytes32()
	return new(big.Int).SetBytes(b[:])
}

// String formats a in decimal.
func (a u256) String() string { return a.big().String() }

// appendAmount appends a's snapshot encoding: a length byte (0 to 32) and
// that many big-endian bytes without leading zeros.
func (a u256) appendAmount(dst []byte) []byte {
	b := a.bytes32()
	i := 0
	for i < 32 && b[i] == 0 {
		i++
	}
	dst = append(dst, byte(32-i))
	return append(dst, b[i:]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Kinds of track, as they appear in snapshots.
const (
	kindAmount   = 1 // amounts of one asset: a Rule's scope
	kindVelocity = 2 // transactions of a key: a Velocity's scope
	kindRefusals = 3 // refusals of a key (never in the tracks section)
)

// scope is what a track counts: for amounts, spends by key on chain in
// asset, to dest if hasDest or to any destination otherwise; for velocity
// and refusals, events of key.
type scope struct {
	kind    byte
	key     string
	chain   uint64
	asset   [20]byte
	hasDest bool
	dest    [20]byte
}

// trackID names a track: its scope and window. Rules that share both share
// a track.
type trackID struct {
	scope
	window int64
}

// track is the usage of one scope over a rolling window: a ring of time
// buckets, each width nanoseconds long and aligned to the Unix epoch
// (bucket k covers [k·width, (k+1)·width)), and the running total of the
// buckets still live.
//
// A bucket is live at time now while its last instant, (k+1)·width−1, is
// inside the window (now−window, now]: an amount leaves the total only when
// every instant its bucket covers has left the window. Every amount recorded
// at a time t inside the window is therefore counted (the total is never
// less than the exact rolling sum), and an amount is counted for at most
// width−1 ns longer than the window.
//
// The ring has window/width+2 slots, enough for every bucket that can be
// live at once; a slot holds the index of its bucket, so a slot left over
// from an earlier lap is recognised and reused.
type track struct {
	id     trackID
	header []byte // snapshot encoding of id, which orders tracks
	width  int64
	slots  []slot
	total  u256  // sum of the live slots (amount tracks only)
	low    int64 // buckets below low have been expired
	init   bool  // low is set
	// Caches that spare the hot path its divisions (time never goes back):
	next   int64 // advance has nothing to do before this time
	curK   int64 // the bucket of the times before curEnd (and since its start)
	curEnd int64
	// copies are the tracks that Tracker.Reconfigure filled from this
	// one's usage, so that a reservation made before the copy and released
	// after it is taken out of them too.
	copies []trackCopy
}

// trackCopy is a track filled from another's usage by Reconfigure.
type trackCopy struct {
	dst *track
	gen uint64 // Tracker.config after that Reconfigure: reservations made before it have a lower one
	at  int64  // when: the source's buckets were moved as rebucket(dst, k, width, at)
	low int64  // the source's oldest live bucket then: older ones were not copied
}

// release takes amt, reserved in bucket k while the Tracker's
// configuration was gen, back out of t and out of every copy of t made
// after it (each held it, in the bucket rebucket moved k to). The copies
// and their own copies received exactly what t held then, so this never
// takes out more than the reservation added.
func (t *track) release(k int64, amt u256, gen uint64) {
	t.remove(k, amt)
	for _, c := range t.copies {
		if gen >= c.gen || k < c.low {
			continue // reserved after the copy, or expired before it
		}
		c.dst.release(floorDiv(min((k+1)*t.width-1, c.at), c.dst.width), amt, gen)
	}
}

type slot struct {
	k   int64
	amt u256
}

func newTrack(id trackID, width int64) *track {
	n := id.window/width + 2
	return &track{id: id, width: width, slots: make([]slot, n)}
}

// minLive returns the index of the oldest bucket live at now: the least k
// with (k+1)·width−1 > now−window.
func (t *track) minLive(now int64) int64 {
	return floorDiv(now-t.id.window+1, t.width)
}

// advance expires the buckets that are no longer live at now. now never
// decreases from one call to the next.
func (t *track) advance(now int64) {
	if t.init && now < t.next {
		return
	}
	km := t.minLive(now)
	// The next time minLive passes km: (km+1)·width + window − 1.
	t.next = (km+1)*t.width + t.id.window - 1
	if !t.init {
		t.low, t.init = km, true
		return
	}
	if km <= t.low {
		return
	}
	n := int64(len(t.slots))
	if km-t.low >= n {
		for i := range t.slots {
			t.slots[i].amt = u256{}
		}
		t.total = u256{}
	} else {
		for k := t.low; k < km; k++ {
			s := &t.slots[floorMod(k, n)]
			if s.k == k && !s.amt.isZero() {
				t.total = t.total.sub(s.amt)
				s.amt = u256{}
			}
		}
	}
	t.low = km
}

// bucket returns the index of the bucket holding now, which is no earlier
// than any time bucket was called with before.
func (t *track) bucket(now int64) int64 {
	if now >= t.curEnd || t.curEnd == 0 {
		t.curK = floorDiv(now, t.width)
		t.curEnd = (t.curK + 1) * t.width
	}
	return t.curK
}

// slot returns the slot of bucket k, claiming it if it holds an older
// bucket (which advance has already emptied). k must be live.
func (t *track) slot(k int64) *slot {
	s := &t.slots[floorMod(k, int64(len(t.slots)))]
	if s.k != k {
		s.k, s.amt = k, u256{}
	}
	return s
}

// add records amt in bucket k, which must be live, and reports whether the
// total would overflow (in which case nothing is recorded).
func (t *track) add(k int64, amt u256) bool {
	total, over := t.total.add(amt)
	if over {
		return false
	}
	s := t.slot(k)
	s.amt, _ = s.amt.add(amt) // a slot never holds more than the total
	t.total = total
	return true
}

// addCount adds n to the count in bucket k, which must be live, capping
// the bucket at maxRefusalCount (refusal counts: a count that stops
// growing is still at least any threshold worth setting).
func (t *track) addCount(k int64, n u256) {
	s := t.slot(k)
	limit := u256{maxRefusalCount}
	room := limit.sub(s.amt)
	if n.cmp(room) > 0 {
		n = room
	}
	s.amt, _ = s.amt.add(n)
	t.total = t.total.addSat(n)
}

// remove takes amt back out of bucket k, if that bucket is still live.
func (t *track) remove(k int64, amt u256) {
	if k < t.low {
		return // expired: already out of the total
	}
	s := &t.slots[floorMod(k, int64(len(t.slots)))]
	if s.k != k {
		return
	}
	s.amt = s.amt.sub(amt)
	t.total = t.total.sub(amt)
}

// sum returns the sum of the buckets live at now in a window of w ns
// (w at most the track's window), without changing the track.
func (t *track) sum(now, w int64) u256 {
	from := floorDiv(now-w+1, t.width)
	if t.init && from < t.low {
		from = t.low
	}
	var r u256
	to := floorDiv(now, t.width)
	if to-from >= int64(len(t.slots)) {
		from = to - int64(len(t.slots)) + 1
	}
	for k := from; k <= to; k++ {
		s := &t.slots[floorMod(k, int64(len(t.slots)))]
		if s.k == k {
			r = r.addSat(s.amt)
		}
	}
	return r
}

// live calls f for each non-empty bucket live at now, oldest first.
func (t *track) live(now int64, f func(k int64, amt u256)) {
	from := t.minLive(now)
	if t.init && from < t.low {
		from = t.low
	}
	to := floorDiv(now, t.width)
	for k := from; k <= to; k++ {
		s := &t.slots[floorMod(k, int64(len(t.slots)))]
		if s.k == k && !s.amt.isZero() {
			f(k, s.amt)
		}
	}
}
