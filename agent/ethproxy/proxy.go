// Package ethproxy is the agent's proxy mode, as EthSigner offered it: the
// agent stands between a wallet stack and an Ethereum node, signs
// eth_sendTransaction through the enclave after filling in what the wallet
// left out, sends it with eth_sendRawTransaction, and forwards every call
// it does not handle to the node. Wallets that expect a node with an
// unlocked account (ethers' JsonRpcSigner, web3j, Foundry's --unlocked)
// then work unchanged, while the key stays in the enclave.
//
// The node is trusted for what a wallet trusts it with (chain state, gas
// estimates, fees, broadcasting), never for what is signed: the enclave's
// policy decides that, on the transaction the agent built.
//
// # Filling a transaction
//
// [Proxy.Fill] (eth_signTransaction) and [Proxy.SendTransaction]
// (eth_sendTransaction) take a decoded transaction object (package
// agent/txargs) and complete it as go-ethereum's own wallet API does
// (internal/ethapi, setDefaults):
//   - "from" is required and must be one of the signer's attested
//     accounts;
//   - "chainId", when given, must be the node's (learned by [Proxy.Start]
//     with eth_chainId); otherwise it is the node's;
//   - fees, when the wallet gave neither gasPrice nor both EIP-1559 fees:
//     if the latest block has a base fee, maxPriorityFeePerGas is
//     eth_maxPriorityFeePerGas (or, from a node without that method,
//     eth_gasPrice minus the base fee, at least zero) and maxFeePerGas is
//     twice the base fee plus the tip, so the transaction survives six
//     blocks of rising base fees; otherwise the node is before London and
//     gasPrice is eth_gasPrice (an EIP-1559 fee or a type 2 to 4 is then
//     refused: the node cannot take it). A gasPrice given keeps the transaction
//     legacy (or EIP-2930 with an access list); an explicit type 0 or 1
//     gets gasPrice, 2 to 4 the EIP-1559 fees; a blob transaction without
//     maxFeePerBlobGas gets twice eth_blobBaseFee;
//   - "gas", when absent, is eth_estimateGas of the transaction as far as
//     it is known (from, to, value, data, fees, access and authorization
//     lists, blob hashes);
//   - "nonce", when absent: Fill takes the node's pending count
//     (eth_getTransactionCount "pending") and reserves nothing;
//     SendTransaction takes one from the nonce manager.
//
// A wallet's mistake is answered as a *jsonrpc.Error with
// jsonrpc.CodeInvalidParams that says what is wrong; an error the node
// answered keeps the node's code, message and data.
//
// # Nonces
//
// Many eth_sendTransaction calls from one address may run at once (a hot
// wallet pays out in parallel); each must get its own nonce, and a failure
// must not leave a gap that stalls every later transaction. The nonce
// manager keeps, per address, the next nonce to hand out, the nonces in
// flight (handed out, send not finished) and those released:
//   - the first allocation starts from the node's pending count; then,
//     under the address's lock, allocations get consecutive nonces in the
//     order they are made;
//   - a nonce whose send failed before reaching the pool (the enclave
//     refused to sign, the node refused the transaction) is released and
//     handed out again, lowest first, so no gap stays;
//   - "nonce too low" or "replacement transaction underpriced" from the
//     node means the nonce is used (another sender, a restart): the
//     manager asks the node again and the send is retried once with a
//     fresh nonce (signed again); "already known" means the node has this
//     very transaction, which is success;
//   - a send that may or may not have reached the node (a timeout) keeps
//     its nonce, and the next allocation asks the node;
//   - whenever an address has nothing in flight, an allocation asks the
//     node: a pending count above the local next (another sender, a
//     restart of the agent) moves it forward; a count below it, with
//     nothing sent, changed or held while the node was asked, means a
//     transaction was dropped from the pool (a gap), and the manager
//     rewinds to the node's count so that the next transaction fills it
//     (a count at a released nonce is no drop: that nonce fills the gap,
//     and the nonces sent above it are not handed out again);
//   - a nonce given by the wallet is used as is and not managed, but a
//     later allocation starts above it and asks the node;
//   - a send that waits for approvals (the signer's error implements
//     [Held]) holds its nonce: it stays reserved, the wallet is answered
//     the signer's error as it is (the agent's "pending", with the
//     approval id and expiry), and later sends get the following nonces;
//   - once the approvers approve, the signer hands the signed transaction
//     to [Proxy.SendApproved], which sends it: the nonce is then used, or,
//     as after any send, released when the node refused the transaction
//     itself, or kept with the node asked again when the node says the
//     nonce is used or the send's fate is unknown. It is never retried
//     with another nonce: the approvers approved this transaction;
//   - when the approval ends without a signature (rejected, expired, or
//     forgotten by the signer), [Proxy.ApprovalEnded] releases the nonce,
//     which the next send takes, lowest first;
//   - a held nonce whose approval's expiry passes without a broadcast is
//     released by the first allocation after it, so that a forgotten
//     approval never stalls the address.
//
// While nonce n is held, the address's later transactions (n+1 and up)
// reach the node but cannot be mined: the node queues them behind the gap
// and its pending count stays at n (which the manager then does not take
// for a dropped transaction). They are mined once the approved
// transaction is sent, or, when the approval ends without one, once the
// next send takes n and fills the gap; without a next send they wait in
// the node's queue (go-ethereum drops queued transactions after three
// hours, its --txpool.lifetime). Keep transactions that need approval on
// addresses of their own when later payments must not wait for approvers.
// An approved transaction picked up after its approval expired may find
// its nonce taken by another send: the node refuses it (nonce too low or
// replacement underpriced), and the wallet sends it again.
//
// eth_sendTransaction answers the hash the node returns, after checking
// that it is the hash of the signed bytes. A blob transaction is refused
// there: eth_sendRawTransaction takes it wrapped with its blobs, which the
// signer never sees (Fill still completes one, for eth_signTransaction).
//
// # Forwarding
//
// [Proxy.Forward] sends any other call to the node verbatim (its params
// as sent, the node's result as answered, the node's errors as they are).
// It refuses, with jsonrpc.CodeMethodNotFound, the signing methods
// (eth_sign, personal_sign, eth_signTransaction, eth_signTypedData*,
// eth_sendTransaction, eth_accounts and Clef's account_*), which the agent
// answers itself so that a node's own keys are never used in its name, and
// the personal_, admin_, debug_, miner_, engine_, clique_ and txpool_
// namespaces: they unlock or use the node's accounts, or administer the
// node, which is no wallet's business (EthSigner forwarded everything; a
// node with an unlocked account would then sign around the enclave).
package ethproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/ethtx"
)

