package ethproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/ethtx"
)

// fakeSigner signs with a local key, as the agent signs through the
// enclave, and records what it signed by transaction hash.
type fakeSigner struct {
	key  *secp256k1.PrivateKey
	addr ethtx.Address

	mu     sync.Mutex
	signed map[[32]byte]*ethtx.Tx
	// refuse, when set, refuses the next signatures it returns an error for.
	refuse func(tx *ethtx.Tx) error
}

func newFakeSigner(seed byte) *fakeSigner {
	var k [32]byte
	k[31] = seed
	k[0] = 0x42
	key := secp256k1.PrivKeyFromBytes(k[:])
	return &fakeSigner{key: key, addr: ethtx.PubkeyToAddress(key.PubKey()), signed: map[[32]byte]*ethtx.Tx{}}
}

func (s *fakeSigner) Accounts(context.Context) ([]ethtx.Address, error) {
	return []ethtx.Address{s.addr}, nil
}

func (s *fakeSigner) SignTransaction(_ context.Context, from ethtx.Address, tx *ethtx.Tx) ([]byte, error) {
	if from != s.addr {
		return nil, fmt.Errorf("fake signer: not my address %s", from)
	}
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	if refuse != nil {
		if err := refuse(tx); err != nil {
			return nil, err
		}
	}
	raw := tx.EncodeSigned(ethtx.Sign(s.key, tx.SigningHash()))
	s.mu.Lock()
	s.signed[ethtx.TransactionHash(raw)] = tx
	s.mu.Unlock()
	return raw, nil
}

func (s *fakeSigner) lookup(raw []byte) *ethtx.Tx {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed[ethtx.TransactionHash(raw)]
}

// fakeNode is an Ethereum node with one pool: transactions of the fake
// signer by nonce. The pending count is the first nonce without a
// transaction (from mined, which starts at base).
type fakeNode struct {
	t      *testing.T
	signer *fakeSigner
	srv    *httptest.Server

	mu       sync.Mutex
	chainID  *big.Int
	baseFee  *big.Int // nil: before London
	tip      *big.Int // nil: eth_maxPriorityFeePerGas not supported
	gasPrice *big.Int
	blobFee  *big.Int
	estimate uint64
	base     uint64 // transactions mined before the test
	pool     map[uint64][32]byte
	calls    []call
	// held, when set, receives a value when eth_sendRawTransaction
	// arrives, which then waits for the client to go away (a slow node).
	held chan struct{}
	// hook, when set, answers a call instead of the node.
	hook func(method string, params json.RawMessage) (any, *jsonrpc.Error, bool)
}

type call struct {
	method string
	params json.RawMessage
}

func newFakeNode(t *testing.T, s *fakeSigner) *fakeNode {
	n := &fakeNode{
		t: t, signer: s,
		chainID: big.NewInt(1337), baseFee: big.NewInt(1000), tip: big.NewInt(7), gasPrice: big.NewInt(1500), blobFee: big.NewInt(3),
		estimate: 21000, base: 5, pool: map[uint64][32]byte{},
	}
	n.srv = httptest.NewServer(jsonrpc.NewHTTPHandler(n.dispatch))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) pending() uint64 {
	c := n.base
	for {
		if _, ok := n.pool[c]; !ok {
			return c
		}
		c++
	}
}

func quantity(x uint64) string { return fmt.Sprintf("0x%x", x) }

