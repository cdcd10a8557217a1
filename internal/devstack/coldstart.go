package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nitrosign/nitrosign/api"
)

// readyPoll is how often RestartEnclave asks the host whether the new
// enclave run serves: often enough that the figure it reports is the
// enclave's and the host's, not the poll's.
const readyPoll = 5 * time.Millisecond

// RestartEnclave kills the enclave process (SIGKILL) and waits until the
// run the supervisor starts next is unsealed and serving through the host:
// GET /v1/health answers 200, status ok, for an enclave started after the
// new process was. It returns the cold start: the time from the new
// process's start to then (the supervisor's backoff before it is not
// counted). For `nitrosign bench`.
func (s *Stack) RestartEnclave(ctx context.Context) (time.Duration, error) {
	pid, err := s.KillEnclave()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	last := "no new enclave process"
	for {
		if es := s.Enclave(); es.Running && es.PID != pid {
			ok, why := s.serves(ctx, hc, es.StartedAt)
			if ok {
				return time.Since(es.StartedAt), nil
			}
			last = why
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("devstack: the restarted enclave did not serve within 30 s: %s", last)
		case <-time.After(readyPoll):
		}
	}
}

// serves asks the host for its health: whether it answers 200, status ok,
// for an enclave run started no earlier than started (and if not, why).
func (s *Stack) serves(ctx context.Context, hc *http.Client, started time.Time) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/health", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return false, err.Error()
	}
	var h api.HealthResponse
	if err := json.Unmarshal(b, &h); err != nil {
		return false, fmt.Sprintf("HTTP %d: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || h.Status != api.StatusOK || h.Enclave == nil {
		return false, fmt.Sprintf("HTTP %d %s", resp.StatusCode, b)
	}
	// The enclave's clock starts after its process did; a millisecond of
	// slack for the two clocks' rounding.
	if h.Enclave.StartedAtMS < started.UnixMilli()-1 {
		return false, "the host still answers for the previous run"
	}
	return true, ""
}
