package proto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/api/refusal"
)

// A Handler answers requests. Handle is called concurrently, once per
// request, with a context that is canceled when the connection closes or the
// server stops. It returns the response: the request's ResponseType, or an
// *Error. A panic is recovered and answered with an Error of code
// refusal.CodeInternal, as is a nil response or one that cannot be encoded (see
// Marshal), except that an *Error whose strings exceed the caps or are not
// UTF-8 is sent truncated and repaired, keeping its code.
type Handler interface {
	Handle(ctx context.Context, req Message) Message
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, req Message) Message

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req Message) Message { return f(ctx, req) }

// DefaultMaxInFlightPerConn is the default of ServerOptions.MaxInFlightPerConn.
const DefaultMaxInFlightPerConn = 256

// DefaultMaxControlInFlightPerConn is the default of
// ServerOptions.MaxControlInFlightPerConn.
const DefaultMaxControlInFlightPerConn = 16

// Defaults of the connection limits of ServerOptions.
const (
	// DefaultMaxConns is the default of ServerOptions.MaxConns.
	DefaultMaxConns = 1024
	// DefaultIdleTimeout is the default of ServerOptions.IdleTimeout.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultFrameTimeout is the default of ServerOptions.FrameTimeout.
	DefaultFrameTimeout = 10 * time.Second
)

// serverReadBufferSize is the size of the read buffer of each connection
// a server holds, idle or not. It is smaller than the client's: requests
// are small, a frame larger than the buffer is read past it, and a server
// may hold many connections.
const serverReadBufferSize = 16 << 10

// writeBuffers holds the servers' write buffers between batches of
// responses, so that an idle connection holds none.
var writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, ioBufferSize) }}

// refusalLogInterval is how often, at most, Serve logs the connections it
// refused because MaxConns were open.
const refusalLogInterval = 10 * time.Second

// ServerOptions configure Serve and ServeConn. The zero value, and nil, mean
// defaults.
type ServerOptions struct {
	// MaxInFlightPerConn bounds the requests of one connection being
	// handled at once. When it is reached, the server stops reading from
	// that connection until a handler returns, which pushes back on the
	// peer. 0 means DefaultMaxInFlightPerConn.
	MaxInFlightPerConn int

	// Control, when set, picks the requests that hold a slot of their own
	// pool of MaxControlInFlightPerConn instead of MaxInFlightPerConn: the
	// cheap requests that other requests wait for (the host's audit
	// acknowledgements), so that handlers waiting on them can never take
	// every slot and deadlock the connection.
	Control func(Message) bool
	// MaxControlInFlightPerConn bounds the Control requests of one
	// connection being handled at once; 0 means
	// DefaultMaxControlInFlightPerConn.
	MaxControlInFlightPerConn int

	// MaxConns bounds the connections Serve holds open at once. A
	// connection accepted beyond it is closed at once, without a byte
	// read or written (logged, at most once per 10 s), so that the peer
	// learns of it immediately rather than waiting on a queue it cannot
	// see, and the listener's backlog keeps draining. 0 means
	// DefaultMaxConns; negative, no bound. ServeConn ignores it.
	MaxConns int

	// IdleTimeout closes a connection that has had no request in flight
	// (being handled, or its response waiting to be written) and no byte
	// of a new frame arriving for that long. It must exceed the longest
	// pause of a well-behaved client between requests. 0 means
	// DefaultIdleTimeout; negative, never.
	IdleTimeout time.Duration

	// FrameTimeout bounds the time from the first byte of a request frame
	// to its last, and the time to write a batch of responses: a peer
	// that trickles a frame, or stops reading its answers, loses the
	// connection. 0 means DefaultFrameTimeout; negative, no bound.
	FrameTimeout time.Duration

	// Logger receives connection errors, protocol violations and handler
	// panics; never request or response contents. Nil means
	// slog.Default().
	Logger *slog.Logger
}

