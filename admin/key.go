package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/stamp"
)

// Domains for [SignDigest] and [VerifyDigest]. A signature made for one
// domain never verifies for another, so an admin's signature of a command
// cannot be replayed as an approval of a transaction, or the reverse.
const (
	// DomainCommand is the domain of admin signatures over commands; the
	// digest is the SHA-256 of the command's exact bytes.
	DomainCommand = "nitrosign admin command v1\n"
	// DomainApproval is the domain of approver signatures over the
	// enclave's digest of a transaction awaiting approval.
	DomainApproval = "nitrosign approval v1\n"
)

// maxDomain bounds the length of a domain, newline included.
const maxDomain = 128

// Signature sizes.
const (
	ed25519SigSize = ed25519.SignatureSize // 64
	p256MinSigSize = 8                     // SEQUENCE { INTEGER 1 byte, INTEGER 1 byte }
	p256MaxSigSize = 72                    // SEQUENCE { INTEGER 33 bytes, INTEGER 33 bytes }
	p256KeySize    = 33                    // SEC 1 compressed point
)

// Key is a public key checked for use as an admin or approver key: an
// Ed25519 key in canonical encoding and not of small order, or a compressed
// P-256 point on the curve. Make one with [NewKey]; a Key is immutable and
// safe for concurrent use.
type Key struct {
	pub stamp.PublicKey
	ec  *ecdsa.PublicKey // P-256 only
}

// NewKey checks pub and returns it as a Key (with its own copy of the key
// bytes). Like [stamp.ParsePublicKey] it refuses an unknown scheme, a key
// of the wrong size and a P-256 key that is not a compressed point on the
// curve; in addition it refuses Ed25519 keys that are not the canonical
// encoding of a curve point (y ≥ p, or the sign bit set for x = 0) and keys
// of small order (the identity and the other seven points whose order
// divides 8). Anyone can forge signatures that crypto/ed25519 accepts under
// a small-order key, so such a key must never count toward a quorum.
func NewKey(pub stamp.PublicKey) (*Key, error) {
	k := &Key{pub: stamp.PublicKey{Scheme: pub.Scheme, Key: bytes.Clone(pub.Key)}}
	switch pub.Scheme {
	case stamp.Ed25519:
		if err := checkEd25519Key(pub.Key); err != nil {
			return nil, fmt.Errorf("admin: public key: %w", err)
		}
	case stamp.P256:
		ec, err := decompressP256(pub.Key)
		if err != nil {
			return nil, fmt.Errorf("admin: public key: %w", err)
		}
		k.ec = ec
	default:
		return nil, fmt.Errorf("admin: public key: unknown scheme %s, want %q or %q", quote(string(pub.Scheme)), stamp.Ed25519, stamp.P256)
	}
	return k, nil
}

// PublicKey returns a copy of the key.
func (k *Key) PublicKey() stamp.PublicKey {
	return stamp.PublicKey{Scheme: k.pub.Scheme, Key: bytes.Clone(k.pub.Key)}
}

