package nsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/transport"
)

// fakeDevice is the device behind the fake server: its document is a
// readable rendering of the request, its random bytes count up, and it
// refuses a nonce of "refuse".
type fakeDevice struct {
	mu     sync.Mutex
	next   byte
	reads  int
	closed bool
}

func fakeDocument(req AttestRequest) []byte {
	return fmt.Appendf(nil, "doc(%x,%x,%x)", req.Nonce, req.UserData, req.PublicKey)
}

func (f *fakeDevice) Attest(ctx context.Context, req AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if string(req.Nonce) == "refuse" {
		return nil, errors.New("fake: refused as asked")
	}
	if string(req.Nonce) == "long error" {
		return nil, errors.New(strings.Repeat("é", 1000))
	}
	return fakeDocument(req), nil
}

func (f *fakeDevice) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	for i := range p {
		p[i] = f.next
		f.next++
	}
	return len(p), nil
}

func (f *fakeDevice) Close() error { f.closed = true; return nil }

// serveFake returns a remote device talking to ServeConn over net.Pipe,
// and the channel ServeConn's result arrives on.
func serveFake(t *testing.T, d Device) (Device, <-chan error) {
	t.Helper()
	c, s := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- ServeConn(context.Background(), s, d) }()
	r := NewRemote(c)
	t.Cleanup(func() { r.Close() })
	return r, errc
}

// rawServer returns a remote device talking to serve over net.Pipe.
func rawServer(t *testing.T, serve func(net.Conn)) Device {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); defer s.Close(); serve(s) }()
	r := NewRemote(c)
	t.Cleanup(func() { r.Close(); <-done })
	return r
}

func frame(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRemoteAttest(t *testing.T) {
	r, _ := serveFake(t, &fakeDevice{})
	for _, req := range []AttestRequest{
		{},
		{Nonce: []byte("nonce")},
		{Nonce: bytes.Repeat([]byte{1}, MaxFieldSize), UserData: bytes.Repeat([]byte{2}, MaxFieldSize), PublicKey: bytes.Repeat([]byte{3}, MaxFieldSize)},
	} {
		doc, err := r.Attest(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if want := fakeDocument(req); !bytes.Equal(doc, want) {
			t.Errorf("document %.40q, want %.40q", doc, want)
		}
	}
}

func TestRemoteRead(t *testing.T) {
	f := &fakeDevice{}
	r, _ := serveFake(t, f)
	var all []byte
	for _, n := range []int{0, 1, MaxRandomChunk, 2*MaxRandomChunk + 5} {
		p := make([]byte, n)
		got, err := r.Read(p)
		if err != nil || got != n {
			t.Fatalf("Read(%d bytes) = %d, %v", n, got, err)
		}
		all = append(all, p...)
	}
	for i, b := range all {
		if b != byte(i) {
			t.Fatalf("byte %d is %d: chunks lost or reordered", i, b)
		}
	}
	// 1 + 1 + 3 requests: at most MaxRandomChunk bytes each.
	if f.reads != 5 {
		t.Errorf("%d random requests, want 5", f.reads)
	}
}

func TestRemoteRefusalKeepsConnection(t *testing.T) {
	r, _ := serveFake(t, &fakeDevice{})
	_, err := r.Attest(context.Background(), AttestRequest{Nonce: []byte("refuse")})
	var refused *RemoteError
	if !errors.As(err, &refused) || refused.Message != "fake: refused as asked" {
		t.Fatalf("Attest = %v, want a RemoteError", err)
	}
	_, err = r.Attest(context.Background(), AttestRequest{Nonce: []byte("long error")})
	if !errors.As(err, &refused) || len(refused.Message) > maxErrorSize || !strings.HasPrefix(refused.Message, "éé") {
		t.Fatalf("Attest = %v, want a RemoteError cut to %d bytes", err, maxErrorSize)
	}
	if _, err := r.Attest(context.Background(), AttestRequest{Nonce: []byte("ok")}); err != nil {
		t.Fatalf("the connection did not survive a refusal: %v", err)
	}
}

func TestRemoteChecksBeforeSending(t *testing.T) {
	r := rawServer(t, func(c net.Conn) {
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("the server got %d bytes", len(b))
		}
	})
	_, err := r.Attest(context.Background(), AttestRequest{UserData: make([]byte, MaxFieldSize+1)})
	if err == nil || !strings.Contains(err.Error(), "nsm: user_data is 1025 bytes, limit 1024") {
		t.Errorf("Attest = %v", err)
	}
}

// TestRemoteRefusesBadResponses: a client that reads anything but the
// response it expects fails, closes the connection, and (made by
// NewRemote) stays failed.
func TestRemoteRefusesBadResponses(t *testing.T) {
	ok := func(op uint64) *wireResponse {
		r := &wireResponse{Version: RemoteVersion, Op: op}
		if op == opAttest {
			r.Document = []byte("doc")
		} else {
			r.Random = make([]byte, 8)
		}
		return r
	}
	tests := []struct {
		name   string
		attest bool // else Read 8 bytes
		answer []byte
		want   string
	}{
		{name: "closes", attest: true, answer: nil, want: "EOF"},
		{name: "garbage", attest: true, answer: frame([]byte("garbage")), want: "malformed response"},
		{name: "truncated frame", attest: true, answer: frame(mustEncode(t, ok(opAttest)))[:10], want: "unexpected EOF"},
		{name: "oversized frame", attest: true, answer: []byte{0, 0, 0x44, 1}, want: "frame too large"},
		{name: "empty frame", attest: true, answer: []byte{0, 0, 0, 0}, want: "empty frame"},
		{name: "wrong op", attest: true, answer: frame(mustEncode(t, ok(opRandom))), want: "response of op 2 to a request of op 1"},
		{name: "wrong op error", attest: true, answer: frame(mustEncode(t, &wireResponse{Version: 1, Op: opRandom, Error: "x"})), want: "error response for op 2"},
		{name: "malformed-request error", attest: true, answer: frame(mustEncode(t, &wireResponse{Version: 1, Op: opNone, Error: "bad"})), want: "refused the request as malformed: bad"},
		{name: "version 2", attest: true, answer: frame(mustEncode(t, &wireResponse{Version: 2, Op: opAttest, Document: []byte("d")})), want: "unsupported version 2"},
		{name: "short random", answer: frame(mustEncode(t, &wireResponse{Version: 1, Op: opRandom, Random: []byte{1}})), want: "asked for 8 random bytes, got 1"},
		{name: "long random", answer: frame(mustEncode(t, &wireResponse{Version: 1, Op: opRandom, Random: make([]byte, 9)})), want: "asked for 8 random bytes, got 9"},
		{name: "error with result", answer: frame(mustEncode(t, &wireResponse{Version: 1, Op: opRandom, Random: make([]byte, 8), Error: "x"})), want: "error response with a result"},
		{name: "unknown key", attest: true, answer: frame(append([]byte{0xa6}, mustEncode(t, ok(opAttest))[1:]...)), want: "malformed response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawServer(t, func(c net.Conn) {
				if _, err := readFrame(c, maxRequestFrame); err != nil {
					t.Errorf("server: %v", err)
					return
				}
				c.Write(tt.answer)
			})
			call := func() error {
				if tt.attest {
					_, err := r.Attest(context.Background(), AttestRequest{Nonce: []byte("n")})
					return err
				}
				_, err := r.Read(make([]byte, 8))
				return err
			}
			err := call()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsm: remote") {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
			var refused *RemoteError
			if errors.As(err, &refused) {
				t.Fatalf("a broken response reported as a refusal: %v", err)
			}
			if err := call(); err == nil || !strings.Contains(err.Error(), "connection lost earlier") {
				t.Errorf("next call: %v, want connection lost", err)
			}
		})
	}
}

