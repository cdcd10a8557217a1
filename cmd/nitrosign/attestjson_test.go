package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
)

// TestAttestVerifyJSON: `attest verify --json` prints nitrosign's user_data
// under the snake_case names of docs/attestation.md with its byte strings
// in hex, as every other byte string of the report; and the audit key as
// null while the enclave is locked.
func TestAttestVerifyJSON(t *testing.T) {
	now := time.Now()
	sim, err := nsmsim.New(nsmsim.Options{Image: nsmsim.MeasureBytes([]byte("enclave binary"), []byte("genesis")), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, sim.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ud := userdata.UserData{
		Version:       "0.1.0-dev",
		KeysHash:      [32]byte{0x01, 0x02, 31: 0xff},
		KeyCount:      2,
		PolicyHash:    [32]byte{0xaa, 31: 0xbb},
		PolicyVersion: 7,
		AuditSeq:      42,
		AuditHead:     [32]byte{0xcc, 31: 0xdd},
		AuditKey:      bytes.Repeat([]byte{0xee}, 32),
	}
	verify := func(ud userdata.UserData) (map[string]any, string) {
		t.Helper()
		udBytes, err := userdata.Marshal(ud)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := sim.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte{0xc0, 0xff, 0xee}, UserData: udBytes, PublicKey: bytes.Repeat([]byte{0x11}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		docFile := filepath.Join(dir, "doc.cbor")
		if err := os.WriteFile(docFile, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, "", "attest", "verify", "--doc", docFile, "--root", root, "--nonce", "c0ffee", "--json")
		if code != 0 {
			t.Fatalf("attest verify --json: exit %d %s", code, errOut)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		_, text, _ := runCLI(t, "", "attest", "verify", "--doc", docFile, "--root", root, "--nonce", "c0ffee")
		return rep, text
	}

	rep, text := verify(ud)
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	if got, want := keys(rep), []string{"checks", "debug", "module_id", "nonce", "pcrs", "public_key", "time", "user_data"}; !slices.Equal(got, want) {
		t.Errorf("report fields %v, want %v", got, want)
	}
	if rep["nonce"] != "c0ffee" || rep["public_key"] != strings.Repeat("11", 32) || rep["module_id"] != sim.ModuleID() || rep["debug"] != false {
		t.Errorf("report %v", rep)
	}
	pcr := sim.PCRs()
	if pcrs, _ := rep["pcrs"].(map[string]any); pcrs["0"] != hex.EncodeToString(pcr[0][:]) {
		t.Errorf("pcrs %v", rep["pcrs"])
	}
	u, _ := rep["user_data"].(map[string]any)
	want := map[string]any{
		"format":         "nitrosign-attestation-v1",
		"version":        "0.1.0-dev",
		"keys_hash":      "0102" + strings.Repeat("00", 29) + "ff",
		"key_count":      float64(2),
		"policy_hash":    "aa" + strings.Repeat("00", 30) + "bb",
		"policy_version": float64(7),
		"audit_seq":      float64(42),
		"audit_head":     "cc" + strings.Repeat("00", 30) + "dd",
		"audit_key":      strings.Repeat("ee", 32),
	}
	if got, wantKeys := keys(u), keys(want); !slices.Equal(got, wantKeys) {
		t.Fatalf("user_data fields %v, want %v", got, wantKeys)
	}
	for k, v := range want {
		if u[k] != v {
			t.Errorf("user_data.%s = %#v, want %#v", k, u[k], v)
		}
	}
	for _, want := range []string{"nitrosign-attestation-v1, enclave 0.1.0-dev", "keys       2, hash 0102", "policy     version 7, hash aa", "audit      head 42:cc", "audit key  " + strings.Repeat("ee", 32)} {
		if !strings.Contains(text, want) {
			t.Errorf("the text report lacks %q:\n%s", want, text)
		}
	}

	// A locked enclave has no audit key: null, and said so in the text.
	ud.AuditKey = nil
	rep, text = verify(ud)
	u, _ = rep["user_data"].(map[string]any)
	if v, ok := u["audit_key"]; !ok || v != nil {
		t.Errorf("locked: audit_key %#v (present %v), want null", v, ok)
	}
	if !strings.Contains(text, "audit key  none (a locked enclave)") {
		t.Errorf("locked: text report\n%s", text)
	}
}
