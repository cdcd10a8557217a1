package enclave_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// benchParallelism is how many requests per CPU the sign benchmarks keep in
// flight: as the host does over its connections (answers wait for the
// host's acknowledgement of their records, so a host keeps many requests in
// flight to keep the enclave's vCPUs busy).
const benchParallelism = 16

// BenchmarkHandleSign measures the enclave's whole work for one sign
// request, as it runs on the enclave's own vCPUs: stamp verification, strict
// JSON, freshness and replay checks, transaction decoding, policy, signing,
// and the release of the answer once an in-process host (ackHost) has
// acknowledged its audit record. Every request is distinct and stamped
// beforehand, outside the timer, as clients would stamp them on their own
// machines.
func BenchmarkHandleSign(b *testing.B) {
	benchmarkSign(b, func(f *fixture, r *proto.SignRequest) proto.Message {
		return f.e.Handle(context.Background(), r)
	})
}

// BenchmarkHandleSignUnreleased is BenchmarkHandleSign on the path before
// release after persistence: the answer leaves with its record at once (the
// host still acknowledges records in the background, so the backlog does
// not fill). The ratio of the two signs/s is the cost of waiting for the
// acknowledgement.
func BenchmarkHandleSignUnreleased(b *testing.B) {
	benchmarkSign(b, func(f *fixture, r *proto.SignRequest) proto.Message {
		return enclave.HandleUnreleased(f.e, context.Background(), r)
	})
}

func benchmarkSign(b *testing.B, handle func(*fixture, *proto.SignRequest) proto.Message) {
	f := newFixtureWith(b, b.N+16)
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
	from := len(recordsOf(b, f.e))
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := reqs[next.Add(1)-1]
			if resp, ok := handle(f, r).(*proto.SignResponse); !ok {
				b.Fatalf("refused: %+v", resp)
			}
		}
	})
	reportSpeed(b, start, cpu)
	b.StopTimer()
	reportBatches(b, recordsOf(b, f.e)[from:])
}

// reportBatches reports how the requests' records were batched: heads/op,
// the tree heads (one Ed25519 signature each) per request, and the
// distribution of batch sizes (records under one tree head): batch-p50,
// batch-p90, batch-max, and batch-min.
func reportBatches(b *testing.B, lines [][]byte) {
	var sizes []int
	n := 0
	for _, line := range lines {
		r, err := audit.Unmarshal(line)
		if err != nil {
			b.Fatal(err)
		}
		if r.Kind == audit.KindTreeHead {
			sizes = append(sizes, n)
			n = 0
		} else {
			n++
		}
	}
	if len(sizes) == 0 {
		return
	}
	slices.Sort(sizes)
	b.ReportMetric(float64(len(sizes))/float64(b.N), "heads/op")
	b.ReportMetric(float64(sizes[len(sizes)/2]), "batch-p50")
	b.ReportMetric(float64(sizes[len(sizes)*9/10]), "batch-p90")
	b.ReportMetric(float64(sizes[len(sizes)-1]), "batch-max")
	b.ReportMetric(float64(sizes[0]), "batch-min")
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportSpeed reports signs/s, the wall-clock rate since start, and
// cpu-us/op, the process's CPU time per request since it had used cpu:
// on a machine others share, the rate follows their load, while the CPU
// time per request (the enclave's and the in-process host's) does not, so
// the ratio of two benchmarks' cpu-us/op is the steadier comparison.
func reportSpeed(b *testing.B, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-us/op")
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
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := reqs[next.Add(1)-1]
			if resp, ok := f.e.Handle(context.Background(), r).(*proto.SignResponse); !ok {
				b.Fatalf("refused: %+v", resp)
			}
		}
	})
	reportSpeed(b, start, cpu)
}

// BenchmarkCryptoBound is the bound the enclave's sign path is measured
// against: per request, only the two operations no implementation can
// avoid, the Ed25519 verification of the client's stamp over a body of the
// size BenchmarkHandleSign sends and the secp256k1 signature (RFC 6979,
// ethtx.Sign), on all CPUs as BenchmarkHandleSign runs. Its signs/s, taken
// in the same run, is the denominator of BenchmarkHandleSign's: `make
// bench` prints the ratio (issue 14 asks for at least 0.8). Its cpu-us/op
// gives the same ratio in CPU time (BenchmarkHandleSign's cpu-us/op over
// it, inverted), which a shared machine's load disturbs less.
func BenchmarkCryptoBound(b *testing.B) {
	f := newFixtureWith(b, 16)
	unsigned := transfer(b, 1, destA, big.NewInt(1))
	body := []byte(fmt.Sprintf(`{"request_id":"bench-%d","timestamp_ms":%d,"key":"hot-0","eth_transaction":{"unsigned":"0x%x"}}`, 1<<40, f.now.UnixMilli(), unsigned))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sig := ed25519.Sign(priv, body)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !ed25519.Verify(pub, body, sig) {
				b.Fatal("stamp signature does not verify")
			}
			// Distinct digests, as distinct requests have.
			var digest [32]byte
			binary.BigEndian.PutUint64(digest[:], uint64(next.Add(1)))
			_ = ethtx.Sign(key, digest)
		}
	})
	reportSpeed(b, start, cpu)
}
