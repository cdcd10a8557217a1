//go:build linux

package transport

import (
	"context"
	"net"

	"github.com/mdlayher/vsock"
)

type vsockTransport struct{}

// Vsock returns the AF_VSOCK transport.
func Vsock() Transport { return vsockTransport{} }

func (vsockTransport) Listen(port uint32) (net.Listener, error) {
	return vsock.Listen(port, nil)
}

func (vsockTransport) Dial(ctx context.Context, cid, port uint32) (net.Conn, error) {
	// AF_VSOCK connects do not block on a remote that is not listening (the
	// hypervisor answers at once), so only a context that is already done
	// needs honouring here.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return vsock.Dial(cid, port, nil)
}