func (n *fakeNode) dispatch(ctx context.Context, r jsonrpc.Request) (any, *jsonrpc.Error) {
	n.mu.Lock()
	n.calls = append(n.calls, call{r.Method, r.Params})
	hook, held := n.hook, n.held
	n.mu.Unlock()
	if held != nil && r.Method == "eth_sendRawTransaction" {
		held <- struct{}{}
		<-ctx.Done()
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "client gone", nil)
	}
	if hook != nil {
		if res, err, ok := hook(r.Method, r.Params); ok {
			return res, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch r.Method {
	case "eth_chainId":
		return "0x" + n.chainID.Text(16), nil
	case "eth_getBlockByNumber":
		block := map[string]any{"number": "0x10"}
		if n.baseFee != nil {
			block["baseFeePerGas"] = "0x" + n.baseFee.Text(16)
		}
		return block, nil
	case "eth_maxPriorityFeePerGas":
		if n.tip == nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the method eth_maxPriorityFeePerGas does not exist/is not available", nil)
		}
		return "0x" + n.tip.Text(16), nil
	case "eth_gasPrice":
		return "0x" + n.gasPrice.Text(16), nil
	case "eth_blobBaseFee":
		return "0x" + n.blobFee.Text(16), nil
	case "eth_estimateGas":
		return quantity(n.estimate), nil
	case "eth_getTransactionCount":
		var p []string
		if err := json.Unmarshal(r.Params, &p); err != nil || len(p) != 2 || p[1] != "pending" || p[0] != hexAddress(n.signer.addr) {
			n.t.Errorf("eth_getTransactionCount params %s", r.Params)
		}
		return quantity(n.pending()), nil
	case "eth_sendRawTransaction":
		var p []string
		if err := json.Unmarshal(r.Params, &p); err != nil || len(p) != 1 {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "bad params", nil)
		}
		raw, err := hexDecode(p[0])
		if err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, err.Error(), nil)
		}
		tx := n.signer.lookup(raw)
		if tx == nil {
			return nil, jsonrpc.NewError(-32000, "invalid sender", nil)
		}
		hash := ethtx.TransactionHash(raw)
		if tx.ChainID.Cmp(n.chainID) != 0 {
			return nil, jsonrpc.NewError(-32000, "invalid chain id", nil)
		}
		if tx.Nonce < n.base {
			return nil, jsonrpc.NewError(-32000, fmt.Sprintf("nonce too low: next nonce %d, tx nonce %d", n.pending(), tx.Nonce), nil)
		}
		if old, ok := n.pool[tx.Nonce]; ok {
			if old == hash {
				return nil, jsonrpc.NewError(-32000, "already known", nil)
			}
			return nil, jsonrpc.NewError(-32000, "replacement transaction underpriced", nil)
		}
		n.pool[tx.Nonce] = hash
		return fmt.Sprintf("0x%x", hash), nil
	case "eth_blockNumber":
		return "0x10", nil
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the method "+r.Method+" does not exist/is not available", nil)
}

func hexDecode(s string) ([]byte, error) {
	if len(s) < 2 || s[:2] != "0x" || len(s)%2 != 0 {
		return nil, errors.New("bad hex")
	}
	b := make([]byte, (len(s)-2)/2)
	for i := range b {
		hi, lo := unhex(s[2+2*i]), unhex(s[3+2*i])
		if hi > 15 || lo > 15 {
			return nil, errors.New("bad hex")
		}
		b[i] = hi<<4 | lo
	}
	return b, nil
}

// count returns how often method was called.
func (n *fakeNode) count(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, cl := range n.calls {
		if cl.method == method {
			c++
		}
	}
	return c
}

// last returns the params of the last call of method.
func (n *fakeNode) last(method string) json.RawMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.calls) - 1; i >= 0; i-- {
		if n.calls[i].method == method {
			return n.calls[i].params
		}
	}
	return nil
}

// drop removes the transaction with nonce from the pool.
func (n *fakeNode) drop(nonce uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pool, nonce)
}

// nonces returns the nonces in the pool.
func (n *fakeNode) poolNonces() map[uint64]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := map[uint64]bool{}
	for k := range n.pool {
		m[k] = true
	}
	return m
}

// start returns a started proxy to n.
func start(t *testing.T, n *fakeNode) *Proxy {
	t.Helper()
	p, err := New(Options{Upstream: n.srv.URL}, n.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}
