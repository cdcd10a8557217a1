package devstack_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hf/nitrite"
	"golang.org/x/crypto/sha3"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
	"github.com/nitrosign/nitrosign/internal/dirlock"
	"github.com/nitrosign/nitrosign/stamp"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// The helpers of these tests, shared with crosscheck/devstack's.
var (
	enclaveBinary = devstacktest.EnclaveBinary
	startStack    = devstacktest.Start
	eip1559       = devstacktest.Tx
	eth           = devstacktest.Int
)

type txOpts = devstacktest.TxOpts

// TestDevStackSignsEndToEnd runs the real enclave binary as its own process
// over the vsock simulator, signs through the host's HTTP API, and checks
// the result (crosscheck/devstack checks it with go-ethereum too).
func TestDevStackSignsEndToEnd(t *testing.T) {
	st := startStack(t, t.TempDir())
	if st.EnclavePID == os.Getpid() || st.EnclavePID <= 0 {
		t.Fatalf("enclave pid %d: not a process of its own", st.EnclavePID)
	}
	checkIsolation(t, st)
	devstacktest.SignTransactions(t, st, ownVerifier{})
}

// ownVerifier checks the dev stack's answers with nitrosign's own packages
// (crosscheck/devstack checks the same flows with go-ethereum).
type ownVerifier struct{}

