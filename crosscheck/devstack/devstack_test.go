package devstack

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
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

	"github.com/ethereum/go-ethereum/accounts"
	gethcommon "github.com/ethereum/go-ethereum/common"
	gethtypes "github.com/ethereum/go-ethereum/core/types"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"golang.org/x/crypto/sha3"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

// The helpers below are those of internal/devstack's tests.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// enclaveBinary builds the real enclave binary once for all tests.
func enclaveBinary(t *testing.T) string {
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

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func startStack(t *testing.T, dataDir string) *devstack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log bytes.Buffer
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:       dataDir,
		Listen:        "127.0.0.1:0",
		EnclaveBinary: enclaveBinary(t),
		EnclaveLog:    &syncWriter{w: &log},
		Logger:        debugLogger(),
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

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type txOpts struct {
	legacy  bool // an EIP-155 legacy transaction instead of EIP-1559
	chainID uint64
	to      string
	value   *big.Int
	data    []byte
}

func eip1559(t *testing.T, o txOpts) []byte {
	t.Helper()
	tx := &ethtx.Tx{
		Type:                 ethtx.TypeDynamicFee,
		ChainID:              new(big.Int).SetUint64(o.chainID),
		Nonce:                3,
		MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
		MaxFeePerGas:         big.NewInt(40_000_000_000),
		GasLimit:             21000,
		Value:                o.value,
		Data:                 o.data,
	}
	if o.legacy {
		tx.Type, tx.GasPrice, tx.MaxFeePerGas, tx.MaxPriorityFeePerGas = ethtx.TypeLegacy, big.NewInt(25_000_000_000), nil, nil
	}
	if o.to != "" {
		a, err := ethtx.ParseAddress(o.to)
		if err != nil {
			t.Fatal(err)
		}
		tx.To = &a
	}
	return tx.EncodeUnsigned()
}

func eth(x string) *big.Int {
	v, ok := new(big.Int).SetString(x, 10)
	if !ok {
		panic(x)
	}
	return v
}

// TestDevStackSignsEndToEnd runs the real enclave binary as its own process
// over the vsock simulator, signs through the host's HTTP API, and checks
// the result with go-ethereum. (internal/devstack's test of the same name
// checks it with nitrosign's own packages.)
func TestDevStackSignsEndToEnd(t *testing.T) {
	st := startStack(t, t.TempDir())
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
	usdcTransfer = append(usdcTransfer, eth(devstack.ExampleUSDCMaxPerTransaction).FillBytes(make([]byte, 32))...)
	for _, tc := range []struct {
		name   string
		key    string
		legacy bool
		chain  uint64
		to     string
		value  *big.Int
		data   []byte
	}{
		{"by id, mainnet, destination B, exactly 1 ETH", devstack.ExampleKeyID, false, 1, devstack.ExampleDestinationB, eth("1000000000000000000"), nil},
		{"by address, sepolia, destination A, 0.5 ETH", st.Keys[0].Address, false, 11155111, devstack.ExampleDestinationA, eth("500000000000000000"), nil},
		{"lower-case address, zero value", strings.ToLower(st.Keys[0].Address), false, 1, devstack.ExampleDestinationA, big.NewInt(0), nil},
		{"legacy EIP-155, sepolia", devstack.ExampleKeyID, true, 11155111, devstack.ExampleDestinationB, eth("250000000000000000"), nil},
		{"USDC transfer of 1,000 USDC to destination B", devstack.ExampleKeyID, false, 1, devstack.ExampleUSDC, big.NewInt(0), usdcTransfer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsigned := eip1559(t, txOpts{legacy: tc.legacy, chainID: tc.chain, to: tc.to, value: tc.value, data: tc.data})
			resp, err := c.SignTransaction(ctx, tc.key, unsigned)
			if err != nil {
				t.Fatal(err)
			}
			checkWithGeth(t, resp, st.Keys[0].Address, unsigned, tc.chain)
		})
	}
}

