package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/genesis/genesisedit"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

const genesisUsage = `usage: nitrosign genesis SUBCOMMAND [--file FILE] [flags]

Writes and reviews the enclave's genesis configuration (docs/genesis.md).
Every subcommand works on --file (default genesis.json). Edits are checked
with the enclave's own parser before anything is written, and written
atomically: an edit the parser refuses changes nothing.

  init             a production skeleton: KMS key, one signing key that
                   allows nothing yet, time lock 24h; no clients, admins or
                   approvers (--kms-key-arn ARN --region R [--key ID]
                   [--path P] [--chains LIST] [--force])
  add-key          a signing key and an empty rule for it
                   (--key ID --path P --chains LIST)
  remove-key       (--key ID)
  add-client       a client service and the keys it may use
                   (--name N (--public-key HEX [--scheme S] | --public-key-file PEM) --keys LIST)
  remove-client    (--name N)
  add-admin        an admin (--name N (--public-key HEX [--scheme S] | --public-key-file PEM))
  remove-admin     (--name N)
  add-approver     an approver of the keys' requests above thresholds
                   (--name N (--public-key HEX [--scheme S] | --public-key-file PEM)
                    --keys LIST [--above CHAIN:ASSET:AMOUNT]...)
  remove-approver  (--name N [--keys LIST])
  set-quorum       (--admins M [--threshold KIND=M]... [--clear-thresholds])
                   and/or (--approvals M [--keys LIST])
  set-time-lock    (--time-lock D, such as 24h)
  set-kms          (--kms-key-arn ARN --region R [--additional-key-arn ARN]...
                    [--endpoint URL] [--proxy-port N])
  set-audit        (--max-unacknowledged N)
  set-limits       (--max-unacknowledged N; 0 turns the requirement off)
  set-policy       replace the policy document (--policy FILE)
  show             a human summary ([--policy]: the policy document, JSON)
  hash             the genesis SHA-256 and the initial policy hash
  check            validate, then report problems (exit 1) and unsafe
                   choices (exit 4 unless --allow-warnings)
`

var genesisSubcommands = subcommands{
	"init":            runGenesisInit,
	"add-key":         runGenesisAddKey,
	"remove-key":      runGenesisRemoveKey,
	"add-client":      runGenesisAddClient,
	"remove-client":   runGenesisRemoveClient,
	"add-admin":       runGenesisAddAdmin,
	"remove-admin":    runGenesisRemoveAdmin,
	"add-approver":    runGenesisAddApprover,
	"remove-approver": runGenesisRemoveApprover,
	"set-quorum":      runGenesisSetQuorum,
	"set-time-lock":   runGenesisSetTimeLock,
	"set-kms":         runGenesisSetKMS,
	"set-audit":       runGenesisSetAudit,
	"set-limits":      runGenesisSetLimits,
	"set-policy":      runGenesisSetPolicy,
	"show":            runGenesisShow,
	"hash":            runGenesisHash,
	"check":           runGenesisCheck,
}

func runGenesis(args []string, stdout, stderr io.Writer) error {
	return runSubcommands(genesisUsage, genesisSubcommands, args, stdout, stderr)
}

// genesisFlags returns the flag set of a genesis subcommand, with --file.
func genesisFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := newFlagSet("genesis "+name, stderr)
	file := fs.String("file", "genesis.json", "the genesis configuration `file`")
	return fs, file
}

// readGenesis reads the file, at most genesis.MaxSize bytes.
func readGenesis(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, genesis.MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > genesis.MaxSize {
		return nil, fmt.Errorf("%s: larger than %d KiB", path, genesis.MaxSize>>10)
	}
	return b, nil
}