// CheckTransaction checks the answer to a transaction signing request: the
// digest is the Keccak-256 of the unsigned transaction, the signature
// recovers the key's address, the signed transaction holds the unsigned
// one's fields and the signature's values, and its hash is the transaction
// hash given.
func (ownVerifier) CheckTransaction(t *testing.T, resp *api.SignResponse, wantFrom string, unsigned []byte, chainID uint64) {
	t.Helper()
	if resp.From != wantFrom {
		t.Errorf("from = %s, want %s", resp.From, wantFrom)
	}
	tx, err := ethtx.DecodeUnsigned(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if tx.ChainID.Uint64() != chainID {
		t.Fatalf("test setup: chain id %v, want %d", tx.ChainID, chainID)
	}
	kh := sha3.NewLegacyKeccak256()
	kh.Write(unsigned)
	digest := [32]byte(kh.Sum(nil))
	if resp.Digest != "0x"+hex.EncodeToString(digest[:]) {
		t.Errorf("digest = %s, want keccak(unsigned) 0x%x", resp.Digest, digest)
	}
	sigBytes, err := hex.DecodeString(strings.TrimPrefix(resp.Signature, "0x"))
	if err != nil || len(sigBytes) != 65 {
		t.Fatalf("signature %s: %d bytes, %v", resp.Signature, len(sigBytes), err)
	}
	sig := ethtx.Signature(sigBytes)
	if from, err := ethtx.RecoverAddress(digest, sig); err != nil || from.Hex() != wantFrom {
		t.Errorf("the signature recovers %s, %v; the enclave's address is %s", from.Hex(), err, wantFrom)
	}
	signed, err := hex.DecodeString(strings.TrimPrefix(resp.SignedTransaction, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	if want := tx.EncodeSigned(sig); !bytes.Equal(signed, want) {
		t.Errorf("signed transaction\n%x\nwant the unsigned one with the signature\n%x", signed, want)
	}
	if got := ethtx.TransactionHash(signed); resp.TransactionHash != "0x"+hex.EncodeToString(got[:]) {
		t.Errorf("transaction_hash = %s, want 0x%x", resp.TransactionHash, got)
	}
}

func (ownVerifier) PersonalDigest(t *testing.T, msg []byte) [32]byte { return ethmsg.PersonalHash(msg) }

// TypedDataDigest returns ethmsg's digest of doc, which for the Mail
// example must be the one the EIP-712 specification gives.
func (ownVerifier) TypedDataDigest(t *testing.T, doc []byte) [32]byte {
	t.Helper()
	td, err := ethmsg.ParseTypedData(doc)
	if err != nil {
		t.Fatal(err)
	}
	h := td.Hash()
	if string(doc) == devstacktest.MailJSON {
		if got := hex.EncodeToString(h[:]); got != "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2" {
			t.Fatalf("digest of the Mail example %s, the EIP-712 specification gives be609aee…", got)
		}
	}
	return h
}

func (ownVerifier) Recover(t *testing.T, digest [32]byte, sig []byte) (ethtx.Address, error) {
	return ethtx.RecoverAddress(digest, ethtx.Signature(sig))
}

// TestDevStackRefusals checks that every kind of refusal reaches the client
// with its status, code and rule.
func TestDevStackRefusals(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: eth("100000000000000000")}
	// The EIP-155 specification's example payload (chain 1, to 0x3535…35).
	legacy, _ := hex.DecodeString("ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080")
	transfer := func(to string, amount int64) []byte {
		a, _ := ethtx.ParseAddress(to)
		b := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, make([]byte, 12)...)
		b = append(b, a[:]...)
		return append(b, big.NewInt(amount).FillBytes(make([]byte, 32))...)
	}

	for _, tc := range []struct {
		name     string
		key      string
		unsigned []byte
		status   int
		code     string
		rule     string
	}{
		{"over the per-transaction limit", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: eth("1000000000000000001")}), 403, refusal.CodePolicyDenied, "max_per_transaction"},
		{"destination not allowlisted", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: "0x3333333333333333333333333333333333333333", Value: big.NewInt(1)}), 403, refusal.CodePolicyDenied, "destinations"},
		{"chain not allowed", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 5, To: devstack.ExampleDestinationA, Value: big.NewInt(1)}), 403, refusal.CodePolicyDenied, "chains"},
		{"contract creation", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, Value: big.NewInt(0), Data: []byte{0x60, 0x00}}), 403, refusal.CodePolicyDenied, "contract_creation"},
		{"USDC transfer to a recipient not allowlisted", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleUSDC, Value: big.NewInt(0), Data: transfer("0x3333333333333333333333333333333333333333", 1e6)}), 403, refusal.CodePolicyDenied, "destinations"},
		{"USDC transfer over 1,000 USDC", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleUSDC, Value: big.NewInt(0), Data: transfer(devstack.ExampleDestinationA, 1_000_000_001)}), 403, refusal.CodePolicyDenied, "max_per_transaction"},
		{"USDC approve (no allowance grants)", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleUSDC, Value: big.NewInt(0), Data: append([]byte{0x09, 0x5e, 0xa7, 0xb3}, transfer(devstack.ExampleDestinationA, 1)[4:]...)}), 403, refusal.CodePolicyDenied, "allowance_grants"},
		{"ERC-20 transfer of a token not allowlisted", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: "0x3333333333333333333333333333333333333333", Value: big.NewInt(0), Data: transfer(devstack.ExampleDestinationA, 1e6)}), 403, refusal.CodePolicyDenied, "calldata"},
		{"USDC transfer on Sepolia (no token rules there)", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 11155111, To: devstack.ExampleUSDC, Value: big.NewInt(0), Data: transfer(devstack.ExampleDestinationA, 1e6)}), 403, refusal.CodePolicyDenied, "calldata"},
		{"truncated calldata", devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: big.NewInt(0), Data: []byte{0xa9, 0x05, 0x9c, 0xbb}}), 400, refusal.CodeBadRequest, ""},
		{"legacy transaction to a destination not allowlisted", devstack.ExampleKeyID, legacy, 403, refusal.CodePolicyDenied, "destinations"},
		{"unknown transaction type", devstack.ExampleKeyID, []byte{0x05, 0xc0}, 400, refusal.CodeUnsupportedTransactionType, ""},
		{"malformed transaction", devstack.ExampleKeyID, append(eip1559(t, ok), 0x00), 400, refusal.CodeBadRequest, ""},
		{"unknown key id", "cold-9", eip1559(t, ok), 404, refusal.CodeUnknownKey, ""},
		{"unknown key address", "0x000000000000000000000000000000000000dEaD", eip1559(t, ok), 404, refusal.CodeUnknownKey, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SignTransaction(ctx, tc.key, tc.unsigned)
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if ae.Status != tc.status || ae.Code != tc.code || ae.Rule != tc.rule {
				t.Fatalf("got %d %s rule %q (%s), want %d %s rule %q", ae.Status, ae.Code, ae.Rule, ae.Message, tc.status, tc.code, tc.rule)
			}
			if ae.Message == "" {
				t.Error("refusal without a message")
			}
		})
	}

	// Raw requests for what the client library would never send.
	body := func(id string, ts int64) []byte {
		b, _ := json.Marshal(map[string]any{
			"request_id": id, "timestamp_ms": ts, "key": devstack.ExampleKeyID,
			"eth_transaction": map[string]string{"unsigned": "0x" + hex.EncodeToString(eip1559(t, ok))},
		})
		return b
	}
	post := func(b []byte, stampHeader string) (int, api.Error) {
		req, _ := http.NewRequest(http.MethodPost, st.URL+"/v1/sign", bytes.NewReader(b))
		if stampHeader != "" {
			req.Header.Set(stamp.Header, stampHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	now := time.Now().UnixMilli()
	stamped := func(b []byte, s stamp.Signer) string {
		h, err := stamp.Create(s, b)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)

	b1 := body("replay-1", now)
	if code, e := post(b1, stamped(b1, st.Client)); code != 200 {
		t.Fatalf("first request: %d %+v", code, e)
	}
	tampered := bytes.Replace(b1, []byte("replay-1"), []byte("replay-2"), 1)
	for _, tc := range []struct {
		name   string
		body   []byte
		stamp  string
		status int
		code   string
	}{
		{"replayed request", b1, stamped(b1, st.Client), 401, refusal.CodeReplayedRequest},
		{"missing stamp", body("nostamp", now), "", 401, refusal.CodeUnauthorized},
		{"stamp over another body", tampered, stamped(b1, st.Client), 401, refusal.CodeUnauthorized},
		{"unregistered client", body("stranger", now), stamped(body("stranger", now), mustSigner(t, stranger)), 401, refusal.CodeUnauthorized},
		{"stale timestamp", body("stale", now-6*60*1000), stamped(body("stale", now-6*60*1000), st.Client), 401, refusal.CodeStaleRequest},
		{"future timestamp", body("future", now+5*60*1000), stamped(body("future", now+5*60*1000), st.Client), 401, refusal.CodeStaleRequest},
		{"not JSON", []byte("hello"), stamped([]byte("hello"), st.Client), 400, refusal.CodeBadRequest},
		{"garbage stamp", body("garbage", now), "!!!", 401, refusal.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, e := post(tc.body, tc.stamp)
			if code != tc.status || e.Code != tc.code {
				t.Fatalf("got %d %+v, want %d %s", code, e, tc.status, tc.code)
			}
		})
	}

	// Methods and paths.
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/v1/sign", 405, refusal.CodeMethodNotAllowed},
		{http.MethodPost, "/v1/keys", 405, refusal.CodeMethodNotAllowed},
		{http.MethodGet, "/v1/nothing", 404, refusal.CodeNotFound},
	} {
		req, _ := http.NewRequest(tc.method, st.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e api.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s %s = %d %+v, want %d %s", tc.method, tc.path, resp.StatusCode, e.Error, tc.status, tc.code)
		}
	}

	// An oversized body is refused by the host before it reaches the enclave.
	oversized := bytes.Repeat([]byte("a"), api.MaxBodySize+1)
	if code, e := post(oversized, "x"); code != 413 || e.Code != refusal.CodeTooLarge {
		t.Errorf("oversized body = %d %+v, want 413 %s", code, e, refusal.CodeTooLarge)
	}
}

