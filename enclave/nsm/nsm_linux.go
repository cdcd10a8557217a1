//go:build linux

package nsm

import (
	"fmt"

	hfnsm "github.com/hf/nsm"
)

// Open opens the Nitro Security Module, /dev/nsm. It fails outside a Nitro
// enclave, where the device does not exist.
func Open() (Device, error) {
	s, err := hfnsm.OpenDefaultSession()
	if err != nil {
		return nil, fmt.Errorf("nsm: open %s: %w", DefaultSpec, err)
	}
	return newDevice(s), nil
}
