// Package js_test runs the JavaScript client's tests (clients/js, the npm
// package @nitrosign/client) from go test, so that `make test` covers it.
//
// # Why from Go
//
// The end-to-end tests need a dev stack with the real enclave binary, which
// package devstacktest starts; TestNode starts one and runs `node --test`
// against it. TestCrosscheck has the JavaScript implementation of the
// stamp, the request body and the approval digest checked by the Go
// packages that the enclave uses (stamp, api, api/request), both ways.
//
// # Skips
//
// Without node, or without clients/js/node_modules (`npm ci` installs it;
// `make test` does so), the tests skip with a hint, except when CI is set:
// then they fail, so that CI proves what it claims.
package js_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
	"github.com/nitrosign/nitrosign/stamp"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// nodeTimeout bounds a node run: a guard against a hung process, not an
// assertion about speed.
const nodeTimeout = 5 * time.Minute

// minNodeMajor is the oldest Node the package supports (package.json's
// engines).
const minNodeMajor = 20

// needNode returns node's path, or skips (fails under CI) with a hint when
// there is no node, or one older than minNodeMajor.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed (Node 20 or later with npm; .ci/run installs nodejs and npm with apt)")
	}
	out, err := exec.Command(node, "--version").Output()
	var major int
	if _, serr := fmt.Sscanf(string(out), "v%d.", &major); err != nil || serr != nil {
		t.Fatalf("node --version: %q: %v", out, err)
	}
	if major < minNodeMajor {
		missing(t, fmt.Sprintf("node %s is older than %d (Debian 12's nodejs is 18: install Node %d or later, such as from NodeSource)", strings.TrimSpace(string(out)), minNodeMajor, minNodeMajor))
	}
	return node
}

// needModules skips (fails under CI) unless clients/js/node_modules holds
// the test dependencies.
func needModules(t *testing.T) {
	t.Helper()
	for _, dep := range []string{"ethers", "viem"} {
		if _, err := os.Stat("node_modules/" + dep + "/package.json"); err != nil {
			missing(t, "clients/js/node_modules lacks "+dep+": run `npm ci --prefix clients/js` (make test does)")
		}
	}
}

func missing(t *testing.T, hint string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(hint + " (CI is set: not skipping)")
	}
	t.Skip(hint)
}

// runNode runs node with args in clients/js, with env added to the
// environment, and returns its standard output and standard error.
func runNode(t *testing.T, node string, env []string, stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// cleanEnv is the environment without the variables the node tests read,
// so that only what a test sets reaches them.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NITROSIGN_") && !strings.HasPrefix(kv, "NODE_OPTIONS=") {
			env = append(env, kv)
		}
	}
	return env
}

var tapCount = regexp.MustCompile(`(?m)^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$`)

// TestNode runs every node test of clients/js (unit and end-to-end) against
// a dev stack with the real enclave, and fails if any fails.
func TestNode(t *testing.T) {
	node := needNode(t)
	needModules(t)
	st := devstacktest.Start(t, t.TempDir())
	env := []string{
		"NITROSIGN_URL=" + st.URL,
		"NITROSIGN_CLIENT_KEY=" + st.ClientKeyPath,
		"NITROSIGN_DATA_DIR=" + st.DataDir,
	}
	stdout, stderr, err := runNode(t, node, env, nil, "--test", "--test-reporter=tap")
	counts := map[string]string{}
	for _, m := range tapCount.FindAllStringSubmatch(string(stdout), -1) {
		counts[m[1]] = m[2]
	}
	if err != nil || counts["fail"] != "0" || counts["cancelled"] != "0" || counts["pass"] == "" || counts["pass"] == "0" {
		t.Fatalf("node --test: %v (counts %v)\n--- stdout\n%s\n--- stderr\n%s", err, counts, stdout, stderr)
	}
	t.Logf("node --test: %s tests, %s passed, %s skipped", counts["tests"], counts["pass"], counts["skipped"])
}

// crossCase is one case of tools/crosscheck.mjs (see its header).
type crossCase struct {
	Op          string          `json:"op"`
	PEM         string          `json:"pem,omitempty"`
	Header      string          `json:"header,omitempty"`
	BodyHex     *string         `json:"body_hex,omitempty"`
	Text        string          `json:"text,omitempty"`
	Key         string          `json:"key,omitempty"`
	RequestID   string          `json:"request_id,omitempty"`
	TimestampMS int64           `json:"timestamp_ms,omitempty"`
	UnsignedHex *string         `json:"unsigned_hex,omitempty"`
	MessageHex  *string         `json:"message_hex,omitempty"`
	TypedData   json.RawMessage `json:"typed_data,omitempty"`
}