func (opts *ServerOptions) withDefaults() ServerOptions {
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxInFlightPerConn <= 0 {
		o.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if o.MaxControlInFlightPerConn <= 0 {
		o.MaxControlInFlightPerConn = DefaultMaxControlInFlightPerConn
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.FrameTimeout == 0 {
		o.FrameTimeout = DefaultFrameTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrIdle is returned, wrapped, by ServeConn when it closed a connection
// that stayed idle for IdleTimeout.
var ErrIdle = errors.New("proto: connection idle")

// ErrFrameTimeout is returned, wrapped, by ServeConn when a request frame
// did not arrive whole, or a batch of responses could not be written,
// within FrameTimeout.
var ErrFrameTimeout = errors.New("proto: frame timed out")

// Serve accepts connections on l and serves each with ServeConn, until ctx
// is done or l fails. It then closes l and every connection, waits for all
// handlers to return, and returns nil if ctx was done, or else the accept
// error. At most opts.MaxConns connections are open at once; one accepted
// beyond that is closed at once.
func Serve(ctx context.Context, l net.Listener, h Handler, opts *ServerOptions) error {
	o := opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes the connections and cancels the handlers
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var open atomic.Int64
	var refused refusalLog
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Close()
			return fmt.Errorf("proto: accept: %w", err)
		}
		if o.MaxConns > 0 && open.Load() >= int64(o.MaxConns) {
			conn.Close()
			refused.note(o.Logger, o.MaxConns)
			continue
		}
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Add(-1)
			if err := ServeConn(ctx, conn, h, &o); err != nil {
				level := slog.LevelWarn
				if errors.Is(err, ErrIdle) {
					level = slog.LevelDebug // routine: the peer redials when it needs to
				}
				o.Logger.Log(ctx, level, "proto: connection closed", "remote", conn.RemoteAddr(), "err", err)
			}
		}()
	}
}

// refusalLog counts the connections refused at the cap and logs them at
// most once per refusalLogInterval, so that a flood of connections cannot
// flood the log. It is used by the accepting goroutine alone.
type refusalLog struct {
	last    time.Time
	pending int
}

func (r *refusalLog) note(log *slog.Logger, limit int) {
	r.pending++
	if now := time.Now(); now.Sub(r.last) >= refusalLogInterval {
		log.Warn("proto: connections refused: too many open", "refused", r.pending, "limit", limit)
		r.last, r.pending = now, 0
	}
}

// ServeConn serves requests from one connection until the peer closes it, a
// frame cannot be read, or ctx is done. It then closes conn, waits for the
// connection's handlers to return, and returns nil for a clean end (end of
// stream at a frame boundary, or ctx done) and the error otherwise.
//
// One goroutine reads and decodes frames; each request is handled by a
// worker goroutine of the connection, one request at a time each, at most
// opts.MaxInFlightPerConn at a time (plus opts.MaxControlInFlightPerConn
// Control requests); a worker waits for the next request when done, and
// ends after a second without one, so a connection has about as many
// workers as it lately had requests in flight at once, and never more than
// its slots. One goroutine writes responses through a buffer, flushing
// whenever none is queued. A frame
// that fails to decode is answered with an Error of code
// refusal.CodeBadRequest if its envelope, and with it the request id, could
// be read; otherwise the stream cannot be trusted any more, and the
// connection is closed.
//
// The connection is also closed, with an error wrapping ErrIdle or
// ErrFrameTimeout, when it stays idle for opts.IdleTimeout or a frame does
// not arrive whole within opts.FrameTimeout (see ServerOptions). A large
// frame's buffer is allocated as its bytes arrive and dropped once it is
// decoded, and an idle connection holds no write buffer.
func ServeConn(ctx context.Context, conn net.Conn, h Handler, opts *ServerOptions) error {
	o := opts.withDefaults()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	s := &connServer{
		ctx:          ctx,
		h:            h,
		log:          o.Logger,
		out:          make(chan []byte, o.MaxInFlightPerConn+o.MaxControlInFlightPerConn),
		control:      o.Control,
		csem:         make(chan struct{}, o.MaxControlInFlightPerConn),
		workerIdle:   workerIdleTimeout,
		idleTimeout:  o.IdleTimeout,
		frameTimeout: o.FrameTimeout,
	}

	var writeErr error
	var writerDone sync.WaitGroup
	writerDone.Add(1)
	go func() {
		defer writerDone.Done()
		writeErr = s.writeLoop(conn)
		cancel() // a write error ends the connection
	}()

	err := s.readLoop(conn, make(chan struct{}, o.MaxInFlightPerConn))
	cancel()
	s.handlers.Wait()
	writerDone.Wait()
	switch {
	case parent.Err() != nil:
		// Asked to stop: reading failed because we closed conn.
		err = nil
	case writeErr != nil:
		err = writeErr
	}
	return err
}

type connServer struct {
	ctx      context.Context
	h        Handler
	log      *slog.Logger
	out      chan []byte
	handlers sync.WaitGroup
	control  func(Message) bool
	csem     chan struct{} // slots of Control requests
	// idle holds the workers waiting for a request, the last to go idle
	// last (see dispatch).
	idleMu     sync.Mutex
	idle       []*worker
	workerIdle time.Duration

	idleTimeout, frameTimeout time.Duration
	// busy counts the requests in flight: from the frame read until
	// its response is written (or dropped). idleSince is when a request
	// last left flight (UnixNano).
	busy      atomic.Int64
	idleSince atomic.Int64
}

// begin and end bracket a request in flight, for the idle timeout.
func (s *connServer) begin() { s.busy.Add(1) }

func (s *connServer) end() {
	// Stored before the count falls, so that whoever sees it at zero
	// also sees when that happened (or later).
	s.idleSince.Store(time.Now().UnixNano())
	s.busy.Add(-1)
}

// awaitFrame waits for the first byte of the next frame, or the end of
// the stream, and then starts the frame's deadline. While it waits, a
// connection with nothing in flight that stays so for idleTimeout is
// closed (ErrIdle); one with requests in flight waits on.
func (s *connServer) awaitFrame(conn net.Conn, br *bufio.Reader) error {
	switch {
	case br.Buffered() > 0:
	case s.idleTimeout <= 0:
		conn.SetReadDeadline(time.Time{})
		if _, err := br.Peek(1); err != nil {
			return err
		}
	default:
		since := time.Now()
		for {
			conn.SetReadDeadline(since.Add(s.idleTimeout))
			_, err := br.Peek(1)
			if err == nil {
				break
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if s.busy.Load() > 0 {
				since = time.Now()
				continue
			}
			// Idle since we began to wait, or since the last
			// response went out, whichever is later.
			if last := time.Unix(0, s.idleSince.Load()); last.After(since) {
				since = last
			}
			if time.Since(since) >= s.idleTimeout {
				return fmt.Errorf("%w: nothing in flight and no request for %v", ErrIdle, s.idleTimeout)
			}
		}
	}
	var dl time.Time
	if s.frameTimeout > 0 {
		dl = time.Now().Add(s.frameTimeout)
	}
	conn.SetReadDeadline(dl)
	return nil
}

// readLoop reads requests and starts their handlers, holding a slot of sem
// for each. It returns nil at the end of the stream.
func (s *connServer) readLoop(conn net.Conn, sem chan struct{}) error {
	br := bufio.NewReaderSize(conn, serverReadBufferSize)
	fr := NewFrameReader(br)
	for {
		if err := s.awaitFrame(conn, br); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		p, err := fr.ReadFrame()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w: a request frame did not arrive whole within %v: %w", ErrFrameTimeout, s.frameTimeout, err)
		}
		if err != nil {
			return err
		}
		id, req, err := Unmarshal(p)
		// Unmarshal copied what it keeps: a large frame's buffer goes
		// now rather than stay with the connection.
		fr.release()
		if err != nil {
			if id == 0 {
				return err
			}
			s.log.Warn("proto: bad request", "id", id, "err", err)
			s.begin()
			s.send(id, badRequest(err))
			continue
		}
		if !IsRequest(req.Type()) {
			s.log.Warn("proto: bad request", "id", id, "type", req.Type())
			s.begin()
			s.send(id, &Error{Code: refusal.CodeBadRequest, Message: "proto: " + req.Type().String() + " is not a request"})
			continue
		}
		slots := sem
		if s.control != nil && s.control(req) {
			slots = s.csem
		}
		s.begin()
		select {
		case slots <- struct{}{}:
		case <-s.ctx.Done():
			return nil
		}
		s.dispatch(job{id: id, req: req, slots: slots})
	}
}

// A job is a request read, holding a slot of its pool (slots) until its
// response is queued.
type job struct {
	id    uint64
	req   Message
	slots chan struct{}
}

// workerIdleTimeout is how long a worker of a connection waits for its
// next request before it ends (a variable for tests). Idle workers are
// taken last in, first out, so under steady load the same few serve every
// request and keep their grown stacks, while those beyond what the load
// needs, and all of an idle connection's, end: a connection that once had
// many requests in flight does not keep as many goroutines.
var workerIdleTimeout = time.Second

// A worker handles requests of one connection, one at a time, until it has
// idled for workerIdleTimeout or the connection ends.
type worker struct {
	jobs chan job // capacity 1: dispatch hands a job without waiting
}

// dispatch hands j to the worker of the connection that went idle last, or
// starts a new one when none is idle. Reusing a worker spares a goroutine
// start per request and, above all, the growth of a new stack during the
// request's cryptography (runtime.morestack and copystack, several percent
// of the enclave's CPU when each request had a goroutine of its own); a
// slow request still holds only its own worker, as it held only its own
// goroutine before. A worker declares itself idle before it frees its
// slot, so a new worker is started only when every worker holds a slot:
// a connection never has more workers than the slots of its two pools
// (MaxInFlightPerConn + MaxControlInFlightPerConn).
func (s *connServer) dispatch(j job) {
	s.idleMu.Lock()
	var w *worker
	if n := len(s.idle); n > 0 {
		w = s.idle[n-1]
		s.idle[n-1] = nil
		s.idle = s.idle[:n-1]
	}
	s.idleMu.Unlock()
	if w != nil {
		w.jobs <- j
		return
	}
	s.handlers.Add(1)
	go s.work(&worker{jobs: make(chan job, 1)}, j)
}

// work runs worker w, starting with j: it serves a job, frees its slot
// once the response is queued (as each request's goroutine did), and
// waits for the next one.
func (s *connServer) work(w *worker, j job) {
	defer s.handlers.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.send(j.id, s.handle(j.id, j.req))
		slots := j.slots
		j = job{} // the request is not kept while the worker idles
		s.idleMu.Lock()
		s.idle = append(s.idle, w)
		s.idleMu.Unlock()
		<-slots
		if timer == nil {
			timer = time.NewTimer(s.workerIdle)
		} else {
			timer.Reset(s.workerIdle)
		}
		select {
		case j = <-w.jobs:
			continue
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		// Idle for long: end, unless dispatch has just taken this
		// worker, whose job is then on its way.
		s.idleMu.Lock()
		i := slices.Index(s.idle, w)
		if i >= 0 {
			s.idle = slices.Delete(s.idle, i, i+1)
		}
		s.idleMu.Unlock()
		if i >= 0 {
			return
		}
		select {
		case j = <-w.jobs:
		case <-s.ctx.Done():
			return
		}
	}
}

// handle runs the handler, turning a panic or a nil response into an
// internal error.
func (s *connServer) handle(id uint64, req Message) (resp Message) {
	defer func() {
		if r := recover(); r != nil {
			// Log where, but neither the panic value nor arguments:
			// either may hold request contents or secrets.
			s.log.Error("proto: handler panicked", "type", req.Type(), "id", id,
				"panic_type", fmt.Sprintf("%T", r), "stack", callers())
			resp = &Error{Code: refusal.CodeInternal, Message: "internal error"}
		}
	}()
	resp = s.h.Handle(s.ctx, req)
	if resp == nil || (reflect.ValueOf(resp).Kind() == reflect.Pointer && reflect.ValueOf(resp).IsNil()) {
		s.log.Error("proto: handler returned no response", "type", req.Type(), "id", id)
		return &Error{Code: refusal.CodeInternal, Message: "internal error"}
	}
	return resp
}

// send encodes and queues a response; it drops it if the connection is
// closing. An Error whose strings exceed the caps or are not UTF-8 is sent
// truncated and repaired rather than replaced, so that its code survives.
// The request stays in flight (see begin) until the writer has written
// the response, or until it is dropped.
func (s *connServer) send(id uint64, m Message) {
	p, err := Marshal(id, m)
	if err != nil {
		var e Error
		switch v := m.(type) {
		case *Error:
			e = *v
		case Error:
			e = v
		}
		if e.Code != "" {
			p, err = Marshal(id, &Error{
				Code:    truncateText(e.Code, MaxErrorCodeLen),
				Rule:    truncateText(e.Rule, MaxErrorRuleLen),
				Message: truncateText(e.Message, MaxErrorMessageLen),
			})
		}
	}
	if err != nil {
		s.log.Error("proto: response cannot be encoded", "type", m.Type(), "id", id, "err", err)
		p, err = Marshal(id, &Error{Code: refusal.CodeInternal, Message: "proto: response could not be encoded"})
		if err != nil {
			panic("proto: cannot encode internal error: " + err.Error()) // unreachable
		}
	}
	select {
	case s.out <- p:
	case <-s.ctx.Done():
		s.end()
	}
}

// writeLoop writes responses until the connection ends. It returns the
// write error that ended it, if any. Its buffer comes from writeBuffers
// for each batch and goes back after it.
func (s *connServer) writeLoop(conn net.Conn) error {
	for {
		var p []byte
		select {
		case p = <-s.out:
		case <-s.ctx.Done():
			return nil
		}
		if s.frameTimeout > 0 {
			conn.SetWriteDeadline(time.Now().Add(s.frameTimeout))
		}
		bw := writeBuffers.Get().(*bufio.Writer)
		bw.Reset(conn)
		n, err := s.writeBatch(bw, p)
		bw.Reset(nil)
		writeBuffers.Put(bw)
		for range n {
			s.end()
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return nil // we closed conn
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("%w: the peer did not read its responses within %v: %w", ErrFrameTimeout, s.frameTimeout, err)
			}
			return err
		}
	}
}

