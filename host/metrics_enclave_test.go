package host_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// scrape is one GET /metrics: the samples by series ("name{labels}", as
// the text format writes them) and the type of each family by name.
type scrape struct {
	samples map[string]float64
	types   map[string]string
}

func scrapeMetrics(t *testing.T, h http.Handler) scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	s := scrape{samples: map[string]float64{}, types: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(rec.Body.Bytes()))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			s.types[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		s.samples[line[:i]] = v
	}
	return s
}

// metricsServer is a host with a data directory and a credential source
// (so that every metric is registered) in front of a fake enclave.
func metricsServer(t *testing.T, sim *vsocksim.Sim) *host.Server {
	t.Helper()
	s, err := host.New(&host.Config{
		Transport:   sim.Endpoint(transport.ParentCID),
		Conns:       1,
		DataDir:     t.TempDir(),
		Credentials: host.StaticCredentials{AccessKeyID: "AKIAEXAMPLEEXAMPLE01", SecretAccessKey: "secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// richHealth is a health answer with every metric's field set.
func richHealth() *proto.HealthResponse {
	buckets := func(hot int, n uint64) []uint64 {
		b := make([]uint64, len(proto.KMSLatencyBoundsMS)+1)
		b[hot] = n
		return b
	}
	return &proto.HealthResponse{
		Version: "test", State: "ready", StartedUnixMS: 1_800_000_000_500, Keys: 3, PolicyVersion: 7, AuditSeq: 42,
		FrozenKeys: 2, PendingApprovals: 5, PendingPolicies: 1, PolicyDueUnixMS: 1_800_000_600_000,
		KMS: []proto.KMSStats{
			// 4 calls of 50 < d ≤ 100 ms: 1 denied, 1 other failure.
			{Op: proto.KMSOpDecrypt, Calls: 4, Errors: 2, AccessDenied: 1, SumMicros: 300_000, Buckets: buckets(3, 4)},
		},
	}
}

// TestMetricsEnclave: every metric taken from the enclave's health shows
// its value, with the state set, the KMS counters by outcome and the
// cumulative histogram; decisions are timed by outcome.
func TestMetricsEnclave(t *testing.T) {
	sim := newSim(t)
	startFake(t, sim, func(m proto.Message) proto.Message {
		switch m.(type) {
		case *proto.HealthRequest:
			return richHealth()
		case *proto.SignRequest:
			return &proto.Error{Code: refusal.CodePolicyDenied, Rule: refusal.RuleChains, Message: "no"}
		}
		return &proto.Error{Code: refusal.CodeBadRequest}
	})
	s := metricsServer(t, sim)
	h := s.Handler()
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/v1/sign", strings.NewReader(`{}`))
		req.Header.Set(stamp.Header, "x")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	got := scrapeMetrics(t, h)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`nitrosign_enclave_state{state="ready"}`, 1},
		{`nitrosign_enclave_state{state="locked"}`, 0},
		{`nitrosign_enclave_state{state="ephemeral"}`, 0},
		{`nitrosign_enclave_state{state="unavailable"}`, 0},
		{`nitrosign_enclave_keys`, 3},
		{`nitrosign_enclave_frozen_keys`, 2},
		{`nitrosign_enclave_pending_approvals`, 5},
		{`nitrosign_enclave_start_timestamp_seconds`, 1_800_000_000.5},
		{`nitrosign_policy_version`, 7},
		{`nitrosign_policy_pending_changes`, 1},
		{`nitrosign_policy_pending_effective_timestamp_seconds`, 1_800_000_600},
		{`nitrosign_audit_enclave_seq`, 42},
		{`nitrosign_audit_persisted_seq`, 0},
		{`nitrosign_kms_requests_total{op="decrypt",outcome="ok"}`, 2},
		{`nitrosign_kms_requests_total{op="decrypt",outcome="access_denied"}`, 1},
		{`nitrosign_kms_requests_total{op="decrypt",outcome="error"}`, 1},
		{`nitrosign_kms_requests_total{op="generate_data_key",outcome="ok"}`, 0},
		{`nitrosign_kms_request_duration_seconds_bucket{op="decrypt",le="0.05"}`, 0},
		{`nitrosign_kms_request_duration_seconds_bucket{op="decrypt",le="0.1"}`, 4},
		{`nitrosign_kms_request_duration_seconds_bucket{op="decrypt",le="+Inf"}`, 4},
		{`nitrosign_kms_request_duration_seconds_sum{op="decrypt"}`, 0.3},
		{`nitrosign_kms_request_duration_seconds_count{op="decrypt"}`, 4},
		{`nitrosign_kms_request_duration_seconds_count{op="generate_data_key"}`, 0},
		{`nitrosign_sign_decisions_total{outcome="policy_denied",rule="chains"}`, 2},
		{`nitrosign_sign_decision_duration_seconds_count{outcome="policy_denied"}`, 2},
		{`nitrosign_sign_decision_duration_seconds_bucket{outcome="policy_denied",le="+Inf"}`, 2},
	} {
		t.Run(tc.series, func(t *testing.T) {
			v, ok := got.samples[tc.series]
			if !ok {
				t.Fatalf("no series %s", tc.series)
			}
			if v != tc.want {
				t.Errorf("%s = %v, want %v", tc.series, v, tc.want)
			}
		})
	}
}

// TestMetricsEnclaveStates: the state set follows the enclave's state,
// and an enclave that does not answer is unavailable, with none of the
// enclave's other metrics (no stale values).
func TestMetricsEnclaveStates(t *testing.T) {
	for _, tc := range []struct {
		name, state, want string
	}{
		{"locked", "locked", "locked"},
		{"ready", "ready", "ready"},
		{"ephemeral", "ephemeral", "ephemeral"},
		{"unknown state", "melting", "unavailable"},
		{"not running", "", "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := newSim(t)
			if tc.state != "" {
				startFake(t, sim, func(m proto.Message) proto.Message {
					return &proto.HealthResponse{State: tc.state, Keys: 1}
				})
			}
			got := scrapeMetrics(t, metricsServer(t, sim).Handler())
			for _, st := range []string{"locked", "ready", "ephemeral", "unavailable"} {
				want := 0.0
				if st == tc.want {
					want = 1
				}
				if v, ok := got.samples[`nitrosign_enclave_state{state="`+st+`"}`]; !ok || v != want {
					t.Errorf("state %s: %v (present %v), want %v", st, v, ok, want)
				}
			}
			_, hasKeys := got.samples["nitrosign_enclave_keys"]
			if hasKeys != (tc.want != "unavailable") {
				t.Errorf("nitrosign_enclave_keys present: %v, want %v", hasKeys, tc.want != "unavailable")
			}
		})
	}
}
