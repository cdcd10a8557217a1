package proto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is the error of calls on a Client after Close, and Client.Err
// after Close.
var ErrClosed = errors.New("proto: client closed")

// ioBufferSize is the size of the bufio buffers on each connection.
const ioBufferSize = 64 << 10

// ClientOptions configure a Client. The zero value, and nil, mean defaults.
type ClientOptions struct {
	// Logger receives a record when the connection fails. Nil means
	// slog.Default().
	Logger *slog.Logger

	// QueueLen is how many encoded requests may wait for the writer
	// goroutine; 0 means 256.
	QueueLen int

	// DeadlineResolution is the shortest pause between two looks for
	// calls made with CallTimeout that are past their time: such a call
	// may end up to this much after its deadline. 0 means 50 ms.
	DeadlineResolution time.Duration
}

// A Client sends requests over one connection and matches responses to
// them by request id, so any number of goroutines may Call concurrently and
// be answered in any order.
//
// The connection is used by two goroutines: a reader, which delivers
// responses, and a writer, which writes requests through a buffer and
// flushes whenever no more are queued, so that many concurrent callers share
// system calls. A response that cannot be decoded, or that carries an id with
// no call waiting for it, means the peer is broken or hostile: the Client
// then closes the connection, every pending and later call fails, Done is
// closed and Err says why. A Client does not reconnect.
type Client struct {
	conn net.Conn
	log  *slog.Logger
	out  chan []byte
	done chan struct{}
	wg   sync.WaitGroup

	lastID atomic.Uint64

	mu      sync.Mutex
	err     error // set once, under mu, before done is closed
	pending map[uint64]pendingCall
	// timed counts the pending calls with a deadline. While there are
	// any, the timer sweep is armed to fire at sweepAt (since start; 0:
	// not armed), the earliest of their deadlines when it was set, but
	// never sooner than resolution after the last sweep. All under mu.
	timed      int
	sweepAt    time.Duration
	sweep      *time.Timer
	resolution time.Duration
}

// pendingCall is a call waiting for its response. A call made with
// CallTimeout has a deadline (monotonic, from start); past it, the sweep
// ends the call and clears the deadline, leaving the entry so that the
// late response is recognized, and dropped, when it arrives (as for a
// call whose context ended).
type pendingCall struct {
	ch       chan result
	deadline time.Duration // since Client.start; 0: none
}

// result is what a pending call receives: its response, or errTimedOut
// from the sweep.
type result struct {
	m   Message
	err error
}

// errTimedOut is the sweep's result for a call past its deadline; the
// caller returns context.DeadlineExceeded, as Call does when its context's
// deadline passes.
var errTimedOut = context.DeadlineExceeded

