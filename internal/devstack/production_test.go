package devstack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/stamp"
)

const prodKeyARN = "arn:aws:kms:eu-west-1:444455556666:key/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

// productionGenesis writes the example genesis with kms set by edit (the
// kms object, as JSON fields) to a file and returns its path and the
// client that it registers.
func productionGenesis(t *testing.T, kms map[string]any) (string, stamp.Signer) {
	t.Helper()
	client, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	b, err := devstack.ExampleGenesis(client.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if kms != nil {
		g["kms"] = kms
	}
	if b, err = json.MarshalIndent(g, "", "  "); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, client
}

// TestDevStackProductionGenesisRefusals checks that Start with a production
// genesis refuses, before starting anything, what the simulation cannot
// run, and says why.
func TestDevStackProductionGenesisRefusals(t *testing.T) {
	tests := []struct {
		name string
		kms  map[string]any
		raw  string // the file's content instead of a genesis with kms
		want string
	}{
		{name: "root CA set", kms: map[string]any{"region": "eu-west-1", "key_id": prodKeyARN, "root_ca_pem": "-----BEGIN CERTIFICATE-----\n"}, want: "kms.root_ca_pem is set"},
		{name: "key in another region", kms: map[string]any{"region": "eu-central-1", "key_id": prodKeyARN}, want: "its region is not kms.region eu-central-1"},
		{name: "two accounts", kms: map[string]any{"region": "eu-west-1", "key_id": prodKeyARN,
			"additional_key_ids": []string{"arn:aws:kms:eu-west-1:777788889999:key/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fa"}}, want: "serves one account, 444455556666"},
		{name: "multi-Region key", kms: map[string]any{"region": "eu-west-1", "key_id": "arn:aws:kms:eu-west-1:444455556666:key/mrk-1234abcd12ab34cd56ef1234567890ab"}, want: "UUID ids only"},
		{name: "other partition", kms: map[string]any{"region": "us-gov-west-1", "key_id": "arn:aws-us-gov:kms:us-gov-west-1:444455556666:key/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"}, want: "aws partition only"},
		{name: "invalid genesis", raw: `{"format":1,"keys":[],"policy":{},"surprise":1}`, want: "--genesis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := productionGenesis(t, tt.kms)
			if tt.raw != "" {
				if err := os.WriteFile(path, []byte(tt.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			st, err := devstack.Start(t.Context(), devstack.Options{DataDir: dir, Listen: "127.0.0.1:0", Genesis: path, EnclaveBinary: "/nonexistent"})
			if err == nil {
				st.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to say %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, devstack.GenesisFile)); err == nil {
				t.Errorf("a refused genesis was written to the data directory")
			}
		})
	}
}

// TestDevStackProductionGenesisDataDir checks that a data directory holds
// either the dev genesis or a production one, never one after the other.
func TestDevStackProductionGenesisDataDir(t *testing.T) {
	path, _ := productionGenesis(t, map[string]any{"region": "eu-west-1", "key_id": prodKeyARN})

	devDir := t.TempDir() // holds a dev genesis
	if err := os.WriteFile(filepath.Join(devDir, devstack.GenesisFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := devstack.Start(t.Context(), devstack.Options{DataDir: devDir, Listen: "127.0.0.1:0", Genesis: path, EnclaveBinary: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "holds the dev genesis") {
		t.Fatalf("--genesis on a dev data directory: %v", err)
	}

	prodDir := t.TempDir() // ran a production genesis
	if err := os.WriteFile(filepath.Join(prodDir, devstack.ProductionGenesisFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = devstack.Start(t.Context(), devstack.Options{DataDir: prodDir, Listen: "127.0.0.1:0", EnclaveBinary: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "runs the production genesis") {
		t.Fatalf("dev on a production data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(prodDir, devstack.ClientKeyFile)); err == nil {
		t.Errorf("dev made a client key in a production data directory")
	}
}

// TestDevStackProductionGenesis runs a production genesis twice on one
// data directory: the seed is sealed under the key ARN the genesis names
// (in its account and region), no dev keys are made, the genesis is copied
// as given, and the second run unseals the same addresses.
func TestDevStackProductionGenesis(t *testing.T) {
	path, signer := productionGenesis(t, map[string]any{"region": "eu-west-1", "key_id": prodKeyARN})
	dir := t.TempDir()
	opts := devstack.Options{DataDir: dir, Listen: "127.0.0.1:0", Genesis: path, EnclaveBinary: enclaveBinary(t)}
	st, err := devstack.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	first := st.Keys
	if st.KMSKeyARN != prodKeyARN || st.Client != nil || st.ClientKeyPath != "" || st.Genesis != path {
		t.Errorf("stack: KMS key %q, client %v %q, genesis %q", st.KMSKeyARN, st.Client, st.ClientKeyPath, st.Genesis)
	}
	// A request stamped with the genesis's client signs.
	c, err := client.New(st.URL, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: eth("100000000000000000")})
	if _, err := c.SignTransaction(t.Context(), devstack.ExampleKeyID, unsigned); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{devstack.ClientKeyFile, "admin-1.pem", devstack.ApproverKeyFile(1)} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s made in a production data directory", f)
		}
	}
	orig, _ := os.ReadFile(path)
	copied, _ := os.ReadFile(filepath.Join(dir, devstack.ProductionGenesisFile))
	if string(orig) != string(copied) {
		t.Errorf("%s is not the genesis as given", devstack.ProductionGenesisFile)
	}
	state, err := os.ReadFile(filepath.Join(dir, devstack.KMSStateFile))
	if err != nil || !strings.Contains(string(state), `"account": "444455556666"`) || !strings.Contains(string(state), `"region": "eu-west-1"`) {
		t.Errorf("simulated KMS state is not the genesis key's account and region: %v\n%s", err, state)
	}

	st2, err := devstack.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if len(st2.Keys) != len(first) || st2.Keys[0].Address != first[0].Address {
		t.Fatalf("second run's keys %v, first run's %v", st2.Keys, first)
	}
}
