package enclave

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

var replayT0 = time.Unix(1_700_000_000, 0)

func testReplayGuard(maxAge, skew time.Duration, maxIDs int) *replayGuard {
	var key [32]byte
	key[0] = 7
	return newReplayGuard(maxAge, skew, maxIDs, key)
}

func (r replayResult) String() string {
	switch r {
	case replayFresh:
		return "fresh"
	case replaySeen:
		return "seen"
	case replayFull:
		return "full"
	case replayStale:
		return "stale"
	}
	return "replayResult(" + strconv.Itoa(int(r)) + ")"
}

// A request is remembered while its timestamp is fresh: a replay (the same
// body, so the same timestamp) is seen up to the last instant the
// freshness check lets it through, and stale after.
func TestReplayGuardRemembersWhileFresh(t *testing.T) {
	const age, skew = 5 * time.Second, time.Second
	for _, stamped := range []time.Duration{-age, -time.Second, 0, skew} { // the timestamp relative to the first check
		g := testReplayGuard(age, skew, 100)
		ts := replayT0.Add(stamped)
		if r := g.check(replayT0, ts, "c", "a"); r != replayFresh {
			t.Fatalf("stamped %v: first sight = %v", stamped, r)
		}
		last := ts.Add(age) // the last instant ts is fresh
		for _, now := range []time.Time{replayT0, replayT0.Add(time.Nanosecond), last.Add(-time.Nanosecond), last} {
			if now.After(last) {
				continue
			}
			if r := g.check(now, ts, "c", "a"); r != replaySeen {
				t.Fatalf("stamped %v, replayed at +%v: %v, want seen", stamped, now.Sub(replayT0), r)
			}
		}
		if r := g.check(last.Add(time.Nanosecond), ts, "c", "a"); r != replayStale {
			t.Fatalf("stamped %v, replayed once stale: %v", stamped, r)
		}
	}
}

// An id is forgotten at most a bucket after its request went stale, so the
// client may use it again with a new timestamp.
func TestReplayGuardForgetsAfterItsBucket(t *testing.T) {
	const age, skew = 5 * time.Second, time.Second
	g := testReplayGuard(age, skew, 100)
	g.check(replayT0, replayT0, "c", "a")
	gone := replayT0.Add(age + time.Duration(g.bucket))
	if r := g.check(gone, gone, "c", "a"); r != replayFresh {
		t.Fatalf("a bucket after the request went stale: %v, want forgotten", r)
	}
	// The same id from another client is another request.
	if r := g.check(gone, gone, "d", "a"); r != replayFresh {
		t.Fatalf("other client: %v", r)
	}
}

func TestReplayGuardFailsClosedWhenFull(t *testing.T) {
	g := testReplayGuard(time.Minute, 0, 3)
	for _, id := range []string{"1", "2", "3"} {
		if r := g.check(replayT0, replayT0, "c", id); r != replayFresh {
			t.Fatalf("%s: %v", id, r)
		}
	}
	if r := g.check(replayT0, replayT0, "c", "4"); r != replayFull {
		t.Fatalf("fourth id with room for three: %v, want full", r)
	}
	if r := g.check(replayT0, replayT0, "c", "2"); r != replaySeen {
		t.Fatalf("a seen id while full: %v, want seen", r)
	}
	// Once the ids expire, there is room again.
	later := replayT0.Add(time.Minute + time.Duration(g.bucket))
	if r := g.check(later, later, "c", "4"); r != replayFresh {
		t.Fatalf("after expiry: %v", r)
	}
}

func TestReplayGuardKeysAreUnambiguous(t *testing.T) {
	g := testReplayGuard(time.Minute, 0, 10)
	g.check(replayT0, replayT0, "ab", "c")
	if r := g.check(replayT0, replayT0, "a", "bc"); r != replayFresh {
		t.Fatalf("(a, bc) collides with (ab, c)")
	}
}

