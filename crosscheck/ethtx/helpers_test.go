package ethtx

// The random transactions of ethtx/helpers_test.go, built through the
// package's exported API: keep the two in step, so that the cross-check
// covers every edge the package's own tests generate.

import (
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/nitrosign/nitrosign/ethtx"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ReplaceAll(s, " ", ""), "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomBigInt returns a random integer of up to maxBits bits, favouring the
// edges: zero, small values, and full-width values.
func randomBigInt(r *rand.Rand, maxBits int) *big.Int {
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

func randomUint64(r *rand.Rand) uint64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return ^uint64(0)
	default:
		return r.Uint64() >> r.IntN(64)
	}
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n+7)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n:n]
}

// allTypes are the transaction types DecodeUnsigned accepts.
var allTypes = []ethtx.Type{ethtx.TypeLegacy, ethtx.TypeAccessList, ethtx.TypeDynamicFee, ethtx.TypeBlob, ethtx.TypeSetCode}

// randomChainID returns a chain id of at least 1, often large.
func randomChainID(r *rand.Rand) *big.Int {
	switch r.IntN(4) {
	case 0:
		return big.NewInt(1)
	case 1:
		return new(big.Int).SetUint64(1 + r.Uint64N(1<<40))
	}
	for {
		if id := randomBigInt(r, 256); id.Sign() != 0 {
			return id
		}
	}
}

// randomTx returns a random, valid transaction of type typ exercising the
// edges of every field: large chain ids, contract creation where the type
// allows it, single-byte and long data, empty and populated access lists,
// values up to 2^256-1, one to the maximum number of blob hashes, and
// authorizations for any chain or a given one, with signatures that are
// real (signed by a random key), valid in form, or arbitrary.
func randomTx(r *rand.Rand, typ ethtx.Type) *ethtx.Tx {
	tx := &ethtx.Tx{Type: typ, ChainID: randomChainID(r)}
	tx.Nonce = randomUint64(r)
	if typ == ethtx.TypeLegacy || typ == ethtx.TypeAccessList {
		tx.GasPrice = randomBigInt(r, 256)
	} else {
		tx.MaxPriorityFeePerGas = randomBigInt(r, 256)
		tx.MaxFeePerGas = randomBigInt(r, 256)
	}
	tx.GasLimit = randomUint64(r)
	if r.IntN(5) != 0 || typ == ethtx.TypeBlob || typ == ethtx.TypeSetCode {
		to := ethtx.Address(randomBytes(r, 20))
		tx.To = &to
	}
	tx.Value = randomBigInt(r, 256)
	tx.Data = randomData(r)
	if typ != ethtx.TypeLegacy && r.IntN(2) == 0 {
		tx.AccessList = make(ethtx.AccessList, 1+r.IntN(4))
		for i := range tx.AccessList {
			tx.AccessList[i].Address = ethtx.Address(randomBytes(r, 20))
			if n := r.IntN(4); n > 0 {
				tx.AccessList[i].StorageKeys = make([][32]byte, n)
				for j := range n {
					tx.AccessList[i].StorageKeys[j] = [32]byte(randomBytes(r, 32))
				}
			}
		}
	}
	switch typ {
	case ethtx.TypeBlob:
		tx.MaxFeePerBlobGas = randomBigInt(r, 256)
		n := 1 + r.IntN(6)
		if r.IntN(10) == 0 {
			n = ethtx.MaxBlobVersionedHashes
		}
		for range n {
			tx.BlobVersionedHashes = append(tx.BlobVersionedHashes, randomBlobHash(r))
		}
	case ethtx.TypeSetCode:
		n := 1 + r.IntN(3)
		if r.IntN(100) == 0 {
			n = ethtx.MaxAuthorizations
		}
		for range n {
			tx.AuthorizationList = append(tx.AuthorizationList, randomAuthorization(r))
		}
	}
	return tx
}

func randomData(r *rand.Rand) []byte {
	switch k := r.IntN(40); {
	case k < 6:
		return nil
	case k < 10:
		return []byte{byte(r.IntN(256))} // single byte, below or above 0x80
	case k < 20:
		return randomBytes(r, 4+32*r.IntN(4)) // calldata-shaped
	case k < 30:
		return randomBytes(r, 50+r.IntN(20)) // around the long-form boundary
	case k < 39:
		return randomBytes(r, r.IntN(4096))
	default:
		return randomBytes(r, 60000+r.IntN(ethtx.MaxDataSize-60000+1)) // up to the cap
	}
}

func randomBlobHash(r *rand.Rand) [32]byte {
	h := [32]byte(randomBytes(r, 32))
	h[0] = 0x01 // the KZG version byte (EIP-4844)
	return h
}

// randomAuthorization returns an authorization for any chain or a random
// one, signed by a random key (one in four), or with a random signature
// that is valid in form (low s), or with arbitrary r and s (often zero,
// short, at least n, or high).
func randomAuthorization(r *rand.Rand) ethtx.Authorization {
	a := ethtx.Authorization{Address: ethtx.Address(randomBytes(r, 20)), Nonce: randomUint64(r)}
	switch r.IntN(3) {
	case 0:
		a.ChainID = new(big.Int)
	case 1:
		a.ChainID = randomChainID(r)
	default:
		a.ChainID = randomBigInt(r, 256)
	}
	switch r.IntN(4) {
	case 0:
		sig := ethtx.Sign(randomKey(r), a.SigningHash())
		a.R, a.S, a.YParity = [32]byte(sig[:32]), [32]byte(sig[32:64]), sig[64]
	case 1:
		a.R = [32]byte(randomBytes(r, 32))
		a.S = [32]byte(randomBytes(r, 32))
		a.S[0] &= 0x7f
		a.YParity = byte(r.IntN(2))
	default:
		randomBigInt(r, 256).FillBytes(a.R[:])
		randomBigInt(r, 256).FillBytes(a.S[:])
		a.YParity = byte(r.IntN(2))
	}
	return a
}

// keyFromHex returns the private key with the given hexadecimal scalar.
func keyFromHex(t testing.TB, s string) *secp256k1.PrivateKey {
	var k secp256k1.ModNScalar
	if overflow := k.SetByteSlice(unhex(t, s)); overflow || k.IsZero() {
		t.Fatalf("bad private key %s", s)
	}
	return secp256k1.NewPrivateKey(&k)
}

// randomKey returns a valid private key.
func randomKey(r *rand.Rand) *secp256k1.PrivateKey {
	for {
		var k secp256k1.ModNScalar
		if overflow := k.SetByteSlice(randomBytes(r, 32)); !overflow && !k.IsZero() {
			return secp256k1.NewPrivateKey(&k)
		}
	}
}