// writeAtomic replaces path with b: a temporary file in the same
// directory, synced, then renamed over path (linked to path when
// overwrite is false, which fails if path exists), and the directory
// synced, so that a crash leaves either the old file or the new one. A
// symbolic link at path is followed: its target is replaced.
func writeAtomic(path string, b []byte, overwrite bool) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a rename, removes nothing
	defer tmp.Close()
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if overwrite {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// editGenesis loads the file, applies edit, and writes the result only
// when the enclave's parser accepts it.
func editGenesis(path string, stdout io.Writer, edit func(*genesisedit.Draft) (string, error)) error {
	b, err := readGenesis(path)
	if err != nil {
		return err
	}
	d, err := genesisedit.Load(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	what, err := edit(d)
	if err != nil {
		return fmt.Errorf("%s unchanged: %w", path, err)
	}
	out, err := d.Marshal()
	if err != nil {
		return fmt.Errorf("%s unchanged: %w", path, err)
	}
	// Another edit that ran meanwhile would be lost: refuse instead.
	if now, err := readGenesis(path); err != nil || !bytes.Equal(now, b) {
		return fmt.Errorf("%s changed while it was being edited: run the edit again", path)
	}
	if err := writeAtomic(path, out, true); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = fmt.Fprintf(stdout, "%s: %s; sha256 %x\n", path, what, sha256.Sum256(out))
	return err
}

// listFlag parses a comma-separated list.
func listFlag(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, e := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(e))
	}
	return out
}

func chainsFlag(s string) ([]uint64, error) {
	var out []uint64
	for _, e := range listFlag(s) {
		c, err := strconv.ParseUint(e, 10, 64)
		if err != nil {
			return nil, usageError{fmt.Errorf("--chains: %q is not a chain id", e)}
		}
		out = append(out, c)
	}
	return out, nil
}

// pubKeyFlags are the flags that give a public key.
type pubKeyFlags struct {
	hex, scheme, file *string
}

func addPubKeyFlags(fs *flag.FlagSet) pubKeyFlags {
	return pubKeyFlags{
		hex:    fs.String("public-key", "", "the public key in `hex`: 32 bytes (ed25519) or a 33-byte compressed point (p256)"),
		scheme: fs.String("scheme", "", "the --public-key's `scheme`: ed25519 (the default) or p256"),
		file:   fs.String("public-key-file", "", "a PEM `file`: \"PUBLIC KEY\" (SPKI) or PKCS #8 \"PRIVATE KEY\" (only the public half is used)"),
	}
}

func (f pubKeyFlags) key() (stamp.PublicKey, error) {
	switch {
	case *f.hex != "" && *f.file != "":
		return stamp.PublicKey{}, usageError{errors.New("give --public-key or --public-key-file, not both")}
	case *f.hex != "":
		scheme := *f.scheme
		if scheme == "" {
			scheme = string(stamp.Ed25519)
		}
		return genesisedit.ParsePublicKey(scheme, *f.hex)
	case *f.scheme != "":
		return stamp.PublicKey{}, usageError{errors.New("--scheme goes with --public-key (a key file names its own scheme)")}
	case *f.file != "":
		b, err := readCapped(*f.file, genesisedit.MaxKeyFileSize)
		if err != nil {
			return stamp.PublicKey{}, err
		}
		return genesisedit.ParsePublicKeyPEM(b)
	}
	return stamp.PublicKey{}, usageError{errors.New("--public-key or --public-key-file is required")}
}

func readCapped(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// required is the usage error of missing flags.
func required(names ...string) error {
	if len(names) == 1 {
		return usageError{fmt.Errorf("%s is required", names[0])}
	}
	return usageError{fmt.Errorf("%s and %s are required", strings.Join(names[:len(names)-1], ", "), names[len(names)-1])}
}

func runGenesisInit(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("init", stderr)
	arn := fs.String("kms-key-arn", "", "`ARN` of the KMS key that seals the seed (a full key ARN, not an alias)")
	region := fs.String("region", "", "the KMS key's `region`, such as us-east-1")
	key := fs.String("key", genesisedit.DefaultKeyID, "the first signing key's `id`")
	path := fs.String("path", genesisedit.DefaultKeyPath, "its BIP-32 derivation `path`")
	chains := fs.String("chains", "1", "its chain ids, comma-separated `list`")
	force := fs.Bool("force", false, "overwrite an existing file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *arn == "" || *region == "" {
		return required("--kms-key-arn", "--region")
	}
	cs, err := chainsFlag(*chains)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(*file); err == nil && !*force {
		return fmt.Errorf("%s exists: refusing to overwrite it without --force", *file)
	}
	d, err := genesisedit.New(genesisedit.Options{KMSKeyARN: *arn, Region: *region, KeyID: *key, KeyPath: *path, Chains: cs})
	if err != nil {
		return err
	}
	b, err := d.Marshal()
	if err != nil {
		return err
	}
	if err := writeAtomic(*file, b, *force); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: refusing to overwrite it without --force", *file)
		}
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s: new production skeleton; sha256 %x\nnext: add clients, admins (and approvers), set the quorum, write the key's rules (docs/policy.md), then `nitrosign genesis check --file %s`\n", *file, sha256.Sum256(b), *file)
	return err
}

