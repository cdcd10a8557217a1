// Package agent is the nitrosign sidecar: a process next to a hot-wallet
// service that holds the client's stamping key, verifies the enclave behind
// a nitrosign-host, and speaks the JSON-RPC that wallet stacks already use,
// so that go-ethereum, ethers, viem and Web3Signer callers sign through the
// enclave unchanged.
//
// # Why a sidecar
//
// Every team that plugged nitrosign into an existing client wrote and ran
// its own shim holding the stamping key. The agent is that shim, written
// once: it stamps requests (package client), checks every answer against
// the attested enclave, and maps refusals to JSON-RPC errors a wallet can
// branch on.
//
// # Trust
//
// The agent trusts the host for nothing. [Agent.Start] asks the enclave for
// an attestation document with a fresh random nonce and verifies it against
// the pinned PCRs and root ([client.Client.VerifyEnclave]); it refuses to
// start if that fails. It attests again every Config.Reattest; while the
// latest attestation failed, every signing method answers
// [jsonrpc.CodeAttestationFailed] (fail closed) and the agent retries with
// backoff. A request for an address that is not an attested key triggers
// one immediate attestation (a key created since), rate-limited, before it
// is refused as an unknown account. Every signature is checked before it
// is returned ([client.Enclave.CheckRequestSignature]: the recovered
// address is an attested key, the digest is that of what was asked, a
// signed transaction is the transaction asked for); a failed check is
// answered [jsonrpc.CodeAttestationFailed] and logged at error level.
//
// # Methods
//
// Web3Signer's eth1 API: eth_accounts, eth_sign [address, data],
// personal_sign [data, address], eth_signTransaction [tx],
// eth_signTypedData and eth_signTypedData_v4 [address, typedData]. Clef's
// external API, as go-ethereum's accounts/external backend calls it:
// account_version, account_list, account_signTransaction [tx,
// methodSelector?], account_signData [contentType, address, data] for
// text/plain and data/typed, account_signTypedData [address, typedData].
// And nitrosign_approval [approvalId], which answers a request that waited
// for approvals once the approvers approved it. docs/integrations.md has
// the table with every parameter, result and error.
//
// Message and typed-data signatures are returned with v = 27 or 28, as
// JSON-RPC callers and on-chain ecrecover expect; typed transactions carry
// their y-parity. personal_sign takes its parameters in the order of
// go-ethereum, ethers and viem ([data, address]) and never guesses from
// the values: a 20-byte message looks like an address. Typed data may be a
// JSON object or a string holding one; its bytes reach the enclave as
// sent.
//
// With a [Proxy] (package agent/ethproxy, --upstream), eth_sendTransaction
// is filled in from the node, signed and sent, eth_signTransaction fills in
// what the wallet left out, and every other method is forwarded to the
// node. Without one, eth_chainId and net_version answer Config.ChainID
// when it is set (so that ethers' and viem's network detection works
// against an agent that only signs), and the methods the agent does not
// implement answer [jsonrpc.CodeMethodNotFound].
//
// # Chain id
//
// As Clef with --chainid, Config.ChainID (`nitrosign agent --chain-id`) is
// the chain the agent signs transactions for: eth_signTransaction and
// account_signTransaction fill it into a transaction without chainId
// (go-ethereum's bind.NewClefTransactor sends none: it leaves the chain to
// Clef), and refuse a transaction for another chain with
// [jsonrpc.CodeInvalidParams], naming both ids. With a proxy the node's
// chain id does the same; a ChainID that is not the node's refuses every
// transaction, and `nitrosign agent` refuses to start. With neither, a
// transaction without chainId is refused, the message saying to pass
// --chain-id: the agent never guesses a chain.
//
// # Errors
//
// The codes are stable; a wallet branches on them and on data, never on
// messages:
//
//	-32000 CodeRefused             the enclave's policy (or the host) refused; data {"code","rule","message"}
//	-32001 CodeApprovalPending     waits for approvers; data {"approval_id","digest","expires_at_ms","quorum","approvals"}
//	-32002 CodeEnclaveUnavailable  the host or enclave did not answer (503, network); retry later
//	-32003 CodeAttestationFailed   the enclave's attestation or a signature's check failed
//	-32602 CodeInvalidParams       bad parameters, or an address that is not an attested key ("unknown account")
//	-32601 CodeMethodNotFound      not a method the agent serves (without a proxy)
//
// A request above a policy's approval threshold waits up to
// Config.ApprovalTimeout for the approvers; if they have not approved by
// then, the answer is CodeApprovalPending with the approval id, and
// nitrosign_approval [id] picks up the signature later (checked like any
// other). A rejected request answers CodeRefused with data code
// approval_rejected, an expired one (or one the host no longer knows)
// with code not_found; both with rule approvals. The agent remembers the
// requests it sent that wait (up to 4096, until they expire) so that it
// checks the signature nitrosign_approval picks up against what was asked
// and answers in the form of the method that asked; an id it did not send
// is refused as an invalid parameter.
//
// In proxy mode, an eth_sendTransaction that waits for approvals keeps
// the nonce it was given (package agent/ethproxy, Nonces): the agent's
// answer to the proxy carries the approval id and expiry (it implements
// ethproxy.Held), and later sends get the following nonces.
// nitrosign_approval [id] of such a send, once approved, sends the
// approved transaction through the proxy and answers its hash (a refusal
// by the node is answered as the node's error). When nitrosign_approval
// answers that the approval was rejected or expired, or that its
// signature failed its check, or the agent forgets it (expired, or the
// oldest of 4096), the agent tells the proxy, which
// releases the nonce to the next send; the proxy also releases it on its
// own once the approval's expires_at has passed.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
)

