//go:build linux

package devstack

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// processUsage reads the CPU time (user and system) and resident set size
// of process pid from /proc.
func processUsage(pid int) (ProcessUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcessUsage{}, fmt.Errorf("devstack: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields counted from 3 start after its last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ProcessUsage{}, fmt.Errorf("devstack: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// utime and stime are fields 14 and 15, so 11 and 12 from state (3).
	if len(f) < 13 {
		return ProcessUsage{}, fmt.Errorf("devstack: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ProcessUsage{}, fmt.Errorf("devstack: /proc/%d/stat: bad CPU times", pid)
	}
	u := ProcessUsage{CPU: time.Duration(ut+st) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcessUsage{}, fmt.Errorf("devstack: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return ProcessUsage{}, fmt.Errorf("devstack: /proc/%d/status: bad VmRSS", pid)
			}
			u.RSS = kb << 10
			return u, nil
		}
	}
	return ProcessUsage{}, fmt.Errorf("devstack: /proc/%d/status: no VmRSS", pid)
}
