// Package logging builds the structured loggers the binaries share.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a text logger writing to w at the named level (debug, info,
// warn or error).
func New(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("logging: bad level %q (want debug, info, warn or error)", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
