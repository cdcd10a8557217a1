package stamp

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
)

// A small implementation of the Edwards form of Curve25519 with math/big,
// written for these tests only: it finds the points of small order from
// first principles, so that the list in CheckPublicKey is checked rather
// than trusted.

var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// edD is -121665/121666 mod p.
	edD = func() *big.Int {
		n := new(big.Int).Neg(big.NewInt(121665))
		inv := new(big.Int).ModInverse(big.NewInt(121666), edP)
		return n.Mul(n, inv).Mod(n, edP)
	}()
	// edL is the order of the prime-order subgroup.
	edL, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
)

type edPoint struct{ x, y *big.Int }

func edIdentity() edPoint { return edPoint{big.NewInt(0), big.NewInt(1)} }

func (a edPoint) equal(b edPoint) bool { return a.x.Cmp(b.x) == 0 && a.y.Cmp(b.y) == 0 }

func mod(v *big.Int) *big.Int { return v.Mod(v, edP) }

// add is the complete twisted Edwards addition law for a = -1.
func (a edPoint) add(b edPoint) edPoint {
	x1y2 := mod(new(big.Int).Mul(a.x, b.y))
	y1x2 := mod(new(big.Int).Mul(a.y, b.x))
	x1x2 := mod(new(big.Int).Mul(a.x, b.x))
	y1y2 := mod(new(big.Int).Mul(a.y, b.y))
	dxy := mod(new(big.Int).Mul(edD, mod(new(big.Int).Mul(x1x2, y1y2))))
	one := big.NewInt(1)
	xn := mod(new(big.Int).Add(x1y2, y1x2))
	xd := mod(new(big.Int).Add(one, dxy))
	yn := mod(new(big.Int).Add(y1y2, x1x2))
	yd := mod(new(big.Int).Sub(one, dxy))
	x := mod(new(big.Int).Mul(xn, new(big.Int).ModInverse(xd, edP)))
	y := mod(new(big.Int).Mul(yn, new(big.Int).ModInverse(yd, edP)))
	return edPoint{x, y}
}

func (a edPoint) mul(k *big.Int) edPoint {
	r := edIdentity()
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = r.add(r)
		if k.Bit(i) == 1 {
			r = r.add(a)
		}
	}
	return r
}

// decode decompresses an encoding without any canonicality check (y is
// reduced mod p), or reports false when no point has that y.
func edDecode(enc [32]byte) (edPoint, bool) {
	sign := enc[31] >> 7
	enc[31] &= 0x7f
	le := make([]byte, 32)
	for i := range le {
		le[i] = enc[31-i]
	}
	y := mod(new(big.Int).SetBytes(le))
	y2 := mod(new(big.Int).Mul(y, y))
	num := mod(new(big.Int).Sub(y2, big.NewInt(1)))
	den := mod(new(big.Int).Add(mod(new(big.Int).Mul(edD, y2)), big.NewInt(1)))
	x2 := mod(new(big.Int).Mul(num, new(big.Int).ModInverse(den, edP)))
	x := new(big.Int).ModSqrt(x2, edP)
	if x == nil {
		return edPoint{}, false
	}
	if x.Bit(0) != uint(sign) {
		x.Sub(edP, x)
		mod(x)
	}
	return edPoint{x, y}, true
}

func (a edPoint) encode() [32]byte {
	var enc [32]byte
	b := a.y.FillBytes(make([]byte, 32))
	for i := range enc {
		enc[i] = b[31-i]
	}
	enc[31] |= byte(a.x.Bit(0)) << 7
	return enc
}

// torsion returns the eight points whose order divides 8, found as [L]P for
// points P of the curve, which lands in the torsion subgroup.
func torsion(t testing.TB) []edPoint {
	t.Helper()
	var found []edPoint
	for y := int64(2); y < 1000 && len(found) < 8; y++ {
		var enc [32]byte
		big.NewInt(y).FillBytes(enc[:])
		for i, j := 0, 31; i < j; i, j = i+1, j-1 {
			enc[i], enc[j] = enc[j], enc[i]
		}
		p, ok := edDecode(enc)
		if !ok {
			continue
		}
		q := p.mul(edL)
		if !q.mul(big.NewInt(8)).equal(edIdentity()) {
			t.Fatalf("[8][L]P is not the identity for y = %d: the curve arithmetic is wrong", y)
		}
		dup := false
		for _, f := range found {
			dup = dup || f.equal(q)
		}
		if !dup {
			found = append(found, q)
		}
	}
	if len(found) != 8 {
		t.Fatalf("found %d torsion points, want 8", len(found))
	}
	return found
}

