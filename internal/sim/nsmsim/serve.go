package nsmsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/proto"
)

// writeTimeout bounds how long ServeConn waits for a client to take a
// response.
const writeTimeout = 10 * time.Second

// ServeConn answers requests of the remote protocol (package nsmwire) on
// conn with d until the client closes the connection, a request is
// malformed, or ctx ends; then it closes conn. It returns nil at a clean end
// (the client closed, or ctx ended), and otherwise the reason it dropped the
// connection. It is the server half of [nsm.NewRemote], for [Server.Serve]
// and tests; it lives here, not in package nsm, so that the enclave binary
// does not link it.
//
// A refusal by d is sent to the client as an error response and the
// connection stays open. A malformed request (any deviation from the
// protocol, including a frame larger than a request can be) is answered
// with an error response, then the connection is closed.
func ServeConn(ctx context.Context, conn net.Conn, d nsm.Device) error {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		p, err := nsmwire.ReadFrame(conn, nsmwire.MaxRequestFrame)
		if err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, proto.ErrFrameTooLarge) || errors.Is(err, proto.ErrEmptyFrame) {
				writeResponse(conn, nsmwire.ErrorResponse(nsmwire.OpNone, err))
			}
			return fmt.Errorf("nsmsim: serve: %w", err)
		}
		req, err := nsmwire.UnmarshalRequest(p)
		if err != nil {
			writeResponse(conn, nsmwire.ErrorResponse(nsmwire.OpNone, err))
			return fmt.Errorf("nsmsim: serve: %w", err)
		}
		if err := writeResponse(conn, answer(ctx, d, req)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nsmsim: serve: %w", err)
		}
	}
}

// answer performs one well-formed request on d.
func answer(ctx context.Context, d nsm.Device, req *nsmwire.Request) *nsmwire.Response {
	switch req.Op {
	case nsmwire.OpAttest:
		doc, err := d.Attest(ctx, nsm.AttestRequest{Nonce: req.Nonce, UserData: req.UserData, PublicKey: req.PublicKey})
		if err != nil {
			return nsmwire.ErrorResponse(req.Op, err)
		}
		if len(doc) == 0 || len(doc) > nsmwire.MaxDocumentSize {
			return nsmwire.ErrorResponse(req.Op, fmt.Errorf("nsmsim: serve: the device made a document of %d bytes, want 1..%d", len(doc), nsmwire.MaxDocumentSize))
		}
		return &nsmwire.Response{Version: nsmwire.Version, Op: req.Op, Document: doc}
	default: // nsmwire.OpRandom; unmarshalRequest admits no other
		b := make([]byte, req.Length)
		if _, err := io.ReadFull(d, b); err != nil {
			return nsmwire.ErrorResponse(req.Op, err)
		}
		return &nsmwire.Response{Version: nsmwire.Version, Op: req.Op, Random: b}
	}
}

func writeResponse(conn net.Conn, resp *nsmwire.Response) error {
	p, err := nsmwire.MarshalResponse(resp)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return proto.WriteFrame(conn, p)
}
