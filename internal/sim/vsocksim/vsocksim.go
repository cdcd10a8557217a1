// Package vsocksim simulates the vsock network of a Nitro parent instance
// and its enclave on a machine without Nitro hardware.
//
// A Sim is a private directory that plays the hypervisor: every (CID, port)
// listener is a Unix socket in it (see [transport.UnixVsock] for the
// addressing and the connection preamble). The enclave process is started
// with "-transport unix:DIR", the host uses [Sim.Endpoint] with the parent's
// CID, and neither has any other channel to the other, as on Nitro.
//
// This package is for `nitrosign dev` and tests. It must never be linked
// into the enclave binary; a test in cmd/nitrosign-enclave enforces that.
package vsocksim

import (
	"fmt"
	"os"

	"github.com/nitrosign/nitrosign/transport"
)

// A Sim is one simulated vsock network.
type Sim struct {
	dir     string
	created bool
}

// New starts a simulated vsock network in dir, which is created with mode
// 0700 if it does not exist. An empty dir makes a fresh directory under the
// system's temporary directory, removed again by Close. Unix socket paths are
// short (about 100 bytes), so dir should be short too.
func New(dir string) (*Sim, error) {
	s := &Sim{dir: dir}
	if dir == "" {
		d, err := os.MkdirTemp("", "nitrosign-vsock-")
		if err != nil {
			return nil, fmt.Errorf("vsocksim: %w", err)
		}
		s.dir, s.created = d, true
	}
	// Fail now, not at the first Listen, if the paths would not fit.
	if _, err := s.Endpoint(transport.ParentCID).SocketPath(4294967295, 4294967295); err != nil {
		s.Close()
		return nil, fmt.Errorf("vsocksim: directory %q is too long for Unix socket paths", s.dir)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("vsocksim: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("vsocksim: %w", err)
	}
	return s, nil
}

// Dir returns the simulator's directory.
func (s *Sim) Dir() string { return s.dir }

// Spec returns the transport specification that makes another process join
// this network, for its "-transport" flag.
func (s *Sim) Spec() string { return "unix:" + s.dir }

// Endpoint returns the transport of a participant with the given context id.
func (s *Sim) Endpoint(cid uint32) *transport.UnixVsock {
	return &transport.UnixVsock{Dir: s.dir, CID: cid}
}

// Close removes the directory if New created it. Listeners should be closed
// first; their sockets are removed as they close.
func (s *Sim) Close() error {
	if !s.created {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("vsocksim: %w", err)
	}
	return nil
}
