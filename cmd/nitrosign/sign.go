package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/stamp"
)

const defaultHost = "http://127.0.0.1:8420"

func runSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign", stderr)
	hostURL := fs.String("host", defaultHost, "host API base `URL`")
	dataDir := fs.String("data-dir", devstack.DefaultDataDir, "data `directory` whose client.pem stamps the request")
	clientKey := fs.String("client-key", "", "client private key `file` (PKCS#8 PEM, Ed25519 or P-256; default DATA-DIR/client.pem)")
	key := fs.String("key", "", "signing key `id or address` (default: the enclave's first key)")
	unsigned := fs.String("unsigned", "", "unsigned transaction as 0x-`hex` (type byte || RLP); replaces the flags below")
	to := fs.String("to", "", "destination `address` (empty: contract creation)")
	value := fs.String("value", "0", "value in `ETH` (decimal, up to 18 decimals)")
	chainID := fs.Uint64("chain-id", 11155111, "chain `id` (default Sepolia)")
	nonce := fs.Uint64("nonce", 0, "account `nonce`")
	gas := fs.Uint64("gas", 21000, "gas `limit`")
	maxFee := fs.String("max-fee-gwei", "30", "maxFeePerGas in `gwei`")
	tip := fs.String("priority-fee-gwei", "1", "maxPriorityFeePerGas in `gwei`")
	data := fs.String("data", "", "calldata as 0x-`hex`")
	message := fs.String("message", "", "sign this `text` as an EIP-191 personal message instead of a transaction")
	messageHex := fs.String("message-hex", "", "sign these 0x-`hex` bytes as an EIP-191 personal message")
	typedData := fs.String("typed-data", "", "sign the EIP-712 typed data (eth_signTypedData_v4 JSON) in this `file` (- for standard input)")
	curl := fs.Bool("curl", false, "print a stamped curl command instead of sending the request; it runs once (its request_id and timestamp make it single-use), within 5 minutes")
	verifyEnclave := fs.Bool("verify-enclave", false, "before signing, verify the enclave's attestation (fresh nonce, --pcr, --root) and that the answering key is attested; after, check the signature")
	rootPath := fs.String("root", "", "with --verify-enclave: trusted root PEM `file` (default AWS's; the dev stack's is DATA-DIR/nsm-root.pem)")
	allowDebug := fs.Bool("allow-debug", false, "with --verify-enclave: accept a debug-mode enclave")
	pcrs := pcrFlags{}
	fs.Var(pcrs, "pcr", "with --verify-enclave: expected PCR as `N=HEX` (repeatable; PCR0 required)")
	minPolicy := fs.Uint64("min-policy-version", 0, "with --verify-enclave: refuse an enclave whose policy in force is older than `N` (a rollback)")
	timeout := fs.Duration("timeout", 10*time.Second, "request `timeout`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	req := &api.SignRequest{}
	payloads := 0
	for _, set := range []bool{*unsigned != "", *message != "", *messageHex != "", *typedData != ""} {
		if set {
			payloads++
		}
	}
	if payloads > 1 {
		return usageError{errors.New("give at most one of --unsigned, --message, --message-hex and --typed-data")}
	}
	switch {
	case *unsigned != "":
		b, err := decodeHex(*unsigned)
		if err != nil {
			return usageError{fmt.Errorf("--unsigned: %w", err)}
		}
		req.EthTransaction = api.NewEthTransaction(b)
	case *message != "":
		req.EthPersonalMessage = &api.EthPersonalMessage{Message: "0x" + hex.EncodeToString([]byte(*message))}
	case *messageHex != "":
		if _, err := decodeHex(*messageHex); err != nil {
			return usageError{fmt.Errorf("--message-hex: %w", err)}
		}
		req.EthPersonalMessage = &api.EthPersonalMessage{Message: *messageHex}
	case *typedData != "":
		b, err := readFileOrStdin(*typedData)
		if err != nil {
			return fmt.Errorf("--typed-data: %w", err)
		}
		req.EthTypedData = &api.EthTypedData{JSON: bytes.TrimSpace(b)}
	default:
		tx, err := buildTx(*to, *value, *chainID, *nonce, *gas, *maxFee, *tip, *data)
		if err != nil {
			return usageError{err}
		}
		req.EthTransaction = api.NewEthTransaction(tx.EncodeUnsigned())
	}

	signer, err := loadClientKey(*clientKey, *dataDir)
	if err != nil {
		return err
	}
	c, err := client.New(*hostURL, signer, &client.Options{Timeout: *timeout})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var enclave *client.Enclave
	if *verifyEnclave {
		roots, err := loadRoots(*rootPath)
		if err != nil {
			return err
		}
		if enclave, err = c.VerifyEnclave(ctx, client.EnclaveCheck{PCRs: pcrs, Roots: roots, AllowDebug: *allowDebug, MinPolicyVersion: *minPolicy}); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "enclave verified: %d attested keys, policy version %d\n", len(enclave.Keys), enclave.UserData.PolicyVersion)
	} else if len(pcrs) > 0 || *rootPath != "" || *allowDebug || *minPolicy != 0 {
		return usageError{errors.New("--pcr, --root, --allow-debug and --min-policy-version go with --verify-enclave")}
	}

	if *key == "" {
		keys, err := c.Keys(ctx)
		if err != nil {
			return fmt.Errorf("listing keys: %w", err)
		}
		if len(keys.Keys) == 0 {
			return errors.New("the enclave holds no keys")
		}
		*key = keys.Keys[0].ID
	}
	req.Key = *key

	if *curl {
		body, header, err := c.StampRequest(req)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, curlCommand(*hostURL, header, body))
		fmt.Fprintln(stderr, curlNote)
		return nil
	}

	resp, err := c.Sign(ctx, req)
	if err != nil {
		// Not signed yet: the request waits for approvers (exit status 3).
		var pe *client.PendingError
		if errors.As(err, &pe) {
			out, _ := json.MarshalIndent(pe.Pending, "", "  ")
			fmt.Fprintf(stdout, "%s\n", out)
			return exitError{exitPending, fmt.Errorf("pending approval: approval %s needs %d approvals of approval digest 0x%x; approvers run `nitrosign approve --id %s`",
				printable(pe.Pending.ApprovalID), pe.Pending.Quorum, pe.Digest, printable(pe.Pending.ApprovalID))}
		}
		var ae *client.APIError
		if errors.As(err, &ae) {
			out, _ := json.MarshalIndent(api.ErrorResponse{Error: *ae.Wire()}, "", "  ")
			fmt.Fprintf(stdout, "%s\n", out)
			if ae.Rule != "" {
				return fmt.Errorf("refused (HTTP %d, %s, rule %s): %s", ae.Status, ae.Code, ae.Rule, ae.Message)
			}
			return fmt.Errorf("refused (HTTP %d, %s): %s", ae.Status, ae.Code, ae.Message)
		}
		return err
	}
	if enclave != nil {
		if err := enclave.CheckRequestSignature(resp, req); err != nil {
			return fmt.Errorf("the answer fails verification: %w", err)
		}
	}
	out, err := json.MarshalIndent(resp, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}

