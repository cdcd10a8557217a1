package proto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
)

var quiet = slog.New(slog.DiscardHandler)

// echo answers a SignRequest with its body as the signed transaction, and a
// HealthRequest with a HealthResponse, after a random delay so that
// responses overtake each other.
var echo = HandlerFunc(func(ctx context.Context, req Message) Message {
	if d := rand.IntN(200); d < 100 {
		time.Sleep(time.Duration(d) * time.Microsecond)
	}
	switch req := req.(type) {
	case *SignRequest:
		return &SignResponse{SignedTransaction: req.Body}
	case *HealthRequest:
		return &HealthResponse{Version: "echo"}
	case *KeysRequest:
		return &KeysResponse{}
	}
	return &Error{Code: "unexpected"}
})

// pipeClient serves h on one end of a net.Pipe and returns a Client on the
// other. The server is stopped, and waited for, at cleanup.
func pipeClient(t *testing.T, h Handler, opts *ServerOptions) *Client {
	t.Helper()
	cs, ss := net.Pipe()
	if opts == nil {
		opts = &ServerOptions{Logger: quiet}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeConn(ctx, ss, h, opts)
	}()
	c := NewClient(cs, &ClientOptions{Logger: quiet})
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c
}

// unixListener listens on a fresh Unix socket.
func unixListener(t testing.TB) net.Listener {
	t.Helper()
	dir, err := os.MkdirTemp("", "proto") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// unixServe runs Serve on a Unix socket until cleanup and returns a
// function that dials a new Client.
func unixServe(t testing.TB, h Handler, opts *ServerOptions) (dial func() *Client) {
	t.Helper()
	l := unixListener(t)
	if opts == nil {
		opts = &ServerOptions{Logger: quiet}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, l, h, opts) }()
	var clients []*Client
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return func() *Client {
		conn, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := NewClient(conn, &ClientOptions{Logger: quiet})
		clients = append(clients, c)
		return c
	}
}

// hammer makes n goroutines each do calls round trips on c and checks that
// every one gets its own answer.
func hammer(t *testing.T, c *Client, n, calls int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for i := range calls {
				body := fmt.Appendf(nil, "request %d/%d", g, i)
				resp, err := c.Call(context.Background(), &SignRequest{Body: body})
				if err != nil {
					t.Errorf("Call: %v", err)
					return
				}
				if got := resp.(*SignResponse).SignedTransaction; !bytes.Equal(got, body) {
					t.Errorf("got response %q to %q", got, body)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestConcurrentCallsPipe(t *testing.T) {
	c := pipeClient(t, echo, nil)
	hammer(t, c, 64, 50)
}

func TestConcurrentCallsUnix(t *testing.T) {
	dial := unixServe(t, echo, nil)
	var wg sync.WaitGroup
	for range 4 {
		c := dial()
		wg.Go(func() { hammer(t, c, 32, 50) })
	}
	wg.Wait()
}

// TestOutOfOrder: a slow request does not hold up a fast one behind it.
func TestOutOfOrder(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		if string(req.(*SignRequest).Body) == "slow" {
			<-release
		}
		return &SignResponse{SignedTransaction: req.(*SignRequest).Body}
	})
	for name, c := range map[string]*Client{
		"pipe": pipeClient(t, h, nil),
		"unix": unixServe(t, h, nil)(),
	} {
		t.Run(name, func(t *testing.T) {
			slow := make(chan error, 1)
			go func() {
				_, err := c.Call(context.Background(), &SignRequest{Body: []byte("slow")})
				slow <- err
			}()
			time.Sleep(10 * time.Millisecond) // let "slow" go first
			if _, err := c.Call(context.Background(), &SignRequest{Body: []byte("fast")}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-slow:
				t.Fatalf("slow call returned first: %v", err)
			default:
			}
			release <- struct{}{}
			if err := <-slow; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCallContextCanceled: a canceled call returns at once, its late
// response is dropped without harming the connection.
func TestCallContextCanceled(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		if _, ok := req.(*SignRequest); ok {
			<-release
		}
		return echo(ctx, req)
	})
	c := pipeClient(t, h, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, &SignRequest{Body: []byte("x")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call: %v, want deadline exceeded", err)
	}
	close(release) // the late response arrives now
	for range 10 {
		if _, err := c.Call(context.Background(), &HealthRequest{}); err != nil {
			t.Fatalf("after cancel: %v", err)
		}
	}
	if c.Err() != nil {
		t.Fatalf("client died: %v", c.Err())
	}

	// A context done before the call never sends it.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.Call(done, &HealthRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Call with done ctx: %v", err)
	}
}

// TestConnectionDiesMidCall: every pending call fails, later calls too.
func TestConnectionDiesMidCall(t *testing.T) {
	cs, ss := net.Pipe()
	c := NewClient(cs, &ClientOptions{Logger: quiet})
	defer c.Close()
	go func() {
		// Read one request, then hang up.
		NewFrameReader(ss).ReadFrame()
		ss.Close()
	}()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			_, err := c.Call(context.Background(), &HealthRequest{})
			if err == nil {
				t.Error("Call succeeded on a dead connection")
			}
		})
	}
	wg.Wait()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := c.Err(); err == nil || !strings.HasPrefix(err.Error(), "proto: ") {
		t.Errorf("Err = %v", err)
	}
	if _, err := c.Call(context.Background(), &HealthRequest{}); err == nil {
		t.Error("Call after death succeeded")
	}
}

