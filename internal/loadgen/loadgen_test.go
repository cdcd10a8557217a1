package loadgen_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/internal/loadgen"
	"github.com/nitrosign/nitrosign/stamp"
)

func TestRunCountsAndOrdersLatencies(t *testing.T) {
	var seen atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		body, _ := io.ReadAll(r.Body)
		// Every request is stamped over a distinct body.
		if _, err := stamp.Verify(r.Header.Get(stamp.Header), body); err != nil {
			http.Error(w, `{"error":{"code":"unauthorized","message":"x"}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"from":"0x01","signature":"0x02","audit_seq":1}`))
	}))
	defer ts.Close()
	s, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: ts.URL, Signer: s, Key: "hot-0", Unsigned: []byte{0x02, 0xc0}, Clients: 4, Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.PerSecond <= 0 {
		t.Fatalf("result %+v", res)
	}
	if !(res.P50 <= res.P99 && res.P99 <= res.Max) {
		t.Errorf("percentiles out of order: p50 %v p99 %v max %v", res.P50, res.P99, res.Max)
	}
	if int64(res.Requests) > seen.Load() {
		t.Errorf("counted %d requests, the server saw %d", res.Requests, seen.Load())
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

func TestSignRate(t *testing.T) {
	r, err := loadgen.SignRate(100*time.Millisecond, 1)
	if err != nil || r <= 0 {
		t.Fatalf("SignRate = %v, %v", r, err)
	}
}
