package devstack

import (
	"bytes"
	"strings"
	"testing"
)

func TestCopyLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		jsonLog bool
		in      string
		want    string
	}{
		{"text", false, "time=x level=INFO msg=listening\nsecond\n", "enclave | time=x level=INFO msg=listening\nenclave | second\n"},
		{"json object", true, `{"time":"x","level":"INFO","msg":"listening"}` + "\n", `{"process":"enclave","time":"x","level":"INFO","msg":"listening"}` + "\n"},
		{"not an object", true, "panic: boom \"quoted\"\n", `{"process":"enclave","output":"panic: boom \"quoted\""}` + "\n"},
		{"broken object", true, `{"msg":` + "\n", `{"process":"enclave","output":"{\"msg\":"}` + "\n"},
		{"empty object", true, "{}\n", `{"process":"enclave","output":"{}"}` + "\n"},
		{"no final newline", true, `{"msg":"x"}`, `{"process":"enclave","msg":"x"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			copyLines(&out, tc.jsonLog, strings.NewReader(tc.in))
			if out.String() != tc.want {
				t.Fatalf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}
