package stamp

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
)

// CheckPublicKey checks that k may be registered, as a client or an approver
// key, and returns an error wrapping [ErrMalformed] if not:
//   - the scheme must be [Ed25519] or [P256], with a key of the right size;
//   - a P-256 key must be a compressed point on the curve;
//   - an Ed25519 key must be a canonical encoding, whose y coordinate is
//     below the field prime p = 2^255-19 (crypto/ed25519 reduces larger
//     values, so one point would have two encodings, and two identities),
//     and not a point of small order: the identity, the point of order 2 and
//     the six points of order 4 and 8, whatever the sign bit (which covers
//     the non-canonical "negative zero" encodings of the identity and of the
//     point of order 2).
//
// Small-order keys matter because crypto/ed25519 verifies without a
// cofactor check: under such a key, a signature whose R is a small-order
// point and whose S is zero verifies for many messages (for the identity
// key, for every message), so whoever can register one needs no private
// key at all. CheckPublicKey does not decode the point: an Ed25519 key that
// is not on the curve verifies no signature.
//
// The check is a few byte comparisons; [Verify] makes it on every stamp that
// verifies.
func CheckPublicKey(k PublicKey) error {
	_, _, err := parseKeyBytes(k.Scheme, k.Key, true)
	return err
}

// parseKeyBytes checks key bytes of the given scheme, as parseKey does for
// hex, and returns a copy with its P-256 form when it has one. With
// checkOrder it also refuses what checkEd25519 refuses.
func parseKeyBytes(scheme Scheme, key []byte, checkOrder bool) (PublicKey, *ecdsa.PublicKey, error) {
	switch scheme {
	case Ed25519:
		if len(key) != ed25519KeySize {
			return PublicKey{}, nil, fmt.Errorf("%w: public_key is %d bytes, want %d", ErrMalformed, len(key), ed25519KeySize)
		}
		if checkOrder {
			if err := checkEd25519(key); err != nil {
				return PublicKey{}, nil, err
			}
		}
		return PublicKey{Scheme: Ed25519, Key: bytes.Clone(key)}, nil, nil
	case P256:
		if len(key) != p256KeySize {
			return PublicKey{}, nil, fmt.Errorf("%w: public_key is %d bytes, want %d", ErrMalformed, len(key), p256KeySize)
		}
		// The copy is decompressed rather than key, which may then be a
		// buffer on the caller's stack: crypto/elliptic keeps its input
		// out of escape analysis's sight.
		k := PublicKey{Scheme: P256, Key: bytes.Clone(key)}
		pub, err := decompressP256(k.Key)
		if err != nil {
			return PublicKey{}, nil, err
		}
		return k, pub, nil
	}
	return PublicKey{}, nil, fmt.Errorf("%w: unknown scheme %s, want %q or %q", ErrMalformed, quote(string(scheme)), Ed25519, P256)
}

// smallOrderY lists the y coordinates (little-endian, as encoded, sign bit
// clear) of the eight points of Curve25519's Edwards form whose order divides
// 8: y = 1 (the identity, order 1), y = p-1 (order 2), y = 0 (the two points
// of order 4), and y = ±y8 (the four points of order 8). Each y stands for
// the points ±x that share it, so the sign bit is ignored when comparing.
var smallOrderY = [][32]byte{
	// 0: (±sqrt(-1), 0), order 4.
	{},
	// 1: (0, 1), the identity.
	{0x01},
	// p-1: (0, -1), order 2.
	{
		0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
	},
	// y8, order 8.
	{
		0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
	},
	// p-y8, order 8.
	{
		0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
	},
}

// checkEd25519 refuses a 32-byte Ed25519 key that is not canonical or is of
// small order; see [CheckPublicKey].
func checkEd25519(key []byte) error {
	var y [32]byte
	copy(y[:], key)
	y[31] &= 0x7f // drop the sign of x
	if yAtLeastP(&y) {
		return fmt.Errorf("%w: public_key: not a canonical ed25519 encoding (y is not below 2^255-19)", ErrMalformed)
	}
	for _, s := range smallOrderY {
		if y == s {
			return fmt.Errorf("%w: public_key: an ed25519 point of small order (anyone can forge signatures under it)", ErrMalformed)
		}
	}
	return nil
}

// yAtLeastP reports whether the little-endian 255-bit y is at least
// p = 2^255-19: bytes 31 down to 1 all at their maximum (0x7f, then 0xff)
// and byte 0 at least 0xed.
func yAtLeastP(y *[32]byte) bool {
	if y[31] != 0x7f {
		return false
	}
	for i := 30; i >= 1; i-- {
		if y[i] != 0xff {
			return false
		}
	}
	return y[0] >= 0xed
}
