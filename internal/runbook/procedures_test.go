package runbook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
	"github.com/nitrosign/nitrosign/internal/sim/kmssim"
)

// stackVars are the runbook's placeholders for the dev stack st.
func stackVars(st *devstack.Stack) map[string]string {
	return map[string]string{
		"HOST":     st.URL,
		"DATA_DIR": st.DataDir,
		"GENESIS":  filepath.Join(st.DataDir, devstack.GenesisFile),
		"ROOT":     st.NSMRootPath,
		"PCR0":     hex.EncodeToString(st.Measurement.PCR0[:]),
	}
}

// admin returns the per-block variables of dev admin i (the admin's own
// machine).
func admin(st *devstack.Stack, i int, envelope string) map[string]string {
	return map[string]string{
		"ADMIN_KEY":  filepath.Join(st.DataDir, devstack.AdminKeyFile(i)),
		"ADMIN_NAME": devstack.AdminName(i),
		"ENVELOPE":   envelope,
	}
}

// quorum has every dev admin sign envelope with the runbook's admin-sign
// block, then submits it with admin-submit, and returns the enclave's
// answer.
func quorum(t *testing.T, s *session, st *devstack.Stack, envelope string) map[string]any {
	t.Helper()
	for i := 1; i <= devstack.AdminCount; i++ {
		out := s.mustRun("admin-sign", admin(st, i, envelope))
		if !strings.Contains(out, "signed as "+devstack.AdminName(i)) || !strings.Contains(out, "digest ") {
			t.Fatalf("admin-sign as admin %d printed:\n%s", i, out)
		}
	}
	out := s.mustRun("admin-submit", map[string]string{"ENVELOPE": envelope})
	var ans map[string]any
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatalf("admin-submit printed no JSON answer: %v\n%s", err, out)
	}
	return ans
}

var (
	hex64      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	headForm   = regexp.MustCompile(`^[0-9]+:[0-9a-f]{64}$`)
	policyLine = regexp.MustCompile(`policy     version (\d+), hash ([0-9a-f]{64})`)
	pending    = regexp.MustCompile(`pending    version (\d+), hash ([0-9a-f]{64}),`)
)

// attest runs the runbook's step 0 and checks what it set.
func attest(t *testing.T, s *session) {
	t.Helper()
	out := s.mustRun("attest", nil)
	if !strings.Contains(out, "attestation document: valid") || !hex64.MatchString(s.get("AUDIT_KEY")) ||
		!headForm.MatchString(s.get("AUDIT_HEAD")) || s.get("POLICY_VERSION") == "" {
		t.Fatalf("attest: AUDIT_KEY %q AUDIT_HEAD %q POLICY_VERSION %q\n%s", s.get("AUDIT_KEY"), s.get("AUDIT_HEAD"), s.get("POLICY_VERSION"), out)
	}
}

// signTx sends a stamped transfer with the dev client, as a hot-wallet
// service would (not a runbook step), and returns nitrosign sign's exit
// status and output.
func signTx(t *testing.T, s *session, st *devstack.Stack, value string, chain int) (int, string) {
	t.Helper()
	out, errOut, code := s.runText("nitrosign sign --host \"$HOST\" --data-dir " + shellQuote(st.DataDir) +
		" --to " + devstack.ExampleDestinationB + " --value " + value + " --chain-id " + strconv.Itoa(chain))
	return code, out + errOut
}

