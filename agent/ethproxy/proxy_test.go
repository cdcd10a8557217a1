package ethproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/ethtx"
)

const to = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"

func args(t *testing.T, from ethtx.Address, members string) *txargs.Args {
	t.Helper()
	js := fmt.Sprintf(`{"from":"%s"`, hexAddress(from))
	if members != "" {
		js += "," + members
	}
	a, err := txargs.Parse([]byte(js + "}"))
	if err != nil {
		t.Fatalf("txargs.Parse(%s): %v", js, err)
	}
	return a
}

func rpcCode(err error) int {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestNew(t *testing.T) {
	s := newFakeSigner(1)
	for _, tt := range []struct{ name, url string }{
		{"empty", ""},
		{"no scheme", "localhost:8545"},
		{"ws", "ws://localhost:8546"},
		{"no host", "http://"},
		{"bad with key", "http://%zz/v3/SECRETKEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Upstream: tt.url}, s)
			if err == nil {
				t.Fatal("New accepted the URL")
			}
			if strings.Contains(err.Error(), "SECRETKEY") {
				t.Errorf("error shows the URL: %v", err)
			}
		})
	}
	if _, err := New(Options{Upstream: "http://localhost:8545"}, nil); err == nil {
		t.Error("New accepted a nil signer")
	}
}