func runGenesisAddKey(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("add-key", stderr)
	key := fs.String("key", "", "the signing key's `id`")
	path := fs.String("path", "", "its BIP-32 derivation `path`, such as m/44'/60'/0'/0/1")
	chains := fs.String("chains", "", "its chain ids, comma-separated `list` (for the new rule)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *path == "" {
		return required("--key", "--path")
	}
	cs, err := chainsFlag(*chains)
	if err != nil {
		return err
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("added key %q at %s", *key, *path), d.AddKey(*key, *path, cs)
	})
}

func runGenesisRemoveKey(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("remove-key", stderr)
	key := fs.String("key", "", "the signing key's `id`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" {
		return required("--key")
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("removed key %q and its rule", *key), d.RemoveKey(*key)
	})
}

func runGenesisAddClient(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("add-client", stderr)
	name := fs.String("name", "", "the client's `name`")
	pk := addPubKeyFlags(fs)
	keys := fs.String("keys", "", "the signing key ids it may use, comma-separated `list`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *keys == "" {
		return required("--name", "--keys")
	}
	pub, err := pk.key()
	if err != nil {
		return err
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("added client %q (%s) for %s", *name, pub, *keys), d.AddClient(*name, pub, listFlag(*keys))
	})
}

func runGenesisRemoveClient(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("remove-client", stderr)
	name := fs.String("name", "", "the client's `name`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return required("--name")
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("removed client %q", *name), d.RemoveClient(*name)
	})
}

func runGenesisAddAdmin(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("add-admin", stderr)
	name := fs.String("name", "", "the admin's `name` (signatures name it)")
	pk := addPubKeyFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return required("--name")
	}
	pub, err := pk.key()
	if err != nil {
		return err
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		err := d.AddAdmin(*name, pub)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("added admin %q (%s); quorum %d of %d", *name, pub, d.Admins.Quorum, len(d.Admins.Members)), nil
	})
}

func runGenesisRemoveAdmin(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("remove-admin", stderr)
	name := fs.String("name", "", "the admin's `name`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return required("--name")
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("removed admin %q", *name), d.RemoveAdmin(*name)
	})
}

func runGenesisAddApprover(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("add-approver", stderr)
	name := fs.String("name", "", "the approver's `name`")
	pk := addPubKeyFlags(fs)
	keys := fs.String("keys", "", "the signing key ids whose requests it approves, comma-separated `list`")
	var above stringsFlag
	fs.Var(&above, "above", "`CHAIN:ASSET:AMOUNT` above which approvals are needed (ASSET native or a token address, AMOUNT in base units); repeat; required for a key without an approval rule, replaces the thresholds of one that has")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *keys == "" {
		return required("--name", "--keys")
	}
	var ths []stateful.ApprovalThreshold
	for _, a := range above {
		t, err := genesisedit.ParseThreshold(a)
		if err != nil {
			return usageError{err}
		}
		ths = append(ths, t)
	}
	pub, err := pk.key()
	if err != nil {
		return err
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("added approver %q (%s) for %s", *name, pub, *keys), d.AddApprover(*name, pub, listFlag(*keys), ths)
	})
}

func runGenesisRemoveApprover(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("remove-approver", stderr)
	name := fs.String("name", "", "the approver's `name`")
	keys := fs.String("keys", "", "only from these signing keys, comma-separated `list` (default: every key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return required("--name")
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		return fmt.Sprintf("removed approver %q", *name), d.RemoveApprover(*name, listFlag(*keys))
	})
}