// TestRunbookKeysSealAndAudit runs procedures 0, 3, 5, 4 and 1 on one dev
// stack: attest; create a key (the same envelope again is refused); rotate
// the seal, and see the same addresses after a restart; import a key
// encrypted by the simulated KMS (refused under another key id); verify
// the log daily, with the pinned head (a foreign one fails), and prove the
// key creation's record.
func TestRunbookKeysSealAndAudit(t *testing.T) {
	stackTest(t)
	dir := t.TempDir()
	st := devstacktest.Start(t, dir)
	s := newSession(t, stackVars(st))
	attest(t, s)
	if v := s.get("POLICY_VERSION"); v != "1" {
		t.Fatalf("attested policy version %q, want 1", v)
	}

	// 3. Key creation.
	s.vars["NEW_KEY_ID"], s.vars["NEW_KEY_PATH"] = "hot-1", "m/44'/60'/0'/0/1"
	s.mustRun("key-create-write", nil)
	ans := quorum(t, s, st, "key-create.json")
	if ans["kind"] != "key_create" || ans["key_id"] != "hot-1" || ans["audit_seq"] == nil {
		t.Fatalf("key_create answer %v", ans)
	}
	keySeq := strconv.FormatFloat(ans["audit_seq"].(float64), 'f', 0, 64)
	out := s.mustRun("key-create-verify", nil)
	if !strings.Contains(out, ans["address"].(string)) {
		t.Fatalf("key-create-verify printed %q, want the new address %v", out, ans["address"])
	}
	// The same command again is refused as replayed, and changes nothing.
	if o, e, code := s.run("admin-submit", map[string]string{"ENVELOPE": "key-create.json"}); code != 1 || !strings.Contains(e, "replayed_command") {
		t.Fatalf("the key_create envelope sent again: exit %d\n%s%s", code, o, e)
	}
	// A key id that does not exist makes key-create-verify fail: the check
	// can fail.
	if _, _, code := s.run("key-create-verify", map[string]string{"NEW_KEY_ID": "hot-9"}); code == 0 {
		t.Fatal("key-create-verify passed for a key that does not exist")
	}

	// 5. Seal rotation.
	seedBefore, err := os.ReadFile(filepath.Join(dir, host.SealedSeedFile))
	if err != nil {
		t.Fatal(err)
	}
	s.mustRun("seal-rotate-write", nil)
	ans = quorum(t, s, st, "seal-rotate.json")
	if ans["kind"] != "seal_rotate" {
		t.Fatalf("seal_rotate answer %v", ans)
	}
	if prev, _ := os.ReadFile(filepath.Join(dir, host.SealedSeedFile+".prev")); !bytes.Equal(prev, seedBefore) {
		t.Fatal("seed.sealed.prev is not the seed sealed before the rotation")
	}
	out = s.mustRun("seal-rotate-verify", nil)
	if !strings.Contains(out, "hot-0") || !strings.Contains(out, "hot-1") {
		t.Fatalf("seal-rotate-verify: %s", out)
	}
	// The new blob unseals, with the same addresses and the created key.
	keys := keyList(t, s)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// 4. Key import. The operator's aws kms encrypt, done here against the
	// dev stack's simulated KMS while the stack is stopped (the same call,
	// the same encryption context, under the sealing key's policy).
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	s.vars["IMPORT_KEY_ID"] = "imported-1"
	blob := kmsEncryptForImport(t, dir, st.KMSKeyARN, priv.Serialize(), s.vars["IMPORT_KEY_ID"])
	if err := os.WriteFile(filepath.Join(s.work, "key.enc"), blob, 0o600); err != nil {
		t.Fatal(err)
	}

	st = devstacktest.Start(t, dir)
	s.vars["HOST"] = st.URL
	if got := keyList(t, s); got != keys {
		t.Fatalf("keys after the rotation and a restart:\n%s\nwant\n%s", got, keys)
	}
	s.mustRun("key-import-write", nil)
	if ans := quorum(t, s, st, "key-import.json"); ans["kind"] != "key_import" {
		t.Fatalf("key_import answer %v", ans)
	}
	want := ethtx.PubkeyToAddress(priv.PubKey()).Hex()
	out = s.mustRun("key-create-verify", map[string]string{"NEW_KEY_ID": "imported-1"})
	if !strings.Contains(out, want) {
		t.Fatalf("the imported key: %q, want address %s", out, want)
	}
	// Imported under another key id, the blob is refused: KMS will not
	// decrypt it under another encryption context.
	s.vars["IMPORT_KEY_ID"] = "imported-2"
	s.mustRun("key-import-write", nil)
	for i := 1; i <= devstack.AdminCount; i++ {
		s.mustRun("admin-sign", admin(st, i, "key-import.json"))
	}
	if o, e, code := s.run("admin-submit", map[string]string{"ENVELOPE": "key-import.json"}); code != 1 || !strings.Contains(e, "InvalidCiphertextException") {
		t.Fatalf("a blob encrypted for imported-1 imported as imported-2: exit %d\n%s%s", code, o, e)
	} else {
		t.Logf("imported under another key id: %s", strings.TrimSpace(e))
	}

	// 1. Audit verification: daily, twice (the second run also checks the
	// head pinned by the first), then a proof of the key_create record.
	attest(t, s)
	waitForHead(t, s)
	out = s.mustRun("audit-daily", nil)
	if !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit-daily: %s", out)
	}
	pinned := readPinned(t, s)
	if _, err := signWithClient(t, s, st); err != nil {
		t.Fatal(err)
	}
	attest(t, s)
	waitForHead(t, s)
	s.mustRun("audit-daily", nil)
	if again := readPinned(t, s); again == pinned {
		t.Fatalf("the pinned head did not move after a signature: %s", again)
	}
	// A pinned head the log does not hold (a forked history) fails the
	// daily run.
	if err := os.WriteFile(filepath.Join(s.work, "pinned-head"), []byte(strings.SplitN(pinned, ":", 2)[0]+":"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, e, code := s.run("audit-daily", nil); code != 1 || !strings.Contains(e, "forked") {
		t.Fatalf("audit-daily with a foreign pinned head: exit %d\n%s%s", code, o, e)
	}
	out = s.mustRun("audit-prove", map[string]string{"SEQ": keySeq})
	if !strings.Contains(out, "proof holds") {
		t.Fatalf("audit-prove: %s", out)
	}
}

// kmsEncryptForImport encrypts key under the dev stack's simulated KMS key
// keyARN, as docs/runbook.md's aws kms encrypt does (the stack on dir must
// be stopped: the simulator keeps its state in dir).
func kmsEncryptForImport(t *testing.T, dir, keyARN string, key []byte, keyID string) []byte {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, devstack.KMSCACertFile), filepath.Join(dir, devstack.KMSCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kmssim.New(kmssim.Options{StatePath: filepath.Join(dir, devstack.KMSStateFile), CA: &ca})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := awskms.NewFromConfig(aws.Config{
		Region:      kmssim.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider(kmssim.DefaultAccessKeyID, kmssim.DefaultSecretAccessKey, ""),
		HTTPClient:  srv.Client(),
	}, func(o *awskms.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	out, err := c.Encrypt(context.Background(), &awskms.EncryptInput{
		KeyId:             aws.String(keyARN),
		Plaintext:         key,
		EncryptionContext: map[string]string{"nitrosign:purpose": "key-import", "nitrosign:key-id": keyID},
	})
	if err != nil {
		t.Fatalf("kms encrypt: %v", err)
	}
	return out.CiphertextBlob
}

// keyList is what nitrosign keys prints.
func keyList(t *testing.T, s *session) string {
	t.Helper()
	out, errOut, code := s.runText(`nitrosign keys --host "$HOST"`)
	if code != 0 {
		t.Fatalf("nitrosign keys: %s", errOut)
	}
	return out
}

// signWithClient signs one transfer as the dev client.
func signWithClient(t *testing.T, s *session, st *devstack.Stack) (string, error) {
	t.Helper()
	code, out := signTx(t, s, st, "0.01", 1)
	if code != 0 {
		t.Fatalf("nitrosign sign exited %d: %s", code, out)
	}
	return out, nil
}

// readPinned reads the head the daily block pinned.
func readPinned(t *testing.T, s *session) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.work, "pinned-head"))
	if err != nil || !headForm.MatchString(strings.TrimSpace(string(b))) {
		t.Fatalf("pinned-head: %v %q", err, b)
	}
	return strings.TrimSpace(string(b))
}

// waitForHead waits until the host has persisted the attested head: the
// runbook copies the log after attesting, so the copy holds the head.
func waitForHead(t *testing.T, s *session) {
	t.Helper()
	seq, _, _ := strings.Cut(s.get("AUDIT_HEAD"), ":")
	want, _ := strconv.ParseUint(seq, 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		logs, _ := filepath.Glob(filepath.Join(s.vars["DATA_DIR"], "audit-*.log"))
		n := uint64(0)
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			n += uint64(bytes.Count(b, []byte("\n")))
		}
		if n >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the log did not reach seq %d within 30 s", want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
