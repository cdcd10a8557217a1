package host

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// poolServer serves health requests with opts on a simulated vsock and
// returns a pool of n connections to it, and the server's listener.
func poolServer(t *testing.T, n int, opts proto.ServerOptions) (*pool, *countingListener) {
	t.Helper()
	tr := &transport.UnixVsock{Dir: t.TempDir(), CID: 16}
	ln, err := tr.Listen(5000)
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: ln}
	opts.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		proto.Serve(ctx, l, proto.HandlerFunc(func(context.Context, proto.Message) proto.Message {
			return &proto.HealthResponse{State: "ready"}
		}), &opts)
	}()
	p := newPool(&transport.UnixVsock{Dir: tr.Dir, CID: 3}, 16, 5000, n, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		p.close()
		cancel()
		<-done
	})
	return p, l
}

func health(t *testing.T, p *pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.call(ctx, &proto.HealthRequest{}); err != nil {
		t.Fatalf("call: %v", err)
	}
}

// TestPoolRedialsConnectionClosedIdle: a connection the enclave closed for
// idleness is redialled by the next call, which succeeds.
func TestPoolRedialsConnectionClosedIdle(t *testing.T) {
	p, l := poolServer(t, 1, proto.ServerOptions{IdleTimeout: 100 * time.Millisecond})
	health(t, p)
	p.slots[0].mu.Lock()
	c := p.slots[0].c
	p.slots[0].mu.Unlock()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the idle connection")
	}
	health(t, p)
	if n := l.n.Load(); n != 2 {
		t.Errorf("%d connections accepted, want 2 (one redial)", n)
	}
}

// TestPoolRetiresIdleConnection: a connection unused for maxIdle is not
// used again; the next call goes to a new one, and the old one is closed
// with the pool.
func TestPoolRetiresIdleConnection(t *testing.T) {
	p, l := poolServer(t, 1, proto.ServerOptions{IdleTimeout: -1})
	p.maxIdle = 50 * time.Millisecond
	health(t, p)
	p.slots[0].mu.Lock()
	old := p.slots[0].c
	p.slots[0].mu.Unlock()
	health(t, p)
	if n := l.n.Load(); n != 1 {
		t.Fatalf("%d connections accepted after two quick calls, want 1", n)
	}
	time.Sleep(100 * time.Millisecond)
	health(t, p)
	if n := l.n.Load(); n != 2 {
		t.Errorf("%d connections accepted, want 2 (the idle one retired)", n)
	}
	p.close()
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Error("the retired connection is still open after close")
	}
}

// TestPoolSurvivesEnclaveIdleTimeout: with the pool redialling before the
// server's idle timeout, calls at irregular intervals, some longer than
// that timeout, all succeed: no call lands on a connection the server is
// closing.
func TestPoolSurvivesEnclaveIdleTimeout(t *testing.T) {
	p, l := poolServer(t, 1, proto.ServerOptions{IdleTimeout: time.Second})
	p.maxIdle = 100 * time.Millisecond
	for range 15 {
		health(t, p)
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	}
	t.Logf("%d connections for 15 calls", l.n.Load())
}

// TestPoolOnConnect: the pool calls onConnect for a first connection and
// for one that replaces a connection that died (how the unsealer learns at
// once that a restarted enclave listens), not for one that replaces a
// connection left idle.
func TestPoolOnConnect(t *testing.T) {
	p, _ := poolServer(t, 1, proto.ServerOptions{IdleTimeout: -1})
	var n atomic.Int64
	p.onConnect = func() { n.Add(1) }
	health(t, p)
	health(t, p)
	if got := n.Load(); got != 1 {
		t.Fatalf("onConnect called %d times for one connection, want 1", got)
	}
	p.maxIdle = 20 * time.Millisecond
	time.Sleep(50 * time.Millisecond)
	health(t, p) // an idle redial
	if got := n.Load(); got != 1 {
		t.Fatalf("onConnect called %d times after an idle redial, want 1", got)
	}
	p.maxIdle = poolMaxIdle
	p.slots[0].mu.Lock()
	c := p.slots[0].c
	p.slots[0].mu.Unlock()
	c.Close() // the connection dies, as when the enclave process ends
	health(t, p)
	if got := n.Load(); got != 2 {
		t.Fatalf("onConnect called %d times after a dead connection was replaced, want 2", got)
	}
}
