// Package deploy_test checks the production deployment files in deploy/
// against the code they run: every command line of the systemd units is
// parsed by the program it names (nitrosign-host with the shared
// environment file's values, and the scripts with their own option
// parsers), every variable the units use is set in nitrosign.env, the
// vsock-proxy allowlist names the endpoint the proxy unit forwards to on
// the port the enclave dials, and `systemd-analyze verify` accepts the
// units without a warning. docs/deployment.md installs these files, so a
// unit that drifts from the binaries fails here, not on an instance; and
// every nitrosign, nitrosign-host and script command that document shows
// is checked against the program's own usage.
package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/transport"
)

// units are the systemd units of deploy/.
var units = []string{"nitrosign-enclave.service", "nitrosign-host.service", "nitrosign-kms-proxy.service"}

// command is one Exec line of a unit.
type command struct {
	unit, key string
	argv      []string
}

// execLines returns the ExecStartPre=, ExecStart= and ExecStopPost= lines
// of a unit, split into words, with the "-" prefix (failure ignored) removed.
func execLines(t *testing.T, unit string) []command {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	var out []command
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || !slices.Contains([]string{"ExecStartPre", "ExecStart", "ExecStopPost"}, key) {
			continue
		}
		argv := strings.Fields(strings.TrimPrefix(val, "-"))
		out = append(out, command{unit: unit, key: key, argv: argv})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no Exec lines", unit)
	}
	return out
}