// VerifyDigest reports whether sig is k's signature of digest in domain, in
// the encoding [SignDigest] documents. It returns nil if it is, and an error
// saying why not otherwise.
func (k *Key) VerifyDigest(domain string, digest [32]byte, sig []byte) error {
	if k == nil || k.pub.Scheme == "" {
		return errors.New("admin: nil key")
	}
	if err := checkDomain(domain); err != nil {
		return err
	}
	msg := message(domain, digest)
	switch k.pub.Scheme {
	case stamp.Ed25519:
		if len(sig) != ed25519SigSize {
			return fmt.Errorf("admin: ed25519 signature is %d bytes, want %d", len(sig), ed25519SigSize)
		}
		if !ed25519.Verify(ed25519.PublicKey(k.pub.Key), msg, sig) {
			return errors.New("admin: ed25519 signature does not verify")
		}
		return nil
	case stamp.P256:
		if len(sig) < p256MinSigSize || len(sig) > p256MaxSigSize {
			if len(sig) == 64 {
				return errors.New("admin: p256 signature is 64 bytes: raw r||s is not accepted, want ASN.1 DER")
			}
			return fmt.Errorf("admin: p256 signature is %d bytes, want %d to %d (ASN.1 DER)", len(sig), p256MinSigSize, p256MaxSigSize)
		}
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k.ec, h[:], sig) {
			if len(sig) == 64 && sig[0] != 0x30 {
				return errors.New("admin: p256 signature is not ASN.1 DER (raw r||s is not accepted)")
			}
			return errors.New("admin: p256 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("admin: unsupported scheme %s", quote(string(k.pub.Scheme)))
}

// SignDigest signs digest in domain with s and returns the signature.
//
// The message signed is domain || digest: the domain's bytes (printable
// ASCII ending in a single "\n", such as [DomainApproval]) followed by the 32
// digest bytes. For Ed25519 the signature is pure Ed25519 (RFC 8032) of the
// message, 64 bytes. For P-256 it is ECDSA over SHA-256 of the message,
// encoded as ASN.1 DER (at most 72 bytes), which is what a [stamp.Signer]'s
// SignBody returns; both low and high S are valid.
//
// SignDigest refuses a signer whose key [NewKey] refuses, and checks the
// signature it got before returning it, so that a faulty signer (a broken
// HSM, a mismatched key) is caught on the signer's side.
func SignDigest(s stamp.Signer, domain string, digest [32]byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("admin: nil signer")
	}
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	k, err := NewKey(s.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("admin: signer: %w", err)
	}
	sig, err := s.SignBody(message(domain, digest))
	if err != nil {
		return nil, fmt.Errorf("admin: signing: %w", err)
	}
	if err := k.VerifyDigest(domain, digest, sig); err != nil {
		return nil, fmt.Errorf("admin: the signer produced a signature that does not verify under its own key: %w", err)
	}
	return sig, nil
}

// VerifyDigest checks pub with [NewKey] and then sig with
// [Key.VerifyDigest]. To verify many signatures under one key, make the Key
// once.
func VerifyDigest(pub stamp.PublicKey, domain string, digest [32]byte, sig []byte) error {
	k, err := NewKey(pub)
	if err != nil {
		return err
	}
	return k.VerifyDigest(domain, digest, sig)
}

// message returns domain || digest.
func message(domain string, digest [32]byte) []byte {
	m := make([]byte, 0, len(domain)+len(digest))
	m = append(m, domain...)
	return append(m, digest[:]...)
}

// checkDomain enforces the domain rule: 1 to maxDomain-1 printable ASCII
// characters, then "\n". Because a domain holds exactly one newline, at its
// end, no domain is a prefix of another, and since the digest has a fixed
// length, domain || digest determines both.
func checkDomain(d string) error {
	if len(d) < 2 || len(d) > maxDomain || d[len(d)-1] != '\n' {
		return fmt.Errorf("admin: signature domain %s: want 1 to %d printable ASCII characters followed by a newline", quote(d), maxDomain-1)
	}
	for i := 0; i < len(d)-1; i++ {
		if d[i] < 0x20 || d[i] > 0x7e {
			return fmt.Errorf("admin: signature domain %s: byte %d is not printable ASCII", quote(d), i)
		}
	}
	return nil
}

func decompressP256(key []byte) (*ecdsa.PublicKey, error) {
	if len(key) != p256KeySize {
		return nil, fmt.Errorf("p256 key is %d bytes, want %d (a compressed point)", len(key), p256KeySize)
	}
	if key[0] != 0x02 && key[0] != 0x03 {
		return nil, fmt.Errorf("p256 key must be a compressed point (prefix 02 or 03), got prefix %02x", key[0])
	}
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), key)
	if x == nil {
		return nil, errors.New("p256 key is not a point on the curve")
	}
	uncompressed := make([]byte, 65)
	uncompressed[0] = 0x04
	x.FillBytes(uncompressed[1:33])
	y.FillBytes(uncompressed[33:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), uncompressed)
	if err != nil {
		return nil, fmt.Errorf("p256 key: %v", err)
	}
	return pub, nil
}