// curlNote is what `sign --curl` says, on stderr, of the command it prints.
const curlNote = `nitrosign sign: the command runs once: its request_id and timestamp_ms are stamped, so a second run is refused (401 replayed_request) and a run more than 5 minutes later too (401 stale_request); run sign --curl again for another. curl exits 22 on a refusal and prints its JSON (--fail-with-body, curl 7.76 or later); a request that waits for approvals is a 202 and exits 0.`

// curlCommand returns the shell command (one line) that posts the stamped
// body to the host's /v1/sign, each argument quoted for a POSIX shell.
// --fail-with-body makes curl exit non-zero on an HTTP error and still
// print the refusal, so that a script running it sees a refusal as one.
func curlCommand(hostURL, header string, body []byte) string {
	return fmt.Sprintf("curl -sS --fail-with-body -X POST %s -H 'Content-Type: application/json' -H %s --data-binary %s\n",
		shellQuote(strings.TrimRight(hostURL, "/")+"/v1/sign"), shellQuote(stamp.Header+": "+header), shellQuote(string(body)))
}

// buildTx makes an unsigned EIP-1559 transaction from the command line.
func buildTx(to, value string, chainID, nonce, gas uint64, maxFeeGwei, tipGwei, data string) (*ethtx.Tx, error) {
	if chainID == 0 {
		return nil, errors.New("--chain-id: must not be 0")
	}
	tx := &ethtx.Tx{
		Type:     ethtx.TypeDynamicFee,
		ChainID:  new(big.Int).SetUint64(chainID),
		Nonce:    nonce,
		GasLimit: gas,
	}
	if to != "" {
		a, err := ethtx.ParseAddress(to)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		tx.To = &a
	}
	var err error
	if tx.Value, err = ethtx.ParseUnits(value, ethtx.EtherDecimals); err != nil {
		return nil, fmt.Errorf("--value: %w", err)
	}
	if tx.MaxFeePerGas, err = ethtx.ParseUnits(maxFeeGwei, 9); err != nil {
		return nil, fmt.Errorf("--max-fee-gwei: %w", err)
	}
	if tx.MaxPriorityFeePerGas, err = ethtx.ParseUnits(tipGwei, 9); err != nil {
		return nil, fmt.Errorf("--priority-fee-gwei: %w", err)
	}
	if data != "" {
		if tx.Data, err = decodeHex(data); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
	}
	return tx, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// readFileOrStdin reads a file, or standard input for "-", up to the API's
// body size.
func readFileOrStdin(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, api.MaxBodySize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxBodySize {
		return nil, fmt.Errorf("larger than %d bytes", api.MaxBodySize)
	}
	return b, nil
}

func decodeHex(s string) ([]byte, error) {
	if !strings.HasPrefix(s, "0x") {
		return nil, errors.New("want 0x-prefixed hex")
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, errors.New("invalid hex")
	}
	return b, nil
}

func runKeys(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys", stderr)
	hostURL := fs.String("host", defaultHost, "host API base `URL`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := client.New(*hostURL, nil, nil)
	if err != nil {
		return err
	}
	keys, err := c.Keys(context.Background())
	if err != nil {
		return err
	}
	for _, k := range keys.Keys {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", k.ID, k.Address, k.Path)
	}
	return nil
}

// loadClientKey reads the client's stamping key: keyPath, or the dev
// stack's DATA-DIR/client.pem when keyPath is empty.
func loadClientKey(keyPath, dataDir string) (stamp.Signer, error) {
	if keyPath == "" {
		keyPath = filepath.Join(dataDir, devstack.ClientKeyFile)
	}
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("client key: %w (run `nitrosign dev` first, or pass --client-key)", err)
	}
	signer, err := stamp.ParseSignerPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("client key %s: %w", keyPath, err)
	}
	return signer, nil
}
