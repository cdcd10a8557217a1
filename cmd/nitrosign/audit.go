package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nitrosign/nitrosign/audit"
)

// stringsFlag collects a repeated flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringsFlag)(nil)

func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError{errors.New("want a subcommand: verify")}
	}
	fs := newFlagSet("audit verify", stderr)
	var logs stringsFlag
	fs.Var(&logs, "log", "audit log `file` (repeat for rotated segments, oldest first)")
	keyHex := fs.String("audit-key", "", "the enclave's audit public key, `hex` (from its attestation's user_data)")
	headFlag := fs.String("head", "", "expected head `SEQ:HEX` (from a fresh attestation), to catch truncation and forks")
	all := fs.Bool("all-signatures", false, "check every record's signature, not only checkpoints")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if len(logs) == 0 {
		return usageError{errors.New("--log is required")}
	}
	key, err := hex.DecodeString(strings.TrimPrefix(*keyHex, "0x"))
	if err != nil || len(key) != ed25519.PublicKeySize {
		return usageError{errors.New("--audit-key: want the 32-byte audit public key in hex (nitrosign attest verify shows it)")}
	}
	opts := audit.VerifyOptions{AllSignatures: *all}
	if *headFlag != "" {
		h, err := audit.ParseHead(*headFlag)
		if err != nil {
			return usageError{fmt.Errorf("--head: %w", err)}
		}
		opts.ExpectHead = &h
	}
	rep, err := audit.VerifyFiles(logs, ed25519.PublicKey(key), opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d records, seq %d..%d, %d signed (%d signatures checked), head %s\n",
		rep.Records, rep.FirstSeq, rep.LastSeq, rep.Signed, rep.SignaturesChecked, rep.Head)
	return nil
}
