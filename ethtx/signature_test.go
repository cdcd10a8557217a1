package ethtx_test

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

var (
	curveN     = secp256k1.S256().N
	curveHalfN = new(big.Int).Rsh(curveN, 1)
)

// TestSignLowS checks that signatures are low-S, deterministic, and recover
// the signer's address. (crosscheck/ethtx checks them against go-ethereum's
// Ecrecover and RFC 6979 Sign.)
func TestSignLowS(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 2))
	for i := range 200 {
		priv := testgen.Key(r)
		hash := [32]byte(testgen.Bytes(r, 32))
		sig := ethtx.Sign(priv, hash)

		if s := new(big.Int).SetBytes(sig[32:64]); s.Sign() == 0 || s.Cmp(curveHalfN) > 0 {
			t.Fatalf("sig %d: s = %x is not in [1, n/2]", i, s)
		}
		if sig[64] > 1 {
			t.Fatalf("sig %d: yParity = %d", i, sig[64])
		}
		if again := ethtx.Sign(priv, hash); again != sig {
			t.Fatalf("sig %d: Sign is not deterministic", i)
		}

		addr := ethtx.PubkeyToAddress(priv.PubKey())
		if got, err := ethtx.RecoverAddress(hash, sig); err != nil || got != addr {
			t.Fatalf("sig %d: RecoverAddress = %s, %v; want %s", i, got, err, addr)
		}
	}
}

// TestPubkeyToAddressVector checks a well-known key: private key 1 is the
// generator, whose address is 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf.
func TestPubkeyToAddressVector(t *testing.T) {
	var one secp256k1.ModNScalar
	one.SetInt(1)
	got := ethtx.PubkeyToAddress(secp256k1.NewPrivateKey(&one).PubKey())
	if want := "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"; got.Hex() != want {
		t.Fatalf("address of key 1 = %s, want %s", got.Hex(), want)
	}
}

func TestRecoverAddressRefuses(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	priv := testgen.Key(r)
	hash := [32]byte(testgen.Bytes(r, 32))
	good := ethtx.Sign(priv, hash)
	want := ethtx.PubkeyToAddress(priv.PubKey())

	// The high-S twin of a valid signature: (r, n-s) with the parity
	// flipped. It verifies mathematically, and EIP-2 forbids it.
	highS := good
	s := new(big.Int).SetBytes(good[32:64])
	new(big.Int).Sub(curveN, s).FillBytes(highS[32:64])
	highS[64] ^= 1
	if pub, _, err := ecdsa.RecoverCompact(append([]byte{27 + highS[64]}, highS[:64]...), hash[:]); err != nil || !pub.IsEqual(priv.PubKey()) {
		t.Fatalf("test setup: the high-S twin does not recover the same key: %v", err)
	}

	nBytes := curveN.FillBytes(make([]byte, 32))
	with := func(f func(*ethtx.Signature)) ethtx.Signature {
		sig := good
		f(&sig)
		return sig
	}
	tests := []struct {
		name    string
		sig     ethtx.Signature
		wantErr string
	}{
		{name: "high s", sig: highS, wantErr: "ethtx: signature: s is above n/2 (EIP-2)"},
		{name: "v 27", sig: with(func(s *ethtx.Signature) { s[64] = 27 }), wantErr: "ethtx: signature: yParity is 27, want 0 or 1"},
		{name: "v 2", sig: with(func(s *ethtx.Signature) { s[64] = 2 }), wantErr: "ethtx: signature: yParity is 2, want 0 or 1"},
		{name: "r zero", sig: with(func(s *ethtx.Signature) { clear(s[:32]) }), wantErr: "ethtx: signature: r is not in [1, n-1]"},
		{name: "r n", sig: with(func(s *ethtx.Signature) { copy(s[:32], nBytes) }), wantErr: "ethtx: signature: r is not in [1, n-1]"},
		{name: "s zero", sig: with(func(s *ethtx.Signature) { clear(s[32:64]) }), wantErr: "ethtx: signature: s is not in [1, n-1]"},
		{name: "s n", sig: with(func(s *ethtx.Signature) { copy(s[32:64], nBytes) }), wantErr: "ethtx: signature: s is not in [1, n-1]"},
		{name: "all zero", sig: ethtx.Signature{}, wantErr: "ethtx: signature: r is not in [1, n-1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ethtx.RecoverAddress(hash, tt.sig)
			if err == nil {
				t.Fatalf("RecoverAddress accepted the signature, recovering %s", got)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error = %q, want %q", err, tt.wantErr)
			}
		})
	}

	// A valid signature over another hash recovers another address (or
	// fails), never the signer's.
	other := hash
	other[0] ^= 1
	if got, err := ethtx.RecoverAddress(other, good); err == nil && got == want {
		t.Fatal("signature over one hash recovers the signer for another")
	}
	// An r that is not the x coordinate of any point cannot be recovered.
	noPoint := good
	for x := int64(5); ; x++ {
		// x^3 + 7 must be a non-residue mod p; try small x until one is.
		bx := big.NewInt(x)
		rhs := new(big.Int).Exp(bx, big.NewInt(3), nil)
		rhs.Add(rhs, big.NewInt(7))
		if new(big.Int).ModSqrt(rhs, secp256k1.S256().P) == nil {
			bx.FillBytes(noPoint[:32])
			break
		}
	}
	if _, err := ethtx.RecoverAddress(hash, noPoint); err == nil || !strings.HasPrefix(err.Error(), "ethtx: signature: ") {
		t.Fatalf("RecoverAddress with r not on the curve: error = %v", err)
	}
}