// checkWithGeth decodes the signed transaction with go-ethereum and checks
// sender, hash and signature against the answer.
func checkWithGeth(t *testing.T, resp *api.SignResponse, wantFrom string, unsigned []byte, chainID uint64) {
	t.Helper()
	if resp.From != wantFrom {
		t.Errorf("from = %s, want %s", resp.From, wantFrom)
	}
	signed, err := hex.DecodeString(strings.TrimPrefix(resp.SignedTransaction, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	var tx gethtypes.Transaction
	if err := tx.UnmarshalBinary(signed); err != nil {
		t.Fatalf("go-ethereum cannot decode the signed transaction: %v", err)
	}
	if tx.ChainId().Uint64() != chainID {
		t.Errorf("chain id = %v, want %d", tx.ChainId(), chainID)
	}
	signer := gethtypes.LatestSignerForChainID(tx.ChainId())
	from, err := gethtypes.Sender(signer, &tx)
	if err != nil {
		t.Fatalf("go-ethereum cannot recover the sender: %v", err)
	}
	if from != gethcommon.HexToAddress(wantFrom) {
		t.Errorf("go-ethereum recovers %s, the enclave's address is %s", from.Hex(), wantFrom)
	}
	if got := tx.Hash().Hex(); got != resp.TransactionHash {
		t.Errorf("transaction_hash = %s, go-ethereum says %s", resp.TransactionHash, got)
	}
	kh := sha3.NewLegacyKeccak256()
	kh.Write(unsigned)
	if got := hex.EncodeToString(signer.Hash(&tx).Bytes()); got != hex.EncodeToString(kh.Sum(nil)) {
		t.Errorf("go-ethereum signing hash %s differs from keccak(unsigned)", got)
	}
	if want := "0x" + hex.EncodeToString(signer.Hash(&tx).Bytes()); resp.Digest != want {
		t.Errorf("digest = %s, go-ethereum's signing hash is %s", resp.Digest, want)
	}
	v, r, s := tx.RawSignatureValues()
	sig, _ := hex.DecodeString(strings.TrimPrefix(resp.Signature, "0x"))
	if len(sig) != 65 {
		t.Fatalf("signature has %d bytes, want 65", len(sig))
	}
	wantV := big.NewInt(int64(sig[64]))
	if tx.Type() == gethtypes.LegacyTxType { // EIP-155: v = chainId*2 + 35 + y-parity
		wantV.Add(wantV, new(big.Int).Add(new(big.Int).Mul(tx.ChainId(), big.NewInt(2)), big.NewInt(35)))
	}
	if new(big.Int).SetBytes(sig[:32]).Cmp(r) != 0 || new(big.Int).SetBytes(sig[32:64]).Cmp(s) != 0 || wantV.Cmp(v) != 0 {
		t.Errorf("signature %s does not match the transaction's r, s, v", resp.Signature)
	}
	if resp.AuditSeq == 0 {
		t.Errorf("audit_seq is 0")
	}
}

// TestDevStackSignsMessages signs a personal message and the EIP-712 Mail
// example through the dev stack and checks digests and signatures with
// go-ethereum. (internal/devstack's test of the same name checks them with
// nitrosign's own packages.)
func TestDevStackSignsMessages(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(t *testing.T, resp *api.SignResponse, wantDigest []byte) {
		t.Helper()
		if resp.Digest != "0x"+hex.EncodeToString(wantDigest) {
			t.Fatalf("digest %s, go-ethereum says 0x%x", resp.Digest, wantDigest)
		}
		if resp.SignedTransaction != "" || resp.TransactionHash != "" {
			t.Errorf("a message answer carries a transaction: %+v", resp)
		}
		sig, _ := hex.DecodeString(strings.TrimPrefix(resp.Signature, "0x"))
		pub, err := gethcrypto.SigToPub(wantDigest, sig)
		if err != nil {
			t.Fatal(err)
		}
		if got := gethcrypto.PubkeyToAddress(*pub); got != gethcommon.HexToAddress(resp.From) || resp.From != st.Keys[0].Address {
			t.Fatalf("go-ethereum recovers %s; from %s; key %s", got.Hex(), resp.From, st.Keys[0].Address)
		}
	}

	msg := []byte("nitrosign dev: hello")
	resp, err := c.SignPersonalMessage(ctx, devstack.ExampleKeyID, msg)
	if err != nil {
		t.Fatal(err)
	}
	check(t, resp, accounts.TextHash(msg))

	// The Mail example as a wallet sends it; go-ethereum reads the same
	// bytes for its digest.
	raw := []byte(mailJSON)
	var mail apitypes.TypedData
	if err := json.Unmarshal(raw, &mail); err != nil {
		t.Fatal(err)
	}
	resp, err = c.SignTypedData(ctx, devstack.ExampleKeyID, raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := apitypes.TypedDataAndHash(mail)
	if err != nil {
		t.Fatal(err)
	}
	check(t, resp, want)

	// Another domain is refused by the example policy.
	raw = []byte(strings.Replace(mailJSON, devstack.ExampleMailContract, "0x1111111111111111111111111111111111111111", 1))
	_, err = c.SignTypedData(ctx, devstack.ExampleKeyID, raw)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Rule != "typed_data_domains" {
		t.Fatalf("other domain: %v, want rule typed_data_domains", err)
	}
}

// mailJSON is the EIP-712 specification's Mail example.
const mailJSON = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`

// debugLogger is a logger to stderr when NITROSIGN_TEST_DEBUG is set, else
// nil (discard).
func debugLogger() *slog.Logger {
	if os.Getenv("NITROSIGN_TEST_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
