package devstack_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

// scrapeSamples is one GET /metrics of the stack: the samples by series,
// as the text format writes them.
func scrapeSamples(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestDevStackMetrics: the metrics of a real enclave (the dev stack's,
// sealed with the simulated KMS) say what it is doing: ready, its keys,
// none frozen, the KMS calls that sealed and unsealed its seed, a request
// held for approvals, the audit log in step, and pushed credentials.
func TestDevStackMetrics(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SignTransaction(context.Background(), devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 11155111, To: devstack.ExampleDestinationB, Value: eth("800000000000000000")}))
	var pe *client.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("0.8 ETH on Sepolia: %v, want a request held for approvals", err)
	}
	got := scrapeSamples(t, st.URL)
	for _, tc := range []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{`nitrosign_enclave_state{state="ready"}`, func(v float64) bool { return v == 1 }, "1"},
		{`nitrosign_enclave_state{state="unavailable"}`, func(v float64) bool { return v == 0 }, "0"},
		{`nitrosign_enclave_keys`, func(v float64) bool { return v == float64(len(st.Keys)) }, "the stack's keys"},
		{`nitrosign_enclave_frozen_keys`, func(v float64) bool { return v == 0 }, "0"},
		{`nitrosign_enclave_pending_approvals`, func(v float64) bool { return v == 1 }, "1"},
		{`nitrosign_policy_version`, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`nitrosign_policy_pending_changes`, func(v float64) bool { return v == 0 }, "0"},
		{`nitrosign_kms_requests_total{op="decrypt",outcome="ok"}`, func(v float64) bool { return v >= 1 }, "at least 1 (the unseal)"},
		{`nitrosign_kms_requests_total{op="decrypt",outcome="access_denied"}`, func(v float64) bool { return v == 0 }, "0"},
		{`nitrosign_kms_request_duration_seconds_count{op="decrypt"}`, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`nitrosign_audit_persisted_seq`, func(v float64) bool { return v >= 2 }, "at least 2 (genesis, boot, decisions)"},
		{`nitrosign_audit_backlog`, func(v float64) bool { return v >= 0 }, "present"},
		{`nitrosign_credentials_expiry_seconds`, func(v float64) bool { return v > 0 }, "positive (credentials pushed)"},
		{`nitrosign_sign_decision_duration_seconds_count{outcome="pending_approval"}`, func(v float64) bool { return v == 1 }, "1"},
	} {
		v, ok := got[tc.series]
		if !ok || !tc.ok(v) {
			t.Errorf("%s = %v (present %v), want %s", tc.series, v, ok, tc.want)
		}
	}
}
