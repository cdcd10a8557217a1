package proto

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// A Handler answers requests. Handle is called concurrently, once per
// request, with a context that is canceled when the connection closes or the
// server stops. It returns the response: the request's ResponseType, or an
// *Error. A panic is recovered and answered with an Error of code
// CodeInternal, as is a nil response or one that cannot be encoded (see
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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Serve accepts connections on l and serves each with ServeConn, until ctx
// is done or l fails. It then closes l and every connection, waits for all
// handlers to return, and returns nil if ctx was done, or else the accept
// error.
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
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Close()
			return fmt.Errorf("proto: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ServeConn(ctx, conn, h, &o); err != nil {
				o.Logger.Warn("proto: connection closed", "remote", conn.RemoteAddr(), "err", err)
			}
		}()
	}
}

// ServeConn serves requests from one connection until the peer closes it, a
// frame cannot be read, or ctx is done. It then closes conn, waits for the
// connection's handlers to return, and returns nil for a clean end (end of
// stream at a frame boundary, or ctx done) and the error otherwise.
//
// One goroutine reads and decodes frames; each request is handled in its own
// goroutine, at most opts.MaxInFlightPerConn at a time; one goroutine writes
// responses through a buffer, flushing whenever none is queued. A frame
// that fails to decode is answered with an Error of code CodeBadRequest if
// its envelope, and with it the request id, could be read; otherwise the
// stream cannot be trusted any more, and the connection is closed.
func ServeConn(ctx context.Context, conn net.Conn, h Handler, opts *ServerOptions) error {
	o := opts.withDefaults()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	s := &connServer{
		ctx:     ctx,
		h:       h,
		log:     o.Logger,
		out:     make(chan []byte, o.MaxInFlightPerConn+o.MaxControlInFlightPerConn),
		control: o.Control,
		csem:    make(chan struct{}, o.MaxControlInFlightPerConn),
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
}

// readLoop reads requests and starts their handlers, holding a slot of sem
// for each. It returns nil at the end of the stream.
func (s *connServer) readLoop(conn net.Conn, sem chan struct{}) error {
	fr := NewFrameReader(bufio.NewReaderSize(conn, ioBufferSize))
	for {
		p, err := fr.ReadFrame()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		id, req, err := Unmarshal(p)
		if err != nil {
			if id == 0 {
				return err
			}
			s.log.Warn("proto: bad request", "id", id, "err", err)
			s.send(id, badRequest(err))
			continue
		}
		if !IsRequest(req.Type()) {
			s.log.Warn("proto: bad request", "id", id, "type", req.Type())
			s.send(id, &Error{Code: CodeBadRequest, Message: "proto: " + req.Type().String() + " is not a request"})
			continue
		}
		slots := sem
		if s.control != nil && s.control(req) {
			slots = s.csem
		}
		select {
		case slots <- struct{}{}:
		case <-s.ctx.Done():
			return nil
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			defer func() { <-slots }()
			s.send(id, s.handle(id, req))
		}()
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
			resp = &Error{Code: CodeInternal, Message: "internal error"}
		}
	}()
	resp = s.h.Handle(s.ctx, req)
	if resp == nil || (reflect.ValueOf(resp).Kind() == reflect.Pointer && reflect.ValueOf(resp).IsNil()) {
		s.log.Error("proto: handler returned no response", "type", req.Type(), "id", id)
		return &Error{Code: CodeInternal, Message: "internal error"}
	}
	return resp
}

// send encodes and queues a response; it drops it if the connection is
// closing. An Error whose strings exceed the caps or are not UTF-8 is sent
// truncated and repaired rather than replaced, so that its code survives.
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
		p, err = Marshal(id, &Error{Code: CodeInternal, Message: "proto: response could not be encoded"})
		if err != nil {
			panic("proto: cannot encode internal error: " + err.Error()) // unreachable
		}
	}
	select {
	case s.out <- p:
	case <-s.ctx.Done():
	}
}

// writeLoop writes responses until the connection ends. It returns the
// write error that ended it, if any.
func (s *connServer) writeLoop(conn net.Conn) error {
	bw := bufio.NewWriterSize(conn, ioBufferSize)
	for {
		var p []byte
		select {
		case p = <-s.out:
		case <-s.ctx.Done():
			return nil
		}
		if err := writeBatch(bw, p, s.out); err != nil {
			if s.ctx.Err() != nil {
				return nil // we closed conn
			}
			return err
		}
	}
}

// badRequest turns a decoding error into an Error within the caps.
func badRequest(err error) *Error {
	return &Error{Code: CodeBadRequest, Message: truncateText(err.Error(), MaxErrorMessageLen)}
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
