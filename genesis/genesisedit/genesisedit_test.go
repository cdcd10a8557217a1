package genesisedit_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/genesis/genesisedit"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

const (
	testARN    = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testARN2   = "arn:aws:kms:us-east-1:111122223333:key/5678abcd-12ab-34cd-56ef-1234567890ab"
	testRegion = "us-east-1"
)

// edKey returns a fixed Ed25519 key, different for each i.
func edKey(i byte) (ed25519.PrivateKey, stamp.PublicKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{i}, ed25519.SeedSize))
	return priv, stamp.PublicKey{Scheme: stamp.Ed25519, Key: priv.Public().(ed25519.PublicKey)}
}

func pub(i byte) stamp.PublicKey { _, p := edKey(i); return p }

func newDraft(t *testing.T) *genesisedit.Draft {
	t.Helper()
	d, err := genesisedit.New(genesisedit.Options{KMSKeyARN: testARN, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readyDraft is a production-ready draft with no warnings: three admins,
// quorum 2, one client, two approvers with quorum 2.
func readyDraft(t *testing.T) *genesisedit.Draft {
	t.Helper()
	d := newDraft(t)
	must(t, d.AddClient("wallet", pub(1), []string{genesisedit.DefaultKeyID}))
	for i, n := range []string{"alice", "bob", "carol"} {
		must(t, d.AddAdmin(n, pub(byte(10+i))))
	}
	must(t, d.SetAdminQuorum(2, nil))
	above := []stateful.ApprovalThreshold{{ChainID: 1, Asset: "native", Amount: "1000000000000000000"}}
	must(t, d.AddApprover("ann", pub(20), []string{genesisedit.DefaultKeyID}, above))
	must(t, d.AddApprover("ben", pub(21), []string{genesisedit.DefaultKeyID}, nil))
	must(t, d.SetApprovalQuorum(2, nil))
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func marshal(t *testing.T, d *genesisedit.Draft) []byte {
	t.Helper()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rules(r *genesisedit.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, string(f.Severity)+":"+f.Rule)
	}
	slices.Sort(out)
	return out
}

// TestSession walks a production session: the skeleton is valid but not
// ready, and after clients, admins, quorum and approvers it parses with
// the enclave's parser and checks clean.
func TestSession(t *testing.T) {
	d := newDraft(t)
	r, err := genesisedit.Check(marshal(t, d))
	must(t, err)
	if got, want := rules(r), []string{"problem:admins_missing", "problem:clients_missing"}; !slices.Equal(got, want) {
		t.Fatalf("skeleton: findings %q, want %q", got, want)
	}
	b := marshal(t, readyDraft(t))
	g, pol, err := genesis.Parse(b)
	must(t, err)
	if g.KMS == nil || g.KMS.KeyID != testARN || g.KMS.Region != testRegion || g.KMS.RootCAPEM != "" {
		t.Errorf("kms section %+v", g.KMS)
	}
	if g.TimeLock() != genesis.DefaultTimeLock || g.Governance == nil {
		t.Errorf("time lock %v (explicit %v), want %v written out", g.TimeLock(), g.Governance != nil, genesis.DefaultTimeLock)
	}
	if set := g.AdminSet(); set == nil || set.Threshold(admin.KindPolicyChange) != 2 {
		t.Errorf("admin set %+v", set)
	}
	if kr, _ := pol.KeyRules(genesisedit.DefaultKeyID); kr.Approvals == nil || kr.Approvals.Quorum != 2 || len(kr.Approvals.Approvers) != 2 || kr.Freeze == nil {
		t.Errorf("key rules %+v", kr)
	}
	r, err = genesisedit.Check(b)
	must(t, err)
	if len(r.Findings) != 0 {
		t.Fatalf("ready draft: findings %q", rules(r))
	}
	// Load and Marshal are inverse on what Marshal writes.
	d2, err := genesisedit.Load(b)
	must(t, err)
	if b2 := marshal(t, d2); !bytes.Equal(b, b2) {
		t.Fatalf("Load then Marshal changed the file:\n%s\n---\n%s", b, b2)
	}
}

// TestLoadKeepsHashes: loading and writing back the dev stack's genesis
// keeps its policy (same hash) and its parsed meaning.
func TestLoadKeepsHashes(t *testing.T) {
	b, err := devstack.ExampleGenesis(pub(1), pub(2), pub(3))
	must(t, err)
	h1, err := genesisedit.Hash(b)
	must(t, err)
	d, err := genesisedit.Load(b)
	must(t, err)
	h2, err := genesisedit.Hash(marshal(t, d))
	must(t, err)
	if h1.Policy != h2.Policy || h1.PolicyVersion != h2.PolicyVersion {
		t.Fatalf("policy hash %x → %x", h1.Policy, h2.Policy)
	}
}

// TestEditsRefused: each edit that would make an invalid configuration is
// refused, by the edit or by the parser in Marshal.
func TestEditsRefused(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(d *genesisedit.Draft) error
		invalid bool   // refused by genesis.Parse (ErrInvalid)
		want    string // in the error
	}{
		{"client of a key without a rule", func(d *genesisedit.Draft) error {
			return d.AddClient("x", pub(30), []string{"hot-9"})
		}, true, `no rules for key "hot-9"`},
		{"client twice", func(d *genesisedit.Draft) error {
			return d.AddClient("wallet", pub(30), []string{"hot-0"})
		}, false, `client "wallet" exists`},
		{"client with an admin's name is fine, with a client's key not", func(d *genesisedit.Draft) error {
			return d.AddClient("other", pub(1), []string{"hot-0"})
		}, true, "public key registered twice"},
		{"client without keys", func(d *genesisedit.Draft) error {
			return d.AddClient("x", pub(30), nil)
		}, false, "needs the signing keys"},
		{"admin quorum above members", func(d *genesisedit.Draft) error {
			return d.SetAdminQuorum(4, nil)
		}, true, "quorum 4: want 1 to 3"},
		{"admin threshold of a cancel kind", func(d *genesisedit.Draft) error {
			return d.SetAdminQuorum(2, map[admin.Kind]int{admin.KindPolicyCancel: 2})
		}, true, "cancel kind"},
		{"admin twice", func(d *genesisedit.Draft) error {
			return d.AddAdmin("alice", pub(31))
		}, false, `admin "alice" exists`},
		{"admin key twice", func(d *genesisedit.Draft) error {
			return d.AddAdmin("dave", pub(10))
		}, true, "same key as alice"},
		{"remove an admin below the quorum", func(d *genesisedit.Draft) error {
			must(t, d.RemoveAdmin("alice"))
			return d.RemoveAdmin("bob")
		}, true, "quorum 2: want 1 to 1"},
		{"approver holding a client key", func(d *genesisedit.Draft) error {
			return d.AddApprover("cy", pub(1), []string{"hot-0"}, nil)
		}, true, "approvers and clients must hold distinct keys"},
		{"approver without thresholds on a key without approvals", func(d *genesisedit.Draft) error {
			must(t, d.AddKey("hot-1", "m/44'/60'/0'/0/1", []uint64{1}))
			return d.AddApprover("cy", pub(32), []string{"hot-1"}, nil)
		}, false, "has no approval rule"},
		{"last approver removed", func(d *genesisedit.Draft) error {
			must(t, d.SetApprovalQuorum(1, nil))
			must(t, d.RemoveApprover("ann", nil))
			return d.RemoveApprover("ben", nil)
		}, true, "approvers: want 1 to 64"},
		{"approvals quorum above approvers", func(d *genesisedit.Draft) error {
			return d.SetApprovalQuorum(3, nil)
		}, true, "quorum: want 1 to 2"},
		{"key path twice", func(d *genesisedit.Draft) error {
			return d.AddKey("hot-1", genesisedit.DefaultKeyPath, []uint64{1})
		}, true, "listed twice"},
		{"key without chains", func(d *genesisedit.Draft) error {
			return d.AddKey("hot-1", "m/44'/60'/0'/0/1", nil)
		}, false, "name its chains"},
		{"bad key path", func(d *genesisedit.Draft) error {
			return d.AddKey("hot-1", "m/x", []uint64{1})
		}, true, "keys[1].path"},
		{"remove a key a client uses", func(d *genesisedit.Draft) error {
			return d.RemoveKey("hot-0")
		}, true, "keys: want 1 to"},
		{"time lock too long", func(d *genesisedit.Draft) error {
			d.SetTimeLock(721 * time.Hour)
			return nil
		}, true, "governance.time_lock"},
		{"kms alias", func(d *genesisedit.Draft) error {
			d.KMS.KeyID = "alias/seal"
			return nil
		}, true, "aliases are refused"},
		{"unknown client", func(d *genesisedit.Draft) error {
			return d.RemoveClient("nobody")
		}, false, `no client "nobody"`},
		{"unknown approver", func(d *genesisedit.Draft) error {
			return d.RemoveApprover("nobody", nil)
		}, false, `no approver "nobody"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := readyDraft(t)
			err := tt.edit(d)
			if err == nil {
				_, err = d.Marshal()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, genesisedit.ErrInvalid) != tt.invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q (invalid %v), want %q (invalid %v)", err, errors.Is(err, genesisedit.ErrInvalid), tt.want, tt.invalid)
			}
		})
	}
}

// TestCheckFindings triggers each rule of Check on an otherwise clean
// configuration.
func TestCheckFindings(t *testing.T) {
	tokenRule := func(max string) []policy.ChainRule {
		return []policy.ChainRule{{ChainID: 1, Tokens: []policy.TokenRule{{
			Address: devstack.ExampleUSDC, Label: "USDC",
			Spenders: []policy.Spender{{Address: devstack.ExampleDestinationA, Label: "router", MaxAllowance: max}},
		}}}}
	}
	tests := []struct {
		name string
		edit func(d *genesisedit.Draft)
		want []string
	}{
		{"clean", func(d *genesisedit.Draft) {}, nil},
		{"no kms", func(d *genesisedit.Draft) { d.KMS = nil }, []string{"problem:kms_missing"}},
		{"dev kms roots", func(d *genesisedit.Draft) { d.KMS.RootCAPEM = "-----BEGIN CERTIFICATE-----" }, []string{"problem:kms_root_ca"}},
		{"no admins", func(d *genesisedit.Draft) { d.Admins = nil }, []string{"problem:admins_missing"}},
		{"no clients", func(d *genesisedit.Draft) { d.Policy.Clients = nil }, []string{"problem:clients_missing"}},
		{"admin quorum 1", func(d *genesisedit.Draft) { d.Admins.Quorum = 1 }, []string{"warning:admin_quorum"}},
		{"admin quorum of all", func(d *genesisedit.Draft) { d.Admins.Quorum = 3 }, []string{"warning:admin_no_spare"}},
		{"approvals quorum 1", func(d *genesisedit.Draft) { d.Policy.Keys[0].Approvals.Quorum = 1 }, []string{"warning:approval_quorum"}},
		{"no time lock", func(d *genesisedit.Draft) { d.SetTimeLock(0) }, []string{"warning:time_lock"}},
		{"short time lock", func(d *genesisedit.Draft) { d.SetTimeLock(time.Hour) }, []string{"warning:time_lock"}},
		{"default time lock", func(d *genesisedit.Draft) { d.Governance = nil }, nil},
		{"long time lock", func(d *genesisedit.Draft) { d.SetTimeLock(48 * time.Hour) }, nil},
		{"raw digest", func(d *genesisedit.Draft) { d.Policy.Keys[0].RawDigest = true }, []string{"warning:raw_digest"}},
		{"unlimited grants", func(d *genesisedit.Draft) {
			d.Policy.Keys[0].ChainRules = tokenRule("unlimited")
			d.Policy.Keys[0].Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: "1"}}
		}, []string{"warning:unlimited_grants"}},
		{"capped grants with a limit", func(d *genesisedit.Draft) {
			d.Policy.Keys[0].ChainRules = tokenRule("1000")
			d.Policy.Keys[0].Limits = []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: "1"}}
		}, nil},
		{"value without limits", func(d *genesisedit.Draft) {
			d.Policy.Keys[0].NativeTransfers = &policy.NativeTransfers{
				Destinations:         []policy.Destination{{Address: devstack.ExampleDestinationA, Label: "a"}},
				MaxPerTransactionWei: "1",
			}
		}, []string{"warning:no_limits"}},
		{"value with velocity", func(d *genesisedit.Draft) {
			d.Policy.Keys[0].NativeTransfers = &policy.NativeTransfers{
				Destinations:         []policy.Destination{{Address: devstack.ExampleDestinationA, Label: "a"}},
				MaxPerTransactionWei: "1",
			}
			d.Policy.Keys[0].Velocity = &stateful.VelocityRule{Window: "1h", MaxTransactions: 10}
		}, nil},
		{"no freeze", func(d *genesisedit.Draft) { d.Policy.Keys[0].Freeze = nil }, []string{"warning:no_freeze"}},
		{"client holds an admin key", func(d *genesisedit.Draft) {
			d.Policy.Clients[0].PublicKey = hex.EncodeToString(pub(10).Key)
		}, []string{"warning:shared_key"}},
		{"approver holds an admin key", func(d *genesisedit.Draft) {
			d.Policy.Keys[0].Approvals.Approvers[0].PublicKey = hex.EncodeToString(pub(11).Key)
		}, []string{"warning:shared_key"}},
		{"kms endpoint", func(d *genesisedit.Draft) { d.KMS.Endpoint = "https://kms-fips.us-east-1.amazonaws.com" }, []string{"warning:kms_endpoint"}},
		{"kms additional key", func(d *genesisedit.Draft) { d.KMS.AdditionalKeyIDs = []string{testARN2} }, []string{"warning:kms_additional_key"}},
		{"unused key", func(d *genesisedit.Draft) { must(t, d.AddKey("cold-0", "m/44'/60'/1'/0/0", []uint64{1})) }, []string{"warning:unused_key"}},
	}
	triggered := map[string]bool{}
	for _, tt := range tests {
		for _, w := range tt.want {
			_, rule, _ := strings.Cut(w, ":")
			triggered[rule] = true
		}
	}
	for _, rule := range genesisedit.Rules() {
		if !triggered[rule] {
			t.Errorf("no case triggers rule %s", rule)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := readyDraft(t)
			tt.edit(d)
			r, err := genesisedit.Check(marshal(t, d))
			must(t, err)
			if got := rules(r); !slices.Equal(got, tt.want) {
				t.Fatalf("findings %q, want %q\n%v", got, tt.want, r.Findings)
			}
			for _, f := range r.Findings {
				if f.Message == "" || !strings.Contains(f.String(), f.Rule) {
					t.Errorf("finding %q", f)
				}
			}
		})
	}
}

func TestCheckInvalid(t *testing.T) {
	b := marshal(t, readyDraft(t))
	bad := bytes.Replace(b, []byte(`"format": 1`), []byte(`"format": 2`), 1)
	if _, err := genesisedit.Check(bad); err == nil || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("Check of format 2: %v", err)
	}
	extra := bytes.Replace(b, []byte(`"format": 1`), []byte(`"format": 1, "debug": true`), 1)
	if _, err := genesisedit.Check(extra); err == nil {
		t.Fatal("Check accepted an unknown field")
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {24 * time.Hour, "24h"}, {90 * time.Minute, "1h30m"}, {90 * time.Second, "1m30s"},
		{time.Hour + 1500*time.Millisecond, "1h1.5s"}, {720 * time.Hour, "720h"},
	}
	for _, tt := range tests {
		got := genesisedit.FormatDuration(tt.in)
		if got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if d, err := time.ParseDuration(got); err != nil || d != tt.in {
			t.Errorf("%q parses to %v, %v", got, d, err)
		}
	}
}

func TestParseThreshold(t *testing.T) {
	th, err := genesisedit.ParseThreshold("137:native:5")
	if err != nil || th != (stateful.ApprovalThreshold{ChainID: 137, Asset: "native", Amount: "5"}) {
		t.Fatalf("%+v, %v", th, err)
	}
	for _, s := range []string{"", "1:native", "x:native:1", "1:native:1:2", "-1:native:1"} {
		if _, err := genesisedit.ParseThreshold(s); err == nil {
			t.Errorf("ParseThreshold(%q) accepted", s)
		}
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// keyFiles returns the accepted key files: SPKI and PKCS #8, of Ed25519
// and P-256, with the public key each names.
func keyFiles(t testing.TB) map[string]struct {
	file []byte
	want stamp.PublicKey
} {
	edPriv, edPub := edKey(7)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := stamp.NewP256Signer(p256)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]struct {
		file []byte
		want stamp.PublicKey
	}{}
	for name, k := range map[string]struct {
		priv, pub any
		want      stamp.PublicKey
	}{"ed25519": {edPriv, edPriv.Public(), edPub}, "p256": {p256, &p256.PublicKey, ps.PublicKey()}} {
		der, err := x509.MarshalPKIXPublicKey(k.pub)
		if err != nil {
			t.Fatal(err)
		}
		out[name+"-spki"] = struct {
			file []byte
			want stamp.PublicKey
		}{pemBlock("PUBLIC KEY", der), k.want}
		der, err = x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		out[name+"-pkcs8"] = struct {
			file []byte
			want stamp.PublicKey
		}{pemBlock("PRIVATE KEY", der), k.want}
	}
	return out
}

func TestParsePublicKeyPEM(t *testing.T) {
	for name, kf := range keyFiles(t) {
		t.Run(name, func(t *testing.T) {
			got, err := genesisedit.ParsePublicKeyPEM(kf.file)
			if err != nil || !got.Equal(kf.want) {
				t.Fatalf("got %v, %v; want %v", got, err, kf.want)
			}
			// Whitespace around the block is fine.
			if got, err := genesisedit.ParsePublicKeyPEM(append(append([]byte("\n"), kf.file...), "\n\n"...)); err != nil || !got.Equal(kf.want) {
				t.Fatalf("with whitespace: %v, %v", got, err)
			}
			if *update && name == "p256-spki" {
				fuzzseed.Write(t, "FuzzParsePublicKeyPEM", "table-"+name, kf.file)
			}
		})
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // a refused key type, in a test
	must(t, err)
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	must(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(t, err)
	p384DER, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	must(t, err)
	ecDER, err := x509.MarshalECPrivateKey(p384)
	must(t, err)
	edFile := keyFiles(t)["ed25519-spki"].file
	small := make([]byte, 32) // the identity point's encoding is 1, 0, ..., 0: small order
	small[0] = 1
	smallDER, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(small))
	must(t, err)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"trailing data", append(slices.Clone(edFile), "x"...), "data after"},
		{"two blocks", append(slices.Clone(edFile), edFile...), "data after"},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), "headers"},
		{"legacy EC private key", pemBlock("EC PRIVATE KEY", ecDER), "block type"},
		{"certificate", pemBlock("CERTIFICATE", []byte{1, 2}), "block type"},
		{"rsa", pemBlock("PUBLIC KEY", rsaDER), "unsupported key type"},
		{"p384", pemBlock("PUBLIC KEY", p384DER), "want P-256"},
		{"garbage spki", pemBlock("PUBLIC KEY", []byte{0x30, 0x03, 1, 2, 3}), "not a valid SPKI"},
		{"garbage pkcs8", pemBlock("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), "not a valid PKCS #8"},
		{"small-order ed25519", pemBlock("PUBLIC KEY", smallDER), "public key"},
		{"too large", bytes.Repeat([]byte(" "), genesisedit.MaxKeyFileSize+1), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if *update && len(tt.in) <= genesisedit.MaxKeyFileSize {
				fuzzseed.Write(t, "FuzzParsePublicKeyPEM", "table-"+tt.name, tt.in)
			}
			_, err := genesisedit.ParsePublicKeyPEM(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzParsePublicKeyPEM: any input is refused with an error or gives a
// key that the policy accepts for a client, and never panics.
func FuzzParsePublicKeyPEM(f *testing.F) {
	for _, kf := range keyFiles(f) {
		f.Add(kf.file)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := genesisedit.ParsePublicKeyPEM(b)
		if err != nil {
			return
		}
		if _, err := stamp.ParsePublicKey(k.Scheme, hex.EncodeToString(k.Key)); err != nil {
			t.Fatalf("accepted a key the policy refuses: %v", err)
		}
	})
}

// TestShowDevExample checks the summary of the dev stack's genesis, which
// uses most of the policy (tokens, limits, typed data, approvals), against
// testdata/show-dev.golden (-update rewrites it).
func TestShowDevExample(t *testing.T) {
	b, err := devstack.ExampleGenesis(pub(1), pub(2), pub(3))
	must(t, err)
	var out bytes.Buffer
	must(t, genesisedit.Show(&out, b))
	golden := "testdata/show-dev.golden"
	if *update {
		must(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	must(t, err)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("Show:\n%s\nwant (%s):\n%s", out.String(), golden, want)
	}
}

// TestHashMatchesEnclave cross-checks Hash with the enclave itself: the
// policy hash and version that `genesis hash` prints are the ones an
// enclave started from the file attests.
func TestHashMatchesEnclave(t *testing.T) {
	d := readyDraft(t)
	d.KMS = nil // an ephemeral enclave needs no KMS client
	dev, err := devstack.ExampleGenesis(pub(1), pub(2), pub(3))
	must(t, err)
	for name, b := range map[string][]byte{"tool-written": marshal(t, d), "dev stack": dev} {
		t.Run(name, func(t *testing.T) {
			h, err := genesisedit.Hash(b)
			must(t, err)
			e, err := enclave.New(enclave.Config{Genesis: b})
			must(t, err)
			ud := e.UserData()
			if ud.PolicyHash != h.Policy || ud.PolicyVersion != h.PolicyVersion {
				t.Fatalf("enclave attests policy %x version %d; genesis hash printed %x version %d", ud.PolicyHash, ud.PolicyVersion, h.Policy, h.PolicyVersion)
			}
		})
	}
}
