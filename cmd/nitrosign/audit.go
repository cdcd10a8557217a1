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
	"strings"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/host"
)

// stringsFlag collects a repeated flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringsFlag)(nil)

// runAudit verifies an audit log: files given in order (--log, repeated),
// or the segments of one audit key's log in a host's data directory
// (--dir): its sealed segments audit-K-FIRST-LAST.log in sequence order,
// then its live segment audit-K.log, K being the first 16 hex digits of the
// audit key. With --dir, each sealed segment must also hold the records
// its name says.
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
		sealed, live, err = host.AuditLogFiles(*dir, key)
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
	fmt.Fprintf(stdout, "audit log intact: %d records, seq %d..%d, %d signed (%d signatures checked), head %s\n",
		rep.Records, rep.FirstSeq, rep.LastSeq, rep.Signed, rep.SignaturesChecked, rep.Head)
	if len(rep.Segments) > 1 {
		for _, sg := range rep.Segments {
			if sg.Records == 0 {
				fmt.Fprintf(stdout, "  %s: empty\n", filepath.Base(sg.Path))
				continue
			}
			fmt.Fprintf(stdout, "  %s: %d records, seq %d..%d, head %s\n", filepath.Base(sg.Path), sg.Records, sg.FirstSeq, sg.Head.Seq, sg.Head)
		}
	}
	return nil
}
