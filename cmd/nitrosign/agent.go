package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nitrosign/nitrosign/agent"
	"github.com/nitrosign/nitrosign/agent/ethproxy"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/logging"
)

const defaultAgentListen = "127.0.0.1:8550"

// agentContext is the context `nitrosign agent` runs in: until SIGINT or
// SIGTERM. Tests replace it.
var agentContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runAgent(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent", stderr)
	listen := fs.String("listen", defaultAgentListen, "listen `address`: HOST:PORT (HTTP), or a Unix socket as unix:/path or an absolute path (HTTP and go-ethereum's IPC framing)")
	hostURL := fs.String("host", defaultHost, "nitrosign-host API base `URL`")
	dataDir := fs.String("data-dir", devstack.DefaultDataDir, "data `directory` of the default --client-key (and of --dev)")
	clientKey := fs.String("client-key", "", "client private key `file` that stamps requests (PKCS#8 PEM, Ed25519 or P-256; default DATA-DIR/client.pem)")
	pcrs := pcrFlags{}
	fs.Var(pcrs, "pcr", "expected PCR of the enclave as `N=HEX` (repeatable; PCR0 required unless --dev)")
	rootPath := fs.String("root", "", "trusted attestation root PEM `file` (default AWS Nitro Enclaves root G1)")
	allowDebug := fs.Bool("allow-debug", false, "accept a debug-mode enclave: development only")
	dev := fs.Bool("dev", false, "trust the dev stack on DATA-DIR: its simulated NSM root and the PCRs it measured (DATA-DIR/nsm-root.pem, DATA-DIR/pcrs.txt)")
	reattest := fs.Duration("reattest", agent.DefaultReattest, "attest the enclave again every `interval` (fresh nonce)")
	approvalTimeout := fs.Duration("approval-timeout", agent.DefaultApprovalTimeout, "wait this `long` for approvers before answering \"pending\" with the approval id (0: answer at once)")
	chainID := fs.Uint64("chain-id", 0, "chain `id` the agent signs for, as Clef's --chainid: fills in an absent chainId, refuses another chain, answers eth_chainId without --upstream (with --upstream, it must be the node's)")
	upstream := fs.String("upstream", "", "Ethereum node JSON-RPC `URL`: fill in and send eth_sendTransaction, forward every other method")
	minPolicy := fs.Uint64("min-policy-version", 0, "refuse an enclave whose policy in force is older than `N` (a rollback)")
	vhosts := fs.String("vhosts", "", "comma-separated `names` the HTTP server answers in the Host header besides loopback names (* for any)")
	allowRemote := fs.Bool("allow-remote", false, "allow a --listen address that is not loopback: whoever reaches it signs as this client")
	timeout := fs.Duration("timeout", 10*time.Second, "`timeout` of each request to the host")
	level := fs.String("log-level", "info", "log `level`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: nitrosign agent [--listen ADDR] [--host URL] [--client-key FILE] (--pcr 0=HEX [--root PEM] | --dev) [--upstream URL] [--chain-id N] [flags]\n\n")
		fmt.Fprintf(stderr, "A sidecar that holds the client's stamping key, verifies the enclave, and serves\nWeb3Signer's eth_* and Clef's account_* JSON-RPC (and, with --upstream, a node proxy).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logging.New(stderr, *level)
	if err != nil {
		return usageError{err}
	}

	check := client.EnclaveCheck{PCRs: pcrs, AllowDebug: *allowDebug, MinPolicyVersion: *minPolicy}
	if *dev {
		if len(pcrs) > 0 || *rootPath != "" {
			return usageError{errors.New("--dev reads the PCRs and root from DATA-DIR: give neither --pcr nor --root")}
		}
		if check.PCRs, err = devstack.ReadPCRs(*dataDir); err != nil {
			return err
		}
		*rootPath = filepath.Join(*dataDir, devstack.NSMRootFile)
	} else if len(pcrs[0]) == 0 {
		return usageError{errors.New("--pcr 0=HEX is required (the enclave image's PCR0, as scripts/build-eif.sh prints it), or --dev for the dev stack")}
	}
	if check.Roots, err = loadRoots(*rootPath); err != nil {
		return err
	}
	signer, err := loadClientKey(*clientKey, *dataDir)
	if err != nil {
		return err
	}
	c, err := client.New(*hostURL, signer, &client.Options{Timeout: *timeout})
	if err != nil {
		return err
	}
	var hosts []string
	for _, h := range strings.Split(*vhosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if *allowRemote {
		log.Warn("--allow-remote: whoever reaches the agent's address signs as this client; restrict it with a firewall and --vhosts")
	}

	var cid *big.Int
	if *chainID != 0 {
		cid = new(big.Int).SetUint64(*chainID)
	}

	ctx, stop := agentContext()
	defer stop()
	ag, err := agent.New(agent.Config{
		Client: c, Check: check, Reattest: *reattest, ApprovalTimeout: *approvalTimeout,
		ChainID: cid, VHosts: hosts, Logger: log,
	})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = ag.Start(sctx)
	cancel()
	if err != nil {
		return err
	}
	defer ag.Close()
	if *upstream != "" {
		px, err := ethproxy.New(ethproxy.Options{Upstream: *upstream, Logger: log}, ag)
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = px.Start(sctx)
		cancel()
		if err != nil {
			return err
		}
		if node := px.ChainID(); cid != nil && node.Cmp(cid) != 0 {
			return fmt.Errorf("agent: --chain-id %s is not the chain of the --upstream node (%s): refusing to start", cid, node)
		}
		ag.SetProxy(px)
	}
	ln, err := agent.Listen(*listen, *allowRemote)
	if err != nil {
		return err
	}
	accts, _ := ag.Accounts(ctx)
	names := make([]string, len(accts))
	for i, a := range accts {
		names[i] = a.Hex()
	}
	fmt.Fprintf(stdout, "nitrosign agent listening on %s (host %s, accounts %s)\n", ln.Addr(), *hostURL, strings.Join(names, ", "))
	// The client key the policy must register (clients[].scheme and
	// public_key): public, and what an operator needs to provision it.
	fmt.Fprintf(stdout, "stamping as client key %s\n", signer.PublicKey())
	err = ag.Serve(ctx, ln)
	fmt.Fprintln(stderr, "stopped")
	return err
}
