package testgen

import (
	"math/big"
	"math/rand/v2"

	"github.com/nitrosign/nitrosign/ethtx"
)

// TxTypes are the transaction types ethtx.DecodeUnsigned accepts.
var TxTypes = []ethtx.Type{ethtx.TypeLegacy, ethtx.TypeAccessList, ethtx.TypeDynamicFee, ethtx.TypeBlob, ethtx.TypeSetCode}

// ChainID returns a chain id of at least 1, often large.
func ChainID(r *rand.Rand) *big.Int {
	switch r.IntN(4) {
	case 0:
		return big.NewInt(1)
	case 1:
		return new(big.Int).SetUint64(1 + r.Uint64N(1<<40))
	}
	for {
		if id := BigInt(r, 256); id.Sign() != 0 {
			return id
		}
	}
}

// Tx returns a random, valid transaction of type typ exercising the edges
// of every field: large chain ids, contract creation where the type allows
// it, single-byte and long data, empty and populated access lists, values
// up to 2^256-1, one to the maximum number of blob hashes, and
// authorizations for any chain or a given one, with signatures that are
// real (signed by a random key), valid in form, or arbitrary.
func Tx(r *rand.Rand, typ ethtx.Type) *ethtx.Tx {
	tx := &ethtx.Tx{Type: typ, ChainID: ChainID(r)}
	tx.Nonce = Uint64(r)
	if typ == ethtx.TypeLegacy || typ == ethtx.TypeAccessList {
		tx.GasPrice = BigInt(r, 256)
	} else {
		tx.MaxPriorityFeePerGas = BigInt(r, 256)
		tx.MaxFeePerGas = BigInt(r, 256)
	}
	tx.GasLimit = Uint64(r)
	if r.IntN(5) != 0 || typ == ethtx.TypeBlob || typ == ethtx.TypeSetCode {
		to := ethtx.Address(Bytes(r, 20))
		tx.To = &to
	}
	tx.Value = BigInt(r, 256)
	tx.Data = txData(r)
	if typ != ethtx.TypeLegacy && r.IntN(2) == 0 {
		tx.AccessList = make(ethtx.AccessList, 1+r.IntN(4))
		for i := range tx.AccessList {
			tx.AccessList[i].Address = ethtx.Address(Bytes(r, 20))
			if n := r.IntN(4); n > 0 {
				tx.AccessList[i].StorageKeys = make([][32]byte, n)
				for j := range n {
					tx.AccessList[i].StorageKeys[j] = [32]byte(Bytes(r, 32))
				}
			}
		}
	}
	switch typ {
	case ethtx.TypeBlob:
		tx.MaxFeePerBlobGas = BigInt(r, 256)
		n := 1 + r.IntN(6)
		if r.IntN(10) == 0 {
			n = ethtx.MaxBlobVersionedHashes
		}
		for range n {
			tx.BlobVersionedHashes = append(tx.BlobVersionedHashes, blobHash(r))
		}
	case ethtx.TypeSetCode:
		n := 1 + r.IntN(3)
		if r.IntN(100) == 0 {
			n = ethtx.MaxAuthorizations
		}
		for range n {
			tx.AuthorizationList = append(tx.AuthorizationList, Authorization(r))
		}
	}
	return tx
}

// txData returns transaction data: none, one byte, calldata-shaped, around
// the RLP long-form boundary, up to 4 KiB, or up to ethtx.MaxDataSize.
func txData(r *rand.Rand) []byte {
	switch k := r.IntN(40); {
	case k < 6:
		return nil
	case k < 10:
		return []byte{byte(r.IntN(256))} // single byte, below or above 0x80
	case k < 20:
		return Bytes(r, 4+32*r.IntN(4)) // calldata-shaped
	case k < 30:
		return Bytes(r, 50+r.IntN(20)) // around the long-form boundary
	case k < 39:
		return Bytes(r, r.IntN(4096))
	default:
		return Bytes(r, 60000+r.IntN(ethtx.MaxDataSize-60000+1)) // up to the cap
	}
}

// blobHash returns a random blob versioned hash of the KZG version.
func blobHash(r *rand.Rand) [32]byte {
	h := [32]byte(Bytes(r, 32))
	h[0] = 0x01 // the KZG version byte (EIP-4844)
	return h
}

// Authorization returns an EIP-7702 authorization for any chain or a
// random one, signed by a random key (one in four), or with a random
// signature that is valid in form (low s), or with arbitrary r and s
// (often zero, short, at least n, or high).
func Authorization(r *rand.Rand) ethtx.Authorization {
	a := ethtx.Authorization{Address: ethtx.Address(Bytes(r, 20)), Nonce: Uint64(r)}
	switch r.IntN(3) {
	case 0:
		a.ChainID = new(big.Int)
	case 1:
		a.ChainID = ChainID(r)
	default:
		a.ChainID = BigInt(r, 256)
	}
	switch r.IntN(4) {
	case 0:
		sig := ethtx.Sign(Key(r), a.SigningHash())
		a.R, a.S, a.YParity = [32]byte(sig[:32]), [32]byte(sig[32:64]), sig[64]
	case 1:
		a.R = [32]byte(Bytes(r, 32))
		a.S = [32]byte(Bytes(r, 32))
		a.S[0] &= 0x7f
		a.YParity = byte(r.IntN(2))
	default:
		BigInt(r, 256).FillBytes(a.R[:])
		BigInt(r, 256).FillBytes(a.S[:])
		a.YParity = byte(r.IntN(2))
	}
	return a
}
