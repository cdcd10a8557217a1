package request_test

import (
	"testing"

	"github.com/nitrosign/nitrosign/api/request"
)

// BenchmarkDecode measures decoding a whole request, as the enclave does
// once per sign request (and once more per re-decision of a held one).
func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"erc20-transfer", txBody(hex0x(tx(usdc, 0, erc20Transfer(dest, 5))))},
		{"personal-message", msgBody("0x48656c6c6f2c20776f726c6421")},
		{"typed-data-mail", typedBody(mailJSON)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := request.Decode(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
