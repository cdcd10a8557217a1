package enclave

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// TestKMSStats: each call lands in the bucket of its duration, failures
// and refusals are counted, and the snapshot is a valid health answer.
func TestKMSStats(t *testing.T) {
	if proto.KMSOps[kmsOpDecrypt] != proto.KMSOpDecrypt || proto.KMSOps[kmsOpGenerateDataKey] != proto.KMSOpGenerateDataKey {
		t.Fatal("the op indexes do not match proto.KMSOps")
	}
	denied := fmt.Errorf("kms: Decrypt: %w", kms.ErrAccessDenied)
	for _, tc := range []struct {
		name   string
		op     int
		d      time.Duration
		err    error
		bucket int
	}{
		{"instant", kmsOpDecrypt, 0, nil, 0},
		{"on the first bound", kmsOpDecrypt, 10 * time.Millisecond, nil, 0},
		{"past the first bound", kmsOpDecrypt, 10*time.Millisecond + time.Microsecond, nil, 1},
		{"denied", kmsOpDecrypt, 300 * time.Millisecond, denied, 5},
		{"failed", kmsOpGenerateDataKey, 30 * time.Second, errors.New("timeout"), len(proto.KMSLatencyBoundsMS) - 1},
		{"past every bound", kmsOpGenerateDataKey, time.Minute, nil, len(proto.KMSLatencyBoundsMS)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s kmsStats
			s.observe(tc.op, tc.d, tc.err)
			snap := s.snapshot()
			if len(snap) != 1 || snap[0].Op != proto.KMSOps[tc.op] || snap[0].Calls != 1 || snap[0].Buckets[tc.bucket] != 1 {
				t.Fatalf("snapshot %+v, want one call of %s in bucket %d", snap, proto.KMSOps[tc.op], tc.bucket)
			}
			wantErrs, wantDenied := uint64(0), uint64(0)
			if tc.err != nil {
				wantErrs = 1
			}
			if tc.err == denied {
				wantDenied = 1
			}
			if snap[0].Errors != wantErrs || snap[0].AccessDenied != wantDenied || snap[0].SumMicros != uint64(tc.d.Microseconds()) {
				t.Errorf("errors %d denied %d sum %d µs; want %d, %d, %d", snap[0].Errors, snap[0].AccessDenied, snap[0].SumMicros, wantErrs, wantDenied, tc.d.Microseconds())
			}
		})
	}

	var s kmsStats
	if snap := s.snapshot(); snap != nil {
		t.Fatalf("no call: %+v", snap)
	}
	ks := measuredKeyService{ks: failingKeyService{err: denied}, stats: &s}
	ks.Decrypt(context.Background(), "k", nil, nil)
	ks.GenerateDataKey(context.Background(), "k", nil)
	ks.GenerateDataKey(context.Background(), "k", nil)
	snap := s.snapshot()
	if len(snap) != 2 || snap[0].Op != proto.KMSOpDecrypt || snap[0].Calls != 1 || snap[1].Calls != 2 || snap[1].AccessDenied != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	if _, err := proto.Marshal(1, &proto.HealthResponse{KMS: snap}); err != nil {
		t.Fatalf("the snapshot is not a valid health answer: %v", err)
	}
}

type failingKeyService struct{ err error }

func (f failingKeyService) GenerateDataKey(context.Context, string, map[string]string) ([]byte, []byte, error) {
	return nil, nil, f.err
}

func (f failingKeyService) Decrypt(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return nil, f.err
}

func TestFrozenKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []stateful.FreezeInfo
		n    int
		want uint32
	}{
		{"none", nil, 3, 0},
		{"one", []stateful.FreezeInfo{{Key: "hot-1"}}, 3, 1},
		{"two", []stateful.FreezeInfo{{Key: "hot-1"}, {Key: "hot-2"}}, 3, 2},
		{"all", []stateful.FreezeInfo{{Key: stateful.AllKeys}}, 3, 3},
		{"all and one", []stateful.FreezeInfo{{Key: stateful.AllKeys}, {Key: "hot-1"}}, 3, 3},
		{"more than the keys", []stateful.FreezeInfo{{Key: "a"}, {Key: "b"}}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := frozenKeys(tc.list, tc.n); got != tc.want {
				t.Errorf("frozenKeys = %d, want %d", got, tc.want)
			}
		})
	}
}
