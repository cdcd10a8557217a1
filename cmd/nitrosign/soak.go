package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nitrosign/nitrosign/internal/chaos"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/logging"
)

// replayWindow is how long the enclave keeps an accepted request id to
// refuse its replay: as long as a stamp stays fresh (enclave.MaxRequestAge,
// which the CLI does not import).
const replayWindow = 5 * time.Minute

// rssSample is the resident memory of the host and the enclave at one time.
type rssSample struct {
	at            time.Duration // since the load started
	host, enclave int64
}

func runSoak(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("soak", stderr)
	requests := fs.Int("requests", 1_000_000, "`number` of sign requests after the warm-up")
	clients := fs.Int("clients", 64, "concurrent `clients`")
	every := fs.Duration("sample", 5*time.Second, "how often to sample the resident memory (`duration`)")
	warmFraction := fs.Float64("warmup-fraction", 0.2, "the `fraction` of the run after which memory must be flat (and at least the enclave's replay window, 5 minutes, and a minute)")
	maxGrowth := fs.Float64("max-growth", 0.2, "largest growth of resident memory allowed after the warm-up, a `fraction` of its first sample there")
	enclaveBin := fs.String("enclave-binary", "", "enclave executable `path` (default: next to this program, else built)")
	keep := fs.String("keep", "", "keep the data directory (audit log included) in `dir` instead of a temporary one")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	dir := *keep
	if dir == "" {
		d, err := os.MkdirTemp("", "nitrosign-soak-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	log, _ := logging.New(stderr, "warn")
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir: dir, Listen: "127.0.0.1:0", EnclaveBinary: *enclaveBin,
		EnclaveLog: stderr, EnclaveLogLevel: "warn", Logger: log,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	key := st.Keys[0].ID
	signedPath := filepath.Join(dir, "soak-signed.bin")
	fmt.Fprintf(stdout, "nitrosign soak: %d requests end to end from %d clients (load generator in its own process, stamping live); data directory %s\n", *requests, *clients, dir)
	// The load generator warms up for the enclave's replay window and a
	// minute, and a sample more, before it counts the requests: memory is
	// judged flat only after the replay guard holds a whole window of ids,
	// and at full speed the requests alone can take less than that.
	warmup := replayWindow + time.Minute + *every
	cmd, out, err := startLoad(ctx, []string{"--host", st.URL, "--client-key", st.ClientKeyPath, "--key", key,
		"--clients", strconv.Itoa(*clients), "--warmup", warmup.String(), "--requests", strconv.Itoa(*requests), "--signed", signedPath}, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	done := make(chan struct{})
	var (
		rep     loadReport
		loadCPU time.Duration
		loadErr error
	)
	go func() {
		rep, loadCPU, loadErr = finishLoad(cmd, out)
		close(done)
	}()
	var samples []rssSample
	sample := func() {
		h, herr := devstack.SelfUsage()
		e, eerr := st.EnclaveUsage()
		if herr == nil && eerr == nil {
			samples = append(samples, rssSample{at: time.Since(start), host: h.RSS, enclave: e.RSS})
		}
	}
	sample()
	tick := time.NewTicker(*every)
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	sample()
	elapsed := time.Since(start)
	restarts := st.Enclave().Restarts
	if err := st.Close(); err != nil {
		return err
	}
	if loadErr != nil {
		return loadErr
	}
	fmt.Fprintf(stdout, "requests       %d sent (warm-up included), %d signed, %d errors, in %v: %.0f requests/s; latency p50 %v  p99 %v  p999 %v  max %v; load generator CPU %v\n",
		rep.Sent, rep.Signed, rep.Errors, elapsed.Round(time.Second), rep.PerSecond, ns(rep.P50NS), ns(rep.P99NS), ns(rep.P999NS), ns(rep.MaxNS), loadCPU.Round(time.Second))
	if rep.FirstErr != "" {
		fmt.Fprintf(stdout, "first error    %s\n", rep.FirstErr)
	}
	var failures []string
	if rep.Errors > 0 || rep.Sent != rep.Signed {
		failures = append(failures, fmt.Sprintf("%d requests not signed", rep.Sent-rep.Signed))
	}
	if restarts > 0 {
		failures = append(failures, fmt.Sprintf("the enclave process was restarted %d times", restarts))
	}

	// The warm-up: the given fraction of the run, and at least the
	// enclave's replay window and a minute: the enclave keeps every
	// request id it accepted for as long as a stamp stays fresh, so its
	// memory grows for that long by design, and is flat only after.
	warm := max(time.Duration(float64(elapsed)**warmFraction), replayWindow+time.Minute)
	fmt.Fprintf(stdout, "RSS by minute  host/enclave MiB:")
	for i, next := 0, time.Duration(0); i < len(samples); i++ {
		if samples[i].at >= next || i == len(samples)-1 {
			fmt.Fprintf(stdout, " %v %.0f/%.0f", samples[i].at.Round(time.Minute), float64(samples[i].host)/(1<<20), float64(samples[i].enclave)/(1<<20))
			next = samples[i].at.Truncate(time.Minute) + time.Minute
		}
	}
	fmt.Fprintln(stdout)
	for _, who := range []struct {
		name string
		rss  func(rssSample) int64
	}{{"host", func(s rssSample) int64 { return s.host }}, {"enclave", func(s rssSample) int64 { return s.enclave }}} {
		var first, last, peak int64
		n := 0
		for _, s := range samples {
			if s.at < warm {
				continue
			}
			v := who.rss(s)
			if n == 0 {
				first = v
			}
			last, peak, n = v, max(peak, v), n+1
		}
		if n == 0 {
			failures = append(failures, "no memory sample after the warm-up")
			break
		}
		growth := float64(peak-first) / float64(first)
		fmt.Fprintf(stdout, "RSS %-8s   after the warm-up (%v, %d samples): first %s, last %s, max %s (growth %+.1f%%); at the start %s\n",
			who.name, warm.Round(time.Second), n, mib(first), mib(last), mib(peak), 100*growth, mib(who.rss(samples[0])))
		if growth > *maxGrowth {
			failures = append(failures, fmt.Sprintf("%s memory grew %.0f%% after the warm-up", who.name, 100*growth))
		}
	}

	signed, err := readSigned(signedPath)
	if err != nil {
		return err
	}
	sigs := make([]chaos.Signature, len(signed))
	for i, s := range signed {
		sigs[i] = chaos.Signature{Seq: s.Seq, Digest: s.Digest}
	}
	t0 := time.Now()
	check, err := chaos.CheckSignatures(dir, st.Client.PublicKey(), key, sigs)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log      %s (checked in %v)\n", check, time.Since(t0).Round(time.Second))
	if !check.OK() {
		failures = append(failures, "the audit log does not hold exactly one record per signature")
	}
	if len(failures) > 0 {
		return fmt.Errorf("soak failed: %v", failures)
	}
	fmt.Fprintln(stdout, "soak passed: 0 errors, memory flat after the warm-up, exactly one persisted record per signature")
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
