package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/admin"
)

// TestAdminCommandFreeze: admin command writes a freeze of one key or of
// every key, bound to the genesis file, with the reason; the flags that
// do not make one freeze are refused with a usage error, and so is a
// reason the command format refuses.
func TestAdminCommandFreeze(t *testing.T) {
	dir := t.TempDir()
	genesis := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(genesis, []byte(`{"format":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want admin.FreezeBody
		code int
		err  string
	}{
		{name: "key", args: []string{"--key-id", "hot-0", "--reason", "INC-7: client host compromised"}, want: admin.FreezeBody{KeyID: "hot-0", Reason: "INC-7: client host compromised"}},
		{name: "all keys", args: []string{"--all-keys", "--reason", "incident"}, want: admin.FreezeBody{AllKeys: true, Reason: "incident"}},
		{name: "neither", args: []string{"--reason", "r"}, code: 2, err: "--key-id ID or --all-keys"},
		{name: "both", args: []string{"--key-id", "hot-0", "--all-keys", "--reason", "r"}, code: 2, err: "one of them"},
		{name: "no reason", args: []string{"--key-id", "hot-0"}, code: 2, err: "--reason"},
		{name: "unprintable reason", args: []string{"--key-id", "hot-0", "--reason", "a\nb"}, code: 1, err: "not printable"},
		{name: "long reason", args: []string{"--key-id", "hot-0", "--reason", strings.Repeat("x", 257)}, code: 1, err: "at most 256"},
		{name: "bad key id", args: []string{"--key-id", "0xabc", "--reason", "r"}, code: 1, err: "0x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "freeze.json")
			args := append([]string{"admin", "command", "--kind", "freeze", "--genesis", genesis, "--out", out}, tc.args...)
			code, _, stderr := runCLI(t, "", args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q", code, tc.code, stderr, tc.err)
			}
			if tc.code != 0 {
				if _, err := os.Stat(out); err == nil {
					t.Fatal("an envelope was written for a refused command")
				}
				return
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			env, err := admin.ParseEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			cmd, err := admin.ParseCommand(env.Command)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := os.ReadFile(genesis)
			body, err := cmd.Freeze()
			if err != nil || *body != tc.want || cmd.GenesisHash != sha256.Sum256(g) || len(env.Signatures) != 0 {
				t.Fatalf("envelope %s: body %+v, %v", b, body, err)
			}
		})
	}
}
