package nsm_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/transport"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// scriptConn is a connection whose peer's bytes are a script: reads return
// the script then io.EOF, writes are kept.
type scriptConn struct {
	mu     sync.Mutex
	in     *bytes.Reader
	out    bytes.Buffer
	closed bool
}

func newScriptConn(script []byte) *scriptConn { return &scriptConn{in: bytes.NewReader(script)} }

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *scriptConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *scriptConn) LocalAddr() net.Addr              { return transport.Addr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return transport.Addr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// validRequests reports how many requests stream holds, and whether it is
// nothing but valid request frames.
func validRequests(stream []byte) (int, bool) {
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

// FuzzRemote feeds a byte stream as responses to a remote device doing
// Attest and then Read(16 bytes): it never panics, returns only documents
// within the size limits and full buffers, and writes only valid requests.
// (The server half, which fed the same stream to ServeConn, moved with the
// server to package internal/sim/nsmsim as FuzzServeConn, with the same
// seeds.)
func FuzzRemote(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		cc := newScriptConn(stream)
		r := nsm.NewRemote(cc)
		doc, err := r.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("n")})
		if err == nil && (len(doc) == 0 || len(doc) > nsm.MaxDocumentSize) {
			t.Fatalf("a document of %d bytes", len(doc))
		}
		var refused *nsm.RemoteError
		if errors.As(err, &refused) && (refused.Message == "" || len(refused.Message) > nsmwire.MaxErrorSize) {
			t.Fatalf("refusal %q", refused.Message)
		}
		p := make([]byte, 16)
		if k, err := r.Read(p); err == nil && k != len(p) || err != nil && k != 0 {
			t.Fatalf("Read = %d, %v", k, err)
		}
		r.Close()
		if _, valid := validRequests(cc.written()); !valid {
			t.Fatal("the client wrote an invalid request")
		}
	})
}

// seedRemote returns the named seeds of FuzzRemote (the same as those of
// nsmsim's FuzzServeConn): valid requests and responses (the client's script: an attest response, then 16 random
// bytes), and the near misses of the refusal tests.
func seedRemote(t testing.TB) map[string][]byte {
	req := func(r *nsmwire.Request) []byte { return frame(mustEncode(t, r)) }
	resp := func(r *nsmwire.Response) []byte { return frame(mustEncode(t, r)) }
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
		"bad_garbage":                  frame([]byte("garbage")),
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
		"bad_missing_field":            frame(mustEncode(t, map[uint64]any{1: 1, 2: 2, 6: 16})),
		"bad_non_shortest":             frame(bytes.Replace(mustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 4}), []byte{0x06, 0x04}, []byte{0x06, 0x18, 0x04}, 1)),
		"bad_unknown_key":              frame(mustEncode(t, map[uint64]any{1: 1, 2: 2, 3: []byte{}, 4: []byte{}, 5: []byte{}, 6: 16, 7: 0})),
		"bad_response_short_random":    cat(attested, resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Random: []byte{1}})),
		"bad_response_wrong_op":        randomed,
		"bad_response_error_op_0":      resp(&nsmwire.Response{Version: 1, Op: nsmwire.OpNone, Error: "malformed request"}),
	}
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./enclave/nsm -run TestSeedCorpus -update-corpus.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzRemote", "seed_", '_', seedRemote(t), *updateCorpus, "go test ./enclave/nsm -run TestSeedCorpus -update-corpus")
}
