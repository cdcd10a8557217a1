package runbook_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

const runbookPath = "../../docs/runbook.md"

func TestMain(m *testing.M) { devstacktest.Main(m) }

// block is a fenced shell block of the runbook.
type block struct {
	name   string // the runbook-test name; empty for a manual block
	manual string // the runbook-manual reason
	text   string
	line   int // of the opening fence
}

var (
	markerTest   = regexp.MustCompile(`^<!-- runbook-test: ([a-z0-9-]+) -->$`)
	markerManual = regexp.MustCompile(`^<!-- runbook-manual: (.+) -->$`)
)

// parseRunbook returns the fenced blocks of the runbook in b, each with its
// marker; it refuses a fenced block without a marker, a marker not followed
// by a fenced sh block, and a name used twice.
func parseRunbook(b []byte) ([]block, error) {
	var (
		blocks  []block
		pending *block
		cur     *block
		body    strings.Builder
		seen    = map[string]int{}
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	indent := ""
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		l := strings.TrimSpace(raw)
		if cur != nil {
			if l == "```" {
				cur.text = body.String()
				blocks = append(blocks, *cur)
				cur = nil
				body.Reset()
				continue
			}
			// A block in a list item is indented: its lines lose the
			// fence's indentation.
			body.WriteString(strings.TrimPrefix(raw, indent) + "\n")
			continue
		}
		if m := markerTest.FindStringSubmatch(l); m != nil {
			if prev, ok := seen[m[1]]; ok {
				return nil, fmt.Errorf("line %d: block name %q used again (first at line %d)", n, m[1], prev)
			}
			seen[m[1]] = n
			pending = &block{name: m[1]}
			continue
		}
		if m := markerManual.FindStringSubmatch(l); m != nil {
			pending = &block{manual: m[1]}
			continue
		}
		if strings.HasPrefix(l, "```") {
			if pending == nil {
				return nil, fmt.Errorf("line %d: a fenced block without a runbook-test or runbook-manual marker", n)
			}
			if l != "```sh" {
				return nil, fmt.Errorf("line %d: a marked block must be a ```sh block, not %q", n, l)
			}
			cur, pending = pending, nil
			cur.line = n
			indent = raw[:len(raw)-len(strings.TrimLeft(raw, " "))]
			continue
		}
		if pending != nil && strings.TrimSpace(l) != "" {
			return nil, fmt.Errorf("line %d: a marker not followed by a fenced block", n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil || pending != nil {
		return nil, errors.New("the runbook ends inside a block or after a marker")
	}
	return blocks, nil
}

func readRunbook(t *testing.T) []block {
	t.Helper()
	b, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseRunbook(b)
	if err != nil {
		t.Fatalf("docs/runbook.md: %v", err)
	}
	return blocks
}

var (
	cliOnce sync.Once
	cliDir  string
	cliErr  error
)

// cliBinDir builds the nitrosign CLI from this tree once and returns the
// directory holding it.
func cliBinDir(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nitrosign-runbook-bin-")
		if err != nil {
			cliErr = err
			return
		}
		cliDir = dir
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "nitrosign"), "github.com/nitrosign/nitrosign/cmd/nitrosign").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliDir
}

// session runs the runbook's blocks in one working directory, as an
// operator's terminal would: the variables a block sets are there for the
// next one.
type session struct {
	t      *testing.T
	blocks map[string]block
	work   string
	bin    string
	vars   map[string]string // the placeholders, set by the test
	saved  string            // the shell variables the blocks set
	ran    map[string]bool
}

// stackTest skips a test that runs the runbook's blocks against a dev
// stack in -short mode, or without bash.
func stackTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the runbook's procedures run a dev stack: skipped in -short mode")
	}
	for _, tool := range []string{"bash", "openssl", "awk", "sed", "grep", "cmp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the runbook's blocks use %s, which is not on PATH", tool)
		}
	}
}

func newSession(t *testing.T, vars map[string]string) *session {
	t.Helper()
	s := &session{t: t, blocks: map[string]block{}, work: t.TempDir(), bin: cliBinDir(t), vars: vars, ran: map[string]bool{}}
	for _, b := range readRunbook(t) {
		if b.name != "" {
			s.blocks[b.name] = b
		}
	}
	t.Cleanup(func() {
		if t.Failed() || t.Skipped() {
			return
		}
		for name, test := range exercised {
			if test == t.Name() && !s.ran[name] {
				t.Errorf("%s did not run block %s, which the exercised table says it runs", test, name)
			}
		}
	})
	return s
}

// safeShellName is a variable name the session keeps between blocks.
var safeShellName = regexp.MustCompile(`^declare -x ([A-Z][A-Z0-9_]*)=`)

// run runs the block name with the session's variables and over (which
// win for this block only, as for one admin on their own machine), and
// returns its standard output and error and its exit status.
func (s *session) run(name string, over map[string]string) (stdout, stderr string, code int) {
	s.t.Helper()
	b, ok := s.blocks[name]
	if !ok {
		s.t.Fatalf("docs/runbook.md has no block marked runbook-test: %s", name)
	}
	if _, ok := exercised[name]; !ok && name != inline {
		s.t.Fatalf("block %s is not in the exercised table of markers_test.go", name)
	}
	s.ran[name] = true
	varsFile := filepath.Join(s.work, ".runbook-vars")
	var script strings.Builder
	script.WriteString("set -euo pipefail\nset -a\n")
	script.WriteString(s.saved)
	for _, m := range []map[string]string{s.vars, over} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&script, "%s=%s\n", k, shellQuote(m[k]))
		}
	}
	fmt.Fprintf(&script, "trap 'declare -px > %s' EXIT\n", shellQuote(varsFile))
	script.WriteString(b.text)
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = s.work
	cmd.Env = append(os.Environ(), "PATH="+s.bin+string(os.PathListSeparator)+os.Getenv("PATH"), "LC_ALL=C")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("block %s: %v", name, err)
	}
	s.keep(varsFile, over)
	return o.String(), e.String(), code
}

// keep reads the variables the block left and keeps the ones it set (not
// the environment's, not the per-block overrides).
func (s *session) keep(varsFile string, over map[string]string) {
	b, err := os.ReadFile(varsFile)
	if err != nil {
		return
	}
	var kept strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		m := safeShellName.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if _, env := os.LookupEnv(m[1]); env || m[1] == "PATH" || m[1] == "LC_ALL" {
			continue
		}
		if _, o := over[m[1]]; o {
			continue
		}
		if _, v := s.vars[m[1]]; v {
			continue
		}
		kept.WriteString(strings.TrimPrefix(l, "declare -x ") + "\n")
	}
	s.saved = kept.String()
}

// mustRun runs the block and fails the test unless it exits 0.
func (s *session) mustRun(name string, over map[string]string) string {
	s.t.Helper()
	out, errOut, code := s.run(name, over)
	if code != 0 {
		s.t.Fatalf("block %s exited %d\nstdout:\n%s\nstderr:\n%s", name, code, out, errOut)
	}
	return out
}

// get returns a variable a block set.
func (s *session) get(name string) string {
	s.t.Helper()
	out, _, code := s.runText("printf %s \"${" + name + ":-}\"")
	if code != 0 {
		s.t.Fatalf("reading $%s", name)
	}
	return out
}

// runText runs text as a block of the session (for the test's own steps).
func (s *session) runText(text string) (string, string, int) {
	s.blocks[inline] = block{name: inline, text: text + "\n"}
	defer delete(s.blocks, inline)
	defer delete(s.ran, inline)
	return s.run(inline, nil)
}

// inline names the test's own steps that runText runs.
const inline = "\x00inline"

func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
