package client_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeSection is the heading of the README's section on using the Go
// client from another module, whose commands and program
// TestUsableFromAnotherModule runs.
const readmeSection = "## The Go client in your service"

// readmeRepoPath stands for the checkout of this repository in the
// README's commands.
const readmeRepoPath = "/path/to/nitrosign"

// fencedBlocks returns the bodies of the fenced code blocks of md whose
// info string is lang ("" for none), in order.
func fencedBlocks(md, lang string) []string {
	var out []string
	var block strings.Builder
	open, info := false, ""
	for line := range strings.Lines(md) {
		fence, isFence := strings.CutPrefix(strings.TrimRight(line, "\n"), "```")
		switch {
		case isFence && !open:
			open, info = true, fence
			block.Reset()
		case isFence && open:
			open = false
			if info == lang {
				out = append(out, block.String())
			}
		case open:
			block.WriteString(line)
		}
	}
	return out
}

// TestUsableFromAnotherModule checks that the Go client can be used from a
// module of one's own, as the README says: in a new module in a temporary
// directory, it runs the README's go mod commands (the replace pointing at
// this repository), builds the README's example program, which uses
// client.Client and client.NewStampingTransport, and checks that go.mod
// then holds the require and replace lines the README shows. Nothing is
// downloaded that this repository's build has not: the replace points at
// the local directory and the module's go.sum is seeded from the
// repository's.
//
// With a warm build cache (any earlier build or vet of the repository) it
// takes a few seconds; with a cold one, as long as compiling the client's
// dependencies takes.
func TestUsableFromAnotherModule(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; put Go 1.26's bin directory on PATH to run this test")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+readmeSection+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", readmeSection)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	shell, programs, mod := fencedBlocks(section, "sh"), fencedBlocks(section, "go"), fencedBlocks(section, "")
	if len(shell) != 1 || len(programs) != 1 || len(mod) != 1 {
		t.Fatalf("the README section has %d sh, %d go and %d plain blocks, want one of each", len(shell), len(programs), len(mod))
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := append(os.Environ(),
		"GOFLAGS=-mod=mod", // let go record the module's requirements
		"GOWORK=off",       // no go.work of the caller's applies
		"GOTOOLCHAIN=local",
	)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	run("mod", "init", "example.com/wallet")
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(programs[0]), 0o644); err != nil {
		t.Fatal(err)
	}

	// The README's commands, line continuations joined, with this
	// repository in place of /path/to/nitrosign; `cd your-service` is the
	// temporary directory.
	commands := strings.Split(strings.ReplaceAll(shell[0], "\\\n", " "), "\n")
	ran := 0
	for _, line := range commands {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || f[0] == "cd":
			continue
		case f[0] != "go":
			t.Fatalf("README command %q: the test runs only go commands", line)
		}
		for i := range f {
			f[i] = strings.ReplaceAll(f[i], readmeRepoPath, repo)
		}
		run(f[1:]...)
		ran++
	}
	if ran == 0 {
		t.Fatal("the README section has no go command")
	}
	run("build", "-o", filepath.Join(dir, "wallet"), ".")

	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range strings.Split(strings.TrimSpace(mod[0]), "\n") {
		want = strings.ReplaceAll(want, readmeRepoPath, repo)
		if !bytes.Contains(gomod, []byte(want+"\n")) {
			t.Errorf("go.mod lacks the README's line %q:\n%s", want, gomod)
		}
	}
}
