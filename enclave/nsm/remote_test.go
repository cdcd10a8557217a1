package nsm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire/nsmwiretest"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/transport"
)

// serveFake returns a remote device talking to the simulator's server,
// nsmsim.ServeConn, with d over net.Pipe, and the channel ServeConn's
// result arrives on.
func serveFake(t *testing.T, d nsm.Device) (nsm.Device, <-chan error) {
	t.Helper()
	c, s := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- nsmsim.ServeConn(context.Background(), s, d) }()
	r := nsm.NewRemote(c)
	t.Cleanup(func() { r.Close() })
	return r, errc
}

// rawServer returns a remote device talking to serve over net.Pipe.
func rawServer(t *testing.T, serve func(net.Conn)) nsm.Device {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); defer s.Close(); serve(s) }()
	r := nsm.NewRemote(c)
	t.Cleanup(func() { r.Close(); <-done })
	return r
}

func TestRemoteAttest(t *testing.T) {
	r, _ := serveFake(t, &nsmwiretest.FakeDevice{})
	for _, req := range []nsm.AttestRequest{
		{},
		{Nonce: []byte("nonce")},
		{Nonce: bytes.Repeat([]byte{1}, nsm.MaxFieldSize), UserData: bytes.Repeat([]byte{2}, nsm.MaxFieldSize), PublicKey: bytes.Repeat([]byte{3}, nsm.MaxFieldSize)},
	} {
		doc, err := r.Attest(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if want := nsmwiretest.Document(req); !bytes.Equal(doc, want) {
			t.Errorf("document %.40q, want %.40q", doc, want)
		}
	}
}

func TestRemoteRead(t *testing.T) {
	f := &nsmwiretest.FakeDevice{}
	r, _ := serveFake(t, f)
	var all []byte
	for _, n := range []int{0, 1, nsm.MaxRandomChunk, 2*nsm.MaxRandomChunk + 5} {
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
	// 1 + 1 + 3 requests: at most nsm.MaxRandomChunk bytes each.
	if f.Reads() != 5 {
		t.Errorf("%d random requests, want 5", f.Reads())
	}
}

func TestRemoteRefusalKeepsConnection(t *testing.T) {
	r, _ := serveFake(t, &nsmwiretest.FakeDevice{})
	_, err := r.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("refuse")})
	var refused *nsm.RemoteError
	if !errors.As(err, &refused) || refused.Message != "fake: refused as asked" {
		t.Fatalf("Attest = %v, want a nsm.RemoteError", err)
	}
	_, err = r.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("long error")})
	if !errors.As(err, &refused) || len(refused.Message) > nsmwire.MaxErrorSize || !strings.HasPrefix(refused.Message, "éé") {
		t.Fatalf("Attest = %v, want a nsm.RemoteError cut to %d bytes", err, nsmwire.MaxErrorSize)
	}
	if _, err := r.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("ok")}); err != nil {
		t.Fatalf("the connection did not survive a refusal: %v", err)
	}
}

func TestRemoteChecksBeforeSending(t *testing.T) {
	r := rawServer(t, func(c net.Conn) {
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("the server got %d bytes", len(b))
		}
	})
	_, err := r.Attest(context.Background(), nsm.AttestRequest{UserData: make([]byte, nsm.MaxFieldSize+1)})
	if err == nil || !strings.Contains(err.Error(), "nsm: user_data is 1025 bytes, limit 1024") {
		t.Errorf("Attest = %v", err)
	}
}

