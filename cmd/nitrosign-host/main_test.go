package main

import (
	"bytes"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/buildinfo"
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

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"-h"}, 0, "", "-data-dir"},
		{[]string{"--help"}, 0, "", "-version"},
		{[]string{"-version"}, 0, "nitrosign-host " + buildinfo.DefaultVersion + "\ncommit  ", ""},
		{[]string{"--version"}, 0, "\ngo      " + runtime.Version() + "\n", ""},
		{[]string{"--bogus"}, 2, "", "bogus"},
		{[]string{"extra"}, 2, "", "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		code := mainWithArgs(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.errs) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.stdout, tc.errs)
		}
		if tc.stdout == "" && out.Len() != 0 {
			t.Errorf("%q: printed %q on stdout", tc.args, out.String())
		}
	}
}
