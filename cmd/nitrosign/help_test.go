package main

import (
	"bytes"
	"io"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/buildinfo"
)

// TestHelp asks every command, and every subcommand of the commands that
// have them, for -h and --help: each prints its usage on stderr, nothing on
// stdout, does nothing else, and exits 0. It walks the commands table, so a
// new command (or a subcommand in a command's subs) is tested without
// being listed here.
func TestHelp(t *testing.T) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var cases [][]string
	cases = append(cases, nil) // nitrosign itself
	for _, n := range names {
		cases = append(cases, []string{n})
		for sub := range commands[n].subs {
			cases = append(cases, []string{n, sub})
		}
	}
	for _, c := range cases {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, c...), h)
			var out, errOut bytes.Buffer
			code := mainWithArgs(args, &out, &errOut)
			want := strings.Join(append([]string{"nitrosign"}, c...), " ")
			if code != 0 || out.Len() != 0 || !strings.Contains(strings.ToLower(errOut.String()), "usage") || !strings.Contains(errOut.String(), want) {
				t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit 0 and a usage naming %q on stderr only", args, code, out.String(), errOut.String(), want)
			}
		}
	}
	if len(cases) < 25 {
		t.Fatalf("only %d commands and subcommands: the table lost some", len(cases))
	}
	// A command with subcommands, given none, is a bad command line.
	for _, n := range names {
		if commands[n].subs == nil {
			continue
		}
		if code := mainWithArgs([]string{n}, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q without a subcommand: exit %d, want 2", n, code)
		}
		if code := mainWithArgs([]string{n, "frobnicate"}, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q with an unknown subcommand: exit %d, want 2", n, code)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version"} {
		var out, errOut bytes.Buffer
		if code := mainWithArgs([]string{arg}, &out, &errOut); code != 0 || errOut.Len() != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, errOut.String())
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) < 3 || lines[0] != "nitrosign "+buildinfo.DefaultVersion || !strings.HasPrefix(lines[1], "commit  ") || len(lines[1]) == len("commit  ") ||
			lines[len(lines)-1] != "go      "+runtime.Version() {
			t.Fatalf("%s printed:\n%s", arg, out.String())
		}
	}
}
