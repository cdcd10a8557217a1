//go:build !linux

package devstack

import "errors"

// processUsage needs /proc.
func processUsage(int) (ProcessUsage, error) {
	return ProcessUsage{}, errors.New("devstack: process usage is only measured on Linux")
}
