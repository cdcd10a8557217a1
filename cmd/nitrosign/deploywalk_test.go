package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/stamp"
)

// The walk's production genesis: a KMS key in an account and region that
// are not the dev stack's, so that the test shows dev serving the key the
// genesis names.
const (
	walkKMSKeyARN  = "arn:aws:kms:eu-west-1:444455556666:key/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	walkKMSRegion  = "eu-west-1"
	walkTreasury   = "0x00000000000000000000000000000000000000aa"
	walkOther      = "0x00000000000000000000000000000000000000bb"
	walkMaxWei     = "1000000000000000000"
	walkApproveWei = "500000000000000000"
)

var policyHashLine = regexp.MustCompile(`(?m)^policy hash\s+([0-9a-f]{64})$`)

// TestDeploymentWalk walks the part of docs/deployment.md that runs without
// AWS: a production genesis written with `nitrosign genesis` (init, a
// client with a fresh Ed25519 key, three admins and a quorum, an approver,
// the key's rule, check), `nitrosign dev --genesis FILE` as a process (the
// vsock, NSM and KMS simulators with that genesis), a signature with the
// new client's key, refusals, `attest fetch` and `attest verify` pinned
// to the stack's PCR0-2 and NSM root, a client registered later by a
// policy change two admins sign (pending for the time lock), and `audit
// verify` of the data directory's log at the attested heads.
func TestDeploymentWalk(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the deployment walk (a dev-stack process) in -short mode")
	}
	bin := buildCLI(t)
	work := t.TempDir()
	gen := filepath.Join(work, "genesis.json")
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := mainWithArgs(args, &out, &errOut); code != 0 {
			t.Fatalf("nitrosign %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		return out.String()
	}
	newKey := func(name string) string {
		t.Helper()
		s, err := stamp.GenerateSigner(stamp.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		b, err := stamp.MarshalPrivateKeyPEM(s)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(work, name+".pem")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// 1. The production genesis, step by step, as docs/deployment.md writes it.
	run("genesis", "init", "--file", gen, "--kms-key-arn", walkKMSKeyARN, "--region", walkKMSRegion, "--chains", "1,11155111")
	var out, errOut bytes.Buffer
	if code := mainWithArgs([]string{"genesis", "check", "--file", gen}, &out, &errOut); code != 1 {
		t.Fatalf("genesis check of a bare skeleton: exit %d, want 1 (no clients, no admins)\n%s%s", code, out.String(), errOut.String())
	}
	wallet := newKey("wallet")
	run("genesis", "add-client", "--file", gen, "--name", "wallet", "--public-key-file", wallet, "--keys", "hot-0")
	for _, a := range []string{"alice", "bob", "carol"} {
		run("genesis", "add-admin", "--file", gen, "--name", a, "--public-key-file", newKey(a))
	}
	run("genesis", "set-quorum", "--file", gen, "--admins", "2")
	run("genesis", "add-approver", "--file", gen, "--name", "ann", "--public-key-file", newKey("ann"),
		"--keys", "hot-0", "--above", "11155111:native:"+walkApproveWei)
	run("genesis", "add-approver", "--file", gen, "--name", "ben", "--public-key-file", newKey("ben"), "--keys", "hot-0")
	run("genesis", "set-quorum", "--file", gen, "--approvals", "2")
	// The key's rule: native transfers to the treasury, at most 1 ETH each,
	// and a rolling daily limit.
	var pol map[string]any
	if err := json.Unmarshal([]byte(run("genesis", "show", "--file", gen, "--policy")), &pol); err != nil {
		t.Fatal(err)
	}
	key := pol["keys"].([]any)[0].(map[string]any)
	key["native_transfers"] = map[string]any{
		"destinations":            []any{map[string]any{"address": walkTreasury, "label": "treasury"}},
		"max_per_transaction_wei": walkMaxWei,
	}
	key["limits"] = []any{map[string]any{"chain_id": 1, "asset": "native", "window": "24h", "max": "3000000000000000000"}}
	pb, err := json.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	polFile := filepath.Join(work, "policy.json")
	if err := os.WriteFile(polFile, pb, 0o644); err != nil {
		t.Fatal(err)
	}
	run("genesis", "set-policy", "--file", gen, "--policy", polFile)
	if got := run("genesis", "check", "--file", gen); !strings.Contains(got, "valid, no problems, 0 warning(s)") {
		t.Fatalf("genesis check: %s", got)
	}
	m := policyHashLine.FindStringSubmatch(run("genesis", "hash", "--file", gen))
	if m == nil {
		t.Fatal("genesis hash printed no policy hash")
	}
	policyHash := m[1]

	// 2. nitrosign dev --genesis FILE, as a process.
	dataDir := filepath.Join(work, "data")
	url, stop := startDevGenesis(t, bin, gen, dataDir)
	defer stop()

	// 3. A signature with the new client's key; a destination the rule
	//    does not list is refused, naming the rule.
	signed := run("sign", "--host", url, "--client-key", wallet, "--chain-id", "1", "--to", walkTreasury, "--value", "0.25")
	var resp api.SignResponse
	if err := json.Unmarshal([]byte(signed), &resp); err != nil {
		t.Fatalf("sign output: %v\n%s", err, signed)
	}
	if !strings.HasPrefix(resp.SignedTransaction, "0x02") || len(resp.Signature) != 2+130 {
		t.Fatalf("sign answer %+v", resp)
	}
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--client-key", wallet, "--chain-id", "1", "--to", walkOther, "--value", "0.25"}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "destination") {
		t.Fatalf("sign to an unlisted destination: exit %d, stderr %q", code, errOut.String())
	}
	// A key the genesis does not register is refused.
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"sign", "--host", url, "--client-key", newKey("stranger"), "--chain-id", "1", "--to", walkTreasury, "--value", "0.25"}, &out, &errOut); code == 0 {
		t.Fatalf("sign with an unregistered client key: exit 0: %s", out.String())
	}

	// 4. The attestation, fetched and verified from "a workstation":
	//    pinned to PCR0-2 and the NSM root; its policy hash is the genesis's.
	doc := filepath.Join(work, "attestation.b64")
	nonce := strings.Repeat("5a", 32)
	run("attest", "fetch", "--host", url, "--nonce", nonce, "--out", doc)
	pcrs, err := devstack.ReadPCRs(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	verify := []string{"attest", "verify", "--doc", doc, "--root", filepath.Join(dataDir, devstack.NSMRootFile), "--nonce", nonce, "--json"}
	for i := 0; i <= 2; i++ {
		verify = append(verify, "--pcr", fmt.Sprintf("%d=%x", i, pcrs[i]))
	}
	var report struct {
		UserData struct {
			PolicyHash    string `json:"policy_hash"`
			PolicyVersion int    `json:"policy_version"`
			KeyCount      int    `json:"key_count"`
			AuditSeq      uint64 `json:"audit_seq"`
			AuditHead     string `json:"audit_head"`
			AuditKey      string `json:"audit_key"`
		} `json:"user_data"`
	}
	if err := json.Unmarshal([]byte(run(verify...)), &report); err != nil {
		t.Fatal(err)
	}
	u := report.UserData
	if u.PolicyHash != policyHash || u.PolicyVersion != 1 || u.KeyCount != 1 {
		t.Fatalf("attested policy %s version %d, %d keys; want the genesis's %s, version 1, 1 key", u.PolicyHash, u.PolicyVersion, u.KeyCount, policyHash)
	}
	// Pinned to another PCR0, the same document is refused.
	wrong := bytes.Repeat([]byte{0xee}, 48)
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"attest", "verify", "--doc", doc, "--root", filepath.Join(dataDir, devstack.NSMRootFile), "--pcr", "0=" + hex.EncodeToString(wrong)}, &out, &errOut); code == 0 {
		t.Fatal("attest verify accepted a document pinned to another PCR0")
	}

	// 5. A client registered later: a policy change signed by two admins
	//    against the genesis the enclave runs (DATA/genesis.json), pending
	//    for the time lock. Signed against the production file as given,
	//    the same change is refused: its genesis hash is not this stack's.
	var cur map[string]any
	if err := json.Unmarshal([]byte(run("policy", "show", "--host", url, "--document")), &cur); err != nil {
		t.Fatal(err)
	}
	later, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	cur["version"] = 2
	cur["clients"] = append(cur["clients"].([]any), map[string]any{"name": "wallet-2", "scheme": "ed25519",
		"public_key": hex.EncodeToString(later.PublicKey().Key), "keys": []any{"hot-0"}})
	if pb, err = json.Marshal(cur); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(polFile, pb, 0o644); err != nil {
		t.Fatal(err)
	}
	runGenesis := filepath.Join(dataDir, devstack.GenesisFile)
	for _, g := range []struct{ genesis, envelope string }{{runGenesis, "change.json"}, {gen, "wrong-genesis.json"}} {
		for _, a := range []string{"alice", "bob"} {
			run("policy", "sign", "--policy", polFile, "--genesis", g.genesis, "--key", filepath.Join(work, a+".pem"), "--name", a, "--envelope", filepath.Join(work, g.envelope))
		}
	}
	run("policy", "submit", "--in", filepath.Join(work, "change.json"), "--host", url)
	if got := run("policy", "show", "--host", url); !regexp.MustCompile(`(?m)^pending\s+version 2,`).MatchString(got) {
		t.Fatalf("policy show after the change: %s", got)
	}
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"policy", "submit", "--in", filepath.Join(work, "wrong-genesis.json"), "--host", url}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "another deployment") {
		t.Fatalf("a change signed against the production file as given: exit %d, %s", code, errOut.String())
	}

	// 6. The audit log in the data directory, at the attested head, with
	//    every signature checked; then again at the head after the policy
	//    change, from a fresh attestation.
	got := run("audit", "verify", "--dir", dataDir, "--audit-key", u.AuditKey, "--head", fmt.Sprintf("%d:%s", u.AuditSeq, u.AuditHead), "--all-signatures")
	if !strings.HasPrefix(got, "audit log intact") {
		t.Fatalf("audit verify: %s", got)
	}
	run("attest", "fetch", "--host", url, "--nonce", nonce, "--out", doc)
	if err := json.Unmarshal([]byte(run(verify...)), &report); err != nil {
		t.Fatal(err)
	}
	if report.UserData.AuditSeq <= u.AuditSeq {
		t.Fatalf("the policy change left no audit record: head %d, before %d", report.UserData.AuditSeq, u.AuditSeq)
	}
	u = report.UserData
	if got := run("audit", "verify", "--dir", dataDir, "--audit-key", u.AuditKey, "--head", fmt.Sprintf("%d:%s", u.AuditSeq, u.AuditHead)); !strings.HasPrefix(got, "audit log intact") {
		t.Fatalf("audit verify: %s", got)
	}
}

// startDevGenesis runs `nitrosign dev --genesis gen` on dataDir and returns
// its API URL once the banner names it, and a function that stops it with
// SIGINT and waits for it.
func startDevGenesis(t *testing.T, bin, gen, dataDir string) (string, func()) {
	t.Helper()
	dev := exec.Command(bin, "dev", "--genesis", gen, "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	dev.Stderr = &stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	deadline := time.After(2 * time.Minute)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				dev.Wait()
				t.Fatalf("nitrosign dev --genesis ended its output early; stderr:\n%s", stderr.String())
			}
			if m := apiLine.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		case <-deadline:
			dev.Process.Kill()
			t.Fatalf("no banner within 2 minutes; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return url, func() {
		dev.Process.Signal(syscall.SIGINT)
		if err := dev.Wait(); err != nil {
			t.Errorf("nitrosign dev --genesis: %v; stderr:\n%s", err, stderr.String())
		}
	}
}