// envFile reads nitrosign.env: KEY=VALUE lines, # comments.
func envFile(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("nitrosign.env")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^NITROSIGN_[A-Z0-9_]+$`).MatchString(k) {
			t.Fatalf("nitrosign.env:%d: %q is not KEY=VALUE", i+1, line)
		}
		env[k] = v
	}
	return env
}

var (
	bracedVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)
	bareVar   = regexp.MustCompile(`^\$([A-Za-z0-9_]+)$`)
)

// expand substitutes the environment as systemd does: ${VAR} within a
// word, and a word that is $VAR alone split on white space.
func expand(t *testing.T, c command, env map[string]string) []string {
	t.Helper()
	var out []string
	for _, w := range c.argv {
		if m := bareVar.FindStringSubmatch(w); m != nil {
			v, ok := env[m[1]]
			if !ok {
				t.Errorf("%s %s: $%s is not set in nitrosign.env", c.unit, c.key, m[1])
			}
			out = append(out, strings.Fields(v)...)
			continue
		}
		out = append(out, bracedVar.ReplaceAllStringFunc(w, func(s string) string {
			name := bracedVar.FindStringSubmatch(s)[1]
			v, ok := env[name]
			if !ok {
				t.Errorf("%s %s: ${%s} is not set in nitrosign.env", c.unit, c.key, name)
			}
			return v
		}))
	}
	return out
}

// buildHost builds nitrosign-host into a temporary directory.
func buildHost(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nitrosign-host")
	cmd := exec.Command("go", "build", "-o", out, "github.com/nitrosign/nitrosign/cmd/nitrosign-host")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// nitroCLIFlags are the options of the nitro-cli subcommands the units
// use, from the Nitro Enclaves CLI reference (nitro-cli is not installed
// here, so its parser cannot be asked).
var nitroCLIFlags = map[string][]string{
	"run-enclave":       {"--enclave-name", "--eif-path", "--cpu-count", "--memory", "--enclave-cid", "--debug-mode", "--cpu-ids", "--config"},
	"terminate-enclave": {"--enclave-name", "--enclave-id", "--all"},
}

// TestUnitCommandLines checks every command line of the units with the
// parser of the program it runs.
func TestUnitCommandLines(t *testing.T) {
	env := envFile(t)
	host := buildHost(t)
	seen := map[string]bool{}
	for _, unit := range units {
		for _, c := range execLines(t, unit) {
			argv := expand(t, c, env)
			prog := filepath.Base(argv[0])
			seen[prog] = true
			name := fmt.Sprintf("%s/%s/%s", unit, c.key, prog)
			t.Run(name, func(t *testing.T) {
				switch prog {
				case "nitrosign-host":
					// -version is acted on after the whole command line
					// parsed: an unknown flag or a bad value exits 2.
					out, err := exec.Command(host, append(argv[1:], "-version")...).CombinedOutput()
					if err != nil {
						t.Fatalf("nitrosign-host %s -version: %v\n%s", strings.Join(argv[1:], " "), err, out)
					}
				case "run-enclave.sh", "watch-enclave.sh":
					// The scripts read options in order and stop at --help:
					// an unknown one before it dies.
					script := filepath.Join("..", "scripts", prog)
					out, err := exec.Command("bash", append([]string{script}, append(argv[1:], "--help")...)...).CombinedOutput()
					if err != nil {
						t.Fatalf("%s %s --help: %v\n%s", script, strings.Join(argv[1:], " "), err, out)
					}
				case "nitro-cli":
					known, ok := nitroCLIFlags[argv[1]]
					if !ok {
						t.Fatalf("nitro-cli %s: not a subcommand this test knows", argv[1])
					}
					for _, a := range argv[2:] {
						if strings.HasPrefix(a, "-") && !slices.Contains(known, a) {
							t.Errorf("nitro-cli %s: unknown option %s", argv[1], a)
						}
					}
				case "vsock-proxy":
					checkVsockProxy(t, argv)
				default:
					t.Fatalf("%s: no check for this program", prog)
				}
			})
		}
	}
	for _, want := range []string{"nitrosign-host", "run-enclave.sh", "watch-enclave.sh", "nitro-cli", "vsock-proxy"} {
		if !seen[want] {
			t.Errorf("no unit runs %s", want)
		}
	}
}

// checkVsockProxy checks `vsock-proxy PORT HOST 443 --config FILE`: the
// port is the genesis's default kms.proxy_port, the host is the only
// entry of deploy/vsock-proxy.yaml, and the config is where the docs
// install that file.
func checkVsockProxy(t *testing.T, argv []string) {
	t.Helper()
	if len(argv) != 6 || argv[4] != "--config" {
		t.Fatalf("vsock-proxy %q: want PORT HOST 443 --config FILE", argv[1:])
	}
	if port, err := strconv.ParseUint(argv[1], 10, 32); err != nil || uint32(port) != genesis.DefaultKMSProxyPort {
		t.Errorf("vsock-proxy listens on %s; the enclave dials kms.proxy_port %d", argv[1], genesis.DefaultKMSProxyPort)
	}
	if argv[3] != "443" || argv[5] != "/etc/nitrosign/vsock-proxy.yaml" {
		t.Errorf("vsock-proxy %q: want port 443 and --config /etc/nitrosign/vsock-proxy.yaml", argv[1:])
	}
	b, err := os.ReadFile("vsock-proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	entries := regexp.MustCompile(`(?m)^- \{address: (\S+), port: (\d+)\}$`).FindAllStringSubmatch(string(b), -1)
	if len(entries) != 1 || entries[0][1] != argv[2] || entries[0][2] != "443" {
		t.Errorf("vsock-proxy.yaml allows %q; want exactly %s:443", entries, argv[2])
	}
}

// TestUnitsAgree checks what the units and the code must agree on.
func TestUnitsAgree(t *testing.T) {
	env := envFile(t)
	var hostArgs []string
	for _, c := range execLines(t, "nitrosign-host.service") {
		if filepath.Base(c.argv[0]) == "nitrosign-host" {
			hostArgs = expand(t, c, env)
		}
	}
	flagValue := func(name string) string {
		i := slices.Index(hostArgs, name)
		if i < 0 || i+1 >= len(hostArgs) {
			t.Fatalf("nitrosign-host.service: no %s", name)
		}
		return hostArgs[i+1]
	}
	if got := flagValue("-enclave-port"); got != strconv.FormatUint(uint64(transport.DefaultEnclavePort), 10) {
		t.Errorf("host -enclave-port %s; the enclave listens on %d", got, transport.DefaultEnclavePort)
	}
	if got := flagValue("-data-dir"); got != "/var/lib/nitrosign" {
		t.Errorf("host -data-dir %s; StateDirectory=nitrosign is /var/lib/nitrosign", got)
	}
	if got := flagValue("-enclave-cid"); got != env["NITROSIGN_ENCLAVE_CID"] {
		t.Errorf("host -enclave-cid %s, enclave unit %s", got, env["NITROSIGN_ENCLAVE_CID"])
	}
	if got := flagValue("-credentials"); got != "imds" {
		t.Errorf("host -credentials %s; production pushes the instance role's (imds)", got)
	}
}

// TestSystemdVerify runs `systemd-analyze verify` on the units, with the
// programs they name replaced by stubs (they are not installed here) and a
// stub nitro-enclaves-allocator.service; any output (an unknown key, a
// bad value) fails.
func TestSystemdVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install systemd to verify the units")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, unit := range units {
		for _, c := range execLines(t, unit) {
			paths[c.argv[0]] = true
		}
	}
	var args []string
	for _, unit := range units {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for p := range paths {
			stub := filepath.Join(bin, filepath.Base(p))
			if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			s = strings.ReplaceAll(s, p+" ", stub+" ")
		}
		out := filepath.Join(dir, unit)
		if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, out)
	}
	stubUnit := "[Unit]\nDescription=stub of the Nitro Enclaves allocator\n[Service]\nType=oneshot\nExecStart=/bin/true\n"
	if err := os.WriteFile(filepath.Join(dir, "nitro-enclaves-allocator.service"), []byte(stubUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, append([]string{"verify"}, args...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDeploymentDocInstallsEveryFile checks that docs/deployment.md
// installs every file of deploy/ (except this test and the Grafana
// dashboards, which docs/api.md covers).
func TestDeploymentDocInstallsEveryFile(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.IsDir() || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		if !strings.Contains(string(doc), "deploy/"+f.Name()) {
			t.Errorf("docs/deployment.md does not mention deploy/%s", f.Name())
		}
	}
}

// docCommands returns the command lines of the sh code blocks of a
// Markdown file: continuation lines joined, comments dropped, split at
// ;, && and |, each split into words with a leading sudo removed.
func docCommands(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	inSh := false
	var pending string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(line, "```"):
			inSh = false
			continue
		case !inSh:
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		line = pending + strings.TrimSpace(line)
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		pending = ""
		for _, part := range regexp.MustCompile(`;|&&|\|`).Split(line, -1) {
			words := strings.Fields(part)
			if len(words) > 0 && words[0] == "sudo" {
				words = words[1:]
			}
			if len(words) > 0 {
				out = append(out, words)
			}
		}
	}
	return out
}