// The guard refuses what the freshness check refuses, by itself.
func TestReplayGuardStaleTimestamps(t *testing.T) {
	const age, skew = 5 * time.Second, time.Second
	g := testReplayGuard(age, skew, 10)
	for _, ts := range []time.Time{replayT0.Add(-age - time.Nanosecond), replayT0.Add(skew + time.Nanosecond)} {
		if r := g.check(replayT0, ts, "c", "x"); r != replayStale {
			t.Fatalf("ts %v: %v, want stale", ts.Sub(replayT0), r)
		}
	}
}

// When the clock is set back, no forgotten id is accepted again: a
// timestamp older than the guard remembers is stale, whatever the clock
// says now; one the guard still covers is judged as usual.
func TestReplayGuardClockGoesBack(t *testing.T) {
	const age, skew = 5 * time.Second, time.Second
	g := testReplayGuard(age, skew, 1000)
	g.check(replayT0, replayT0, "c", "early")
	// The clock jumps a day ahead (everything is forgotten), then back.
	ahead := replayT0.Add(24 * time.Hour)
	if r := g.check(ahead, ahead, "c", "ahead"); r != replayFresh {
		t.Fatalf("ahead: %v", r)
	}
	back := replayT0.Add(time.Second)
	if r := g.check(back, replayT0, "c", "early"); r != replayStale {
		t.Fatalf("replay of a forgotten id after the clock went back: %v, want stale", r)
	}
	if r := g.check(back, back, "c", "new"); r != replayStale {
		t.Fatalf("a request older than the guard remembers: %v, want stale", r)
	}

	// A small step back: requests stamped after the horizon are judged as
	// usual, and replays are still seen.
	g = testReplayGuard(age, skew, 1000)
	for i := range 20 {
		now := replayT0.Add(time.Duration(i) * time.Second)
		g.check(now, now, "c", strconv.Itoa(i))
	}
	hw := replayT0.Add(19 * time.Second)
	back = hw.Add(-2 * time.Second)
	if r := g.check(back, back, "c", "17"); r != replaySeen {
		t.Fatalf("replay after a small step back: %v, want seen", r)
	}
	if r := g.check(back, back, "c", "fresh"); r != replayFresh {
		t.Fatalf("new request after a small step back: %v, want fresh", r)
	}
}

// Each run keys its digests afresh.
func TestReplayGuardKeyed(t *testing.T) {
	var k1, k2 [32]byte
	k2[31] = 1
	g1 := newReplayGuard(time.Minute, 0, 10, k1)
	g2 := newReplayGuard(time.Minute, 0, 10, k2)
	lo1, hi1 := g1.digest("c", "id")
	lo2, hi2 := g2.digest("c", "id")
	if lo1 == lo2 || hi1 == hi2 {
		t.Fatal("digests do not depend on the key")
	}
	// Inputs too long for the stack buffer hash the same way.
	long := string(make([]byte, 400))
	lo1, hi1 = g1.digest(long, "id")
	g1.key = k2
	if lo2, hi2 := g1.digest(long, "id"); lo1 == lo2 || hi1 == hi2 {
		t.Fatal("long inputs: digests do not depend on the key")
	}
}

// replayModel is the reference for the guard: a map from id to the bucket
// of its accepted timestamp, with the guard's documented rules for when
// buckets are dropped, per shard. With one shard and no digest
// collisions the guard must answer exactly as it does.
type replayModel struct {
	maxAge, skew, bucket int64
	capacity             int
	started              bool
	hw, first            int64
	ids                  map[string]int64 // id → bucket
}

func (m *replayModel) check(now, ts int64, id string) replayResult {
	if ts < now-m.maxAge || ts > now+m.skew {
		return replayStale
	}
	if !m.started || now > m.hw {
		first := floorDiv(now-m.maxAge, m.bucket)
		if !m.started || first > m.first {
			m.first = first
		}
		m.started, m.hw = true, now
		for k, b := range m.ids {
			if b < m.first {
				delete(m.ids, k)
			}
		}
	}
	b := floorDiv(ts, m.bucket)
	if b < m.first {
		return replayStale
	}
	if _, ok := m.ids[id]; ok {
		return replaySeen
	}
	if len(m.ids) >= m.capacity {
		return replayFull
	}
	m.ids[id] = b
	return replayFresh
}

