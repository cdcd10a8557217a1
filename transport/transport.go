// Package transport carries the host↔enclave byte streams.
//
// On AWS Nitro the only channel between the parent instance and its enclave is
// AF_VSOCK: an address is a (context id, port) pair, the parent is always CID 3
// and the enclave gets the CID given to `nitro-cli run-enclave`. Everything
// above this package sees plain [net.Listener] and [net.Conn] values, so the
// same enclave and host code runs unchanged over:
//
//   - [Vsock]: real AF_VSOCK sockets (github.com/mdlayher/vsock), Linux only.
//   - [UnixVsock]: the addressing of the vsock simulator, in which every
//     (CID, port) listener is a Unix socket in one directory. It is what
//     `nitrosign dev` and the tests use on machines without Nitro hardware.
//
// Nothing in the project type-asserts to a concrete connection type, so the
// two are interchangeable. Which one the enclave uses is chosen by its command
// line, which is part of the measured enclave image.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Well-known vsock addresses.
const (
	// ParentCID is the context id of the parent EC2 instance as seen from an
	// enclave (VMADDR_CID_HOST).
	ParentCID uint32 = 3
	// DefaultEnclaveCID is the CID the project's scripts give the enclave.
	DefaultEnclaveCID uint32 = 16
	// DefaultEnclavePort is the port the enclave serves the host protocol on.
	DefaultEnclavePort uint32 = 5000
)

// A Transport opens vsock-addressed listeners and connections.
type Transport interface {
	// Listen listens on port at this endpoint's own context id.
	Listen(port uint32) (net.Listener, error)
	// Dial connects to (cid, port).
	Dial(ctx context.Context, cid, port uint32) (net.Conn, error)
}

// Addr is a vsock address. It implements [net.Addr].
type Addr struct {
	ContextID uint32
	Port      uint32
}

var _ net.Addr = Addr{}

// Network returns "vsock".
func (a Addr) Network() string { return "vsock" }

// String returns "vsock(CID:PORT)".
func (a Addr) String() string { return fmt.Sprintf("vsock(%d:%d)", a.ContextID, a.Port) }

// ErrUnsupported is returned by [Vsock] on platforms without AF_VSOCK.
var ErrUnsupported = errors.New("transport: AF_VSOCK is not supported on this platform")

// Parse turns a transport specification from a command line into a
// Transport: "vsock" for AF_VSOCK, or "unix:DIR" for the simulator's
// addressing, in which case localCID is the context id this endpoint has
// (3 for the parent, the enclave's CID inside the enclave).
func Parse(spec string, localCID uint32) (Transport, error) {
	switch {
	case spec == "vsock":
		return Vsock(), nil
	case strings.HasPrefix(spec, "unix:"):
		dir := strings.TrimPrefix(spec, "unix:")
		if dir == "" {
			return nil, errors.New("transport: unix: needs a directory, as in unix:/run/nitrosign-vsock")
		}
		return &UnixVsock{Dir: dir, CID: localCID}, nil
	default:
		return nil, fmt.Errorf("transport: unknown transport %q (want \"vsock\" or \"unix:DIR\")", spec)
	}
}

// ParseCID parses a context id given on a command line.
func ParseCID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("transport: bad context id %q", s)
	}
	return uint32(v), nil
}
