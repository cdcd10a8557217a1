package devstack

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

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
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// TestDevStackSignsEndToEnd runs the real enclave binary as its own process
// over the vsock simulator, signs through the host's HTTP API, and checks
// the result with go-ethereum. (internal/devstack's test of the same name
// runs the same flow, devstacktest.SignTransactions, and checks it with
// nitrosign's own packages.)
func TestDevStackSignsEndToEnd(t *testing.T) {
	devstacktest.SignTransactions(t, devstacktest.Start(t, t.TempDir()), gethVerifier{})
}

// gethVerifier checks the dev stack's answers with go-ethereum.
type gethVerifier struct{}

// CheckTransaction decodes the signed transaction with go-ethereum and
// checks sender, hash and signature against the answer.
func (gethVerifier) CheckTransaction(t *testing.T, resp *api.SignResponse, wantFrom string, unsigned []byte, chainID uint64) {
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
}

// PersonalDigest is go-ethereum's accounts.TextHash.
func (gethVerifier) PersonalDigest(t *testing.T, msg []byte) [32]byte {
	return [32]byte(accounts.TextHash(msg))
}

// TypedDataDigest is the digest go-ethereum's signer computes from the same
// bytes the wallet sends.
func (gethVerifier) TypedDataDigest(t *testing.T, doc []byte) [32]byte {
	t.Helper()
	var td apitypes.TypedData
	if err := json.Unmarshal(doc, &td); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h)
}

// Recover is go-ethereum's SigToPub.
func (gethVerifier) Recover(t *testing.T, digest [32]byte, sig []byte) (ethtx.Address, error) {
	pub, err := gethcrypto.SigToPub(digest[:], sig)
	if err != nil {
		return ethtx.Address{}, err
	}
	return ethtx.Address(gethcrypto.PubkeyToAddress(*pub)), nil
}

// TestDevStackSignsMessages signs a personal message and the EIP-712 Mail
// example through the dev stack and checks digests and signatures with
// go-ethereum. (internal/devstack's test of the same name runs the same
// flow, devstacktest.SignMessages, with nitrosign's own packages.) It then
// signs the Mail example as a Go wallet stack sends it, json.Marshal of
// go-ethereum's apitypes.TypedData, whose domain carries "salt":"" for the
// salt its type does not declare.
func TestDevStackSignsMessages(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	devstacktest.SignMessages(t, st, gethVerifier{})

	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(devstacktest.MailJSON), &td); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"salt":""`) {
		t.Fatalf("go-ethereum no longer marshals an empty salt: %s", raw)
	}
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.SignTypedData(context.Background(), devstack.ExampleKeyID, raw)
	if err != nil {
		t.Fatalf("go-ethereum's marshalled Mail document: %v", err)
	}
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0x" + hex.EncodeToString(digest); resp.Digest != want {
		t.Fatalf("digest %s, go-ethereum %s", resp.Digest, want)
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(resp.Signature, "0x"))
	if err != nil || len(sig) != 65 {
		t.Fatalf("signature %s: %v", resp.Signature, err)
	}
	pub, err := gethcrypto.SigToPub(digest, sig)
	if err != nil {
		t.Fatal(err)
	}
	if got := gethcrypto.PubkeyToAddress(*pub); got != gethcommon.HexToAddress(st.Keys[0].Address) || resp.From != st.Keys[0].Address {
		t.Fatalf("go-ethereum recovers %s; from %s; key %s", got.Hex(), resp.From, st.Keys[0].Address)
	}
}