// Signer signs through the enclave.
type Signer interface {
	// SignTransaction signs tx as from through the enclave, checks the
	// signature (attested key), and returns the signed transaction bytes.
	SignTransaction(ctx context.Context, from ethtx.Address, tx *ethtx.Tx) ([]byte, error)
	// Accounts are the attested addresses it signs for.
	Accounts(ctx context.Context) ([]ethtx.Address, error)
}

// Held is implemented by an error of Signer.SignTransaction (found with
// errors.As) that says the transaction waits for approvals: the signer
// will sign it once approvers approve it, and then hand it to
// [Proxy.SendApproved]; if the approval ends without a signature, it calls
// [Proxy.ApprovalEnded]. The proxy holds the transaction's nonce
// meanwhile, and answers the wallet with the error as it is.
type Held interface {
	error
	// Approval returns the approval's id and when it expires.
	Approval() (id string, expires time.Time)
}

// Options configure a Proxy.
type Options struct {
	// Upstream is the node's JSON-RPC URL (http or https). It may carry
	// an API key; it never appears in errors or logs.
	Upstream string
	// HTTPClient calls the node; nil means a client with a 30-second
	// timeout. Each call is also bounded by its request's context.
	HTTPClient *http.Client
	// Logger, nil for none.
	Logger *slog.Logger
	// MaxResponse caps a node's answer in bytes; 0 means
	// DefaultMaxResponse.
	MaxResponse int
}

// Proxy is the proxy mode for one node. It is safe for concurrent use.
type Proxy struct {
	up     *upstream
	signer Signer
	log    *slog.Logger
	nonces *nonces

	mu      sync.RWMutex
	chainID *big.Int

	hmu  sync.Mutex
	held map[string]heldSend // by approval id
}

