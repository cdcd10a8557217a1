package devstack

import (
	"os"
	"time"
)

// ProcessUsage is what a process has used: its CPU time so far (user and
// system) and its resident set size now.
type ProcessUsage struct {
	CPU time.Duration
	RSS int64 // bytes
}

// EnclaveUsage reports the current enclave process's usage, for the
// benchmark and the soak run: the enclave is a process of its own, so its
// CPU time and memory are not the host's.
func (s *Stack) EnclaveUsage() (ProcessUsage, error) {
	return processUsage(s.Enclave().PID)
}

// SelfUsage reports this process's usage: the host's, which runs in the
// same process as the dev stack (and, in `nitrosign bench`, the load
// generator's).
func SelfUsage() (ProcessUsage, error) { return processUsage(os.Getpid()) }
