package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/loadgen"
)

// loadReport is what `nitrosign load --json` prints: loadgen.Result with
// durations in nanoseconds and the first error as text, for `nitrosign
// bench` and `nitrosign soak`, which run the load generator as a process of
// its own so that the host's CPU time, allocations and memory are measured
// without it.
type loadReport struct {
	Clients     int     `json:"clients"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstErr    string  `json:"first_error,omitempty"`
	Sent        int     `json:"sent"`
	Signed      int     `json:"signed"`
	PreStamped  int     `json:"pre_stamped"`
	LiveStamped int     `json:"live_stamped"`
	ElapsedNS   int64   `json:"elapsed_ns"`
	PerSecond   float64 `json:"per_second"`
	P50NS       int64   `json:"p50_ns"`
	P99NS       int64   `json:"p99_ns"`
	P999NS      int64   `json:"p999_ns"`
	MaxNS       int64   `json:"max_ns"`
}

func reportOf(r *loadgen.Result) loadReport {
	rep := loadReport{
		Clients: r.Clients, Requests: r.Requests, Errors: r.Errors, Sent: r.Sent, Signed: r.Signed,
		PreStamped: r.PreStamped, LiveStamped: r.LiveStamped, ElapsedNS: int64(r.Elapsed), PerSecond: r.PerSecond,
		P50NS: int64(r.P50), P99NS: int64(r.P99), P999NS: int64(r.P999), MaxNS: int64(r.Max),
	}
	if r.FirstErr != nil {
		rep.FirstErr = r.FirstErr.Error()
	}
	return rep
}

// signedRecordSize is the size of one record of `nitrosign load --signed`:
// the audit sequence number (8 bytes, big-endian) and the SHA-256 of the
// request body (32 bytes).
const signedRecordSize = 40

// benchTransaction is the transaction the load generator asks to sign: a
// transfer the dev stack's example policy allows without approvals.
func benchTransaction() []byte {
	to, _ := ethtx.ParseAddress(devstack.ExampleDestinationA)
	tx := &ethtx.Tx{
		Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(11155111), Nonce: 7, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9),
		To: &to, Value: big.NewInt(1e15),
	}
	return tx.EncodeUnsigned()
}

func runLoad(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", stderr)
	hostURL := fs.String("host", "http://"+devstack.DefaultListen, "host API base `URL`")
	dataDir := fs.String("data-dir", devstack.DefaultDataDir, "dev data `directory` whose client key stamps the requests")
	keyFile := fs.String("client-key", "", "client key `PEM` that stamps the requests (default DIR/client.pem)")
	key := fs.String("key", devstack.ExampleKeyID, "signing key `id` or address")
	txHex := fs.String("tx", "", "unsigned transaction to sign, `hex` (default: a transfer the dev policy allows)")
	clients := fs.Int("clients", 64, "concurrent `clients`")
	warmup := fs.Duration("warmup", time.Second, "`duration` of the warm-up, not measured")
	duration := fs.Duration("duration", 10*time.Second, "measured `duration`")
	requests := fs.Int("requests", 0, "send exactly this many `requests` after the warm-up (overrides --duration)")
	preStamp := fs.Bool("prestamp", false, "stamp the measured requests before the run (at most 300,000)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	signedOut := fs.String("signed", "", "write every signature's audit sequence number and request digest to `file` (40-byte records)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	signer, err := loadClientKey(*keyFile, *dataDir)
	if err != nil {
		return err
	}
	unsigned := benchTransaction()
	if *txHex != "" {
		if unsigned, err = hex.DecodeString(*txHex); err != nil {
			return usageError{fmt.Errorf("--tx: %w", err)}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	opts := loadgen.Options{
		URL: *hostURL, Signer: signer, Key: *key, Unsigned: unsigned, Clients: *clients,
		Warmup: *warmup, Duration: *duration, Requests: *requests, PreStamp: *preStamp,
	}
	var (
		out    *bufio.Writer
		outMu  sync.Mutex
		outErr error
	)
	if *signedOut != "" {
		f, err := os.Create(*signedOut)
		if err != nil {
			return err
		}
		defer f.Close()
		out = bufio.NewWriterSize(f, 1<<20)
		opts.OnSigned = func(s loadgen.Signed) {
			var rec [signedRecordSize]byte
			binary.BigEndian.PutUint64(rec[:8], s.Seq)
			copy(rec[8:], s.Digest[:])
			outMu.Lock()
			if _, err := out.Write(rec[:]); err != nil && outErr == nil {
				outErr = err
			}
			outMu.Unlock()
		}
	}
	res, err := loadgen.Run(ctx, opts)
	if out != nil {
		if ferr := out.Flush(); ferr != nil && outErr == nil {
			outErr = ferr
		}
		if outErr != nil {
			return fmt.Errorf("--signed: %w", outErr)
		}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(reportOf(res))
	}
	fmt.Fprintf(stdout, "%d clients: %d signed, %d errors in %v: %.0f requests/s; latency p50 %v p99 %v p999 %v max %v\n",
		res.Clients, res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond), res.PerSecond,
		res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.P999.Round(time.Microsecond), res.Max.Round(time.Microsecond))
	if res.FirstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", res.FirstErr)
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d requests failed", res.Errors)
	}
	return nil
}

// readSigned reads a file `nitrosign load --signed` wrote.
func readSigned(path string) ([]loadgen.Signed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%signedRecordSize != 0 {
		return nil, errors.New(path + ": not a whole number of records")
	}
	out := make([]loadgen.Signed, 0, len(b)/signedRecordSize)
	for ; len(b) > 0; b = b[signedRecordSize:] {
		s := loadgen.Signed{Seq: binary.BigEndian.Uint64(b[:8])}
		copy(s.Digest[:], b[8:signedRecordSize])
		out = append(out, s)
	}
	return out, nil
}
