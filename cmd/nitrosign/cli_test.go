package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

// buildCLI builds nitrosign and nitrosign-enclave side by side, as `make
// build` does, so `nitrosign dev` finds the enclave next to itself.
func buildCLI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "nitrosign"), ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	if err := devstack.BuildEnclave(t.Context(), filepath.Join(dir, devstack.EnclaveBinaryName)); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "nitrosign")
}

var (
	pcr0Line = regexp.MustCompile(`PCR0\s+([0-9a-f]{96})`)
	apiLine  = regexp.MustCompile(`API\s+(http://\S+)`)
	pidLine  = regexp.MustCompile(`enclave\s+pid (\d+)`)
)

// TestDevSignAndInterrupt runs `nitrosign dev` as a process, signs with
// `nitrosign sign` against it, then sends SIGINT and checks that everything
// stops within seconds and no process is left.
func TestDevSignAndInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the dev-stack process test in -short mode")
	}
	bin := buildCLI(t)
	dataDir := t.TempDir()
	dev := exec.Command(bin, "dev", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--log-format", "json")
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	dev.Stderr = &stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	defer dev.Process.Kill()

	// Read the banner until the pid line and the URL are known.
	var url, pcr0 string
	pid := 0
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for url == "" || pid == 0 || pcr0 == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("nitrosign dev ended its output early; stderr:\n%s", stderr.String())
			}
			if m := apiLine.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
			if m := pidLine.FindStringSubmatch(l); m != nil {
				pid, _ = strconv.Atoi(m[1])
			}
			if m := pcr0Line.FindStringSubmatch(l); m != nil {
				pcr0 = m[1]
			}
		case <-deadline:
			t.Fatalf("no banner within 60 s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()

	// A second dev stack on the data directory is refused, naming this
	// one (Linux: where the lock is taken).
	if runtime.GOOS == "linux" {
		b, err := exec.Command(bin, "dev", "--data-dir", dataDir, "--listen", "127.0.0.1:0").CombinedOutput()
		want := fmt.Sprintf("is in use by nitrosign dev (pid %d on ", dev.Process.Pid)
		if err == nil || !strings.Contains(string(b), want) {
			t.Fatalf("a second nitrosign dev on %s: %v, %s; want a refusal saying %q", dataDir, err, b, want)
		}
	}

	// nitrosign sign, in process, stamped with DIR/client.pem.
	var out, errOut bytes.Buffer
	code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir,
		"--to", devstack.ExampleDestinationB, "--value", "0.25", "--chain-id", "1"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("nitrosign sign exited %d: %s", code, errOut.String())
	}
	var resp api.SignResponse
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		t.Fatalf("sign output is not a sign answer: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(resp.SignedTransaction, "0x02") || len(resp.Signature) != 2+130 {
		t.Fatalf("sign answer %+v", resp)
	}

	// A refusal exits non-zero and says which rule refused, in one line.
	out.Reset()
	errOut.Reset()
	code = mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir,
		"--to", devstack.ExampleDestinationB, "--value", "1.5"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "rule max_per_transaction") || strings.Count(errOut.String(), "\n") != 1 {
		t.Fatalf("over-limit sign: exit %d, stderr %q", code, errOut.String())
	}

	// Messages: a personal message, and typed data from a file.
	out.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--message", "it's me"}, &out, &errOut); code != 0 {
		t.Fatalf("--message exited %d: %s", code, errOut.String())
	}
	resp = api.SignResponse{}
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.Digest == "" || resp.SignedTransaction != "" {
		t.Fatalf("--message answer %s (%v)", out.String(), err)
	}
	// The example the README points at.
	mailFile := filepath.Join("..", "..", "docs", "examples", "mail.json")
	out.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--typed-data", mailFile}, &out, &errOut); code != 0 {
		t.Fatalf("--typed-data exited %d: %s", code, errOut.String())
	}
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.Digest != "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2" {
		t.Fatalf("--typed-data answer %s (%v), want the Mail digest", out.String(), err)
	}

	// --curl prints a command carrying a stamp and the body; a quote in
	// the payload survives the shell.
	out.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--message", "don't", "--curl"}, &out, io.Discard); code != 0 {
		t.Fatalf("--message --curl exited %d", code)
	}
	if _, err := exec.LookPath("curl"); err == nil {
		b, err := exec.Command("bash", "-c", out.String()).Output()
		if err != nil || !bytes.Contains(b, []byte(`"digest"`)) {
			t.Fatalf("running the printed curl command: %v: %s", err, b)
		}
	}
	out.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--to", devstack.ExampleDestinationA, "--value", "0.1", "--curl"}, &out, io.Discard); code != 0 {
		t.Fatalf("--curl exited %d", code)
	}
	if c := out.String(); !strings.HasPrefix(c, "curl ") || !strings.Contains(c, "X-Nitrosign-Stamp: ") || !strings.Contains(c, `"request_id"`) {
		t.Fatalf("--curl printed %q", c)
	}
	curl := exec.Command("bash", "-c", out.String())
	if _, err := exec.LookPath("curl"); err == nil {
		b, err := curl.Output()
		if err != nil || !bytes.Contains(b, []byte(`"signed_transaction"`)) {
			t.Fatalf("running the printed curl command: %v: %s", err, b)
		}
		// It runs once: the enclave refuses it again as a replay, and
		// curl says so with its exit status and the refusal.
		b, err = exec.Command("bash", "-c", out.String()).Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 22 || !bytes.Contains(b, []byte(`"replayed_request"`)) {
			t.Fatalf("the printed curl command run twice: %v: %s", err, b)
		}
	}

	// attest fetch | verify against the simulated NSM's root and nonce.
	docFile := filepath.Join(t.TempDir(), "doc.b64")
	if code := mainWithArgs([]string{"attest", "fetch", "--host", url, "--nonce", "c0ffee", "--out", docFile}, io.Discard, &errOut); code != 0 {
		t.Fatalf("attest fetch exited %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := mainWithArgs([]string{"attest", "verify", "--doc", docFile, "--root", filepath.Join(dataDir, devstack.NSMRootFile), "--nonce", "c0ffee"}, &out, &errOut); code != 0 {
		t.Fatalf("attest verify exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "nitrosign-attestation-v1") || !strings.Contains(out.String(), "keys       1") {
		t.Errorf("report lacks the user data:\n%s", out.String())
	}
	// The audit log verifies against the attested key and head.
	auditKey := regexp.MustCompile(`audit key  ([0-9a-f]{64})`).FindStringSubmatch(out.String())
	if auditKey == nil {
		t.Fatalf("no audit key in the report:\n%s", out.String())
	}
	logs, _ := filepath.Glob(filepath.Join(dataDir, "audit-*.log"))
	if len(logs) != 1 {
		t.Fatalf("audit logs %v", logs)
	}
	out.Reset()
	if code := mainWithArgs([]string{"audit", "verify", "--log", logs[0], "--audit-key", auditKey[1], "--all-signatures"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "intact") {
		t.Fatalf("audit verify: exit %d, %s %s", code, out.String(), errOut.String())
	}
	logBytes, _ := os.ReadFile(logs[0])
	tampered := filepath.Join(t.TempDir(), "tampered.log")
	os.WriteFile(tampered, bytes.Replace(logBytes, []byte(`"decision":"refused"`), []byte(`"decision":"signed"`), 1), 0o600)
	errOut.Reset()
	if code := mainWithArgs([]string{"audit", "verify", "--log", tampered, "--audit-key", auditKey[1]}, io.Discard, &errOut); code != 1 || strings.Count(errOut.String(), "\n") != 1 {
		t.Fatalf("a tampered log: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := mainWithArgs([]string{"attest", "verify", "--doc", docFile}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "root") {
		t.Errorf("a simulated document against the AWS root: exit %d, %q", code, errOut.String())
	}

	// sign --verify-enclave: the attested image, then the answer.
	root := filepath.Join(dataDir, devstack.NSMRootFile)
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--to", devstack.ExampleDestinationA, "--value", "0.1",
		"--verify-enclave", "--root", root, "--pcr", "0=" + pcr0}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "enclave verified") {
		t.Fatalf("sign --verify-enclave: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--to", devstack.ExampleDestinationA, "--value", "0.1",
		"--verify-enclave", "--root", root, "--pcr", "0=" + strings.Repeat("ab", 48)}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "pcrs") {
		t.Fatalf("sign --verify-enclave with another PCR0: exit %d, %s", code, errOut.String())
	}

	// Admin commands: one admin writes, both dev admins sign, then submit.
	env := filepath.Join(t.TempDir(), "cmd.json")
	genesis := filepath.Join(dataDir, devstack.GenesisFile)
	if code := mainWithArgs([]string{"admin", "command", "--kind", "key_create", "--key-id", "hot-7", "--path", "m/44'/60'/0'/0/7",
		"--genesis", genesis, "--out", env}, io.Discard, &errOut); code != 0 {
		t.Fatalf("admin command exited %d: %s", code, errOut.String())
	}
	submit := []string{"admin", "submit", "--in", env, "--host", url}
	errOut.Reset()
	if code := mainWithArgs(submit, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "quorum") {
		t.Fatalf("an unsigned command: exit %d, %s", code, errOut.String())
	}
	for i := 1; i <= devstack.AdminCount; i++ {
		out.Reset()
		if code := mainWithArgs([]string{"admin", "sign", "--in", env, "--key", filepath.Join(dataDir, devstack.AdminKeyFile(i)), "--name", devstack.AdminName(i)}, &out, &errOut); code != 0 {
			t.Fatalf("admin sign %d exited %d: %s", i, code, errOut.String())
		}
		if !strings.Contains(out.String(), "key_create") || !strings.Contains(out.String(), "hot-7") {
			t.Errorf("admin sign does not show the command:\n%s", out.String())
		}
	}
	out.Reset()
	if code := mainWithArgs(submit, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"key_id": "hot-7"`) {
		t.Fatalf("admin submit: exit %d, %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := mainWithArgs([]string{"keys", "--host", url}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "hot-7") {
		t.Fatalf("keys after key_create: exit %d, %s", code, out.String())
	}

	// Policy governance: remove destination A (a tightening: at once),
	// then add one (a loosening: waits for the time lock).
	out.Reset()
	if code := mainWithArgs([]string{"policy", "show", "--host", url, "--document"}, &out, &errOut); code != 0 {
		t.Fatalf("policy show: exit %d, %s", code, errOut.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("policy show --document: %v\n%s", err, out.String())
	}
	editDests := func(version int, dests ...string) string {
		doc["version"] = version
		k := doc["keys"].([]any)[0].(map[string]any)
		nt := k["native_transfers"].(map[string]any)
		var ds []any
		for _, d := range dests {
			ds = append(ds, map[string]any{"address": d, "label": "d"})
		}
		nt["destinations"] = ds
		// The rolling limit names B: keep it valid.
		b, _ := json.Marshal(doc)
		f := filepath.Join(t.TempDir(), "policy.json")
		os.WriteFile(f, b, 0o600)
		return f
	}
	signAll := func(polFile string) string {
		envFile := filepath.Join(t.TempDir(), "policy-env.json")
		for i := 1; i <= devstack.AdminCount; i++ {
			out.Reset()
			args := []string{"policy", "sign", "--policy", polFile, "--genesis", genesis, "--key", filepath.Join(dataDir, devstack.AdminKeyFile(i)),
				"--name", devstack.AdminName(i), "--envelope", envFile, "--host", url}
			if code := mainWithArgs(args, &out, &errOut); code != 0 {
				t.Fatalf("policy sign %d: exit %d, %s", i, code, errOut.String())
			}
		}
		return envFile
	}
	tighten := editDests(2, devstack.ExampleDestinationB)
	env2 := signAll(tighten)
	if !strings.Contains(out.String(), "tightens") || !strings.Contains(out.String(), "at once") {
		t.Errorf("policy sign does not show the change:\n%s", out.String())
	}
	out.Reset()
	if code := mainWithArgs([]string{"policy", "submit", "--in", env2, "--host", url}, &out, &errOut); code != 0 {
		t.Fatalf("policy submit: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--data-dir", dataDir, "--to", devstack.ExampleDestinationA, "--value", "0.1"}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "rule destinations") {
		t.Fatalf("a removed destination: exit %d, %s", code, errOut.String())
	}
	loosen := editDests(3, devstack.ExampleDestinationB, "0x3333333333333333333333333333333333333333")
	env3 := signAll(loosen)
	if !strings.Contains(out.String(), "loosens") || !strings.Contains(out.String(), "time lock") {
		t.Errorf("policy sign does not show the loosening:\n%s", out.String())
	}
	out.Reset()
	if code := mainWithArgs([]string{"policy", "submit", "--in", env3, "--host", url}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "effective_at_ms") {
		t.Fatalf("policy submit (loosening): exit %d, %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := mainWithArgs([]string{"policy", "show", "--host", url}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "version 2") || !strings.Contains(out.String(), "pending    version 3") {
		t.Fatalf("policy show: exit %d, %s", code, out.String())
	}

	// SIGINT stops everything within seconds.
	start := time.Now()
	if err := dev.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("nitrosign dev exited with %v after SIGINT; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("nitrosign dev still running 10 s after SIGINT")
	}
	t.Logf("stopped %v after SIGINT", time.Since(start).Round(time.Millisecond))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("enclave process %d left behind (kill 0: %v)", pid, err)
	}
	// --log-format json: standard error is JSON lines only, each marked
	// with the process that logged it.
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
		var rec struct {
			Time, Level, Msg, Process string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Time == "" || rec.Level == "" || rec.Msg == "" {
			t.Fatalf("stderr line %q is not a JSON log line (%v); stderr:\n%s", line, err, stderr.String())
		}
		seen[rec.Process+": "+rec.Msg] = true
	}
	for _, want := range []string{"dev: starting the simulated stack (vsock simulator, NSM, KMS, enclave process, host)", "enclave: listening", "host: enclave unsealed", "dev: stopped"} {
		if !seen[want] {
			t.Errorf("no %q line on stderr; seen %v", want, seen)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, 2, "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad flag", []string{"sign", "--bogus"}, 2, "bogus"},
		{"stray argument", []string{"sign", "extra"}, 2, "unexpected arguments"},
		{"bad value", []string{"sign", "--to", "0x1111111111111111111111111111111111111111", "--value", "1.2.3"}, 2, "--value"},
		{"too many decimals", []string{"sign", "--to", "0x1111111111111111111111111111111111111111", "--value", "0.0000000000000000001"}, 2, "decimals"},
		{"bad address", []string{"sign", "--to", "0x11"}, 2, "--to"},
		{"two payloads", []string{"sign", "--message", "a", "--unsigned", "0x02c0"}, 2, "at most one"},
		{"no client key", []string{"sign", "--data-dir", "/nonexistent", "--to", "0x1111111111111111111111111111111111111111"}, 1, "client key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			code := mainWithArgs(tc.args, io.Discard, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errOut.String(), tc.code, tc.msg)
			}
		})
	}
}

func TestAttestVerifyRealDocuments(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "aws", "nitro")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the real AWS documents are missing (%v): testdata/aws/nitro", err)
	}
	doc := filepath.Join(dir, "attestation_production.b64")
	var out, errOut bytes.Buffer
	// At its own time (certificates valid 2024-09-07 14:37:36..17:37:39).
	if code := mainWithArgs([]string{"attest", "verify", "--doc", doc, "--time", "2024-09-07T15:00:00Z"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "i-0a22e5c5f24d22174-enc0191cceb4289903f") || !strings.Contains(out.String(), "checks") {
		t.Errorf("report lacks the module id or the checks:\n%s", out.String())
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"expired now", []string{"--doc", doc}, "validity"},
		{"wrong PCR0", []string{"--doc", doc, "--time", "2024-09-07T15:00:00Z", "--pcr", "0=" + strings.Repeat("00", 48)}, "pcrs"},
		{"wrong nonce", []string{"--doc", doc, "--time", "2024-09-07T15:00:00Z", "--nonce", "abcd"}, "nonce"},
		{"debug refused", []string{"--doc", filepath.Join(dir, "attestation_debug.b64"), "--time", "2024-09-07T15:00:00Z"}, "debug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			code := mainWithArgs(append([]string{"attest", "verify"}, tc.args...), io.Discard, &errOut)
			if code != 1 || !strings.Contains(errOut.String(), tc.want) || strings.Count(errOut.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want 1 and one line naming %q", code, errOut.String(), tc.want)
			}
		})
	}
	if code := mainWithArgs([]string{"attest", "verify", "--doc", filepath.Join(dir, "attestation_debug.b64"), "--time", "2024-09-07T15:00:00Z", "--allow-debug", "--json"}, &out, io.Discard); code != 0 {
		t.Fatalf("debug with --allow-debug: exit %d", code)
	}
}

func TestKMSPolicy(t *testing.T) {
	var out, errOut bytes.Buffer
	pcr0 := strings.Repeat("ab", 48)
	if code := mainWithArgs([]string{"kms-policy", "--pcr0", pcr0, "--account", "123456789012", "--role", "arn:aws:iam::123456789012:role/parent"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var p map[string]any
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || !strings.Contains(out.String(), pcr0) || !strings.Contains(out.String(), `"Deny"`) {
		t.Fatalf("policy %s (%v)", out.String(), err)
	}
	errOut.Reset()
	if code := mainWithArgs([]string{"kms-policy", "--pcr0", strings.Repeat("00", 48)}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "debug-mode") {
		t.Fatalf("all-zero PCR0: exit %d, %q", code, errOut.String())
	}
}

func TestKMSPolicyLocked(t *testing.T) {
	pcr0 := strings.Repeat("ab", 48)
	base := []string{"kms-policy", "--pcr0", pcr0, "--account", "123456789012", "--role", "arn:aws:iam::123456789012:role/parent", "--locked"}
	type stmt struct {
		Sid       string
		Effect    string
		Principal map[string]any
		Action    []string
		NotAction []string
		Condition map[string]map[string]any
	}
	run := func(args ...string) (map[string]stmt, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := mainWithArgs(append(append([]string{}, base...), args...), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		var p struct{ Statement []stmt }
		if err := json.Unmarshal(out.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		m := map[string]stmt{}
		for _, s := range p.Statement {
			m[s.Sid] = s
		}
		return m, errOut.String()
	}

	// Nobody may administer: every principal is denied everything but
	// the attested use, key-import Encrypt and reading, and the CLI warns.
	s, warn := run()
	if !strings.Contains(warn, "bypass-policy-lockout-safety-check") {
		t.Errorf("no lockout warning: %q", warn)
	}
	d, ok := s["DenyAdministration"]
	if !ok || d.Effect != "Deny" || d.Principal["AWS"] != "*" || d.Condition != nil || len(d.Action) != 0 ||
		strings.Join(d.NotAction, ",") != "kms:Decrypt,kms:GenerateDataKey,kms:Encrypt,kms:Describe*,kms:Get*,kms:List*" {
		t.Errorf("DenyAdministration %+v", d)
	}
	if s["EnclaveUseWithAttestation"].Condition["StringEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] != pcr0 ||
		s["DenyUseByOtherImages"].Condition["StringNotEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] != pcr0 ||
		s["DenyUseWithoutAttestation"].Condition["Null"]["kms:RecipientAttestation:ImageSha384"] != "true" {
		t.Errorf("the attestation conditions changed: %+v", s)
	}
	for sid, st := range s {
		for _, a := range st.Action {
			if st.Effect == "Allow" && (a == "kms:Put*" || a == "kms:PutKeyPolicy" || a == "kms:*") {
				t.Errorf("%s allows %s", sid, a)
			}
		}
	}
	if _, ok := s["KeyAdministrationByAdminOnly"]; ok {
		t.Error("an admin statement without --admin-principal")
	}

	// With an admin principal, only it is exempt, and only it may put the
	// policy.
	const admin = "arn:aws:iam::210987654321:role/key-admin"
	s, warn = run("--admin-principal", admin)
	if warn != "" {
		t.Errorf("warning with an admin: %q", warn)
	}
	if a := s["KeyAdministrationByAdminOnly"]; a.Effect != "Allow" || a.Principal["AWS"] != admin || !strings.Contains(strings.Join(a.Action, ","), "kms:Put*") {
		t.Errorf("admin statement %+v", a)
	}
	if d := s["DenyAdministrationExceptAdmin"]; d.Effect != "Deny" || d.Condition["ArnNotEquals"]["aws:PrincipalArn"] != admin {
		t.Errorf("deny statement %+v", d)
	}
	if d := s["DenyAttestationBypass"]; d.Effect != "Deny" || d.Principal["AWS"] != "*" || !strings.Contains(strings.Join(d.Action, ","), "kms:CreateGrant") || !strings.Contains(strings.Join(d.Action, ","), "kms:ReEncrypt*") {
		t.Errorf("bypass statement %+v", d)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--admin-principal", "arn:aws:iam::123456789012:role/parent"}, "instance role"},
		{[]string{"--admin-principal", "arn:aws:sts::123456789012:assumed-role/a/b"}, "want the ARN"},
	} {
		var errOut bytes.Buffer
		if code := mainWithArgs(append(append([]string{}, base...), tc.args...), io.Discard, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errOut.String())
		}
	}
	var errOut bytes.Buffer
	if code := mainWithArgs([]string{"kms-policy", "--pcr0", pcr0, "--admin-principal", admin}, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), "needs --locked") {
		t.Errorf("--admin-principal without --locked: exit %d, %q", code, errOut.String())
	}
}
