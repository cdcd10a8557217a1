package runbook_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/stamp"
)

// timeLock is the time lock of the upgraded image's genesis: short, so
// that the test sees a change come into force.
const timeLock = "2s"

// startImage starts a dev stack on dir, accepting a new image when
// accept is set, and closes it when the test ends.
func startImage(t *testing.T, dir string, accept bool) (*devstack.Stack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:        dir,
		Listen:         "127.0.0.1:0",
		EnclaveBinary:  devstacktest.EnclaveBinary(t),
		Logger:         devstacktest.DebugLogger(),
		AcceptNewImage: accept,
	})
	if err == nil {
		t.Cleanup(func() { st.Close() })
	}
	return st, err
}

// TestRunbookUpgradePolicyAndApprovers runs procedures 8, 6 and 7 on one
// dev stack. The upgrade: a new genesis (a 2 s time lock) is a new image,
// refused the sealed seed until the key policy lists its PCR0; then the
// new PCR0 verifies, the old one does not, the addresses stay. The policy
// change: a loosening is scheduled, cancelled by one admin, signed again
// at a higher version, comes into force after its time lock and is
// attested. The approver rotation: a replaced approver key no longer
// counts, and the new one does. A tightening (the freeze rule lowered to
// two refusals) is in force at once; two refusals freeze the key, whose
// freeze the runbook finds and the quorum lifts (procedure 2). Last, the
// retired image is refused the seed once the key policy lists only the new
// PCR0.
func TestRunbookUpgradePolicyAndApprovers(t *testing.T) {
	stackTest(t)
	dir := t.TempDir()
	st := devstacktest.Start(t, dir)
	s := newSession(t, stackVars(st))
	keys := keyList(t, s)
	oldPCR0 := s.vars["PCR0"]
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// 8. The new image: the same deployment with a short time lock.
	genesisPath := filepath.Join(dir, devstack.GenesisFile)
	oldGenesis, err := os.ReadFile(genesisPath)
	if err != nil {
		t.Fatal(err)
	}
	b := oldGenesis
	var g map[string]json.RawMessage
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	g["governance"] = json.RawMessage(`{"time_lock":"` + timeLock + `"}`)
	if b, err = json.MarshalIndent(g, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesisPath, append(b, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	// Before the key policy lists it, the new image is refused the seed.
	if _, err := startImage(t, dir, false); err == nil || !strings.Contains(err.Error(), oldPCR0) || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("the new image before the key policy update: %v", err)
	}
	st, err = startImage(t, dir, true) // the key administrator's step 2, simulated
	if err != nil {
		t.Fatal(err)
	}
	s.vars = stackVars(st)
	newPCR0 := s.vars["PCR0"]
	s.vars["OLD_PCR0"], s.vars["NEW_PCR0"] = oldPCR0, newPCR0
	s.vars["ACCOUNT"], s.vars["ROLE_ARN"] = "123456789012", "arn:aws:iam::123456789012:role/nitrosign-parent"
	out := s.mustRun("kms-policy-both", nil)
	pol, err := os.ReadFile(filepath.Join(s.work, "key-policy.json"))
	if err != nil || out != "" || !strings.Contains(string(pol), oldPCR0) || !strings.Contains(string(pol), newPCR0) || !json.Valid(pol) {
		t.Fatalf("kms-policy-both: %v, stdout %q\n%s", err, out, pol)
	}
	s.mustRun("upgrade-verify", nil)
	if got := keyList(t, s); got != keys {
		t.Fatalf("keys after the upgrade:\n%s\nwant\n%s", got, keys)
	}
	// The check can fail: with the new PCR0 pinned as the old one.
	if o, e, code := s.run("upgrade-verify", map[string]string{"OLD_PCR0": newPCR0}); code == 0 {
		t.Fatalf("upgrade-verify passed with the running image as the old one\n%s%s", o, e)
	}
	s.mustRun("kms-policy-new-only", nil)
	if pol, _ = os.ReadFile(filepath.Join(s.work, "key-policy.json")); strings.Contains(string(pol), oldPCR0) || !strings.Contains(string(pol), newPCR0) {
		t.Fatalf("kms-policy-new-only:\n%s", pol)
	}

	// 6. A loosening (a third destination), scheduled and cancelled.
	out = s.mustRun("policy-fetch", nil)
	if !strings.Contains(out, "in force   version 1") || !strings.Contains(out, "time lock  "+timeLock) {
		t.Fatalf("policy-fetch: %s", out)
	}
	doc := readPolicy(t, s)
	const destC = "0x3333333333333333333333333333333333333333"
	doc.Keys[0].NativeTransfers.Destinations = append(doc.Keys[0].NativeTransfers.Destinations, policy.Destination{Address: destC, Label: "example destination C"})
	changePolicy := func(version uint64, loosens string) (hash string) {
		t.Helper()
		doc.Version = version
		writePolicy(t, s, doc)
		for i := 1; i <= devstack.AdminCount; i++ {
			out := s.mustRun("policy-sign", admin(st, i, ""))
			if !strings.Contains(out, "loosens    "+loosens) || !strings.Contains(out, "takes effect after the time lock") {
				t.Fatalf("policy-sign as admin %d:\n%s", i, out)
			}
			m := policyLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("policy-sign printed no version and hash:\n%s", out)
			}
			hash = m[2]
		}
		out := s.mustRun("policy-submit", nil)
		m := pending.FindStringSubmatch(out)
		if m == nil || m[2] != hash {
			t.Fatalf("policy-submit: want version %d pending with hash %s:\n%s", version, hash, out)
		}
		return hash
	}
	s.vars["NEW_VERSION"] = "2"
	hash2 := changePolicy(2, "")
	s.vars["PENDING_VERSION"], s.vars["PENDING_HASH"] = "2", hash2
	s.mustRun("policy-cancel", admin(st, 1, ""))
	if out := policyShow(t, s); !strings.Contains(out, "pending    none") || !strings.Contains(out, "in force   version 1") {
		t.Fatalf("after the cancel: %s", out)
	}
	// Signed again at a higher version, it comes into force after the lock.
	s.vars["NEW_VERSION"] = "3"
	s.vars["NEW_HASH"] = changePolicy(3, "")
	waitInForce(t, s, 3)
	s.mustRun("policy-verify", nil)
	if o, e, code := s.run("policy-verify", map[string]string{"NEW_HASH": hash2}); code == 0 {
		t.Fatalf("policy-verify passed with the cancelled change's hash\n%s%s", o, e)
	}

	// 7. Approver rotation: dev-approver-2's key replaced (a loosening).
	newApprover, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := stamp.MarshalPrivateKeyPEM(newApprover)
	if err != nil {
		t.Fatal(err)
	}
	newApproverKey := filepath.Join(t.TempDir(), "approver-new.pem")
	if err := os.WriteFile(newApproverKey, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	doc = readPolicy(t, s)
	approvers := doc.Keys[0].Approvals.Approvers
	if len(approvers) != 2 || approvers[1].Name != devstack.ApproverName(2) {
		t.Fatalf("approvers in force: %+v", approvers)
	}
	approvers[1].PublicKey = hex.EncodeToString(newApprover.PublicKey().Key)
	s.vars["NEW_VERSION"] = "4"
	s.vars["NEW_HASH"] = changePolicy(4, "approvals for key "+devstack.ExampleKeyID+": approver "+devstack.ApproverName(2)+": public key changed")
	waitInForce(t, s, 4)
	s.mustRun("policy-verify", nil)

	// A request above the threshold waits; the old key's approval is
	// refused, the remaining approver's and the new key's sign it.
	code, out := signTx(t, s, st, "0.8", devstack.ExampleApprovalChain)
	if code != 3 {
		t.Fatalf("0.8 ETH on Sepolia: exit %d, want 3 (pending)\n%s", code, out)
	}
	var p struct {
		ApprovalID string `json:"approval_id"`
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &p); err != nil || p.ApprovalID == "" {
		t.Fatalf("no approval id: %v\n%s", err, out)
	}
	approve := func(key, name string) (int, string) {
		o, e, code := s.runText("nitrosign approve --host \"$HOST\" --id " + p.ApprovalID + " --key " + shellQuote(key) + " --name " + name + " --yes")
		return code, o + e
	}
	if code, out := approve(filepath.Join(st.DataDir, devstack.ApproverKeyFile(2)), devstack.ApproverName(2)); code != 1 || !strings.Contains(out, "does not verify") {
		t.Fatalf("the replaced approver key: exit %d, want a refusal\n%s", code, out)
	}
	if code, out := approve(filepath.Join(st.DataDir, devstack.ApproverKeyFile(1)), devstack.ApproverName(1)); code != 0 || !strings.Contains(out, "1 of 2") {
		t.Fatalf("approver 1: exit %d\n%s", code, out)
	}
	if code, out := approve(newApproverKey, devstack.ApproverName(2)); code != 0 || !strings.Contains(out, "signed_transaction") {
		t.Fatalf("the new approver key: exit %d\n%s", code, out)
	}

	// 6, a tightening: in force at once, with no time lock. The freeze rule
	// is lowered to 2 refusals (procedure 2's "stop one key").
	doc = readPolicy(t, s)
	doc.Keys[0].Freeze.Refusals = 2
	doc.Version = 5
	s.vars["NEW_VERSION"] = "5"
	writePolicy(t, s, doc)
	for i := 1; i <= devstack.AdminCount; i++ {
		out := s.mustRun("policy-sign", admin(st, i, ""))
		if !strings.Contains(out, "tightens   ") || !strings.Contains(out, "takes effect at once: it only tightens") || strings.Contains(out, "loosens") {
			t.Fatalf("policy-sign of a tightening as admin %d:\n%s", i, out)
		}
	}
	if out := s.mustRun("policy-submit", nil); !strings.Contains(out, "in force   version 5,") || !strings.Contains(out, "pending    none") {
		t.Fatalf("a tightening is not in force at once:\n%s", out)
	}

	// 2. Two refusals freeze the key; the quorum lifts the freeze.
	for i := 0; i < 2; i++ {
		if code, out := signTx(t, s, st, "2", 1); code != 1 || !strings.Contains(out, "max_per_transaction") {
			t.Fatalf("2 ETH: exit %d\n%s", code, out)
		}
	}
	code, out = signTx(t, s, st, "0.01", 1)
	m := frozenSeq.FindStringSubmatch(out)
	if code != 1 || m == nil {
		t.Fatalf("after two refusals: exit %d, want the key frozen\n%s", code, out)
	}
	s.mustRun("freeze-find", nil)
	if got := s.get("FREEZE_SEQ"); got != m[1] {
		t.Fatalf("freeze-find found FREEZE_SEQ %q, the refusal names record %s", got, m[1])
	}
	s.mustRun("unfreeze-write", nil)
	if ans := quorum(t, s, st, "unfreeze.json"); ans["kind"] != "unfreeze" {
		t.Fatalf("unfreeze answer %v", ans)
	}
	signWithClient(t, s, st)

	// 8, step 6: with the old PCR0 gone from the key policy (the dev
	// stack's accepted policy lists the new image only), the old image is
	// refused the seed, and nothing is overwritten.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesisPath, oldGenesis, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := startImage(t, dir, false); err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), newPCR0) {
		t.Fatalf("the retired image: %v", err)
	}
}

// readPolicy reads policy-current.json, which the policy-fetch block
// wrote (fetching it again first).
func readPolicy(t *testing.T, s *session) policy.Document {
	t.Helper()
	s.mustRun("policy-fetch", nil)
	b, err := os.ReadFile(filepath.Join(s.work, "policy-current.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d policy.Document
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("policy-current.json: %v", err)
	}
	return d
}

// writePolicy writes the edited document as policy-vN.json, the file the
// runbook's policy-sign block reads.
func writePolicy(t *testing.T, s *session, d policy.Document) {
	t.Helper()
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.work, "policy-v"+s.vars["NEW_VERSION"]+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func policyShow(t *testing.T, s *session) string {
	t.Helper()
	out, errOut, code := s.runText(`nitrosign policy show --host "$HOST"`)
	if code != 0 {
		t.Fatalf("policy show: %s", errOut)
	}
	return out
}

// waitInForce waits (30 s at most) for the time lock to end and version to
// be in force with nothing pending.
func waitInForce(t *testing.T, s *session, version int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	want := "in force   version " + strconv.Itoa(version) + ","
	for {
		out := policyShow(t, s)
		if strings.Contains(out, want) && strings.Contains(out, "pending    none") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d not in force within 30 s:\n%s", version, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
