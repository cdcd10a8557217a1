package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

// health returns the host's readiness answer (/v1/ready: 503 while the
// enclave is down or locked).
func health(t *testing.T, url string) (int, api.HealthResponse) {
	t.Helper()
	resp, err := http.Get(url + "/v1/ready")
	if err != nil {
		t.Fatalf("the host stopped answering: %v", err)
	}
	defer resp.Body.Close()
	var h api.HealthResponse
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("health: %v", err)
	}
	return resp.StatusCode, h
}

// TestDevStackRestartsKilledEnclave: the production topology in dev. The
// enclave process is killed (kill -9) while the host runs; the host keeps
// serving, answering 503 enclave_unavailable for health and sign; the
// supervisor starts a new run, the host unseals it by itself, and health
// and signing come back with the same addresses, with nothing restarted
// but the enclave.
func TestDevStackRestartsKilledEnclave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log bytes.Buffer
	// A backoff long enough to see the host without an enclave.
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:       t.TempDir(),
		Listen:        "127.0.0.1:0",
		EnclaveBinary: enclaveBinary(t),
		EnclaveLog:    &devstacktest.SyncWriter{W: &log},
		Supervision:   devstack.Supervision{Backoff: 700 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("starting the dev stack: %v\nenclave log:\n%s", err, log.String())
	}
	defer st.Close()
	if es := st.Enclave(); !es.Running || es.PID != st.EnclavePID || es.Restarts != 0 {
		t.Fatalf("enclave status at start: %+v (first pid %d)", es, st.EnclavePID)
	}
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(value int64) (*api.SignResponse, error) {
		return c.SignTransaction(ctx, devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 11155111, To: devstack.ExampleDestinationA, Value: big.NewInt(value)}))
	}
	if _, err := sign(1); err != nil {
		t.Fatal(err)
	}
	pids := []int{st.EnclavePID}
	for round := 1; round <= 2; round++ {
		pid, err := st.KillEnclave()
		if err != nil || pid != pids[len(pids)-1] {
			t.Fatalf("round %d: kill: pid %d, %v; want %d", round, pid, err, pids[len(pids)-1])
		}
		// Down: the host answers, with the code that says why.
		sawDown := false
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, h := health(t, st.URL)
			if code == 503 {
				if h.Status != api.StatusDegraded || h.Error == nil || h.Error.Code != refusal.CodeEnclaveUnavailable {
					t.Fatalf("round %d: health while the enclave is down: %d %+v %+v", round, code, h, h.Error)
				}
				if !sawDown {
					_, err := sign(int64(100 + round))
					var ae *client.APIError
					if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != refusal.CodeEnclaveUnavailable {
						// The new run may already be up but locked.
						if es := st.Enclave(); !es.Running {
							t.Fatalf("round %d: sign while the enclave is down: %v, want 503 %s", round, err, refusal.CodeEnclaveUnavailable)
						}
					}
				}
				sawDown = true
			}
			if code == 200 && sawDown {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: health %d %+v within 30 s of the kill (saw it down: %v)\nenclave log:\n%s", round, code, h, sawDown, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		es := st.Enclave()
		if !es.Running || es.Restarts != round || es.LastExit != "signal: killed" {
			t.Fatalf("round %d: enclave status %+v", round, es)
		}
		for _, p := range pids {
			if es.PID == p {
				t.Fatalf("round %d: pid %d again", round, p)
			}
		}
		pids = append(pids, es.PID)
		// Unsealed by the host: the same keys, and it signs.
		resp, err := sign(int64(round + 1))
		if err != nil {
			t.Fatalf("round %d: signing after the restart: %v", round, err)
		}
		if resp.From != st.Keys[0].Address {
			t.Fatalf("round %d: signed by %s, the key was %s", round, resp.From, st.Keys[0].Address)
		}
	}
	// RestartEnclave: the same, measured for the benchmark's cold start.
	d, err := st.RestartEnclave(ctx)
	if err != nil {
		t.Fatalf("RestartEnclave: %v\nenclave log:\n%s", err, log.String())
	}
	es := st.Enclave()
	if d <= 0 || st.ColdStart <= 0 || !es.Running || es.Restarts != 3 || es.PID == pids[len(pids)-1] {
		t.Fatalf("RestartEnclave: cold start %v (first start %v); enclave %+v", d, st.ColdStart, es)
	}
	pids = append(pids, es.PID)
	for _, u := range []func() (devstack.ProcessUsage, error){st.EnclaveUsage, devstack.SelfUsage} {
		if pu, err := u(); runtime.GOOS == "linux" && (err != nil || pu.RSS <= 0 || pu.CPU < 0) {
			t.Errorf("process usage %+v, %v", pu, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("enclave process %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if _, err := st.KillEnclave(); err == nil {
		t.Error("KillEnclave after Close succeeded")
	}
}
