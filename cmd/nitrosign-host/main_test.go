package main

import (
	"net"
	"strings"
	"testing"
)

func TestRunRefusesBadConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		c    config
		msg  string
	}{
		{"unknown transport", config{transport: "tcp:1", level: "info", listen: "127.0.0.1:0"}, "unknown transport"},
		{"bad log level", config{transport: "vsock", level: "loud", listen: "127.0.0.1:0"}, "level"},
		{"certificate without key", config{transport: "vsock", level: "info", listen: "127.0.0.1:0", cert: "x.pem"}, "TLS"},
		{"unknown credentials", config{transport: "vsock", level: "info", listen: "127.0.0.1:0", credentials: "env"}, "want imds or none"},
		{"bad IMDS endpoint", config{transport: "vsock", level: "info", listen: "127.0.0.1:0", credentials: "imds", imds: "https://169.254.169.254"}, "http"},
		{"port in use", config{transport: "unix:/tmp/x", level: "info", listen: busy.Addr().String()}, "address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(tc.c); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}
