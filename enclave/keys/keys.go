// Package keys derives secp256k1 signing keys from the enclave's master seed
// with BIP-32 hierarchical deterministic derivation.
//
// One sealed seed serves every signing key: each key is the child of the
// seed's master key at a path such as m/44'/60'/0'/0/i, so keys can be added
// or rotated to a new index without sealing a new secret, and any BIP-32
// wallet given the same seed derives the same addresses, which lets the
// derivation be checked from outside the enclave.
//
// # Handling secrets
//
// An ExtendedKey holding a private key is secret, and so is its chain code.
// The package keeps each in one place, overwrites intermediate keys during
// [ExtendedKey.Derive], and offers [ExtendedKey.Zero] to overwrite a key
// once it is no longer needed. Errors name indices, depths and lengths,
// never key material. [ExtendedKey.String] of a private key is the secret
// xprv serialization: never log it.
//
// # Invalid children
//
// With probability below 2^-127 per derivation step, BIP-32 produces no valid
// key for an index (I_L >= n, or a zero key). The BIP says to proceed with the
// next index; this package reports [ErrInvalidChild] naming the index and
// leaves that choice to the caller, so a key is never silently derived at an
// index other than the one its path records.
package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/nitrosign/nitrosign/keypath"
	"golang.org/x/crypto/ripemd160" //lint:ignore SA1019 BIP-32 fingerprints are defined with RIPEMD-160.
)

// Hardened is the offset of hardened child indices (keypath.Hardened).
const Hardened = keypath.Hardened

// Limits.
const (
	// MinSeedLen and MaxSeedLen bound the seed length, as BIP-32 does
	// (128 to 512 bits).
	MinSeedLen = 16
	MaxSeedLen = 64
	// MaxDepth is the deepest key BIP-32 can serialize (keypath.MaxDepth).
	MaxDepth = keypath.MaxDepth
)

// ErrInvalidChild is returned, wrapped with the index, when an index yields
// no valid key. BIP-32 says to proceed with the next index.
var ErrInvalidChild = errors.New("keys: invalid child key")

// Serialization version bytes for Bitcoin mainnet, as in the BIP-32 test
// vectors.
var (
	versionPrivate = [4]byte{0x04, 0x88, 0xad, 0xe4} // xprv
	versionPublic  = [4]byte{0x04, 0x88, 0xb2, 0x1e} // xpub
)

// ExtendedKey is a BIP-32 extended key: a private or public key, a chain
// code, and its position in the tree. It is immutable except for Zero, so
// it may be read from several goroutines.
type ExtendedKey struct {
	key       secp256k1.ModNScalar // private key; zero for public keys
	pub       *secp256k1.PublicKey
	chainCode [32]byte
	parentFP  [4]byte
	index     uint32
	depth     uint8
	private   bool
	zeroed    bool
}

// NewMaster returns the master key of seed, which must be MinSeedLen to
// MaxSeedLen bytes.
func NewMaster(seed []byte) (*ExtendedKey, error) {
	if len(seed) < MinSeedLen || len(seed) > MaxSeedLen {
		return nil, fmt.Errorf("keys: seed is %d bytes, want %d to %d", len(seed), MinSeedLen, MaxSeedLen)
	}
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	var i [64]byte
	mac.Sum(i[:0])
	defer clear(i[:])

	k := &ExtendedKey{private: true}
	if overflow := k.key.SetByteSlice(i[:32]); overflow || k.key.IsZero() {
		k.key.Zero()
		return nil, errors.New("keys: seed yields an invalid master key (BIP-32); use another seed")
	}
	copy(k.chainCode[:], i[32:])
	k.pub = secp256k1.NewPrivateKey(&k.key).PubKey()
	return k, nil
}

// Child returns the child of k at index i; indices from Hardened up are
// hardened children, which only a private key can derive. If i yields no
// valid key the error wraps ErrInvalidChild.
func (k *ExtendedKey) Child(i uint32) (*ExtendedKey, error) {
	if k.zeroed {
		return nil, errors.New("keys: derivation from a zeroed key")
	}
	if k.depth == MaxDepth {
		return nil, fmt.Errorf("keys: child %s: depth would exceed %d", keypath.FormatIndex(i), MaxDepth)
	}
	if i >= Hardened && !k.private {
		return nil, fmt.Errorf("keys: child %s: hardened derivation needs a private key", keypath.FormatIndex(i))
	}

	mac := hmac.New(sha512.New, k.chainCode[:])
	var data [37]byte
	if i >= Hardened {
		// 0x00 || ser256(k_par) || ser32(i)
		k.key.PutBytesUnchecked(data[1:33])
	} else {
		// serP(K_par) || ser32(i)
		copy(data[:33], k.pub.SerializeCompressed())
	}
	binary.BigEndian.PutUint32(data[33:], i)
	mac.Write(data[:])
	clear(data[:])
	var sum [64]byte
	mac.Sum(sum[:0])
	defer clear(sum[:])
	return k.childFromHMAC(i, &sum)
}

