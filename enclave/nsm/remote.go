package nsm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// exchangeTimeout bounds one request and its response on a remote device
// when the caller's context does not bound it sooner (and always for Read,
// which has no context): a simulated NSM answers in milliseconds.
const exchangeTimeout = 30 * time.Second

// RemoteError is a request's refusal reported by a remote NSM in its
// response. The connection stays usable after it.
type RemoteError struct {
	// Message is the server's explanation.
	Message string
}

func (e *RemoteError) Error() string { return "nsm: remote refused: " + e.Message }

// remote is a Device that speaks the remote protocol.
type remote struct {
	// io serializes exchanges: the protocol has one request in flight.
	io sync.Mutex

	// mu guards the fields below; it is never held during I/O, so that
	// Close can interrupt an exchange by closing its connection.
	mu     sync.Mutex
	conn   net.Conn // nil when there is none
	broken error    // why conn was dropped, for devices that cannot redial
	closed bool
	dial   func(context.Context) (net.Conn, error) // nil: never redial
}

var _ Device = (*remote)(nil)

// NewRemote returns a Device that speaks the remote protocol on conn, a
// connection to a simulated NSM, and owns conn. If the connection fails or
// the server misbehaves, the device closes conn and fails every later call;
// [DialRemote] makes one that dials again instead.
func NewRemote(conn net.Conn) Device {
	return &remote{conn: conn}
}

// DialRemote connects to a simulated NSM at (cid, port) over t and returns
// a Device that speaks the remote protocol to it. It dials once at once, so
// that a missing server is reported here, and dials again at the next
// request whenever a connection has been dropped.
func DialRemote(ctx context.Context, t transport.Transport, cid, port uint32) (Device, error) {
	dial := func(ctx context.Context) (net.Conn, error) {
		c, err := t.Dial(ctx, cid, port)
		if err != nil {
			return nil, fmt.Errorf("nsm: remote: %w", err)
		}
		return c, nil
	}
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	return &remote{conn: c, dial: dial}, nil
}

func (r *remote) Attest(ctx context.Context, req AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	resp, err := r.exchange(ctx, &nsmwire.Request{
		Version:   nsmwire.Version,
		Op:        nsmwire.OpAttest,
		Nonce:     req.Nonce,
		UserData:  req.UserData,
		PublicKey: req.PublicKey,
	})
	if err != nil {
		return nil, err
	}
	return resp.Document, nil
}

// Read asks for random bytes in chunks of at most MaxRandomChunk until p is
// full.
func (r *remote) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := min(len(p)-n, MaxRandomChunk)
		resp, err := r.exchange(context.Background(), &nsmwire.Request{
			Version: nsmwire.Version,
			Op:      nsmwire.OpRandom,
			Length:  uint64(k),
		})
		if err != nil {
			return n, err
		}
		n += copy(p[n:], resp.Random)
	}
	return n, nil
}

func (r *remote) Close() error {
	r.mu.Lock()
	c := r.conn
	r.conn, r.closed = nil, true
	r.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// connection returns the current connection, dialing one if it was dropped
// and the device can dial.
func (r *remote) connection(ctx context.Context) (net.Conn, error) {
	r.mu.Lock()
	c, closed, broken, dial := r.conn, r.closed, r.broken, r.dial
	r.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case c != nil:
		return c, nil
	case dial == nil:
		return nil, fmt.Errorf("nsm: remote: connection lost earlier: %w", broken)
	}
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return nil, ErrClosed
	}
	r.conn = c
	return c, nil
}

// drop closes c after a failed exchange, unless Close got there first.
func (r *remote) drop(c net.Conn, cause error) {
	r.mu.Lock()
	if r.conn == c {
		r.conn, r.broken = nil, cause
	}
	r.mu.Unlock()
	c.Close()
}

// exchange sends req and returns its successful response. A refusal from
// the server is a *RemoteError; any other failure drops the connection.
func (r *remote) exchange(ctx context.Context, req *nsmwire.Request) (*nsmwire.Response, error) {
	payload, err := nsmwire.MarshalRequest(req)
	if err != nil {
		return nil, fmt.Errorf("nsm: remote: %w", err)
	}
	r.io.Lock()
	defer r.io.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nsm: remote: %w", err)
	}
	c, err := r.connection(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := roundTrip(ctx, c, payload, req)
	if err != nil {
		var refused *RemoteError
		if !errors.As(err, &refused) {
			r.drop(c, err)
		}
		return nil, err
	}
	return resp, nil
}

// roundTrip writes one request and reads its response on c, within the
// context's deadline and exchangeTimeout, and checks that the response
// answers req.
func roundTrip(ctx context.Context, c net.Conn, payload []byte, req *nsmwire.Request) (*nsmwire.Response, error) {
	deadline := time.Now().Add(exchangeTimeout)
	ctxDeadline, hasDeadline := ctx.Deadline()
	if hasDeadline && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("nsm: remote: %w", err)
	}
	// A cancelled context interrupts the I/O through the deadline.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	resp, err := func() (*nsmwire.Response, error) {
		if err := proto.WriteFrame(c, payload); err != nil {
			return nil, fmt.Errorf("nsm: remote: %w", err)
		}
		p, err := nsmwire.ReadFrame(c, nsmwire.MaxResponseFrame)
		if err != nil {
			return nil, fmt.Errorf("nsm: remote: %w", err)
		}
		resp, err := nsmwire.UnmarshalResponse(p)
		if err != nil {
			return nil, fmt.Errorf("nsm: remote: %w", err)
		}
		return resp, nil
	}()
	if !stop() || err != nil && ctx.Err() != nil {
		// The context ended during the exchange: report that, rather than
		// the I/O error it caused.
		return nil, fmt.Errorf("nsm: remote: %w", context.Cause(ctx))
	}
	if err != nil && hasDeadline && !time.Now().Before(ctxDeadline) {
		// The connection's deadline, which is the context's, fired a
		// moment before the context's own timer.
		return nil, fmt.Errorf("nsm: remote: %w", context.DeadlineExceeded)
	}
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		if resp.Op != req.Op && resp.Op != nsmwire.OpNone {
			return nil, fmt.Errorf("nsm: remote: error response for op %d to a request of op %d", resp.Op, req.Op)
		}
		if resp.Op == nsmwire.OpNone {
			// The server could not decode our request: it closes the
			// connection, so this device must not reuse it.
			return nil, fmt.Errorf("nsm: remote: server refused the request as malformed: %s", resp.Error)
		}
		return nil, &RemoteError{Message: resp.Error}
	}
	if resp.Op != req.Op {
		return nil, fmt.Errorf("nsm: remote: response of op %d to a request of op %d", resp.Op, req.Op)
	}
	if req.Op == nsmwire.OpRandom && uint64(len(resp.Random)) != req.Length {
		return nil, fmt.Errorf("nsm: remote: asked for %d random bytes, got %d", req.Length, len(resp.Random))
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("nsm: remote: %w", err)
	}
	return resp, nil
}
