package stamp

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkVerify measures Verify of an Ed25519 stamp over a typical request
// body, from the same client every time, as the enclave sees a steady
// client: the whole check, header decoding included.
func BenchmarkVerify(b *testing.B) {
	h, err := Create(testEd25519(b), testBody)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Verify(h, testBody); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(h, testBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyP256 is BenchmarkVerify for a P-256 stamp, which the key
// cache does not cover.
func BenchmarkVerifyP256(b *testing.B) {
	h, err := Create(testP256(b), testBody)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(h, testBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEd25519 compares the signature check alone, verifyEd25519
// with the key cached against crypto/ed25519.Verify, which decodes the key
// on every call.
func BenchmarkVerifyEd25519(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, testBody)
	b.Run("cached", func(b *testing.B) {
		if !verifyEd25519(pub, testBody, sig) {
			b.Fatal("does not verify")
		}
		b.ReportAllocs()
		for b.Loop() {
			if !verifyEd25519(pub, testBody, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("crypto-ed25519", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, testBody, sig) {
				b.Fatal("does not verify")
			}
		}
	})
}