type crossResult struct {
	Header    string `json:"header"`
	Scheme    string `json:"scheme"`
	PublicKey string `json:"public_key"`
	Digest    string `json:"digest"`
	Compact   string `json:"compact"`
	BodyHex   string `json:"body_hex"`
	Error     string `json:"error"`
}

// crosscheck runs tools/crosscheck.mjs on cases and returns its results.
func crosscheck(t *testing.T, node string, cases []crossCase) []crossResult {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runNode(t, node, nil, in, "tools/crosscheck.mjs")
	if err != nil {
		t.Fatalf("node tools/crosscheck.mjs: %v\n%s", err, stderr)
	}
	var out []crossResult
	if err := json.Unmarshal(stdout, &out); err != nil || len(out) != len(cases) {
		t.Fatalf("crosscheck.mjs answered %d results for %d cases (%v):\n%s", len(out), len(cases), err, stdout)
	}
	return out
}

func hexPtr(b []byte) *string {
	s := hex.EncodeToString(b)
	return &s
}

// fixedKeys returns an Ed25519 and a P-256 key made from fixed bytes, as
// PKCS #8 PEM and as Go stamp signers.
func fixedKeys(t *testing.T) (pems [2]string, signers [2]stamp.Signer) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	edKey := ed25519.NewKeyFromSeed(seed)
	scalar := bytes.Repeat([]byte{0x42}, 32)
	p256Key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []any{edKey, p256Key} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pems[i] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if signers[i], err = stamp.ParseSignerPEM([]byte(pems[i])); err != nil {
			t.Fatal(err)
		}
	}
	return pems, signers
}