// New returns a proxy to the node at opts.Upstream that signs with s. It
// does not reach the node; Start does.
func New(opts Options, s Signer) (*Proxy, error) {
	if s == nil {
		return nil, errors.New("ethproxy: no signer")
	}
	u, err := url.Parse(opts.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse's error quotes the URL, which may hold a key.
		return nil, errors.New("ethproxy: upstream must be an http or https URL with a host")
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	maxResp := opts.MaxResponse
	if maxResp <= 0 {
		maxResp = DefaultMaxResponse
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{up: &upstream{url: opts.Upstream, hc: hc, maxResp: maxResp}, signer: s, log: log, held: map[string]heldSend{}}
	p.nonces = newNonces(p.pendingCount)
	p.nonces.expired = func(addr ethtx.Address, nonce uint64, approvalID string) {
		log.Warn("ethproxy: a held nonce is released: its approval expired without a broadcast", "from", addr.Hex(), "nonce", nonce, "approval_id", approvalID)
	}
	return p, nil
}

// Start reaches the node and learns its chain id (eth_chainId, which must
// answer a chain id of at least 1).
func (p *Proxy) Start(ctx context.Context) error {
	id, err := p.up.callQuantity(ctx, "eth_chainId", params(), 256)
	if err != nil {
		return fmt.Errorf("ethproxy: start: %w", err)
	}
	if id.Sign() == 0 {
		return errors.New("ethproxy: start: the node's chain id is 0")
	}
	p.mu.Lock()
	p.chainID = id
	p.mu.Unlock()
	p.log.Info("ethproxy: upstream node reached", "chain_id", id.String())
	return nil
}

// ChainID returns the node's chain id, nil before Start.
func (p *Proxy) ChainID() *big.Int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.chainID == nil {
		return nil
	}
	return new(big.Int).Set(p.chainID)
}

func invalidParams(format string, args ...any) *jsonrpc.Error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, fmt.Sprintf("ethproxy: "+format, args...), nil)
}

// Fill completes a for eth_signTransaction, as the package documentation
// says, without reserving a nonce, and returns the transaction to sign. a
// is not changed.
func (p *Proxy) Fill(ctx context.Context, a *txargs.Args) (*ethtx.Tx, error) {
	b, err := p.fill(ctx, a)
	if err != nil {
		return nil, err
	}
	if b.Nonce == nil {
		n, err := p.pendingCount(ctx, *b.From)
		if err != nil {
			return nil, err
		}
		b.Nonce = &n
	}
	return build(b)
}

func build(b *txargs.Args) (*ethtx.Tx, error) {
	tx, err := b.Tx()
	if err != nil {
		return nil, invalidParams("%s", strings.TrimPrefix(err.Error(), "txargs: "))
	}
	return tx, nil
}

// fill returns a copy of a with from checked and chain id, fees and gas
// filled in; the nonce is left as given.
func (p *Proxy) fill(ctx context.Context, a *txargs.Args) (*txargs.Args, error) {
	chainID := p.ChainID()
	if chainID == nil {
		return nil, errors.New("ethproxy: not started")
	}
	if a == nil || a.From == nil {
		return nil, invalidParams(`"from" is required`)
	}
	if err := p.checkFrom(ctx, *a.From); err != nil {
		return nil, err
	}
	b := *a // the fields filled are replaced, never written through
	if b.ChainID != nil && b.ChainID.Cmp(chainID) != 0 {
		return nil, invalidParams("chainId %s does not match the node's chain id %s", b.ChainID, chainID)
	}
	b.ChainID = chainID
	if _, err := b.TxType(); err != nil {
		return nil, invalidParams("%s", strings.TrimPrefix(err.Error(), "txargs: "))
	}
	if b.To == nil && len(b.Data) == 0 {
		return nil, invalidParams(`contract creation without code: "to" is absent and there is no "input" or "data"`)
	}
	if err := p.fillFees(ctx, &b); err != nil {
		return nil, err
	}
	if b.Gas == nil {
		gas, err := p.estimateGas(ctx, &b)
		if err != nil {
			return nil, err
		}
		b.Gas = &gas
	}
	return &b, nil
}

func (p *Proxy) checkFrom(ctx context.Context, from ethtx.Address) error {
	accounts, err := p.signer.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("ethproxy: accounts: %w", err)
	}
	for _, acc := range accounts {
		if acc == from {
			return nil
		}
	}
	return invalidParams("from %s is not an account of this signer", from)
}

