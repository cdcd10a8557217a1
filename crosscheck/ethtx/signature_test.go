package ethtx

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

var curveN = secp256k1.S256().N

// TestSignEcrecover checks that ethtx's signatures are accepted by
// go-ethereum's Ecrecover, which recovers the key we derive the address
// from, and pass its homestead (low-S) check; that PubkeyToAddress agrees
// with go-ethereum's; and that go-ethereum's RFC 6979 Sign gives the same
// signature.
func TestSignEcrecover(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 2))
	for i := range 200 {
		priv := testgen.Key(r)
		hash := [32]byte(testgen.Bytes(r, 32))
		sig := ethtx.Sign(priv, hash)

		pub, err := crypto.Ecrecover(hash[:], sig[:])
		if err != nil {
			t.Fatalf("sig %d: go-ethereum Ecrecover: %v", i, err)
		}
		if want := priv.PubKey().SerializeUncompressed(); !bytes.Equal(pub, want) {
			t.Fatalf("sig %d: Ecrecover = %x, want %x", i, pub, want)
		}
		if !crypto.ValidateSignatureValues(sig[64], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64]), true) {
			t.Fatalf("sig %d: go-ethereum ValidateSignatureValues(homestead) refuses it", i)
		}

		gkey, err := crypto.ToECDSA(priv.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		addr := ethtx.PubkeyToAddress(priv.PubKey())
		if gaddr := crypto.PubkeyToAddress(gkey.PublicKey); addr != ethtx.Address(gaddr) {
			t.Fatalf("sig %d: PubkeyToAddress = %s, go-ethereum %s", i, addr, gaddr)
		}
		if got, err := ethtx.RecoverAddress(hash, sig); err != nil || got != addr {
			t.Fatalf("sig %d: RecoverAddress = %s, %v; want %s", i, got, err, addr)
		}

		// go-ethereum's Sign is RFC 6979 too: the same signature.
		gsig, err := crypto.Sign(hash[:], gkey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gsig, sig[:]) {
			t.Fatalf("sig %d: Sign = %x, go-ethereum %x", i, sig, gsig)
		}
	}
}

// TestRecoverAddressRefusesHighS checks that the high-S twin of a valid
// signature, which RecoverAddress refuses (EIP-2), is one go-ethereum's
// Ecrecover still recovers to the same key: the refusal is of a valid
// signature's malleable twin, not of a malformed one.
func TestRecoverAddressRefusesHighS(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	priv := testgen.Key(r)
	hash := [32]byte(testgen.Bytes(r, 32))
	highS := ethtx.Sign(priv, hash)
	new(big.Int).Sub(curveN, new(big.Int).SetBytes(highS[32:64])).FillBytes(highS[32:64])
	highS[64] ^= 1
	if pub, err := crypto.Ecrecover(hash[:], highS[:]); err != nil || !bytes.Equal(pub, priv.PubKey().SerializeUncompressed()) {
		t.Fatalf("go-ethereum: the high-S twin does not recover the same key: %v", err)
	}
	if got, err := ethtx.RecoverAddress(hash, highS); err == nil || err.Error() != "ethtx: signature: s is above n/2 (EIP-2)" {
		t.Fatalf("RecoverAddress(high-S twin) = %s, %v", got, err)
	}
}

// TestAuthorityRefusedByGoEthereum checks that each authorization
// signature ethtx refuses (ethtx's TestAuthorityRefuses has the errors) is
// refused by go-ethereum too, and that it accepts the valid one.
func TestAuthorityRefusedByGoEthereum(t *testing.T) {
	priv := testgen.KeyFromHex(t, "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	a := ethtx.Authorization{ChainID: new(big.Int), Address: ethtx.Address(bytes.Repeat([]byte{0xaa}, 20)), Nonce: 1}
	sig := ethtx.Sign(priv, a.SigningHash())
	a.R, a.S, a.YParity = [32]byte(sig[:32]), [32]byte(sig[32:64]), sig[64]
	ga := gethAuthorization(a)
	if got, err := ga.Authority(); err != nil || ethtx.Address(got) != ethtx.PubkeyToAddress(priv.PubKey()) {
		t.Fatalf("go-ethereum Authority = %s, %v; want %s", got, err, ethtx.PubkeyToAddress(priv.PubKey()))
	}
	nBytes := [32]byte(curveN.FillBytes(make([]byte, 32)))
	highS := a
	new(big.Int).Sub(curveN, new(big.Int).SetBytes(a.S[:])).FillBytes(highS.S[:])
	highS.YParity ^= 1
	with := func(f func(*ethtx.Authorization)) ethtx.Authorization {
		b := a
		f(&b)
		return b
	}
	tests := []struct {
		name string
		a    ethtx.Authorization
	}{
		{name: "high s", a: highS},
		{name: "yParity 2", a: with(func(a *ethtx.Authorization) { a.YParity = 2 })},
		{name: "r zero", a: with(func(a *ethtx.Authorization) { a.R = [32]byte{} })},
		{name: "r n", a: with(func(a *ethtx.Authorization) { a.R = nBytes })},
		{name: "s zero", a: with(func(a *ethtx.Authorization) { a.S = [32]byte{} })},
		{name: "s n", a: with(func(a *ethtx.Authorization) { a.S = nBytes })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.a.Authority(); err == nil {
				t.Fatalf("Authority accepted the signature, recovering %s", got)
			}
			ga := gethAuthorization(tt.a)
			if got, err := ga.Authority(); err == nil {
				t.Fatalf("go-ethereum accepts it, recovering %s", got)
			}
		})
	}
}