// TestCrosscheck checks the JavaScript stamps, bodies, compact form and
// approval digests with the Go packages the enclave uses, and the
// JavaScript stamp parser with Go-made stamps.
func TestCrosscheck(t *testing.T) {
	node := needNode(t)
	pems, signers := fixedKeys(t)
	body := []byte(`{"request_id":"5f0c9a1e2b7d4c3a","timestamp_ms":1795261861422,"key":"hot-0","eth_personal_message":{"message":"0x68656c6c6f"}}`)
	other := bytes.Replace(body, []byte("hot-0"), []byte("hot-1"), 1)

	t.Run("JS stamps verify with Go's stamp package", func(t *testing.T) {
		var cases []crossCase
		for _, p := range pems {
			cases = append(cases, crossCase{Op: "stamp", PEM: p, BodyHex: hexPtr(body)})
		}
		for i, r := range crosscheck(t, node, cases) {
			if r.Error != "" {
				t.Fatalf("%s: %s", signers[i].PublicKey().Scheme, r.Error)
			}
			got, err := stamp.Verify(r.Header, body)
			if err != nil {
				t.Fatalf("%s: Go refuses the JS stamp %s: %v", signers[i].PublicKey().Scheme, r.Header, err)
			}
			if !got.Equal(signers[i].PublicKey()) {
				t.Errorf("the JS stamp carries key %s, want %s", got, signers[i].PublicKey())
			}
			if _, err := stamp.Verify(r.Header, other); err == nil {
				t.Errorf("%s: the JS stamp verifies over another body", got.Scheme)
			}
			if got.Scheme == stamp.Ed25519 {
				want, err := stamp.Create(signers[i], body)
				if err != nil {
					t.Fatal(err)
				}
				if r.Header != want {
					t.Errorf("ed25519 (deterministic): JS header\n%s\nGo header\n%s", r.Header, want)
				}
			}
		}
	})

	t.Run("Go stamps verify with the JS parser", func(t *testing.T) {
		var cases []crossCase
		for _, s := range signers {
			h, err := stamp.Create(s, body)
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, crossCase{Op: "verify", Header: h, BodyHex: hexPtr(body)}, crossCase{Op: "verify", Header: h, BodyHex: hexPtr(other)})
		}
		res := crosscheck(t, node, cases)
		for i, s := range signers {
			ok, bad := res[2*i], res[2*i+1]
			want := s.PublicKey()
			if ok.Error != "" || ok.Scheme != string(want.Scheme) || ok.PublicKey != hex.EncodeToString(want.Key) {
				t.Errorf("%s: JS reads the Go stamp as %+v, want %s", want.Scheme, ok, want)
			}
			if !strings.Contains(bad.Error, "does not verify") {
				t.Errorf("%s: JS over another body: %+v, want a signature that does not verify", want.Scheme, bad)
			}
		}
	})

	compactCases := []string{
		`{"a":1}`,
		" {\n\t\"request_id\" : \"r 1\" ,\r\n \"x\": [ 1, 2 , {\"y\" : \"\\\" z\\\\\" } ] } ",
		`{"s":"\u00e9\ud83d\ude00 \t","n":1.5e+300,"t":true,"f":false,"z":null}`,
		`{"k":"é 😀"}`,
	}
	t.Run("compact form and approval digest", func(t *testing.T) {
		var cases []crossCase
		for _, c := range compactCases {
			cases = append(cases, crossCase{Op: "compact", Text: c}, crossCase{Op: "digest", BodyHex: hexPtr([]byte(c))})
		}
		res := crosscheck(t, node, cases)
		for i, c := range compactCases {
			want, err := api.CompactRequest([]byte(c))
			if err != nil {
				t.Fatal(err)
			}
			if res[2*i].Compact != string(want) {
				t.Errorf("compact(%q): JS %q, Go %q (%s)", c, res[2*i].Compact, want, res[2*i].Error)
			}
			d := api.ApprovalDigest([]byte(c))
			if res[2*i+1].Digest != "0x"+hex.EncodeToString(d[:]) {
				t.Errorf("approval digest of %q: JS %s, Go 0x%x", c, res[2*i+1].Digest, d)
			}
		}
	})

	t.Run("JS bodies decode with api/request", func(t *testing.T) {
		unsigned := devstacktest.Tx(t, devstacktest.TxOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: devstacktest.Int("1000")})
		padded := strings.ReplaceAll(devstacktest.MailJSON, "{\"", "{\n\t\"") // whitespace outside strings only
		tests := []struct {
			name string
			c    crossCase
		}{
			{"transaction", crossCase{UnsignedHex: hexPtr(unsigned)}},
			{"personal message", crossCase{MessageHex: hexPtr([]byte("hello, ünïcode"))}},
			{"typed data", crossCase{TypedData: mustJSON(t, padded)}},
		}
		var cases []crossCase
		for i, tc := range tests {
			c := tc.c
			c.Op, c.Key, c.RequestID, c.TimestampMS = "body", "hot-0", fmt.Sprintf("id-%d", i), 1795261861422
			cases = append(cases, c)
		}
		for i, r := range crosscheck(t, node, cases) {
			tc := tests[i]
			if r.Error != "" {
				t.Fatalf("%s: %s", tc.name, r.Error)
			}
			b, err := hex.DecodeString(r.BodyHex)
			if err != nil {
				t.Fatal(err)
			}
			req, err := request.Decode(b)
			if err != nil {
				t.Fatalf("%s: api/request refuses the JS body %s: %v", tc.name, b, err)
			}
			if parsed := req.Body; parsed.RequestID != cases[i].RequestID || parsed.TimestampMS != cases[i].TimestampMS || parsed.Key != "hot-0" {
				t.Errorf("%s: decoded %+v", tc.name, parsed)
			}
			switch {
			case req.Transaction != nil:
				if !bytes.Equal(req.Transaction.Unsigned, unsigned) {
					t.Errorf("transaction: %x, want %x", req.Transaction.Unsigned, unsigned)
				}
			case req.PersonalMessage != nil:
				if string(req.PersonalMessage.Message) != "hello, ünïcode" {
					t.Errorf("message: %q", req.PersonalMessage.Message)
				}
			case req.TypedData != nil:
				compact, _ := api.CompactRequest([]byte(padded))
				if !bytes.Contains(b, compact) {
					t.Errorf("typed data: the body %s does not carry the document's compact form", b)
				}
				if n := req.TypedData.Domain.Name; n == nil || *n != devstack.ExampleMailName {
					t.Errorf("typed data: domain %+v", req.TypedData.Domain)
				}
			default:
				t.Errorf("%s: no payload decoded", tc.name)
			}
		}
	})
}

func mustJSON(t *testing.T, s string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