// usageFlags returns the flag names a program's usage lists, as
// "--name" or "-name" lines.
func usageFlags(usage []byte) map[string]bool {
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-h, )?(--?[a-z0-9-]+)`).FindAllSubmatch(usage, -1) {
		flags[strings.TrimLeft(string(m[1]), "-")] = true
	}
	return flags
}

// nestedCommands are the nitrosign commands that take a subcommand.
var nestedCommands = map[string]bool{"genesis": true, "attest": true, "audit": true, "policy": true, "admin": true, "approvals": true}

// TestDeploymentDocCommands checks every nitrosign, nitrosign-host and
// scripts/*.sh command line of docs/deployment.md against the program's
// own usage: the (sub)command exists and so does every flag it passes.
func TestDeploymentDocCommands(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"nitrosign", "nitrosign-host"} {
		b, err := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/nitrosign/nitrosign/cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, b)
		}
	}
	usage := map[string]map[string]bool{}
	usageOf := func(key string, argv ...string) map[string]bool {
		if u, ok := usage[key]; ok {
			return u
		}
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput() // -h exits 0 or 2
		u := usageFlags(out)
		if len(u) == 0 {
			t.Errorf("%s: no flags in its usage:\n%s", key, out)
		}
		usage[key] = u
		return u
	}
	checked := map[string]int{}
	for _, words := range docCommands(t, filepath.Join("..", "docs", "deployment.md")) {
		prog := filepath.Base(words[0])
		if words[0] == "$N" {
			prog = "nitrosign"
		}
		var flags map[string]bool
		var args []string
		key := prog
		switch {
		case prog == "nitrosign" && len(words) > 1:
			sub := words[1]
			args = words[2:]
			argv := []string{filepath.Join(dir, "nitrosign"), sub}
			if nestedCommands[sub] && len(words) > 2 {
				argv = append(argv, words[2])
				args = words[3:]
			}
			key = strings.Join(append([]string{"nitrosign"}, argv[1:]...), " ")
			flags = usageOf(key, append(argv, "-h")...)
		case prog == "nitrosign-host":
			args = words[1:]
			flags = usageOf(key, filepath.Join(dir, "nitrosign-host"), "-h")
		case strings.HasSuffix(prog, ".sh") && (strings.HasPrefix(words[0], "scripts/") || strings.HasPrefix(words[0], "/opt/nitrosign/")):
			args = words[1:]
			flags = usageOf(key, "bash", filepath.Join("..", "scripts", prog), "--help")
		default:
			continue
		}
		checked[key]++
		for _, a := range args {
			if !strings.HasPrefix(a, "-") || strings.ContainsAny(a, `'"$(`) {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !flags[name] {
				t.Errorf("docs/deployment.md: %s: no flag %s (in %q)", key, a, strings.Join(words, " "))
			}
		}
	}
	for _, want := range []string{"nitrosign genesis init", "nitrosign dev", "nitrosign kms-policy", "nitrosign attest verify", "nitrosign audit verify", "nitrosign policy sign", "build-eif.sh", "run-enclave.sh"} {
		if checked[want] == 0 {
			t.Errorf("docs/deployment.md has no %s command (or this test no longer finds it)", want)
		}
	}
}
