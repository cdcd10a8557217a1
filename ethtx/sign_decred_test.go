package ethtx_test

import (
	"math/rand/v2"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// decredSign is the signature as decred's ecdsa.SignCompact makes it, the
// implementation ethtx.Sign used before it made the nonce itself.
func decredSign(priv *secp256k1.PrivateKey, hash [32]byte) ethtx.Signature {
	compact := ecdsa.SignCompact(priv, hash[:], false)
	var sig ethtx.Signature
	copy(sig[:64], compact[1:])
	sig[64] = compact[0] - 27
	return sig
}

// TestSignMatchesDecred checks that Sign is byte for byte decred's
// SignCompact, for random keys and hashes and for the edges of both: keys
// 1 and n-1, hashes of zeros, of ones, and at or above the curve order.
func TestSignMatchesDecred(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 1))
	var keys []*secp256k1.PrivateKey
	var one, nMinus1 secp256k1.ModNScalar
	one.SetInt(1)
	nMinus1.SetInt(1)
	nMinus1.Negate()
	keys = append(keys, secp256k1.NewPrivateKey(&one), secp256k1.NewPrivateKey(&nMinus1))
	for range 300 {
		keys = append(keys, testgen.Key(r))
	}
	var ones, order, aboveOrder [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	copy(order[:], secp256k1.S256().N.FillBytes(make([]byte, 32)))
	aboveOrder = order
	aboveOrder[31]++
	hashes := [][32]byte{{}, ones, order, aboveOrder}
	for i, priv := range keys {
		hs := append(hashes, [32]byte(testgen.Bytes(r, 32)), [32]byte(testgen.Bytes(r, 32)))
		for j, h := range hs {
			if got, want := ethtx.Sign(priv, h), decredSign(priv, h); got != want {
				t.Fatalf("key %d, hash %d (%x): Sign = %x, decred = %x", i, j, h, got, want)
			}
		}
	}
}

// FuzzSignMatchesDecred is TestSignMatchesDecred for fuzzed keys and
// hashes.
func FuzzSignMatchesDecred(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 32))
	f.Add([]byte{1}, []byte("a hash of thirty-two bytes here!"))
	f.Fuzz(func(t *testing.T, key, hash []byte) {
		var d secp256k1.ModNScalar
		if overflow := d.SetByteSlice(key); overflow || d.IsZero() || len(hash) != 32 {
			return
		}
		priv := secp256k1.NewPrivateKey(&d)
		h := [32]byte(hash)
		if got, want := ethtx.Sign(priv, h), decredSign(priv, h); got != want {
			t.Fatalf("key %x, hash %x: Sign = %x, decred = %x", key, hash, got, want)
		}
	})
}

// TestSignAllocs checks that signing allocates only in decred's inverse of
// the nonce (math/big): the nonce and the signature are made on the stack,
// and the enclave signs every request.
func TestSignAllocs(t *testing.T) {
	priv := testgen.Key(rand.New(rand.NewPCG(14, 2)))
	var k, kinv secp256k1.ModNScalar
	k.SetByteSlice(testgen.Bytes(rand.New(rand.NewPCG(14, 3)), 32))
	inverse := testing.AllocsPerRun(100, func() { kinv.InverseValNonConst(&k) })
	var h [32]byte
	if n := testing.AllocsPerRun(100, func() {
		h[0]++
		_ = ethtx.Sign(priv, h)
	}); n > inverse {
		t.Fatalf("Sign allocates %v times, want at most the %v of the nonce's inverse", n, inverse)
	}
}

// TestNonceCandidates checks the nonce generator against decred's
// NonceRFC6979, the first candidate and the later ones (which Sign takes
// when a nonce gives r = 0 or s = 0): candidate i is NonceRFC6979 with
// extraIterations i.
func TestNonceCandidates(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 4))
	for range 50 {
		priv := testgen.Key(r)
		h := [32]byte(testgen.Bytes(r, 32))
		got := ethtx.NonceCandidates(&priv.Key, &h, 4)
		x := priv.Key.Bytes()
		for i, k := range got {
			if want := secp256k1.NonceRFC6979(x[:], h[:], nil, nil, uint32(i)); !k.Equals(want) {
				t.Fatalf("hash %x, candidate %d: %v, decred %v", h, i, k, want)
			}
		}
	}
}

// BenchmarkSignDecred is BenchmarkSign's comparison: decred's SignCompact,
// which Sign matches byte for byte.
func BenchmarkSignDecred(b *testing.B) {
	priv := testgen.Key(rand.New(rand.NewPCG(14, 6)))
	var h [32]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h[0], h[1] = byte(i), byte(i>>8)
		_ = decredSign(priv, h)
	}
}
