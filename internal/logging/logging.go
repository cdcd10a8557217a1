// Package logging builds the structured loggers the binaries share.
//
// # Formats
//
// Every binary logs with log/slog, in one of two formats that carry the same
// records and the same fields: "text" (key=value, for people reading a
// terminal or journalctl) and "json" (one JSON object a line, for log
// shippers: CloudWatch, Loki, Elasticsearch parse it without a grammar).
// Both write "time", "level" and "msg" first, then the record's own fields
// under the same keys. The JSON handler is log/slog's own, so the enclave,
// which links this package, gains no dependency from it.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// Formats: the values of the binaries' -log-format flag.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// New returns a text logger writing to w at the named level (debug, info,
// warn or error).
func New(w io.Writer, level string) (*slog.Logger, error) {
	return NewFormat(w, level, FormatText)
}

// NewFormat returns a logger writing to w at the named level (debug, info,
// warn or error) in the named format (text or json).
func NewFormat(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("logging: bad level %q (want debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case FormatText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case FormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("logging: bad format %q (want text or json)", format)
}
