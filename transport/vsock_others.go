//go:build !linux

package transport

import (
	"context"
	"net"
)

type vsockTransport struct{}

// Vsock returns the AF_VSOCK transport. On this platform every call fails
// with [ErrUnsupported]; use [UnixVsock] (the simulator) instead.
func Vsock() Transport { return vsockTransport{} }

func (vsockTransport) Listen(uint32) (net.Listener, error) { return nil, ErrUnsupported }

func (vsockTransport) Dial(context.Context, uint32, uint32) (net.Conn, error) {
	return nil, ErrUnsupported
}
