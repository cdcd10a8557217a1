package summary_test

import (
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/summary"
)

// BenchmarkTransactionText measures the summary text the enclave records
// for every sign request: a native transfer to a labelled destination,
// summarised with a key made by NewKey, rendered as the record's text:
// from the lines (Transaction, String) and directly (TransactionText).
func BenchmarkTransactionText(b *testing.B) {
	p := testPolicy(b)
	k := key(b)
	k = summary.NewKey(k.ID, k.Address, k.Path)
	t := tx(b, ethtx.TypeDynamicFee, "0x2222222222222222222222222222222222222222", 1, nil)
	d := digest()
	b.Run("lines", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s := summary.Transaction(t, &calldata.NoCall{}, k, d, p).String(); s == "" {
				b.Fatal("empty summary")
			}
		}
	})
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s := summary.TransactionText(t, &calldata.NoCall{}, k, d, p); s == "" {
				b.Fatal("empty summary")
			}
		}
	})
}
