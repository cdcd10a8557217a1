package ethtx

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/rlp"
)

// maxSeedSize bounds the seeds taken from the tables: larger inputs (the
// cap tests) slow the fuzzer down and add nothing the small ones lack.
const maxSeedSize = 4096

// seedCorpus returns the seeds of FuzzDecodeUnsigned by name: valid
// transactions of every type, random ones among them (made by randomTx,
// which is testgen.Tx: see TestSeedCorpus), and every refused input of the
// error tables (near misses of every kind) that is at most maxSeedSize
// bytes.
func seedCorpus(t testing.TB, randomTx func(*rand.Rand, Type) *Tx) map[string][]byte {
	seeds := map[string][]byte{}
	r := rand.New(rand.NewPCG(1, 1559))
	for _, typ := range allTypes {
		seeds["valid "+typ.String()] = envelopeOf(typ, validFieldsOf(t, typ)...)
		for i := range 4 {
			tx := randomTx(r, typ)
			if len(tx.Data) > 256 {
				tx.Data = tx.Data[:256]
			}
			if len(tx.AuthorizationList) > 3 {
				tx.AuthorizationList = tx.AuthorizationList[:3]
			}
			seeds["valid random "+typ.String()+" "+string(rune('a'+i))] = tx.EncodeUnsigned()
		}
	}
	for _, typ := range []Type{TypeLegacy, TypeAccessList, TypeDynamicFee} {
		seeds["valid contract creation "+typ.String()] = txWith(t, typ, "to", []byte{0x80})
	}
	seeds["valid EIP-155 vector"] = unhex(t, "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080")
	seeds["valid EIP-7702 any chain"] = txWith(t, TypeSetCode, "authorizationList", rlp.AppendList(nil, authEntry(t, "chainId", []byte{0x80})))
	seen := map[string]bool{}
	for _, b := range seeds {
		seen[string(b)] = true
	}
	for _, tc := range decodeErrorCases(t) {
		if len(tc.in) <= maxSeedSize && !seen[string(tc.in)] {
			seen[string(tc.in)] = true
			seeds["error "+tc.name] = tc.in
		}
	}
	return seeds
}

// FuzzDecodeUnsigned checks that DecodeUnsigned never panics, that whatever
// it accepts re-encodes to exactly the input (so the hash the enclave signs
// is the hash of the bytes it was given) and has the shape its type
// requires, and that its errors are the package's own. The committed corpus
// is in testdata/fuzz/FuzzDecodeUnsigned (see TestSeedCorpus in seed_test.go).
func FuzzDecodeUnsigned(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		tx, err := DecodeUnsigned(in)
		if err != nil {
			if tx != nil {
				t.Fatalf("DecodeUnsigned returned a Tx and error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "ethtx: ") {
				t.Fatalf("error without package prefix: %q", err)
			}
			if errors.Is(err, ErrUnsupportedType) && (b[0] >= 0x80 || (b[0] >= 0x01 && b[0] <= 0x04)) {
				t.Fatalf("type byte 0x%02x reported as unsupported: %v", b[0], err)
			}
			return
		}
		clear(in) // the Tx does not alias its input
		enc := tx.EncodeUnsigned()
		if !bytes.Equal(enc, b) {
			t.Fatalf("DecodeUnsigned accepted %x, which re-encodes as %x", b, enc)
		}
		if tx.SigningHash() != keccak256(b) || UnsignedHash(b) != tx.SigningHash() {
			t.Fatalf("SigningHash is not the hash of the accepted input")
		}
		checkShape(t, tx, b)

		// The signed encoding is one well-formed value.
		signed := tx.EncodeSigned(Signature{0: 1, 31: 2, 32: 3, 63: 4, 64: 1})
		if tx.Type != TypeLegacy {
			signed = signed[1:]
		}
		if _, err := rlp.Parse(signed); err != nil {
			t.Fatalf("EncodeSigned gives malformed RLP: %v", err)
		}
		for _, a := range tx.AuthorizationList {
			_, _ = a.Authority()
		}

		// Unsupported is only ever reported for a type byte, never for a
		// malformed transaction.
		if tx.Type != TypeLegacy {
			if _, err := DecodeUnsigned(append([]byte{0x05}, b[1:]...)); !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("type 0x05 not reported as unsupported: %v", err)
			}
		}
	})
}

// checkShape checks the invariants of an accepted transaction.
func checkShape(t *testing.T, tx *Tx, b []byte) {
	t.Helper()
	if tx.Type == TypeLegacy {
		if b[0] < 0xc0 {
			t.Fatalf("legacy transaction from type byte 0x%02x", b[0])
		}
	} else if b[0] != byte(tx.Type) {
		t.Fatalf("type %v from type byte 0x%02x", tx.Type, b[0])
	}
	if tx.ChainID == nil || tx.ChainID.Sign() <= 0 || tx.ChainID.BitLen() > 256 {
		t.Fatalf("accepted chain id %v", tx.ChainID)
	}
	if hasGasPrice := tx.Type == TypeLegacy || tx.Type == TypeAccessList; (tx.GasPrice != nil) != hasGasPrice ||
		(tx.MaxFeePerGas != nil) == hasGasPrice || (tx.MaxPriorityFeePerGas != nil) == hasGasPrice {
		t.Fatalf("%v transaction with fee fields %v, %v, %v", tx.Type, tx.GasPrice, tx.MaxPriorityFeePerGas, tx.MaxFeePerGas)
	}
	if len(tx.Data) > MaxDataSize {
		t.Fatalf("accepted %d bytes of data", len(tx.Data))
	}
	switch tx.Type {
	case TypeBlob:
		if tx.To == nil || tx.MaxFeePerBlobGas == nil || len(tx.BlobVersionedHashes) == 0 || len(tx.BlobVersionedHashes) > MaxBlobVersionedHashes {
			t.Fatalf("accepted EIP-4844 transaction with to %v, %d blob hashes", tx.To, len(tx.BlobVersionedHashes))
		}
		for _, h := range tx.BlobVersionedHashes {
			if h[0] != blobHashVersionKZG {
				t.Fatalf("accepted blob hash version 0x%02x", h[0])
			}
		}
	case TypeSetCode:
		if tx.To == nil || len(tx.AuthorizationList) == 0 || len(tx.AuthorizationList) > MaxAuthorizations {
			t.Fatalf("accepted EIP-7702 transaction with to %v, %d authorizations", tx.To, len(tx.AuthorizationList))
		}
		for _, a := range tx.AuthorizationList {
			if a.ChainID == nil || a.YParity > 1 {
				t.Fatalf("accepted authorization %+v", a)
			}
		}
	}
	if tx.Type != TypeBlob && (tx.MaxFeePerBlobGas != nil || tx.BlobVersionedHashes != nil) {
		t.Fatalf("%v transaction with blob fields", tx.Type)
	}
	if tx.Type != TypeSetCode && tx.AuthorizationList != nil {
		t.Fatalf("%v transaction with authorizations", tx.Type)
	}
	if tx.Type == TypeLegacy && tx.AccessList != nil {
		t.Fatal("legacy transaction with an access list")
	}
}