// replayHistory checks the promise itself, independently of how the guard
// keeps its ids: no request is accepted while an earlier accepted request
// with its id is fresh at the newest time seen, and no accepted request is
// accepted again (a replay carries the same timestamp), whatever the clock
// did.
type replayHistory struct {
	maxAge   int64
	hw       int64
	started  bool
	accepted map[string][]int64 // id → timestamps accepted
}

func (h *replayHistory) observe(t testing.TB, now, ts int64, id string, r replayResult) {
	if !h.started || now > h.hw {
		h.started, h.hw = true, now
	}
	if r != replayFresh {
		return
	}
	for _, ts0 := range h.accepted[id] {
		if ts0 == ts {
			t.Fatalf("replay accepted: id %s stamped %d accepted again at %d", id, ts, now)
		}
		if ts0 >= h.hw-h.maxAge {
			t.Fatalf("id %s accepted at %d (stamped %d) while its earlier request stamped %d is fresh (newest time %d)", id, now, ts, ts0, h.hw)
		}
	}
	h.accepted[id] = append(h.accepted[id], ts)
}

// runReplayOps drives a guard from bytes, 4 a step: a clock step (often
// across a bucket or window edge, sometimes back, sometimes an idle gap of
// 10 windows), the timestamp's offset from the clock (often at an edge of
// freshness), a client and an id. After each step it checks the answer
// against the history, and against the model when the guard is one shard.
func runReplayOps(t testing.TB, data []byte, capacity int) {
	const age, skew = 4 * time.Second, time.Second
	g := testReplayGuard(age, skew, capacity)
	m := &replayModel{maxAge: int64(age), skew: int64(skew), bucket: g.bucket, capacity: capacity, ids: map[string]int64{}}
	h := &replayHistory{maxAge: int64(age), accepted: map[string][]int64{}}
	exact := len(g.shards) == 1
	now := replayT0.UnixNano()
	window := int64(age + skew)
	steps := []int64{0, 1, g.bucket - 1, g.bucket, g.bucket + 1, window - 1, window, int64(age), int64(age) + 1, 10 * window, -1, -g.bucket, -window, -int64(age)}
	offsets := []int64{0, -1, 1, -int64(age), int64(skew), -int64(age) - 1, int64(skew) + 1, -int64(age) + 1, int64(skew) - 1}
	for ; len(data) >= 4; data = data[4:] {
		op, off, client, id := data[0], data[1], data[2], data[3]
		if int(op) < len(steps) {
			now += steps[op]
		} else {
			now += int64(op) * int64(time.Second) / 64 // 0 to 4 s in steps of 1/64 s
		}
		var ts int64
		if int(off) < len(offsets) {
			ts = now + offsets[off]
		} else {
			ts = now - int64(age) + int64(off)*int64(age+skew)/256
		}
		key := "c" + strconv.Itoa(int(client%3)) + "\x00" + strconv.Itoa(int(id%32))
		cl, rid := "c"+strconv.Itoa(int(client%3)), strconv.Itoa(int(id%32))
		r := g.check(time.Unix(0, now), time.Unix(0, ts), cl, rid)
		h.observe(t, now, ts, key, r)
		if exact {
			if want := m.check(now, ts, key); r != want {
				t.Fatalf("at %d, stamped %d, %s: guard %v, model %v", now, ts, key, r, want)
			}
		}
	}
}

func FuzzReplayGuard(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 5, 0, 0, 1, 6, 0, 0, 1, 7, 0, 0, 1})
	f.Add([]byte{0, 4, 0, 1, 5, 0, 0, 1, 10, 0, 0, 2, 11, 3, 0, 1, 11, 3, 0, 1})
	f.Add([]byte{0, 0, 0, 1, 9, 0, 0, 2, 12, 2, 0, 1, 12, 0, 0, 1, 200, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		runReplayOps(t, data, 6)
	})
}

