// Package nsmwiretest holds what the tests of both halves of the simulated
// NSM's protocol share: the client (package enclave/nsm) and the server
// (package internal/sim/nsmsim). It is for tests only: the enclave's
// dependency test forbids it.
package nsmwiretest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/internal/strictcbor"
	"github.com/nitrosign/nitrosign/transport"
)

// FakeDevice is a device for tests: its document is a readable rendering
// of the request (Document), its random bytes count up, and it refuses a
// nonce of "refuse", and answers a nonce of "long error" with an error of
// 2000 bytes.
type FakeDevice struct {
	mu     sync.Mutex
	next   byte
	reads  int
	closed bool
}

// Document is the document FakeDevice answers req with.
func Document(req nsm.AttestRequest) []byte {
	return fmt.Appendf(nil, "doc(%x,%x,%x)", req.Nonce, req.UserData, req.PublicKey)
}

// Attest implements nsm.Device.
func (f *FakeDevice) Attest(ctx context.Context, req nsm.AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	switch string(req.Nonce) {
	case "refuse":
		return nil, errors.New("fake: refused as asked")
	case "long error":
		return nil, errors.New(strings.Repeat("é", 1000))
	}
	return Document(req), nil
}

// Read implements nsm.Device.
func (f *FakeDevice) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	for i := range p {
		p[i] = f.next
		f.next++
	}
	return len(p), nil
}

// Close implements nsm.Device.
func (f *FakeDevice) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Reads reports how many times Read was called.
func (f *FakeDevice) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// Closed reports whether Close was called.
func (f *FakeDevice) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Frame prefixes p with its length, as the protocol frames messages.
func Frame(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// encMode is the protocol's encoding (package nsmwire's): core
// deterministic, nil byte strings as empty ones.
var encMode = strictcbor.EncMode(cbor.NilContainerAsEmpty)

// MustEncode encodes v as the protocol would, valid or not.
func MustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ScriptConn is a connection whose peer's bytes are a script: reads return
// the script then io.EOF, writes are kept.
type ScriptConn struct {
	mu     sync.Mutex
	in     *bytes.Reader
	out    bytes.Buffer
	closed bool
}

// NewScriptConn returns a connection that reads script.
func NewScriptConn(script []byte) *ScriptConn { return &ScriptConn{in: bytes.NewReader(script)} }

func (c *ScriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *ScriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *ScriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Written returns what was written to the connection.
func (c *ScriptConn) Written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *ScriptConn) LocalAddr() net.Addr              { return transport.Addr{} }
func (c *ScriptConn) RemoteAddr() net.Addr             { return transport.Addr{} }
func (c *ScriptConn) SetDeadline(time.Time) error      { return nil }
func (c *ScriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *ScriptConn) SetWriteDeadline(time.Time) error { return nil }

// ValidRequests reports how many requests stream holds, and whether it is
// nothing but valid request frames.
func ValidRequests(stream []byte) (int, bool) {
	r := bytes.NewReader(stream)
	n := 0
	for {
		p, err := nsmwire.ReadFrame(r, nsmwire.MaxRequestFrame)
		if err == io.EOF {
			return n, true
		}
		if err != nil {
			return n, false
		}
		if _, err := nsmwire.UnmarshalRequest(p); err != nil {
			return n, false
		}
		n++
	}
}

// Streams returns the named byte streams both halves' fuzz targets start
// from (nsm's FuzzRemote as answers, nsmsim's FuzzServeConn as requests):
// valid requests, valid responses (a client's script: an attest response,
// then 16 random bytes), and the near misses of the refusal tests.
func Streams(t testing.TB) map[string][]byte {
	req := func(r *nsmwire.Request) []byte { return Frame(MustEncode(t, r)) }
	resp := func(r *nsmwire.Response) []byte { return Frame(MustEncode(t, r)) }
	attest := req(&nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Nonce: []byte("nonce"), UserData: []byte("user"), PublicKey: []byte("key")})
	random := req(&nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 16})
	attested := resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpAttest, Document: []byte("document")})
	randomed := resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Random: bytes.Repeat([]byte{7}, 16)})
	refused := resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpAttest, Error: "refused"})
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	return map[string][]byte{
		"valid_attest_request":         attest,
		"valid_empty_attest_request":   req(&nsmwire.Request{Version: 1, Op: nsmwire.OpAttest}),
		"valid_refused_attest_request": req(&nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Nonce: []byte("refuse")}),
		"valid_random_request":         random,
		"valid_random_request_max":     req(&nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: nsmwire.MaxRandomChunk}),
		"valid_requests":               cat(attest, random, attest),
		"valid_client_script":          cat(attested, randomed),
		"valid_client_script_refusal":  cat(refused, randomed),
		"bad_empty_stream":             {},
		"bad_garbage":                  Frame([]byte("garbage")),
		"bad_http":                     []byte("GET / HTTP/1.1\r\n\r\n"),
		"bad_huge_frame":               {0xff, 0xff, 0xff, 0xff},
		"bad_empty_frame":              {0, 0, 0, 0},
		"bad_short_header":             {0, 0},
		"bad_truncated":                attest[:len(attest)-1],
		"bad_trailing_after_frame":     cat(random, []byte{0}),
		"bad_version_2":                req(&nsmwire.Request{Version: 2, Op: nsmwire.OpRandom, Length: 16}),
		"bad_unknown_op":               req(&nsmwire.Request{Version: 1, Op: 3}),
		"bad_random_length_0":          req(&nsmwire.Request{Version: 1, Op: nsmwire.OpRandom}),
		"bad_random_length_large":      req(&nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: nsmwire.MaxRandomChunk + 1}),
		"bad_nonce_too_large":          req(&nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Nonce: make([]byte, nsmwire.MaxFieldSize+1)}),
		"bad_missing_field":            Frame(MustEncode(t, map[uint64]any{1: 1, 2: 2, 6: 16})),
		"bad_non_shortest":             Frame(bytes.Replace(MustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 4}), []byte{0x06, 0x04}, []byte{0x06, 0x18, 0x04}, 1)),
		"bad_unknown_key":              Frame(MustEncode(t, map[uint64]any{1: 1, 2: 2, 3: []byte{}, 4: []byte{}, 5: []byte{}, 6: 16, 7: 0})),
		"bad_response_short_random":    cat(attested, resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Random: []byte{1}})),
		"bad_response_wrong_op":        randomed,
		"bad_response_error_op_0":      resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpNone, Error: "malformed request"}),
	}
}
