package proto

import (
	"bytes"
	"context"
	"testing"
)

// benchBody is about the size of a stamped sign request for an ERC-20
// transfer.
var benchBody = bytes.Repeat([]byte("x"), 600)

// BenchmarkCallParallel measures round trips over one Unix socket
// connection with an echo handler, from many goroutines at once.
func BenchmarkCallParallel(b *testing.B) {
	c := unixServe(b, HandlerFunc(func(ctx context.Context, req Message) Message {
		return &SignResponse{SignedTransaction: req.(*SignRequest).Body}
	}), nil)()
	req := &SignRequest{Body: benchBody, Stamp: "ed25519;key=0123456789abcdef;sig=0123456789abcdef0123456789abcdef"}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkMarshalUnmarshal(b *testing.B) {
	req := &SignRequest{Body: benchBody, Stamp: "ed25519;key=0123456789abcdef;sig=0123456789abcdef0123456789abcdef"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p, err := Marshal(uint64(i+1), req)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Unmarshal(p); err != nil {
			b.Fatal(err)
		}
	}
}