// TestDevStackConcurrentClients signs from many goroutines over the
// persistent, multiplexed connections and checks every answer.
func TestDevStackConcurrentClients(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errc := make(chan error, workers*each)
	hashes := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				v := big.NewInt(int64(w*1000 + i + 1))
				resp, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 11155111, To: devstack.ExampleDestinationB, Value: v}))
				if err != nil {
					errc <- err
					continue
				}
				hashes <- resp.TransactionHash
			}
		}()
	}
	wg.Wait()
	close(errc)
	close(hashes)
	for err := range errc {
		t.Error(err)
	}
	seen := map[string]bool{}
	for h := range hashes {
		if seen[h] {
			t.Errorf("transaction hash %s answered twice: responses were mixed up", h)
		}
		seen[h] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct answers, want %d", len(seen), workers*each)
	}
}

// TestDevStackCloseLeavesNoProcess checks the enclave process is gone after
// Close, and that the data directory keeps the client key across runs; a
// second stack on the directory is refused while the first runs, and
// starts once it is closed (the lock is released).
func TestDevStackCloseLeavesNoProcess(t *testing.T) {
	dir := t.TempDir()
	st := startStack(t, dir)
	pid := st.EnclavePID
	pub := st.Client.PublicKey().String()
	// A second stack on the directory is refused, naming the first.
	_, err := devstack.Start(context.Background(), devstack.Options{DataDir: dir, Listen: "127.0.0.1:0", EnclaveBinary: devstacktest.EnclaveBinary(t)})
	var held *dirlock.HeldError
	if !errors.As(err, &held) || held.Holder == nil || held.Holder.PID != os.Getpid() || held.Holder.Program != "nitrosign dev" {
		t.Fatalf("a second stack on %s: %v, want a refusal naming this one (pid %d)", dir, err, os.Getpid())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("enclave process %d still exists after Close (kill 0: %v)", pid, err)
	}
	fi, err := os.Stat(filepath.Join(dir, devstack.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("client.pem mode %v, want 0600", fi.Mode().Perm())
	}
	st2 := startStack(t, dir)
	if got := st2.Client.PublicKey().String(); got != pub {
		t.Errorf("second run uses client key %s, first used %s", got, pub)
	}
	c, _ := client.New(st2.URL, st2.Client, nil)
	if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: big.NewInt(1)})); err != nil {
		t.Fatalf("second run: %v", err)
	}
}