func runGenesisSetQuorum(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("set-quorum", stderr)
	admins := fs.Int("admins", 0, "the admin quorum `M`: distinct admins whose signatures a command needs")
	var thresholds stringsFlag
	fs.Var(&thresholds, "threshold", "`KIND=M`: a higher threshold for one command kind, such as policy_change=3 (repeat; replaces all thresholds)")
	clearTh := fs.Bool("clear-thresholds", false, "remove every per-kind threshold")
	approvals := fs.Uint64("approvals", 0, "the approvals quorum `M`: distinct approvers a request above a threshold needs")
	keys := fs.String("keys", "", "with --approvals, only these signing keys, comma-separated `list` (default: every key with approvers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *admins == 0 && *approvals == 0 {
		return usageError{errors.New("--admins M or --approvals M (or both) required")}
	}
	if (len(thresholds) > 0 || *clearTh) && *admins == 0 {
		return usageError{errors.New("--threshold and --clear-thresholds need --admins")}
	}
	if len(thresholds) > 0 && *clearTh {
		return usageError{errors.New("--threshold and --clear-thresholds exclude each other")}
	}
	if *keys != "" && *approvals == 0 {
		return usageError{errors.New("--keys needs --approvals")}
	}
	var th map[admin.Kind]int
	if *clearTh {
		th = map[admin.Kind]int{}
	}
	for _, t := range thresholds {
		kind, m, ok := strings.Cut(t, "=")
		n, err := strconv.Atoi(m)
		if !ok || err != nil {
			return usageError{fmt.Errorf("--threshold %q: want KIND=M, such as policy_change=3", t)}
		}
		if th == nil {
			th = map[admin.Kind]int{}
		}
		th[admin.Kind(kind)] = n
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		var what []string
		if *admins != 0 {
			if err := d.SetAdminQuorum(*admins, th); err != nil {
				return "", err
			}
			what = append(what, fmt.Sprintf("admin quorum %d of %d", *admins, len(d.Admins.Members)))
		}
		if *approvals != 0 {
			if err := d.SetApprovalQuorum(*approvals, listFlag(*keys)); err != nil {
				return "", err
			}
			what = append(what, fmt.Sprintf("approvals quorum %d", *approvals))
		}
		return strings.Join(what, ", "), nil
	})
}

func runGenesisSetTimeLock(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("set-time-lock", stderr)
	tl := fs.String("time-lock", "", "how long a loosening policy change waits, a `duration` such as 24h (0s to 720h)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tl == "" {
		return required("--time-lock")
	}
	d, err := time.ParseDuration(*tl)
	if err != nil {
		return usageError{fmt.Errorf("--time-lock %q: want a duration such as 24h", *tl)}
	}
	return editGenesis(*file, stdout, func(g *genesisedit.Draft) (string, error) {
		g.SetTimeLock(d)
		return "time lock " + g.Governance.TimeLock, nil
	})
}

func runGenesisSetKMS(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("set-kms", stderr)
	arn := fs.String("kms-key-arn", "", "`ARN` of the KMS key that seals the seed")
	region := fs.String("region", "", "the KMS key's `region`")
	var additional stringsFlag
	fs.Var(&additional, "additional-key-arn", "another key `ARN` a seal rotation may move the seed to (repeat)")
	endpoint := fs.String("endpoint", "", "a KMS endpoint `URL` replacing https://kms.REGION.amazonaws.com (a FIPS endpoint, say)")
	port := fs.Uint64("proxy-port", 0, "the vsock `port` of vsock-proxy on the parent (default 8000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *arn == "" || *region == "" {
		return required("--kms-key-arn", "--region")
	}
	if *port > math.MaxUint32 {
		return usageError{errors.New("--proxy-port: too large")}
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		d.KMS = &genesis.KMS{Region: *region, KeyID: *arn, AdditionalKeyIDs: additional, Endpoint: *endpoint, ProxyPort: uint32(*port)}
		return fmt.Sprintf("kms key %s in %s", *arn, *region), nil
	})
}

