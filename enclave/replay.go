package enclave

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayGuard remembers the request ids seen while their timestamps are
// fresh, so that each stamped request is acted on at most once.
//
// It keeps two generations of ids and drops the older one every window, so
// an id is remembered for at least one window (and at most two) after it was
// first seen. With window = maxAge + maxSkew, a request is stale before its
// id can be forgotten. Memory is bounded: when the guard holds max ids it
// refuses new requests rather than forget any (fail closed).
type replayGuard struct {
	mu       sync.Mutex
	window   time.Duration
	max      int
	cur      map[[32]byte]struct{}
	prev     map[[32]byte]struct{}
	curStart time.Time
}

func newReplayGuard(window time.Duration, max int) *replayGuard {
	return &replayGuard{window: window, max: max, cur: map[[32]byte]struct{}{}, prev: map[[32]byte]struct{}{}}
}

type replayResult int

const (
	replayFresh replayResult = iota
	replaySeen
	replayFull
)

// check records (client, requestID) and says whether it was new.
func (g *replayGuard) check(now time.Time, client, requestID string) replayResult {
	h := sha256.New()
	h.Write([]byte(client))
	h.Write([]byte{0})
	h.Write([]byte(requestID))
	var k [32]byte
	h.Sum(k[:0])

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.curStart.IsZero() {
		g.curStart = now
	}
	for now.Sub(g.curStart) >= g.window {
		g.prev, g.cur = g.cur, map[[32]byte]struct{}{}
		g.curStart = g.curStart.Add(g.window)
		if now.Sub(g.curStart) >= g.window {
			// Idle for more than a window: both generations are stale.
			g.prev = map[[32]byte]struct{}{}
			g.curStart = now
		}
	}
	if _, ok := g.cur[k]; ok {
		return replaySeen
	}
	if _, ok := g.prev[k]; ok {
		return replaySeen
	}
	if len(g.cur)+len(g.prev) >= g.max {
		return replayFull
	}
	g.cur[k] = struct{}{}
	return replayFresh
}
