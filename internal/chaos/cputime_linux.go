package chaos

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// cpuTime returns the CPU time process pid has used, summed over its
// threads (/proc/PID/task/*/schedstat, in nanoseconds), so that a kill can
// be timed by the work the process has done rather than by a wall clock
// that a loaded machine stretches.
func cpuTime(pid int) (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // a thread that ended
		}
		f, _, _ := bytes.Cut(b, []byte{' '})
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("chaos: %s/%s/schedstat: %w", dir, t.Name(), err)
		}
		total += n
	}
	return total, nil
}
