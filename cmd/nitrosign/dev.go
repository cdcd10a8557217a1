package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/logging"
)

func runDev(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	dataDir := fs.String("data-dir", devstack.DefaultDataDir, "data `directory` (dev client key, genesis configuration, sealed seed, simulated KMS, audit log)")
	listen := fs.String("listen", devstack.DefaultListen, "host API listen `address`")
	enclaveBin := fs.String("enclave-binary", "", "enclave executable `path` (default: nitrosign-enclave next to this program, else built)")
	level := fs.String("log-level", "info", "log `level` of the host and the enclave")
	format := fs.String("log-format", "text", "log `format` of the host and the enclave: text, or json (one object a line)")
	accept := fs.Bool("accept-new-image", false, "update the simulated KMS key policy to this enclave image (after a change to the enclave binary or genesis.json), as an admin would in AWS")
	genesisFile := fs.String("genesis", "", "run this production genesis configuration `file` (nitrosign genesis init) instead of the dev one; use a data directory of its own (docs/deployment.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logging.NewFormat(stderr, *level, *format)
	if err != nil {
		return usageError{err}
	}
	// say tells the person at the terminal what the stack is doing; with
	// JSON logs it is a log line, so that standard error stays JSON.
	say := func(msg string) { fmt.Fprintln(stderr, msg) }
	if *format == logging.FormatJSON {
		// One stream, two processes: the enclave's lines say
		// "process":"enclave" (devstack), the host's say so too.
		dev := log.With("process", "dev")
		log = log.With("process", "host")
		say = func(msg string) { dev.Info(strings.TrimSuffix(msg, "...")) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	say("starting the simulated stack (vsock simulator, NSM, KMS, enclave process, host)...")
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir:          *dataDir,
		Listen:           *listen,
		EnclaveBinary:    *enclaveBin,
		EnclaveLog:       stderr,
		Logger:           log,
		EnclaveLogLevel:  *level,
		EnclaveLogFormat: *format,
		AcceptNewImage:   *accept,
		Genesis:          *genesisFile,
	})
	if err != nil {
		return err
	}
	printBanner(stdout, st)
	werr := st.Wait(ctx)
	say("stopping...")
	cerr := st.Close()
	if werr != nil {
		return werr
	}
	if cerr != nil {
		return cerr
	}
	say("stopped")
	return nil
}

// selfCommand is how the user can run this program again: its path as
// invoked, or `go run ./cmd/nitrosign` when it was started by go run.
func selfCommand() string {
	exe, err := os.Executable()
	if err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/nitrosign"
	}
	return os.Args[0]
}

