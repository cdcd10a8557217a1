// Package scripts_test checks the enclave build and run scripts and the
// Dockerfile they build from.
//
// The enclave's identity is PCR0, a hash over the image built from
// Dockerfile.enclave. These tests hold that file to the rules that keep PCR0
// reproducible: every base image pinned by digest, a static and reproducible Go
// build line, and a scratch final stage. Each rule is also tested against a
// deliberately broken copy of the real file, so a check that stops working
// fails here instead of passing quietly.
package scripts_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfilePath is Dockerfile.enclave relative to this package's directory,
// which is the working directory of go test.
var dockerfilePath = filepath.Join("..", "Dockerfile.enclave")

// wantScripts are the scripts that must exist; every scripts/*.sh is checked.
var wantScripts = []string{"build-eif.sh", "run-enclave.sh"}

func shellScripts(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("*.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range wantScripts {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("missing script %s: %v", name, err)
		}
	}
	return paths
}

func lookBash(t *testing.T) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found in PATH; install bash to check the scripts")
	}
	return bash
}

func TestShellSyntax(t *testing.T) {
	bash := lookBash(t)
	for _, path := range shellScripts(t) {
		t.Run(path, func(t *testing.T) {
			out, err := exec.Command(bash, "-n", path).CombinedOutput()
			if err != nil {
				t.Errorf("bash -n %s: %v\n%s", path, err, out)
			}
		})
	}
}

// TestShellSyntaxCatchesErrors proves the syntax check can fail.
func TestShellSyntaxCatchesErrors(t *testing.T) {
	bash := lookBash(t)
	broken := filepath.Join(t.TempDir(), "broken.sh")
	if err := os.WriteFile(broken, []byte("#!/usr/bin/env bash\nif true; then\n  echo unterminated\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", broken).CombinedOutput(); err == nil {
		t.Errorf("bash -n accepted a script with an unterminated if:\n%s", out)
	}
}

func TestShellCheck(t *testing.T) {
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not installed (apt-get install shellcheck); skipping lint")
	}
	for _, path := range shellScripts(t) {
		t.Run(path, func(t *testing.T) {
			out, err := exec.Command(shellcheck, path).CombinedOutput()
			if err != nil {
				t.Errorf("shellcheck %s: %v\n%s", path, err, out)
			}
		})
	}
}

// TestScriptsFailClosed runs the checks that the scripts make before they
// need docker, nitro-cli or Nitro hardware.
func TestScriptsFailClosed(t *testing.T) {
	bash := lookBash(t)
	tests := []struct {
		name       string
		args       []string
		wantExit   int
		wantOutput string
	}{
		{
			name:       "build help",
			args:       []string{"build-eif.sh", "--help"},
			wantExit:   0,
			wantOutput: "Usage: scripts/build-eif.sh",
		},
		{
			name:       "run help",
			args:       []string{"run-enclave.sh", "--help"},
			wantExit:   0,
			wantOutput: "Usage: scripts/run-enclave.sh",
		},
		{
			name:       "placeholder digest refused",
			args:       []string{"build-eif.sh", "--go-image", "golang:1.26.x-bookworm@sha256:<digest>"},
			wantExit:   1,
			wantOutput: "docker buildx imagetools inspect golang:1.26-bookworm",
		},
		{
			name:       "tag without digest refused",
			args:       []string{"build-eif.sh", "--go-image", "golang:1.26-bookworm"},
			wantExit:   1,
			wantOutput: "not pinned to a real digest",
		},
		{
			name:       "debug mode refused",
			args:       []string{"run-enclave.sh", "--debug-mode"},
			wantExit:   1,
			wantOutput: "--debug-mode refused",
		},
		{
			name:       "parent CID refused",
			args:       []string{"run-enclave.sh", "--enclave-cid", "3"},
			wantExit:   1,
			wantOutput: "--enclave-cid must be between 4",
		},
		{
			name:       "unknown flag",
			args:       []string{"build-eif.sh", "--frobnicate"},
			wantExit:   1,
			wantOutput: "unknown argument",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bash, tt.args...)
			var out bytes.Buffer
			cmd.Stdout = &out
			cmd.Stderr = &out
			err := cmd.Run()
			exit := 0
			if err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("run %v: %v", tt.args, err)
				}
				exit = ee.ExitCode()
			}
			if exit != tt.wantExit {
				t.Errorf("%v: exit %d, want %d\n%s", tt.args, exit, tt.wantExit, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOutput) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, tt.wantOutput, out.String())
			}
		})
	}
}

func TestDockerfileEnclave(t *testing.T) {
	src, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkDockerfile(string(src)) {
		t.Errorf("Dockerfile.enclave: %s", p)
	}
}

