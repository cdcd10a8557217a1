package admin

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/stamp"
)

// The small-order Ed25519 encodings by order, as published (for example in
// "Taming the many EdDSAs", Chalkias et al., 2020, and libsodium's
// blocklist), independently of the list in key.go.
var smallOrderByOrder = []struct {
	name, hex string
	order     int
}{
	{"identity", "0100000000000000000000000000000000000000000000000000000000000000", 1},
	{"order 2", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 2},
	{"order 4 +", "0000000000000000000000000000000000000000000000000000000000000000", 4},
	{"order 4 -", "0000000000000000000000000000000000000000000000000000000000000080", 4},
	{"order 8 a", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", 8},
	{"order 8 b", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", 8},
	{"order 8 c", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", 8},
	{"order 8 d", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", 8},
}

// Non-canonical encodings of small-order points.
var smallOrderNonCanonical = []string{
	"0100000000000000000000000000000000000000000000000000000000000080", // identity, x = -0
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // order 2, x = -0
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p ≡ 0
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1 ≡ 1
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}

// order returns the order of a small-order point (1, 2, 4 or 8), or 0.
func order(x, y *big.Int) int {
	isIdentity := func(x, y *big.Int) bool { return x.Sign() == 0 && y.Cmp(big.NewInt(1)) == 0 }
	for n := 1; n <= 8; n *= 2 {
		if isIdentity(x, y) {
			return n
		}
		x, y = edAdd(x, y, x, y)
	}
	return 0
}

// TestSmallOrderArithmetic checks the arithmetic on its own (without the
// list in key.go): each published small-order point decodes to a point of
// the stated order, each non-canonical one is refused as such, and random
// keys are neither.
func TestSmallOrderArithmetic(t *testing.T) {
	for _, p := range smallOrderByOrder {
		x, y, err := decodeEdPoint(mustDecode(t, p.hex))
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		if got := order(x, y); got != p.order {
			t.Errorf("%s: order %d, want %d", p.name, got, p.order)
		}
		if !edSmallOrder(x, y) {
			t.Errorf("%s: edSmallOrder = false", p.name)
		}
	}
	for _, h := range smallOrderNonCanonical {
		if _, _, err := decodeEdPoint(mustDecode(t, h)); !errors.Is(err, errEdNonCanonical) {
			t.Errorf("%s: %v, want errEdNonCanonical", h, err)
		}
	}
	for range 200 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		x, y, err := decodeEdPoint(pub)
		if err != nil {
			t.Fatalf("random key %x: %v", pub, err)
		}
		if edSmallOrder(x, y) {
			t.Fatalf("random key %x reported of small order", pub)
		}
		// The base point has order L, so [L]P is the identity for every
		// honest key: a check that the addition law is right.
		if !isIdentityAfterL(x, y) {
			t.Fatalf("random key %x: [L]P is not the identity; the curve arithmetic is wrong", pub)
		}
	}
}

// isIdentityAfterL computes [L]P by double-and-add.
func isIdentityAfterL(x, y *big.Int) bool {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	rx, ry := big.NewInt(0), big.NewInt(1)
	for i := l.BitLen() - 1; i >= 0; i-- {
		rx, ry = edAdd(rx, ry, rx, ry)
		if l.Bit(i) == 1 {
			rx, ry = edAdd(rx, ry, x, y)
		}
	}
	return rx.Sign() == 0 && ry.Cmp(big.NewInt(1)) == 0
}

// TestSmallOrderListComplete: the list in key.go holds exactly the
// published encodings, canonical and not.
func TestSmallOrderListComplete(t *testing.T) {
	want := map[string]bool{}
	for _, p := range smallOrderByOrder {
		want[p.hex] = true
	}
	for _, h := range smallOrderNonCanonical {
		want[h] = true
	}
	got := map[string]bool{}
	for _, b := range smallOrderEd25519 {
		got[hex.EncodeToString(b)] = true
	}
	if len(got) != len(smallOrderEd25519) || len(got) != len(want) {
		t.Fatalf("list has %d entries (%d distinct), want %d", len(smallOrderEd25519), len(got), len(want))
	}
	for h := range want {
		if !got[h] {
			t.Errorf("list misses %s", h)
		}
	}
}

// TestSmallOrderKeyForgery shows why small-order keys are refused:
// crypto/ed25519 accepts a signature that anyone can make under the
// identity key, for any message; NewKey and NewSet refuse the key.
func TestSmallOrderKeyForgery(t *testing.T) {
	identity := mustDecode(t, smallOrderByOrder[0].hex)
	forged := append(append([]byte{}, identity...), make([]byte, 32)...) // R = identity, S = 0
	msg := message(DomainCommand, sha256.Sum256([]byte("anything")))
	if !ed25519.Verify(identity, msg, forged) {
		t.Fatal("crypto/ed25519 refuses the forgery; this test no longer shows the danger")
	}
	if err := VerifyDigest(stamp.PublicKey{Scheme: stamp.Ed25519, Key: identity}, DomainCommand, sha256.Sum256([]byte("anything")), forged); err == nil {
		t.Fatal("VerifyDigest accepted a forgery under the identity key")
	}
}

func TestSmallOrderKeysRefused(t *testing.T) {
	all := map[string]string{}
	for _, p := range smallOrderByOrder {
		all[p.name] = p.hex
	}
	for i, h := range smallOrderNonCanonical {
		all["non-canonical "+string(rune('a'+i))] = h
	}
	good := testConfig(t)
	for name, h := range all {
		t.Run(name, func(t *testing.T) {
			key := mustDecode(t, h)
			if _, err := NewKey(stamp.PublicKey{Scheme: stamp.Ed25519, Key: key}); err == nil {
				t.Error("NewKey accepted it")
			}
			// Without the list, the arithmetic refuses it too.
			x, y, err := decodeEdPoint(key)
			if err == nil && !edSmallOrder(x, y) {
				t.Error("the arithmetic alone accepts it")
			}
			c := good
			c.Members = append(append([]Member{}, good.Members...), Member{Name: "zed", Scheme: stamp.Ed25519, PublicKey: h})
			_, err = NewSet(c)
			if err == nil {
				t.Fatal("NewSet accepted it")
			}
			if !strings.Contains(err.Error(), "members[3] (zed)") || !strings.Contains(err.Error(), "ed25519 key") {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestEd25519NonCanonicalAndOffCurve: an encoding with y ≥ p of a point
// that is not of small order, and a y with no point, are refused.
func TestEd25519NonCanonicalAndOffCurve(t *testing.T) {
	var onCurve, offCurve int
	for k := int64(2); k <= 18; k++ {
		canon := make([]byte, 32)
		canon[0] = byte(k)
		_, _, err := decodeEdPoint(canon)
		switch {
		case err == nil:
			onCurve++
			// y = p + k encodes the same point non-canonically.
			v := new(big.Int).Add(edP, big.NewInt(k))
			enc := le32(v)
			if _, err := NewKey(stamp.PublicKey{Scheme: stamp.Ed25519, Key: enc}); err == nil || !strings.Contains(err.Error(), "not a canonical") {
				t.Errorf("y = p + %d: %v", k, err)
			}
			if _, err := NewKey(stamp.PublicKey{Scheme: stamp.Ed25519, Key: canon}); err != nil {
				t.Errorf("y = %d: canonical encoding refused: %v", k, err)
			}
		case errors.Is(err, errEdNotOnCurve):
			offCurve++
			if _, err := NewKey(stamp.PublicKey{Scheme: stamp.Ed25519, Key: canon}); err == nil || !strings.Contains(err.Error(), "not a point on the curve") {
				t.Errorf("y = %d: %v", k, err)
			}
		default:
			t.Errorf("y = %d: %v", k, err)
		}
	}
	if onCurve == 0 || offCurve == 0 {
		t.Fatalf("%d on and %d off the curve: the test proves nothing", onCurve, offCurve)
	}
}

func le32(v *big.Int) []byte {
	be := v.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

func TestNewKeyRefuses(t *testing.T) {
	p := newDetP256(t, "bob").pub.Key
	uncompressed := func() []byte {
		priv, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), sha256.New().Sum(nil)[:32])
		u, _ := priv.PublicKey.Bytes()
		return u
	}()
	offCurve := p256OffCurveX(t)
	cases := []struct {
		name string
		pub  stamp.PublicKey
		msg  string
	}{
		{"unknown scheme", stamp.PublicKey{Scheme: "secp256k1", Key: p}, "unknown scheme"},
		{"empty scheme", stamp.PublicKey{Key: p}, "unknown scheme"},
		{"ed25519 short", stamp.PublicKey{Scheme: stamp.Ed25519, Key: make([]byte, 31)}, "31 bytes"},
		{"ed25519 nil", stamp.PublicKey{Scheme: stamp.Ed25519}, "0 bytes"},
		{"p256 uncompressed", stamp.PublicKey{Scheme: stamp.P256, Key: uncompressed}, "65 bytes"},
		{"p256 bad prefix", stamp.PublicKey{Scheme: stamp.P256, Key: append([]byte{0x04}, p[1:]...)}, "prefix 04"},
		{"p256 off curve", stamp.PublicKey{Scheme: stamp.P256, Key: offCurve}, "not a point on the curve"},
		{"p256 x ≥ p", stamp.PublicKey{Scheme: stamp.P256, Key: append([]byte{0x02}, bytesFF(32)...)}, "not a point on the curve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKey(tc.pub)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("NewKey: %v, want %q", err, tc.msg)
			}
		})
	}
	if _, err := NewKey(stamp.PublicKey{Scheme: stamp.P256, Key: p}); err != nil {
		t.Errorf("baseline p256 key refused: %v", err)
	}
}

// p256OffCurveX returns a compressed encoding of an x with no point on
// P-256: x³ - 3x + b is not a square mod p (Jacobi symbol -1).
func p256OffCurveX(t *testing.T) []byte {
	params := elliptic.P256().Params()
	for x := int64(1); x < 100; x++ {
		bx := big.NewInt(x)
		rhs := new(big.Int).Exp(bx, big.NewInt(3), params.P)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), bx))
		rhs.Add(rhs, params.B)
		rhs.Mod(rhs, params.P)
		if big.Jacobi(rhs, params.P) == -1 {
			return append([]byte{0x02}, bx.FillBytes(make([]byte, 32))...)
		}
	}
	t.Fatal("no x below 100 is off the curve")
	return nil
}

func bytesFF(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// TestCrossCheckEd25519: SignDigest is pure Ed25519 of domain || digest,
// as crypto/ed25519 computes it, and VerifyDigest accepts what
// crypto/ed25519 signs.
func TestCrossCheckEd25519(t *testing.T) {
	priv := ed25519Priv("cross-check")
	signer, err := stamp.NewEd25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub := signer.PublicKey()
	for _, domain := range []string{DomainCommand, DomainApproval, "x\n"} {
		digest := sha256.Sum256([]byte(domain))
		sig, err := SignDigest(signer, domain, digest)
		if err != nil {
			t.Fatal(err)
		}
		want := ed25519.Sign(priv, append([]byte(domain), digest[:]...))
		if hex.EncodeToString(sig) != hex.EncodeToString(want) {
			t.Fatalf("%q: SignDigest %x, crypto/ed25519 %x", domain, sig, want)
		}
		if !ed25519.Verify(ed25519.PublicKey(pub.Key), append([]byte(domain), digest[:]...), sig) {
			t.Fatal("crypto/ed25519 refuses SignDigest's signature")
		}
		if err := VerifyDigest(pub, domain, digest, want); err != nil {
			t.Fatalf("VerifyDigest refuses crypto/ed25519's signature: %v", err)
		}
		other := DomainApproval
		if domain == DomainApproval {
			other = DomainCommand
		}
		if err := VerifyDigest(pub, other, digest, sig); err == nil {
			t.Fatalf("signature for %q verifies for %q", domain, other)
		}
		digest[0] ^= 1
		if err := VerifyDigest(pub, domain, digest, sig); err == nil {
			t.Fatal("signature verifies for another digest")
		}
	}
}

// TestCrossCheckP256: SignDigest is ECDSA over SHA-256(domain || digest) in
// DER, as crypto/ecdsa verifies it; VerifyDigest accepts what crypto/ecdsa
// signs, high S included, and refuses raw r||s.
func TestCrossCheckP256(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := stamp.NewP256Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub := signer.PublicKey()
	digest := sha256.Sum256([]byte("approval of a transaction"))
	msg := append([]byte(DomainApproval), digest[:]...)
	h := sha256.Sum256(msg)

	sig, err := SignDigest(signer, DomainApproval, digest)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], sig) {
		t.Fatal("crypto/ecdsa refuses SignDigest's signature")
	}
	theirs, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyDigest(pub, DomainApproval, digest, theirs); err != nil {
		t.Fatalf("VerifyDigest refuses crypto/ecdsa's signature: %v", err)
	}
	high := mustDecode(t, highS(t, hex.EncodeToString(theirs)))
	if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], high) {
		t.Fatal("crypto/ecdsa refuses the high-S signature")
	}
	if err := VerifyDigest(pub, DomainApproval, digest, high); err != nil {
		t.Fatalf("VerifyDigest refuses the high-S signature: %v", err)
	}
	r, s := parseDER(t, theirs)
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	if err := VerifyDigest(pub, DomainApproval, digest, raw); err == nil || !strings.Contains(err.Error(), "r||s") {
		t.Fatalf("raw r||s: %v", err)
	}
	if err := VerifyDigest(pub, DomainCommand, digest, theirs); err == nil {
		t.Fatal("approval signature verifies as a command signature")
	}
	// A signature of the bare digest (no domain) is refused.
	bare, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyDigest(pub, DomainApproval, digest, bare); err == nil {
		t.Fatal("signature without the domain verifies")
	}
	for _, n := range []int{0, 7, 73} {
		if err := VerifyDigest(pub, DomainApproval, digest, make([]byte, n)); err == nil || !strings.Contains(err.Error(), "want 8 to 72") {
			t.Errorf("%d-byte signature: %v", n, err)
		}
	}
}

