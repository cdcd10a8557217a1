// Package testgen generates random test inputs, deterministically from a
// *rand.Rand: transactions of every type (Tx), typed-data documents
// (TypedData) and contract calls of every function package calldata
// decodes (Functions), with the primitives they are built of. The main
// module's tests and crosscheck's (which compare the same inputs with
// go-ethereum) both draw from here, so that both check the same edges and
// the generators are written once. A seed gives the same inputs on every
// run: committed fuzz seeds made from them stay current (the packages'
// TestSeedCorpus tests check).
//
// Only tests import it; the enclave binary never links it
// (cmd/nitrosign-enclave's tests check). A package's own in-package tests
// cannot import it where it imports that package (ethtx, calldata): their
// tests that use it are in the external test package.
package testgen

import (
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Unhex decodes hexadecimal s, with or without 0x, ignoring spaces, or
// fails the test.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ReplaceAll(s, " ", ""), "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BigInt returns a random integer of up to maxBits bits, favouring the
// edges: zero, small values, and full-width values.
func BigInt(r *rand.Rand, maxBits int) *big.Int {
	switch r.IntN(6) {
	case 0:
		return new(big.Int)
	case 1:
		return big.NewInt(r.Int64N(256))
	case 2:
		// All ones: 2^maxBits - 1.
		return new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(maxBits)), big.NewInt(1))
	}
	b := make([]byte, (maxBits+7)/8)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	x := new(big.Int).SetBytes(b)
	return x.Rsh(x, uint(r.IntN(maxBits+1)))
}

// Uint64 returns a random uint64, often 0 or 2^64-1, else of a random
// bit length.
func Uint64(r *rand.Rand) uint64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return ^uint64(0)
	default:
		return r.Uint64() >> r.IntN(64)
	}
}

// Bytes returns n random bytes.
func Bytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n+7)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n:n]
}

// Key returns a random valid private key.
func Key(r *rand.Rand) *secp256k1.PrivateKey {
	for {
		var k secp256k1.ModNScalar
		if overflow := k.SetByteSlice(Bytes(r, 32)); !overflow && !k.IsZero() {
			return secp256k1.NewPrivateKey(&k)
		}
	}
}

// KeyFromHex returns the private key with the given hexadecimal scalar, or
// fails the test.
func KeyFromHex(t testing.TB, s string) *secp256k1.PrivateKey {
	t.Helper()
	var k secp256k1.ModNScalar
	if overflow := k.SetByteSlice(Unhex(t, s)); overflow || k.IsZero() {
		t.Fatalf("bad private key %s", s)
	}
	return secp256k1.NewPrivateKey(&k)
}
