package enclave_test

import (
	"context"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// BenchmarkHandleSign measures the enclave's whole work for one sign
// request, as it runs on the enclave's own vCPUs: stamp verification, strict
// JSON, freshness and replay checks, transaction decoding, policy and
// signing. Every request is distinct and stamped beforehand, outside the
// timer, as clients would stamp them on their own machines.
func BenchmarkHandleSign(b *testing.B) {
	f := newFixtureWith(b, b.N+16) // nobody acknowledges audit records here
	unsigned := transfer(b, 1, destA, big.NewInt(1))
	reqs := make([]*proto.SignRequest, b.N)
	for i := range reqs {
		body := []byte(fmt.Sprintf(`{"request_id":"bench-%d","timestamp_ms":%d,"key":"hot-0","eth_transaction":{"unsigned":"0x%x"}}`, i, f.now.UnixMilli(), unsigned))
		h, err := stamp.Create(f.hot, body)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = &proto.SignRequest{Body: body, Stamp: h}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := reqs[next.Add(1)-1]
			if resp, ok := f.e.Handle(context.Background(), r).(*proto.SignResponse); !ok {
				b.Fatalf("refused: %+v", resp)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
}

// BenchmarkHandleSignWithLimits is BenchmarkHandleSign with a rolling limit
// and a velocity limit on the key: the cost of the stateful rules
// (reservation, commit) on the same path.
func BenchmarkHandleSignWithLimits(b *testing.B) {
	f := newStatefulBench(b)
	unsigned := transfer(b, 1, destA, big.NewInt(1))
	reqs := make([]*proto.SignRequest, b.N)
	for i := range reqs {
		body := []byte(fmt.Sprintf(`{"request_id":"bench-%d","timestamp_ms":%d,"key":"hot-0","eth_transaction":{"unsigned":"0x%x"}}`, i, f.now.UnixMilli(), unsigned))
		h, err := stamp.Create(f.hot, body)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = &proto.SignRequest{Body: body, Stamp: h}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := reqs[next.Add(1)-1]
			if resp, ok := f.e.Handle(context.Background(), r).(*proto.SignResponse); !ok {
				b.Fatalf("refused: %+v", resp)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
}