func TestRemoteContext(t *testing.T) {
	hung := make(chan struct{})
	r := rawServer(t, func(c net.Conn) {
		readFrame(c, maxRequestFrame)
		<-hung // never answer
	})
	defer close(hung)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Attest(ctx, AttestRequest{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Attest = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := r.Attest(cancelled, AttestRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Attest with a cancelled context = %v", err)
	}
}

func TestRemoteCloseInterrupts(t *testing.T) {
	hung := make(chan struct{})
	r := rawServer(t, func(c net.Conn) {
		readFrame(c, maxRequestFrame)
		<-hung
	})
	defer close(hung)
	errc := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 4)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Read succeeded on a closed device")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt Read")
	}
	if _, err := r.Attest(context.Background(), AttestRequest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Attest after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestServeConnRefuses: the server answers a malformed request with an
// error response of op 0, then closes the connection.
func TestServeConnRefuses(t *testing.T) {
	valid := &wireRequest{Version: 1, Op: opRandom, Length: 4}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "garbage", in: frame([]byte("garbage")), want: "malformed request"},
		{name: "oversized frame", in: []byte{0, 0, 0x10, 1}, want: "frame too large: 4097 bytes, limit 4096"},
		{name: "huge frame", in: []byte{0xff, 0xff, 0xff, 0xff}, want: "frame too large"},
		{name: "empty frame", in: []byte{0, 0, 0, 0}, want: "empty frame"},
		{name: "version 2", in: frame(mustEncode(t, &wireRequest{Version: 2, Op: opRandom, Length: 4})), want: "unsupported version 2"},
		{name: "version 2 with new fields", in: frame(mustEncode(t, map[uint64]any{1: 2, 2: 1, 9: "new"})), want: "unsupported version 2"},
		{name: "unknown op", in: frame(mustEncode(t, &wireRequest{Version: 1, Op: 3})), want: "unknown op 3"},
		{name: "random of 0", in: frame(mustEncode(t, &wireRequest{Version: 1, Op: opRandom})), want: "random request for 0 bytes"},
		{name: "random too many", in: frame(mustEncode(t, &wireRequest{Version: 1, Op: opRandom, Length: MaxRandomChunk + 1})), want: "random request for 4097 bytes"},
		{name: "random with nonce", in: frame(mustEncode(t, &wireRequest{Version: 1, Op: opRandom, Length: 1, Nonce: []byte{1}})), want: "random request with attestation fields"},
		{name: "attest with length", in: frame(mustEncode(t, &wireRequest{Version: 1, Op: opAttest, Length: 1})), want: "attest request with a length"},
		{name: "nonce too large", in: frame(mustEncode(t, &wireRequest{Version: 1, Op: opAttest, Nonce: make([]byte, MaxFieldSize+1)})), want: "nonce is 1025 bytes"},
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
			p, err := readFrame(c, maxResponseFrame)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp, err := unmarshalResponse(p)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Op != opNone || !strings.Contains(resp.Error, tt.want) {
				t.Errorf("answer op %d error %q, want op 0 and %q", resp.Op, resp.Error, tt.want)
			}
			if err := <-errc; err == nil || !strings.Contains(err.Error(), tt.want) {
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
	r, errc := serveFake(t, &fakeDevice{})
	if _, err := r.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := <-errc; err != nil {
		t.Errorf("ServeConn after the client closed = %v", err)
	}
	// So does the end of its context, promptly.
	c, s := net.Pipe()
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- ServeConn(ctx, s, &fakeDevice{}) }()
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

func TestOpenSpec(t *testing.T) {
	dir, err := os.MkdirTemp("", "nsm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	host := &transport.UnixVsock{Dir: dir, CID: transport.ParentCID}
	l, err := host.Listen(9000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go ServeConn(context.Background(), c, &fakeDevice{})
		}
	}()
	enclave := &transport.UnixVsock{Dir: dir, CID: transport.DefaultEnclaveCID}
	d, err := OpenSpec(context.Background(), "vsock:3:9000", enclave)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Attest(context.Background(), AttestRequest{Nonce: []byte("n")}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ spec, want string }{
		{"", "unknown device"},
		{"/dev/nsm0", "unknown device"},
		{"vsock", "unknown device"},
		{"vsock:3", "want \"vsock:CID:PORT\""},
		{"vsock:x:9000", "bad context id"},
		{"vsock:3:-1", "bad port"},
		{"vsock:3:4294967296", "bad port"},
		{"vsock:3:9001", "connection refused"},
	} {
		if d, err := OpenSpec(context.Background(), tt.spec, enclave); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsm: ") {
			t.Errorf("OpenSpec(%q) = %v, %v; want an error with %q", tt.spec, d, err, tt.want)
		}
	}
	if _, err := OpenSpec(context.Background(), "vsock:3:9000", nil); err == nil || !strings.Contains(err.Error(), "needs a transport") {
		t.Errorf("OpenSpec without a transport = %v", err)
	}
}

