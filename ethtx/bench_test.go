package ethtx

import (
	"math/big"
	"testing"
)

// benchTxs are typical requests of each type, by sub-benchmark name.
func benchTxs(b *testing.B) []struct {
	name string
	tx   *Tx
} {
	usdc, err := ParseAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	if err != nil {
		b.Fatal(err)
	}
	dest := Address{0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35}
	transfer := unhex(b, "a9059cbb"+
		"0000000000000000000000003535353535353535353535353535353535353535"+
		"00000000000000000000000000000000000000000000000000000000000f4240")
	slot := [32]byte{31: 9}
	blobHash := func(i byte) (h [32]byte) {
		h[0], h[31] = blobHashVersionKZG, i
		return h
	}
	auth := Authorization{ChainID: big.NewInt(1), Address: usdc, Nonce: 12}
	sig := Sign(keyFromHex(b, "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"), auth.SigningHash())
	auth.R, auth.S, auth.YParity = [32]byte(sig[:32]), [32]byte(sig[32:64]), sig[64]

	return []struct {
		name string
		tx   *Tx
	}{
		// An ETH transfer.
		{"legacy", &Tx{Type: TypeLegacy, ChainID: big.NewInt(1), Nonce: 4242, GasPrice: big.NewInt(30_000_000_000),
			GasLimit: 21000, To: &dest, Value: big.NewInt(1e17)}},
		// An ERC-20 transfer declaring the token contract and one slot.
		{"eip2930", &Tx{Type: TypeAccessList, ChainID: big.NewInt(1), Nonce: 4242, GasPrice: big.NewInt(30_000_000_000),
			GasLimit: 65000, To: &usdc, Value: new(big.Int), Data: transfer,
			AccessList: AccessList{{Address: usdc, StorageKeys: [][32]byte{slot}}}}},
		// An ERC-20 transfer, the commonest request.
		{"eip1559", &Tx{Type: TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 4242, MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
			MaxFeePerGas: big.NewInt(42_000_000_000), GasLimit: 65000, To: &usdc, Value: new(big.Int), Data: transfer}},
		// A rollup batch of three blobs.
		{"eip4844", &Tx{Type: TypeBlob, ChainID: big.NewInt(1), Nonce: 4242, MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
			MaxFeePerGas: big.NewInt(42_000_000_000), GasLimit: 21000, To: &dest, Value: new(big.Int),
			MaxFeePerBlobGas: big.NewInt(10_000_000_000), BlobVersionedHashes: [][32]byte{blobHash(1), blobHash(2), blobHash(3)}}},
		// A call carrying one authorization.
		{"eip7702", &Tx{Type: TypeSetCode, ChainID: big.NewInt(1), Nonce: 4242, MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
			MaxFeePerGas: big.NewInt(42_000_000_000), GasLimit: 100000, To: &dest, Value: new(big.Int), Data: transfer,
			AuthorizationList: []Authorization{auth}}},
	}
}

// erc20Transfer is a typical request: an EIP-1559 ERC-20 transfer with no
// access list.
func erc20Transfer(b *testing.B) []byte {
	for _, bt := range benchTxs(b) {
		if bt.tx.Type == TypeDynamicFee {
			return bt.tx.EncodeUnsigned()
		}
	}
	panic("no EIP-1559 benchmark transaction")
}

// BenchmarkDecodeHash measures what the enclave does per request before
// signing: decode the unsigned transaction and compute its signing hash,
// for a typical transaction of each type.
func BenchmarkDecodeHash(b *testing.B) {
	for _, bt := range benchTxs(b) {
		in := bt.tx.EncodeUnsigned()
		b.Run(bt.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				tx, err := DecodeUnsigned(in)
				if err != nil {
					b.Fatal(err)
				}
				_ = tx.SigningHash()
			}
		})
	}
}

// BenchmarkSign measures one RFC 6979 low-S signature.
func BenchmarkSign(b *testing.B) {
	priv := keyFromHex(b, "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
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

// BenchmarkAuthority measures the recovery of one EIP-7702 authority, which
// policy pays per authorization it checks.
func BenchmarkAuthority(b *testing.B) {
	auth := benchTxs(b)[4].tx.AuthorizationList[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.Authority(); err != nil {
			b.Fatal(err)
		}
	}
}
