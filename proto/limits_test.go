package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chaos reports whether the long versions run (make chaos).
func chaos() bool { return os.Getenv("NITROSIGN_CHAOS") != "" }

// pipeListener is a net.Listener whose connections are net.Pipes, made by
// Dial: thousands of connections without file descriptors.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// Dial returns the client end of a connection that Serve has accepted.
func (l *pipeListener) Dial(t testing.TB) net.Conn {
	cs, ss := net.Pipe()
	select {
	case l.conns <- ss:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve does not accept")
	}
	return cs
}

// serveOn runs Serve on l until the test ends.
func serveOn(t *testing.T, l net.Listener, h Handler, opts *ServerOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, h, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// closedByServer reports whether the server has closed c's other end.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Unix(1, 0)) // net.Pipe reports the peer's close before the deadline
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF
}

// countClosed counts the conns the server has closed.
func countClosed(conns []net.Conn) int {
	n := 0
	for _, c := range conns {
		if closedByServer(c) {
			n++
		}
	}
	return n
}

// waitClosed waits until want of conns are closed by the server.
func waitClosed(t *testing.T, conns []net.Conn, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := countClosed(conns)
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("%d of %d connections closed by the server, want %d", n, len(conns), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveHeap returns the live heap after collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// waitGoroutines waits for the goroutine count to fall to at most want.
func waitGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wellBehaved calls the server every few milliseconds over its own
// connection until the test ends, and fails the test if a call fails.
func wellBehaved(t *testing.T, l *pipeListener) (calls *atomic.Int64, stop func()) {
	c := NewClient(l.Dial(t), &ClientOptions{Logger: quiet})
	calls = new(atomic.Int64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.Call(cctx, &HealthRequest{})
			ccancel()
			if err != nil && ctx.Err() == nil {
				t.Errorf("a well-behaved client's call failed: %v", err)
				return
			}
			calls.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			c.Close()
		})
	}
	t.Cleanup(stop)
	return calls, stop
}

