// Command nitrosign is the operator and developer CLI.
//
// Usage:
//
//	nitrosign dev   [--data-dir DIR] [--listen ADDR]     run the simulated stack
//	nitrosign sign  [--host URL] [--data-dir DIR] ...     send a stamped sign request
//	nitrosign keys  [--host URL]                          list the enclave's keys
//	nitrosign bench [--duration D] [--clients N]          end-to-end load benchmark
//	nitrosign attest fetch [--host URL] [--nonce HEX]     fetch an attestation document
//	nitrosign kms-policy --pcr0 HEX [--account ID] [--role ARN]
//	nitrosign audit verify --log FILE... --audit-key HEX [--head SEQ:HEX] [--all-signatures]
//	nitrosign attest verify --doc FILE [--root PEM] [--time T] [--pcr N=HEX]... [--nonce HEX] [--allow-debug] [--json]
//
// Run `nitrosign COMMAND -h` for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"dev":        {"run the whole stack locally: vsock simulator, enclave process, host API", runDev},
	"sign":       {"send a stamped sign request for an Ethereum transaction", runSign},
	"keys":       {"list the enclave's signing keys", runKeys},
	"bench":      {"measure the end-to-end signing path under load", runBench},
	"attest":     {"fetch or verify an attestation document (attest fetch|verify)", runAttest},
	"audit":      {"verify an audit log end to end (audit verify)", runAudit},
	"kms-policy": {"print the KMS key policy that releases the sealing key only to an attested image", runKMSPolicy},
	"admin":      {"write, sign and submit quorum-signed admin commands (admin command|sign|submit)", runAdmin},
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
	fmt.Fprintln(w, "\nRun 'nitrosign COMMAND -h' for a command's flags.")
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

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
