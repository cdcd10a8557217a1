//go:build !linux

package nsm

import (
	"errors"
	"testing"
)

func TestOpenUnsupported(t *testing.T) {
	if d, err := Open(); d != nil || !errors.Is(err, ErrUnsupported) {
		t.Errorf("Open = %v, %v; want ErrUnsupported", d, err)
	}
}