// fillFees fills the fee fields as go-ethereum's setFeeDefaults does.
func (p *Proxy) fillFees(ctx context.Context, b *txargs.Args) error {
	typ, _ := b.TxType()
	if typ == ethtx.TypeBlob && b.MaxFeePerBlobGas == nil {
		fee, err := p.up.callQuantity(ctx, "eth_blobBaseFee", params(), 256)
		if err != nil {
			return fmt.Errorf("ethproxy: blob base fee: %w", err)
		}
		b.MaxFeePerBlobGas = fee.Lsh(fee, 1)
	}
	if b.GasPrice != nil || (b.MaxFeePerGas != nil && b.MaxPriorityFeePerGas != nil) {
		return nil
	}
	legacy := b.Type != nil && (*b.Type == ethtx.TypeLegacy || *b.Type == ethtx.TypeAccessList)
	var baseFee *big.Int
	if !legacy {
		var err error
		if baseFee, err = p.baseFee(ctx); err != nil {
			return err
		}
		if baseFee == nil && (b.Type != nil || b.MaxFeePerGas != nil || b.MaxPriorityFeePerGas != nil) {
			return invalidParams("the node's latest block has no base fee (before London), so it takes no EIP-1559 fees; send gasPrice")
		}
	}
	if baseFee == nil {
		price, err := p.up.callQuantity(ctx, "eth_gasPrice", params(), 256)
		if err != nil {
			return fmt.Errorf("ethproxy: gas price: %w", err)
		}
		b.GasPrice = price
		return nil
	}
	if b.MaxPriorityFeePerGas == nil {
		tip, err := p.suggestTip(ctx, baseFee)
		if err != nil {
			return err
		}
		b.MaxPriorityFeePerGas = tip
	}
	if b.MaxFeePerGas == nil {
		b.MaxFeePerGas = new(big.Int).Add(new(big.Int).Lsh(baseFee, 1), b.MaxPriorityFeePerGas)
	}
	if b.MaxFeePerGas.Cmp(b.MaxPriorityFeePerGas) < 0 {
		return invalidParams("maxFeePerGas (%s) is below maxPriorityFeePerGas (%s)", b.MaxFeePerGas, b.MaxPriorityFeePerGas)
	}
	return nil
}

// baseFee returns the latest block's base fee, nil before London.
func (p *Proxy) baseFee(ctx context.Context) (*big.Int, error) {
	res, err := p.up.call(ctx, "eth_getBlockByNumber", params("latest", false))
	if err != nil {
		return nil, fmt.Errorf("ethproxy: latest block: %w", err)
	}
	var block struct {
		BaseFee json.RawMessage `json:"baseFeePerGas"`
	}
	if len(res) == 0 || res[0] != '{' || json.Unmarshal(res, &block) != nil {
		return nil, fmt.Errorf("%w: eth_getBlockByNumber: the latest block is not an object", ErrUpstream)
	}
	if block.BaseFee == nil || string(block.BaseFee) == "null" {
		return nil, nil
	}
	fee, err := parseQuantity(block.BaseFee, 256)
	if err != nil {
		return nil, fmt.Errorf("%w: eth_getBlockByNumber: baseFeePerGas: %v", ErrUpstream, err)
	}
	return fee, nil
}

// suggestTip is eth_maxPriorityFeePerGas, or from a node that does not
// answer it, eth_gasPrice less the base fee (at least zero).
func (p *Proxy) suggestTip(ctx context.Context, baseFee *big.Int) (*big.Int, error) {
	tip, err := p.up.callQuantity(ctx, "eth_maxPriorityFeePerGas", params(), 256)
	var rpcErr *jsonrpc.Error
	if err == nil || !errors.As(err, &rpcErr) {
		if err != nil {
			return nil, fmt.Errorf("ethproxy: priority fee: %w", err)
		}
		return tip, nil
	}
	price, err := p.up.callQuantity(ctx, "eth_gasPrice", params(), 256)
	if err != nil {
		return nil, fmt.Errorf("ethproxy: gas price: %w", err)
	}
	if price.Sub(price, baseFee).Sign() < 0 {
		price.SetInt64(0)
	}
	return price, nil
}

