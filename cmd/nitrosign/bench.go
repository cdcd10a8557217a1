package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/loadgen"
	"github.com/nitrosign/nitrosign/internal/logging"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	duration := fs.Duration("duration", 10*time.Second, "measured `duration` of the load run")
	clients := fs.Int("clients", 64, "concurrent `clients`")
	signFor := fs.Duration("sign-duration", 3*time.Second, "`duration` of each raw signing measurement")
	enclaveBin := fs.String("enclave-binary", "", "enclave executable `path` (default: next to this program, else built)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (host and load generator) during the end-to-end run to `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

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

	to, _ := ethtx.ParseAddress(devstack.ExampleDestinationA)
	tx := &ethtx.Tx{
		Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(11155111), Nonce: 7, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9),
		To: &to, Value: big.NewInt(1e15),
	}
	fmt.Fprintf(stdout, "nitrosign bench: %d CPUs, GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(stdout, "end to end: HTTP -> host -> simulated vsock -> enclave process -> answer; %d stamped clients for %v (load generator on the same machine)\n", *clients, *duration)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
	}
	e0, _ := st.EnclaveUsage()
	s0, _ := devstack.SelfUsage()
	res, err := loadgen.Run(ctx, loadgen.Options{
		URL: st.URL, Signer: st.Client, Key: st.Keys[0].ID, Unsigned: tx.EncodeUnsigned(),
		Clients: *clients, Duration: *duration,
	})
	pprof.StopCPUProfile()
	e1, _ := st.EnclaveUsage()
	s1, _ := devstack.SelfUsage()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  cpu per request: enclave %v, host+loadgen %v\n", (e1.CPU-e0.CPU)/time.Duration(res.Requests), (s1.CPU-s0.CPU)/time.Duration(res.Requests))
	fmt.Fprintf(stdout, "  requests     %d signed, %d errors\n", res.Requests, res.Errors)
	if res.FirstErr != nil {
		fmt.Fprintf(stdout, "  first error  %v\n", res.FirstErr)
	}
	fmt.Fprintf(stdout, "  throughput   %.0f requests/s\n", res.PerSecond)
	fmt.Fprintf(stdout, "  latency      p50 %v  p99 %v  max %v\n", res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.Max.Round(time.Microsecond))

	st.Close() // free the cores for the raw measurement
	one, err := loadgen.SignRate(*signFor, 1)
	if err != nil {
		return err
	}
	all, err := loadgen.SignRate(*signFor, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "raw secp256k1 signing (ethtx.Sign, RFC 6979, low-S), same run:\n")
	fmt.Fprintf(stdout, "  1 goroutine  %.0f signatures/s\n", one)
	fmt.Fprintf(stdout, "  %d goroutines %.0f signatures/s\n", runtime.GOMAXPROCS(0), all)
	fmt.Fprintf(stdout, "ratio          end-to-end / raw signing (all cores) = %.2f\n", res.PerSecond/all)
	if res.Errors > 0 {
		return fmt.Errorf("%d requests failed", res.Errors)
	}
	return nil
}
