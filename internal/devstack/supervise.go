package devstack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Defaults of Supervision.
const (
	DefaultRestartBackoff    = 100 * time.Millisecond
	DefaultRestartBackoffMax = 5 * time.Second
	DefaultStableRun         = 10 * time.Second
)

// Supervision says how the dev stack restarts its enclave process when it
// ends, as systemd restarts the enclave in production (docs/deployment.md):
// the host keeps running, and its unsealer unseals each new run. The zero
// value means the defaults.
type Supervision struct {
	// Backoff is the wait before restarting a run that ended (default
	// DefaultRestartBackoff). It doubles at each further run that ends
	// before StableRun, up to MaxBackoff (default DefaultRestartBackoffMax),
	// so that an enclave that cannot start does not spin.
	Backoff, MaxBackoff time.Duration
	// StableRun is how long a run must have lasted for the backoff to start
	// again from Backoff (default DefaultStableRun).
	StableRun time.Duration
}

// wait returns how long to wait before starting the next run, after a run
// that lasted ran, prev being the wait before that run (zero for the
// first run): Backoff after a stable run or the first, else twice prev, up
// to MaxBackoff. s has its defaults.
func (s Supervision) wait(prev, ran time.Duration) time.Duration {
	if prev <= 0 || ran >= s.StableRun {
		return s.Backoff
	}
	return min(2*prev, s.MaxBackoff)
}

func (s Supervision) withDefaults() Supervision {
	if s.Backoff <= 0 {
		s.Backoff = DefaultRestartBackoff
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = DefaultRestartBackoffMax
	}
	if s.MaxBackoff < s.Backoff {
		s.MaxBackoff = s.Backoff
	}
	if s.StableRun <= 0 {
		s.StableRun = DefaultStableRun
	}
	return s
}

// EnclaveStatus is the supervised enclave process, as Stack.Enclave reports
// it.
type EnclaveStatus struct {
	// PID is the process id of the current run, or of the last one while
	// none runs.
	PID int
	// Running says whether a run is in progress (started, not yet reaped).
	Running bool
	// Restarts counts the runs started after the first.
	Restarts int
	// LastExit says how the last run that ended ended ("signal: killed",
	// "exit status 1"); empty while none has.
	LastExit string
	// StartedAt is when the current (or last) run started.
	StartedAt time.Time
}

// supervisor runs the enclave binary, and once supervision has begun,
// starts it again whenever it ends, with exponential backoff. Before
// that (while the stack starts) an end is reported, not restarted, so that
// a binary that cannot start fails `nitrosign dev` at once with its reason.
type supervisor struct {
	bin     string
	args    []string
	isolate bool
	out     io.Writer
	jsonLog bool // the process logs JSON lines: tag them, keep them JSON (copyLines)
	log     *slog.Logger
	policy  Supervision

	mu          sync.Mutex
	cmd         *exec.Cmd // the current run; nil between runs
	status      EnclaveStatus
	supervising bool  // restarts enabled
	stopping    bool  // Close called: no more runs
	failErr     error // the first run ended before supervision began

	stop   chan struct{} // closed by close
	failed chan struct{} // closed once failErr is set
	done   chan struct{} // closed when run returns
}

// spawn starts one run. Its output goes, line by line and prefixed, to
// p.out; nothing from this process's environment reaches it.
func (p *supervisor) spawn() (*exec.Cmd, error) {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = procAttr(p.isolate)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close() // the child holds its own copy: EOF when it exits
	if err != nil {
		pr.Close()
		return nil, err
	}
	go func() {
		copyLines(p.out, p.jsonLog, pr)
		pr.Close()
	}()
	return cmd, nil
}

// startSupervisor starts the first run, in a network namespace of its own
// when the platform allows it (else without, saying so), and the loop that
// watches it.
func startSupervisor(bin string, args []string, out io.Writer, jsonLog bool, log *slog.Logger, policy Supervision) (*supervisor, error) {
	p := &supervisor{bin: bin, args: args, out: out, jsonLog: jsonLog, log: log, policy: policy.withDefaults(),
		stop: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{})}
	var cmd *exec.Cmd
	var err error
	if isolationSupported {
		p.isolate = true
		if cmd, err = p.spawn(); err != nil {
			// No permission for a network namespace: run without one.
			log.Warn("enclave process runs without its own network namespace", "err", err)
			p.isolate = false
		}
	}
	if cmd == nil {
		if cmd, err = p.spawn(); err != nil {
			return nil, fmt.Errorf("devstack: starting %s: %w", bin, err)
		}
	}
	p.cmd = cmd
	p.status = EnclaveStatus{PID: cmd.Process.Pid, Running: true, StartedAt: time.Now()}
	go p.run(cmd)
	return p, nil
}

// run waits for each run to end and starts the next, until close.
func (p *supervisor) run(cmd *exec.Cmd) {
	defer close(p.done)
	var wait time.Duration
	for {
		err := cmd.Wait()
		exit := describeExit(cmd, err)
		p.mu.Lock()
		ran := time.Since(p.status.StartedAt)
		p.cmd = nil
		p.status.Running = false
		p.status.LastExit = exit
		stopping, supervising := p.stopping, p.supervising
		if !stopping && !supervising {
			p.failErr = fmt.Errorf("enclave process exited: %s", exit)
			close(p.failed)
		}
		p.mu.Unlock()
		if stopping || !supervising {
			return
		}
		for {
			wait = p.policy.wait(wait, ran)
			p.log.Warn("the enclave process ended; restarting it (the host keeps serving, answering 503 enclave_unavailable meanwhile, and unseals the new run)",
				"pid", cmd.Process.Pid, "exit", exit, "ran", ran.Round(time.Millisecond), "restart_in", wait)
			select {
			case <-p.stop:
				return
			case <-time.After(wait):
			}
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				return
			}
			next, err := p.spawn()
			if err != nil {
				p.mu.Unlock()
				exit = "not started: " + err.Error()
				ran = 0
				continue
			}
			p.cmd = next
			p.status = EnclaveStatus{PID: next.Process.Pid, Running: true, Restarts: p.status.Restarts + 1, LastExit: p.status.LastExit, StartedAt: time.Now()}
			st := p.status
			p.mu.Unlock()
			p.log.Info("enclave process restarted", "pid", st.PID, "restarts", st.Restarts)
			cmd = next
			break
		}
	}
}

// describeExit says how a run ended.
func describeExit(cmd *exec.Cmd, err error) string {
	if cmd.ProcessState != nil {
		return cmd.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "ended"
}

// beginSupervision turns restarts on; it fails if the first run has
// already ended.
func (p *supervisor) beginSupervision() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failErr != nil {
		return p.failErr
	}
	p.supervising = true
	return nil
}

// err returns why the first run ended before supervision began, or nil.
func (p *supervisor) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failErr
}

func (p *supervisor) snapshot() EnclaveStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// signal sends sig to the current run.
func (p *supervisor) signal(sig os.Signal) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0, errors.New("devstack: no enclave process is running")
	}
	pid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(sig); err != nil {
		return 0, fmt.Errorf("devstack: signal %v to the enclave process %d: %w", sig, pid, err)
	}
	return pid, nil
}

// close stops supervising and ends the current run: SIGTERM, then SIGKILL
// after 5 seconds.
func (p *supervisor) close() error {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.stopping = true
	close(p.stop)
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		<-p.done
		return nil
	}
	cmd.Process.Signal(syscallTerm)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-p.done
		return errors.New("devstack: the enclave process did not stop on SIGTERM and was killed")
	}
}