// TestDialRemoteRedials: a device made by DialRemote dials again after the
// server dropped its connection.
func TestDialRemoteRedials(t *testing.T) {
	dir, err := os.MkdirTemp("", "nsm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	host := &transport.UnixVsock{Dir: dir, CID: transport.ParentCID}
	l, err := host.Listen(9000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
			go ServeConn(context.Background(), c, &fakeDevice{})
		}
	}()
	d, err := DialRemote(context.Background(), &transport.UnixVsock{Dir: dir, CID: 16}, transport.ParentCID, 9000)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Read(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	(<-accepted).Close() // the server drops the connection
	if _, err := d.Read(make([]byte, 4)); err == nil {
		t.Fatal("Read on a dropped connection succeeded")
	}
	if _, err := d.Read(make([]byte, 4)); err != nil {
		t.Fatalf("Read after a drop did not redial: %v", err)
	}
	if len(accepted) != 1 {
		t.Errorf("%d new connections, want 1", len(accepted))
	}
}

// TestRemoteConcurrent runs requests from many goroutines on one
// connection under -race: exchanges must not interleave.
func TestRemoteConcurrent(t *testing.T) {
	r, _ := serveFake(t, &fakeDevice{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				nonce := fmt.Appendf(nil, "%d-%d", i, j)
				doc, err := r.Attest(context.Background(), AttestRequest{Nonce: nonce})
				if err != nil || !bytes.Equal(doc, fakeDocument(AttestRequest{Nonce: nonce})) {
					t.Errorf("Attest = %q, %v", doc, err)
					return
				}
				if _, err := r.Read(make([]byte, 100)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
