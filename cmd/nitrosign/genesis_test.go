package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/genesis/genesisedit"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	genesisTestARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// fixedEd25519 returns a fixed Ed25519 key for seed byte i: its public key
// in hex and its PKCS #8 PEM.
func fixedEd25519(t *testing.T, i byte) (string, []byte) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{i}, ed25519.SeedSize))
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(priv.Public().(ed25519.PublicKey)), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// run runs `nitrosign genesis ARGS... --file FILE` and returns the exit
// status and outputs.
func runGenesisCLI(file string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := mainWithArgs(append(append([]string{"genesis"}, args...), "--file", file), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestGenesisCLISession walks a production session with the commands:
// init, the edits, check's exit codes along the way, show (golden), hash,
// and refusals that leave the file unchanged.
func TestGenesisCLISession(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "genesis.json")
	step := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errOut := runGenesisCLI(file, args...)
		if code != wantCode {
			t.Fatalf("genesis %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, wantCode, out, errOut)
		}
		return out + errOut
	}
	refused := func(wantCode int, want string, args ...string) {
		t.Helper()
		before, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		msg := step(wantCode, args...)
		if !strings.Contains(msg, want) {
			t.Fatalf("genesis %q: %q, want %q", args, msg, want)
		}
		after, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("genesis %q changed the file", args)
		}
	}

	step(2, "init", "--region", "us-east-1") // no ARN: a bad command line
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("init without --kms-key-arn wrote a file: %v", err)
	}
	step(1, "init", "--kms-key-arn", "alias/seal", "--region", "us-east-1")
	step(0, "init", "--kms-key-arn", genesisTestARN, "--region", "us-east-1", "--chains", "1,11155111")
	refused(1, "refusing to overwrite", "init", "--kms-key-arn", genesisTestARN, "--region", "us-east-1")
	msg := step(1, "check")
	for _, want := range []string{"admins_missing", "clients_missing", "not ready for production"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("check of the skeleton: %q lacks %q", msg, want)
		}
	}

	clientHex, _ := fixedEd25519(t, 1)
	refused(1, `no rules for key "hot-9"`, "add-client", "--name", "wallet", "--public-key", clientHex, "--keys", "hot-9")
	refused(2, "--public-key or --public-key-file", "add-client", "--name", "wallet", "--keys", "hot-0")
	refused(1, "public key", "add-client", "--name", "wallet", "--public-key", "00", "--keys", "hot-0")
	refused(1, "public key", "add-client", "--name", "wallet", "--public-key", clientHex, "--scheme", "p256", "--keys", "hot-0")
	refused(2, "--scheme goes with --public-key", "add-client", "--name", "wallet", "--public-key-file", "x.pem", "--scheme", "p256", "--keys", "hot-0")
	step(0, "add-client", "--name", "wallet", "--public-key", clientHex, "--keys", "hot-0")
	for i, name := range []string{"alice", "bob", "carol"} {
		_, pemFile := fixedEd25519(t, byte(10+i))
		path := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(path, pemFile, 0o600); err != nil {
			t.Fatal(err)
		}
		out := step(0, "add-admin", "--name", name, "--public-key-file", path)
		if strings.Contains(out, string(pemFile[30:60])) {
			t.Fatal("add-admin printed the private key file")
		}
	}
	msg = step(4, "check")
	if !strings.Contains(msg, "admin_quorum") || !strings.Contains(msg, "--allow-warnings") {
		t.Fatalf("check with quorum 1: %q", msg)
	}
	step(0, "check", "--allow-warnings")
	refused(1, "quorum 4: want 1 to 3", "set-quorum", "--admins", "4")
	step(0, "set-quorum", "--admins", "2", "--threshold", "policy_change=3")
	step(0, "check")

	annHex, _ := fixedEd25519(t, 20)
	benHex, _ := fixedEd25519(t, 21)
	refused(1, "--above", "add-approver", "--name", "ann", "--public-key", annHex, "--keys", "hot-0")
	refused(1, "distinct keys", "add-approver", "--name", "ann", "--public-key", clientHex, "--keys", "hot-0", "--above", "1:native:1000000000000000000")
	step(0, "add-approver", "--name", "ann", "--public-key", annHex, "--keys", "hot-0", "--above", "1:native:1000000000000000000")
	step(0, "add-approver", "--name", "ben", "--public-key", benHex, "--keys", "hot-0")
	if msg := step(4, "check"); !strings.Contains(msg, "approval_quorum") {
		t.Fatalf("check with approvals quorum 1: %q", msg)
	}
	step(0, "set-quorum", "--approvals", "2")
	step(0, "set-time-lock", "--time-lock", "48h")
	refused(1, "governance.time_lock", "set-time-lock", "--time-lock", "1000h")
	step(0, "set-audit", "--max-unacknowledged", "8192")
	step(0, "set-limits", "--max-unacknowledged", "512")
	step(0, "add-key", "--key", "cold-0", "--path", "m/44'/60'/1'/0/0", "--chains", "1")
	if msg := step(4, "check"); !strings.Contains(msg, "unused_key (key cold-0)") {
		t.Fatalf("check with an unused key: %q", msg)
	}
	step(0, "remove-key", "--key", "cold-0")
	step(0, "check")

	// The policy document round-trips through show --policy and
	// set-policy; set-policy refuses an invalid one.
	polDoc := step(0, "show", "--policy")
	polFile := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(polFile, []byte(polDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(file)
	step(0, "set-policy", "--policy", polFile)
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("set-policy of the same document changed the file")
	}
	if err := os.WriteFile(polFile, []byte(strings.Replace(polDoc, `"version": 1,`, `"version": 0,`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(1, "version: must be at least 1", "set-policy", "--policy", polFile)

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := genesis.Parse(b); err != nil {
		t.Fatalf("the session's genesis does not parse: %v", err)
	}
	hash := step(0, "hash")
	if want := fmt.Sprintf("genesis sha256  %x", sha256.Sum256(b)); !strings.Contains(hash, want) {
		t.Fatalf("hash printed %q, want %q", hash, want)
	}
	show := step(0, "show")
	golden := filepath.Join("testdata", "genesis-show.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(show), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if show != string(want) {
		t.Fatalf("show:\n%s\nwant (%s; -update rewrites it):\n%s", show, golden, want)
	}

	// Removals, and the refusals that would break the configuration.
	refused(1, "thresholds: policy_change: 3, want 2 (the quorum) to 2", "remove-admin", "--name", "carol")
	refused(2, "--threshold and --clear-thresholds exclude", "set-quorum", "--admins", "2", "--threshold", "policy_change=3", "--clear-thresholds")
	step(0, "set-quorum", "--admins", "2", "--clear-thresholds")
	step(0, "remove-admin", "--name", "carol")
	refused(1, "quorum 2: want 1 to 1", "remove-admin", "--name", "bob")
	if msg := step(4, "check"); !strings.Contains(msg, "admin_no_spare") {
		t.Fatalf("check with quorum 2 of 2: %q", msg)
	}
	refused(1, `no client "nobody"`, "remove-client", "--name", "nobody")
	step(0, "remove-client", "--name", "wallet")
	if msg := step(1, "check"); !strings.Contains(msg, "clients_missing") {
		t.Fatalf("check without clients: %q", msg)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("a temporary file is left: %s", e.Name())
		}
	}
}

// TestGenesisCLIInvalidFile: a file the parser refuses is reported, by
// every command, and left alone by the edits.
func TestGenesisCLIInvalidFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "genesis.json")
	bad := []byte(`{"format": 1, "keys": [], "policy": {"version": 1, "clients": [], "keys": []}}`)
	if err := os.WriteFile(file, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	clientHex, _ := fixedEd25519(t, 1)
	for _, args := range [][]string{
		{"check"}, {"show"}, {"hash"}, {"set-time-lock", "--time-lock", "24h"},
		{"add-client", "--name", "x", "--public-key", clientHex, "--keys", "hot-0"},
	} {
		code, _, errOut := runGenesisCLI(file, args...)
		if code != 1 || !strings.Contains(errOut, "keys: want 1 to") {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, bad) {
		t.Fatal("an edit changed an invalid file")
	}
	if code, _, errOut := runGenesisCLI(filepath.Join(t.TempDir(), "missing.json"), "check"); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}

// TestWriteAtomic: the file is replaced whole, with mode 0644, and a
// failed write leaves the old file and no temporary file.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(path, []byte("new"), false); !errors.Is(err, os.ErrExist) {
		t.Fatalf("writeAtomic without overwrite over a file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("without overwrite, the file became %q", b)
	}
	if err := writeAtomic(path, []byte("new"), true); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" || st.Mode().Perm() != 0o644 {
		t.Fatalf("%q, mode %v", b, st.Mode())
	}
	// A directory in the way: the rename fails, nothing is left behind.
	blocked := filepath.Join(dir, "dir")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blocked, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(blocked, []byte("new"), true); err == nil {
		t.Fatal("replaced a non-empty directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
	// A symbolic link is followed: the target is replaced, the link kept.
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("g.json", link); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(link, []byte("newer"), true); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "newer" {
		t.Fatalf("target %q", b)
	}
}

// TestGenesisDocsSession runs the session of docs/genesis.md as written
// (with fresh keys in the files it names), checking each command's exit
// status ("# exit N" where the docs give one, else 0), and the refusal
// the docs show.
func TestGenesisDocsSession(t *testing.T) {
	md, err := os.ReadFile("../../docs/genesis.md")
	if err != nil {
		t.Fatal(err)
	}
	_, session, ok := strings.Cut(string(md), "## A session\n\n```sh\n")
	if !ok {
		t.Fatal("docs/genesis.md: no session")
	}
	session, rest, _ := strings.Cut(session, "```")
	dir := t.TempDir()
	t.Chdir(dir)
	for i, name := range []string{"wallet", "alice", "bob", "ann", "ben"} {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(40 + i)}, ed25519.SeedSize))
		der, err := x509.MarshalPKIXPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ran := 0
	for _, line := range strings.Split(strings.ReplaceAll(session, "\\\n", " "), "\n") {
		line, comment, _ := strings.Cut(line, "#")
		args := strings.Fields(line)
		if len(args) < 2 || args[0] != "nitrosign" || args[1] != "genesis" {
			continue
		}
		want := 0
		if n, ok := strings.CutPrefix(strings.TrimSpace(comment), "exit "); ok {
			want = int(n[0] - '0')
		}
		var out, errOut bytes.Buffer
		redirect := ""
		if i := slices.Index(args, ">"); i >= 0 {
			redirect, args = args[i+1], args[:i]
		}
		if code := mainWithArgs(args[1:], &out, &errOut); code != want {
			t.Fatalf("%s: exit %d, want %d\n%s%s", line, code, want, out.String(), errOut.String())
		}
		if redirect != "" {
			if err := os.WriteFile(redirect, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ran++
	}
	if ran < 15 {
		t.Fatalf("ran %d commands of the session", ran)
	}
	// The refusal shown after the session.
	_, refusal, _ := strings.Cut(rest, "(`nitrosign genesis set-quorum --admins 4` after the session above):\n\n```\n")
	refusal, _, _ = strings.Cut(refusal, "```")
	var errOut bytes.Buffer
	if code := mainWithArgs([]string{"genesis", "set-quorum", "--admins", "4"}, io.Discard, &errOut); code != 1 || errOut.String() != refusal {
		t.Fatalf("exit %d, stderr:\n%s\ndocs/genesis.md shows:\n%s", code, errOut.String(), refusal)
	}
}

// TestGenesisEditLostUpdate: an edit refuses to write when the file
// changed since it was read (another edit ran meanwhile).
func TestGenesisEditLostUpdate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "genesis.json")
	if code, _, errOut := runGenesisCLI(file, "init", "--kms-key-arn", genesisTestARN, "--region", "us-east-1"); code != 0 {
		t.Fatal(errOut)
	}
	other := []byte("edited meanwhile\n")
	err := editGenesis(file, io.Discard, func(d *genesisedit.Draft) (string, error) {
		if err := os.WriteFile(file, other, 0o644); err != nil {
			t.Fatal(err)
		}
		d.SetTimeLock(48 * time.Hour)
		return "time lock", nil
	})
	if err == nil || !strings.Contains(err.Error(), "changed while it was being edited") {
		t.Fatalf("editGenesis: %v", err)
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, other) {
		t.Fatalf("the other edit was overwritten: %q", b)
	}
}

