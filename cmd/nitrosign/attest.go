package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/attestation"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/client"
)

const attestUsage = `usage: nitrosign attest SUBCOMMAND [flags]

  fetch    fetch an attestation document for a nonce from the host
           (--host URL [--nonce HEX] [--out FILE])
  verify   verify a document (the chain to the root, the PCRs, the nonce)
           and print what it attests, --json for tools
           (--doc FILE [--root PEM] [--pcr N=HEX]... [--nonce HEX] [--json])

Run nitrosign attest SUBCOMMAND -h for its flags.
`

var attestSubcommands = subcommands{
	"fetch":  runAttestFetch,
	"verify": runAttestVerify,
}

func runAttest(args []string, stdout, stderr io.Writer) error {
	return runSubcommands(attestUsage, attestSubcommands, args, stdout, stderr)
}

func runAttestFetch(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("attest fetch", stderr)
	hostURL := fs.String("host", defaultHost, "host API base `URL`")
	nonceHex := fs.String("nonce", "", "nonce as `hex` (default: 32 fresh random bytes, printed to stderr)")
	out := fs.String("out", "", "write the document (base64) to this `file` instead of standard output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	nonce, err := nonceFlag(*nonceHex)
	if err != nil {
		return usageError{err}
	}
	if *nonceHex == "" {
		fmt.Fprintf(stderr, "nonce %x\n", nonce)
	}
	c, err := client.New(*hostURL, nil, nil)
	if err != nil {
		return err
	}
	doc, err := c.Attestation(context.Background(), nonce)
	if err != nil {
		return err
	}
	text := base64.StdEncoding.EncodeToString(doc) + "\n"
	if *out != "" {
		return os.WriteFile(*out, []byte(text), 0o644)
	}
	_, err = io.WriteString(stdout, text)
	return err
}

// nonceFlag parses a hex nonce, or draws 32 random bytes for an empty one.
func nonceFlag(h string) ([]byte, error) {
	if h == "" {
		n := make([]byte, 32)
		_, err := rand.Read(n)
		return n, err
	}
	b, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
	if err != nil || len(b) == 0 {
		return nil, errors.New("--nonce: want hex bytes")
	}
	return b, nil
}

// pcrFlags collects repeated --pcr N=HEX flags.
type pcrFlags map[int][]byte

func (p pcrFlags) String() string { return fmt.Sprint(map[int][]byte(p)) }

func (p pcrFlags) Set(s string) error {
	i, h, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(i)
	if !ok || err != nil || n < 0 || n > 31 {
		return fmt.Errorf("want N=HEX with N in 0..31, got %q", s)
	}
	b, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
	if err != nil || (len(b) != 32 && len(b) != 48 && len(b) != 64) {
		return fmt.Errorf("PCR%d: want 32, 48 or 64 bytes of hex", n)
	}
	if _, dup := p[n]; dup {
		return fmt.Errorf("PCR%d given twice", n)
	}
	p[n] = b
	return nil
}

// loadRoots reads PEM certificates; an empty path means AWS's root.
func loadRoots(path string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		roots = append(roots, c)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return roots, nil
}

// report is what `attest verify --json` prints (docs/attestation.md,
// "The report as JSON"): snake_case names, byte strings as lower-case hex
// without 0x, PCRs keyed by their index in decimal.
type report struct {
	ModuleID  string            `json:"module_id"`
	Time      time.Time         `json:"time"`
	PCRs      map[string]string `json:"pcrs"`
	PublicKey string            `json:"public_key,omitempty"`
	Nonce     string            `json:"nonce,omitempty"`
	Debug     bool              `json:"debug"`
	UserData  *userDataJSON     `json:"user_data,omitempty"`
	RawUser   string            `json:"user_data_hex,omitempty"`
	Checks    []string          `json:"checks"`
}

// userDataJSON is nitrosign's user_data as the report shows it: the names
// of package userdata's format (docs/attestation.md, "user_data"), its
// byte strings in hex. It is its own type, not userdata.UserData, so that
// the printed shape is a contract of its own: a field renamed in Go does
// not rename it, and no byte array is printed as a list of numbers.
type userDataJSON struct {
	Format        string `json:"format"`
	Version       string `json:"version"`
	KeysHash      string `json:"keys_hash"`
	KeyCount      uint64 `json:"key_count"`
	PolicyHash    string `json:"policy_hash"`
	PolicyVersion uint64 `json:"policy_version"`
	AuditSeq      uint64 `json:"audit_seq"`
	AuditHead     string `json:"audit_head"`
	// AuditKey is null while the enclave is locked: it has no audit key
	// yet.
	AuditKey *string `json:"audit_key"`
}

func newUserDataJSON(u *userdata.UserData) *userDataJSON {
	j := &userDataJSON{
		Format: u.Format, Version: u.Version,
		KeysHash: hex.EncodeToString(u.KeysHash[:]), KeyCount: u.KeyCount,
		PolicyHash: hex.EncodeToString(u.PolicyHash[:]), PolicyVersion: u.PolicyVersion,
		AuditSeq: u.AuditSeq, AuditHead: hex.EncodeToString(u.AuditHead[:]),
	}
	if u.AuditKey != nil {
		k := hex.EncodeToString(u.AuditKey)
		j.AuditKey = &k
	}
	return j
}

func runAttestVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("attest verify", stderr)
	docPath := fs.String("doc", "", "attestation document `file`: base64 or raw CBOR (- for standard input)")
	rootPath := fs.String("root", "", "trusted root certificate(s), PEM `file` (default: AWS Nitro Enclaves root G1)")
	at := fs.String("time", "", "verify as of this `RFC3339` time (default: now)")
	nonceHex := fs.String("nonce", "", "expected nonce as `hex`")
	allowDebug := fs.Bool("allow-debug", false, "accept a debug-mode enclave (all-zero PCR0-2): development only")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pcrs := pcrFlags{}
	fs.Var(pcrs, "pcr", "expected PCR as `N=HEX` (repeatable; pin at least PCR0)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *docPath == "" {
		return usageError{errors.New("--doc is required")}
	}
	raw, err := readFileOrStdin(*docPath)
	if err != nil {
		return fmt.Errorf("--doc: %w", err)
	}
	doc, err := attestation.Decode(raw)
	if err != nil {
		return err
	}
	opts := attestation.Options{Time: time.Now(), PCRs: pcrs, AllowDebug: *allowDebug}
	if *at != "" {
		if opts.Time, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageError{fmt.Errorf("--time: %w", err)}
		}
	}
	if *nonceHex != "" {
		if opts.Nonce, err = nonceFlag(*nonceHex); err != nil {
			return usageError{err}
		}
	}
	if opts.Roots, err = loadRoots(*rootPath); err != nil {
		return err
	}
	res, err := attestation.Verify(doc, opts)
	if err != nil {
		return err
	}
	rep := report{ModuleID: res.ModuleID, Time: res.Time, PCRs: map[string]string{}, Debug: res.Debug, Checks: res.Checks}
	for i, v := range res.PCRs {
		rep.PCRs[strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	if res.PublicKey != nil {
		rep.PublicKey = hex.EncodeToString(res.PublicKey)
	}
	if res.Nonce != nil {
		rep.Nonce = hex.EncodeToString(res.Nonce)
	}
	if res.UserData != nil {
		if ud, err := userdata.Parse(res.UserData); err == nil {
			rep.UserData = newUserDataJSON(ud)
		} else {
			rep.RawUser = hex.EncodeToString(res.UserData)
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	printReport(stdout, rep)
	return nil
}

func printReport(w io.Writer, r report) {
	fmt.Fprintf(w, "attestation document: valid\n")
	fmt.Fprintf(w, "  checks       %s\n", strings.Join(r.Checks, ", "))
	fmt.Fprintf(w, "  module       %s\n", r.ModuleID)
	fmt.Fprintf(w, "  time         %s\n", r.Time.Format(time.RFC3339Nano))
	if r.Debug {
		fmt.Fprintf(w, "  DEBUG MODE   PCR0-2 are zero: the parent can read this enclave's memory\n")
	}
	idx := make([]int, 0, len(r.PCRs))
	for k := range r.PCRs {
		n, _ := strconv.Atoi(k)
		idx = append(idx, n)
	}
	sort.Ints(idx)
	for _, i := range idx {
		v := r.PCRs[strconv.Itoa(i)]
		if strings.Trim(v, "0") == "" && i > 2 {
			continue
		}
		fmt.Fprintf(w, "  PCR%-2d        %s\n", i, v)
	}
	if r.PublicKey != "" {
		fmt.Fprintf(w, "  public key   %s\n", r.PublicKey)
	}
	if r.Nonce != "" {
		fmt.Fprintf(w, "  nonce        %s\n", r.Nonce)
	}
	if u := r.UserData; u != nil {
		fmt.Fprintf(w, "  user data    %s, enclave %s\n", printable(u.Format), printable(u.Version))
		fmt.Fprintf(w, "    keys       %d, hash %s\n", u.KeyCount, u.KeysHash)
		fmt.Fprintf(w, "    policy     version %d, hash %s\n", u.PolicyVersion, u.PolicyHash)
		fmt.Fprintf(w, "    audit      head %d:%s\n", u.AuditSeq, u.AuditHead)
		if u.AuditKey != nil {
			fmt.Fprintf(w, "    audit key  %s\n", *u.AuditKey)
		} else {
			fmt.Fprintf(w, "    audit key  none (a locked enclave)\n")
		}
	} else if r.RawUser != "" {
		fmt.Fprintf(w, "  user data    %s (not nitrosign's format)\n", r.RawUser)
	}
}
