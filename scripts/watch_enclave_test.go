package scripts_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNitroCLI writes a nitro-cli into a new directory that answers
// describe-enclaves with answers[i] at its i-th call (the last one from then
// on); an answer starting with "fail:" makes it exit 1 with the rest as
// its error. It returns the directory, to put first in PATH.
func fakeNitroCLI(t *testing.T, answers ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, a := range answers {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("answer.%d", i+1)), []byte(a), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/usr/bin/env bash
set -eu
[ "$1" = describe-enclaves ] || { echo "fake nitro-cli: unexpected $*" >&2; exit 2; }
d=$(dirname "$0")
n=$(( $(cat "$d/calls" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$d/calls"
f="$d/answer.$n"
[ -e "$f" ] || f="$d/answer.` + fmt.Sprint(len(answers)) + `"
a=$(cat "$f")
case "$a" in
fail:*) echo "${a#fail:}" >&2; exit 1 ;;
*) printf '%s\n' "$a" ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "nitro-cli"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// enclaveJSON is describe-enclaves' answer listing one enclave.
func enclaveJSON(name, state string) string {
	return fmt.Sprintf(`[
  {
    "EnclaveName": %q,
    "EnclaveID": "i-0123456789abcdef0-enc0123456789abcdef",
    "ProcessID": 4242,
    "EnclaveCID": 16,
    "NumberOfCPUs": 2,
    "CPUIDs": [1, 3],
    "MemoryMiB": 1024,
    "State": %q,
    "Flags": "NONE"
  }
]`, name, state)
}

// TestWatchEnclave runs scripts/watch-enclave.sh, the main process of the
// supervised enclave unit (docs/deployment.md), against a fake nitro-cli:
// it stays while the enclave runs and exits 1 once it does not, so that
// systemd starts it again; a failure to ask nitro-cli is tolerated a few
// times, not taken for a stopped enclave.
func TestWatchEnclave(t *testing.T) {
	bash := lookBash(t)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq not installed (apt-get install jq); the watcher needs it")
	}
	running, stopped := enclaveJSON("nitrosign", "RUNNING"), enclaveJSON("nitrosign", "TERMINATING")
	tests := []struct {
		name      string
		args      []string
		answers   []string
		wantExit  int
		wantCalls int // 0: not checked
		want      string
	}{
		{name: "help", args: []string{"--help"}, answers: []string{running}, want: "Usage: scripts/watch-enclave.sh"},
		{name: "runs, then stops", answers: []string{running, running, stopped}, wantExit: 1, wantCalls: 3, want: "enclave nitrosign is no longer running"},
		{name: "runs, then is gone", answers: []string{running, "[]"}, wantExit: 1, wantCalls: 2, want: "no longer running"},
		{name: "never started", answers: []string{"[]"}, wantExit: 1, wantCalls: 1, want: "was nitro-cli run-enclave --enclave-name nitrosign run first?"},
		{name: "another enclave runs", answers: []string{enclaveJSON("other", "RUNNING")}, wantExit: 1, wantCalls: 1, want: "enclave nitrosign is not running"},
		{name: "its own name", args: []string{"--name", "other"}, answers: []string{enclaveJSON("other", "RUNNING"), "[]"}, wantExit: 1, wantCalls: 2, want: "enclave other is no longer running"},
		{name: "a failure to ask is tolerated", args: []string{"--tolerate", "1"}, answers: []string{running, "fail:E39 socket error", running, stopped}, wantExit: 1, wantCalls: 4, want: "no longer running"},
		{name: "so is an answer that is not JSON", args: []string{"--tolerate", "1"}, answers: []string{running, "garbage", running, "[]"}, wantExit: 1, wantCalls: 4, want: "did not answer with a JSON array"},
		{name: "repeated failures give up", args: []string{"--tolerate", "1"}, answers: []string{running, "fail:E39 socket error", "fail:E39 socket error"}, wantExit: 1, wantCalls: 3, want: "could not ask nitro-cli about enclave nitrosign 2 times in a row"},
		{name: "bad interval", args: []string{"--interval", "0"}, answers: []string{running}, wantExit: 1, wantCalls: -1, want: "--interval must be at least 1"},
		{name: "unknown flag", args: []string{"--frobnicate"}, answers: []string{running}, wantExit: 1, wantCalls: -1, want: "unknown argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := fakeNitroCLI(t, tt.answers...)
			cmd := exec.Command(bash, append([]string{"watch-enclave.sh", "--interval", "1"}, tt.args...)...)
			cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			exit := 0
			if err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				exit = ee.ExitCode()
			}
			if exit != tt.wantExit || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, want %d, with %q:\n%s", exit, tt.wantExit, tt.want, out.String())
			}
			calls := 0
			if b, err := os.ReadFile(filepath.Join(dir, "calls")); err == nil {
				fmt.Sscan(string(b), &calls)
			}
			if tt.wantCalls == -1 && calls != 0 || tt.wantCalls > 0 && calls != tt.wantCalls {
				t.Errorf("nitro-cli describe-enclaves called %d times, want %d", calls, max(tt.wantCalls, 0))
			}
		})
	}
}
