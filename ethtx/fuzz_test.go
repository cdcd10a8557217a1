package ethtx

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzDecodeUnsigned checks that DecodeUnsigned never panics, that whatever
// it accepts re-encodes to exactly the input (so the hash the enclave signs
// is the hash of the bytes it was given), and that its errors are the
// package's own. The committed corpus is in testdata/fuzz/FuzzDecodeUnsigned.
func FuzzDecodeUnsigned(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1559))
	for range 8 {
		tx := randomTx(r)
		if len(tx.Data) > 512 {
			tx.Data = tx.Data[:512]
		}
		f.Add(tx.EncodeUnsigned())
	}
	fields := validFields(f)
	f.Add(envelope(fields...))
	f.Add(withField(f, 6, []byte{0x82, 0x00, 0x01}))
	f.Add(withField(f, 5, bytes.Repeat([]byte{0x01}, 19)))
	f.Add(append(envelope(fields...), 0x00))
	f.Add(envelope(fields[:8]...))
	f.Add([]byte{0x01, 0xc0})
	f.Add([]byte{0xc0})

	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeUnsigned(b)
		if err != nil {
			if tx != nil {
				t.Fatalf("DecodeUnsigned returned a Tx and error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "ethtx: ") {
				t.Fatalf("error without package prefix: %q", err)
			}
			return
		}
		enc := tx.EncodeUnsigned()
		if !bytes.Equal(enc, b) {
			t.Fatalf("DecodeUnsigned accepted %x, which re-encodes as %x", b, enc)
		}
		if tx.SigningHash() != keccak256(b) {
			t.Fatalf("SigningHash is not the hash of the accepted input")
		}
		if tx.ChainID.Sign() == 0 {
			t.Fatal("accepted a zero chain id")
		}
		// Unsupported is only ever reported for a type byte, never for a
		// malformed type-2 transaction.
		if _, err := DecodeUnsigned(append([]byte{0x01}, b[1:]...)); !errors.Is(err, ErrUnsupportedType) {
			t.Fatalf("type 0x01 not reported as unsupported: %v", err)
		}
	})
}
