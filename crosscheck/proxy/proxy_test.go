package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/nitrosign/nitrosign/agent/ethproxy"
	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/crosscheck/internal/simnode"
	"github.com/nitrosign/nitrosign/ethtx"
)

// keySigner signs with a local key, as the agent signs through the
// enclave; it checks its own signature as the agent does.
type keySigner struct {
	key  *secp256k1.PrivateKey
	addr ethtx.Address
}

func newKeySigner(seed byte) *keySigner {
	var k [32]byte
	k[0], k[31] = 0x5e, seed
	key := secp256k1.PrivKeyFromBytes(k[:])
	return &keySigner{key: key, addr: ethtx.PubkeyToAddress(key.PubKey())}
}

func (s *keySigner) Accounts(context.Context) ([]ethtx.Address, error) {
	return []ethtx.Address{s.addr}, nil
}

func (s *keySigner) SignTransaction(_ context.Context, from ethtx.Address, tx *ethtx.Tx) ([]byte, error) {
	if from != s.addr {
		return nil, fmt.Errorf("not my account %s", from)
	}
	h := tx.SigningHash()
	sig := ethtx.Sign(s.key, h)
	if got, err := ethtx.RecoverAddress(h, sig); err != nil || got != s.addr {
		return nil, fmt.Errorf("signature check: %v", err)
	}
	return tx.EncodeSigned(sig), nil
}

type env struct {
	node   *simnode.Node
	proxy  *ethproxy.Proxy
	signer *keySigner
}

