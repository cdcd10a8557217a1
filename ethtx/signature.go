package ethtx

import (
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Signature is a recoverable secp256k1 signature as Ethereum uses it:
// r || s || yParity, with r and s 32-byte big-endian and yParity 0 or 1.
type Signature [65]byte

// compactMagic is the offset decred's compact signatures (Bitcoin's format)
// add to the recovery code.
const compactMagic = 27

// Sign signs hash with priv, deterministically (RFC 6979) and with s in the
// lower half of the curve order (EIP-2).
//
// The yParity byte is 0 or 1 except when the signature's nonce point has an
// x coordinate of at least the curve order, a 1-in-2^127 event that Ethereum
// cannot express; RecoverAddress and Tx.EncodeSigned refuse such a
// signature rather than misuse it.
func Sign(priv *secp256k1.PrivateKey, hash [32]byte) Signature {
	compact := ecdsa.SignCompact(priv, hash[:], false)
	var sig Signature
	copy(sig[:64], compact[1:])
	sig[64] = compact[0] - compactMagic
	return sig
}

// RecoverAddress returns the address of the key that made sig over hash. It
// refuses signatures that Ethereum refuses: yParity other than 0 or 1, r or
// s outside [1, n-1], and s above n/2 (EIP-2), so that each signed message
// has exactly one accepted signature per key.
func RecoverAddress(hash [32]byte, sig Signature) (Address, error) {
	a, err := recoverAddress(hash, sig)
	if err != nil {
		return Address{}, fmt.Errorf("ethtx: signature: %w", err)
	}
	return a, nil
}

// recoverAddress is RecoverAddress with errors that the caller prefixes.
func recoverAddress(hash [32]byte, sig Signature) (Address, error) {
	if sig[64] > 1 {
		return Address{}, fmt.Errorf("yParity is %d, want 0 or 1", sig[64])
	}
	var r, s secp256k1.ModNScalar
	if overflow := r.SetByteSlice(sig[:32]); overflow || r.IsZero() {
		return Address{}, errRNotInRange
	}
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsZero() {
		return Address{}, errSNotInRange
	}
	if s.IsOverHalfOrder() {
		return Address{}, errHighS
	}
	var compact [65]byte
	compact[0] = compactMagic + sig[64]
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact[:], hash[:])
	if err != nil {
		return Address{}, err
	}
	return PubkeyToAddress(pub), nil
}

var (
	errRNotInRange = errors.New("r is not in [1, n-1]")
	errSNotInRange = errors.New("s is not in [1, n-1]")
	errHighS       = errors.New("s is above n/2 (EIP-2)")
)

// PubkeyToAddress returns the Ethereum address of pub: the last 20 bytes of
// the Keccak-256 hash of its uncompressed X || Y coordinates.
func PubkeyToAddress(pub *secp256k1.PublicKey) Address {
	h := keccak256(pub.SerializeUncompressed()[1:])
	return Address(h[12:])
}