func TestDomainRule(t *testing.T) {
	signer := newEd(t, "domain")
	var digest [32]byte
	for _, d := range []string{"", "\n", "no newline", "two\nlines\n", "tab\there\n", "é\n", "nul\x00\n", strings.Repeat("a", maxDomain) + "\n"} {
		if _, err := SignDigest(signer, d, digest); err == nil || !strings.Contains(err.Error(), "signature domain") {
			t.Errorf("SignDigest with domain %q: %v", d, err)
		}
		if err := VerifyDigest(signer.PublicKey(), d, digest, make([]byte, 64)); err == nil || !strings.Contains(err.Error(), "signature domain") {
			t.Errorf("VerifyDigest with domain %q: %v", d, err)
		}
	}
	for _, d := range []string{"a\n", DomainCommand, DomainApproval, strings.Repeat("~", maxDomain-1) + "\n"} {
		sig, err := SignDigest(signer, d, digest)
		if err != nil {
			t.Errorf("domain %q: %v", d, err)
			continue
		}
		if err := VerifyDigest(signer.PublicKey(), d, digest, sig); err != nil {
			t.Errorf("domain %q: %v", d, err)
		}
	}
}

// fakeSigner returns a fixed key and signature.
type fakeSigner struct {
	pub stamp.PublicKey
	sig []byte
	err error
}

