package proto

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
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

// BenchmarkCallParallelDeepStack is BenchmarkCallParallel with a handler
// that uses about 32 KiB of stack, as the enclave's cryptography does: a
// goroutine started per request grows its stack (runtime.morestack,
// copystack) on every request, a reused worker only once.
func BenchmarkCallParallelDeepStack(b *testing.B) {
	c := unixServe(b, HandlerFunc(func(ctx context.Context, req Message) Message {
		body := req.(*SignRequest).Body
		return &SignResponse{SignedTransaction: body[:deepStack(body, 8)]}
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

// deepStack uses depth frames of 4 KiB of stack and returns len(p).
//
//go:noinline
func deepStack(p []byte, depth int) int {
	var frame [4096]byte
	copy(frame[:], p)
	if depth > 1 {
		return deepStack(frame[:len(p)], depth-1)
	}
	return len(p) + int(frame[0]) - int(p[0])
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

// BenchmarkUnmarshalSignResponse: the host's decoding of a signature
// (fast path) against decodeCanonical's reflective decoding and
// re-encoding of the same frame.
func BenchmarkUnmarshalSignResponse(b *testing.B) {
	sr := &SignResponse{SignedTransaction: make([]byte, 110), AuditSeq: 123456, AuditRecord: make([]byte, 400)}
	p, err := Marshal(7, sr)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Unmarshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var env envelope
			var m SignResponse
			if err := decodeCanonical(p, &env); err != nil {
				b.Fatal(err)
			}
			if err := decodeCanonical(env.Body, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMarshalReplies: the enclave's encoding of its hot replies (a
// signature; a poll's answer of 32 records) through the fast path,
// against the reflective encoder.
func BenchmarkMarshalReplies(b *testing.B) {
	records := make([][]byte, 32)
	for i := range records {
		records[i] = make([]byte, 450)
	}
	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"sign_response", &SignResponse{SignedTransaction: make([]byte, 110), AuditSeq: 123456, AuditRecord: make([]byte, 400)}},
		{"audit_response_32", &AuditResponse{Key: make([]byte, 32), HeadSeq: 123456, Records: records, Run: make([]byte, RunIDLen), Acked: 123400}},
	} {
		k, _ := kindOf(tc.m)
		b.Run(tc.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Marshal(7, tc.m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/reflect", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalReflect(k, 7, tc.m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkServeBurst measures how the server writes a burst of answers
// released at once, as the enclave releases every answer of a batch of
// audit records at the host's acknowledgement: 32 requests are held, then
// let go together. writes/answer is the server's writes per answer (1
// when each answer goes in a write of its own).
func BenchmarkServeBurst(b *testing.B) {
	const burst = 32
	l := unixListener(b)
	var gate atomic.Pointer[chan struct{}]
	var arrived sync.WaitGroup
	h := HandlerFunc(func(ctx context.Context, req Message) Message {
		g := *gate.Load()
		arrived.Done()
		<-g
		return &SignResponse{SignedTransaction: benchBody[:110], AuditSeq: 1, AuditRecord: benchBody[:400]}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := &countingConn{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := l.Accept()
		if err != nil {
			b.Error(err)
			return
		}
		served.Conn = conn
		ServeConn(ctx, served, h, &ServerOptions{Logger: quiet})
	}()
	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(conn, &ClientOptions{Logger: quiet})
	defer func() { c.Close(); cancel(); <-done }()
	req := &SignRequest{Body: benchBody, Stamp: "ed25519;key=0123456789abcdef;sig=0123456789abcdef0123456789abcdef"}
	var writes int64
	b.ReportAllocs()
	for b.Loop() {
		g := make(chan struct{})
		gate.Store(&g)
		arrived.Add(burst)
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				if _, err := c.Call(context.Background(), req); err != nil {
					b.Error(err)
				}
			})
		}
		arrived.Wait()
		before := served.writes.Load()
		close(g)
		wg.Wait()
		writes += served.writes.Load() - before
	}
	b.ReportMetric(float64(writes)/float64(b.N*burst), "writes/answer")
}
