package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
)

// stringsFlag collects a repeated flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringsFlag)(nil)

// exitWarnings is the exit status of `audit verify` when the log is intact
// but carries warnings not accepted with --accept-warning.
const exitWarnings = 4

// runAudit verifies an audit log: files given in order (--log, repeated),
// or the segments of one audit key's log in a host's data directory
// (--dir): its sealed segments audit-K-FIRST-LAST.log in sequence order,
// then its live segment audit-K.log, K being the first 16 hex digits of the
// audit key. With --dir, each sealed segment must also hold the records
// its name says.
//
// A log that verifies may carry warnings (audit.Report.Warnings): boot
// records naming a rollback the enclave detected at start, and decreases
// of the records' checkpoint generation. Each is printed on stderr with
// its evidence, and the exit status is 4 (exitWarnings) rather than 0, so
// that a script that checks the status (`audit verify … || alert`) cannot
// pass over a rollback; it is not 1, so that the script can tell a log
// that was tampered with (1) from an intact log that records a rollback
// (4). Once a warning has been investigated, --accept-warning SEQ keeps it
// printed (as accepted) without affecting the status, and any new warning
// fails again. A --strict flag off by default was rejected: the default
// must fail loud for whoever scripts it.
func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError{errors.New("want a subcommand: verify")}
	}
	fs := newFlagSet("audit verify", stderr)
	var logs stringsFlag
	fs.Var(&logs, "log", "audit log `file` (repeat for rotated segments, oldest first)")
	dir := fs.String("dir", "", "the host's data `directory`: verify every segment of the audit key's log in it, in order (instead of --log)")
	keyHex := fs.String("audit-key", "", "the enclave's audit public key, `hex` (from its attestation's user_data)")
	headFlag := fs.String("head", "", "expected head `SEQ:HEX` (from a fresh attestation), to catch truncation and forks")
	fromFlag := fs.String("from", "", "the log starts after head `SEQ:HEX` (the head of earlier segments, verified before and since removed)")
	all := fs.Bool("all-signatures", false, "check every record's signature, not only checkpoints")
	var accept seqsFlag
	fs.Var(&accept, "accept-warning", "a warning already investigated: the `SEQ` of its record (repeat); it is still printed, but no longer makes the exit status 4")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if (len(logs) == 0) == (*dir == "") {
		return usageError{errors.New("want either --log FILE (repeated for segments) or --dir DIR")}
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
	if *fromFlag != "" {
		h, err := audit.ParseHead(*fromFlag)
		if err != nil {
			return usageError{fmt.Errorf("--from: %w", err)}
		}
		opts.FromSeq, opts.FromHash = h.Seq+1, h.Hash
	}
	files := []string(logs)
	var sealed []string
	if *dir != "" {
		var live string
		sealed, live, err = logfile.Files(*dir, key)
		if err != nil {
			return err
		}
		if len(sealed) == 0 && live == "" {
			return fmt.Errorf("no audit log of key %x in %s (want audit-%x*.log)", key, *dir, key[:8])
		}
		files = append([]string{}, sealed...)
		if live == "" {
			// A host stopped between sealing a segment and creating the
			// next live one: an empty live segment, as it creates at start.
			fmt.Fprintf(stdout, "no live segment audit-%x.log (a host stopped in the middle of a rotation creates it when it starts): verifying as if it were empty\n", key[:8])
			live = os.DevNull
		}
		files = append(files, live)
	}
	rep, err := audit.VerifyFiles(files, ed25519.PublicKey(key), opts)
	if err != nil {
		return err
	}
	// A sealed segment's name is where the host looks for records (GET
	// /v1/audit): it must say what the segment holds.
	for i, p := range sealed {
		sg := rep.Segments[i]
		if want := fmt.Sprintf("-%020d-%020d.log", sg.FirstSeq, sg.Head.Seq); !strings.HasSuffix(p, want) {
			return fmt.Errorf("audit: %s holds records %d to %d, which its name does not say (renamed)", p, sg.FirstSeq, sg.Head.Seq)
		}
	}
	fmt.Fprintf(stdout, "audit log intact: %d records, seq %d..%d, %d signed (%d signatures checked), %d tree heads (%d roots checked), head %s\n",
		rep.Records, rep.FirstSeq, rep.LastSeq, rep.Signed, rep.SignaturesChecked, rep.TreeHeads, rep.RootsChecked, rep.Head)
	if len(rep.Segments) > 1 {
		for _, sg := range rep.Segments {
			if sg.Records == 0 {
				fmt.Fprintf(stdout, "  %s: empty\n", filepath.Base(sg.Path))
				continue
			}
			fmt.Fprintf(stdout, "  %s: %d records, seq %d..%d, head %s\n", filepath.Base(sg.Path), sg.Records, sg.FirstSeq, sg.Head.Seq, sg.Head)
		}
	}
	return reportWarnings(rep, accept, stderr)
}

// reportWarnings prints the report's warnings on stderr and returns an
// exitError (status 4) if any is not accepted.
func reportWarnings(rep *audit.Report, accept seqsFlag, stderr io.Writer) error {
	seen := map[uint64]bool{}
	open := 0
	for _, w := range rep.Warnings {
		seen[w.Seq] = true
		w.Path = filepath.Base(w.Path)
		if accept[w.Seq] {
			fmt.Fprintf(stderr, "warning (accepted): %s\n", w)
			continue
		}
		open++
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if rep.WarningsOmitted > 0 {
		open += rep.WarningsOmitted
		fmt.Fprintf(stderr, "warning: %d more warnings not listed\n", rep.WarningsOmitted)
	}
	for _, seq := range accept.sorted() {
		if !seen[seq] {
			fmt.Fprintf(stderr, "note: --accept-warning %d: no warning at that seq\n", seq)
		}
	}
	if open > 0 {
		return exitError{exitWarnings, fmt.Errorf("the log is intact, but %d warning(s) above need investigating (a rollback the enclave detected is recorded; pass --accept-warning SEQ for each once investigated)", open)}
	}
	return nil
}

// seqsFlag collects sequence numbers from a repeated flag.
type seqsFlag map[uint64]bool

func (s *seqsFlag) String() string { return fmt.Sprint(s.sorted()) }

func (s *seqsFlag) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 || n > audit.MaxSafeInteger {
		return fmt.Errorf("want a record sequence number, got %q", v)
	}
	if *s == nil {
		*s = seqsFlag{}
	}
	(*s)[n] = true
	return nil
}

func (s *seqsFlag) sorted() []uint64 {
	if s == nil {
		return nil
	}
	out := make([]uint64, 0, len(*s))
	for n := range *s {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var _ flag.Value = (*seqsFlag)(nil)
