// Command floor measures the physical floor of nitrosign's end-to-end path
// on this machine: the topology of `nitrosign bench` (the real load
// generator as a process of its own, an HTTP host process, an enclave
// process behind a unix socket) with no application logic, only the crypto
// bound's work per request and, in the "audit" variant, one record per
// request written and synced by the host in batches before the answer is
// released. See README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/loadgen"
	"github.com/nitrosign/nitrosign/stamp"
)

func main() {
	role := flag.String("role", "driver", "driver, host, enclave or load (the last three are started by the driver)")
	sock := flag.String("sock", "", "enclave socket path")
	audit := flag.Bool("audit", false, "audit variant: records written, synced and acknowledged before each answer")
	listen := flag.String("listen", "127.0.0.1:0", "host listen address")
	conns := flag.Int("conns", 4, "host connections to the enclave (the real host's default)")
	workers := flag.Int("workers", 0, "enclave workers (0: 2 x GOMAXPROCS; negative: a goroutine per request, like proto's connServer)")
	record := flag.Int("record", 580, "audit record size in bytes (a real log line is about 580)")
	dir := flag.String("dir", "", "directory of the audit file")
	url := flag.String("url", "", "host URL (load)")
	pids := flag.String("pids", "", "host,enclave process ids (load)")
	clientsFlag := flag.String("clients", "64,16", "clients, a comma-separated list (load: one number)")
	variants := flag.String("variants", "crypto,audit", "variants to run")
	runs := flag.Int("runs", 3, "measurements of each variant and client count")
	duration := flag.Duration("duration", 5*time.Second, "measured duration of each run")
	boundFor := flag.Duration("bound", 2*time.Second, "duration of each crypto-bound measurement")
	flag.Parse()
	var err error
	switch *role {
	case "enclave":
		err = runEnclave(*sock, *audit, *workers, *record)
	case "host":
		err = runHost(*listen, *sock, *conns, *audit, *dir, *record)
	case "load":
		err = runLoad(*url, *clientsFlag, *duration, *pids)
	case "driver":
		err = drive(*variants, *clientsFlag, *runs, *duration, *boundFor)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// loadResult is what the load role prints: loadgen's figures and the CPU
// per request of each process over a window inside the measured run (the
// warm-up and the pre-stamping left out).
type loadResult struct {
	PerSecond, P50ms, P99ms   float64
	Requests, Errors          int
	FirstErr                  string
	HostUS, EnclaveUS, LoadUS float64
	// The system (kernel) part of each.
	HostSysUS, EnclaveSysUS, LoadSysUS float64
	WindowRequests                     int64
}

func runLoad(url, clients string, d time.Duration, pids string) error {
	n, err := strconv.Atoi(clients)
	if err != nil {
		return err
	}
	hp, ep, _ := strings.Cut(pids, ",")
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		return err
	}
	to, _ := ethtx.ParseAddress("0x1111111111111111111111111111111111111111")
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(11155111), Nonce: 7, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9), To: &to, Value: big.NewInt(1e15)}
	var signed atomic.Int64
	type sample struct {
		t   time.Time
		n   int64
		cpu [3]time.Duration
		sys [3]time.Duration
		ok  bool
	}
	var samples []sample
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			s := sample{t: time.Now(), n: signed.Load(), ok: true}
			for i, p := range []string{hp, ep, "self"} {
				c, sys, err := procCPU(p)
				s.cpu[i], s.sys[i], s.ok = c, sys, s.ok && err == nil
			}
			samples = append(samples, s)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: url, Signer: signer, Key: "hot-0", Unsigned: tx.EncodeUnsigned(), Clients: n,
		Duration: d, PreStamp: true, OnSigned: func(loadgen.Signed) { signed.Add(1) },
	})
	end := time.Now()
	close(stop)
	<-done
	if err != nil {
		return err
	}
	// The measured run ended (clients stopped starting requests) just
	// before Run returned: the window keeps 200 ms clear of either end.
	lo, hi := end.Add(-d+200*time.Millisecond), end.Add(-200*time.Millisecond)
	var a, b *sample
	for i := range samples {
		s := &samples[i]
		if a == nil && !s.t.Before(lo) {
			a = s
		}
		if !s.t.After(hi) {
			b = s
		}
	}
	if a == nil || b == nil || b.n <= a.n || !a.ok || !b.ok {
		return fmt.Errorf("no usable measurement window")
	}
	per := func(i int) float64 {
		return float64(b.cpu[i]-a.cpu[i]) / float64(time.Microsecond) / float64(b.n-a.n)
	}
	perSys := func(i int) float64 {
		return float64(b.sys[i]-a.sys[i]) / float64(time.Microsecond) / float64(b.n-a.n)
	}
	out := loadResult{PerSecond: res.PerSecond, P50ms: ms(res.P50), P99ms: ms(res.P99), Requests: res.Requests,
		Errors: res.Errors, HostUS: per(0), EnclaveUS: per(1), LoadUS: per(2), WindowRequests: b.n - a.n,
		HostSysUS: perSys(0), EnclaveSysUS: perSys(1), LoadSysUS: perSys(2)}
	if res.FirstErr != nil {
		out.FirstErr = res.FirstErr.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procCPU reads a process's user+system time and its system time from /proc
// (in clock ticks of 10 ms: a window of seconds makes that negligible).
func procCPU(pid string) (cpu, sys time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%s/stat: short", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%s/stat: bad times", pid)
	}
	return time.Duration(u+s) * 10 * time.Millisecond, time.Duration(s) * 10 * time.Millisecond, nil
}

