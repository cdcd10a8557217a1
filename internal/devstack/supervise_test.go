package devstack

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSupervisionWait(t *testing.T) {
	p := Supervision{}.withDefaults()
	if p.Backoff != DefaultRestartBackoff || p.MaxBackoff != DefaultRestartBackoffMax || p.StableRun != DefaultStableRun {
		t.Fatalf("defaults: %+v", p)
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		ran  []time.Duration // how long each run lasted
		want []time.Duration // the wait before the next run
	}{
		{"one crash", []time.Duration{time.Hour}, []time.Duration{100 * ms}},
		{"crash loop doubles up to the cap", []time.Duration{0, ms, 0, 0, 0, 0, 0, 0, 0},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"a stable run resets it", []time.Duration{0, 0, 0, 10 * time.Second, 0},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 100 * ms, 200 * ms}},
		{"just short of stable does not", []time.Duration{0, 10*time.Second - ms},
			[]time.Duration{100 * ms, 200 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w time.Duration
			for i, ran := range tc.ran {
				w = p.wait(w, ran)
				if w != tc.want[i] {
					t.Fatalf("run %d (lasted %v): wait %v, want %v", i+1, ran, w, tc.want[i])
				}
			}
		})
	}
	odd := Supervision{Backoff: time.Second, MaxBackoff: time.Millisecond}.withDefaults()
	if odd.MaxBackoff != time.Second {
		t.Errorf("a cap below the first wait: %+v", odd)
	}
}

// TestSupervisorRestarts runs a stand-in for the enclave binary under the
// supervisor: a run that is killed, or exits by itself, is started again
// (a new pid, counted), and Close ends supervision with no process left.
func TestSupervisorRestarts(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH")
	}
	// Exits by itself once the file exists; else runs until killed.
	flag := t.TempDir() + "/exit-now"
	script := "while [ ! -e " + flag + " ]; do sleep 0.02; done; rm -f " + flag + "; exit 3"
	policy := Supervision{Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	p, err := startSupervisor(sh, []string{"-c", script}, io.Discard, false, slog.New(slog.DiscardHandler), policy)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.beginSupervision(); err != nil {
		t.Fatal(err)
	}
	waitRun := func(restarts int, lastExit string) EnclaveStatus {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := p.snapshot()
			if st.Running && st.Restarts == restarts {
				if !strings.Contains(st.LastExit, lastExit) {
					t.Fatalf("restart %d: last exit %q, want %q", restarts, st.LastExit, lastExit)
				}
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("no run %d within 10 s: %+v", restarts, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	first := waitRun(0, "")
	pids := []int{first.PID}
	for i, end := range []struct {
		how  string
		exit string
	}{
		{"kill -9", "signal: killed"},
		{"exits with status 3", "exit status 3"},
		{"kill -9", "signal: killed"},
	} {
		switch end.how {
		case "kill -9":
			pid, err := p.signal(os.Kill)
			if err != nil || pid != pids[len(pids)-1] {
				t.Fatalf("kill: pid %d, %v; want pid %d", pid, err, pids[len(pids)-1])
			}
		default:
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		st := waitRun(i+1, end.exit)
		if st.PID == pids[len(pids)-1] {
			t.Fatalf("after %s: the same pid %d", end.how, st.PID)
		}
		pids = append(pids, st.PID)
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if st := p.snapshot(); st.Running || st.Restarts != 3 {
		t.Errorf("after close: %+v", st)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after close (kill 0: %v)", pid, err)
		}
	}
	if _, err := p.signal(os.Kill); err == nil {
		t.Error("kill after close succeeded")
	}
}

// TestSupervisorFirstRunFails: before supervision begins (while the stack
// starts) an end is reported with its reason, not restarted.
func TestSupervisorFirstRunFails(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH")
	}
	p, err := startSupervisor(sh, []string{"-c", "exit 7"}, io.Discard, false, slog.New(slog.DiscardHandler), Supervision{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	select {
	case <-p.failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first run's end was not reported")
	}
	if err := p.err(); err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("err = %v", err)
	}
	if err := p.beginSupervision(); err == nil {
		t.Error("supervision began after the first run ended")
	}
	if st := p.snapshot(); st.Restarts != 0 || st.Running {
		t.Errorf("restarted: %+v", st)
	}
}
