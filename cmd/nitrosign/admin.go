package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/stamp"
)

const adminUsage = `usage: nitrosign admin SUBCOMMAND [flags]

Admin commands are quorum-signed: one admin writes the command, each admin
signs it on their own machine, and anyone submits it; the enclave checks
the signatures against the admin set of its genesis configuration.

  command   write an unsigned command envelope
              --kind key_create --key-id ID --path m/44'/60'/0'/0/N
              --kind key_import --key-id ID --encrypted-key-file FILE
                 (FILE: the CiphertextBlob of
                  aws kms encrypt --key-id SEALING_KEY_ARN --plaintext fileb://key.bin
                    --encryption-context nitrosign:purpose=key-import,nitrosign:key-id=ID)
              --kind seal_rotate [--kms-key-id ARN]
              --kind freeze (--key-id ID | --all-keys) --reason TEXT
                 (one admin's signature suffices unless the genesis raises
                  the freeze threshold)
              --kind unfreeze --freeze-seq N  (the audit record of the freeze)
            with --genesis FILE (the enclave's genesis.json) and --out FILE
  sign      show a command, then add your signature to its envelope
            (--in FILE --key PEM --name NAME)
  submit    send a signed envelope to the host (--in FILE --host URL)
`

var adminSubcommands = subcommands{
	"command": runAdminCommand,
	"sign":    runAdminSign,
	"submit":  runAdminSubmit,
}

func runAdmin(args []string, stdout, stderr io.Writer) error {
	return runSubcommands(adminUsage, adminSubcommands, args, stdout, stderr)
}

func runAdminCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin command", stderr)
	kind := fs.String("kind", "", "command `kind`: key_create, key_import, seal_rotate, freeze or unfreeze")
	genesis := fs.String("genesis", "", "the enclave's genesis configuration `file` (commands are bound to its hash)")
	keyID := fs.String("key-id", "", "key `id` (key_create, key_import, freeze)")
	allKeys := fs.Bool("all-keys", false, "freeze every key (freeze; instead of --key-id)")
	reason := fs.String("reason", "", "why, for the audit log: 1 to 256 bytes of printable text (freeze)")
	path := fs.String("path", "", "BIP-32 `path` of the new key (key_create)")
	encFile := fs.String("encrypted-key-file", "", "`file` holding the KMS ciphertext blob of the key to import (key_import)")
	kmsKey := fs.String("kms-key-id", "", "KMS key `ARN` to re-wrap the seed under (seal_rotate; default: the current one)")
	freezeSeq := fs.Uint64("freeze-seq", 0, "the audit sequence number of the freeze to lift (unfreeze)")
	valid := fs.Duration("valid", 24*time.Hour, "how long the command may be submitted (at most 168h)")
	out := fs.String("out", "", "envelope `file` to write (default: stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *genesis == "" {
		return usageError{errors.New("--genesis is required: commands are bound to the deployment's genesis hash")}
	}
	g, err := os.ReadFile(*genesis)
	if err != nil {
		return err
	}
	var body any
	switch admin.Kind(*kind) {
	case admin.KindKeyCreate:
		if *keyID == "" || *path == "" {
			return usageError{errors.New("key_create needs --key-id and --path")}
		}
		body = admin.KeyCreateBody{KeyID: *keyID, Path: *path}
	case admin.KindKeyImport:
		if *keyID == "" || *encFile == "" {
			return usageError{errors.New("key_import needs --key-id and --encrypted-key-file")}
		}
		blob, err := os.ReadFile(*encFile)
		if err != nil {
			return err
		}
		body = admin.KeyImportBody{KeyID: *keyID, EncryptedKey: hex.EncodeToString(blob)}
	case admin.KindSealRotate:
		body = admin.SealRotateBody{KMSKeyID: *kmsKey}
	case admin.KindFreeze:
		if (*keyID == "") == !*allKeys || *reason == "" {
			return usageError{errors.New("freeze needs --key-id ID or --all-keys (one of them), and --reason")}
		}
		body = admin.FreezeBody{KeyID: *keyID, AllKeys: *allKeys, Reason: *reason}
	case admin.KindUnfreeze:
		if *freezeSeq == 0 {
			return usageError{errors.New("unfreeze needs --freeze-seq (the audit record of the freeze: nitrosign audit, or the frozen refusal's message)")}
		}
		body = admin.UnfreezeBody{FreezeSeq: *freezeSeq}
	default:
		return usageError{fmt.Errorf("--kind %q: want key_create, key_import, seal_rotate, freeze or unfreeze (policy changes: nitrosign policy)", *kind)}
	}
	now := time.Now()
	cmd, err := admin.NewCommand(admin.Kind(*kind), sha256.Sum256(g), now.Add(-time.Minute), now.Add(*valid), body)
	if err != nil {
		return err
	}
	env, err := admin.NewEnvelope(cmd)
	if err != nil {
		return err
	}
	return writeEnvelope(env, *out, stdout)
}

