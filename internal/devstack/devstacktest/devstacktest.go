// Package devstacktest runs the dev stack (package devstack) with the real
// enclave binary for tests, and holds the end-to-end signing flows that
// internal/devstack's tests check with nitrosign's own packages and
// crosscheck/devstack's tests check with go-ethereum: the flow is written
// once, and each caller brings its Verifier. Only tests import it; the
// enclave binary never links it (cmd/nitrosign-enclave's tests check).
package devstacktest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// EnclaveBinary builds the real enclave binary once for all the tests of a
// test binary, and returns its path. Main removes it at the end.
func EnclaveBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nitrosign-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, devstack.EnclaveBinaryName)
		buildErr = devstack.BuildEnclave(context.Background(), binPath)
	})
	if buildErr != nil {
		t.Fatalf("building the enclave: %v", buildErr)
	}
	return binPath
}

// Main runs the tests and then removes the enclave binary EnclaveBinary
// built: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// Start starts a dev stack on dataDir with the real enclave binary,
// listening on a free local port, and closes it when the test ends. The
// enclave's log is shown if it fails to start.
func Start(t testing.TB, dataDir string) *devstack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log bytes.Buffer
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:       dataDir,
		Listen:        "127.0.0.1:0",
		EnclaveBinary: EnclaveBinary(t),
		EnclaveLog:    &SyncWriter{W: &log},
		Logger:        DebugLogger(),
	})
	if err != nil {
		t.Fatalf("starting the dev stack: %v\nenclave log:\n%s", err, log.String())
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	return st
}

// SyncWriter serializes writes to W: the enclave's output and the
// supervisor's messages reach it from several goroutines.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}