// smallOrderEd25519 lists every 32-byte string that decodes (as RFC 8032
// decoders, lenient ones included, read it) to an Ed25519 point of small
// order: the eight canonical encodings of the points of order 1, 2, 4 and 8,
// and the six non-canonical ones (y + p for y = 0 and 1, each with either
// sign bit, and x = 0 with the sign bit set for y = 1 and y = p - 1).
// checkEd25519Key also catches all of them arithmetically; the list is a
// cross-check that does not depend on that arithmetic.
var smallOrderEd25519 = [][]byte{
	// order 1: the identity (0, 1)
	mustHex("0100000000000000000000000000000000000000000000000000000000000000"),
	// order 2: (0, -1)
	mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	// order 4: (±sqrt(-1), 0)
	mustHex("0000000000000000000000000000000000000000000000000000000000000000"),
	mustHex("0000000000000000000000000000000000000000000000000000000000000080"),
	// order 8
	mustHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
	mustHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
	mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
	mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
	// non-canonical: x = 0 with the sign bit set
	mustHex("0100000000000000000000000000000000000000000000000000000000000080"),
	mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	// non-canonical: y = p (≡ 0) and y = p + 1 (≡ 1), either sign bit
	mustHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	mustHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Curve25519 in twisted Edwards form: -x² + y² = 1 + d·x²·y² over GF(p).
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edD = func() *big.Int {
		d := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, edP)
	}()
)

var (
	errEdNonCanonical = errors.New("ed25519 key is not a canonical point encoding")
	errEdNotOnCurve   = errors.New("ed25519 key is not a point on the curve")
	errEdSmallOrder   = errors.New("ed25519 key is a point of small order (anyone could forge its signatures)")
)

// checkEd25519Key refuses a 32-byte Ed25519 key that is not the canonical
// encoding of a curve point, or whose point has an order dividing 8.
func checkEd25519Key(k []byte) error {
	if len(k) != ed25519.PublicKeySize {
		return fmt.Errorf("ed25519 key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
	}
	for _, bad := range smallOrderEd25519 {
		if bytes.Equal(k, bad) {
			return errEdSmallOrder
		}
	}
	x, y, err := decodeEdPoint(k)
	if err != nil {
		return err
	}
	if edSmallOrder(x, y) {
		return errEdSmallOrder
	}
	return nil
}

// decodeEdPoint decodes an RFC 8032 point encoding (§5.1.3), refusing
// non-canonical encodings.
func decodeEdPoint(k []byte) (x, y *big.Int, err error) {
	be := make([]byte, len(k))
	for i := range k {
		be[len(k)-1-i] = k[i]
	}
	sign := uint(be[0] >> 7)
	be[0] &= 0x7f
	y = new(big.Int).SetBytes(be)
	if y.Cmp(edP) >= 0 {
		return nil, nil, errEdNonCanonical
	}
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, edP)
	u := new(big.Int).Sub(y2, big.NewInt(1)) // y² - 1
	v := new(big.Int).Mul(edD, y2)           // d·y² + 1, never 0: -1/d is not a square
	v.Add(v, big.NewInt(1))
	v.Mod(v, edP)
	x2 := new(big.Int).ModInverse(v, edP)
	x2.Mul(x2, u)
	x2.Mod(x2, edP)
	x = new(big.Int).ModSqrt(x2, edP)
	if x == nil {
		return nil, nil, errEdNotOnCurve
	}
	if x.Sign() == 0 && sign == 1 {
		return nil, nil, errEdNonCanonical
	}
	if x.Bit(0) != sign {
		x.Sub(edP, x)
	}
	return x, y, nil
}

// edAdd adds two points with the complete twisted Edwards addition law
// (a = -1, d not a square, so the denominators never vanish).
func edAdd(x1, y1, x2, y2 *big.Int) (x3, y3 *big.Int) {
	t := new(big.Int).Mul(x1, x2)
	t.Mul(t, y1)
	t.Mul(t, y2)
	t.Mul(t, edD)
	t.Mod(t, edP)

	xn := new(big.Int).Mul(x1, y2)
	xn.Add(xn, new(big.Int).Mul(y1, x2))
	xd := new(big.Int).Add(big.NewInt(1), t)
	xd.ModInverse(xd, edP)
	x3 = xn.Mul(xn, xd)
	x3.Mod(x3, edP)

	yn := new(big.Int).Mul(y1, y2)
	yn.Add(yn, new(big.Int).Mul(x1, x2))
	yd := new(big.Int).Sub(big.NewInt(1), t)
	yd.Mod(yd, edP)
	yd.ModInverse(yd, edP)
	y3 = yn.Mul(yn, yd)
	y3.Mod(y3, edP)
	return x3, y3
}

// edSmallOrder reports whether [8]P is the identity (0, 1).
func edSmallOrder(x, y *big.Int) bool {
	for range 3 {
		x, y = edAdd(x, y, x, y)
	}
	return x.Sign() == 0 && y.Cmp(big.NewInt(1)) == 0
}
