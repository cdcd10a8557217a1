package client

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
)

// TestCheckRequestSignature checks an answer against the request sent,
// decoded with package api/request: the digest of every payload kind, the
// signed transaction and its hash.
func TestCheckRequestSignature(t *testing.T) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	from := ethtx.PubkeyToAddress(priv.PubKey())
	e := &Enclave{addrs: map[ethtx.Address]bool{from: true}}
	to, _ := ethtx.ParseAddress("0x1111111111111111111111111111111111111111")
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 1, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(2e9), MaxPriorityFeePerGas: big.NewInt(1e9), To: &to, Value: big.NewInt(5)}
	unsigned := tx.EncodeUnsigned()
	h := func(b []byte) string { return "0x" + hex.EncodeToString(b) }
	answer := func(digest [32]byte, signedTx bool) *api.SignResponse {
		sig := ethtx.Sign(priv, digest)
		r := &api.SignResponse{From: from.Hex(), Signature: h(sig[:]), Digest: h(digest[:])}
		if signedTx {
			signed := tx.EncodeSigned(sig)
			th := ethtx.TransactionHash(signed)
			r.SignedTransaction, r.TransactionHash = h(signed), h(th[:])
		}
		return r
	}
	txReq := &api.SignRequest{Key: "k", EthTransaction: api.NewEthTransaction(unsigned)}
	msgReq := &api.SignRequest{Key: "k", EthPersonalMessage: &api.EthPersonalMessage{Message: "0x6869"}}

	good := answer(tx.SigningHash(), true)
	if err := e.CheckRequestSignature(good, txReq); err != nil {
		t.Fatalf("a genuine transaction answer: %v", err)
	}
	if err := e.CheckSignature(good, unsigned); err != nil {
		t.Fatalf("CheckSignature of a genuine answer: %v", err)
	}
	if err := e.CheckRequestSignature(answer(ethmsg.PersonalHash([]byte("hi")), false), msgReq); err != nil {
		t.Fatalf("a genuine message answer: %v", err)
	}

	otherSigned := *good
	otherSigned.SignedTransaction = good.SignedTransaction[:len(good.SignedTransaction)-2] + "00"
	otherHash := *good
	otherHash.TransactionHash = "0x" + strings.Repeat("00", 32)
	for _, tc := range []struct {
		name string
		resp *api.SignResponse
		req  *api.SignRequest
		want string
	}{
		{"message signed for another message", answer(ethmsg.PersonalHash([]byte("ho")), false), msgReq, "digest other than the request's"},
		{"transaction answer to a message", good, msgReq, "digest other than the request's"},
		{"signed transaction altered", &otherSigned, txReq, "signed transaction"},
		{"transaction hash altered", &otherHash, txReq, "transaction hash"},
		{"request that does not decode", good, &api.SignRequest{EthPersonalMessage: &api.EthPersonalMessage{Message: "0x"}}, "is empty"},
	} {
		if err := e.CheckRequestSignature(tc.resp, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}