func TestClientClose(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return &HealthResponse{}
	}), nil)
	errc := make(chan error)
	go func() {
		_, err := c.Call(context.Background(), &HealthRequest{})
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("pending call: %v, want ErrClosed", err)
	}
	if _, err := c.Call(context.Background(), &HealthRequest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v", c.Err())
	}
	c.Close() // idempotent
}

func TestCallRefusesNonRequest(t *testing.T) {
	c := pipeClient(t, echo, nil)
	if _, err := c.Call(context.Background(), &SignResponse{}); err == nil {
		t.Error("Call(SignResponse) succeeded")
	}
	if _, err := c.Call(context.Background(), nil); err == nil {
		t.Error("Call(nil) succeeded")
	}
	if c.Err() != nil {
		t.Error(c.Err())
	}
}

// fakeServer gives a Client whose peer is the test: it reads the
// requests and writes whatever the test wants.
func fakeServer(t *testing.T) (*Client, *FrameReader, net.Conn) {
	cs, ss := net.Pipe()
	c := NewClient(cs, &ClientOptions{Logger: quiet})
	t.Cleanup(func() { c.Close(); ss.Close() })
	return c, NewFrameReader(ss), ss
}

func mustMarshal(t testing.TB, id uint64, m Message) []byte {
	t.Helper()
	p, err := Marshal(id, m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientKilledByBadPeer: garbage, an unknown id, or a bad frame from
// the peer fails the Client.
func TestClientKilledByBadPeer(t *testing.T) {
	tests := []struct {
		name    string
		reply   func(id uint64) []byte // raw bytes written after reading the request
		errText string
	}{
		{"garbage payload", func(uint64) []byte { return frame([]byte("garbage")) }, "bad response"},
		{"unknown id", func(id uint64) []byte { return frame(mustMarshal(t, id+1000, &HealthResponse{})) }, "unknown request id"},
		{"huge frame", func(uint64) []byte { return []byte{0xff, 0xff, 0xff, 0xff} }, "frame too large"},
		{"empty frame", func(uint64) []byte { return []byte{0, 0, 0, 0} }, "empty frame"},
		{"bad body", func(id uint64) []byte {
			return frame(envHex(t, TypeHealthResponse, "a0")) // missing fields; id 7 is unknown anyway
		}, "bad response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fr, ss := fakeServer(t)
			errc := make(chan error, 1)
			go func() {
				_, err := c.Call(context.Background(), &HealthRequest{})
				errc <- err
			}()
			p, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := Unmarshal(p)
			if err != nil {
				t.Fatal(err)
			}
			go ss.Write(tc.reply(id))
			if err := <-errc; err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("Call: %v, want %q", err, tc.errText)
			}
			<-c.Done()
			if !strings.Contains(c.Err().Error(), tc.errText) {
				t.Errorf("Err: %v", c.Err())
			}
		})
	}
}