// Defaults for the zero fields of [Config].
const (
	// DefaultReattest is how often the enclave is attested again: short
	// enough that an enclave replaced by another image is noticed within
	// minutes, long enough to cost the host nothing.
	DefaultReattest = 10 * time.Minute
	// DefaultApprovalTimeout is what `nitrosign agent` waits for approvers
	// before answering "pending" with the approval id: long enough for an
	// approver at their desk who is paged, short enough that the wallet's
	// own request does not time out first (ethers waits 300 s by default,
	// go-ethereum's HTTP client without limit; viem's HTTP transport gives
	// up after 10 s, so viem users raise its timeout or lower
	// --approval-timeout).
	DefaultApprovalTimeout = 30 * time.Second
	// DefaultApprovalPoll is how often a waiting request asks the host.
	DefaultApprovalPoll = time.Second
	// minOnDemandAttest spaces the attestations that an unknown address
	// triggers, so that requests for unknown accounts cannot make the
	// agent hammer the enclave.
	minOnDemandAttest = 5 * time.Second
	// maxRetryBackoff caps the backoff between attestations after a
	// failure.
	maxRetryBackoff = time.Minute
	// maxPending bounds the requests the agent remembers while they wait
	// for approvals (for nitrosign_approval).
	maxPending = 4096
)

// Config configures an [Agent].
type Config struct {
	// Client stamps and sends requests to the host with the client's key.
	Client *client.Client
	// Check is what the enclave must attest: PCR0 at least, and the root.
	Check client.EnclaveCheck
	// Reattest is the interval between attestations (default
	// DefaultReattest).
	Reattest time.Duration
	// ApprovalTimeout is how long a request that needs approvals waits
	// before it is answered CodeApprovalPending; zero answers at once.
	ApprovalTimeout time.Duration
	// ApprovalPoll is the interval between checks of a waiting request
	// (default DefaultApprovalPoll).
	ApprovalPoll time.Duration
	// ChainID, when not nil, is the chain the agent signs for, as Clef's
	// --chainid: it fills in a transaction's absent chainId, a
	// transaction for another chain is refused, and without a Proxy
	// eth_chainId and net_version answer it. With a Proxy it must be the
	// node's chain id (transactions are refused otherwise).
	ChainID *big.Int
	// Proxy, when not nil, fills in and sends transactions through an
	// Ethereum node and forwards every method the agent does not serve.
	// A proxy that signs through the agent (agent/ethproxy's, whose
	// Signer the agent is) is set with SetProxy once both exist.
	Proxy Proxy
	// VHosts are the Host header names (besides loopback names) the HTTP
	// server answers; "*" answers any. See [Agent.Handler].
	VHosts []string
	// Logger receives one line per request and the attestation events
	// (default: discarded).
	Logger *slog.Logger
}