func printBanner(w io.Writer, st *devstack.Stack) {
	isolation := "own network namespace: no network but the simulator"
	if !st.Isolated {
		isolation = "no network namespace (no permission); it uses only the simulator"
	}
	fmt.Fprintf(w, "\nnitrosign dev stack is running\n\n")
	fmt.Fprintf(w, "  API          %s\n", st.URL)
	for _, k := range st.Keys {
		fmt.Fprintf(w, "  signing key  %s  %s  (%s)\n", k.ID, k.Address, k.Path)
	}
	if st.Genesis != "" {
		printProductionBanner(w, st, isolation)
		return
	}
	fmt.Fprintf(w, "  client key   %s (%s, registered as %s)\n", st.ClientKeyPath, st.Client.PublicKey(), devstack.ExampleClientName)
	fmt.Fprintf(w, "  enclave      pid %d, %s\n", st.EnclavePID, isolation)
	fmt.Fprintf(w, "               supervised: restarted whenever it ends (after %v, doubling to %v; reset after %v up),\n",
		st.Supervision.Backoff, st.Supervision.MaxBackoff, st.Supervision.StableRun)
	fmt.Fprintf(w, "               while the host keeps serving (503 enclave_unavailable meanwhile) and unseals each new run\n")
	fmt.Fprintf(w, "  PCR0         %x (simulated: SHA-384 over the enclave binary and genesis)\n", st.Measurement.PCR0)
	fmt.Fprintf(w, "  NSM root     %s\n", st.NSMRootPath)
	fmt.Fprintf(w, "  policy       chains 1 and 11155111; ETH to %s or %s, at most 1 ETH per transaction,\n",
		devstack.ExampleDestinationA, devstack.ExampleDestinationB)
	fmt.Fprintf(w, "               3 ETH a day to the second on mainnet; USDC transfers to both on mainnet, at most 1,000;\n")
	fmt.Fprintf(w, "               above 0.5 ETH on Sepolia both dev approvers must approve; freeze after 100 refusals in an hour\n")
	fmt.Fprintf(w, "  admins       %s, %s (quorum 2): %s/admin-*.pem\n", devstack.AdminName(1), devstack.AdminName(2), st.DataDir)
	fmt.Fprintf(w, "  approvers    %s, %s: %s/approver-*.pem\n", devstack.ApproverName(1), devstack.ApproverName(2), st.DataDir)
	if st.KMSKeyARN != "" {
		fmt.Fprintf(w, "  seed         sealed under simulated KMS key %s, released only to this PCR0\n", st.KMSKeyARN)
		fmt.Fprintf(w, "               (%s/seed.sealed; the same addresses at every start)\n\n", st.DataDir)
	} else {
		fmt.Fprintf(w, "  seed         ephemeral (genesis.json has no kms section): addresses change at every start\n\n")
	}
	self := selfCommand()
	fmt.Fprintf(w, "Try it:\n\n")
	fmt.Fprintf(w, "  curl -s %s/v1/keys\n\n", st.URL)
	fmt.Fprintf(w, "  %s sign --host %s --data-dir %s --to %s --value 0.5\n\n", self, st.URL, st.DataDir, devstack.ExampleDestinationB)
	fmt.Fprintf(w, "  # refused by the policy (403, rule max_per_transaction):\n")
	fmt.Fprintf(w, "  %s sign --host %s --data-dir %s --to %s --value 2\n\n", self, st.URL, st.DataDir, devstack.ExampleDestinationB)
	fmt.Fprintf(w, "  # waits for approvals (HTTP 202, exit 3), then each approver checks and approves it\n")
	fmt.Fprintf(w, "  # (--yes answers the confirmation in advance; without it, paste one approve at a time):\n")
	fmt.Fprintf(w, "  %s sign --host %s --data-dir %s --to %s --value 0.8\n", self, st.URL, st.DataDir, devstack.ExampleDestinationB)
	for i := 1; i <= devstack.ApproverCount; i++ {
		fmt.Fprintf(w, "  %s approve --host %s --id APPROVAL_ID --key %s --name %s --yes\n", self, st.URL, filepath.Join(st.DataDir, devstack.ApproverKeyFile(i)), devstack.ApproverName(i))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  # the same, trusting only the attested image: verify the attestation, then the answer:\n")
	fmt.Fprintf(w, "  %s sign --host %s --data-dir %s --to %s --value 0.5 --verify-enclave --root %s --pcr 0=%x\n\n", self, st.URL, st.DataDir, devstack.ExampleDestinationB, st.NSMRootPath, st.Measurement.PCR0)
	fmt.Fprintf(w, "  # a request with curl; the command runs once, within 5 minutes (its request_id and timestamp are stamped):\n")
	fmt.Fprintf(w, "  eval \"$(%s sign --host %s --data-dir %s --to %s --value 0.5 --curl)\"\n\n", self, st.URL, st.DataDir, devstack.ExampleDestinationA)
	fmt.Fprintf(w, "Ctrl-C stops everything.\n\n")
}

// printProductionBanner is the rest of the banner for a stack that runs a
// production genesis: its clients, admins and approvers are the genesis's,
// so the examples name no key files.
func printProductionBanner(w io.Writer, st *devstack.Stack, isolation string) {
	fmt.Fprintf(w, "  genesis      %s (production; the simulated enclave runs %s/%s,\n", st.Genesis, st.DataDir, devstack.GenesisFile)
	fmt.Fprintf(w, "               the same with kms.root_ca_pem set to the simulated KMS's CA)\n")
	fmt.Fprintf(w, "  clients      as the genesis registers them: %s genesis show --file %s\n", selfCommand(), st.Genesis)
	fmt.Fprintf(w, "  enclave      pid %d, %s\n", st.EnclavePID, isolation)
	fmt.Fprintf(w, "               supervised: restarted whenever it ends (after %v, doubling to %v; reset after %v up)\n",
		st.Supervision.Backoff, st.Supervision.MaxBackoff, st.Supervision.StableRun)
	fmt.Fprintf(w, "  PCR0         %x (simulated: SHA-384 over the enclave binary and genesis)\n", st.Measurement.PCR0)
	fmt.Fprintf(w, "  NSM root     %s\n", st.NSMRootPath)
	if st.KMSKeyARN != "" {
		fmt.Fprintf(w, "  seed         sealed under %s, simulated (%s/seed.sealed), released only to this PCR0\n\n", st.KMSKeyARN, st.DataDir)
	} else {
		fmt.Fprintf(w, "  seed         ephemeral (the genesis has no kms section): addresses change at every start\n\n")
	}
	self := selfCommand()
	fmt.Fprintf(w, "Try it, with the private key of a client the genesis registers:\n\n")
	fmt.Fprintf(w, "  %s sign --host %s --client-key CLIENT.pem --chain-id CHAIN --to ADDRESS --value 0.01\n", self, st.URL)
	fmt.Fprintf(w, "  %s attest fetch --host %s --out attestation.b64\n", self, st.URL)
	fmt.Fprintf(w, "  %s attest verify --doc attestation.b64 --root %s --pcr 0=%x\n", self, st.NSMRootPath, st.Measurement.PCR0)
	fmt.Fprintf(w, "  %s audit verify --dir %s\n\n", self, st.DataDir)
	fmt.Fprintf(w, "Ctrl-C stops everything.\n\n")
}