func TestGenesisSetKMS(t *testing.T) {
	file := filepath.Join(t.TempDir(), "genesis.json")
	if code, _, errOut := runGenesisCLI(file, "init", "--kms-key-arn", genesisTestARN, "--region", "us-east-1"); code != 0 {
		t.Fatal(errOut)
	}
	other := strings.Replace(genesisTestARN, "1234abcd", "5678abcd", 1)
	tests := []struct {
		name string
		args []string
		code int
		want string // in the output
	}{
		{"too large a port", []string{"set-kms", "--kms-key-arn", genesisTestARN, "--region", "us-east-1", "--proxy-port", "4294967296"}, 2, "--proxy-port"},
		{"alias", []string{"set-kms", "--kms-key-arn", "alias/x", "--region", "us-east-1"}, 1, "aliases are refused"},
		{"region", []string{"set-kms", "--kms-key-arn", genesisTestARN, "--region", "Mars"}, 1, "kms.region"},
		{"same key twice", []string{"set-kms", "--kms-key-arn", genesisTestARN, "--region", "us-east-1", "--additional-key-arn", genesisTestARN}, 1, "listed twice"},
		{"set", []string{"set-kms", "--kms-key-arn", genesisTestARN, "--region", "us-east-1", "--additional-key-arn", other,
			"--endpoint", "https://kms-fips.us-east-1.amazonaws.com", "--proxy-port", "8001"}, 0, "kms key " + genesisTestARN},
		{"show", []string{"show"}, 0, "endpoint https://kms-fips.us-east-1.amazonaws.com via vsock-proxy on port 8001"},
		{"check", []string{"check"}, 1, "kms_endpoint"},
		{"check names the other key", []string{"check"}, 1, "kms_additional_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runGenesisCLI(file, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output %q, want %q", code, tt.code, out+errOut, tt.want)
			}
		})
	}
}
