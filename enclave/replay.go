package enclave

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"sync"
	"time"
)

// replayGuard remembers the request ids seen while their timestamps are
// fresh, so that each stamped request is acted on at most once.
//
// # What it remembers, and for how long
//
// An id is the client and its request_id. Its entry is filed under the
// time bucket (replayBuckets of them per maxAge+maxSkew) of the accepted
// request's timestamp, and a bucket is dropped once the newest time the
// guard has seen (its high-water mark hw) is maxAge past the bucket's end:
// from then on every timestamp in it is stale. So an id is remembered while
// its request is fresh and at most one bucket longer, whatever the rate:
// about maxAge for a client whose clock is right, maxAge+maxSkew+bucket at
// most. A replay carries the first request's timestamp (the body is
// signed), so it is either stale or finds the id.
//
// The guard keeps its own horizon: the end of the newest bucket it dropped.
// A timestamp before the horizon is refused as stale (replayStale) even if
// the caller's clock says it is fresh. With a clock that only moves forward
// the horizon is at least maxAge behind now, so this refuses nothing the
// freshness check lets through; when the clock is set back, it refuses
// exactly the timestamps whose ids may have been forgotten, and no others.
//
// # Entries
//
// An entry is 16 bytes: 111 bits of a keyed digest of the id and a 16-bit
// bucket tag, in an open-addressing table with linear probing. The digest
// is SHA-256 over a key drawn at random for each run, then the
// length-prefixed client and the request id, truncated. Truncation is safe
// in the direction that matters: two ids with equal digests are one entry,
// so a collision can only refuse a fresh request as replayed, never accept
// a replay (a replay's digest is equal to the first's). Within a shard 105
// of the bits tell entries apart, so with m ids in its shard a fresh
// request is refused by a collision with probability below m/2^105 (2^-88
// at the default capacity). The key makes the digests unpredictable to
// clients, who see only whether their own request was refused: none can
// grind ids onto another client's, onto one shard (to fill it and refuse
// the others), or onto one probe run.
//
// # Capacity and memory
//
// The table is split into shards by digest, each with its own lock, its
// own table and an equal share of max: every sign request passes through
// the guard, and a shard's lock is held only for a lookup and an insert
// (and, once per bucket, a sweep of that shard's table). A shard's table
// grows by doubling up to the size that keeps its load at most 3/4 with its
// share of max ids, and never shrinks. Tables of 64 KiB and more are made
// of 64 KiB blocks, and the blocks of a table that grew are reused by the
// next one to grow rather than left to the garbage collector, so memory is
// bounded by about max·16·4/3 bytes plus the tables being rebuilt, and
// growth does not double the heap before a collection.
//
// When a shard holds its share, a new id is refused (replayFull) rather
// than an old one forgotten: fail closed. Keyed digests spread ids evenly,
// so shards fill together: at 24,000 requests a second with timestamps
// MaxClockSkew ahead (the most the default capacity is documented to hold)
// a shard holds 127,600 ids on average, its share 9 standard deviations
// above.
type replayGuard struct {
	maxAge, maxSkew int64 // nanoseconds
	bucket          int64 // nanoseconds
	key             [32]byte
	shardShift      uint // a digest's top bits (hi>>shardShift) pick its shard
	shards          []replayShard

	// poolMu guards pool, the blocks of tables that grew, for the next
	// table to grow: growing leaves no garbage behind. A shard's lock is
	// held when poolMu is taken.
	poolMu sync.Mutex
	pool   [][]replaySlot
}

// replayBuckets is the number of time buckets per maxAge+maxSkew: ids are
// remembered for at most 1/replayBuckets longer than they must be
// (10.3 s with the enclave's 5.5 minutes).
const replayBuckets = 32

// Shard sizing: a shard holds at least replayMinShardIDs of max before the
// guard is split into more shards, up to replayMaxShards. Small guards
// (tests) are one shard, so their capacity is exact.
const (
	replayMaxShards    = 64
	replayMinShardIDs  = 16 << 10
	replayInitialSlots = 64
	replayBlockSlots   = 4096 // 64 KiB
)

type replayResult int

const (
	replayFresh replayResult = iota
	replaySeen
	replayFull
	replayStale
)