// Agent is a running sidecar. It is safe for concurrent use.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu          sync.RWMutex
	enclave     *client.Enclave // the latest verified enclave; nil before Start
	attestErr   error           // the latest attestation's failure, nil if it succeeded
	lastAttempt time.Time

	attestMu sync.Mutex // one attestation at a time

	pmu     sync.Mutex
	pending map[string]*pendingRequest

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New checks cfg and returns an agent; Start verifies the enclave.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, errors.New("agent: no client")
	}
	if len(cfg.Check.PCRs[0]) == 0 {
		return nil, errors.New("agent: PCR0 must be pinned")
	}
	if cfg.Reattest <= 0 {
		cfg.Reattest = DefaultReattest
	}
	if cfg.ApprovalTimeout < 0 {
		return nil, errors.New("agent: negative approval timeout")
	}
	if cfg.ChainID != nil {
		if cfg.ChainID.Sign() <= 0 || cfg.ChainID.BitLen() > 256 {
			return nil, errors.New("agent: the chain id must be from 1 to 2^256-1")
		}
		cfg.ChainID = new(big.Int).Set(cfg.ChainID)
	}
	if cfg.ApprovalPoll <= 0 {
		cfg.ApprovalPoll = DefaultApprovalPoll
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: log, pending: map[string]*pendingRequest{}, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// SetProxy sets Config.Proxy: call it before Serve or Dispatch.
func (a *Agent) SetProxy(p Proxy) { a.cfg.Proxy = p }

// Start verifies the enclave and starts attesting it again in the
// background; it fails if the first attestation does. Close stops it.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.attest(ctx); err != nil {
		return err
	}
	a.started.Store(true)
	go a.loop()
	return nil
}

// Close stops the background attestation.
func (a *Agent) Close() error {
	a.once.Do(func() { close(a.stop) })
	if a.started.Load() {
		<-a.done
	}
	return nil
}

// loop attests every Reattest, and after a failure retries with a backoff
// from one second doubling to a minute (or Reattest if shorter).
func (a *Agent) loop() {
	defer close(a.done)
	wait := a.cfg.Reattest
	backoff := time.Second
	for {
		t := time.NewTimer(wait)
		select {
		case <-a.stop:
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := a.attest(ctx)
		cancel()
		if err == nil {
			wait, backoff = a.cfg.Reattest, time.Second
			continue
		}
		wait = backoff
		backoff = min(2*backoff, maxRetryBackoff, a.cfg.Reattest)
	}
}

// attest verifies the enclave with a fresh nonce and records the outcome:
// on success the attested keys replace the previous ones; on failure every
// signing method refuses until an attestation succeeds.
func (a *Agent) attest(ctx context.Context) error {
	a.attestMu.Lock()
	defer a.attestMu.Unlock()
	e, err := a.cfg.Client.VerifyEnclave(ctx, a.cfg.Check)
	a.mu.Lock()
	a.lastAttempt = time.Now()
	if err != nil {
		a.attestErr = fmt.Errorf("agent: attestation: %w", err)
		a.mu.Unlock()
		a.log.Error("the enclave's attestation failed: signing refused until it succeeds", "err", err)
		return a.attestErr
	}
	prev, recovered := a.enclave, a.attestErr != nil
	a.enclave, a.attestErr = e, nil
	a.mu.Unlock()
	if prev == nil || recovered || len(prev.Keys) != len(e.Keys) {
		addrs := make([]string, len(e.Keys))
		for i, k := range e.Keys {
			addrs[i] = k.Address
		}
		a.log.Info("enclave attested", "module", e.Attestation.ModuleID, "policy_version", e.UserData.PolicyVersion, "keys", addrs)
	} else {
		a.log.Debug("enclave attested again", "policy_version", e.UserData.PolicyVersion)
	}
	return nil
}

// current returns the verified enclave, or the attestation failure.
func (a *Agent) current() (*client.Enclave, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.attestErr != nil {
		return nil, a.attestErr
	}
	if a.enclave == nil {
		return nil, errors.New("agent: not started")
	}
	return a.enclave, nil
}

// enclaveFor returns the verified enclave if it attests from, attesting
// once more (a key created since the last attestation) when it does not
// and the last attestation is older than minOnDemandAttest. known is false
// when from is not an attested key.
func (a *Agent) enclaveFor(ctx context.Context, from ethtx.Address) (e *client.Enclave, known bool, err error) {
	if e, err = a.current(); err != nil {
		return nil, false, err
	}
	if e.Attests(from.Hex()) {
		return e, true, nil
	}
	a.mu.RLock()
	recent := time.Since(a.lastAttempt) < minOnDemandAttest
	a.mu.RUnlock()
	if recent {
		return e, false, nil
	}
	if err := a.attest(ctx); err != nil {
		return nil, false, err
	}
	if e, err = a.current(); err != nil {
		return nil, false, err
	}
	return e, e.Attests(from.Hex()), nil
}

// Accounts returns the attested signing addresses, in the host's order,
// or the attestation failure.
func (a *Agent) Accounts(context.Context) ([]ethtx.Address, error) {
	e, err := a.current()
	if err != nil {
		return nil, err
	}
	out := make([]ethtx.Address, 0, len(e.Keys))
	for _, k := range e.Keys {
		addr, err := ethtx.ParseAddress(k.Address)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		out = append(out, addr)
	}
	return out, nil
}
