package calldata

import (
	"math/big"
	"testing"
)

func BenchmarkDecode(b *testing.B) {
	calls := make([]packedCall, 10)
	for i := range calls {
		calls[i] = packedCall{0, token, new(big.Int), transfer}
	}
	inputs := []struct {
		name string
		data []byte
	}{
		{"transfer", transfer},
		{"safe-multisend-10", safeTx(multiSendCallOnly, multiSendOf(pack(calls...)), OperationDelegateCall, sig65)},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if _, err := Decode(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