// Random sequences across bucket and window edges, clock steps back and
// idle gaps: the guard matches the model exactly (one shard, small and
// large capacity) and never accepts a replay (many shards).
func TestReplayGuardProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	for _, capacity := range []int{4, 64, 1 << 20} {
		for range rounds {
			data := make([]byte, 4*(100+rng.IntN(400)))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			runReplayOps(t, data, capacity)
		}
	}
}

// The sweep that drops a bucket keeps every other entry findable, at the
// highest load a table reaches.
func TestReplayGuardSweepAtFullLoad(t *testing.T) {
	const age, skew = 4 * time.Second, 0
	for _, capacity := range []int{1, 2, 3, 100, 1000} {
		g := testReplayGuard(age, skew, capacity)
		m := &replayModel{maxAge: int64(age), skew: int64(skew), bucket: g.bucket, capacity: capacity, ids: map[string]int64{}}
		rng := rand.New(rand.NewPCG(uint64(capacity), 3))
		now := replayT0.UnixNano()
		for i := range 40 * capacity {
			now += rng.Int64N(int64(age) / int64(capacity) * 2)
			ts := now - rng.Int64N(int64(age))
			id := strconv.Itoa(rng.IntN(2 * capacity))
			if i%7 == 0 {
				id = strconv.Itoa(i)
			}
			r := g.check(time.Unix(0, now), time.Unix(0, ts), "c", id)
			if want := m.check(now, ts, "c\x00"+id); r != want {
				t.Fatalf("capacity %d, step %d: guard %v, model %v", capacity, i, r, want)
			}
		}
		s := &g.shards[0]
		if s.count != len(m.ids) {
			t.Fatalf("capacity %d: %d entries, model %d", capacity, s.count, len(m.ids))
		}
	}
}

// Many goroutines with distinct ids: every id is accepted once, whatever
// the shard.
func TestReplayGuardConcurrent(t *testing.T) {
	g := testReplayGuard(time.Minute, time.Second, 1<<20)
	if len(g.shards) < 2 {
		t.Fatalf("%d shards", len(g.shards))
	}
	const workers, each = 4, 2000
	var fresh atomic.Int64
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				// Every id twice, by two workers.
				id := strconv.Itoa((w/2)*each + i)
				if g.check(replayT0, replayT0, "c", id) == replayFresh {
					fresh.Add(1)
				}
			}
		}()
	}
	for range workers {
		<-done
	}
	if got := fresh.Load(); got != workers/2*each {
		t.Fatalf("%d accepted, want %d", got, workers/2*each)
	}
}

// The default guard's shards take an equal share of the capacity and
// keep to the memory the documentation gives.
func TestReplayGuardDefaultSize(t *testing.T) {
	g := testReplayGuard(MaxRequestAge, MaxClockSkew, DefaultMaxReplayEntries)
	total, slots := 0, 0
	for i := range g.shards {
		total += g.shards[i].capacity
		slots += g.shards[i].maxSlots
	}
	if len(g.shards) != replayMaxShards || total != DefaultMaxReplayEntries {
		t.Fatalf("%d shards, %d ids", len(g.shards), total)
	}
	if mib := slots * 16 >> 20; mib > 172 {
		t.Fatalf("the tables take up to %d MiB", mib)
	}
	if time.Duration(g.bucket) > 11*time.Second {
		t.Fatalf("bucket %v", time.Duration(g.bucket))
	}
}

