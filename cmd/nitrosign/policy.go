package main

import (
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
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/policy"
)

const policyUsage = `usage: nitrosign policy SUBCOMMAND [flags]

  show     the policy in force and the changes waiting for their time lock
           (--host URL [--document])
  sign     sign a policy change: the first admin creates the envelope from
           the new policy document, the others add their signatures
           (--policy FILE --genesis FILE --key PEM --name NAME --envelope FILE
            [--host URL: show what the change loosens and tightens])
  submit   send a signed policy change, or a cancel, to the host
           (--in FILE --host URL)
  cancel   write and sign a cancel of a pending change; one admin suffices
           (--version N --hash HEX --genesis FILE --key PEM --name NAME --out FILE)
`

var policySubcommands = subcommands{
	"show":   runPolicyShow,
	"sign":   runPolicySign,
	"submit": runPolicySubmit,
	"cancel": runPolicyCancel,
}

func runPolicy(args []string, stdout, stderr io.Writer) error {
	return runSubcommands(policyUsage, policySubcommands, args, stdout, stderr)
}

// maxPolicyAnswer caps the host's GET /v1/policy answer that the tool reads:
// the policy in force and the pending changes (together at most
// proto.MaxCheckpointLen) as JSON.
const maxPolicyAnswer = 8 << 20

func fetchPolicy(hostURL string) (*api.PolicyResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(hostURL, "/")+"/v1/policy", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/policy: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var pr api.PolicyResponse
	if err := json.Unmarshal(b, &pr); err != nil {
		return nil, fmt.Errorf("GET /v1/policy: %w", err)
	}
	return &pr, nil
}

func runPolicyShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy show", stderr)
	hostURL := fs.String("host", "http://127.0.0.1:8420", "host API base `URL`")
	doc := fs.Bool("document", false, "print the policy document in force (JSON) instead of a summary")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pr, err := fetchPolicy(*hostURL)
	if err != nil {
		return err
	}
	if *doc {
		_, err := fmt.Fprintf(stdout, "%s\n", pr.Document)
		return err
	}
	fmt.Fprintf(stdout, "in force   version %d, hash %s\n", pr.Version, pr.Hash)
	fmt.Fprintf(stdout, "time lock  %s for changes that loosen anything\n", time.Duration(pr.TimeLockMS)*time.Millisecond)
	if len(pr.Pending) == 0 {
		fmt.Fprintln(stdout, "pending    none")
	}
	for _, p := range pr.Pending {
		fmt.Fprintf(stdout, "pending    version %d, hash %s, in force at %s unless cancelled (signed by %s)\n",
			p.Version, p.Hash, time.UnixMilli(p.EffectiveMS).UTC().Format(time.RFC3339), strings.Join(p.Signers, ", "))
	}
	fmt.Fprintln(stdout, "(the host reports this; `nitrosign attest verify` shows the attested policy hash)")
	return nil
}

