package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// UnixVsock is the vsock simulator's addressing: a listener on (CID, port)
// is the Unix socket DIR/CID.PORT, and a connection starts with an 8-byte
// preamble (the dialer's CID and port, big-endian) so that the accepting side
// learns the peer's vsock address, as AF_VSOCK reports it.
//
// Every process of a simulated deployment gets a UnixVsock on the same
// directory with its own CID; the directory is the simulated hypervisor. It
// should be private to the user running the stack (mode 0700), as the
// simulator creates it.
type UnixVsock struct {
	Dir string
	CID uint32
}

var _ Transport = (*UnixVsock)(nil)

// maxUnixPath is the portable limit of sun_path, less the terminating NUL.
const maxUnixPath = 103

// preambleTimeout bounds how long Accept waits for a dialer's preamble.
const preambleTimeout = 5 * time.Second

var ephemeralPort atomic.Uint32

func init() { ephemeralPort.Store(49151) }

// SocketPath returns the path of the Unix socket that stands for (cid, port).
func (u *UnixVsock) SocketPath(cid, port uint32) (string, error) {
	p := filepath.Join(u.Dir, fmt.Sprintf("%d.%d", cid, port))
	if len(p) > maxUnixPath {
		return "", fmt.Errorf("transport: simulator socket path %q is longer than %d bytes; use a shorter directory", p, maxUnixPath)
	}
	return p, nil
}

// Listen listens on (u.CID, port).
func (u *UnixVsock) Listen(port uint32) (net.Listener, error) {
	path, err := u.SocketPath(u.CID, port)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		// A socket file left by a process that died: remove it if nothing
		// answers on it, then try once more.
		if fi, statErr := os.Lstat(path); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, dialErr := net.DialTimeout("unix", path, time.Second); dialErr == nil {
				c.Close()
				return nil, fmt.Errorf("transport: vsock(%d:%d) is already in use", u.CID, port)
			}
			if rmErr := os.Remove(path); rmErr == nil {
				l, err = net.Listen("unix", path)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("transport: listen on vsock(%d:%d): %w", u.CID, port, err)
		}
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return &unixVsockListener{l: ul, addr: Addr{ContextID: u.CID, Port: port}}, nil
}

// Dial connects to (cid, port) and sends the preamble.
func (u *UnixVsock) Dial(ctx context.Context, cid, port uint32) (net.Conn, error) {
	path, err := u.SocketPath(cid, port)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("transport: dial vsock(%d:%d): connection refused (simulator: %w)", cid, port, err)
	}
	local := Addr{ContextID: u.CID, Port: ephemeralPort.Add(1)}
	var pre [8]byte
	binary.BigEndian.PutUint32(pre[0:4], local.ContextID)
	binary.BigEndian.PutUint32(pre[4:8], local.Port)
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
	}
	if _, err := c.Write(pre[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("transport: dial vsock(%d:%d): %w", cid, port, err)
	}
	c.SetWriteDeadline(time.Time{})
	return &vsockConn{Conn: c, local: local, remote: Addr{ContextID: cid, Port: port}}, nil
}

type unixVsockListener struct {
	l    *net.UnixListener
	addr Addr
}

var _ net.Listener = (*unixVsockListener)(nil)

func (l *unixVsockListener) Addr() net.Addr { return l.addr }
func (l *unixVsockListener) Close() error   { return l.l.Close() }

// Accept returns the next connection whose preamble arrived in time;
// connections that send none are dropped, not returned as errors, so one
// misbehaving dialer cannot stop a server's accept loop.
func (l *unixVsockListener) Accept() (net.Conn, error) {
	for {
		c, err := l.l.Accept()
		if err != nil {
			return nil, err
		}
		var pre [8]byte
		c.SetReadDeadline(time.Now().Add(preambleTimeout))
		if _, err := io.ReadFull(c, pre[:]); err != nil {
			c.Close()
			continue
		}
		c.SetReadDeadline(time.Time{})
		remote := Addr{ContextID: binary.BigEndian.Uint32(pre[0:4]), Port: binary.BigEndian.Uint32(pre[4:8])}
		return &vsockConn{Conn: c, local: l.addr, remote: remote}, nil
	}
}

// vsockConn reports vsock addresses for a simulated connection.
type vsockConn struct {
	net.Conn
	local, remote Addr
}

func (c *vsockConn) LocalAddr() net.Addr  { return c.local }
func (c *vsockConn) RemoteAddr() net.Addr { return c.remote }
