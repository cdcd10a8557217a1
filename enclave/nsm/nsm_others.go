//go:build !linux

package nsm

// Open opens the Nitro Security Module, /dev/nsm. On this platform it
// always fails with [ErrUnsupported]; use a simulated NSM through
// [DialRemote] instead.
func Open() (Device, error) { return nil, ErrUnsupported }
