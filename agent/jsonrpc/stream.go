package jsonrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Defaults of [StreamOptions].
const (
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultWriteTimeout = 30 * time.Second
)

// StreamOptions configures [ServeStream]. A nil *StreamOptions, and each
// zero field, means the default.
type StreamOptions struct {
	// IdleTimeout bounds the wait for the next message and its reading:
	// a message must be complete within IdleTimeout of the end of the
	// previous answer (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of one answer (default
	// DefaultWriteTimeout).
	WriteTimeout time.Duration
}

// Framing errors of a [StreamReader]: after one, where the next message
// begins is unknown, and the connection must be closed.
var (
	ErrFraming  = errors.New("jsonrpc: stream: a message must be a JSON object or array")
	ErrTooLarge = fmt.Errorf("jsonrpc: stream: message exceeds the limit of %d bytes", MaxBody)
	ErrTrailing = errors.New("jsonrpc: stream: the stream ended inside a message")
)

// StreamReader splits a stream of JSON values, the framing of go-ethereum's
// IPC transport (and of Clef's --ipcpath): objects or arrays, one after the
// other, separated by optional whitespace. It reads each message's bytes
// by tracking brackets and strings only; the message is then decoded
// strictly by [Decode], so that a message that is not valid JSON but is
// bracketed is answered with a parse error and the stream continues. A
// message must start with '{' or '[' and be at most [MaxBody] bytes;
// anything else is a framing error.
type StreamReader struct {
	r   *bufio.Reader
	buf []byte
}

// NewStreamReader returns a reader of the messages of r.
func NewStreamReader(r io.Reader) *StreamReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &StreamReader{r: br}
}

// Next returns the next message's bytes, valid until the next call; io.EOF
// at the end of the stream between messages; ErrFraming, ErrTooLarge or
// ErrTrailing when the framing is lost; or the reader's error.
func (s *StreamReader) Next() ([]byte, error) {
	var c byte
	var err error
	for {
		if c, err = s.r.ReadByte(); err != nil {
			return nil, err
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
	}
	if c != '{' && c != '[' {
		return nil, ErrFraming
	}
	s.buf = append(s.buf[:0], c)
	depth, inString, escaped := 1, false, false
	for depth > 0 {
		if c, err = s.r.ReadByte(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, ErrTrailing
			}
			return nil, err
		}
		if len(s.buf) == MaxBody {
			return nil, ErrTooLarge
		}
		s.buf = append(s.buf, c)
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return s.buf, nil
}

// Answer answers one message (one request or a batch) as [NewHTTPHandler]
// does, and returns the encoded answer, or nil when there is none (only
// notifications). Requests of a batch are dispatched in order; once ctx is
// done, the rest are answered with an internal error, not dispatched.
func Answer(ctx context.Context, body []byte, dispatch DispatchFunc) []byte {
	reqs, batch, derr := Decode(body)
	if derr != nil {
		return Encode([]Response{{Error: derr}}, false)
	}
	resps := dispatchAll(ctx, reqs, dispatch)
	if len(resps) == 0 {
		return nil
	}
	return Encode(resps, batch)
}

// ServeStream serves JSON-RPC over conn in the stream framing of
// [StreamReader] until the peer closes it, ctx is done, the connection is
// idle for longer than the idle timeout, or the framing is lost (answered
// with a parse error, then closed). Messages are answered one after
// another, in order, each answer followed by a newline. A message that is
// not valid JSON, or not a valid request, is answered with its error and
// the connection kept. ServeStream closes conn; it returns nil when the
// peer closed it cleanly.
func ServeStream(ctx context.Context, conn net.Conn, r io.Reader, dispatch DispatchFunc, opts *StreamOptions) error {
	var o StreamOptions
	if opts != nil {
		o = *opts
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The end of ctx sets a read deadline in the past; the loop's idle
	// deadline must not replace it (the server would then wait for the
	// idle timeout to stop), hence the lock and the flag.
	var mu sync.Mutex
	ended := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		ended = true
		conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	defer conn.Close()
	if r == nil {
		r = conn
	}
	sr := NewStreamReader(r)
	idle := func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return false, nil
		}
		return true, conn.SetReadDeadline(time.Now().Add(o.IdleTimeout))
	}
	for {
		live, err := idle()
		if !live {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) {
				return nil // closed by the peer (net.Pipe says so here)
			}
			return fmt.Errorf("jsonrpc: stream: %w", err)
		}
		msg, err := sr.Next()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, ErrFraming), errors.Is(err, ErrTooLarge), errors.Is(err, ErrTrailing):
			write(conn, o.WriteTimeout, Encode([]Response{{Error: NewError(CodeParseError, "", err.Error())}}, false))
			return err
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("jsonrpc: stream: %w", err)
		}
		if out := Answer(ctx, msg, dispatch); out != nil {
			if err := write(conn, o.WriteTimeout, out); err != nil {
				return err
			}
		}
	}
}

func write(conn net.Conn, timeout time.Duration, b []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("jsonrpc: stream: %w", err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("jsonrpc: stream: %w", err)
	}
	return nil
}
