package ethtx

import (
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// erc20Transfer is a typical request: an EIP-1559 ERC-20 transfer with no
// access list.
func erc20Transfer(b *testing.B) []byte {
	to, err := ParseAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	if err != nil {
		b.Fatal(err)
	}
	data := unhex(b, "a9059cbb"+
		"0000000000000000000000003535353535353535353535353535353535353535"+
		"00000000000000000000000000000000000000000000000000000000000f4240")
	tx := &Tx{
		Type:                 TypeDynamicFee,
		ChainID:              big.NewInt(1),
		Nonce:                4242,
		MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
		MaxFeePerGas:         big.NewInt(42_000_000_000),
		GasLimit:             65000,
		To:                   &to,
		Value:                new(big.Int),
		Data:                 data,
	}
	return tx.EncodeUnsigned()
}

// BenchmarkDecodeHash measures what the enclave does per request before
// signing: decode the unsigned transaction and compute its signing hash.
func BenchmarkDecodeHash(b *testing.B) {
	in := erc20Transfer(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		tx, err := DecodeUnsigned(in)
		if err != nil {
			b.Fatal(err)
		}
		_ = tx.SigningHash()
	}
}

// BenchmarkSign measures one RFC 6979 low-S signature.
func BenchmarkSign(b *testing.B) {
	var k secp256k1.ModNScalar
	k.SetByteSlice(unhex(b, "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"))
	priv := secp256k1.NewPrivateKey(&k)
	in := erc20Transfer(b)
	tx, err := DecodeUnsigned(in)
	if err != nil {
		b.Fatal(err)
	}
	hash := tx.SigningHash()
	b.ReportAllocs()
	for b.Loop() {
		_ = Sign(priv, hash)
	}
}