func mustSigner(t *testing.T, k ed25519.PrivateKey) stamp.Signer {
	t.Helper()
	s, err := stamp.NewEd25519Signer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkIsolation checks that an enclave process said to be isolated really
// is in a network namespace of its own.
func checkIsolation(t *testing.T, st *devstack.Stack) {
	t.Helper()
	if !st.Isolated {
		t.Logf("the enclave process runs without its own network namespace (no permission here)")
		return
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Logf("cannot read network namespaces: %v", err)
		return
	}
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", st.EnclavePID))
	if err != nil {
		t.Fatal(err)
	}
	if self == theirs {
		t.Fatalf("the enclave process shares this process's network namespace %s", self)
	}
}

// TestDevStackSignsMessages signs a personal message and the EIP-712 Mail
// example through the dev stack and checks digests and signatures
// (crosscheck/devstack checks them with go-ethereum too).
func TestDevStackSignsMessages(t *testing.T) {
	devstacktest.SignMessages(t, startStack(t, t.TempDir()), ownVerifier{})
}

// TestDevStackAttestation fetches an attestation document through the host
// and checks it against the simulated NSM's root, the measured image and
// the keys the host lists.
func TestDevStackAttestation(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("nonce-0123456789")
	doc, err := c.Attestation(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, err := os.ReadFile(st.NSMRootPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("nsm-root.pem holds no certificate")
	}
	res, err := nitrite.Verify(doc, nitrite.VerifyOptions{Roots: roots, CurrentTime: time.Now()})
	if err != nil {
		t.Fatalf("the dev stack's attestation does not verify against %s: %v", st.NSMRootPath, err)
	}
	if !bytes.Equal(res.Document.Nonce, nonce) {
		t.Errorf("nonce %q", res.Document.Nonce)
	}
	if !bytes.Equal(res.Document.PCRs[0], st.Measurement.PCR0[:]) {
		t.Errorf("PCR0 %x is not the measured image %x", res.Document.PCRs[0], st.Measurement.PCR0)
	}
	ud, err := userdata.Parse(res.Document.UserData)
	if err != nil {
		t.Fatal(err)
	}
	var ks []userdata.Key
	for _, k := range st.Keys {
		a, _ := ethtx.ParseAddress(k.Address)
		ks = append(ks, userdata.Key{ID: k.ID, Address: a, Path: k.Path})
	}
	if ud.KeysHash != userdata.KeysHash(ks) || ud.KeyCount != uint64(len(ks)) {
		t.Error("the attested keys are not the keys the host lists")
	}
	// A bad nonce is refused by the host.
	resp, err := http.Get(st.URL + "/v1/attestation?nonce=zz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("bad nonce: %d", resp.StatusCode)
	}
}

// TestDevStackVerifyEnclave checks the client's attested-enclave path and
// that it catches answers a lying host could make up.
func TestDevStackVerifyEnclave(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rootPEM, _ := os.ReadFile(st.NSMRootPath)
	blk, _ := pem.Decode(rootPEM)
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	chk := client.EnclaveCheck{Roots: []*x509.Certificate{root}, PCRs: map[int][]byte{0: st.Measurement.PCR0[:]}}
	enc, err := c.VerifyEnclave(ctx, chk)
	if err != nil {
		t.Fatal(err)
	}
	if !enc.Attests(st.Keys[0].Address) || enc.Attests("0x1111111111111111111111111111111111111111") {
		t.Fatal("Attests is wrong")
	}
	unsigned := eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: big.NewInt(5)})
	resp, err := c.SignTransaction(ctx, devstack.ExampleKeyID, unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.CheckSignature(resp, unsigned); err != nil {
		t.Fatalf("a genuine answer fails: %v", err)
	}
	other := eip1559(t, txOpts{ChainID: 1, To: devstack.ExampleDestinationA, Value: big.NewInt(6)})
	forged := *resp
	forged.From = "0x1111111111111111111111111111111111111111"
	badDigest := *resp
	badDigest.Digest = "0x" + strings.Repeat("00", 32)
	badSig := *resp
	badSig.Signature = "0x" + strings.Repeat("11", 64) + "00"
	for _, tc := range []struct {
		name     string
		resp     *api.SignResponse
		unsigned []byte
	}{
		{"unattested from", &forged, unsigned},
		{"digest of something else", resp, other},
		{"digest changed", &badDigest, nil},
		{"signature changed", &badSig, unsigned},
	} {
		if err := enc.CheckSignature(tc.resp, tc.unsigned); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// An enclave whose policy is older than required (rolled back), or not
	// the expected one, is refused.
	older := chk
	older.MinPolicyVersion = 2
	if _, err := c.VerifyEnclave(ctx, older); err == nil || !strings.Contains(err.Error(), "older than the 2 required") {
		t.Errorf("minimum policy version: %v", err)
	}
	older.MinPolicyVersion = 1
	older.PolicyHash = &[32]byte{1}
	if _, err := c.VerifyEnclave(ctx, older); err == nil || !strings.Contains(err.Error(), "policy hash") {
		t.Errorf("policy hash: %v", err)
	}
	// Another image (PCR0) or another root is refused.
	chk.PCRs[0] = bytes.Repeat([]byte{1}, 48)
	if _, err := c.VerifyEnclave(ctx, chk); err == nil || !strings.Contains(err.Error(), "pcrs") {
		t.Errorf("other PCR0: %v", err)
	}
	chk.PCRs[0] = st.Measurement.PCR0[:]
	chk.Roots = nil // AWS's root
	if _, err := c.VerifyEnclave(ctx, chk); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("AWS root: %v", err)
	}
}

// TestDevStackRefusesLockedDataDir: a data directory that a host holds is
// refused before anything in it is read or made, with the holder named.
func TestDevStackRefusesLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	held := dirlock.Holder{PID: 4242, Hostname: "ip-10-0-0-1", Program: "nitrosign-host", StartedAt: time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)}
	l, err := dirlock.AcquireAs(dir, held)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if !l.Enforced {
		t.Skip("devstack: the data directory lock is enforced on Linux only")
	}
	_, err = devstack.Start(context.Background(), devstack.Options{DataDir: dir, Listen: "127.0.0.1:0", EnclaveBinary: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "in use by nitrosign-host (pid 4242 on ip-10-0-0-1, since 2026-12-07T15:00:00Z)") {
		t.Fatalf("Start on a held directory: %v, want a refusal naming the holder", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != dirlock.FileName {
		t.Fatalf("the refused Start left %v in the directory", entries)
	}
}

// TestDevStackJSONLogs: with EnclaveLogFormat json, every line the
// enclave process logs is one JSON object with the usual fields, marked
// as the enclave's.
func TestDevStackJSONLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return log.Write(p) })
	read := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:          t.TempDir(),
		Listen:           "127.0.0.1:0",
		EnclaveBinary:    devstacktest.EnclaveBinary(t),
		EnclaveLog:       w,
		EnclaveLogFormat: "json",
	})
	if err != nil {
		t.Fatalf("starting the dev stack: %v\nenclave log:\n%s", err, read())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out := read()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	sawListening := false
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("enclave log line %q is not JSON: %v\nlog:\n%s", line, err, out)
		}
		if rec["process"] != "enclave" {
			t.Fatalf("enclave log line %q is not marked process enclave", line)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("enclave log line %q has no %q", line, k)
			}
		}
		sawListening = sawListening || rec["msg"] == "listening"
	}
	if !sawListening {
		t.Fatalf("no listening line in the enclave's log:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