// callObject is a transaction object for eth_estimateGas, in the node
// API's names; the calldata goes as "data", which every node reads (not
// all read "input").
type callObject struct {
	From                 string                `json:"from"`
	To                   *string               `json:"to,omitempty"`
	GasPrice             *string               `json:"gasPrice,omitempty"`
	MaxFeePerGas         *string               `json:"maxFeePerGas,omitempty"`
	MaxPriorityFeePerGas *string               `json:"maxPriorityFeePerGas,omitempty"`
	Value                *string               `json:"value,omitempty"`
	Data                 string                `json:"data"`
	AccessList           []accessTuple         `json:"accessList,omitempty"`
	MaxFeePerBlobGas     *string               `json:"maxFeePerBlobGas,omitempty"`
	BlobVersionedHashes  []string              `json:"blobVersionedHashes,omitempty"`
	AuthorizationList    []authorizationObject `json:"authorizationList,omitempty"`
}

type accessTuple struct {
	Address     string   `json:"address"`
	StorageKeys []string `json:"storageKeys"`
}

type authorizationObject struct {
	ChainID string `json:"chainId"`
	Address string `json:"address"`
	Nonce   string `json:"nonce"`
	YParity string `json:"yParity"`
	R       string `json:"r"`
	S       string `json:"s"`
}

func hexQuantity(x *big.Int) *string {
	if x == nil {
		return nil
	}
	s := "0x" + x.Text(16)
	return &s
}

func hexAddress(a ethtx.Address) string { return fmt.Sprintf("0x%x", a[:]) }

func (p *Proxy) estimateGas(ctx context.Context, b *txargs.Args) (uint64, error) {
	obj := callObject{
		From:                 hexAddress(*b.From),
		GasPrice:             hexQuantity(b.GasPrice),
		MaxFeePerGas:         hexQuantity(b.MaxFeePerGas),
		MaxPriorityFeePerGas: hexQuantity(b.MaxPriorityFeePerGas),
		Value:                hexQuantity(b.Value),
		Data:                 fmt.Sprintf("0x%x", b.Data),
		MaxFeePerBlobGas:     hexQuantity(b.MaxFeePerBlobGas),
	}
	if b.To != nil {
		to := hexAddress(*b.To)
		obj.To = &to
	}
	if b.AccessList != nil {
		obj.AccessList = []accessTuple{}
		for _, e := range *b.AccessList {
			t := accessTuple{Address: hexAddress(e.Address), StorageKeys: []string{}}
			for _, k := range e.StorageKeys {
				t.StorageKeys = append(t.StorageKeys, fmt.Sprintf("0x%x", k))
			}
			obj.AccessList = append(obj.AccessList, t)
		}
	}
	for _, h := range b.BlobVersionedHashes {
		obj.BlobVersionedHashes = append(obj.BlobVersionedHashes, fmt.Sprintf("0x%x", h))
	}
	for _, a := range b.AuthorizationList {
		obj.AuthorizationList = append(obj.AuthorizationList, authorizationObject{
			ChainID: *hexQuantity(a.ChainID), Address: hexAddress(a.Address),
			Nonce: *hexQuantity(new(big.Int).SetUint64(a.Nonce)), YParity: fmt.Sprintf("0x%x", a.YParity),
			R: *hexQuantity(new(big.Int).SetBytes(a.R[:])), S: *hexQuantity(new(big.Int).SetBytes(a.S[:])),
		})
	}
	gas, err := p.up.callQuantity(ctx, "eth_estimateGas", params(obj), 64)
	if err != nil {
		return 0, fmt.Errorf("ethproxy: estimate gas: %w", err)
	}
	return gas.Uint64(), nil
}

// pendingCount is the node's count of addr's transactions, pool included.
func (p *Proxy) pendingCount(ctx context.Context, addr ethtx.Address) (uint64, error) {
	n, err := p.up.callQuantity(ctx, "eth_getTransactionCount", params(hexAddress(addr), "pending"), 64)
	if err != nil {
		return 0, fmt.Errorf("ethproxy: transaction count: %w", err)
	}
	return n.Uint64(), nil
}