// replaySlot is an entry: hi holds digest bits in its top 48 bits and the
// bucket tag in its low 16; lo holds 64 more digest bits, with its lowest
// bit set so that an entry is never the zero (empty) slot.
type replaySlot struct {
	lo, hi uint64
}

type replayShard struct {
	mu       sync.Mutex
	blocks   [][]replaySlot // the table: n slots in blocks of replayBlockSlots (one block when smaller)
	n        int            // slots in the table
	count    int            // entries in the table
	capacity int            // entries the shard may hold
	maxSlots int            // the largest table: capacity at a load of 3/4
	started  bool           // the shard has seen a check
	hw       int64          // the newest time seen (Unix ns)
	first    int64          // the oldest bucket kept: timestamps before first·bucket are refused
	top      int64          // the newest bucket any entry was filed under
	_        [64]byte
}

// newReplayGuard returns a guard for requests at most maxAge old and
// maxSkew ahead, holding at most maxIDs ids (maxIDs > 0), with digests
// keyed by key.
func newReplayGuard(maxAge, maxSkew time.Duration, maxIDs int, key [32]byte) *replayGuard {
	window := int64(maxAge + maxSkew)
	g := &replayGuard{
		maxAge:  int64(maxAge),
		maxSkew: int64(maxSkew),
		bucket:  max(window/replayBuckets, 1),
		key:     key,
	}
	n := 1
	for n < replayMaxShards && maxIDs/(2*n) >= replayMinShardIDs {
		n *= 2
	}
	g.shardShift = uint(64 - bits.TrailingZeros(uint(n)))
	g.shards = make([]replayShard, n)
	for i := range g.shards {
		s := &g.shards[i]
		s.capacity = (maxIDs + n - 1) / n
		s.maxSlots = s.capacity + (s.capacity+2)/3 + 1 // load ≤ 3/4, and one slot always empty
		if s.maxSlots > replayBlockSlots {
			s.maxSlots = (s.maxSlots + replayBlockSlots - 1) / replayBlockSlots * replayBlockSlots
		}
	}
	return g
}

// check records the id (client, requestID) of a request stamped ts,
// checked at now, and says whether it was new: replayFresh (recorded),
// replaySeen (remembered: a replay), replayFull (no room: refused, nothing
// recorded) or replayStale (ts is not fresh at now, or is older than the
// guard still remembers: refused, nothing recorded).
func (g *replayGuard) check(now, ts time.Time, client, requestID string) replayResult {
	lo, hi := g.digest(client, requestID)
	n, t := now.UnixNano(), ts.UnixNano()
	if t < n-g.maxAge || t > n+g.maxSkew {
		return replayStale
	}
	b := floorDiv(t, g.bucket)
	s := &g.shards[hi>>g.shardShift&(uint64(len(g.shards))-1)]
	hi = hi&^0xffff | uint64(uint16(b))

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || n > s.hw {
		s.advance(n, g)
	}
	if b < s.first {
		return replayStale
	}
	if s.lookup(lo, hi) {
		return replaySeen
	}
	if s.count >= s.capacity {
		return replayFull
	}
	s.insert(g, lo, hi)
	s.top = max(s.top, b)
	return replayFresh
}

// digest returns the keyed digest of (client, requestID), with lo's lowest
// bit set. The client is length-prefixed so that no two pairs share an
// input. The usual inputs (a client name of 71 bytes, a request id of at
// most 128) are hashed from a stack buffer, without allocating.
func (g *replayGuard) digest(client, requestID string) (lo, hi uint64) {
	var buf [320]byte
	msg := buf[:0]
	if len(g.key)+binary.MaxVarintLen64+len(client)+len(requestID) > len(buf) {
		msg = nil // rare: let append allocate
	}
	msg = append(msg, g.key[:]...)
	msg = binary.AppendUvarint(msg, uint64(len(client)))
	msg = append(msg, client...)
	msg = append(msg, requestID...)
	sum := sha256.Sum256(msg)
	return binary.LittleEndian.Uint64(sum[0:8]) | 1, binary.LittleEndian.Uint64(sum[8:16])
}