// start starts this program in role with args and returns it with the
// first line it prints (the enclave's "ready", the host's address).
func start(role string, args ...string) (*exec.Cmd, *bufio.Reader, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, "", err
	}
	cmd := exec.Command(exe, append([]string{"-role", role}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, "", err
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, "", fmt.Errorf("%s: %w", role, err)
	}
	return cmd, br, strings.TrimSpace(line), nil
}

type measurement struct {
	variant  string
	clients  int
	bound    float64
	cryptoUS float64 // CPU time of the crypto bound's work for one request
	batch    float64 // mean audit batch size over the host's life
	r        loadResult
}

func measure(variant string, clients int, d, boundFor time.Duration, extra []string) (measurement, error) {
	m := measurement{variant: variant, clients: clients}
	dir, err := os.MkdirTemp("", "floor-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "e.sock")
	audit := "-audit=" + strconv.FormatBool(variant == "audit")
	enc, _, _, err := start("enclave", append([]string{"-sock", sock, audit}, extra...)...)
	if err != nil {
		return m, err
	}
	defer func() { enc.Process.Kill(); enc.Wait() }()
	host, hostOut, addr, err := start("host", append([]string{"-sock", sock, audit, "-dir", dir}, extra...)...)
	if err != nil {
		return m, err
	}
	defer func() { host.Process.Kill(); host.Wait() }()
	before, err := bound(boundFor, &m)
	if err != nil {
		return m, err
	}
	load, _, line, err := start("load", "-url", "http://"+addr, "-clients", strconv.Itoa(clients), "-duration", d.String(),
		"-pids", fmt.Sprintf("%d,%d", host.Process.Pid, enc.Process.Pid))
	if err != nil {
		return m, err
	}
	if err := load.Wait(); err != nil {
		return m, fmt.Errorf("load: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &m.r); err != nil {
		return m, fmt.Errorf("load: %w", err)
	}
	if variant == "audit" {
		host.Process.Signal(syscall.SIGTERM)
		var batches, records float64
		if line, err := hostOut.ReadString('\n'); err == nil {
			fmt.Sscan(line, &batches, &records)
		}
		m.batch = records / max(batches, 1)
	}
	after, err := bound(boundFor, &m)
	m.bound = (before + after) / 2
	return m, err
}

// bound measures the crypto bound, and adds to m.cryptoUS the CPU time of
// one request's crypto alone (half the mean of the two measurements): the
// bound is a rate, which other work on the machine lowers, while the CPU
// time per operation stays steadier.
func bound(d time.Duration, m *measurement) (float64, error) {
	c0 := selfCPU()
	t0 := time.Now()
	b, err := loadgen.CryptoBound(d, 0)
	m.cryptoUS += float64(selfCPU()-c0) / float64(time.Microsecond) / (b * time.Since(t0).Seconds()) / 2
	return b, err
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func drive(variants, clientsList string, runs int, d, boundFor time.Duration) error {
	// The server flags pass through to the processes.
	var extra []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "conns" || f.Name == "workers" || f.Name == "record" {
			extra = append(extra, "-"+f.Name, f.Value.String())
		}
	})
	var clients []int
	for f := range strings.SplitSeq(clientsList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-clients: %q", f)
		}
		clients = append(clients, n)
	}
	cores := runtime.NumCPU()
	fmt.Printf("floor: %d CPUs, %s, %d runs of %v per variant and client count, alternating\n", cores, runtime.Version(), runs, d)
	var all []measurement
	for range runs {
		for v := range strings.SplitSeq(variants, ",") {
			for _, n := range clients {
				m, err := measure(v, n, d, boundFor, extra)
				if err != nil {
					return fmt.Errorf("%s, %d clients: %w", v, n, err)
				}
				r := m.r
				fmt.Printf("%-6s %3d clients  %6.0f req/s = %.2f of bound %.0f  p50 %.2f ms p99 %.2f ms  CPU/req (sys) host %.1f (%.0f) enclave %.1f (%.0f) load %.1f (%.0f) total %.1f us, crypto alone %.1f us; batch %.1f  (%d errors)\n",
					v, n, r.PerSecond, r.PerSecond/m.bound, m.bound, r.P50ms, r.P99ms, r.HostUS, r.HostSysUS, r.EnclaveUS, r.EnclaveSysUS, r.LoadUS, r.LoadSysUS, r.HostUS+r.EnclaveUS+r.LoadUS, m.cryptoUS, m.batch, r.Errors)
				if r.FirstErr != "" {
					fmt.Printf("    first error: %s\n", r.FirstErr)
				}
				all = append(all, m)
			}
		}
	}
	// On a machine of our own the bound is cores / (the crypto's CPU per
	// request), so the budget cores / (0.45 x bound) is the crypto's CPU
	// divided by 0.45, and the best ratio any run of this topology can reach
	// is the crypto's CPU over the total: both steadier than rates when
	// other work shares the cores.
	fmt.Println("\nsummary (median [min-max] of the runs); budget = crypto CPU / 0.45 (= cores / (0.45 x bound) on an idle machine); CPU-implied ratio = crypto CPU / total CPU")
	for v := range strings.SplitSeq(variants, ",") {
		for _, n := range clients {
			var ms []measurement
			for _, m := range all {
				if m.variant == v && m.clients == n {
					ms = append(ms, m)
				}
			}
			f := func(get func(measurement) float64) string {
				xs := make([]float64, len(ms))
				for i, m := range ms {
					xs[i] = get(m)
				}
				slices.Sort(xs)
				return fmt.Sprintf("%.4g [%.4g-%.4g]", xs[len(xs)/2], xs[0], xs[len(xs)-1])
			}
			fmt.Printf("%-6s %3d clients: req/s %s; ratio %s; p50 ms %s; p99 ms %s\n", v, n,
				f(func(m measurement) float64 { return m.r.PerSecond }), f(func(m measurement) float64 { return m.r.PerSecond / m.bound }),
				f(func(m measurement) float64 { return m.r.P50ms }), f(func(m measurement) float64 { return m.r.P99ms }))
			fmt.Printf("    CPU us/req: host %s enclave %s load %s total %s; budget %s; crypto CPU %s\n",
				f(func(m measurement) float64 { return m.r.HostUS }), f(func(m measurement) float64 { return m.r.EnclaveUS }),
				f(func(m measurement) float64 { return m.r.LoadUS }),
				f(func(m measurement) float64 { return m.r.HostUS + m.r.EnclaveUS + m.r.LoadUS }),
				f(func(m measurement) float64 { return m.cryptoUS / 0.45 }),
				f(func(m measurement) float64 { return m.cryptoUS }))
			fmt.Printf("    of it system time: host %s enclave %s load %s\n", f(func(m measurement) float64 { return m.r.HostSysUS }),
				f(func(m measurement) float64 { return m.r.EnclaveSysUS }), f(func(m measurement) float64 { return m.r.LoadSysUS }))
			fmt.Printf("    CPU-implied ratio of the bound %s; audit batch size %s\n", f(func(m measurement) float64 { return m.cryptoUS / (m.r.HostUS + m.r.EnclaveUS + m.r.LoadUS) }),
				f(func(m measurement) float64 { return m.batch }))
		}
	}
	return nil
}