func TestStart(t *testing.T) {
	s := newFakeSigner(1)
	tests := []struct {
		name string
		hook func(string, json.RawMessage) (any, *jsonrpc.Error, bool)
		want string
	}{
		{"ok", nil, ""},
		{"node error", func(string, json.RawMessage) (any, *jsonrpc.Error, bool) {
			return nil, jsonrpc.NewError(-32000, "syncing", nil), true
		}, "syncing"},
		{"zero", func(string, json.RawMessage) (any, *jsonrpc.Error, bool) { return "0x0", nil, true }, "chain id is 0"},
		{"not a quantity", func(string, json.RawMessage) (any, *jsonrpc.Error, bool) { return 1, nil, true }, "not a quantity"},
		{"leading zero", func(string, json.RawMessage) (any, *jsonrpc.Error, bool) { return "0x01", nil, true }, "leading zeros"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t, s)
			n.hook = tt.hook
			p, err := New(Options{Upstream: n.srv.URL}, s)
			if err != nil {
				t.Fatal(err)
			}
			if p.ChainID() != nil {
				t.Error("chain id before Start")
			}
			err = p.Start(context.Background())
			if tt.want == "" {
				if err != nil || p.ChainID().Int64() != 1337 {
					t.Fatalf("Start: %v, chain id %v", err, p.ChainID())
				}
				if got := string(n.last("eth_chainId")); got != "[]" {
					t.Errorf("eth_chainId params %s, want []", got)
				}
				p.ChainID().SetInt64(1) // a copy
				if p.ChainID().Int64() != 1337 {
					t.Error("ChainID returned the proxy's own value")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUnreachableHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/v3/SECRETKEY?key=SECRETKEY"
	srv.Close()
	p, err := New(Options{Upstream: url}, newFakeSigner(1))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(context.Background())
	if err == nil || !errors.Is(err, ErrUpstream) || strings.Contains(err.Error(), "SECRETKEY") {
		t.Fatalf("Start: %v: want ErrUpstream without the URL", err)
	}
	p.chainID = big.NewInt(1)
	_, rerr := p.Forward(context.Background(), jsonrpc.Request{Method: "eth_blockNumber", ID: json.RawMessage("1")})
	if rerr == nil || rerr.Code != jsonrpc.CodeInternalError || strings.Contains(rerr.Message, "SECRETKEY") {
		t.Fatalf("Forward: %v", rerr)
	}
}

func TestFill(t *testing.T) {
	s := newFakeSigner(1)
	toAddr, _ := ethtx.ParseAddress(to)
	tests := []struct {
		name    string
		setup   func(n *fakeNode)
		members string
		check   func(t *testing.T, tx *ethtx.Tx, n *fakeNode)
		code    int
		err     string
	}{
		{"1559 defaults", nil, `"to":"` + to + `","value":"0x1"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeDynamicFee || tx.MaxPriorityFeePerGas.Int64() != 7 || tx.MaxFeePerGas.Int64() != 2*1000+7 {
				t.Errorf("fees %v %v %v", tx.Type, tx.MaxPriorityFeePerGas, tx.MaxFeePerGas)
			}
			if tx.GasLimit != 21000 || tx.Nonce != 5 || tx.ChainID.Int64() != 1337 || *tx.To != toAddr || tx.Value.Int64() != 1 {
				t.Errorf("tx %+v", tx)
			}
			var p []map[string]any
			if err := json.Unmarshal(n.last("eth_estimateGas"), &p); err != nil || len(p) != 1 {
				t.Fatalf("estimate params %s", n.last("eth_estimateGas"))
			}
			want := map[string]any{"from": hexAddress(s.addr), "to": to, "value": "0x1", "data": "0x", "maxFeePerGas": "0x7d7", "maxPriorityFeePerGas": "0x7"}
			if fmt.Sprint(p[0]) != fmt.Sprint(want) {
				t.Errorf("estimate params %v, want %v", p[0], want)
			}
		}, 0, ""},
		{"tip fallback", func(n *fakeNode) { n.tip = nil }, `"to":"` + to + `","gas":"0x5208"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.MaxPriorityFeePerGas.Int64() != 500 || tx.MaxFeePerGas.Int64() != 2500 {
				t.Errorf("fees %v %v", tx.MaxPriorityFeePerGas, tx.MaxFeePerGas)
			}
			if n.count("eth_estimateGas") != 0 {
				t.Error("estimated a given gas")
			}
		}, 0, ""},
		{"tip fallback clamps", func(n *fakeNode) { n.tip, n.gasPrice = nil, big.NewInt(10) }, `"to":"` + to + `","gas":"0x5208"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.MaxPriorityFeePerGas.Sign() != 0 || tx.MaxFeePerGas.Int64() != 2000 {
				t.Errorf("fees %v %v", tx.MaxPriorityFeePerGas, tx.MaxFeePerGas)
			}
		}, 0, ""},
		{"pre-London", func(n *fakeNode) { n.baseFee = nil }, `"to":"` + to + `"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeLegacy || tx.GasPrice.Int64() != 1500 {
				t.Errorf("tx %v %v", tx.Type, tx.GasPrice)
			}
		}, 0, ""},
		{"pre-London with 1559 fee", func(n *fakeNode) { n.baseFee = nil }, `"to":"` + to + `","maxFeePerGas":"0x10"`, nil, jsonrpc.CodeInvalidParams, "no base fee"},
		{"gasPrice kept legacy", nil, `"to":"` + to + `","gasPrice":"0x9"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeLegacy || tx.GasPrice.Int64() != 9 || n.count("eth_getBlockByNumber") != 0 {
				t.Errorf("tx %v %v", tx.Type, tx.GasPrice)
			}
		}, 0, ""},
		{"gasPrice with access list", nil, `"to":"` + to + `","gasPrice":"0x9","accessList":[]`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeAccessList {
				t.Errorf("type %v", tx.Type)
			}
		}, 0, ""},
		{"access list alone becomes 1559", nil, `"to":"` + to + `","accessList":[]`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeDynamicFee {
				t.Errorf("type %v", tx.Type)
			}
		}, 0, ""},
		{"explicit legacy type", nil, `"to":"` + to + `","type":"0x0"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeLegacy || tx.GasPrice.Int64() != 1500 {
				t.Errorf("tx %v %v", tx.Type, tx.GasPrice)
			}
		}, 0, ""},
		{"blob fee", nil, `"to":"` + to + `","blobVersionedHashes":["0x01` + strings.Repeat("00", 31) + `"]`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Type != ethtx.TypeBlob || tx.MaxFeePerBlobGas.Int64() != 6 {
				t.Errorf("tx %v %v", tx.Type, tx.MaxFeePerBlobGas)
			}
		}, 0, ""},
		{"fees given", nil, `"to":"` + to + `","maxFeePerGas":"0x5","maxPriorityFeePerGas":"0x1"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.MaxFeePerGas.Int64() != 5 || n.count("eth_getBlockByNumber") != 0 {
				t.Errorf("tx %v", tx.MaxFeePerGas)
			}
		}, 0, ""},
		{"suggested tip above max fee", nil, `"to":"` + to + `","maxFeePerGas":"0x5"`, nil, jsonrpc.CodeInvalidParams, "maxFeePerGas (5) is below maxPriorityFeePerGas (7)"},
		{"nonce given", nil, `"to":"` + to + `","nonce":"0x63"`, func(t *testing.T, tx *ethtx.Tx, n *fakeNode) {
			if tx.Nonce != 99 || n.count("eth_getTransactionCount") != 0 {
				t.Errorf("nonce %d", tx.Nonce)
			}
		}, 0, ""},
		{"chain id matches", nil, `"to":"` + to + `","chainId":"0x539"`, nil, 0, ""},
		{"chain id mismatch", nil, `"to":"` + to + `","chainId":"0x1"`, nil, jsonrpc.CodeInvalidParams, "chainId 1 does not match the node's chain id 1337"},
		{"creation without code", nil, `"value":"0x1"`, nil, jsonrpc.CodeInvalidParams, "contract creation without code"},
		{"type conflict", nil, `"to":"` + to + `","type":"0x2","gasPrice":"0x1"`, nil, jsonrpc.CodeInvalidParams, "has no field gasPrice"},
		{"estimate refused by node", func(n *fakeNode) {
			n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
				if m == "eth_estimateGas" {
					return nil, jsonrpc.NewError(3, "execution reverted", "0x08c379a0"), true
				}
				return nil, nil, false
			}
		}, `"to":"` + to + `"`, nil, 3, "execution reverted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t, s)
			if tt.setup != nil {
				tt.setup(n)
			}
			p := start(t, n)
			a := args(t, s.addr, tt.members)
			before := *a
			tx, err := p.Fill(context.Background(), a)
			if fmt.Sprint(*a) != fmt.Sprint(before) {
				t.Errorf("Fill changed its argument")
			}
			if tt.err != "" {
				if err == nil || rpcCode(err) != tt.code || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Fill: %v (code %d), want %d %q", err, rpcCode(err), tt.code, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fill: %v", err)
			}
			if tt.check != nil {
				tt.check(t, tx, n)
			}
			if n.count("eth_sendRawTransaction") != 0 {
				t.Error("Fill sent")
			}
		})
	}
}

func TestFillFrom(t *testing.T) {
	s := newFakeSigner(1)
	p := start(t, newFakeNode(t, s))
	other := newFakeSigner(2)
	_, err := p.Fill(context.Background(), args(t, other.addr, `"to":"`+to+`"`))
	if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), other.addr.Hex()) {
		t.Errorf("unknown from: %v", err)
	}
	a, _ := txargs.Parse([]byte(`{"to":"` + to + `"}`))
	if _, err := p.Fill(context.Background(), a); rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), `"from" is required`) {
		t.Errorf("no from: %v", err)
	}
	// Fill reserves nothing: two fills, one nonce.
	t1, err1 := p.Fill(context.Background(), args(t, s.addr, `"to":"`+to+`"`))
	t2, err2 := p.Fill(context.Background(), args(t, s.addr, `"to":"`+to+`"`))
	if err1 != nil || err2 != nil || t1.Nonce != 5 || t2.Nonce != 5 {
		t.Errorf("fills: %v %v", err1, err2)
	}
}

func TestFillNotStarted(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p, _ := New(Options{Upstream: n.srv.URL}, s)
	if _, err := p.Fill(context.Background(), args(t, s.addr, `"to":"`+to+`"`)); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Fill before Start: %v", err)
	}
}

func send(t *testing.T, p *Proxy, s *fakeSigner, members string) (uint64, error) {
	t.Helper()
	a := args(t, s.addr, `"to":"`+to+`"`+members)
	hash, err := p.SendTransaction(context.Background(), a)
	if err != nil {
		return 0, err
	}
	tx := s.signed[hash]
	if tx == nil {
		t.Fatalf("hash %x was not signed", hash)
	}
	return tx.Nonce, nil
}

func TestSendTransaction(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	for i := range 3 {
		nonce, err := send(t, p, s, "")
		if err != nil || nonce != uint64(5+i) {
			t.Fatalf("send %d: nonce %d, %v", i, nonce, err)
		}
	}
	if got := n.count("eth_getTransactionCount"); got != 3 {
		t.Errorf("asked the node %d times when idle, want 3", got)
	}
}

func TestSendWrongHash(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
		if m == "eth_sendRawTransaction" {
			return "0x" + strings.Repeat("ab", 32), nil, true
		}
		return nil, nil, false
	}
	_, err := send(t, p, s, "")
	if rpcCode(err) != jsonrpc.CodeInternalError || !strings.Contains(err.Error(), "answered hash 0xabab") {
		t.Fatalf("wrong hash: %v", err)
	}
	n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
		if m == "eth_sendRawTransaction" {
			return "0x1234", nil, true
		}
		return nil, nil, false
	}
	if _, err := send(t, p, s, ""); !errors.Is(err, ErrUpstream) {
		t.Fatalf("short hash: %v", err)
	}
}

// TestConcurrentNonces: 200 concurrent sends from one address get the
// nonces 5 to 204, each once.
func TestConcurrentNonces(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	const count = 200
	var wg sync.WaitGroup
	errs := make(chan error, count)
	for range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := args(t, s.addr, `"to":"`+to+`","gas":"0x5208"`)
			if _, err := p.SendTransaction(context.Background(), a); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pool := n.poolNonces()
	if len(pool) != count {
		t.Fatalf("%d transactions in the pool, want %d", len(pool), count)
	}
	for i := uint64(5); i < 5+count; i++ {
		if !pool[i] {
			t.Errorf("nonce %d missing", i)
		}
	}
}

func TestFailureReturnsNonce(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	s.refuse = func(*ethtx.Tx) error { return jsonrpc.NewError(jsonrpc.CodeRefused, "policy refused", "rule") }
	if _, err := send(t, p, s, ""); rpcCode(err) != jsonrpc.CodeRefused {
		t.Fatalf("refused send: %v", err)
	}
	s.refuse = nil
	if nonce, err := send(t, p, s, ""); err != nil || nonce != 5 {
		t.Fatalf("after a refusal: nonce %d, %v", nonce, err)
	}
	// A refusal by the node itself returns the nonce too.
	n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
		if m == "eth_sendRawTransaction" {
			return nil, jsonrpc.NewError(-32000, "insufficient funds for gas * price + value", nil), true
		}
		return nil, nil, false
	}
	if _, err := send(t, p, s, ""); rpcCode(err) != -32000 || !strings.Contains(err.Error(), "insufficient funds") {
		t.Fatalf("node refusal: %v", err)
	}
	n.hook = nil
	if nonce, err := send(t, p, s, ""); err != nil || nonce != 6 {
		t.Fatalf("after a node refusal: nonce %d, %v", nonce, err)
	}
}

// TestReleasedNonceInFlight: a nonce released below others in flight is
// handed out again before a new one.
func TestReleasedNonceInFlight(t *testing.T) {
	var asked int
	m := newNonces(func(context.Context, ethtx.Address) (uint64, error) { asked++; return 10, nil })
	var a ethtx.Address
	ctx := context.Background()
	n10, _ := m.reserve(ctx, a)
	n11, _ := m.reserve(ctx, a)
	n12, _ := m.reserve(ctx, a)
	m.done(a, n11, unused)
	n11b, _ := m.reserve(ctx, a)
	m.done(a, n12, unused) // top: next goes back
	n12b, _ := m.reserve(ctx, a)
	if n10 != 10 || n11 != 11 || n12 != 12 || n11b != 11 || n12b != 12 || asked != 1 {
		t.Errorf("nonces %d %d %d %d %d, asked %d", n10, n11, n12, n11b, n12b, asked)
	}
}

// lieOnce makes the node's next eth_getTransactionCount answer count.
func lieOnce(n *fakeNode, count uint64, always bool) {
	var mu sync.Mutex
	lied := false
	n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
		mu.Lock()
		defer mu.Unlock()
		if m == "eth_getTransactionCount" && (always || !lied) {
			lied = true
			return quantity(count), nil, true
		}
		return nil, nil, false
	}
}

func TestNonceTaken(t *testing.T) {
	tests := []struct {
		name  string
		setup func(n *fakeNode, s *fakeSigner)
		want  uint64
		err   string
	}{
		{"nonce too low", func(n *fakeNode, s *fakeSigner) {
			n.base, n.pool = 10, map[uint64][32]byte{} // another sender used 5 to 9
			lieOnce(n, 6, false)
		}, 10, ""},
		{"replacement underpriced", func(n *fakeNode, s *fakeSigner) {
			n.pool[6] = [32]byte{1} // another sender's transaction with nonce 6
			lieOnce(n, 6, false)
		}, 7, ""},
		{"retried once only", func(n *fakeNode, s *fakeSigner) {
			n.base, n.pool = 10, map[uint64][32]byte{}
			lieOnce(n, 6, true)
		}, 0, "nonce too low"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSigner(1)
			n := newFakeNode(t, s)
			p := start(t, n)
			if nonce, err := send(t, p, s, ""); err != nil || nonce != 5 {
				t.Fatal(nonce, err)
			}
			n.mu.Lock()
			tt.setup(n, s)
			n.mu.Unlock()
			nonce, err := send(t, p, s, "")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || n.count("eth_sendRawTransaction") != 3 {
					t.Fatalf("send: %v after %d sends; want %q after 3", err, n.count("eth_sendRawTransaction"), tt.err)
				}
				return
			}
			if err != nil || nonce != tt.want {
				t.Fatalf("send: nonce %d, %v; want %d", nonce, err, tt.want)
			}
		})
	}
}

func TestNonceRecovery(t *testing.T) {
	tests := []struct {
		name  string
		sends int // managed sends before
		setup func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner)
		want  []uint64 // nonces of the sends after
	}{
		{"dropped last", 3, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) { n.drop(7) }, []uint64{7, 8}},
		{"dropped in the middle", 3, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) { n.drop(6) }, []uint64{6, 8, 9}},
		{"another sender ahead", 1, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) {
			n.mu.Lock()
			n.base, n.pool = 20, map[uint64][32]byte{}
			n.mu.Unlock()
		}, []uint64{20, 21}},
		{"caller's nonce", 1, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) {
			if nonce, err := send(t, p, s, `,"nonce":"0x6"`); err != nil || nonce != 6 {
				t.Fatalf("caller's nonce: %d, %v", nonce, err)
			}
		}, []uint64{7, 8}},
		{"caller's nonce far ahead", 1, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) {
			if nonce, err := send(t, p, s, `,"nonce":"0x64"`); err != nil || nonce != 100 {
				t.Fatalf("caller's nonce: %d, %v", nonce, err)
			}
		}, []uint64{6, 7}}, // the node's pool has a gap below 100: fill it
		{"already known", 1, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) {
			n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
				if m == "eth_sendRawTransaction" {
					return nil, jsonrpc.NewError(-32000, "already known", nil), true
				}
				return nil, nil, false
			}
			a := args(t, s.addr, `"to":"`+to+`"`)
			hash, err := p.SendTransaction(context.Background(), a)
			if err != nil || s.signed[hash] == nil || s.signed[hash].Nonce != 6 {
				t.Fatalf("already known: %x, %v", hash, err)
			}
			n.hook = nil
		}, []uint64{6, 7}}, // the node never had 6 here: the next send rewinds
		{"unknown outcome", 1, func(t *testing.T, n *fakeNode, p *Proxy, s *fakeSigner) {
			n.hook = func(m string, _ json.RawMessage) (any, *jsonrpc.Error, bool) {
				if m == "eth_sendRawTransaction" {
					return 12, nil, true
				}
				return nil, nil, false
			}
			if _, err := send(t, p, s, ""); !errors.Is(err, ErrUpstream) {
				t.Fatalf("malformed answer: %v", err)
			}
			n.hook = nil
		}, []uint64{6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSigner(1)
			n := newFakeNode(t, s)
			p := start(t, n)
			for i := range tt.sends {
				if nonce, err := send(t, p, s, ""); err != nil || nonce != uint64(5+i) {
					t.Fatalf("send %d: %d, %v", i, nonce, err)
				}
			}
			tt.setup(t, n, p, s)
			for i, want := range tt.want {
				if nonce, err := send(t, p, s, ""); err != nil || nonce != want {
					t.Fatalf("send %d after: nonce %d, %v; want %d", i, nonce, err, want)
				}
			}
		})
	}
}

func TestSendBlobRefused(t *testing.T) {
	s := newFakeSigner(1)
	p := start(t, newFakeNode(t, s))
	_, err := send(t, p, s, `,"blobVersionedHashes":["0x01`+strings.Repeat("00", 31)+`"]`)
	if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), "blob transaction cannot be sent") {
		t.Fatalf("blob send: %v", err)
	}
}

// TestSlowNode: a send cut off by its context while the node holds it
// keeps its nonce in doubt; the next send asks the node and, the node not
// having it, uses the nonce again.
func TestSlowNode(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	n.mu.Lock()
	n.held = make(chan struct{})
	held := n.held
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := p.SendTransaction(ctx, args(t, s.addr, `"to":"`+to+`"`))
		errc <- err
	}()
	<-held
	cancel()
	err := <-errc
	if !errors.Is(err, ErrUpstream) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cut-off send: %v", err)
	}
	n.mu.Lock()
	n.held = nil
	n.mu.Unlock()
	if nonce, err := send(t, p, s, ""); err != nil || nonce != 5 {
		t.Fatalf("after the cut-off send: nonce %d, %v; want 5", nonce, err)
	}
}

// TestConcurrentFailuresLeaveNoGap: 200 concurrent sends of which the
// signer refuses every tenth signature; as many more sends as were refused
// then fill every gap, so the pool holds exactly the nonces 5 to 204.
func TestConcurrentFailuresLeaveNoGap(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	var mu sync.Mutex
	calls := 0
	s.refuse = func(*ethtx.Tx) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%10 == 0 {
			return errors.New("refused")
		}
		return nil
	}
	const count = 200
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.SendTransaction(context.Background(), args(t, s.addr, `"to":"`+to+`","gas":"0x5208"`)); err != nil {
				failed.Store(i, err)
			}
		}()
	}
	wg.Wait()
	refused := 0
	failed.Range(func(_, _ any) bool { refused++; return true })
	if refused != count/10 {
		t.Fatalf("%d sends failed, want %d", refused, count/10)
	}
	s.mu.Lock()
	s.refuse = nil
	s.mu.Unlock()
	for range refused {
		if _, err := send(t, p, s, `,"gas":"0x5208"`); err != nil {
			t.Fatal(err)
		}
	}
	pool := n.poolNonces()
	for i := uint64(5); i < 5+count; i++ {
		if !pool[i] {
			t.Errorf("nonce %d missing", i)
		}
	}
	if len(pool) != count {
		t.Errorf("%d transactions in the pool, want %d", len(pool), count)
	}
}