func (f fakeSigner) PublicKey() stamp.PublicKey      { return f.pub }
func (f fakeSigner) SignBody([]byte) ([]byte, error) { return f.sig, f.err }

func TestSignDigestRefuses(t *testing.T) {
	var digest [32]byte
	good := newEd(t, "good")
	identity := stamp.PublicKey{Scheme: stamp.Ed25519, Key: mustDecode(t, smallOrderByOrder[0].hex)}
	forged := append(append([]byte{}, identity.Key...), make([]byte, 32)...)
	cases := []struct {
		name string
		s    stamp.Signer
		msg  string
	}{
		{"nil signer", nil, "nil signer"},
		{"small-order key", fakeSigner{pub: identity, sig: forged}, "small order"},
		{"signer fails", fakeSigner{pub: good.PublicKey(), err: errors.New("hsm offline")}, "hsm offline"},
		{"wrong signature", fakeSigner{pub: good.PublicKey(), sig: make([]byte, 64)}, "does not verify under its own key"},
		{"other key's signature", fakeSigner{pub: good.PublicKey(), sig: mustSign(t, newEd(t, "other"), digest)}, "does not verify under its own key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SignDigest(tc.s, DomainApproval, digest); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("SignDigest: %v, want %q", err, tc.msg)
			}
		})
	}
	if _, err := SignDigest(fakeSigner{pub: good.PublicKey(), sig: mustSign(t, good, digest)}, DomainApproval, digest); err != nil {
		t.Errorf("baseline: %v", err)
	}
}

func mustSign(t *testing.T, s stamp.Signer, digest [32]byte) []byte {
	t.Helper()
	sig, err := SignDigest(s, DomainApproval, digest)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestKeyAccessors(t *testing.T) {
	s := newDetP256(t, "bob")
	k, err := NewKey(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicKey()
	pub.Key[0] ^= 0xff
	if !k.PublicKey().Equal(s.PublicKey()) {
		t.Fatal("PublicKey returned the Key's own bytes")
	}
	var zero Key
	if err := zero.VerifyDigest(DomainApproval, [32]byte{}, make([]byte, 64)); err == nil {
		t.Fatal("zero Key verified a signature")
	}
	var nilKey *Key
	if err := nilKey.VerifyDigest(DomainApproval, [32]byte{}, make([]byte, 64)); err == nil {
		t.Fatal("nil Key verified a signature")
	}
}
