package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/loadgen"
	"github.com/nitrosign/nitrosign/internal/logging"
)

// Targets of the benchmark (issue 14), printed next to the figures.
const (
	targetRatio64   = 0.45                    // end to end at 64 clients, of the crypto bound
	targetP99At64   = 15 * time.Millisecond   // p99 at 64 clients
	targetP99At16   = 5 * time.Millisecond    // p99 at 16 clients
	targetColdStart = 1000 * time.Millisecond // enclave process start to unsealed and serving
)

// coldStarts is how many times `nitrosign bench` restarts the enclave to
// measure its cold start.
const coldStarts = 3

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	duration := fs.Duration("duration", 10*time.Second, "measured `duration` of each end-to-end run")
	clientsFlag := fs.String("clients", "16,64", "concurrent clients of the end-to-end runs, a comma-separated `list`")
	boundFor := fs.Duration("bound-duration", 2*time.Second, "`duration` of each crypto-bound measurement (one before and one after each run)")
	enclaveBench := fs.String("enclave-bench", "", "`file` holding the output of go test -bench BenchmarkHandleSign ./enclave, for the enclave-alone figures")
	preStamp := fs.Bool("prestamp", true, "stamp each run's requests before it starts (the client's cost, kept out of the measurement)")
	enclaveBin := fs.String("enclave-binary", "", "enclave executable `path` (default: next to this program, else built)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the host (this process) during each end-to-end run to `file` (file.N for N clients when there are several runs)")
	memprofile := fs.String("memprofile", "", "write an allocation profile of the host (this process) after the end-to-end runs to `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var clients []int
	for f := range strings.SplitSeq(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("--clients: %q is not a positive number", f)}
		}
		clients = append(clients, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	fmt.Fprintf(stdout, "nitrosign bench: %d CPUs, GOMAXPROCS %d, %s; every figure from this run, on this machine\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	// The bound is measured just before and just after each end-to-end
	// run, and each run is compared with the mean of those two: on a
	// machine shared with other work the cores a run gets vary, and a
	// ratio is only meaningful between figures taken at the same time.
	var bounds []float64
	measureBound := func() (float64, error) {
		b, err := loadgen.CryptoBound(*boundFor, 0)
		bounds = append(bounds, b)
		return b, err
	}

	dir, err := os.MkdirTemp("", "nitrosign-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log, _ := logging.New(stderr, "warn")
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:         dir,
		Listen:          "127.0.0.1:0",
		EnclaveBinary:   *enclaveBin,
		EnclaveLog:      stderr,
		EnclaveLogLevel: "warn",
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	firstStart := st.ColdStart
	var restarts []time.Duration
	for range coldStarts {
		d, err := st.RestartEnclave(ctx)
		if err != nil {
			return err
		}
		restarts = append(restarts, d)
	}

	var runs []e2eRun
	for _, n := range clients {
		args := []string{"--host", st.URL, "--client-key", st.ClientKeyPath, "--key", st.Keys[0].ID,
			"--clients", strconv.Itoa(n), "--duration", duration.String(), "--prestamp=" + strconv.FormatBool(*preStamp)}
		before, err := measureBound()
		if err != nil {
			return err
		}
		stopProfile, err := startProfile(*cpuprofile, n, len(clients))
		if err != nil {
			return err
		}
		r, err := measureLoad(ctx, st, args, stderr)
		stopProfile()
		if err != nil {
			return err
		}
		after, err := measureBound()
		if err != nil {
			return err
		}
		r.bound = (before + after) / 2
		runs = append(runs, r)
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	st.Close()
	var bound float64
	for _, b := range bounds {
		bound += b / float64(len(bounds))
	}
	fmt.Fprintf(stdout, "crypto bound        %.0f requests/s: one Ed25519 verification and one secp256k1 signature per request on %d cores (mean of %d measurements of %v, from %.0f to %.0f)\n",
		bound, runtime.GOMAXPROCS(0), len(bounds), *boundFor, slices.Min(bounds), slices.Max(bounds))
	if *enclaveBench != "" {
		eb, err := parseEnclaveBench(*enclaveBench)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enclave alone       %.0f signs/s = %.2f of the bound (BenchmarkHandleSign: stamp to released answer, in process; median of %d runs, taken before this program's bound: the ratio in the same go test runs is the line above); %.0f allocs, %.0f B per sign\n",
			eb.signsPerSec, eb.signsPerSec/bound, eb.runs, eb.allocs, eb.bytes)
	}
	slices.Sort(restarts)
	fmt.Fprintf(stdout, "cold start          %v from the enclave process's start to unsealed and serving through the host (median of %d restarts; max %v; target < %v); first start, making and sealing the seed, %v\n",
		restarts[len(restarts)/2].Round(time.Millisecond), len(restarts), restarts[len(restarts)-1].Round(time.Millisecond), targetColdStart, firstStart.Round(time.Millisecond))
	var failed []string
	if restarts[len(restarts)/2] >= targetColdStart {
		failed = append(failed, "cold start")
	}
	for _, r := range runs {
		rep := r.report
		stamping := "pre-stamped"
		if rep.LiveStamped > 0 {
			stamping = fmt.Sprintf("%d of %d stamped during the run", rep.LiveStamped, rep.LiveStamped+rep.PreStamped)
		}
		ratio := rep.PerSecond / r.bound
		fmt.Fprintf(stdout, "end to end, %3d clients  %.0f requests/s = %.2f of the bound (%.0f, measured around this run); latency p50 %v  p99 %v  p999 %v  max %v; %d signed, %d errors (%s)\n",
			rep.Clients, rep.PerSecond, ratio, r.bound, ns(rep.P50NS), ns(rep.P99NS), ns(rep.P999NS), ns(rep.MaxNS), rep.Requests, rep.Errors, stamping)
		fmt.Fprintf(stdout, "    per request: host %.1f allocs, %.0f B; CPU host %v, enclave %v, load generator %v (its stamping included)\n",
			r.allocsPerReq, r.bytesPerReq, r.hostCPU, r.enclaveCPU, r.loadCPU)
		if rep.FirstErr != "" {
			fmt.Fprintf(stdout, "    first error: %s\n", rep.FirstErr)
		}
		switch rep.Clients {
		case 64:
			fmt.Fprintf(stdout, "    targets: %.2f of the bound, p99 < %v\n", targetRatio64, targetP99At64)
			if ratio < targetRatio64 || ns(rep.P99NS) >= targetP99At64 {
				failed = append(failed, "64 clients")
			}
		case 16:
			fmt.Fprintf(stdout, "    target: p99 < %v\n", targetP99At16)
			if ns(rep.P99NS) >= targetP99At16 {
				failed = append(failed, "16 clients")
			}
		}
		if rep.Errors > 0 {
			return fmt.Errorf("%d requests failed at %d clients: %s", rep.Errors, rep.Clients, rep.FirstErr)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(stdout, "below target: %s\n", strings.Join(failed, ", "))
	} else {
		fmt.Fprintln(stdout, "every target met")
	}
	return nil
}

func ns(n int64) time.Duration {
	d := time.Duration(n)
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// e2eRun is one end-to-end run and what each process spent on it.
type e2eRun struct {
	report                       loadReport
	bound                        float64 // the crypto bound around the run
	allocsPerReq, bytesPerReq    float64
	hostCPU, enclaveCPU, loadCPU time.Duration
}

// measureLoad runs `nitrosign load args --json` as a process of its own and
// measures, over its life, the host's allocations (this process's
// runtime.MemStats: the host runs in it) and the CPU time of the host, the
// enclave and the load generator, each per request the host handled.
func measureLoad(ctx context.Context, st *devstack.Stack, args []string, stderr io.Writer) (e2eRun, error) {
	var m0, m1 runtime.MemStats
	h0, err := devstack.SelfUsage()
	if err != nil {
		return e2eRun{}, err
	}
	e0, err := st.EnclaveUsage()
	if err != nil {
		return e2eRun{}, err
	}
	runtime.ReadMemStats(&m0)
	cmd, out, err := startLoad(ctx, args, stderr)
	if err != nil {
		return e2eRun{}, err
	}
	rep, loadCPU, err := finishLoad(cmd, out)
	runtime.ReadMemStats(&m1)
	h1, herr := devstack.SelfUsage()
	e1, eerr := st.EnclaveUsage()
	if err != nil {
		return e2eRun{}, err
	}
	if err := errors.Join(herr, eerr); err != nil {
		return e2eRun{}, err
	}
	n := max(rep.Sent, 1)
	return e2eRun{
		report:       rep,
		allocsPerReq: float64(m1.Mallocs-m0.Mallocs) / float64(n),
		bytesPerReq:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n),
		hostCPU:      ((h1.CPU - h0.CPU) / time.Duration(n)).Round(time.Microsecond),
		enclaveCPU:   ((e1.CPU - e0.CPU) / time.Duration(n)).Round(time.Microsecond),
		loadCPU:      (loadCPU / time.Duration(n)).Round(time.Microsecond),
	}, nil
}

// startLoad starts this program's `load` command with args and --json.
func startLoad(ctx context.Context, args []string, stderr io.Writer) (*exec.Cmd, *bytes.Buffer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"load", "--json"}, args...)...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, out, nil
}

// finishLoad waits for the load command and returns its report and CPU
// time.
func finishLoad(cmd *exec.Cmd, out *bytes.Buffer) (loadReport, time.Duration, error) {
	err := cmd.Wait()
	var rep loadReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		if err == nil {
			err = fmt.Errorf("the load generator's report: %w", jerr)
		}
		return rep, 0, fmt.Errorf("the load generator: %w", err)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return rep, cpu, nil
}

// enclaveBenchResult is BenchmarkHandleSign's figures.
type enclaveBenchResult struct {
	signsPerSec, allocs, bytes float64
	runs                       int // the BenchmarkHandleSign lines read
}

// parseEnclaveBench reads the BenchmarkHandleSign lines of go test -bench
// output (make bench runs it several times): the median of their signs/s
// metric, allocs/op and B/op (-benchmem).
func parseEnclaveBench(path string) (enclaveBenchResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return enclaveBenchResult{}, err
	}
	defer f.Close()
	var rates, allocs, bytes []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "BenchmarkHandleSign-") && fields[0] != "BenchmarkHandleSign" {
			continue
		}
		var r enclaveBenchResult
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "signs/s":
				r.signsPerSec = v
			case "allocs/op":
				r.allocs = v
			case "B/op":
				r.bytes = v
			}
		}
		if r.signsPerSec == 0 {
			return r, fmt.Errorf("%s: BenchmarkHandleSign reports no signs/s", path)
		}
		rates, allocs, bytes = append(rates, r.signsPerSec), append(allocs, r.allocs), append(bytes, r.bytes)
	}
	if err := sc.Err(); err != nil {
		return enclaveBenchResult{}, err
	}
	if len(rates) == 0 {
		return enclaveBenchResult{}, fmt.Errorf("%s: no BenchmarkHandleSign line", path)
	}
	return enclaveBenchResult{signsPerSec: median(rates), allocs: median(allocs), bytes: median(bytes), runs: len(rates)}, nil
}

// median returns the median of v (which it sorts).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// startProfile starts a CPU profile of this process (the host) for the run
// of n clients, into path, or path.N when there are several runs; an empty
// path profiles nothing. The returned function stops it.
func startProfile(path string, n, runs int) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	if runs > 1 {
		path += "." + strconv.Itoa(n)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