// DebugLogger is a logger to stderr when NITROSIGN_TEST_DEBUG is set, else
// nil (discard).
func DebugLogger() *slog.Logger {
	if os.Getenv("NITROSIGN_TEST_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TxOpts are the fields of a transaction Tx builds that a test chooses.
type TxOpts struct {
	Legacy  bool // an EIP-155 legacy transaction instead of EIP-1559
	ChainID uint64
	To      string
	Value   *big.Int
	Data    []byte
}

// Tx returns an unsigned EIP-1559 transaction (or legacy, with o.Legacy)
// with nonce 3, fees and gas the example policy allows, and the fields of o.
func Tx(t testing.TB, o TxOpts) []byte {
	t.Helper()
	tx := &ethtx.Tx{
		Type:                 ethtx.TypeDynamicFee,
		ChainID:              new(big.Int).SetUint64(o.ChainID),
		Nonce:                3,
		MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
		MaxFeePerGas:         big.NewInt(40_000_000_000),
		GasLimit:             21000,
		Value:                o.Value,
		Data:                 o.Data,
	}
	if o.Legacy {
		tx.Type, tx.GasPrice, tx.MaxFeePerGas, tx.MaxPriorityFeePerGas = ethtx.TypeLegacy, big.NewInt(25_000_000_000), nil, nil
	}
	if o.To != "" {
		a, err := ethtx.ParseAddress(o.To)
		if err != nil {
			t.Fatal(err)
		}
		tx.To = &a
	}
	return tx.EncodeUnsigned()
}

// Int returns the decimal integer x (an amount in wei or token units), or
// panics.
func Int(x string) *big.Int {
	v, ok := new(big.Int).SetString(x, 10)
	if !ok {
		panic(x)
	}
	return v
}

// MailJSON is the EIP-712 specification's Mail example, as a wallet sends
// it. Its domain is the one the example policy allows.
const MailJSON = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`

// A Verifier checks the enclave's answers by its own means: nitrosign's
// packages in internal/devstack's tests, go-ethereum in crosscheck's.
type Verifier interface {
	// CheckTransaction checks the answer to signing the unsigned
	// transaction for chainID with the key whose address is wantFrom:
	// digest, signature, signed transaction and its hash.
	CheckTransaction(t *testing.T, resp *api.SignResponse, wantFrom string, unsigned []byte, chainID uint64)
	// PersonalDigest returns the EIP-191 digest of a personal message.
	PersonalDigest(t *testing.T, msg []byte) [32]byte
	// TypedDataDigest returns the EIP-712 digest of a typed-data document.
	TypedDataDigest(t *testing.T, doc []byte) [32]byte
	// Recover returns the address whose key made the 65-byte signature
	// sig (r || s || y-parity) over digest.
	Recover(t *testing.T, digest [32]byte, sig []byte) (ethtx.Address, error)
}

// SignTransactions signs transactions through st's HTTP API with its one
// key (the example policy's), by id and by address, on two chains, legacy
// and EIP-1559, of ETH and of USDC up to the policy's limits, and has v
// check each answer. It checks the keys and health the host reports first.
func SignTransactions(t *testing.T, st *devstack.Stack, v Verifier) {
	t.Helper()
	if len(st.Keys) != 1 || st.Keys[0].ID != devstack.ExampleKeyID || st.Keys[0].Path != devstack.ExampleKeyPath {
		t.Fatalf("keys = %+v", st.Keys)
	}
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	keys, err := c.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 1 || keys.Keys[0] != st.Keys[0] {
		t.Fatalf("GET /v1/keys = %+v, want %+v", keys.Keys, st.Keys)
	}
	health, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != "ok" || health.Enclave == nil || health.Enclave.Keys != 1 {
		t.Fatalf("health = %+v", health)
	}

	// transfer(ExampleDestinationB, 1,000 USDC), the largest USDC transfer
	// the example policy allows.
	usdcTransfer := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, make([]byte, 12)...)
	destB, _ := ethtx.ParseAddress(devstack.ExampleDestinationB)
	usdcTransfer = append(usdcTransfer, destB[:]...)
	usdcTransfer = append(usdcTransfer, Int(devstack.ExampleUSDCMaxPerTransaction).FillBytes(make([]byte, 32))...)
	for _, tc := range []struct {
		name   string
		key    string
		legacy bool
		chain  uint64
		to     string
		value  *big.Int
		data   []byte
	}{
		{"by id, mainnet, destination B, exactly 1 ETH", devstack.ExampleKeyID, false, 1, devstack.ExampleDestinationB, Int("1000000000000000000"), nil},
		{"by address, sepolia, destination A, 0.5 ETH", st.Keys[0].Address, false, 11155111, devstack.ExampleDestinationA, Int("500000000000000000"), nil},
		{"lower-case address, zero value", strings.ToLower(st.Keys[0].Address), false, 1, devstack.ExampleDestinationA, big.NewInt(0), nil},
		{"legacy EIP-155, sepolia", devstack.ExampleKeyID, true, 11155111, devstack.ExampleDestinationB, Int("250000000000000000"), nil},
		{"USDC transfer of 1,000 USDC to destination B", devstack.ExampleKeyID, false, 1, devstack.ExampleUSDC, big.NewInt(0), usdcTransfer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsigned := Tx(t, TxOpts{Legacy: tc.legacy, ChainID: tc.chain, To: tc.to, Value: tc.value, Data: tc.data})
			resp, err := c.SignTransaction(ctx, tc.key, unsigned)
			if err != nil {
				t.Fatal(err)
			}
			v.CheckTransaction(t, resp, st.Keys[0].Address, unsigned, tc.chain)
			if resp.AuditSeq == 0 {
				t.Errorf("audit_seq is 0")
			}
		})
	}
}

// SignMessages signs a personal message and the EIP-712 Mail example
// through st with its one key, checks each answer's digest against v's and
// that its signature recovers (by v) the key's address, and checks that a
// document of another domain is refused by the example policy.
func SignMessages(t *testing.T, st *devstack.Stack, v Verifier) {
	t.Helper()
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(t *testing.T, resp *api.SignResponse, wantDigest [32]byte) {
		t.Helper()
		if resp.Digest != "0x"+hex.EncodeToString(wantDigest[:]) {
			t.Fatalf("digest %s, want 0x%x", resp.Digest, wantDigest)
		}
		if resp.SignedTransaction != "" || resp.TransactionHash != "" {
			t.Errorf("a message answer carries a transaction: %+v", resp)
		}
		sig, err := hex.DecodeString(strings.TrimPrefix(resp.Signature, "0x"))
		if err != nil || len(sig) != 65 {
			t.Fatalf("signature %s: %v", resp.Signature, err)
		}
		got, err := v.Recover(t, wantDigest, sig)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hex() != resp.From || resp.From != st.Keys[0].Address {
			t.Fatalf("the signature recovers %s; from %s; key %s", got.Hex(), resp.From, st.Keys[0].Address)
		}
	}

	msg := []byte("nitrosign dev: hello")
	resp, err := c.SignPersonalMessage(ctx, devstack.ExampleKeyID, msg)
	if err != nil {
		t.Fatal(err)
	}
	check(t, resp, v.PersonalDigest(t, msg))

	raw := []byte(MailJSON)
	resp, err = c.SignTypedData(ctx, devstack.ExampleKeyID, raw)
	if err != nil {
		t.Fatal(err)
	}
	check(t, resp, v.TypedDataDigest(t, raw))

	// Another domain is refused by the example policy.
	raw = []byte(strings.Replace(MailJSON, devstack.ExampleMailContract, "0x1111111111111111111111111111111111111111", 1))
	_, err = c.SignTypedData(ctx, devstack.ExampleKeyID, raw)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Rule != "typed_data_domains" {
		t.Fatalf("other domain: %v, want rule typed_data_domains", err)
	}
}