// advance moves the shard's high-water mark to n (> hw) and drops the
// buckets whose every timestamp is now more than maxAge old.
func (s *replayShard) advance(n int64, g *replayGuard) {
	fresh := !s.started
	s.started, s.hw = true, n
	first := floorDiv(n-g.maxAge, g.bucket)
	switch {
	case fresh:
		s.first = first
		s.top = first
	case first <= s.first:
	case first > s.top:
		// Every entry is stale (an idle gap, or a clock set forward).
		for _, b := range s.blocks {
			clear(b)
		}
		s.count = 0
		s.first, s.top = first, first
	default:
		s.sweep(s.first, first)
		s.first = first
	}
}

// sweep deletes the entries filed under buckets from to first-1. Entries
// are filed under buckets from..top, fewer than 2^16 apart, so a tag
// names its bucket.
func (s *replayShard) sweep(from, first int64) {
	drop := uint16(first - from)
	for i := 0; i < s.n; {
		e := s.slot(i)
		if *e != (replaySlot{}) && uint16(e.hi)-uint16(from) < drop {
			s.deleteAt(i)
			continue // another entry may have moved into i
		}
		i++
	}
}

// slot returns slot i of the table.
func (s *replayShard) slot(i int) *replaySlot {
	return &s.blocks[uint(i)/replayBlockSlots][uint(i)%replayBlockSlots]
}

// home is the slot where an entry's probe starts.
func home(lo uint64, n int) int {
	h, _ := bits.Mul64(lo, uint64(n))
	return int(h)
}

func (s *replayShard) lookup(lo, hi uint64) bool {
	if s.n == 0 {
		return false
	}
	for i := home(lo, s.n); ; {
		e := s.slot(i)
		if *e == (replaySlot{}) {
			return false
		}
		if e.lo == lo && e.hi>>16 == hi>>16 {
			return true
		}
		if i++; i == s.n {
			i = 0
		}
	}
}

// insert adds an entry known to be absent, growing the table first if it
// would be more than 3/4 full.
func (s *replayShard) insert(g *replayGuard, lo, hi uint64) {
	if 4*(s.count+1) > 3*s.n && s.n < s.maxSlots {
		s.grow(g, min(max(2*s.n, replayInitialSlots), s.maxSlots))
	}
	s.place(replaySlot{lo, hi})
	s.count++
}

func (s *replayShard) place(e replaySlot) {
	i := home(e.lo, s.n)
	for *s.slot(i) != (replaySlot{}) {
		if i++; i == s.n {
			i = 0
		}
	}
	*s.slot(i) = e
}

// grow rebuilds the table with n slots (a multiple of replayBlockSlots
// once it is that large), in blocks from the guard's pool, and returns the
// old table's blocks to the pool.
func (s *replayShard) grow(g *replayGuard, n int) {
	old, oldN := s.blocks, s.n
	if n < replayBlockSlots {
		s.blocks = [][]replaySlot{make([]replaySlot, n)}
	} else {
		s.blocks = make([][]replaySlot, n/replayBlockSlots)
		for i := range s.blocks {
			s.blocks[i] = g.takeBlock()
		}
	}
	s.n = n
	for _, b := range old {
		for _, e := range b {
			if e != (replaySlot{}) {
				s.place(e)
			}
		}
	}
	if oldN >= replayBlockSlots {
		g.poolMu.Lock()
		g.pool = append(g.pool, old...)
		g.poolMu.Unlock()
	}
}

// takeBlock returns an empty block, from the pool if it has one.
func (g *replayGuard) takeBlock() []replaySlot {
	g.poolMu.Lock()
	var b []replaySlot
	if k := len(g.pool); k > 0 {
		b, g.pool[k-1] = g.pool[k-1], nil
		g.pool = g.pool[:k-1]
	}
	g.poolMu.Unlock()
	if b == nil {
		return make([]replaySlot, replayBlockSlots)
	}
	clear(b)
	return b
}

// deleteAt empties slot i and moves back the entries after it that would
// otherwise no longer be found (backward-shift deletion: the table never
// holds tombstones, so a lookup stops at the first empty slot).
func (s *replayShard) deleteAt(i int) {
	n := s.n
	s.count--
	*s.slot(i) = replaySlot{}
	for j := i; ; {
		if j++; j == n {
			j = 0
		}
		e := *s.slot(j)
		if e == (replaySlot{}) {
			return
		}
		// e stays at j if its home is cyclically in (i, j]: its probe from
		// home to j does not pass the hole at i.
		if k := home(e.lo, n); (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		*s.slot(i), *s.slot(j) = e, replaySlot{}
		i = j
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