func runPolicySign(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy sign", stderr)
	polPath := fs.String("policy", "", "the new policy document `file` (JSON); its version must be above the one in force")
	genesis := fs.String("genesis", "", "the enclave's genesis configuration `file`")
	keyPath := fs.String("key", "", "your admin private key, PKCS#8 PEM `file`")
	name := fs.String("name", "", "your admin `name`")
	envPath := fs.String("envelope", "", "the envelope `file`: created if missing, else your signature is added")
	hostURL := fs.String("host", "", "host API base `URL`: compare with the policy in force and show what loosens")
	valid := fs.Duration("valid", 24*time.Hour, "how long the command may be submitted (at most 168h)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *polPath == "" || *genesis == "" || *keyPath == "" || *name == "" || *envPath == "" {
		return usageError{errors.New("--policy, --genesis, --key, --name and --envelope are required")}
	}
	docBytes, err := os.ReadFile(*polPath)
	if err != nil {
		return err
	}
	pol, err := policy.Parse(docBytes)
	if err != nil {
		return err
	}
	g, err := os.ReadFile(*genesis)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "policy     version %d, hash %x\n", pol.Version(), pol.Hash())
	if *hostURL != "" {
		cur, err := fetchPolicy(*hostURL)
		if err != nil {
			return err
		}
		old, err := policy.Parse(cur.Document)
		if err != nil {
			return fmt.Errorf("the policy in force: %w", err)
		}
		ch := policy.Diff(old, pol)
		fmt.Fprintf(stdout, "in force   version %d\n", old.Version())
		for _, l := range ch.Loosening {
			fmt.Fprintf(stdout, "loosens    %s\n", l)
		}
		for _, l := range ch.Tightening {
			fmt.Fprintf(stdout, "tightens   %s\n", l)
		}
		if ch.TimeLocked() {
			fmt.Fprintf(stdout, "takes effect after the time lock (%s); any admin can cancel it until then\n", time.Duration(cur.TimeLockMS)*time.Millisecond)
		} else {
			fmt.Fprintln(stdout, "takes effect at once: it only tightens")
		}
	}
	var env *admin.Envelope
	if b, err := os.ReadFile(*envPath); err == nil {
		if env, err = admin.ParseEnvelope(b); err != nil {
			return err
		}
		cmd, err := admin.ParseCommand(env.Command)
		if err != nil {
			return err
		}
		body, err := cmd.PolicyChange()
		if err != nil {
			return err
		}
		if body.Hash != pol.Hash() || body.Version != pol.Version() || cmd.GenesisHash != sha256.Sum256(g) {
			return fmt.Errorf("%s is a change to version %d (hash %x), not to the policy in %s", *envPath, body.Version, body.Hash, *polPath)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		h := pol.Hash()
		now := time.Now()
		cmd, err := admin.NewCommand(admin.KindPolicyChange, sha256.Sum256(g), now.Add(-time.Minute), now.Add(*valid),
			admin.PolicyChangeBody{Version: pol.Version(), PolicyHash: hex.EncodeToString(h[:]), Document: pol.Canonical()})
		if err != nil {
			return err
		}
		if env, err = admin.NewEnvelope(cmd); err != nil {
			return err
		}
	} else {
		return err
	}
	return addSignature(env, *keyPath, *name, *envPath, stdout)
}

func runPolicySubmit(args []string, stdout, stderr io.Writer) error {
	return runSubmit("policy submit", "/v1/policy", args, stdout, stderr)
}

func runPolicyCancel(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy cancel", stderr)
	version := fs.Uint64("version", 0, "the pending change's `version`")
	hashHex := fs.String("hash", "", "the pending change's policy `hash` (hex)")
	genesis := fs.String("genesis", "", "the enclave's genesis configuration `file`")
	keyPath := fs.String("key", "", "your admin private key, PKCS#8 PEM `file`")
	name := fs.String("name", "", "your admin `name`")
	out := fs.String("out", "", "envelope `file` to write")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *version == 0 || *hashHex == "" || *genesis == "" || *keyPath == "" || *name == "" || *out == "" {
		return usageError{errors.New("--version, --hash, --genesis, --key, --name and --out are required")}
	}
	g, err := os.ReadFile(*genesis)
	if err != nil {
		return err
	}
	now := time.Now()
	cmd, err := admin.NewCommand(admin.KindPolicyCancel, sha256.Sum256(g), now.Add(-time.Minute), now.Add(24*time.Hour),
		admin.PolicyCancelBody{Version: *version, PolicyHash: strings.ToLower(*hashHex)})
	if err != nil {
		return err
	}
	pemBytes, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	signer, err := stampSignerFromPEM(pemBytes)
	if err != nil {
		return err
	}
	sig, err := admin.Sign(signer, *name, cmd)
	if err != nil {
		return err
	}
	env, err := admin.NewEnvelope(cmd, sig)
	if err != nil {
		return err
	}
	return writeEnvelope(env, *out, stdout)
}