// NewClient starts a Client on conn, which it owns from then on: Close, or a
// protocol error, closes conn. A nil opts means defaults.
func NewClient(conn net.Conn, opts *ClientOptions) *Client {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 256
	}
	c := &Client{
		conn:    conn,
		log:     o.Logger,
		out:     make(chan []byte, o.QueueLen),
		done:    make(chan struct{}),
		pending: make(map[uint64]pendingCall),
	}
	c.resolution = o.DeadlineResolution
	if c.resolution <= 0 {
		c.resolution = 50 * time.Millisecond
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// ErrUnexpectedResponse is returned, wrapped, by Call when the peer answers
// with a message of the wrong type: a fault of the peer, not of the
// connection.
var ErrUnexpectedResponse = errors.New("proto: unexpected response type")

// Call sends req and waits for its response, ctx, or the end of the
// connection. req must be a request type (see IsRequest).
//
// An Error response is returned as (nil, *Error); any other response is of
// ResponseType(req.Type()), as a pointer (such as *SignResponse). Other
// errors are ctx's error, the connection's (see Err), or an encoding error
// for req. When ctx ends after the request was sent, its response is
// discarded when it arrives.
func (c *Client) Call(ctx context.Context, req Message) (Message, error) {
	return c.call(ctx, req, 0)
}

// CallTimeout is Call with a time limit: past timeout (and up to
// ClientOptions.DeadlineResolution after it) the call returns
// context.DeadlineExceeded, as Call does when its context's deadline
// passes. It spares the caller a context with a deadline, whose timer and
// cancellation a busy host would make and stop for every request: the
// Client keeps one timer, for the earliest deadline of its pending calls,
// and ends every call then due when it fires. A timeout <= 0 means none.
func (c *Client) CallTimeout(ctx context.Context, req Message, timeout time.Duration) (Message, error) {
	return c.call(ctx, req, timeout)
}

// start is the origin of the deadlines of pending calls (monotonic).
var start = time.Now()

func (c *Client) call(ctx context.Context, req Message, timeout time.Duration) (Message, error) {
	if _, err := kindOf(req); err != nil {
		return nil, err
	}
	want := ResponseType(req.Type())
	if want == 0 {
		return nil, fmt.Errorf("proto: %v is not a request", req.Type())
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := c.lastID.Add(1)
	payload, err := Marshal(id, req)
	if err != nil {
		return nil, err
	}

	// Register before sending, so that the response always finds us.
	pc := pendingCall{ch: make(chan result, 1)}
	if timeout > 0 {
		pc.deadline = max(time.Since(start)+timeout, 1)
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[id] = pc
	if pc.deadline != 0 {
		c.timed++
		c.armLocked(pc.deadline)
	}
	c.mu.Unlock()

	select {
	case c.out <- payload:
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	case r := <-pc.ch:
		// Only the sweep answers a call not sent yet: it never will be.
		c.forget(id)
		return nil, r.err
	case <-c.done:
		return nil, c.Err()
	}

	var r result
	select {
	case r = <-pc.ch:
	case <-ctx.Done():
		// The request may be on the wire: leave the entry, so that the
		// response is recognized, and dropped, when it arrives.
		c.untime(id)
		return nil, ctx.Err()
	case <-c.done:
		select {
		case r = <-pc.ch:
		default:
			return nil, c.Err()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	resp := r.m
	if e, ok := resp.(*Error); ok {
		return nil, e
	}
	if resp.Type() != want {
		return nil, fmt.Errorf("%w: got %v in response to %v", ErrUnexpectedResponse, resp.Type(), req.Type())
	}
	return resp, nil
}

// armLocked makes the sweep fire by deadline at the latest. c.mu is held.
// The calls of a connection nearly always have the same timeout, so a new
// call's deadline is later than the one the sweep is armed for, and a call
// costs no timer operation.
func (c *Client) armLocked(deadline time.Duration) {
	if c.sweepAt != 0 && c.sweepAt <= deadline {
		return
	}
	c.sweepAt = deadline
	d := max(deadline-time.Since(start), 0)
	if c.sweep == nil {
		c.sweep = time.AfterFunc(d, c.sweepDeadlines)
	} else {
		c.sweep.Reset(d)
	}
}

// sweepDeadlines ends the pending calls past their deadline, and arms
// itself again for the earliest deadline left (no sooner than
// c.resolution from now, so that calls due close together end together).
func (c *Client) sweepDeadlines() {
	now := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepAt = 0
	if c.err != nil {
		return
	}
	var next time.Duration
	for id, pc := range c.pending {
		switch {
		case pc.deadline == 0:
			continue
		case pc.deadline > now:
			if next == 0 || pc.deadline < next {
				next = pc.deadline
			}
			continue
		}
		// Nothing else sends to pc.ch while the entry is in the map
		// with a deadline, and its buffer has room for one result.
		pc.ch <- result{err: errTimedOut}
		c.pending[id] = pendingCall{ch: pc.ch}
		c.timed--
	}
	if c.timed > 0 {
		c.armLocked(max(next, now+c.resolution))
	}
}

// untime clears the deadline of call id, which its caller has left: the
// entry stays, to recognize the late response.
func (c *Client) untime(id uint64) {
	c.mu.Lock()
	if pc, ok := c.pending[id]; ok && pc.deadline != 0 {
		c.pending[id] = pendingCall{ch: pc.ch}
		c.timed--
	}
	c.mu.Unlock()
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	if pc, ok := c.pending[id]; ok {
		delete(c.pending, id)
		if pc.deadline != 0 {
			c.timed--
		}
	}
	c.mu.Unlock()
}

// Done returns a channel that is closed when the Client stops: after Close,
// or when the connection fails.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the Client works, and afterwards why it stopped:
// ErrClosed after Close, or the connection's error.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection, fails all pending calls with ErrClosed, and
// waits for the Client's goroutines to exit. It may be called more than
// once and concurrently with Call.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// fail stops the Client with err, unless it has stopped already.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.pending = nil
	c.timed, c.sweepAt = 0, 0
	if c.sweep != nil {
		c.sweep.Stop()
	}
	close(c.done)
	c.mu.Unlock()
	c.conn.Close()
	if err != ErrClosed {
		c.log.Warn("proto: client connection failed", "err", err)
	}
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	fr := NewFrameReader(bufio.NewReaderSize(c.conn, ioBufferSize))
	for {
		p, err := fr.ReadFrame()
		if err != nil {
			c.fail(fmt.Errorf("proto: connection lost: %w", err))
			return
		}
		id, m, err := Unmarshal(p)
		if err != nil {
			c.fail(fmt.Errorf("proto: bad response from peer: %w", err))
			return
		}
		c.mu.Lock()
		pc, ok := c.pending[id]
		delete(c.pending, id)
		if pc.deadline != 0 {
			c.timed--
		}
		c.mu.Unlock()
		if !ok {
			c.fail(fmt.Errorf("proto: response with unknown request id %d", id))
			return
		}
		// Buffered, and sent to once (the sweep sends only to entries
		// still in the map with a deadline): never blocks.
		pc.ch <- result{m: m}
	}
}

func (c *Client) writeLoop() {
	defer c.wg.Done()
	bw := bufio.NewWriterSize(c.conn, ioBufferSize)
	for {
		var p []byte
		select {
		case p = <-c.out:
		case <-c.done:
			return
		}
		if err := writeBatch(bw, p, c.out); err != nil {
			c.fail(fmt.Errorf("proto: connection lost: %w", err))
			return
		}
	}
}

// writeBatch writes p and every payload already queued in out, then
// flushes.
func writeBatch(bw *bufio.Writer, p []byte, out <-chan []byte) error {
	for {
		if err := WriteFrame(bw, p); err != nil {
			return err
		}
		select {
		case p = <-out:
			continue
		default:
		}
		break
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("proto: write frame: %w", err)
	}
	return nil
}
