package nsmsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

const simPort = DefaultPort

// serveVsock serves s on the vsock simulator at (ParentCID, simPort), as
// the dev stack does, and returns the enclave's side of the simulator.
func serveVsock(t *testing.T, s *Server) (*transport.UnixVsock, <-chan error) {
	t.Helper()
	// A short directory: Unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "nsmsim")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := (&transport.UnixVsock{Dir: dir, CID: transport.ParentCID}).Listen(simPort)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	return &transport.UnixVsock{Dir: dir, CID: transport.DefaultEnclaveCID}, errc
}

// TestRemoteEndToEnd: an enclave's nsm.OpenSpec("vsock:3:9000") over the
// vsock simulator gets documents that verify, and randomness.
func TestRemoteEndToEnd(t *testing.T) {
	s := newServer(t, Options{})
	enclave, errc := serveVsock(t, s)
	d, err := nsm.OpenSpec(context.Background(), "vsock:3:9000", enclave)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	req := nsm.AttestRequest{Nonce: []byte("nonce"), UserData: bytes.Repeat([]byte{2}, nsm.MaxFieldSize), PublicKey: []byte("key")}
	doc, err := d.Attest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	res := verify(t, doc, s.Roots(), time.Now())
	if !bytes.Equal(res.Document.Nonce, req.Nonce) || !bytes.Equal(res.Document.UserData, req.UserData) || !bytes.Equal(res.Document.PublicKey, req.PublicKey) {
		t.Error("the fields did not round-trip")
	}
	p := make([]byte, 3*nsm.MaxRandomChunk+1)
	if n, err := d.Read(p); n != len(p) || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if bytes.Count(p, []byte{0}) > len(p)/16 {
		t.Error("the random bytes are mostly zero")
	}
	// Refused before anything is sent.
	if _, err := d.Attest(context.Background(), nsm.AttestRequest{Nonce: make([]byte, nsm.MaxFieldSize+1)}); err == nil {
		t.Error("an oversized nonce was accepted")
	}

	// Close ends Serve with nil, and the device fails (it dials again,
	// and finds no one).
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if _, err := d.Attest(context.Background(), nsm.AttestRequest{}); err == nil {
		t.Error("Attest succeeded after the server closed")
	}
}

// rawExchange sends raw bytes on a new connection to the simulator and
// returns the server's one answer, after which the server must have closed
// the connection.
func rawExchange(t *testing.T, enclave *transport.UnixVsock, send []byte) map[uint64]any {
	t.Helper()
	c, err := enclave.Dial(context.Background(), transport.ParentCID, simPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The server may answer and close before it has read all of an
	// oversized frame: the rest of the write then fails (broken pipe),
	// and the answer is still there to read.
	if _, err := c.Write(send); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	p, err := proto.ReadFrame(c)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	var resp map[uint64]any
	if err := cbor.Unmarshal(p, &resp); err != nil {
		t.Fatal(err)
	}
	// Closed: an end of stream, or a reset when the server closed with
	// our bytes unread.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("after the answer: %d bytes, %v; want the connection closed", n, err)
	}
	return resp
}

func frame(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// TestRemoteRefuses: the simulator answers oversized and garbage requests
// with an error and drops that connection, and keeps serving others.
func TestRemoteRefuses(t *testing.T) {
	s := newServer(t, Options{})
	enclave, _ := serveVsock(t, s)
	valid := mustMarshal(t, map[uint64]any{1: 1, 2: 2, 3: []byte{}, 4: []byte{}, 5: []byte{}, 6: 8})
	tests := []struct {
		name string
		send []byte
		want string
	}{
		{name: "oversized frame", send: append([]byte{0, 1, 0, 0}, make([]byte, 1<<16)...), want: "frame too large"},
		{name: "declared 4 GiB", send: []byte{0xff, 0xff, 0xff, 0xff}, want: "frame too large"},
		{name: "oversized nonce", send: frame(mustMarshal(t, map[uint64]any{1: 1, 2: 1, 3: make([]byte, 1025), 4: []byte{}, 5: []byte{}, 6: 0})), want: "nonce is 1025 bytes"},
		{name: "too much randomness", send: frame(mustMarshal(t, map[uint64]any{1: 1, 2: 2, 3: []byte{}, 4: []byte{}, 5: []byte{}, 6: 1 << 20})), want: "random request for 1048576 bytes"},
		{name: "garbage", send: frame([]byte("\xff\x00garbage")), want: "malformed request"},
		{name: "json", send: frame([]byte(`{"op":"attest"}`)), want: "malformed request"},
		{name: "trailing bytes", send: frame(append(bytes.Clone(valid), 0)), want: "malformed request"},
		{name: "version 2", send: frame(mustMarshal(t, map[uint64]any{1: 2, 2: 2})), want: "unsupported version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawExchange(t, enclave, tt.send)
			msg, _ := resp[5].(string)
			if resp[2] != uint64(0) || !strings.Contains(msg, tt.want) {
				t.Errorf("answer %v, want op 0 and an error with %q", resp, tt.want)
			}
		})
	}
	// The server still serves well-behaved clients.
	c, err := enclave.Dial(context.Background(), transport.ParentCID, simPort)
	if err != nil {
		t.Fatal(err)
	}
	d := nsm.NewRemote(c)
	defer d.Close()
	if _, err := d.Read(make([]byte, 8)); err != nil {
		t.Fatalf("a valid request after the refusals: %v", err)
	}
}

// mustMarshal encodes v in the deterministic encoding the protocol wants.
func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServeAfterClose: Serve on a closed server refuses and closes its
// listener.
func TestServeAfterClose(t *testing.T) {
	s := newServer(t, Options{})
	s.Close()
	a, b := net.Pipe()
	defer a.Close()
	l := &oneConnListener{c: b, closed: make(chan struct{})}
	if err := s.Serve(l); !errors.Is(err, nsm.ErrClosed) {
		t.Errorf("Serve = %v", err)
	}
	select {
	case <-l.closed:
	default:
		t.Error("the listener was left open")
	}
}

type oneConnListener struct {
	c      net.Conn
	closed chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) { return l.c, nil }
func (l *oneConnListener) Close() error              { close(l.closed); return nil }
func (l *oneConnListener) Addr() net.Addr            { return transport.Addr{} }
