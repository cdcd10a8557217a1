package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/ethtx"
)

// Proxy is what the agent needs of an Ethereum node's proxy (package
// agent/ethproxy's *Proxy): filling in transactions, sending them, and
// forwarding the methods the agent does not serve. Errors that are (or
// wrap) a *jsonrpc.Error reach the wallet as that error.
type Proxy interface {
	// ChainID is the node's chain id.
	ChainID() *big.Int
	// Fill fills in what a transaction lacks (nonce, gas, fees, chain id)
	// from the node, without reserving the nonce.
	Fill(ctx context.Context, a *txargs.Args) (*ethtx.Tx, error)
	// SendTransaction fills in, signs (through the agent, as a Signer)
	// and sends a transaction, returning its hash.
	SendTransaction(ctx context.Context, a *txargs.Args) ([32]byte, error)
	// Forward sends a request to the node and returns its answer.
	Forward(ctx context.Context, r jsonrpc.Request) (json.RawMessage, *jsonrpc.Error)
	// SendApproved sends the signed transaction tx (signed by from) of a
	// send that waited for the approval approvalID, once approved, and
	// returns its hash; the nonce the send held is then used.
	SendApproved(ctx context.Context, approvalID string, from ethtx.Address, tx *ethtx.Tx, signed []byte) ([32]byte, error)
	// ApprovalEnded says that the approval approvalID ended without a
	// signature: the nonce a send held for it is released.
	ApprovalEnded(approvalID string)
}

// txFromParam decodes a transaction object and returns its sender and the
// transaction to sign: complete as given, or filled in by the proxy.
func (a *Agent) txFromParam(ctx context.Context, raw json.RawMessage) (ethtx.Address, *ethtx.Tx, *jsonrpc.Error) {
	args, err := txargs.Parse(raw)
	if err != nil {
		return ethtx.Address{}, nil, invalidParams("transaction: %s", strings.TrimPrefix(err.Error(), "txargs: "))
	}
	if args.From == nil {
		return ethtx.Address{}, nil, invalidParams(`transaction: "from" is required`)
	}
	from := *args.From
	if a.cfg.Proxy != nil {
		if cid := a.cfg.ChainID; cid != nil {
			if node := a.cfg.Proxy.ChainID(); node == nil || node.Cmp(cid) != 0 {
				return from, nil, invalidParams("the agent's chain id %s (--chain-id) is not the node's (%s): no transaction is signed", cid, node)
			}
		}
		tx, err := a.cfg.Proxy.Fill(ctx, args)
		if err != nil {
			return from, nil, rpcError(err)
		}
		return from, tx, nil
	}
	if cid := a.cfg.ChainID; cid != nil {
		// As Clef with --chainid: an absent chain id is the agent's, and
		// a transaction for another chain is refused.
		if args.ChainID != nil && args.ChainID.Cmp(cid) != 0 {
			return from, nil, invalidParams("transaction: chainId %s is not the agent's chain id %s (--chain-id)", args.ChainID, cid)
		}
		b := *args
		b.ChainID = new(big.Int).Set(cid)
		args = &b
	}
	if missing := args.Missing(); len(missing) > 0 {
		hint := "the agent fills them in only with an --upstream node"
		switch {
		case slices.Equal(missing, []string{"chainId"}):
			hint = "start the agent with --chain-id N, as Clef's --chainid, or with an --upstream node; or send chainId"
		case slices.Contains(missing, "chainId"):
			hint += "; chainId also with --chain-id N"
		}
		return from, nil, invalidParams("transaction: missing %s (%s)", strings.Join(missing, ", "), hint)
	}
	tx, err := args.Tx()
	if err != nil {
		return from, nil, invalidParams("transaction: %s", strings.TrimPrefix(err.Error(), "txargs: "))
	}
	return from, tx, nil
}

// ethSignTransaction: eth_signTransaction [tx] → the signed transaction's
// bytes, 0x-hex (what eth_sendRawTransaction takes).
func (a *Agent) ethSignTransaction(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	from, tx, jerr := a.txFromParam(ctx, p[0])
	if jerr != nil {
		return nil, jerr
	}
	return a.sign(ctx, from, txRequest(tx), rawResult, nil)
}

