package devstack_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

func startOpts(t *testing.T, opts devstack.Options) (*devstack.Stack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts.Listen = "127.0.0.1:0"
	opts.EnclaveBinary = enclaveBinary(t)
	return devstack.Start(ctx, opts)
}

func auditLogs(t *testing.T, dir string) []string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

// TestDevStackSealedSeedSurvivesRestart: the first run seals a new seed
// through the simulated KMS; later runs with the same data directory
// unseal it (KMS Decrypt with the enclave's attestation) and show the same
// addresses, and the audit log continues as one chain signed by one key.
func TestDevStackSealedSeedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st1 := startStack(t, dir)
	if st1.KMSKeyARN == "" || !strings.HasPrefix(st1.KMSKeyARN, "arn:aws:kms:us-east-1:") {
		t.Fatalf("the dev stack's seed is not sealed under a KMS key: %q", st1.KMSKeyARN)
	}
	sealed, err := os.ReadFile(filepath.Join(dir, host.SealedSeedFile))
	if err != nil {
		t.Fatalf("no sealed seed after the first run: %v", err)
	}
	keys1 := fmt.Sprint(st1.Keys)
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := startStack(t, dir)
	if got := fmt.Sprint(st2.Keys); got != keys1 {
		t.Fatalf("addresses changed across a restart:\n%s\n%s", keys1, got)
	}
	again, _ := os.ReadFile(filepath.Join(dir, host.SealedSeedFile))
	if !bytes.Equal(sealed, again) {
		t.Error("the sealed seed was rewritten by a restart")
	}
	// Wait for a checkpoint, then stop.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, host.CheckpointFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint stored within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}

	// One log, two boots, intact under the one audit key.
	keyHex, err := os.ReadFile(filepath.Join(dir, host.AuditKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(keyHex)))
	if err != nil {
		t.Fatal(err)
	}
	logs := auditLogs(t, dir)
	if len(logs) != 1 {
		t.Fatalf("audit logs %v, want one continuing across restarts", logs)
	}
	rep, err := audit.VerifyFiles(logs, ed25519.PublicKey(key), audit.VerifyOptions{AllSignatures: true})
	if err != nil {
		t.Fatalf("the log across restarts does not verify: %v", err)
	}
	if rep.Records < 2 {
		t.Errorf("%d records, want a genesis and a boot record", rep.Records)
	}
	b, _ := os.ReadFile(logs[0])
	if !bytes.Contains(b, []byte(`"kind":"genesis"`)) || !bytes.Contains(b, []byte(`"kind":"boot"`)) || bytes.Contains(b, []byte("mismatch")) {
		t.Errorf("log:\n%s", b)
	}
}

// TestDevStackRefusesChangedImage: a changed enclave image (here its
// genesis.json, measured with the binary) is refused the sealed seed by
// the simulated KMS's key policy, as AWS would refuse it; the error names
// both measurements and the flag, nothing is overwritten, and
// --accept-new-image lets it start with the same addresses.
func TestDevStackRefusesChangedImage(t *testing.T) {
	dir := t.TempDir()
	st1 := startStack(t, dir)
	keys1, pcr1 := fmt.Sprint(st1.Keys), hex.EncodeToString(st1.Measurement.PCR0[:])
	st1.Close()

	genesis := filepath.Join(dir, devstack.GenesisFile)
	g, err := os.ReadFile(genesis)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesis, append(g, '\n'), 0o600); err != nil { // same configuration, another image
		t.Fatal(err)
	}
	seedPath := filepath.Join(dir, host.SealedSeedFile)
	sealed, _ := os.ReadFile(seedPath)

	st, err := startOpts(t, devstack.Options{DataDir: dir})
	if err == nil {
		st.Close()
		t.Fatal("a changed image started with the sealed seed")
	}
	msg := err.Error()
	for _, want := range []string{"AccessDeniedException", "kms:Decrypt", pcr1, "--accept-new-image", "Nothing was overwritten"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, msg)
		}
	}
	if strings.Count(msg, "PCR0 ") < 2 {
		t.Errorf("the refusal does not name both measurements:\n%s", msg)
	}
	if after, _ := os.ReadFile(seedPath); !bytes.Equal(after, sealed) {
		t.Error("the sealed seed was changed by a refused start")
	}

	st2, err := startOpts(t, devstack.Options{DataDir: dir, AcceptNewImage: true})
	if err != nil {
		t.Fatalf("--accept-new-image: %v", err)
	}
	defer st2.Close()
	if got := fmt.Sprint(st2.Keys); got != keys1 {
		t.Errorf("addresses changed with the new image:\n%s\n%s", keys1, got)
	}
	if hex.EncodeToString(st2.Measurement.PCR0[:]) == pcr1 {
		t.Error("the image did not change")
	}
}