// TestCheckDockerfileRejects breaks copies of the real Dockerfile.enclave one
// rule at a time and expects each copy to be refused.
func TestCheckDockerfileRejects(t *testing.T) {
	raw, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}`).FindString(src)
	if digest == "" {
		t.Fatal("Dockerfile.enclave has no @sha256 digest to break")
	}
	const otherDigest = "@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name    string
		old     string
		new     string
		wantMsg string
	}{
		{"placeholder digest", digest, "@sha256:<digest>", "not pinned"},
		{"tag only", digest, "", "not pinned"},
		{"short digest", digest, digest[:len(digest)-1], "not pinned"},
		{"unpinned extra stage", "\nFROM scratch\n", "\nFROM alpine:3.20 AS tools\nRUN true\nFROM scratch\n", "alpine:3.20"},
		{"undefined ARG", "FROM ${GO_IMAGE}", "FROM ${NO_SUCH_ARG}", "NO_SUCH_ARG"},
		{"final stage not scratch", "\nFROM scratch\n", "\nFROM debian:bookworm-slim" + otherDigest + "\n", "final stage"},
		{"cgo on", "RUN CGO_ENABLED=0 go build", "RUN go build", "CGO_ENABLED=0"},
		{"no trimpath", "go build -trimpath", "go build", "-trimpath"},
		{"vcs stamped", " -buildvcs=false -ldflags", " -ldflags", "-buildvcs=false"},
		{"build id kept", "-buildid=\"", "-buildid=nitrosign\"", "-buildid="},
		{"no build line", "go build", "go vet", "no RUN line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("Dockerfile.enclave no longer contains %q; update this mutation", tt.old)
			}
			broken := strings.Replace(src, tt.old, tt.new, 1)
			problems := checkDockerfile(broken)
			if len(problems) == 0 {
				t.Fatalf("broken copy (%s) passed the checks", tt.name)
			}
			if !strings.Contains(strings.Join(problems, "\n"), tt.wantMsg) {
				t.Errorf("problems %q do not mention %q", problems, tt.wantMsg)
			}
		})
	}
}

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	line int    // 1-based line where it starts
	cmd  string // upper-cased keyword, e.g. "FROM"
	args string // the rest of the instruction
}

// parseDockerfile splits src into instructions. It ignores comments and blank
// lines and joins lines ending in a backslash; it does not handle heredocs or
// a changed escape character, which Dockerfile.enclave does not use.
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment lines inside a continuation are dropped
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		keyword, rest, _ := strings.Cut(text, " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(keyword), args: strings.TrimSpace(rest)})
	}
	return out
}

var (
	pinnedRef    = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	argRef       = regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$`)
	emptyBuildID = regexp.MustCompile(`-buildid=(?:["'\s]|$)`)
)

// checkDockerfile returns every rule the Dockerfile breaks, empty if none:
//   - every FROM names scratch, an earlier stage, an image pinned with
//     @sha256:<64 hex>, or a global ARG whose default is such an image;
//   - every RUN line with "go build" sets CGO_ENABLED=0 and passes -trimpath,
//     -buildvcs=false and an empty -buildid=, and there is at least one;
//   - the final stage is FROM scratch.
func checkDockerfile(src string) []string {
	var problems []string
	globalArgs := map[string]string{}
	stages := map[string]bool{}
	var lastFrom string
	sawFrom := false
	builds := 0

	for _, in := range parseDockerfile(src) {
		switch in.cmd {
		case "ARG":
			if sawFrom {
				continue // stage-local ARGs cannot feed FROM
			}
			name, value, _ := strings.Cut(in.args, "=")
			globalArgs[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(value), `"'`)
		case "FROM":
			sawFrom = true
			fields := strings.Fields(in.args)
			var image, stage string
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case image == "":
					image = fields[i]
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					stage = fields[i+1]
					i++
				}
			}
			resolved := image
			if m := argRef.FindStringSubmatch(image); m != nil {
				name := m[1] + m[2]
				def, ok := globalArgs[name]
				if !ok || def == "" {
					problems = append(problems, fmt.Sprintf("line %d: FROM %s: ARG %s has no default before the first FROM", in.line, image, name))
					resolved = ""
				} else {
					resolved = def
				}
			} else if strings.Contains(image, "$") {
				problems = append(problems, fmt.Sprintf("line %d: FROM %s: only a whole ${ARG} may stand for an image", in.line, image))
				resolved = ""
			}
			switch {
			case resolved == "":
			case resolved == "scratch", stages[resolved], pinnedRef.MatchString(resolved):
			default:
				problems = append(problems, fmt.Sprintf("line %d: FROM %s: image %q is not pinned by @sha256:<64 hex digest>", in.line, image, resolved))
			}
			lastFrom = resolved
			if stage != "" {
				stages[stage] = true
			}
		case "RUN":
			if !strings.Contains(in.args, "go build") {
				continue
			}
			builds++
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false"} {
				if !strings.Contains(in.args, want) {
					problems = append(problems, fmt.Sprintf("line %d: go build line lacks %s", in.line, want))
				}
			}
			if !emptyBuildID.MatchString(in.args) {
				problems = append(problems, fmt.Sprintf("line %d: go build line lacks an empty -buildid= in -ldflags", in.line))
			}
		}
	}
	if !sawFrom {
		problems = append(problems, "no FROM instruction")
	} else if lastFrom != "scratch" {
		problems = append(problems, fmt.Sprintf("final stage is FROM %q, want FROM scratch", lastFrom))
	}
	if builds == 0 {
		problems = append(problems, "no RUN line runs go build")
	}
	return problems
}