// SendTransaction completes a as the package documentation says, signs it
// through the signer, sends it with eth_sendRawTransaction and returns its
// hash. a is not changed.
func (p *Proxy) SendTransaction(ctx context.Context, a *txargs.Args) ([32]byte, error) {
	b, err := p.fill(ctx, a)
	if err != nil {
		return [32]byte{}, err
	}
	from := *b.From
	if typ, _ := b.TxType(); typ == ethtx.TypeBlob {
		return [32]byte{}, invalidParams("a blob transaction cannot be sent by the agent: eth_sendRawTransaction takes it wrapped with its blobs, which the signer never sees; sign it with eth_signTransaction and send it with its blobs yourself")
	}
	if b.Nonce != nil {
		// The wallet's nonce: used as is, not managed.
		tx, err := build(b)
		if err != nil {
			return [32]byte{}, err
		}
		hash, o, err := p.signAndSend(ctx, from, tx)
		switch o {
		case sent:
			p.nonces.used(from, tx.Nonce)
		case held:
			var h Held
			errors.As(err, &h)
			p.keepHeld(from, tx.Nonce, false, h)
		}
		return hash, err
	}
	for attempt := 0; ; attempt++ {
		nonce, err := p.nonces.reserve(ctx, from)
		if err != nil {
			return [32]byte{}, err
		}
		b.Nonce = &nonce
		tx, err := build(b)
		if err != nil {
			p.nonces.done(from, nonce, unused)
			return [32]byte{}, err
		}
		hash, o, err := p.signAndSend(ctx, from, tx)
		if o == held {
			var h Held
			errors.As(err, &h)
			p.keepHeld(from, nonce, true, h)
			return hash, err
		}
		p.nonces.done(from, nonce, o)
		if o == taken && attempt == 0 {
			p.log.Info("ethproxy: nonce used already, retrying with a fresh one", "from", from.Hex(), "nonce", nonce)
			continue
		}
		return hash, err
	}
}

// signAndSend signs tx and sends it; o says what became of its nonce.
// A transaction that waits for approvals is not sent: o is held and err
// is the signer's, which implements [Held].
func (p *Proxy) signAndSend(ctx context.Context, from ethtx.Address, tx *ethtx.Tx) ([32]byte, outcome, error) {
	signed, err := p.signer.SignTransaction(ctx, from, tx)
	if err != nil {
		var h Held
		if errors.As(err, &h) {
			return [32]byte{}, held, err
		}
		return [32]byte{}, unused, fmt.Errorf("ethproxy: sign: %w", err)
	}
	return p.broadcast(ctx, signed)
}

// broadcast sends a signed transaction with eth_sendRawTransaction; o says
// what became of its nonce.
func (p *Proxy) broadcast(ctx context.Context, signed []byte) ([32]byte, outcome, error) {
	want := ethtx.TransactionHash(signed)
	res, err := p.up.call(ctx, "eth_sendRawTransaction", params(fmt.Sprintf("0x%x", signed)))
	if err != nil {
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) {
			// Whether the node took it is unknown.
			return [32]byte{}, unknown, fmt.Errorf("ethproxy: send: %w", err)
		}
		switch classify(rpcErr.Message) {
		case sent:
			p.log.Info("ethproxy: node already has the transaction", "hash", fmt.Sprintf("0x%x", want))
			return want, sent, nil
		case taken:
			return [32]byte{}, taken, rpcErr
		}
		return [32]byte{}, unused, rpcErr
	}
	got, err := parseHash(res)
	if err != nil {
		return [32]byte{}, unknown, fmt.Errorf("%w: eth_sendRawTransaction: %v", ErrUpstream, err)
	}
	if got != want {
		return [32]byte{}, sent, jsonrpc.NewError(jsonrpc.CodeInternalError,
			fmt.Sprintf("ethproxy: the node answered hash 0x%x for the transaction whose hash is 0x%x", got, want), nil)
	}
	return got, sent, nil
}

// heldSend is a send that waits for approvals: its sender and nonce, and
// whether the nonce is the manager's (not the wallet's).
type heldSend struct {
	from    ethtx.Address
	nonce   uint64
	managed bool
	expires time.Time
}