func runGenesisSetAudit(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("set-audit", stderr)
	n := fs.Int("max-unacknowledged", 0, fmt.Sprintf("audit records the host may hold unacknowledged before the enclave stops deciding, `N` (1 to %d)", genesis.MaxAuditUnacknowledged))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n == 0 {
		return required("--max-unacknowledged")
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		d.Audit = &genesis.Audit{MaxUnacknowledged: *n}
		return fmt.Sprintf("audit.max_unacknowledged %d", *n), nil
	})
}

func runGenesisSetLimits(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("set-limits", stderr)
	n := fs.Int("max-unacknowledged", -1, fmt.Sprintf("transactions signed past the last acknowledged checkpoint before the enclave refuses to sign, `N` (1 to %d; 0: off)", genesis.MaxLimitsUnacknowledged))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n == -1 {
		return required("--max-unacknowledged")
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		if *n == 0 {
			d.Limits = nil
			return "no checkpoint requirement", nil
		}
		d.Limits = &genesis.Limits{MaxUnacknowledged: *n}
		return fmt.Sprintf("limits.max_unacknowledged %d", *n), nil
	})
}

func runGenesisSetPolicy(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("set-policy", stderr)
	polPath := fs.String("policy", "", "the policy document `file` (docs/policy.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *polPath == "" {
		return required("--policy")
	}
	b, err := readCapped(*polPath, policy.MaxDocumentSize)
	if err != nil {
		return err
	}
	var doc policy.Document
	if err := strictjson.Unmarshal(b, &doc, policy.MaxDocumentSize); err != nil {
		return fmt.Errorf("%s: policy: %w", *polPath, err)
	}
	return editGenesis(*file, stdout, func(d *genesisedit.Draft) (string, error) {
		d.Policy = doc
		return fmt.Sprintf("policy version %d from %s", doc.Version, *polPath), nil
	})
}

func runGenesisShow(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("show", stderr)
	doc := fs.Bool("policy", false, "print the policy document (JSON, for `genesis set-policy`) instead of the summary")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := readGenesis(*file)
	if err != nil {
		return err
	}
	if *doc {
		g, _, err := genesis.Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, g.Policy, "", "  "); err != nil {
			return err
		}
		out.WriteByte('\n')
		_, err = stdout.Write(out.Bytes())
		return err
	}
	if err := genesisedit.Show(stdout, b); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	return nil
}

func runGenesisHash(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("hash", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := readGenesis(*file)
	if err != nil {
		return err
	}
	h, err := genesisedit.Hash(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	_, err = fmt.Fprintf(stdout, "genesis sha256  %x\n  the file's SHA-256: admin commands' genesis_hash; compare with the file built into the image (PCR0 measures it with the binary: scripts/build-eif.sh prints PCR0)\npolicy hash     %x\n  the initial policy (version %d): the policy hash the enclave attests until the first policy change\n",
		h.Genesis, h.Policy, h.PolicyVersion)
	return err
}

func runGenesisCheck(args []string, stdout, stderr io.Writer) error {
	fs, file := genesisFlags("check", stderr)
	allow := fs.Bool("allow-warnings", false, "exit 0 when there are warnings but no problems")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := readGenesis(*file)
	if err != nil {
		return err
	}
	r, err := genesisedit.Check(b)
	if err != nil {
		return fmt.Errorf("%s: invalid: %w", *file, err)
	}
	for _, f := range r.Findings {
		if _, err := fmt.Fprintln(stdout, f); err != nil {
			return err
		}
	}
	p, w := r.Problems(), r.Warnings()
	switch {
	case p > 0:
		return fmt.Errorf("%s: valid, but not ready for production: %d problem(s), %d warning(s)", *file, p, w)
	case w > 0 && !*allow:
		return exitError{exitWarnings, fmt.Errorf("%s: valid, %d warning(s) (pass --allow-warnings once each is deliberate)", *file, w)}
	}
	if w == 0 {
		_, err = fmt.Fprintf(stdout, "%s: valid, no problems, no warnings\n", *file)
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s: valid, no problems, %d warning(s) allowed\n", *file, w)
	return err
}
