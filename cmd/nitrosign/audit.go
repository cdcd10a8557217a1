package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
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
	return runSubcommands(auditUsage, auditSubcommands, args, stdout, stderr)
}

var auditSubcommands = subcommands{
	"verify":      runAuditVerify,
	"prove":       runAuditProve,
	"check-proof": runAuditCheckProof,
}

const auditUsage = `usage: nitrosign audit SUBCOMMAND [flags]

  verify       verify an audit log end to end against the attested audit key
  prove        print the inclusion proof of one record (JSON)
  check-proof  verify an inclusion proof with nothing but the audit key

Run nitrosign audit SUBCOMMAND -h for its flags.
`

func runAuditVerify(args []string, stdout, stderr io.Writer) error {
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (len(logs) == 0) == (*dir == "") {
		return usageError{errors.New("want either --log FILE (repeated for segments) or --dir DIR")}
	}
	key, err := parseAuditKey(*keyHex)
	if err != nil {
		return err
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
	files, sealed, err := auditFiles(logs, *dir, key, stdout)
	if err != nil {
		return err
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

// parseAuditKey reads --audit-key.
func parseAuditKey(keyHex string) (ed25519.PublicKey, error) {
	key, err := hex.DecodeString(strings.TrimPrefix(keyHex, "0x"))
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, usageError{errors.New("--audit-key: want the 32-byte audit public key in hex (nitrosign attest verify shows it)")}
	}
	return ed25519.PublicKey(key), nil
}

// auditFiles returns the files of the log to read, in order: logs as
// given, or the segments of key's log in the data directory dir, and of
// them the sealed ones.
func auditFiles(logs []string, dir string, key ed25519.PublicKey, stdout io.Writer) (files, sealed []string, err error) {
	if dir == "" {
		return logs, nil, nil
	}
	sealed, live, err := logfile.Files(dir, key)
	if err != nil {
		return nil, nil, err
	}
	if len(sealed) == 0 && live == "" {
		return nil, nil, fmt.Errorf("no audit log of key %x in %s (want audit-%x*.log)", []byte(key), dir, []byte(key[:8]))
	}
	files = append([]string{}, sealed...)
	if live == "" {
		// A host stopped between sealing a segment and creating the next
		// live one: an empty live segment, as it creates at start.
		fmt.Fprintf(stdout, "no live segment audit-%x.log (a host stopped in the middle of a rotation creates it when it starts): reading it as empty\n", []byte(key[:8]))
		live = os.DevNull
	}
	return append(files, live), sealed, nil
}

// runAuditProve prints the inclusion proof of one record (audit.Proof, as
// JSON): the record, the signed tree head of its batch and its audit path,
// which `audit check-proof` verifies with nothing but the audit key. It is
// how an operator hands one decision to an auditor or a counterparty
// without the rest of the log. The proof is verified before it is printed.
func runAuditProve(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit prove", stderr)
	var logs stringsFlag
	fs.Var(&logs, "log", "audit log `file` (repeat for rotated segments, oldest first)")
	dir := fs.String("dir", "", "the host's data `directory`: read the audit key's log in it (instead of --log)")
	keyHex := fs.String("audit-key", "", "the enclave's audit public key, `hex` (from its attestation's user_data)")
	seq := fs.Uint64("seq", 0, "the record's sequence `number` (its answer's audit record carries it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (len(logs) == 0) == (*dir == "") {
		return usageError{errors.New("want either --log FILE (repeated for segments) or --dir DIR")}
	}
	if *seq == 0 {
		return usageError{errors.New("--seq: want the record's sequence number")}
	}
	key, err := parseAuditKey(*keyHex)
	if err != nil {
		return err
	}
	files, _, err := auditFiles(logs, *dir, key, stderr)
	if err != nil {
		return err
	}
	p, err := audit.ProveFiles(files, key, *seq)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// runAuditCheckProof verifies a proof written by `audit prove` (--proof, or
// stdin) against the audit key, and prints what it proves.
func runAuditCheckProof(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit check-proof", stderr)
	keyHex := fs.String("audit-key", "", "the enclave's audit public key, `hex` (from its attestation's user_data)")
	proofFile := fs.String("proof", "-", "the proof `file` that audit prove wrote (- for stdin)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key, err := parseAuditKey(*keyHex)
	if err != nil {
		return err
	}
	var r io.Reader = os.Stdin
	if name := *proofFile; name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, audit.MaxProofSize+1))
	if err != nil {
		return err
	}
	p, err := audit.ParseProof(data)
	if err != nil {
		return err
	}
	rec, th, err := audit.VerifyProof(p, key)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("record %d (%s, %s", rec.Seq, rec.Kind, rec.Decision)
	if rec.Rule != "" {
		what += ", rule " + rec.Rule
	}
	what += ")"
	if th == nil {
		fmt.Fprintf(stdout, "proof holds: %s is signed by the audit key itself\n", what)
		return nil
	}
	fmt.Fprintf(stdout, "proof holds: %s is leaf %d of the %d records %d to %d under tree head %d, signed by the audit key\n",
		what, rec.Seq-th.First, th.Size, th.First, th.Last(), th.Seq)
	return nil
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
