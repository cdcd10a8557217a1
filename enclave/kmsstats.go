package enclave

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/proto"
)

// kmsStats counts the enclave's KMS calls since it started, for the
// host's metrics (proto.HealthResponse.KMS): only the enclave sees them,
// since its TLS session to KMS ends inside it. It is safe for concurrent
// use.
type kmsStats struct {
	mu  sync.Mutex
	ops [len(proto.KMSOps)]kmsOpStats
}

type kmsOpStats struct {
	calls, errors, denied, sumMicros uint64
	buckets                          [len(proto.KMSLatencyBoundsMS) + 1]uint64
}

// observe counts one call of op (an index into proto.KMSOps) that took d
// and failed with err (nil: succeeded).
func (s *kmsStats) observe(op int, d time.Duration, err error) {
	b := len(proto.KMSLatencyBoundsMS)
	for i, bound := range proto.KMSLatencyBoundsMS {
		if d <= time.Duration(bound)*time.Millisecond {
			b = i
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.ops[op]
	o.calls++
	o.buckets[b]++
	o.sumMicros += uint64(max(d.Microseconds(), 0))
	if err != nil {
		o.errors++
		if errors.Is(err, kms.ErrAccessDenied) {
			o.denied++
		}
	}
}

// snapshot returns the counts of the operations called at least once, in
// proto.KMSOps order.
func (s *kmsStats) snapshot() []proto.KMSStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []proto.KMSStats
	for i, o := range s.ops {
		if o.calls == 0 {
			continue
		}
		out = append(out, proto.KMSStats{
			Op: proto.KMSOps[i], Calls: o.calls, Errors: o.errors, AccessDenied: o.denied,
			SumMicros: o.sumMicros, Buckets: append([]uint64(nil), o.buckets[:]...),
		})
	}
	return out
}

// Indexes into proto.KMSOps.
const (
	kmsOpDecrypt = iota
	kmsOpGenerateDataKey
)

// measuredKeyService is a KeyService that counts its calls in stats.
type measuredKeyService struct {
	ks    KeyService
	stats *kmsStats
}

func (m measuredKeyService) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, error) {
	start := time.Now()
	pt, blob, err := m.ks.GenerateDataKey(ctx, keyID, encCtx)
	m.stats.observe(kmsOpGenerateDataKey, time.Since(start), err)
	return pt, blob, err
}

func (m measuredKeyService) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	start := time.Now()
	pt, err := m.ks.Decrypt(ctx, keyID, blob, encCtx)
	m.stats.observe(kmsOpDecrypt, time.Since(start), err)
	return pt, err
}
