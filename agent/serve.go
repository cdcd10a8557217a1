package agent

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

// Timeouts of the servers.
const (
	// sniffTimeout bounds the wait for a Unix socket connection's first
	// byte, which says whether it speaks HTTP or the stream framing.
	sniffTimeout      = 10 * time.Second
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute // a whole request, body included
	idleTimeout       = 2 * time.Minute
)

// Listen opens the agent's address: "unix:/path" or an absolute path is a
// Unix socket; anything else is HOST:PORT for HTTP over TCP, which must be
// a loopback address unless allowRemote (then anyone who reaches it signs
// as this client).
//
// The Unix socket is created with mode 0600 (bound under a temporary name,
// restricted, then renamed into place, so that it is never reachable with
// wider permissions) and removed when the listener is closed. An existing
// socket at path is replaced only if nothing listens on it; any other file
// is left alone and refused.
func Listen(addr string, allowRemote bool) (net.Listener, error) {
	if path, ok := unixPath(addr); ok {
		return listenUnix(path)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen address %q: want HOST:PORT, unix:/path or an absolute path", addr)
	}
	if !allowRemote && !loopbackHost(host) {
		return nil, fmt.Errorf("agent: listen address %q is not loopback: whoever reaches the agent signs as this client; give --allow-remote to mean it", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return ln, nil
}

// IsUnix reports whether addr names a Unix socket for [Listen].
func IsUnix(addr string) bool {
	_, ok := unixPath(addr)
	return ok
}

func unixPath(addr string) (string, bool) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return p, p != ""
	}
	return addr, filepath.IsAbs(addr)
}

// loopbackHost reports whether host is "localhost" or a loopback IP.
func loopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type unixListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

// Addr is the socket's path (not the temporary name it was bound under).
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}

func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("agent: %s exists and is not a socket: refusing to replace it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("agent: another process listens on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("agent: removing the stale socket: %w", err)
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+hex.EncodeToString(rnd[:]))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ln, path: path}, nil
}

// Handler returns the agent's HTTP handler: JSON-RPC over POST (package
// agent/jsonrpc), answered only when the Host header names a loopback
// host ("localhost", 127.0.0.0/8, ::1) or one of Config.VHosts ("*" for
// any). The check defeats DNS rebinding, by which a web page the wallet
// host's browser opens would otherwise reach the agent under its own
// name, as go-ethereum's --http.vhosts does. No CORS header is ever sent,
// and a preflight (OPTIONS) is refused, so that no browser page can read
// an answer.
func (a *Agent) Handler() http.Handler {
	rpc := jsonrpc.NewHTTPHandler(a.Dispatch)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			a.log.Warn("request refused: Host header not allowed (add it to --vhosts if it is yours)", "host", r.Host, "remote", r.RemoteAddr)
			http.Error(w, "agent: invalid host specified", http.StatusForbidden)
			return
		}
		rpc.ServeHTTP(w, r)
	})
}

func (a *Agent) hostAllowed(hostHeader string) bool {
	if hostHeader == "" {
		return false
	}
	host := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = h
	}
	if loopbackHost(host) {
		return true
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	for _, v := range a.cfg.VHosts {
		if v == "*" || strings.EqualFold(strings.TrimSuffix(v, "."), host) {
			return true
		}
	}
	return false
}

// Serve serves ln until ctx is done: HTTP on a TCP listener; on a Unix
// socket that [Listen] opened, HTTP and the stream framing of go-ethereum's IPC transport
// (jsonrpc.ServeStream; go-ethereum's rpc.Dial(path) speaks it), told
// apart by each connection's first byte: '{', '[' or whitespace begin a
// JSON stream, an HTTP request begins with its method's letters. Serve
// closes ln and returns nil once ctx is done and the connections are
// closed.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if _, ok := ln.(*unixListener); !ok {
		return a.serveHTTP(ctx, srv, ln)
	}
	hl := &chanListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = a.serveHTTP(ctx, srv, hl) // ends with ctx or hl
	}()
	var streams sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			a.sniff(ctx, c, hl)
		}()
	}
	ln.Close()
	hl.Close()
	wg.Wait()
	streams.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("agent: %w", err)
}

// sniff reads a Unix socket connection's first byte and hands it to the
// stream server or the HTTP server.
func (a *Agent) sniff(ctx context.Context, c net.Conn, hl *chanListener) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if !stop() || err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch first[0] {
	case '{', '[', ' ', '\t', '\r', '\n':
		if err := jsonrpc.ServeStream(ctx, c, br, a.Dispatch, nil); err != nil {
			a.log.Debug("stream connection closed", "err", err)
		}
	default:
		select {
		case hl.conns <- &peekedConn{Conn: c, r: br}:
		case <-hl.done:
			c.Close()
		}
	}
}

func (a *Agent) serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener hands the HTTP server the connections sniff found to be
// HTTP.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var _ net.Listener = (*chanListener)(nil)

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
