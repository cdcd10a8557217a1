package ethmsg

import (
	"bytes"
	"testing"

	"github.com/nitrosign/nitrosign/internal/testgen"
)

// BenchmarkTypedDataHash parses and hashes the EIP-712 Mail example, as the
// enclave does for each eth_signTypedData_v4 request.
func BenchmarkTypedDataHash(b *testing.B) {
	data := []byte(testgen.MailJSON)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		td, err := ParseTypedData(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = td.Hash()
	}
}

// BenchmarkPersonalHash hashes a 100-byte personal message.
func BenchmarkPersonalHash(b *testing.B) {
	msg := bytes.Repeat([]byte("nitrosign"), 12)[:100]
	b.ReportAllocs()
	for b.Loop() {
		_ = PersonalHash(msg)
	}
}