// accountSignTransaction: Clef's account_signTransaction [tx,
// methodSelector?] → {"raw", "tx"}. The method selector is a hint for
// Clef's user interface; the enclave decodes the calldata itself, so it is
// checked to be a string and otherwise ignored.
func (a *Agent) accountSignTransaction(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	if len(p) == 2 && string(p[1]) != "null" {
		if _, jerr := paramString(p[1], "methodSelector"); jerr != nil {
			return nil, jerr
		}
	}
	from, tx, jerr := a.txFromParam(ctx, p[0])
	if jerr != nil {
		return nil, jerr
	}
	finish := func(_ context.Context, resp *api.SignResponse, sig ethtx.Signature) (any, *jsonrpc.Error) {
		js, err := txargs.SignedJSON(tx, sig)
		if err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "agent: encoding the signed transaction: "+err.Error(), nil)
		}
		return clefSignTxResult{Raw: resp.SignedTransaction, Tx: js}, nil
	}
	return a.sign(ctx, from, txRequest(tx), finish, nil)
}

// clefSignTxResult is Clef's (and go-ethereum's) SignTransactionResult.
type clefSignTxResult struct {
	Raw string          `json:"raw"`
	Tx  json.RawMessage `json:"tx"`
}

// sendTransaction: eth_sendTransaction [tx] through the proxy → the
// transaction's hash.
func (a *Agent) sendTransaction(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	args, err := txargs.Parse(p[0])
	if err != nil {
		return nil, invalidParams("transaction: %s", strings.TrimPrefix(err.Error(), "txargs: "))
	}
	if args.From == nil {
		return nil, invalidParams(`transaction: "from" is required`)
	}
	infoFrom(ctx).account = args.From.Hex()
	h, err := a.cfg.Proxy.SendTransaction(ctx, args)
	if err != nil {
		return nil, rpcError(err)
	}
	return "0x" + hex.EncodeToString(h[:]), nil
}

// SignTransaction signs tx as from through the enclave and returns the
// signed transaction's bytes, checked against the attested enclave: the
// agent is the proxy's Signer. Errors are *jsonrpc.Error, or wrap one. A
// transaction that waits for approvals returns CodeApprovalPending in an
// error that implements ethproxy.Held (the proxy holds its nonce); once
// approved, nitrosign_approval [id] sends it with Proxy.SendApproved and
// answers its hash; once rejected or expired, the agent tells the proxy
// (Proxy.ApprovalEnded).
func (a *Agent) SignTransaction(ctx context.Context, from ethtx.Address, tx *ethtx.Tx) ([]byte, error) {
	later := func(id string) finishFunc {
		return func(ctx context.Context, resp *api.SignResponse, _ ethtx.Signature) (any, *jsonrpc.Error) {
			if a.cfg.Proxy == nil {
				return resp.SignedTransaction, nil
			}
			raw, _ := hex.DecodeString(strings.TrimPrefix(resp.SignedTransaction, "0x")) // checked by CheckRequestSignature
			h, err := a.cfg.Proxy.SendApproved(ctx, id, from, tx, raw)
			if err != nil {
				return nil, rpcError(err)
			}
			return "0x" + hex.EncodeToString(h[:]), nil
		}
	}
	res, jerr := a.sign(ctx, from, txRequest(tx), rawResult, later)
	if jerr != nil {
		if d, ok := jerr.Data.(PendingData); ok && jerr.Code == jsonrpc.CodeApprovalPending {
			return nil, &heldError{err: jerr, id: d.ApprovalID, expires: time.UnixMilli(d.ExpiresAtMS)}
		}
		return nil, jerr
	}
	raw, _ := hex.DecodeString(strings.TrimPrefix(res.(string), "0x")) // checked by CheckRequestSignature
	return raw, nil
}

// heldError is the CodeApprovalPending answer of SignTransaction: it
// implements ethproxy.Held, so that the proxy holds the nonce, and
// unwraps to the *jsonrpc.Error the wallet is answered.
type heldError struct {
	err     *jsonrpc.Error
	id      string
	expires time.Time
}

func (e *heldError) Error() string                 { return e.err.Error() }
func (e *heldError) Unwrap() error                 { return e.err }
func (e *heldError) Approval() (string, time.Time) { return e.id, e.expires }

func txRequest(tx *ethtx.Tx) *api.SignRequest {
	return &api.SignRequest{EthTransaction: api.NewEthTransaction(tx.EncodeUnsigned())}
}

// rawResult is the signed transaction's 0x-hex, as the host sent it (and
// CheckRequestSignature compared with the transaction and signature).
func rawResult(_ context.Context, resp *api.SignResponse, _ ethtx.Signature) (any, *jsonrpc.Error) {
	return resp.SignedTransaction, nil
}

// rpcError returns err as the wallet's error: the *jsonrpc.Error it is or
// wraps, else an internal error.
func rpcError(err error) *jsonrpc.Error {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return je
	}
	return jsonrpc.NewError(jsonrpc.CodeInternalError, "agent: "+err.Error(), nil)
}
