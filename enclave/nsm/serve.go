package nsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nitrosign/nitrosign/proto"
)

// writeTimeout bounds how long ServeConn waits for a client to take a
// response.
const writeTimeout = 10 * time.Second

// ServeConn answers requests of the remote protocol on conn with d until
// the client closes the connection, a request is malformed, or ctx ends;
// then it closes conn. It returns nil at a clean end (the client closed, or
// ctx ended), and otherwise the reason it dropped the connection. It is the
// server half of [NewRemote], for simulators (internal/nsmsim) and tests;
// the enclave never serves it.
//
// A refusal by d is sent to the client as an error response and the
// connection stays open. A malformed request (any deviation from the
// protocol, including a frame larger than a request can be) is answered
// with an error response, then the connection is closed.
func ServeConn(ctx context.Context, conn net.Conn, d Device) error {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		p, err := readFrame(conn, maxRequestFrame)
		if err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, proto.ErrFrameTooLarge) || errors.Is(err, proto.ErrEmptyFrame) {
				writeResponse(conn, errorResponse(opNone, err))
			}
			return fmt.Errorf("nsm: serve: %w", err)
		}
		req, err := unmarshalRequest(p)
		if err != nil {
			writeResponse(conn, errorResponse(opNone, err))
			return fmt.Errorf("nsm: serve: %w", err)
		}
		if err := writeResponse(conn, answer(ctx, d, req)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nsm: serve: %w", err)
		}
	}
}

// answer performs one well-formed request on d.
func answer(ctx context.Context, d Device, req *wireRequest) *wireResponse {
	switch req.Op {
	case opAttest:
		doc, err := d.Attest(ctx, AttestRequest{Nonce: req.Nonce, UserData: req.UserData, PublicKey: req.PublicKey})
		if err != nil {
			return errorResponse(req.Op, err)
		}
		if len(doc) == 0 || len(doc) > MaxDocumentSize {
			return errorResponse(req.Op, fmt.Errorf("nsm: serve: the device made a document of %d bytes, want 1..%d", len(doc), MaxDocumentSize))
		}
		return &wireResponse{Version: RemoteVersion, Op: req.Op, Document: doc}
	default: // opRandom; unmarshalRequest admits no other
		b := make([]byte, req.Length)
		if _, err := io.ReadFull(d, b); err != nil {
			return errorResponse(req.Op, err)
		}
		return &wireResponse{Version: RemoteVersion, Op: req.Op, Random: b}
	}
}

func writeResponse(conn net.Conn, resp *wireResponse) error {
	p, err := marshalResponse(resp)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return proto.WriteFrame(conn, p)
}
