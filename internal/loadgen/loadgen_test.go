package loadgen_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/internal/loadgen"
	"github.com/nitrosign/nitrosign/stamp"
)

// fakeHost answers every request whose stamp verifies with a signature
// and the next audit sequence number, and remembers the digest of each
// body it signed, by sequence number.
type fakeHost struct {
	*httptest.Server
	seq     atomic.Uint64
	mu      sync.Mutex
	digests map[uint64][32]byte
	ids     map[string]bool // request ids seen
	dupIDs  int
}

func newFakeHost(t *testing.T) *fakeHost {
	f := &fakeHost{digests: map[uint64][32]byte{}, ids: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := stamp.Verify(r.Header.Get(stamp.Header), body); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"unauthorized","message":"x"}}`))
			return
		}
		var req api.SignRequest
		if err := json.Unmarshal(body, &req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		seq := f.seq.Add(1)
		f.mu.Lock()
		f.digests[seq] = sha256.Sum256(body)
		if f.ids[req.RequestID] {
			f.dupIDs++
		}
		f.ids[req.RequestID] = true
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"from":"0x01","signature":"0x02","audit_seq":%d}`, seq)
	}))
	t.Cleanup(f.Close)
	return f
}

// TestRunCountsAndOrdersLatencies runs the raw HTTP/1.1 clients (the
// default for an http URL).
func TestRunCountsAndOrdersLatencies(t *testing.T) {
	f := newFakeHost(t)
	s, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[uint64][32]byte{}
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: f.URL, Signer: s, Key: "hot-0", Unsigned: []byte{0x02, 0xc0}, Clients: 4,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		OnSigned: func(sig loadgen.Signed) {
			mu.Lock()
			got[sig.Seq] = sig.Digest
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.PerSecond <= 0 {
		t.Fatalf("result %+v", res)
	}
	if !(res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
		t.Errorf("percentiles out of order: p50 %v p99 %v p999 %v max %v", res.P50, res.P99, res.P999, res.Max)
	}
	if res.LiveStamped != res.Requests || res.PreStamped != 0 {
		t.Errorf("without PreStamp: %d live, %d pre-stamped; want %d live", res.LiveStamped, res.PreStamped, res.Requests)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if res.Sent != len(f.digests) || res.Signed != len(f.digests) || res.Requests > res.Signed {
		t.Errorf("sent %d, signed %d, measured %d; the host signed %d", res.Sent, res.Signed, res.Requests, len(f.digests))
	}
	// Every signature is reported, with the digest of the body sent.
	if len(got) != len(f.digests) {
		t.Errorf("OnSigned saw %d signatures, the host made %d", len(got), len(f.digests))
	}
	for seq, d := range f.digests {
		if got[seq] != d {
			t.Errorf("signature %d: OnSigned digest %x, the host signed a body of digest %x", seq, got[seq], d)
		}
	}
	if f.dupIDs != 0 {
		t.Errorf("%d request ids sent twice", f.dupIDs)
	}
}

func TestRunPreStampedRequests(t *testing.T) {
	f := newFakeHost(t)
	s, _ := stamp.GenerateSigner(stamp.Ed25519)
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: f.URL, Signer: s, Key: "hot-0", Unsigned: []byte{0x02, 0xc0}, Clients: 3,
		Warmup: 20 * time.Millisecond, Requests: 200, PreStamp: true,
		HTTPClient: f.Client(), // net/http's client rather than the raw one
	})
	if err != nil {
		t.Fatal(err)
	}
	// Exactly Requests measured requests, every one stamped ahead, each
	// with a request id of its own.
	if res.Requests != 200 || res.Errors != 0 || res.PreStamped != 200 || res.LiveStamped != 0 {
		t.Fatalf("result %+v, want 200 pre-stamped requests", res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dupIDs != 0 || res.Sent != len(f.digests) {
		t.Errorf("%d request ids sent twice; sent %d, signed by the host %d", f.dupIDs, res.Sent, len(f.digests))
	}
}

func TestRunFailsFastWhenNothingWorks(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(403)
		w.Write([]byte(`{"error":{"code":"policy_denied","rule":"destinations","message":"no"}}`))
	}))
	defer ts.Close()
	s, _ := stamp.GenerateSigner(stamp.Ed25519)
	_, err := loadgen.Run(context.Background(), loadgen.Options{URL: ts.URL, Signer: s, Key: "k", Unsigned: []byte{2}, Clients: 2, Duration: time.Hour})
	if err == nil || !strings.Contains(err.Error(), refusal.CodePolicyDenied) {
		t.Fatalf("err = %v, want the first request's refusal", err)
	}
}

func TestQuantile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {0.9999, 1000}, {0.0001, 1}} {
		if got := loadgen.Quantile(s, tc.q); got != tc.want {
			t.Errorf("Quantile(1..1000, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if loadgen.Quantile(nil, 0.5) != 0 || loadgen.Quantile(s[:1], 0.999) != 1 {
		t.Error("Quantile of an empty or one-sample set")
	}
}

func TestRates(t *testing.T) {
	if r, err := loadgen.SignRate(50*time.Millisecond, 1); err != nil || r <= 0 {
		t.Fatalf("SignRate = %v, %v", r, err)
	}
	if r, err := loadgen.CryptoBound(50*time.Millisecond, 1); err != nil || r <= 0 {
		t.Fatalf("CryptoBound = %v, %v", r, err)
	}
}