func TestClientDuplicateResponse(t *testing.T) {
	c, fr, ss := fakeServer(t)
	go func() {
		p, _ := fr.ReadFrame()
		id, _, _ := Unmarshal(p)
		resp := frame(mustMarshal(t, id, &HealthResponse{}))
		ss.Write(append(resp, resp...))
	}()
	if _, err := c.Call(context.Background(), &HealthRequest{}); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if !strings.Contains(c.Err().Error(), "unknown request id") {
		t.Errorf("Err: %v", c.Err())
	}
}

func TestClientWrongResponseType(t *testing.T) {
	c, fr, ss := fakeServer(t)
	go func() {
		p, _ := fr.ReadFrame()
		id, _, _ := Unmarshal(p)
		ss.Write(frame(mustMarshal(t, id, &KeysResponse{})))
	}()
	_, err := c.Call(context.Background(), &HealthRequest{})
	if err == nil || !strings.Contains(err.Error(), "keys_response in response to health_request") {
		t.Errorf("Call: %v", err)
	}
}

func TestClientRemoteError(t *testing.T) {
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		return &Error{Code: "policy_denied", Rule: "r1", Message: "no"}
	}), nil)
	resp, err := c.Call(context.Background(), &SignRequest{})
	var e *Error
	if resp != nil || !errors.As(err, &e) || e.Code != "policy_denied" || e.Rule != "r1" {
		t.Errorf("Call = %v, %v", resp, err)
	}
}

// frame returns p with its length prefix.
func frame(p []byte) []byte {
	var b bytes.Buffer
	if err := WriteFrame(&b, p); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// rawServer serves h on a pipe whose client end the test drives by hand.
func rawServer(t *testing.T, h Handler, opts *ServerOptions) (conn net.Conn, fr *FrameReader, result <-chan error) {
	cs, ss := net.Pipe()
	if opts == nil {
		opts = &ServerOptions{Logger: quiet}
	}
	errc := make(chan error, 1)
	go func() { errc <- ServeConn(context.Background(), ss, h, opts) }()
	t.Cleanup(func() { cs.Close() })
	return cs, NewFrameReader(cs), errc
}

// readResponse reads one response.
func readResponse(t *testing.T, fr *FrameReader) (uint64, Message) {
	t.Helper()
	p, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	id, m, err := Unmarshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return id, m
}

// TestServerBadRequest: a frame whose envelope is valid but body is not is
// answered with bad_request, and the connection stays up.
func TestServerBadRequest(t *testing.T) {
	conn, fr, _ := rawServer(t, echo, nil)
	for _, p := range [][]byte{
		envHex(t, TypeSignRequest, "a1 01 40"),          // missing stamp
		envHex(t, TypeSignResponse, "a0"),               // bad body of a response type
		mustMarshal(t, 7, &HealthResponse{}),            // not a request
		unhex(t, "a4 0101 02 18 63 0307 04 41 a0"),      // unknown type 99
		unhex(t, "a4 0102 0202 0307 04 41 a0"),          // version 2
		envHex(t, TypeSignRequest, "a2 01 40 02 61 ff"), // invalid UTF-8
	} {
		if _, err := conn.Write(frame(p)); err != nil {
			t.Fatal(err)
		}
		id, m := readResponse(t, fr)
		e, ok := m.(*Error)
		if id != 7 || !ok || e.Code != refusal.CodeBadRequest {
			t.Fatalf("response to %x: %d %#v", p, id, m)
		}
	}
	// Still serving.
	conn.Write(frame(mustMarshal(t, 8, &HealthRequest{})))
	if id, m := readResponse(t, fr); id != 8 || m.Type() != TypeHealthResponse {
		t.Fatalf("got %d %v", id, m.Type())
	}
}

// TestServerClosesOnGarbage: without a readable envelope there is no id to
// answer, and the stream cannot be trusted: the server hangs up.
func TestServerClosesOnGarbage(t *testing.T) {
	for name, raw := range map[string][]byte{
		"garbage":             frame([]byte("\xff\x00garbage")),
		"id zero":             frame(unhex(t, "a4 0101 0202 0300 04 41 a0")),
		"non-canonical":       frame(unhex(t, "a4 0101 0202 03 18 07 04 41 a0")),
		"empty frame":         {0, 0, 0, 0},
		"huge declared frame": {0x7f, 0xff, 0xff, 0xff},
		"http":                []byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			conn, fr, result := rawServer(t, echo, nil)
			go conn.Write(raw)
			if _, err := fr.ReadFrame(); err == nil {
				t.Fatal("got a response")
			}
			if err := <-result; err == nil || !strings.HasPrefix(err.Error(), "proto: ") {
				t.Errorf("ServeConn: %v", err)
			}
		})
	}
}

