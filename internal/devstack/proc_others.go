//go:build !linux

package devstack

import (
	"os"
	"syscall"
)

var syscallTerm = os.Interrupt

const isolationSupported = false

// procAttr cannot isolate the enclave process on this platform.
func procAttr(bool) *syscall.SysProcAttr { return nil }