// childFromHMAC completes CKDpriv or CKDpub given I = HMAC-SHA512(c_par,
// data). It is separate so that tests can reach the invalid-key cases, which
// no known input produces.
func (k *ExtendedKey) childFromHMAC(i uint32, sum *[64]byte) (*ExtendedKey, error) {
	invalid := func() error {
		return fmt.Errorf("%w at index %s (BIP-32: proceed with the next index)", ErrInvalidChild, keypath.FormatIndex(i))
	}
	var il secp256k1.ModNScalar
	defer il.Zero()
	if overflow := il.SetByteSlice(sum[:32]); overflow {
		return nil, invalid()
	}
	child := &ExtendedKey{
		parentFP: k.Fingerprint(),
		index:    i,
		depth:    k.depth + 1,
		private:  k.private,
	}
	copy(child.chainCode[:], sum[32:])
	if k.private {
		// k_i = parse256(I_L) + k_par (mod n)
		child.key.Add2(&il, &k.key)
		if child.key.IsZero() {
			return nil, invalid()
		}
		child.pub = secp256k1.NewPrivateKey(&child.key).PubKey()
		return child, nil
	}
	// K_i = point(parse256(I_L)) + K_par
	var p, parent, sumPoint secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&il, &p)
	k.pub.AsJacobian(&parent)
	secp256k1.AddNonConst(&p, &parent, &sumPoint)
	if (sumPoint.X.IsZero() && sumPoint.Y.IsZero()) || sumPoint.Z.IsZero() {
		return nil, invalid()
	}
	sumPoint.ToAffine()
	child.pub = secp256k1.NewPublicKey(&sumPoint.X, &sumPoint.Y)
	return child, nil
}

// Derive returns the descendant of k at path, applied relative to k: for a
// path written from "m", k should be the master key. Intermediate keys are
// zeroed. An empty path returns a copy of k.
func (k *ExtendedKey) Derive(path keypath.Path) (*ExtendedKey, error) {
	if k.zeroed {
		return nil, errors.New("keys: derivation from a zeroed key")
	}
	if int(k.depth)+len(path) > MaxDepth {
		return nil, fmt.Errorf("keys: derivation to depth %d exceeds %d", int(k.depth)+len(path), MaxDepth)
	}
	cur := k.clone()
	for _, i := range path {
		child, err := cur.Child(i)
		cur.Zero()
		if err != nil {
			return nil, err
		}
		cur = child
	}
	return cur, nil
}

func (k *ExtendedKey) clone() *ExtendedKey {
	c := *k
	return &c
}

// Neuter returns the public extended key of k (k itself if it is public).
func (k *ExtendedKey) Neuter() *ExtendedKey {
	n := &ExtendedKey{
		pub:       k.pub,
		chainCode: k.chainCode,
		parentFP:  k.parentFP,
		index:     k.index,
		depth:     k.depth,
		zeroed:    k.zeroed,
	}
	return n
}

// IsPrivate reports whether k holds a private key.
func (k *ExtendedKey) IsPrivate() bool { return k.private && !k.zeroed }

// PrivateKey returns a copy of k's private key, or nil if k is public or
// zeroed. The caller owns the copy and should Zero it when done.
func (k *ExtendedKey) PrivateKey() *secp256k1.PrivateKey {
	if !k.IsPrivate() {
		return nil
	}
	return secp256k1.NewPrivateKey(&k.key)
}

// PublicKey returns k's public key.
func (k *ExtendedKey) PublicKey() *secp256k1.PublicKey {
	pub := *k.pub
	return &pub
}

// Depth returns k's depth in the tree: 0 for the master key.
func (k *ExtendedKey) Depth() uint8 { return k.depth }

// Fingerprint returns the first four bytes of HASH160 of k's compressed
// public key, by which BIP-32 children name their parent.
func (k *ExtendedKey) Fingerprint() [4]byte {
	sha := sha256.Sum256(k.pub.SerializeCompressed())
	h := ripemd160.New()
	h.Write(sha[:])
	var fp [4]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

// String describes k without its secret: the xpub of a public key, and a
// redacted placeholder for a private key, so that printing or logging a key
// by mistake leaks nothing. Use Serialize for the xprv.
func (k *ExtendedKey) String() string {
	if k.private && !k.zeroed {
		return "keys.ExtendedKey(private, redacted)"
	}
	return k.Serialize()
}

// Serialize returns the BIP-32 serialization of k, base58check-encoded: an
// xprv for a private key (a secret: do not log it), an xpub for a public
// key, and an empty string for a zeroed key.
func (k *ExtendedKey) Serialize() string {
	if k.zeroed {
		return ""
	}
	var b [78 + 4]byte
	defer clear(b[:])
	if k.private {
		copy(b[0:4], versionPrivate[:])
	} else {
		copy(b[0:4], versionPublic[:])
	}
	b[4] = k.depth
	copy(b[5:9], k.parentFP[:])
	binary.BigEndian.PutUint32(b[9:13], k.index)
	copy(b[13:45], k.chainCode[:])
	if k.private {
		b[45] = 0
		k.key.PutBytesUnchecked(b[46:78])
	} else {
		copy(b[45:78], k.pub.SerializeCompressed())
	}
	first := sha256.Sum256(b[:78])
	check := sha256.Sum256(first[:])
	copy(b[78:], check[:4])
	return base58Encode(b[:])
}

// Zero overwrites k's private key and chain code. Afterwards k can derive
// nothing, PrivateKey returns nil and String returns "".
func (k *ExtendedKey) Zero() {
	k.key.Zero()
	clear(k.chainCode[:])
	k.zeroed = true
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Encode encodes b in Bitcoin's base58 alphabet, one '1' for each
// leading zero byte. It runs in time that depends only on len(b), except
// for the count of leading zeros, since it encodes private keys.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.366, so len*138/100+1 digits suffice.
	digits := make([]byte, len(b)*138/100+1)
	defer clear(digits)
	for _, c := range b {
		carry := uint32(c)
		for j := len(digits) - 1; j >= 0; j-- {
			carry += uint32(digits[j]) << 8
			digits[j] = byte(carry % 58)
			carry /= 58
		}
	}
	// Skip the leading zero digits of the number itself.
	start := 0
	for start < len(digits) && digits[start] == 0 {
		start++
	}
	out := make([]byte, zeros+len(digits)-start)
	for i := range zeros {
		out[i] = '1'
	}
	for i, d := range digits[start:] {
		out[zeros+i] = base58Alphabet[d]
	}
	return string(out)
}