// TestServerHandlerPanic: recovered into an internal error, logged without
// the request's contents.
func TestServerHandlerPanic(t *testing.T) {
	var logs syncBuffer
	opts := &ServerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		panic(fmt.Sprintf("bad request %s", req.(*SignRequest).Body))
	}), opts)
	_, err := c.Call(context.Background(), &SignRequest{Body: []byte("SECRET-BODY")})
	var e *Error
	if !errors.As(err, &e) || e.Code != refusal.CodeInternal {
		t.Fatalf("Call: %v", err)
	}
	if _, err := c.Call(context.Background(), &SignRequest{Body: []byte("again")}); !errors.As(err, &e) {
		t.Fatalf("second Call: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "handler panicked") || !strings.Contains(out, "conn_test.go") {
		t.Errorf("log lacks the panic and its location:\n%s", out)
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("log contains request contents:\n%s", out)
	}
}

func TestServerBadResponses(t *testing.T) {
	tests := []struct {
		name string
		resp Message
	}{
		{"nil", nil},
		{"nil pointer", (*SignResponse)(nil)},
		{"over cap", &SignResponse{SignedTransaction: make([]byte, MaxSignedTransactionLen+1)}},
		{"foreign", foreign{}},
		{"error without code", &Error{Message: "m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := pipeClient(t, HandlerFunc(func(context.Context, Message) Message { return tc.resp }), nil)
			_, err := c.Call(context.Background(), &SignRequest{})
			var e *Error
			if !errors.As(err, &e) || e.Code != refusal.CodeInternal {
				t.Errorf("Call: %v", err)
			}
		})
	}
}

// TestServerBackPressure: no more than MaxInFlightPerConn handlers run at
// once for a connection.
func TestServerBackPressure(t *testing.T) {
	const limit = 3
	var running, peak atomic.Int32
	c := pipeClient(t, HandlerFunc(func(ctx context.Context, req Message) Message {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		return &HealthResponse{}
	}), &ServerOptions{MaxInFlightPerConn: limit, Logger: quiet})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.Call(context.Background(), &HealthRequest{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit || p < 2 {
		t.Errorf("peak concurrency %d, limit %d", p, limit)
	}
}

// TestServeShutdown: canceling Serve's context stops accepting, closes
// connections, cancels handlers' contexts and waits for them.
func TestServeShutdown(t *testing.T) {
	l := unixListener(t)
	started := make(chan struct{})
	var finished atomic.Bool
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		close(started)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond)
		finished.Store(true)
		return &HealthResponse{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, l, h, &ServerOptions{Logger: quiet}) }()

	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(conn, &ClientOptions{Logger: quiet})
	defer c.Close()
	callErr := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), &HealthRequest{})
		callErr <- err
	}()
	<-started
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !finished.Load() {
		t.Error("Serve returned before the handler")
	}
	if err := <-callErr; err == nil {
		t.Error("call on a closed connection succeeded")
	}
	if _, err := net.Dial("unix", l.Addr().String()); err == nil {
		t.Error("still accepting")
	}
}

