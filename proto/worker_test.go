package proto

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goroutineID returns the calling goroutine's id, read from its stack
// header ("goroutine N [running]:"). For tests only.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// TestServerWorkersReusedAndBounded: requests are handled by a few
// long-lived workers, not a goroutine each. Sequential calls reuse the
// same worker or two; waves of requests that fill every slot of both pools
// at once, repeated, never use more goroutines than the slots (the bound
// on the connection's workers), and reuse them from wave to wave.
func TestServerWorkersReusedAndBounded(t *testing.T) {
	const limit, control = 4, 2
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var gate chan struct{} // when set, every handler waits for it to close
	var arrived sync.WaitGroup
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		mu.Lock()
		seen[goroutineID()] = true
		g := gate
		mu.Unlock()
		if g != nil {
			arrived.Done()
			<-g
		}
		if req.Type() == TypeKeysRequest {
			return &KeysResponse{}
		}
		return &HealthResponse{}
	})
	opts := &ServerOptions{
		MaxInFlightPerConn:        limit,
		MaxControlInFlightPerConn: control,
		Control:                   func(m Message) bool { _, ok := m.(*HealthRequest); return ok },
		Logger:                    quiet,
	}
	c := pipeClient(t, h, opts)

	for range 200 {
		if _, err := c.Call(context.Background(), &KeysRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	// The response may reach the client, and the next request the
	// server, before the worker that sent it is idle: a second worker
	// (of a free slot) may then take it, now and then a third; never one
	// per request.
	if n := len(seen); n > 3 {
		t.Errorf("200 sequential requests were handled by %d goroutines, want at most 3 (workers reused)", n)
	}
	clear(seen)
	mu.Unlock()

	const waves = 30
	for range waves {
		g := make(chan struct{})
		mu.Lock()
		gate = g
		mu.Unlock()
		arrived.Add(limit + control)
		var wg sync.WaitGroup
		for i := range limit + control {
			var req Message = &KeysRequest{}
			if i < control {
				req = &HealthRequest{}
			}
			wg.Go(func() {
				if _, err := c.Call(context.Background(), req); err != nil {
					t.Error(err)
				}
			})
		}
		arrived.Wait() // every slot of both pools taken at once
		close(g)
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(seen); n > limit+control || n < limit+control {
		t.Errorf("%d waves of %d requests in flight at once were handled by %d goroutines, want exactly %d (one worker per slot, reused)", waves, limit+control, n, limit+control)
	}
}

// TestServerWorkersEndWhenIdle: a worker that waits longer than
// workerIdleTimeout for a request ends, so that a connection that once had
// many requests in flight does not keep their goroutines: after a long
// pause, a request is handled by a new goroutine; after a short one, by
// the same.
func TestServerWorkersEndWhenIdle(t *testing.T) {
	defer func(d time.Duration) { workerIdleTimeout = d }(workerIdleTimeout)
	workerIdleTimeout = 100 * time.Millisecond
	ids := make(chan uint64, 1)
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		ids <- goroutineID()
		return &HealthResponse{}
	}), nil)
	call := func() uint64 {
		if _, err := c.Call(context.Background(), &HealthRequest{}); err != nil {
			t.Fatal(err)
		}
		return <-ids
	}
	first := call()
	time.Sleep(workerIdleTimeout / 20) // the worker goes idle (it sent the response just before)
	if again := call(); again != first {
		t.Fatalf("a request soon after another was handled by goroutine %d, not the idle worker %d", again, first)
	}
	time.Sleep(10 * workerIdleTimeout)
	if later := call(); later == first {
		t.Fatalf("worker %d still served a request after idling %v, longer than its timeout %v", first, 10*workerIdleTimeout, workerIdleTimeout)
	}
}
