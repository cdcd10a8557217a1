package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

// KillOptions configures KillUnderLoad.
type KillOptions struct {
	// Clients is the number of concurrent clients.
	Clients int
	// Kills is how many times the enclave process is killed.
	Kills int
	// SignedBetween is how many new 200 answers the load must receive
	// from each enclave run before it is killed (default 50), and after
	// the last restart before the load stops.
	SignedBetween int
	// Recover bounds the time from a kill to the host being healthy again,
	// and from then to SignedBetween new signatures (default 60 s each).
	Recover time.Duration
	// Freeze, when positive, makes each kill land in a burst: the enclave
	// process is frozen (SIGSTOP) for this long while the clients keep
	// sending, so that requests pile up in front of it, then thawed
	// (SIGCONT) and killed within 2 ms, while it handles them all at once.
	// That is an enclave crashing at full load: many decisions between
	// their record and their answer, finishing out of order, so that some
	// answers are on their way to the host and others, with lower
	// sequence numbers, are lost. Unix only.
	Freeze time.Duration
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// KillResult is what KillUnderLoad did and saw.
type KillResult struct {
	// Answers are every answer the clients received, with its body.
	Answers []Answer
	// Kills is the number of kills done; Restarts the number of enclave
	// restarts the supervisor reports.
	Kills, Restarts int
	// Recovery is, for each kill, the time until health answered 200.
	Recovery []time.Duration
	// Err says why the run stopped early (the stack did not recover, or
	// stopped signing); the answers received until then are still in
	// Answers, to be checked.
	Err error
}

// KillUnderLoad runs opts.Clients clients against st and kills its enclave
// process (SIGKILL, as a crash) opts.Kills times while the host keeps
// running, each time once the current run has answered SignedBetween
// signatures (plus a random delay of up to 100 ms, so kills land at
// various points of a request's path), then waits until the supervisor has
// restarted it and the host has unsealed it (health 200). It returns every
// answer for Check.
func KillUnderLoad(ctx context.Context, st *devstack.Stack, opts KillOptions) *KillResult {
	if opts.SignedBetween <= 0 {
		opts.SignedBetween = 50
	}
	if opts.Recover <= 0 {
		opts.Recover = 60 * time.Second
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := &KillResult{}
	load, err := StartLoad(ctx, LoadOptions{
		URL: st.URL, Signer: st.Client, Key: devstack.ExampleKeyID,
		To: devstack.ExampleDestinationA, ChainID: 11155111, Clients: opts.Clients,
	})
	if err != nil {
		res.Err = err
		return res
	}
	defer func() {
		res.Answers = load.Stop()
		res.Restarts = st.Enclave().Restarts
	}()
	signedFrom := func(base int64) error {
		deadline := time.Now().Add(opts.Recover)
		for load.Signed() < base+int64(opts.SignedBetween) {
			if time.Now().After(deadline) {
				return fmt.Errorf("chaos: %d signatures in %v from the enclave run %d (pid %d), want %d: the stack stopped signing",
					load.Signed()-base, opts.Recover, st.Enclave().Restarts, st.Enclave().PID, opts.SignedBetween)
			}
			if err := sleep(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 1; i <= opts.Kills; i++ {
		if res.Err = signedFrom(load.Signed()); res.Err != nil {
			return res
		}
		if res.Err = sleep(ctx, time.Duration(rand.IntN(100))*time.Millisecond); res.Err != nil {
			return res
		}
		if opts.Freeze > 0 {
			if res.Err = freezeThaw(ctx, st, opts.Freeze, time.Duration(opts.Clients)*200*time.Microsecond); res.Err != nil {
				return res
			}
		}
		pid, err := st.KillEnclave()
		if err != nil {
			res.Err = err
			return res
		}
		killed := time.Now()
		res.Kills++
		logf("kill %d: enclave pid %d killed after %d signatures so far", i, pid, load.Signed())
		if res.Err = waitHealthy(ctx, st.URL, pid, st, opts.Recover); res.Err != nil {
			return res
		}
		res.Recovery = append(res.Recovery, time.Since(killed))
		logf("kill %d: healthy again after %v (pid %d, %d restarts)", i, time.Since(killed).Round(time.Millisecond), st.Enclave().PID, st.Enclave().Restarts)
	}
	res.Err = signedFrom(load.Signed())
	return res
}

// freezeThaw freezes the enclave process for d, thaws it, and returns
// once it has worked on what piled up for a random while: a random amount
// of CPU time up to burstCPU where the platform reports it (the kill then
// lands in the burst however loaded the machine is), else a random wall
// time up to 8 ms.
func freezeThaw(ctx context.Context, st *devstack.Stack, d, burstCPU time.Duration) error {
	if sigStop == nil {
		return fmt.Errorf("chaos: freezing a process is not supported on this platform")
	}
	pid, err := st.SignalEnclave(sigStop)
	if err != nil {
		return err
	}
	err = sleep(ctx, d)
	base, cerr := cpuTime(pid)
	if _, serr := st.SignalEnclave(sigCont); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if cerr != nil {
		return sleep(ctx, time.Duration(rand.IntN(8000))*time.Microsecond)
	}
	target := base + rand.Int64N(int64(burstCPU))
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		if t, err := cpuTime(pid); err != nil || t >= target {
			return nil
		}
		runtime.Gosched() // not Sleep: a loaded machine sleeps milliseconds
	}
	return nil
}

// waitHealthy waits until a new enclave run (not pid) is up and the host
// reports it healthy (200, status ok).
func waitHealthy(ctx context.Context, url string, pid int, st *devstack.Stack, within time.Duration) error {
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: 5 * time.Second}
	last := "no answer"
	for {
		if es := st.Enclave(); es.Running && es.PID != pid {
			code, h, err := Health(ctx, hc, url)
			switch {
			case err != nil:
				last = err.Error()
			case code == http.StatusOK && h.Status == api.StatusOK:
				return nil
			default:
				b, _ := json.Marshal(h)
				last = fmt.Sprintf("%d %s", code, b)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: the host did not report a new enclave run healthy within %v of the kill: last health %s; enclave %+v", within, last, st.Enclave())
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// Health asks the host whether it is ready to sign (GET /v1/ready: 200
// with status ok, or 503 with status degraded and the reason; /v1/health,
// the liveness probe, answers 200 in both cases).
func Health(ctx context.Context, hc *http.Client, url string) (int, api.HealthResponse, error) {
	var h api.HealthResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/ready", nil)
	if err != nil {
		return 0, h, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, h, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return resp.StatusCode, h, fmt.Errorf("chaos: health answer: %w", err)
	}
	return resp.StatusCode, h, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
