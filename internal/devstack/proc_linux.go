//go:build linux

package devstack

import "syscall"

var syscallTerm = syscall.SIGTERM

// isolationSupported: Linux has network namespaces.
const isolationSupported = true

// procAttr puts the enclave process in its own process group (so a terminal's
// Ctrl-C reaches only `nitrosign dev`, which stops the parts in order), has
// the kernel kill it if `nitrosign dev` dies, and, when isolate is set, gives
// it a network namespace of its own: no network at all, as in a Nitro
// enclave. Unix sockets of the vsock simulator still work across it.
func procAttr(isolate bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if isolate {
		a.Cloneflags = syscall.CLONE_NEWNET
		if syscall.Geteuid() != 0 {
			a.Cloneflags |= syscall.CLONE_NEWUSER
			a.UidMappings = []syscall.SysProcIDMap{{ContainerID: syscall.Geteuid(), HostID: syscall.Geteuid(), Size: 1}}
			a.GidMappings = []syscall.SysProcIDMap{{ContainerID: syscall.Getegid(), HostID: syscall.Getegid(), Size: 1}}
		}
	}
	return a
}