// writeBatch writes p and every response already queued, then flushes. It
// returns how many responses it took from the queue, p included.
//
// Answers are released in bursts (every answer of a batch of audit
// records at the host's acknowledgement), and each is queued by its own
// worker: the writer, woken by the first, would find the others not yet
// queued and write them one by one, a write (and a wake-up of the peer's
// reader) per response. So once the queue is empty it yields the
// processor once, letting workers that are ready queue theirs, and takes
// what they queued into the same write.
func (s *connServer) writeBatch(bw *bufio.Writer, p []byte) (int, error) {
	n := 1
	yielded := false
	for {
		if err := WriteFrame(bw, p); err != nil {
			return n, err
		}
		select {
		case p = <-s.out:
			n++
			continue
		default:
		}
		if !yielded {
			yielded = true
			runtime.Gosched()
			select {
			case p = <-s.out:
				n++
				continue
			default:
			}
		}
		break
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("proto: write frame: %w", err)
	}
	return n, nil
}

// badRequest turns a decoding error into an Error within the caps.
func badRequest(err error) *Error {
	return &Error{Code: refusal.CodeBadRequest, Message: truncateText(err.Error(), MaxErrorMessageLen)}
}

// truncateText returns s as valid UTF-8 (our errors may quote what the peer
// sent) of at most limit bytes, cut at a character boundary.
func truncateText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// callers returns the calling goroutine's stack as "function file:line"
// entries, without argument values.
func callers() []string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for {
		f, more := frames.Next()
		out = append(out, f.Function+" "+f.File+":"+strconv.Itoa(f.Line))
		if !more {
			return out
		}
	}
}