// TestServeIdleConnectionsCappedAndClosed: of many connections that never
// send a byte, those beyond MaxConns are closed at once (and logged, rate
// limited), the rest at the idle timeout; memory and goroutines come back,
// a new connection is served afterwards, and a well-behaved client is
// served throughout.
func TestServeIdleConnectionsCappedAndClosed(t *testing.T) {
	// The idle timeout must outlast the dialing, which the race detector
	// and a loaded machine slow down.
	limit, total, idle := 200, 500, 2*time.Second
	if chaos() {
		limit, total, idle = 2000, 3000, 20*time.Second
	}
	var logs syncBuffer
	l := newPipeListener()
	g0 := runtime.NumGoroutine()
	serveOn(t, l, echo, &ServerOptions{MaxConns: limit, IdleTimeout: idle, FrameTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	calls, stopClient := wellBehaved(t, l)
	heap0 := liveHeap()

	start := time.Now()
	conns := make([]net.Conn, total)
	for i := range conns {
		conns[i] = l.Dial(t)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// The well-behaved client holds one of the slots.
	waitClosed(t, conns, total-(limit-1), idle/2)
	heap1, g1 := liveHeap(), runtime.NumGoroutine()
	t.Logf("%d idle connections open (%d refused) in %v: live heap +%.1f MB (%.1f KB each), %d goroutines",
		limit-1, total-limit+1, time.Since(start).Round(time.Millisecond), mb(heap1-heap0), float64(heap1-heap0)/float64(limit-1)/1024, g1-g0)
	if per := (heap1 - heap0) / uint64(limit-1); per > 64<<10 {
		t.Errorf("an idle connection costs %d bytes of heap", per)
	}
	if n := strings.Count(logs.String(), "connections refused"); n < 1 || n > 2 {
		t.Errorf("%d log lines for the refused connections, want 1 or 2 (rate-limited):\n%s", n, logs.String())
	}

	waitClosed(t, conns, total, idle+10*time.Second)
	t.Logf("all closed %v after the first dial", time.Since(start).Round(time.Millisecond))
	for _, c := range conns {
		c.Close()
	}
	// A new connection is served once the idle ones are gone.
	c := NewClient(l.Dial(t), &ClientOptions{Logger: quiet})
	if _, err := c.Call(context.Background(), &HealthRequest{}); err != nil {
		t.Fatalf("a new connection after the idle ones closed: %v", err)
	}
	c.Close()
	if calls.Load() == 0 {
		t.Error("the well-behaved client made no call")
	}
	stopClient()
	heap2 := liveHeap()
	g2 := waitGoroutines(t, g0+2)
	t.Logf("after close: live heap %+.1f MB against before the flood, %d goroutines more than before Serve", mb(heap2)-mb(heap0), g2-g0)
	if heap2 > heap0 && heap2-heap0 > max(2<<20, (heap1-heap0)/4) {
		t.Errorf("live heap still %.1f MB above the start after the connections closed (%.1f MB at the peak)", mb(heap2-heap0), mb(heap1-heap0))
	}
	if g2 > g0+2 {
		t.Errorf("%d goroutines, %d before Serve", g2, g0)
	}
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// TestServeHalfWrittenFramesDropped: connections that send half of a
// maximum-size frame and stall are closed at the frame timeout; they cost
// about what arrived (not the declared size), and the memory comes back; a well-behaved client is served throughout.
func TestServeHalfWrittenFramesDropped(t *testing.T) {
	k, frameTimeout := 30, 2*time.Second
	if chaos() {
		k, frameTimeout = 300, 15*time.Second
	}
	l := newPipeListener()
	g0 := runtime.NumGoroutine()
	serveOn(t, l, echo, &ServerOptions{MaxConns: k + 10, FrameTimeout: frameTimeout, Logger: quiet})
	_, stopClient := wellBehaved(t, l)
	heap0 := liveHeap()

	half := make([]byte, 4+MaxFrameSize/2)
	binary.BigEndian.PutUint32(half, MaxFrameSize)
	conns := make([]net.Conn, k)
	var written sync.WaitGroup
	start := time.Now()
	for i := range conns {
		conns[i] = l.Dial(t)
		written.Go(func() {
			// A net.Pipe write returns once the server has read it all.
			if _, err := conns[i].Write(half); err != nil {
				t.Errorf("write: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	written.Wait()
	heap1 := liveHeap()
	if n := countClosed(conns); n > 0 {
		t.Logf("%d connections dropped before the measure: it is low", n)
	}
	arrived := uint64(k) * uint64(len(half))
	t.Logf("%d half-written 1 MiB frames (%.1f MB arrived): live heap +%.1f MB", k, mb(arrived), mb(heap1-heap0))
	if heap1 > heap0 && heap1-heap0 > arrived+uint64(k)*(256<<10) {
		t.Errorf("half-written frames hold %.1f MB for %.1f MB arrived", mb(heap1-heap0), mb(arrived))
	}
	waitClosed(t, conns, k, frameTimeout+10*time.Second)
	t.Logf("all dropped %v after the first dial", time.Since(start).Round(time.Millisecond))
	for _, c := range conns {
		c.Close()
	}
	stopClient()
	heap2 := liveHeap()
	g2 := waitGoroutines(t, g0+2)
	t.Logf("after close: live heap %+.1f MB against before, %d goroutines more than before Serve", mb(heap2)-mb(heap0), g2-g0)
	if heap2 > heap0 && heap2-heap0 > max(2<<20, (heap1-heap0)/4) {
		t.Errorf("live heap still %.1f MB above the start after the connections closed (%.1f MB at the peak)", mb(heap2-heap0), mb(heap1-heap0))
	}
	if g2 > g0+2 {
		t.Errorf("%d goroutines, %d before Serve", g2, g0)
	}
}

// TestServeConnFrameTimeout: a frame that does not arrive whole within
// FrameTimeout, whether stalled in its header or trickled, ends the
// connection with ErrFrameTimeout; a connection that merely waits between
// frames does not.
func TestServeConnFrameTimeout(t *testing.T) {
	opts := &ServerOptions{FrameTimeout: 200 * time.Millisecond, IdleTimeout: -1, Logger: quiet}
	req := frame(mustMarshal(t, 1, &HealthRequest{}))
	for _, tc := range []struct {
		name string
		send func(net.Conn)
	}{
		{"stalled header", func(c net.Conn) { c.Write(req[:2]) }},
		{"stalled payload", func(c net.Conn) { c.Write(req[:len(req)-1]) }},
		{"trickled", func(c net.Conn) {
			for _, b := range req {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, result := rawServer(t, echo, opts)
			go tc.send(conn)
			select {
			case err := <-result:
				if !errors.Is(err, ErrFrameTimeout) {
					t.Fatalf("ServeConn: %v, want ErrFrameTimeout", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the connection was not closed")
			}
		})
	}
	t.Run("pause between frames", func(t *testing.T) {
		conn, fr, result := rawServer(t, echo, opts)
		for range 2 {
			conn.Write(req)
			readResponse(t, fr)
			time.Sleep(3 * opts.FrameTimeout)
		}
		select {
		case err := <-result:
			t.Fatalf("ServeConn ended: %v", err)
		default:
		}
	})
}

// TestServeConnIdleWaitsForInFlight: a connection whose only request is
// still being handled is not idle, however long that takes; once answered,
// it is closed after IdleTimeout with ErrIdle.
func TestServeConnIdleWaitsForInFlight(t *testing.T) {
	const idle = 100 * time.Millisecond
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		<-release
		return &HealthResponse{}
	})
	conn, fr, result := rawServer(t, h, &ServerOptions{IdleTimeout: idle, Logger: quiet})
	conn.Write(frame(mustMarshal(t, 1, &HealthRequest{})))
	time.Sleep(4 * idle)
	select {
	case err := <-result:
		t.Fatalf("closed with a request in flight: %v", err)
	default:
	}
	close(release)
	readResponse(t, fr)
	answered := time.Now()
	select {
	case err := <-result:
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("ServeConn: %v, want ErrIdle", err)
		}
		if d := time.Since(answered); d < idle/2 {
			t.Errorf("closed %v after the answer, idle timeout %v", d, idle)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
}

// TestServeConnWriteTimeout: a peer that stops reading its responses loses
// the connection after FrameTimeout.
func TestServeConnWriteTimeout(t *testing.T) {
	conn, _, result := rawServer(t, echo, &ServerOptions{FrameTimeout: 100 * time.Millisecond, Logger: quiet})
	// A net.Pipe has no buffer: the response's write blocks until read,
	// and this test never reads.
	conn.Write(frame(mustMarshal(t, 1, &HealthRequest{})))
	select {
	case err := <-result:
		if !errors.Is(err, ErrFrameTimeout) {
			t.Fatalf("ServeConn: %v, want ErrFrameTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
}