// TestRemoteRefusesBadResponses: a client that reads anything but the
// response it expects fails, closes the connection, and (made by
// nsm.NewRemote) stays failed.
func TestRemoteRefusesBadResponses(t *testing.T) {
	ok := func(op uint64) *nsmwire.Response {
		r := &nsmwire.Response{Version: nsmwire.Version, Op: op}
		if op == nsmwire.OpAttest {
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
		{name: "garbage", attest: true, answer: nsmwiretest.Frame([]byte("garbage")), want: "malformed response"},
		{name: "truncated frame", attest: true, answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, ok(nsmwire.OpAttest)))[:10], want: "unexpected EOF"},
		{name: "oversized frame", attest: true, answer: []byte{0, 0, 0x44, 1}, want: "frame too large"},
		{name: "empty frame", attest: true, answer: []byte{0, 0, 0, 0}, want: "empty frame"},
		{name: "wrong op", attest: true, answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, ok(nsmwire.OpRandom))), want: "response of op 2 to a request of op 1"},
		{name: "wrong op error", attest: true, answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Error: "x"})), want: "error response for op 2"},
		{name: "malformed-request error", attest: true, answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Response{Version: 1, Op: nsmwire.OpNone, Error: "bad"})), want: "refused the request as malformed: bad"},
		{name: "version 2", attest: true, answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Response{Version: 2, Op: nsmwire.OpAttest, Document: []byte("d")})), want: "unsupported version 2"},
		{name: "short random", answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Random: []byte{1}})), want: "asked for 8 random bytes, got 1"},
		{name: "long random", answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Random: make([]byte, 9)})), want: "asked for 8 random bytes, got 9"},
		{name: "error with result", answer: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Response{Version: 1, Op: nsmwire.OpRandom, Random: make([]byte, 8), Error: "x"})), want: "error response with a result"},
		{name: "unknown key", attest: true, answer: nsmwiretest.Frame(append([]byte{0xa6}, nsmwiretest.MustEncode(t, ok(nsmwire.OpAttest))[1:]...)), want: "malformed response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawServer(t, func(c net.Conn) {
				if _, err := nsmwire.ReadFrame(c, nsmwire.MaxRequestFrame); err != nil {
					t.Errorf("server: %v", err)
					return
				}
				c.Write(tt.answer)
			})
			call := func() error {
				if tt.attest {
					_, err := r.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("n")})
					return err
				}
				_, err := r.Read(make([]byte, 8))
				return err
			}
			err := call()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsm: remote") {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
			var refused *nsm.RemoteError
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
		nsmwire.ReadFrame(c, nsmwire.MaxRequestFrame)
		<-hung // never answer
	})
	defer close(hung)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Attest(ctx, nsm.AttestRequest{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Attest = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := r.Attest(cancelled, nsm.AttestRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Attest with a cancelled context = %v", err)
	}
}

func TestRemoteCloseInterrupts(t *testing.T) {
	hung := make(chan struct{})
	r := rawServer(t, func(c net.Conn) {
		nsmwire.ReadFrame(c, nsmwire.MaxRequestFrame)
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
	if _, err := r.Attest(context.Background(), nsm.AttestRequest{}); !errors.Is(err, nsm.ErrClosed) {
		t.Errorf("Attest after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
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
			go nsmsim.ServeConn(context.Background(), c, &nsmwiretest.FakeDevice{})
		}
	}()
	enclave := &transport.UnixVsock{Dir: dir, CID: transport.DefaultEnclaveCID}
	d, err := nsm.OpenSpec(context.Background(), "vsock:3:9000", enclave)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("n")}); err != nil {
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
		if d, err := nsm.OpenSpec(context.Background(), tt.spec, enclave); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsm: ") {
			t.Errorf("nsm.OpenSpec(%q) = %v, %v; want an error with %q", tt.spec, d, err, tt.want)
		}
	}
	if _, err := nsm.OpenSpec(context.Background(), "vsock:3:9000", nil); err == nil || !strings.Contains(err.Error(), "needs a transport") {
		t.Errorf("nsm.OpenSpec without a transport = %v", err)
	}
}

// TestDialRemoteRedials: a device made by nsm.DialRemote dials again after the
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
			go nsmsim.ServeConn(context.Background(), c, &nsmwiretest.FakeDevice{})
		}
	}()
	d, err := nsm.DialRemote(context.Background(), &transport.UnixVsock{Dir: dir, CID: 16}, transport.ParentCID, 9000)
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
	r, _ := serveFake(t, &nsmwiretest.FakeDevice{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				nonce := fmt.Appendf(nil, "%d-%d", i, j)
				doc, err := r.Attest(context.Background(), nsm.AttestRequest{Nonce: nonce})
				if err != nil || !bytes.Equal(doc, nsmwiretest.Document(nsm.AttestRequest{Nonce: nonce})) {
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
