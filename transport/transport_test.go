package transport_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/transport"
)

func shortDir(t *testing.T) string {
	t.Helper()
	// t.TempDir can exceed the Unix socket path limit; /tmp is short.
	d, err := os.MkdirTemp("", "vs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestUnixVsockRoundTrip(t *testing.T) {
	dir := shortDir(t)
	enclave := &transport.UnixVsock{Dir: dir, CID: 16}
	parent := &transport.UnixVsock{Dir: dir, CID: transport.ParentCID}

	l, err := enclave.Listen(5000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := l.Addr(), (transport.Addr{ContextID: 16, Port: 5000}); got != want {
		t.Fatalf("listener addr = %v, want %v", got, want)
	}

	type accepted struct {
		remote net.Addr
		data   string
		err    error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		ch <- accepted{remote: c.RemoteAddr(), data: string(b), err: err}
	}()

	c, err := parent.Dial(context.Background(), 16, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.RemoteAddr(), (transport.Addr{ContextID: 16, Port: 5000}); got != want {
		t.Errorf("dialer remote = %v, want %v", got, want)
	}
	local := c.LocalAddr().(transport.Addr)
	if local.ContextID != transport.ParentCID || local.Port < 49152 {
		t.Errorf("dialer local = %v, want CID 3 and an ephemeral port", local)
	}
	if _, err := c.Write([]byte("hello enclave")); err != nil {
		t.Fatal(err)
	}
	c.Close()

	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.data != "hello enclave" {
		t.Errorf("enclave read %q", a.data)
	}
	if a.remote != local {
		t.Errorf("enclave sees peer %v, dialer is %v", a.remote, local)
	}
}

func TestUnixVsockDialNoListener(t *testing.T) {
	parent := &transport.UnixVsock{Dir: shortDir(t), CID: 3}
	if _, err := parent.Dial(context.Background(), 16, 5000); err == nil || !strings.Contains(err.Error(), "vsock(16:5000)") {
		t.Fatalf("dial without listener: err = %v, want an error naming vsock(16:5000)", err)
	}
}

func TestUnixVsockStaleSocketReplaced(t *testing.T) {
	dir := shortDir(t)
	u := &transport.UnixVsock{Dir: dir, CID: 16}
	path, _ := u.SocketPath(16, 7)
	// A socket file nobody listens on, as a killed process leaves it.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l, err := u.Listen(7)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	// A live one is not taken over.
	if _, err := u.Listen(7); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second listen: err = %v, want already in use", err)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

func TestUnixVsockAcceptSkipsSilentDialer(t *testing.T) {
	dir := shortDir(t)
	u := &transport.UnixVsock{Dir: dir, CID: 16}
	l, err := u.Listen(9)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path, _ := u.SocketPath(16, 9)
	// A dialer that sends a short preamble and hangs up must not stop Accept.
	raw, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0, 0})
	raw.Close()

	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := (&transport.UnixVsock{Dir: dir, CID: 3}).Dial(context.Background(), 16, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("accept did not return the well-behaved connection")
	}
}

func TestUnixVsockPathTooLong(t *testing.T) {
	u := &transport.UnixVsock{Dir: filepath.Join("/tmp", strings.Repeat("d", 120)), CID: 16}
	if _, err := u.Listen(5000); err == nil || !strings.Contains(err.Error(), "shorter directory") {
		t.Fatalf("err = %v, want a hint to use a shorter directory", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, spec string
		wantErr    bool
	}{
		{"vsock", "vsock", false},
		{"unix", "unix:/run/x", false},
		{"unix without dir", "unix:", true},
		{"tcp refused", "tcp:127.0.0.1:1", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transport.Parse(tt.spec, 16)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse(%q) err = %v, wantErr %v", tt.spec, err, tt.wantErr)
			}
			if err == nil && tr == nil {
				t.Fatal("nil transport without error")
			}
		})
	}
}

// TestIntegrationVsock needs an AF_VSOCK peer: run it inside a Nitro enclave
// or on a parent instance with a running enclave, with
// NITROSIGN_VSOCK_PEER=CID:PORT naming a listener that echoes.
func TestIntegrationVsock(t *testing.T) {
	peer := os.Getenv("NITROSIGN_VSOCK_PEER")
	if peer == "" {
		t.Skip("skipping: needs real AF_VSOCK (Nitro parent or enclave); set NITROSIGN_VSOCK_PEER=CID:PORT of an echo listener")
	}
	cidStr, portStr, ok := strings.Cut(peer, ":")
	if !ok {
		t.Fatalf("NITROSIGN_VSOCK_PEER=%q, want CID:PORT", peer)
	}
	cid, err := transport.ParseCID(cidStr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := transport.ParseCID(portStr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.Vsock().Dial(context.Background(), cid, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}