func writeEnvelope(env *admin.Envelope, path string, stdout io.Writer) error {
	b, err := env.Marshal()
	if err != nil {
		return err
	}
	if path == "" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func runAdminSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin sign", stderr)
	in := fs.String("in", "", "envelope `file` to sign (rewritten with your signature added)")
	keyPath := fs.String("key", "", "your admin private key, PKCS#8 PEM `file`")
	name := fs.String("name", "", "your admin `name` in the genesis admin set")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || *keyPath == "" || *name == "" {
		return usageError{errors.New("--in, --key and --name are required")}
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	env, err := admin.ParseEnvelope(b)
	if err != nil {
		return err
	}
	cmd, err := admin.ParseCommand(env.Command)
	if err != nil {
		return err
	}
	// The admin sees what they sign, decoded here, not a server's account
	// of it.
	fmt.Fprintf(stdout, "command   %s\n", cmd.Kind)
	fmt.Fprintf(stdout, "genesis   %x\n", cmd.GenesisHash)
	fmt.Fprintf(stdout, "valid     %s to %s\n", cmd.NotBefore.UTC().Format(time.RFC3339), cmd.NotAfter.UTC().Format(time.RFC3339))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, cmd.Body, "          ", "  "); err == nil {
		fmt.Fprintf(stdout, "body      %s\n", pretty.String())
	}
	fmt.Fprintf(stdout, "digest    %x\n", cmd.Digest)
	return addSignature(env, *keyPath, *name, *in, stdout)
}

// addSignature signs env's command with the admin key in keyPath as name,
// adds the signature and writes the envelope to path.
func addSignature(env *admin.Envelope, keyPath, name, path string, stdout io.Writer) error {
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	signer, err := stamp.ParseSignerPEM(pemBytes)
	if err != nil {
		return err
	}
	sig, err := admin.Sign(signer, name, env.Command)
	if err != nil {
		return err
	}
	if err := env.Add(sig); err != nil {
		return err
	}
	if err := writeEnvelope(env, path, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed as %s: %d signature(s) in %s\n", name, len(env.Signatures), path)
	return nil
}

func runAdminSubmit(args []string, stdout, stderr io.Writer) error {
	return runSubmit("admin submit", "/v1/admin", args, stdout, stderr)
}

// runSubmit posts a signed envelope file to the host's path.
func runSubmit(name, path string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, stderr)
	in := fs.String("in", "", "signed envelope `file`")
	hostURL := fs.String("host", "http://127.0.0.1:8420", "host API base `URL`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return usageError{errors.New("--in is required")}
	}
	return postEnvelope(*in, *hostURL, path, stdout)
}

// maxAdminAnswer caps the host's answer to an admin command that the tool
// reads: the command's result (at most proto.MaxAdminLen) as JSON.
const maxAdminAnswer = 1 << 20

// postEnvelope sends the envelope in file in to the host's path and prints
// the enclave's result.
func postEnvelope(in, hostURL, path string, stdout io.Writer) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(hostURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("refused (HTTP %d): %s", resp.StatusCode, strings.TrimSpace(string(out)))
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}

func stampSignerFromPEM(b []byte) (stamp.Signer, error) { return stamp.ParseSignerPEM(b) }
