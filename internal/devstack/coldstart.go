package devstack

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
)

// readyPoll is how often RestartEnclave tries to sign through the new
// enclave run: often enough that the figure it reports is the enclave's
// and the host's, not the poll's.
const readyPoll = 5 * time.Millisecond

// RestartEnclave kills the enclave process (SIGKILL) and waits until the
// run the supervisor starts next is unsealed and serving: a stamped sign
// request through the host is answered with a signature (so the new run's
// boot record and the request's record are on disk). It returns the cold
// start: the time from the new process's start to that answer (the
// supervisor's backoff before the start is not counted). For `nitrosign
// bench`.
func (s *Stack) RestartEnclave(ctx context.Context) (time.Duration, error) {
	pid, err := s.KillEnclave()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	c, err := client.New(s.URL, s.Client, &client.Options{HTTPClient: hc})
	if err != nil {
		return 0, err
	}
	to, _ := ethtx.ParseAddress(ExampleDestinationA)
	tx := (&ethtx.Tx{
		Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(ExampleApprovalChain), GasLimit: 21000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9),
		To: &to, Value: big.NewInt(1e15),
	}).EncodeUnsigned()
	last := "no new enclave process"
	for {
		if es := s.Enclave(); es.Running && es.PID != pid {
			_, err := c.SignTransaction(ctx, ExampleKeyID, tx)
			if err == nil {
				return time.Since(es.StartedAt), nil
			}
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("devstack: the restarted enclave did not sign within 30 s: %s", last)
		case <-time.After(readyPoll):
		}
	}
}
