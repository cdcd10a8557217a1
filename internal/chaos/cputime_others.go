//go:build !linux

package chaos

import "errors"

// cpuTime is not available here: kills are timed by the wall clock.
func cpuTime(int) (int64, error) { return 0, errors.ErrUnsupported }