func TestCheckPublicKeySmallOrder(t *testing.T) {
	ed := func(b [32]byte) PublicKey { return PublicKey{Scheme: Ed25519, Key: b[:]} }
	// Every encoding of every point of small order is refused, with
	// either sign bit.
	for _, q := range torsion(t) {
		enc := q.encode()
		for _, sign := range []byte{0, 0x80} {
			e := enc
			e[31] = e[31]&0x7f | sign
			if err := CheckPublicKey(ed(e)); !errors.Is(err, ErrMalformed) {
				t.Errorf("small-order point %x: CheckPublicKey = %v, want ErrMalformed", e, err)
			}
			if _, err := ParsePublicKey(Ed25519, hex.EncodeToString(e[:])); !errors.Is(err, ErrMalformed) {
				t.Errorf("small-order point %x: ParsePublicKey = %v, want ErrMalformed", e, err)
			}
		}
	}
	// The list holds nothing else: each entry is a small-order point.
	for _, y := range smallOrderY {
		p, ok := edDecode(y)
		if !ok || !p.mul(big.NewInt(8)).equal(edIdentity()) {
			t.Errorf("smallOrderY entry %x is not a point of small order", y)
		}
	}
	// The two the literature names first: the identity and the point of
	// order 2.
	for _, h := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	} {
		if _, err := ParsePublicKey(Ed25519, h); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePublicKey(%s) = %v, want ErrMalformed", h, err)
		}
	}
}

func TestCheckPublicKeyNonCanonical(t *testing.T) {
	// y = p + k for k = 0..18, both signs: the non-canonical encodings of
	// y = k, whatever point that is.
	for k := 0; k <= 18; k++ {
		for _, sign := range []byte{0, 0x80} {
			var e [32]byte
			for i := range e {
				e[i] = 0xff
			}
			e[0] = byte(0xed + k)
			e[31] = 0x7f | sign
			if err := CheckPublicKey(PublicKey{Scheme: Ed25519, Key: e[:]}); !errors.Is(err, ErrMalformed) {
				t.Errorf("y = p+%d, sign %x: CheckPublicKey = %v, want ErrMalformed", k, sign, err)
			}
		}
	}
	// "Negative zero": x = 0 with the sign bit set, for y = 1 and y = -1.
	for _, h := range []string{
		"0100000000000000000000000000000000000000000000000000000000000080",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	} {
		if _, err := ParsePublicKey(Ed25519, h); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePublicKey(%s) = %v, want ErrMalformed", h, err)
		}
	}
	// The largest canonical y, p-1, is the point of order 2 (refused
	// above); p-2 is canonical and must pass the canonicality check.
	var e [32]byte
	for i := range e {
		e[i] = 0xff
	}
	e[0], e[31] = 0xeb, 0x7f
	if yAtLeastP(&e) {
		t.Error("y = p-2 taken for a non-canonical encoding")
	}
}

func TestCheckPublicKeyAcceptsRealKeys(t *testing.T) {
	for range 200 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPublicKey(PublicKey{Scheme: Ed25519, Key: pub}); err != nil {
			t.Fatalf("generated key %x refused: %v", pub, err)
		}
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewP256Signer(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPublicKey(s.PublicKey()); err != nil {
		t.Fatalf("P-256 key refused: %v", err)
	}
	for _, tt := range []struct {
		name string
		k    PublicKey
	}{
		{"unknown scheme", PublicKey{Scheme: "rsa", Key: make([]byte, 32)}},
		{"short ed25519", PublicKey{Scheme: Ed25519, Key: make([]byte, 31)}},
		{"p256 uncompressed prefix", PublicKey{Scheme: P256, Key: append([]byte{0x04}, make([]byte, 32)...)}},
		{"p256 wrong size", PublicKey{Scheme: P256, Key: s.PublicKey().Key[:32]}},
	} {
		if err := CheckPublicKey(tt.k); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: CheckPublicKey = %v, want ErrMalformed", tt.name, err)
		}
	}
}

// TestSmallOrderForgery shows why the check exists: under the identity as a
// public key, crypto/ed25519 accepts the signature (R = identity, S = 0) for
// any message, and Verify must refuse that stamp.
func TestSmallOrderForgery(t *testing.T) {
	identity, _ := hex.DecodeString("0100000000000000000000000000000000000000000000000000000000000000")
	sig := make([]byte, 64)
	sig[0] = 0x01 // R = the identity, S = 0
	if !ed25519.Verify(identity, testBody, sig) {
		t.Skip("crypto/ed25519 refuses the small-order forgery by itself")
	}
	h := mk("ed25519", hex.EncodeToString(identity), hex.EncodeToString(sig))
	if _, err := Verify(h, testBody); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Verify of a stamp forged under the identity key = %v, want ErrMalformed", err)
	}
}