// simulateReplay sends rate fresh requests a second, for d of virtual
// time, from 16 clients whose timestamps are spread over the whole range
// the freshness check allows ahead (up to MaxClockSkew) and a second
// behind. Every 30 virtual seconds it collects garbage and samples the
// heap in use, and calls sample. It returns the requests refused and the
// peaks of the live heap and of the memory obtained from the OS.
func simulateReplay(rate int, d time.Duration, check func(now, ts time.Time, client, id string) replayResult, sample func()) (refused int, peak, sys uint64) {
	clients := make([]string, 16)
	for i := range clients {
		clients[i] = fmt.Sprintf("ed25519:%064x", i)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	step := time.Second / time.Duration(rate)
	var ms runtime.MemStats
	n := int(d / step)
	for i := range n {
		now := replayT0.Add(time.Duration(i) * step)
		ts := now.Add(-time.Second + time.Duration(rng.Int64N(int64(MaxClockSkew+time.Second))))
		if r := check(now, ts, clients[i%len(clients)], strconv.FormatUint(uint64(i), 16)); r != replayFresh {
			refused++
		}
		if i%(30*rate) == 0 || i == n-1 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak, sys = max(peak, ms.HeapInuse), max(sys, ms.Sys)
			sample()
		}
	}
	return refused, peak, sys
}

// memory returns the bytes the guard's tables and pool hold.
func (g *replayGuard) memory() int {
	b := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		b += s.n * 16
		s.mu.Unlock()
	}
	g.poolMu.Lock()
	b += len(g.pool) * replayBlockSlots * 16
	g.poolMu.Unlock()
	return b
}

// TestReplayMemory simulates 20,000 fresh requests a second for three
// windows of virtual time against the default guard: none is refused, and
// the live heap stays below 256 MiB. NITROSIGN_CHAOS=1 runs it at full
// size; otherwise an 80th of the rate against an 80th of the capacity.
func TestReplayMemory(t *testing.T) {
	rate, maxIDs := 20_000, DefaultMaxReplayEntries
	if os.Getenv("NITROSIGN_CHAOS") != "1" {
		rate, maxIDs = 250, DefaultMaxReplayEntries/80
	}
	g := testReplayGuard(MaxRequestAge, MaxClockSkew, maxIDs)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	guardPeak, heldPeak := 0, 0
	d := 3 * (MaxRequestAge + MaxClockSkew)
	refused, peak, sys := simulateReplay(rate, d, g.check, func() {
		guardPeak = max(guardPeak, g.memory())
		held := 0
		for i := range g.shards {
			held += g.shards[i].count
		}
		heldPeak = max(heldPeak, held)
	})
	t.Logf("%d requests/s for %v: %d refused; at most %d ids held; the guard's tables at most %d MiB; live heap at most %d MiB (%d MiB before), Sys at most %d MiB",
		rate, d, refused, heldPeak, guardPeak>>20, peak>>20, before.HeapInuse>>20, sys>>20)
	if refused != 0 {
		t.Fatalf("%d fresh requests refused", refused)
	}
	if peak >= 256<<20 {
		t.Fatalf("peak live heap %d MiB", peak>>20)
	}
}

// BenchmarkReplayGuard checks distinct ids from parallel goroutines at
// 20,000 requests a second of virtual time (so ids expire as in service),
// against the default guard.
func BenchmarkReplayGuard(b *testing.B) {
	g := testReplayGuard(MaxRequestAge, MaxClockSkew, DefaultMaxReplayEntries)
	// 2^24 distinct (client, id) pairs: 839 s of virtual time, more than
	// an id is remembered.
	clients := make([]string, 128)
	for i := range clients {
		clients[i] = fmt.Sprintf("ed25519:%064x", i)
	}
	ids := make([]string, 1<<17)
	for i := range ids {
		ids[i] = fmt.Sprintf("req-%016x", i)
	}
	var seq atomic.Int64
	var refused atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			now := replayT0.Add(time.Duration(i) * (time.Second / 20_000))
			client := clients[(i>>17)%int64(len(clients))]
			if g.check(now, now, client, ids[i&(1<<17-1)]) != replayFresh {
				refused.Add(1)
			}
		}
	})
	if r := refused.Load(); r != 0 {
		b.Fatalf("%d refused", r)
	}
}
