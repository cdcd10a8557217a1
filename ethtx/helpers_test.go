package ethtx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/nitrosign/nitrosign/internal/rlp"
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

// randomTx returns a random, valid EIP-1559 transaction exercising the edges
// of every field: large chain ids, contract creation, single-byte and long
// data, empty and populated access lists, values up to 2^256-1.
func randomTx(r *rand.Rand) *Tx {
	tx := &Tx{Type: TypeDynamicFee}
	switch r.IntN(4) {
	case 0:
		tx.ChainID = big.NewInt(1)
	case 1:
		tx.ChainID = new(big.Int).SetUint64(1 + r.Uint64N(1<<40))
	default:
		for tx.ChainID == nil || tx.ChainID.Sign() == 0 {
			tx.ChainID = randomBigInt(r, 256)
		}
	}
	tx.Nonce = randomUint64(r)
	tx.MaxPriorityFeePerGas = randomBigInt(r, 256)
	tx.MaxFeePerGas = randomBigInt(r, 256)
	tx.GasLimit = randomUint64(r)
	if r.IntN(5) != 0 {
		to := Address(randomBytes(r, 20))
		tx.To = &to
	}
	tx.Value = randomBigInt(r, 256)
	switch k := r.IntN(40); {
	case k < 6:
		// No data.
	case k < 10:
		tx.Data = []byte{byte(r.IntN(256))} // single byte, below or above 0x80
	case k < 20:
		tx.Data = randomBytes(r, 4+32*r.IntN(4)) // calldata-shaped
	case k < 30:
		tx.Data = randomBytes(r, 50+r.IntN(20)) // around the long-form boundary
	case k < 39:
		tx.Data = randomBytes(r, r.IntN(4096))
	default:
		tx.Data = randomBytes(r, 60000+r.IntN(MaxDataSize-60000+1)) // up to the cap
	}
	if r.IntN(2) == 0 {
		tx.AccessList = make(AccessList, 1+r.IntN(4))
		for i := range tx.AccessList {
			tx.AccessList[i].Address = Address(randomBytes(r, 20))
			if n := r.IntN(4); n > 0 {
				tx.AccessList[i].StorageKeys = make([][32]byte, n)
				for j := range n {
					tx.AccessList[i].StorageKeys[j] = [32]byte(randomBytes(r, 32))
				}
			}
		}
	}
	return tx
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

// envelope builds 0x02 || rlp(list of the given raw encodings), for
// hand-made malformed transactions.
func envelope(fields ...[]byte) []byte {
	return append([]byte{byte(TypeDynamicFee)}, rlp.AppendList(nil, bytes.Join(fields, nil))...)
}

// validFields are the raw encodings of the fields of a small valid
// transaction, for tests that replace one of them.
func validFields(t testing.TB) [][]byte {
	return [][]byte{
		unhex(t, "01"),           // chainId 1
		unhex(t, "80"),           // nonce 0
		unhex(t, "843b9aca00"),   // maxPriorityFeePerGas 1 gwei
		unhex(t, "8504a817c800"), // maxFeePerGas 20 gwei
		unhex(t, "825208"),       // gasLimit 21000
		rlp.AppendString(nil, bytes.Repeat([]byte{0x35}, 20)), // to
		unhex(t, "880de0b6b3a7640000"),                        // value 1 ether
		unhex(t, "80"),                                        // data
		unhex(t, "c0"),                                        // accessList
	}
}

// withField returns validFields with field i replaced by enc.
func withField(t testing.TB, i int, enc []byte) []byte {
	f := validFields(t)
	f[i] = enc
	return envelope(f...)
}

func accessEntry(addr []byte, keys ...[]byte) []byte {
	var k []byte
	for _, key := range keys {
		k = rlp.AppendString(k, key)
	}
	return rlp.AppendList(nil, append(rlp.AppendString(nil, addr), rlp.AppendList(nil, k)...))
}
