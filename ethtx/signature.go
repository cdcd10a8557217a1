package ethtx

import (
	"crypto/sha256"
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
//
// The signature is byte for byte decred's ecdsa.SignCompact (RFC 6979 with
// HMAC-SHA256, BIP 62 low S), which TestSignMatchesDecred and
// FuzzSignMatchesDecred check, and crosscheck/ethtx against go-ethereum. It
// is made from decred's own curve and scalar operations; only the nonce's
// HMAC runs here, on the stack, because decred's NonceRFC6979 allocates
// some fifteen times a signature and the enclave signs every request.
func Sign(priv *secp256k1.PrivateKey, hash [32]byte) Signature {
	var nonces rfc6979
	nonces.init(&priv.Key, &hash)
	defer nonces.clear()
	for {
		// A nonce that gives r = 0 or s = 0 is skipped for the next one,
		// as RFC 6979 section 3.4 and decred do; neither happens in
		// practice.
		k := nonces.next()
		sig, ok := signWithNonce(&priv.Key, &k, &hash)
		k.Zero()
		if ok {
			return sig
		}
	}
}

// signWithNonce is ECDSA's signing equation with nonce k, as decred's
// ecdsa.sign computes it: r = (kG).x mod n, s = k^-1 (e + d r) mod n, s
// negated when above n/2 (and the parity with it). It reports false when r
// or s is zero, for the caller to take the next nonce.
func signWithNonce(d, k *secp256k1.ModNScalar, hash *[32]byte) (Signature, bool) {
	var kG secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(k, &kG)
	kG.ToAffine()

	var buf [32]byte
	kG.X.PutBytes(&buf)
	var r secp256k1.ModNScalar
	overflow := r.SetBytes(&buf)
	if r.IsZero() {
		return Signature{}, false
	}
	// Bit 0 of the recovery code is the parity of kG's y, bit 1 whether its
	// x was reduced (at least n).
	recovery := byte(overflow<<1) | byte(kG.Y.IsOddBit())

	var e secp256k1.ModNScalar
	e.SetBytes(hash) // e = H(m) mod n
	var kinv, s secp256k1.ModNScalar
	kinv.InverseValNonConst(k)
	s.Mul2(d, &r).Add(&e).Mul(&kinv)
	kinv.Zero()
	if s.IsZero() {
		return Signature{}, false
	}
	if s.IsOverHalfOrder() {
		// -s is the signature of -k, whose point has the other parity.
		s.Negate()
		recovery ^= 1
	}
	var sig Signature
	r.PutBytesUnchecked(sig[:32])
	s.PutBytesUnchecked(sig[32:64])
	sig[64] = recovery
	return sig, true
}

// rfc6979 generates the nonces of RFC 6979 section 3.2 for secp256k1 and
// SHA-256 (qlen = hlen = 256 bits, so that one HMAC output is one
// candidate), as decred's NonceRFC6979 does without extra data: next
// returns the first candidate in [1, n-1], and on each later call the next
// one, which is NonceRFC6979's nonce with extraIterations one higher.
type rfc6979 struct {
	k, v   [32]byte
	xh     [64]byte // int2octets(x) || bits2octets(h1)
	primed bool     // steps B to G done
}

// init starts the nonces of private key d for hash h1.
func (g *rfc6979) init(d *secp256k1.ModNScalar, h1 *[32]byte) {
	var x [32]byte
	d.PutBytes(&x)
	copy(g.xh[:32], x[:])
	clear(x[:])
	// bits2octets(h1) is h1 mod n; decred writes h1 itself, which differs
	// only for an h1 of at least n (a 1-in-2^128 case, and a nonce just as
	// secret and unique). This does as decred does, so that signatures
	// stay byte for byte those made so far.
	copy(g.xh[32:], h1[:])
}

// next returns the next nonce candidate in [1, n-1].
func (g *rfc6979) next() secp256k1.ModNScalar {
	if !g.primed {
		// Step B: V = 0x01...; step C: K = 0x00....
		for i := range g.v {
			g.v[i] = 0x01
		}
		clear(g.k[:])
		// Step D: K = HMAC_K(V || 0x00 || x || h1); step E: V = HMAC_K(V).
		g.k = hmacSHA256(&g.k, g.v[:], []byte{0x00}, g.xh[:])
		g.v = hmacSHA256(&g.k, g.v[:], nil, nil)
		// Step F: K = HMAC_K(V || 0x01 || x || h1); step G: V = HMAC_K(V).
		g.k = hmacSHA256(&g.k, g.v[:], []byte{0x01}, g.xh[:])
		g.v = hmacSHA256(&g.k, g.v[:], nil, nil)
		g.primed = true
	} else {
		// After a candidate was taken (or refused): step H3's update.
		g.k = hmacSHA256(&g.k, g.v[:], []byte{0x00}, nil)
		g.v = hmacSHA256(&g.k, g.v[:], nil, nil)
	}
	for {
		// Step H2: V = HMAC_K(V), T = V; H3: k = bits2int(T), taken if
		// in [1, n-1].
		g.v = hmacSHA256(&g.k, g.v[:], nil, nil)
		var k secp256k1.ModNScalar
		if overflow := k.SetBytes(&g.v); overflow == 0 && !k.IsZero() {
			return k
		}
		g.k = hmacSHA256(&g.k, g.v[:], []byte{0x00}, nil)
		g.v = hmacSHA256(&g.k, g.v[:], nil, nil)
	}
}

// clear wipes the generator's state, which is derived from the private key.
func (g *rfc6979) clear() {
	clear(g.k[:])
	clear(g.v[:])
	clear(g.xh[:])
}

// hmacSHA256 is HMAC-SHA256 (RFC 2104) under the 32-byte key over a || b ||
// c, with a of at most 32 bytes, b of at most 1 and c of at most 64: the
// messages of RFC 6979. It works in buffers on the stack, so that signing
// allocates nothing for its nonce.
func hmacSHA256(key *[32]byte, a, b, c []byte) [32]byte {
	const block = sha256.BlockSize
	var inner [block + 32 + 1 + 64]byte
	for i := range block {
		var kb byte
		if i < len(key) {
			kb = key[i]
		}
		inner[i] = kb ^ 0x36
	}
	n := block
	n += copy(inner[n:], a)
	n += copy(inner[n:], b)
	n += copy(inner[n:], c)
	ih := sha256.Sum256(inner[:n])
	var outer [block + sha256.Size]byte
	for i := range block {
		var kb byte
		if i < len(key) {
			kb = key[i]
		}
		outer[i] = kb ^ 0x5c
	}
	copy(outer[block:], ih[:])
	out := sha256.Sum256(outer[:])
	clear(inner[:])
	clear(outer[:])
	return out
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
