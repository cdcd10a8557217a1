package nsmsim

import (
	"bytes"
	"context"
	"errors"
	"flag"
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
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/strictcbor"
	"github.com/nitrosign/nitrosign/transport"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// fakeDevice is the device behind ServeConn in these tests: its document
// is a readable rendering of the request, its random bytes count up, and
// it refuses a nonce of "refuse". (Package nsm's tests have the same one,
// behind their server.)
type fakeDevice struct {
	mu   sync.Mutex
	next byte
}

func (f *fakeDevice) Attest(ctx context.Context, req nsm.AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if string(req.Nonce) == "refuse" {
		return nil, errors.New("fake: refused as asked")
	}
	return fmt.Appendf(nil, "doc(%x,%x,%x)", req.Nonce, req.UserData, req.PublicKey), nil
}

func (f *fakeDevice) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range p {
		p[i] = f.next
		f.next++
	}
	return len(p), nil
}

func (f *fakeDevice) Close() error { return nil }

// wireEncMode is the protocol's encoding (package nsmwire's): core
// deterministic, nil byte strings as empty ones.
var wireEncMode = strictcbor.EncMode(cbor.NilContainerAsEmpty)

// mustEncode encodes v as the protocol would, valid or not.
func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wireEncMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServeConnRefuses: the server answers a malformed request with an
// error response of op 0, then closes the connection.
func TestServeConnRefuses(t *testing.T) {
	valid := &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 4}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "garbage", in: frame([]byte("garbage")), want: "malformed request"},
		{name: "oversized frame", in: []byte{0, 0, 0x10, 1}, want: "frame too large: 4097 bytes, limit 4096"},
		{name: "huge frame", in: []byte{0xff, 0xff, 0xff, 0xff}, want: "frame too large"},
		{name: "empty frame", in: []byte{0, 0, 0, 0}, want: "empty frame"},
		{name: "version 2", in: frame(mustEncode(t, &nsmwire.Request{Version: 2, Op: nsmwire.OpRandom, Length: 4})), want: "unsupported version 2"},
		{name: "version 2 with new fields", in: frame(mustEncode(t, map[uint64]any{1: 2, 2: 1, 9: "new"})), want: "unsupported version 2"},
		{name: "unknown op", in: frame(mustEncode(t, &nsmwire.Request{Version: 1, Op: 3})), want: "unknown op 3"},
		{name: "random of 0", in: frame(mustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom})), want: "random request for 0 bytes"},
		{name: "random too many", in: frame(mustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: nsmwire.MaxRandomChunk + 1})), want: "random request for 4097 bytes"},
		{name: "random with nonce", in: frame(mustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 1, Nonce: []byte{1}})), want: "random request with attestation fields"},
		{name: "attest with length", in: frame(mustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Length: 1})), want: "attest request with a length"},
		{name: "nonce too large", in: frame(mustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Nonce: make([]byte, nsmwire.MaxFieldSize+1)})), want: "nonce is 1025 bytes"},
		{name: "missing field", in: frame(mustEncode(t, map[uint64]any{1: 1, 2: 2, 6: 4})), want: "not in canonical encoding"},
		{name: "null field", in: frame(mustEncode(t, map[uint64]any{1: 1, 2: 2, 3: nil, 4: []byte{}, 5: []byte{}, 6: 4})), want: "not in canonical encoding"},
		{name: "non-shortest integer", in: frame(bytes.Replace(mustEncode(t, valid), []byte{0x06, 0x04}, []byte{0x06, 0x18, 0x04}, 1)), want: "not in canonical encoding"},
		{name: "trailing bytes", in: frame(append(mustEncode(t, valid), 0)), want: "malformed request"},
		{name: "tag", in: frame(append([]byte{0xd8, 0x18}, mustEncode(t, valid)...)), want: "malformed request"},
		{name: "text for bytes", in: frame(mustEncode(t, map[uint64]any{1: 1, 2: 1, 3: "n", 4: []byte{}, 5: []byte{}, 6: 0})), want: "malformed request"},
		{name: "array", in: frame(mustEncode(t, []any{1, 2})), want: "malformed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := net.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- ServeConn(context.Background(), s, &fakeDevice{}) }()
			defer c.Close()
			go c.Write(tt.in)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			p, err := nsmwire.ReadFrame(c, nsmwire.MaxResponseFrame)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp, err := nsmwire.UnmarshalResponse(p)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Op != nsmwire.OpNone || !strings.Contains(resp.Error, tt.want) {
				t.Errorf("answer op %d error %q, want op 0 and %q", resp.Op, resp.Error, tt.want)
			}
			if err := <-errc; err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsmsim: serve: ") {
				t.Errorf("ServeConn = %v, want an error with %q", err, tt.want)
			}
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Error("the connection stayed open")
			}
		})
	}
}

func TestServeConnEnds(t *testing.T) {
	// A clean close by the client ends ServeConn with nil.
	c, s := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- ServeConn(context.Background(), s, &fakeDevice{}) }()
	r := nsm.NewRemote(c)
	if _, err := r.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := <-errc; err != nil {
		t.Errorf("ServeConn after the client closed = %v", err)
	}
	// So does the end of its context, promptly.
	c2, s2 := net.Pipe()
	defer c2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- ServeConn(ctx, s2, &fakeDevice{}) }()
	cancel()
	select {
	case err := <-errc2:
		if err != nil {
			t.Errorf("ServeConn after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not end with its context")
	}
}

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

// FuzzServeConn feeds a byte stream as requests to ServeConn: it never
// panics, writes only valid responses, ends cleanly exactly when the stream
// is nothing but valid requests, and then answers each one. (Until the
// server moved here from package nsm, this was the server half of nsm's
// FuzzRemote, which now fuzzes the client alone; the seeds are the same.)
func FuzzServeConn(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		sc := newScriptConn(stream)
		err := ServeConn(context.Background(), sc, &fakeDevice{})
		var answers int
		out := bytes.NewReader(sc.written())
		for {
			p, rerr := nsmwire.ReadFrame(out, nsmwire.MaxResponseFrame)
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				t.Fatalf("the server wrote a bad frame: %v", rerr)
			}
			if _, rerr := nsmwire.UnmarshalResponse(p); rerr != nil {
				t.Fatalf("the server wrote a bad response: %v", rerr)
			}
			answers++
		}
		n, valid := validRequests(stream)
		switch {
		case valid && err != nil:
			t.Fatalf("valid requests, but ServeConn = %v", err)
		case valid && answers != n:
			t.Fatalf("%d valid requests, %d answers", n, answers)
		case !valid && err == nil:
			t.Fatal("invalid requests, but ServeConn ended cleanly")
		case !valid && answers > n+1:
			t.Fatalf("%d valid requests before a bad one, %d answers", n, answers)
		}
	})
}

// seedServeConn returns the named seeds of FuzzServeConn: valid requests,
// valid responses (which a server must refuse as requests), and the near
// misses of the refusal tests. They are package nsm's FuzzRemote seeds.
func seedServeConn(t testing.TB) map[string][]byte {
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
// go test ./internal/sim/nsmsim -run TestSeedCorpus -update-corpus.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzServeConn", "seed_", '_', seedServeConn(t), *updateCorpus, "go test ./internal/sim/nsmsim -run TestSeedCorpus -update-corpus")
}