func setup(t *testing.T) *env {
	t.Helper()
	s := newKeySigner(1)
	alloc := types.GenesisAlloc{common.Address(s.addr): {Balance: new(big.Int).Mul(big.NewInt(1000), simnode.Ether)}}
	n := simnode.Start(t, alloc)
	p, err := ethproxy.New(ethproxy.Options{Upstream: n.URL}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.ChainID().Cmp(n.ChainID) != 0 {
		t.Fatalf("proxy chain id %v, node %v", p.ChainID(), n.ChainID)
	}
	return &env{node: n, proxy: p, signer: s}
}

const dest = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"

func (e *env) args(t *testing.T, members string) *txargs.Args {
	t.Helper()
	a, err := txargs.Parse([]byte(fmt.Sprintf(`{"from":"%s","to":"%s"%s}`, e.signer.addr.Hex(), dest, members)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mined checks that the transaction with hash is in a block, succeeded,
// was sent by the signer's address, and returns it.
func (e *env) mined(t *testing.T, hash [32]byte) *types.Transaction {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := e.node.Receipt(ctx, common.Hash(hash))
	if err != nil {
		t.Fatalf("receipt of %x: %v", hash, err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transaction %x failed", hash)
	}
	tx, _, err := e.node.Backend.Client().TransactionByHash(ctx, common.Hash(hash))
	if err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil || from != common.Address(e.signer.addr) {
		t.Fatalf("sender %v, %v; want %v", from, err, e.signer.addr)
	}
	return tx
}

func TestSendMined(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name    string
		members string
		typ     uint8
	}{
		{"eip1559 filled", `,"value":"0xde0b6b3a7640000"`, types.DynamicFeeTxType},
		{"legacy filled", `,"value":"0x1","type":"0x0"`, types.LegacyTxType},
		{"legacy gasPrice", `,"gasPrice":"0x77359400"`, types.LegacyTxType},
		{"eip2930", `,"gasPrice":"0x77359400","accessList":[{"address":"` + dest + `","storageKeys":["0x` + fmt.Sprintf("%064x", 1) + `"]}]`, types.AccessListTxType},
		{"eip1559 with data", `,"input":"0x1234","maxPriorityFeePerGas":"0x3b9aca00"`, types.DynamicFeeTxType},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := e.proxy.SendTransaction(context.Background(), e.args(t, tt.members))
			if err != nil {
				t.Fatal(err)
			}
			e.node.Mine()
			tx := e.mined(t, hash)
			if tx.Type() != tt.typ || tx.Nonce() != uint64(i) {
				t.Errorf("type %d nonce %d, want %d and %d", tx.Type(), tx.Nonce(), tt.typ, i)
			}
		})
	}
}

// TestSignTransactionFilled: Fill's transaction, signed and sent with
// eth_sendRawTransaction through Forward, is mined.
func TestSignTransactionFilled(t *testing.T) {
	e := setup(t)
	tx, err := e.proxy.Fill(context.Background(), e.args(t, `,"value":"0x2"`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.signer.SignTransaction(context.Background(), e.signer.addr, tx)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal([]string{fmt.Sprintf("0x%x", raw)})
	res, rerr := e.proxy.Forward(context.Background(), jsonrpc.Request{Method: "eth_sendRawTransaction", Params: params, ID: json.RawMessage("1")})
	if rerr != nil {
		t.Fatal(rerr)
	}
	var hash common.Hash
	if err := json.Unmarshal(res, &hash); err != nil || hash != common.Hash(ethtx.TransactionHash(raw)) {
		t.Fatalf("hash %s, %v", res, err)
	}
	e.node.Mine()
	e.mined(t, hash)
	// The node's own errors pass through with their code.
	_, rerr = e.proxy.Forward(context.Background(), jsonrpc.Request{Method: "eth_sendRawTransaction", Params: params, ID: json.RawMessage("2")})
	if rerr == nil || rerr.Message == "" {
		t.Fatalf("resend of a mined transaction: %v", rerr)
	}
	t.Logf("node refuses the resend: %d %s", rerr.Code, rerr.Message)
}

// TestConcurrentSendsMined: 50 concurrent sends are all mined, with
// consecutive nonces.
func TestConcurrentSendsMined(t *testing.T) {
	e := setup(t)
	const count = 50
	hashes := make([][32]byte, count)
	var wg sync.WaitGroup
	errs := make([]error, count)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hashes[i], errs[i] = e.proxy.SendTransaction(context.Background(), e.args(t, `,"value":"0x1"`))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.node.Mine()
	seen := map[uint64]bool{}
	for _, h := range hashes {
		seen[e.mined(t, h).Nonce()] = true
	}
	for i := range uint64(count) {
		if !seen[i] {
			t.Errorf("nonce %d not mined", i)
		}
	}
}

// TestDroppedRecovered: transactions dropped from the pool leave a gap
// that the next send fills, and every later send is mined.
func TestDroppedRecovered(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	first, err := e.proxy.SendTransaction(ctx, e.args(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	e.node.Mine()
	e.mined(t, first)
	for range 2 { // nonces 1 and 2, then dropped
		if _, err := e.proxy.SendTransaction(ctx, e.args(t, "")); err != nil {
			t.Fatal(err)
		}
	}
	e.node.Drop()
	var hashes [][32]byte
	for range 3 {
		h, err := e.proxy.SendTransaction(ctx, e.args(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	e.node.Mine()
	for i, h := range hashes {
		if tx := e.mined(t, h); tx.Nonce() != uint64(1+i) {
			t.Errorf("send %d after the drop: nonce %d, want %d", i, tx.Nonce(), 1+i)
		}
	}
}

// TestAutoMine: with blocks sealed as transactions arrive, sends from
// many goroutines keep being mined.
func TestAutoMine(t *testing.T) {
	e := setup(t)
	e.node.AutoMine(10 * time.Millisecond)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				h, err := e.proxy.SendTransaction(context.Background(), e.args(t, ""))
				if err != nil {
					t.Error(err)
					return
				}
				e.mined(t, h)
			}
		}()
	}
	wg.Wait()
	n, err := e.node.Backend.Client().NonceAt(context.Background(), common.Address(e.signer.addr), nil)
	if err != nil || n != 10 {
		t.Errorf("account nonce %d, %v; want 10", n, err)
	}
}

// TestFillMatchesGeth: Fill completes a transaction object exactly as the
// node's own eth_fillTransaction (go-ethereum's setDefaults and
// ToTransaction) does: nonce, gas estimate, fee defaults, chain id, type.
func TestFillMatchesGeth(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	// A block with a transaction, so the node has fee history.
	h, err := e.proxy.SendTransaction(ctx, e.args(t, `,"value":"0x1"`))
	if err != nil {
		t.Fatal(err)
	}
	e.node.Mine()
	e.mined(t, h)
	c, err := rpc.DialHTTP(e.node.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct{ name, members string }{
		{"nothing", ``},
		{"value and data", `,"value":"0x10","data":"0xdeadbeef"`},
		{"gas price", `,"gasPrice":"0x77359400"`},
		{"max fee only", `,"maxFeePerGas":"0x77359400"`},
		{"tip only", `,"maxPriorityFeePerGas":"0x2"`},
		{"both fees", `,"maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x2"`},
		{"access list", `,"accessList":[{"address":"` + dest + `","storageKeys":[]}]`},
		{"gas and nonce", `,"gas":"0x7530","nonce":"0x9"`},
		{"chain id", `,"chainId":"0x539"`},
		// Not compared: gasPrice with an access list, where go-ethereum's
		// node wallet builds a legacy transaction without the list and
		// txargs an EIP-2930 one (see txargs' package documentation).
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fmt.Sprintf(`{"from":"%s","to":"%s"%s}`, e.signer.addr.Hex(), dest, tt.members)
			a, err := txargs.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			ours, err := e.proxy.Fill(ctx, a)
			if err != nil {
				t.Fatalf("Fill: %v", err)
			}
			var res struct {
				Raw hexutil.Bytes `json:"raw"`
			}
			if err := c.CallContext(ctx, &res, "eth_fillTransaction", json.RawMessage(raw)); err != nil {
				t.Fatalf("eth_fillTransaction: %v", err)
			}
			var geth types.Transaction
			if err := geth.UnmarshalBinary(res.Raw); err != nil {
				t.Fatal(err)
			}
			signer := types.LatestSignerForChainID(e.node.ChainID)
			if ours.Type == ethtx.TypeLegacy {
				signer = types.NewEIP155Signer(e.node.ChainID)
			}
			if ours.SigningHash() != [32]byte(signer.Hash(&geth)) {
				g, _ := geth.MarshalJSON()
				t.Errorf("Fill differs from eth_fillTransaction:\nours %+v\ngeth %s", ours, g)
			}
		})
	}
}
