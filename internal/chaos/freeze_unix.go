//go:build unix

package chaos

import (
	"os"
	"syscall"
)

// Signals that freeze and thaw a process.
var sigStop, sigCont os.Signal = syscall.SIGSTOP, syscall.SIGCONT
