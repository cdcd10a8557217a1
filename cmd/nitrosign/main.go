// Command nitrosign is the operator and developer CLI.
//
// Usage:
//
//	nitrosign dev   [--data-dir DIR] [--listen ADDR]     run the simulated stack
//	nitrosign sign  [--host URL] [--data-dir DIR] ...     send a stamped sign request
//	nitrosign keys  [--host URL]                          list the enclave's keys
//	nitrosign bench [--duration D] [--clients N,M] [--enclave-bench FILE]  figures against the crypto bound
//	nitrosign load  [--host URL] [--clients N] [--duration D | --requests N] [--prestamp]  drive a running host
//	nitrosign soak  [--requests N] [--clients N]          1,000,000 requests: errors, memory, audit log
//	nitrosign attest fetch [--host URL] [--nonce HEX]     fetch an attestation document
//	nitrosign genesis init --kms-key-arn ARN --region R [--file F]   a production genesis skeleton
//	nitrosign genesis add-client|add-admin|add-approver|add-key|set-quorum|set-time-lock|... [--file F]
//	nitrosign genesis show|hash|check [--file F]              summarize, hash, review for production
//	nitrosign kms-policy --pcr0 HEX [--account ID] [--role ARN] [--locked [--admin-principal ARN]]
//	nitrosign audit verify --log FILE... --audit-key HEX [--head SEQ:HEX] [--all-signatures] [--accept-warning SEQ]...
//	nitrosign audit prove (--log FILE... | --dir DIR) --audit-key HEX --seq N   one record's inclusion proof, JSON
//	nitrosign audit check-proof --audit-key HEX [--proof FILE]
//	nitrosign attest verify --doc FILE [--root PEM] [--time T] [--pcr N=HEX]... [--nonce HEX] [--allow-debug] [--json]
//	nitrosign approve --id ID --key PEM --name NAME [--host URL] [--reject] [--yes]
//	nitrosign approvals show --id ID [--host URL] [--json]
//	nitrosign agent [--listen ADDR] [--host URL] [--client-key FILE] (--pcr 0=HEX [--root PEM] | --dev) [--upstream URL]
//	                                                      JSON-RPC signer sidecar (Web3Signer, Clef, node proxy)
//
// Run `nitrosign COMMAND -h` for a command's flags (and `nitrosign COMMAND
// SUBCOMMAND -h` for a subcommand's); -h and --help exit 0. `nitrosign
// --version` prints the version, the commit and the Go version.
//
// Exit status: 0 on success, 1 on any failure or refusal, 2 for a bad
// command line, 3 when `nitrosign sign` was answered "pending approval"
// (HTTP 202: the request waits for approvers; see `nitrosign approve`),
// and 4 when `nitrosign audit verify` found the log intact but with
// warnings not accepted (a rollback the enclave detected at start, a
// decrease of the checkpoint generation; see `--accept-warning`), or when
// `nitrosign genesis check` found a valid configuration with warnings not
// accepted (see `--allow-warnings`).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/nitrosign/nitrosign/internal/buildinfo"
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
	// subs are the subcommands run dispatches to (with runSubcommands),
	// for a command that has them: TestHelp asks each of them for -h.
	subs subcommands
}

var commands = map[string]command{
	"dev":        {"run the whole stack locally: vsock simulator, enclave process, host API", runDev, nil},
	"sign":       {"send a stamped sign request for an Ethereum transaction", runSign, nil},
	"keys":       {"list the enclave's signing keys", runKeys, nil},
	"bench":      {"measure the signing path against its crypto bound: end to end under load, cold start", runBench, nil},
	"load":       {"drive a running host with concurrent stamped sign requests and report throughput and latency", runLoad, nil},
	"soak":       {"sign 1,000,000 requests end to end and check errors, memory and the audit log", runSoak, nil},
	"attest":     {"fetch or verify an attestation document (attest fetch|verify)", runAttest, attestSubcommands},
	"audit":      {"verify an audit log end to end (audit verify), prove one record (audit prove, audit check-proof)", runAudit, auditSubcommands},
	"genesis":    {"write and review the enclave's genesis configuration (genesis init|add-*|set-*|show|hash|check)", runGenesis, genesisSubcommands},
	"kms-policy": {"print the KMS key policy that releases the sealing key only to an attested image", runKMSPolicy, nil},
	"policy":     {"show the policy, and sign, submit or cancel quorum-signed policy changes (policy show|sign|submit|cancel)", runPolicy, policySubcommands},
	"admin":      {"write, sign and submit quorum-signed admin commands (admin command|sign|submit)", runAdmin, adminSubcommands},
	"approve":    {"check a request waiting for approvals on this machine, then approve or reject it", runApprove, nil},
	"approvals":  {"show a request waiting for approvals, decoded locally (approvals show)", runApprovals, approvalsSubcommands},
	"agent":      {"run the JSON-RPC signer sidecar (Web3Signer eth_*, Clef account_*, node proxy) that verifies the enclave", runAgent, nil},
}

func main() {
	os.Exit(mainWithArgs(os.Args[1:], os.Stdout, os.Stderr))
}

func mainWithArgs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		if err := buildinfo.Read().Write(stdout, "nitrosign", false); err != nil {
			fmt.Fprintf(stderr, "nitrosign: %v\n", err)
			return 1
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nitrosign: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "nitrosign %s: %v\n", args[0], err)
			return 2
		}
		var ee exitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "nitrosign %s: %v\n", args[0], err)
			return ee.code
		}
		fmt.Fprintf(stderr, "nitrosign %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: nitrosign COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'nitrosign COMMAND -h' for a command's flags, 'nitrosign --version' for the build.")
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

// exitPending is the exit status of a sign request waiting for approvals.
const exitPending = 3

// exitError is an outcome with an exit status of its own.
type exitError struct {
	code int
	error
}

// newFlagSet returns a flag set whose errors are returned, not fatal.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("nitrosign "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// subcommands maps the subcommands of a command to their functions.
type subcommands map[string]func(args []string, stdout, stderr io.Writer) error

// runSubcommands runs the subcommand args[0] of subs, printing usage for
// none, -h or an unknown one.
func runSubcommands(usage string, subs subcommands, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return usageError{errors.New("missing subcommand")}
		}
		return nil
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
	}
	return run(args[1:], stdout, stderr)
}