// failingListener hands out conns, then fails.
type failingListener struct {
	net.Listener
	conns chan net.Conn
}

func (l failingListener) Accept() (net.Conn, error) {
	if c, ok := <-l.conns; ok {
		return c, nil
	}
	return nil, errors.New("boom")
}

// TestServeListenerFails: Serve returns the accept error, after closing
// the connections it had accepted and waiting for their handlers.
func TestServeListenerFails(t *testing.T) {
	l := failingListener{unixListener(t), make(chan net.Conn, 1)}
	cs, ss := net.Pipe()
	l.conns <- ss
	c := NewClient(cs, &ClientOptions{Logger: quiet})
	defer c.Close()
	started := make(chan struct{})
	var finished atomic.Bool
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		if _, ok := req.(*KeysRequest); ok {
			close(started)
			<-ctx.Done()
			finished.Store(true)
		}
		return echo(ctx, req)
	})
	errc := make(chan error, 1)
	go func() { errc <- Serve(context.Background(), l, h, &ServerOptions{Logger: quiet}) }()
	if _, err := c.Call(context.Background(), &HealthRequest{}); err != nil {
		t.Fatal(err)
	}
	go c.Call(context.Background(), &KeysRequest{})
	<-started
	close(l.conns)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "proto: accept: boom") {
		t.Errorf("Serve: %v", err)
	}
	if !finished.Load() {
		t.Error("Serve returned before the handler")
	}
	<-c.Done()
}

// TestServerEOF: a peer that hangs up is a clean end.
func TestServerEOF(t *testing.T) {
	conn, _, result := rawServer(t, echo, nil)
	conn.Close()
	if err := <-result; err != nil {
		t.Errorf("ServeConn: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)

// brokenWriter is a conn whose writes fail.
type brokenWriter struct{ net.Conn }

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

// TestServerWriteFails: a failed write ends the connection with that error.
func TestServerWriteFails(t *testing.T) {
	cs, ss := net.Pipe()
	defer cs.Close()
	errc := make(chan error, 1)
	go func() { errc <- ServeConn(context.Background(), brokenWriter{ss}, echo, &ServerOptions{Logger: quiet}) }()
	cs.Write(frame(mustMarshal(t, 1, &HealthRequest{})))
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("ServeConn: %v", err)
	}
}

// stuckConn is a conn whose writes block until the test ends; entered is
// closed when the first write starts.
type stuckConn struct {
	net.Conn
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (c *stuckConn) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.entered) })
	<-c.release
	return 0, io.ErrClosedPipe
}

// TestCallCanceledBeforeSend: a call that cannot even be queued leaves no
// trace.
func TestCallCanceledBeforeSend(t *testing.T) {
	cs, ss := net.Pipe()
	defer ss.Close()
	conn := &stuckConn{Conn: cs, entered: make(chan struct{}), release: make(chan struct{})}
	c := NewClient(conn, &ClientOptions{Logger: quiet, QueueLen: 1})
	defer c.Close()
	defer close(conn.release)
	go c.Call(context.Background(), &HealthRequest{})
	<-conn.entered // the writer holds the first request
	go c.Call(context.Background(), &HealthRequest{})
	for len(c.out) != 1 { // the second fills the queue
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, &HealthRequest{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) != 2 {
		t.Errorf("%d calls pending, want 2", len(c.pending))
	}
}

// TestServerRepairsErrors: an Error response beyond the caps keeps its code.
func TestServerRepairsErrors(t *testing.T) {
	long := strings.Repeat("\u00e9", MaxErrorMessageLen) // 2 bytes each
	c := pipeClient(t, HandlerFunc(func(context.Context, Message) Message {
		return Error{Code: "policy_denied", Rule: "r\xff", Message: long}
	}), nil)
	_, err := c.Call(context.Background(), &SignRequest{})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Call: %v", err)
	}
	if e.Code != "policy_denied" || e.Rule != "r?" || e.Message != long[:MaxErrorMessageLen] {
		t.Errorf("got %q %q %d bytes", e.Code, e.Rule, len(e.Message))
	}
}