// keepHeld records the send whose signer answered h, with nonce; a
// managed nonce stays reserved. Entries whose approval expired are
// dropped.
func (p *Proxy) keepHeld(from ethtx.Address, nonce uint64, managed bool, h Held) {
	id, expires := h.Approval()
	if managed {
		p.nonces.hold(from, nonce, id, expires)
	}
	p.hmu.Lock()
	defer p.hmu.Unlock()
	now := p.nonces.now()
	for k, v := range p.held {
		if !now.Before(v.expires) {
			delete(p.held, k)
		}
	}
	p.held[id] = heldSend{from: from, nonce: nonce, managed: managed, expires: expires}
	p.log.Info("ethproxy: the transaction waits for approvals; its nonce is held", "from", from.Hex(), "nonce", nonce, "approval_id", id)
}

// takeHeld returns and forgets the send held for approvalID.
func (p *Proxy) takeHeld(approvalID string) (heldSend, bool) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	h, ok := p.held[approvalID]
	delete(p.held, approvalID)
	return h, ok
}

// SendApproved sends the transaction of a send that waited for the
// approval approvalID, now approved and signed (signed, the bytes of tx
// signed by from), and returns its hash. The nonce the send held is then
// used, or, if the node refused the transaction, released (or the node
// asked) as after any send; a transaction the approvers approved cannot
// be signed again with another nonce, so a refusal is answered as is.
func (p *Proxy) SendApproved(ctx context.Context, approvalID string, from ethtx.Address, tx *ethtx.Tx, signed []byte) ([32]byte, error) {
	h, ok := p.takeHeld(approvalID)
	if !ok || h.from != from || h.nonce != tx.Nonce {
		// Not a send this proxy holds (its approval expired and the
		// nonce was released, or a wallet's eth_signTransaction): a
		// transaction with the caller's nonce.
		h = heldSend{from: from, nonce: tx.Nonce}
	}
	hash, o, err := p.broadcast(ctx, signed)
	switch {
	case h.managed:
		p.nonces.settle(from, h.nonce, approvalID, o)
	case o == sent || o == unknown:
		p.nonces.used(from, h.nonce)
	}
	if err == nil {
		p.log.Info("ethproxy: the approved transaction was sent", "from", from.Hex(), "nonce", tx.Nonce, "approval_id", approvalID)
	}
	return hash, err
}

// ApprovalEnded tells the proxy that the approval approvalID ended
// without a signature (rejected, expired, or forgotten by the signer):
// the nonce its send held is released, to be handed out again lowest
// first. An id the proxy does not hold is ignored.
func (p *Proxy) ApprovalEnded(approvalID string) {
	h, ok := p.takeHeld(approvalID)
	if !ok || !h.managed {
		return
	}
	p.nonces.settle(h.from, h.nonce, approvalID, unused)
	p.log.Info("ethproxy: the approval ended without a signature; its nonce is released", "from", h.from.Hex(), "nonce", h.nonce, "approval_id", approvalID)
}

// classify reads a node's refusal of eth_sendRawTransaction: taken when
// the nonce is used already (go-ethereum, Erigon, Reth: "nonce too low",
// "replacement transaction underpriced"; Besu: NONCE_TOO_LOW,
// REPLACEMENT_UNDERPRICED; Nethermind: OldNonce, ReplacementNotAllowed),
// sent when the node has this transaction already ("already known",
// "known transaction", Nethermind's AlreadyKnown), else unused.
func classify(message string) outcome {
	m := strings.ToLower(message)
	for _, s := range []string{"already known", "known transaction", "alreadyknown", "known_transaction"} {
		if strings.Contains(m, s) {
			return sent
		}
	}
	for _, s := range []string{"nonce too low", "nonce_too_low", "oldnonce", "replacement transaction underpriced", "replacement_underpriced", "replacementnotallowed"} {
		if strings.Contains(m, s) {
			return taken
		}
	}
	return unused
}

func parseHash(raw json.RawMessage) ([32]byte, error) {
	var s string
	var h [32]byte
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return h, errors.New("hash is not a string")
	}
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok || len(digits) != 64 {
		return h, fmt.Errorf("hash %.80q is not 32 bytes of 0x-prefixed hex", s)
	}
	for i := range h {
		hi, lo := unhex(digits[2*i]), unhex(digits[2*i+1])
		if hi > 15 || lo > 15 {
			return h, fmt.Errorf("hash %.80q is not hexadecimal", s)
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}
