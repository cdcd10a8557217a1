package proto

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// sweepIdle reports whether c has no call with a deadline pending, and
// its sweep, when it fires, stops (it may be armed still, for the deadline
// of a call answered since).
func sweepIdle(c *Client) bool {
	c.mu.Lock()
	idle := c.timed == 0
	c.mu.Unlock()
	if !idle {
		return false
	}
	c.sweepDeadlines()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sweepAt == 0
}

// TestCallTimeout: a call past its deadline returns DeadlineExceeded while
// its request is with the peer; the late response is dropped without
// harming the connection, and the sweep stops once no call has a deadline.
func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		if _, ok := req.(*SignRequest); ok {
			<-release
		}
		return echo(ctx, req)
	})
	c := pipeClient(t, h, nil)
	c.mu.Lock()
	c.resolution = time.Millisecond
	c.mu.Unlock()
	start := time.Now()
	_, err := c.CallTimeout(context.Background(), &SignRequest{Body: []byte("x")}, 20*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CallTimeout: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("returned after %v, before its deadline", d)
	}
	c.mu.Lock()
	if len(c.pending) != 1 {
		t.Errorf("%d calls pending, want the timed-out one, for its late response", len(c.pending))
	}
	c.mu.Unlock()
	close(release) // the late response arrives now
	for range 10 {
		if _, err := c.CallTimeout(context.Background(), &HealthRequest{}, time.Minute); err != nil {
			t.Fatalf("after the timeout: %v", err)
		}
	}
	if c.Err() != nil {
		t.Fatalf("client died: %v", c.Err())
	}
	c.mu.Lock()
	if len(c.pending) != 0 {
		t.Errorf("%d calls pending, want none", len(c.pending))
	}
	c.mu.Unlock()
	waitFor(t, "the sweep to stop", func() bool { return sweepIdle(c) })
}

// TestCallTimeoutEarlierDeadline: a call with a shorter timeout than the
// calls already pending brings the sweep forward: it ends at its own
// deadline, not theirs.
func TestCallTimeoutEarlierDeadline(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		<-block
		return echo(ctx, req)
	}), nil)
	c.mu.Lock()
	c.resolution = time.Millisecond
	c.mu.Unlock()
	go c.CallTimeout(context.Background(), &HealthRequest{}, time.Hour)
	waitFor(t, "the first call to be pending", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.timed == 1
	})
	errc := make(chan error, 1)
	go func() {
		_, err := c.CallTimeout(context.Background(), &HealthRequest{}, 20*time.Millisecond)
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CallTimeout: %v, want deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call with the earlier deadline did not end by it")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed != 1 || c.sweepAt == 0 {
		t.Errorf("after the short call: %d calls with a deadline, sweep at %v; want the first call's, armed", c.timed, c.sweepAt)
	}
}

// TestCallTimeoutContext: a call with a deadline still ends with its
// context, and then leaves no deadline for the sweep.
func TestCallTimeoutContext(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		<-block
		return echo(ctx, req)
	}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.CallTimeout(ctx, &HealthRequest{}, time.Hour)
		errc <- err
	}()
	waitFor(t, "the call to be pending", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.timed == 1
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("CallTimeout: %v, want canceled", err)
	}
	waitFor(t, "the sweep to stop", func() bool { return sweepIdle(c) })
}

// TestCallTimeoutBeforeSend: a call whose request cannot even be queued
// (the writer is stuck) times out too, and leaves no trace, as it was
// never sent.
func TestCallTimeoutBeforeSend(t *testing.T) {
	cs, ss := net.Pipe()
	defer ss.Close()
	conn := &stuckConn{Conn: cs, entered: make(chan struct{}), release: make(chan struct{})}
	c := NewClient(conn, &ClientOptions{Logger: quiet, QueueLen: 1, DeadlineResolution: time.Millisecond})
	defer c.Close()
	defer close(conn.release)
	go c.Call(context.Background(), &HealthRequest{})
	<-conn.entered // the writer holds the first request
	go c.Call(context.Background(), &HealthRequest{})
	for len(c.out) != 1 { // the second fills the queue
		time.Sleep(time.Millisecond)
	}
	if _, err := c.CallTimeout(context.Background(), &HealthRequest{}, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CallTimeout: %v", err)
	}
	c.mu.Lock()
	if len(c.pending) != 2 {
		t.Errorf("%d calls pending, want 2", len(c.pending))
	}
	c.mu.Unlock()
	waitFor(t, "the sweep to stop", func() bool { return sweepIdle(c) })
}

// TestCallTimeoutConcurrent: many calls with deadlines, some past them,
// some answered, on one connection: each gets its own outcome, and the
// count of calls with deadlines returns to zero (run with -race).
func TestCallTimeoutConcurrent(t *testing.T) {
	release := make(chan struct{})
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		if sr, ok := req.(*SignRequest); ok && string(sr.Body) == "slow" {
			<-release
		}
		return echo(ctx, req)
	}), nil)
	c.mu.Lock()
	c.resolution = time.Millisecond
	c.mu.Unlock()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			body, timeout := []byte("fast"), time.Minute
			if i%4 == 0 {
				body, timeout = []byte("slow"), 20*time.Millisecond
			}
			resp, err := c.CallTimeout(context.Background(), &SignRequest{Body: body}, timeout)
			switch {
			case body[0] == 's' && !errors.Is(err, context.DeadlineExceeded):
				t.Errorf("slow call: %v, want deadline exceeded", err)
			case body[0] == 'f' && err != nil:
				t.Errorf("fast call: %v", err)
			case body[0] == 'f' && string(resp.(*SignResponse).SignedTransaction) != "fast":
				t.Errorf("fast call answered %q", resp.(*SignResponse).SignedTransaction)
			}
		})
	}
	wg.Wait()
	close(release) // the late responses arrive now
	waitFor(t, "the sweep to stop", func() bool { return sweepIdle(c) })
	waitFor(t, "the late responses", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pending) == 0
	})
	if c.Err() != nil {
		t.Fatalf("client died: %v", c.Err())
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkCallDeadline: a call with a time limit, as the host makes one
// per request, with a context deadline (a timer and a cancellation per
// call) against CallTimeout (the connection's sweep), from many goroutines
// at once over a Unix socket.
func BenchmarkCallDeadline(b *testing.B) {
	c := unixServe(b, HandlerFunc(func(ctx context.Context, req Message) Message {
		return &SignResponse{SignedTransaction: req.(*SignRequest).Body}
	}), nil)()
	req := &SignRequest{Body: benchBody, Stamp: "ed25519;key=0123456789abcdef;sig=0123456789abcdef0123456789abcdef"}
	for _, bc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"context", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := c.Call(ctx, req)
			return err
		}},
		{"sweep", func(ctx context.Context) error {
			_, err := c.CallTimeout(ctx, req, 10*time.Second)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				// A cancelable parent, as an HTTP request's context is.
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				for pb.Next() {
					if err := bc.call(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
