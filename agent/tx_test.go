package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/agent/ethproxy"
	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
	"github.com/nitrosign/nitrosign/internal/rlp"
	"github.com/nitrosign/nitrosign/stamp"
)

// txObject is a transaction object as wallets send it: EIP-1559 unless
// legacy, to ExampleDestinationB on chain with value wei.
func txObject(from string, chain uint64, value string, legacy bool) map[string]any {
	v, _ := new(big.Int).SetString(value, 10)
	o := map[string]any{
		"from": from, "to": devstack.ExampleDestinationB, "gas": "0x5208", "nonce": "0x3",
		"value": "0x" + v.Text(16), "chainId": "0x" + new(big.Int).SetUint64(chain).Text(16), "input": "0x",
	}
	if legacy {
		o["gasPrice"] = "0x5d21dba00"
	} else {
		o["maxFeePerGas"], o["maxPriorityFeePerGas"] = "0x9502f9000", "0x59682f00"
	}
	return o
}

// checkRaw checks that raw (0x-hex) is tx signed by want: its signature
// fields, read with package rlp, recover want over tx's signing hash, and
// tx with them encodes to raw.
func checkRaw(t *testing.T, raw string, tx *ethtx.Tx, want string) {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(raw, "0x"))
	if err != nil || len(b) == 0 {
		t.Fatalf("raw %q", raw)
	}
	list := b
	if b[0] < 0x80 {
		list = b[1:]
	}
	content, rest, err := rlp.SplitList(list)
	if err != nil || len(rest) != 0 {
		t.Fatalf("signed transaction %x: %v", b, err)
	}
	var vals [][]byte
	for len(content) > 0 {
		var v []byte
		if _, v, content, err = rlp.Split(content); err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
	}
	n := len(vals)
	v, r, s := new(big.Int).SetBytes(vals[n-3]), vals[n-2], vals[n-1]
	if tx.Type == ethtx.TypeLegacy {
		v.Sub(v, new(big.Int).Add(new(big.Int).Lsh(tx.ChainID, 1), big.NewInt(35)))
	}
	if !v.IsUint64() || v.Uint64() > 1 || len(r) > 32 || len(s) > 32 {
		t.Fatalf("signature fields v %v r %x s %x", v, r, s)
	}
	var sig ethtx.Signature
	copy(sig[32-len(r):32], r)
	copy(sig[64-len(s):64], s)
	sig[64] = byte(v.Uint64())
	if got := tx.EncodeSigned(sig); string(got) != string(b) {
		t.Fatalf("signed transaction %x is not the transaction asked for (%x)", b, got)
	}
	got, err := ethtx.RecoverAddress(tx.SigningHash(), sig)
	if err != nil || got.Hex() != want {
		t.Fatalf("recovers %s (%v), want %s", got.Hex(), err, want)
	}
}

// txOf builds the transaction of a complete transaction object.
func txOf(t *testing.T, o map[string]any) *ethtx.Tx {
	t.Helper()
	b, _ := json.Marshal(o)
	args, err := txargs.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := args.Tx()
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestAgentTransactions(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	addr := st.Keys[0].Address
	a := newAgent(t, st, st.URL, nil)

	t.Run("eth_signTransaction", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			chain  uint64
			legacy bool
		}{
			{"EIP-1559 mainnet", 1, false},
			{"legacy sepolia", 11155111, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				o := txObject(addr, tc.chain, "100000000000000000", tc.legacy)
				res, jerr := call(t, a, "eth_signTransaction", o)
				if jerr != nil {
					t.Fatal(jerr)
				}
				var raw string
				json.Unmarshal(res, &raw)
				checkRaw(t, raw, txOf(t, o), addr)
			})
		}
	})

	t.Run("account_signTransaction", func(t *testing.T) {
		o := txObject(addr, 1, "100000000000000000", false)
		res, jerr := call(t, a, "account_signTransaction", o, "0xa9059cbb")
		if jerr != nil {
			t.Fatal(jerr)
		}
		var got struct {
			Raw string          `json:"raw"`
			Tx  json.RawMessage `json:"tx"`
		}
		if err := json.Unmarshal(res, &got); err != nil {
			t.Fatal(err)
		}
		checkRaw(t, got.Raw, txOf(t, o), addr)
		if !strings.Contains(string(got.Tx), `"type":"0x2"`) || !strings.Contains(string(got.Tx), `"hash":"0x`) {
			t.Fatalf("tx = %s", got.Tx)
		}
	})

	t.Run("errors", func(t *testing.T) {
		noNonce := txObject(addr, 1, "1", false)
		delete(noNonce, "nonce")
		delete(noNonce, "gas")
		noFrom := txObject(addr, 1, "1", false)
		delete(noFrom, "from")
		unknownField := txObject(addr, 1, "1", false)
		unknownField["frm"] = addr
		for _, tc := range []struct {
			name     string
			method   string
			params   []any
			code     int
			contains string
		}{
			{"missing fields without a node", "eth_signTransaction", []any{noNonce}, jsonrpc.CodeInvalidParams, "missing gas, nonce"},
			{"no from", "eth_signTransaction", []any{noFrom}, jsonrpc.CodeInvalidParams, "from"},
			{"unknown member", "eth_signTransaction", []any{unknownField}, jsonrpc.CodeInvalidParams, "frm"},
			{"unknown account", "eth_signTransaction", []any{txObject("0x1111111111111111111111111111111111111111", 1, "1", false)}, jsonrpc.CodeInvalidParams, "unknown account"},
			{"over the limit", "eth_signTransaction", []any{txObject(addr, 1, "2000000000000000000", false)}, jsonrpc.CodeRefused, ""},
			{"bad method selector", "account_signTransaction", []any{txObject(addr, 1, "1", false), 5}, jsonrpc.CodeInvalidParams, "methodSelector"},
			{"send without a node", "eth_sendTransaction", []any{txObject(addr, 1, "1", false)}, jsonrpc.CodeMethodNotFound, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, jerr := call(t, a, tc.method, tc.params...)
				if jerr == nil || jerr.Code != tc.code || !strings.Contains(jerr.Message, tc.contains) {
					t.Fatalf("got %v, want %d containing %q", jerr, tc.code, tc.contains)
				}
				if tc.code == jsonrpc.CodeRefused {
					if d, ok := jerr.Data.(RefusalData); !ok || d.Code != "policy_denied" || d.Rule != "max_per_transaction" {
						t.Fatalf("data %#v", jerr.Data)
					}
				}
			})
		}
	})

	t.Run("approvals", func(t *testing.T) {
		pa := newAgent(t, st, st.URL, func(c *Config) { c.ApprovalTimeout = 0 })
		c, err := client.New(st.URL, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		decide := func(t *testing.T, id, decision string, approvers int) {
			t.Helper()
			p, err := c.Approval(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			digest, err := client.CheckApproval(p)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= approvers; i++ {
				pemBytes, err := os.ReadFile(filepath.Join(st.DataDir, devstack.ApproverKeyFile(i)))
				if err != nil {
					t.Fatal(err)
				}
				signer, err := stamp.ParseSignerPEM(pemBytes)
				if err != nil {
					t.Fatal(err)
				}
				req, err := client.NewApproval(signer, devstack.ApproverName(i), id, decision, digest)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.Approve(context.Background(), req); err != nil && decision == api.DecisionApprove {
					t.Fatal(err)
				}
			}
		}
		pending := func(t *testing.T, jerr *jsonrpc.Error) PendingData {
			t.Helper()
			if jerr == nil || jerr.Code != jsonrpc.CodeApprovalPending {
				t.Fatalf("got %v, want pending", jerr)
			}
			d, ok := jerr.Data.(PendingData)
			if !ok || d.ApprovalID == "" || d.Quorum != devstack.ApproverCount || len(d.Digest) != 66 || d.ExpiresAtMS == 0 {
				t.Fatalf("data %#v", jerr.Data)
			}
			return d
		}
		large := txObject(addr, 11155111, "800000000000000000", false)

		_, jerr := call(t, pa, "eth_signTransaction", large)
		d := pending(t, jerr)
		_, jerr = call(t, pa, "nitrosign_approval", d.ApprovalID)
		pending(t, jerr)
		decide(t, d.ApprovalID, api.DecisionApprove, devstack.ApproverCount)
		res, jerr := call(t, pa, "nitrosign_approval", d.ApprovalID)
		if jerr != nil {
			t.Fatal(jerr)
		}
		var raw string
		json.Unmarshal(res, &raw)
		checkRaw(t, raw, txOf(t, large), addr)
		if _, jerr := call(t, pa, "nitrosign_approval", d.ApprovalID); jerr == nil || jerr.Code != jsonrpc.CodeInvalidParams {
			t.Fatalf("picked up twice: %v", jerr)
		}

		// Rejected.
		large["nonce"] = "0x4"
		_, jerr = call(t, pa, "personal_sign", "0x01", addr) // messages need no approval
		if jerr != nil {
			t.Fatal(jerr)
		}
		_, jerr = call(t, pa, "eth_signTransaction", large)
		d = pending(t, jerr)
		decide(t, d.ApprovalID, api.DecisionReject, 1)
		_, jerr = call(t, pa, "nitrosign_approval", d.ApprovalID)
		if jerr == nil || jerr.Code != jsonrpc.CodeRefused || jerr.Data.(RefusalData).Code != "approval_rejected" {
			t.Fatalf("after a rejection: %v", jerr)
		}

		// Approved while the request waits: the answer is the signature.
		ids := make(chan string, 1)
		watching := tamperingHost(t, st.URL, func(path string, body []byte) []byte {
			var p api.PendingResponse
			if path == "/v1/sign" && json.Unmarshal(body, &p) == nil && p.ApprovalID != "" {
				ids <- p.ApprovalID
			}
			return body
		})
		la := newAgent(t, st, watching, func(c *Config) { c.ApprovalTimeout, c.ApprovalPoll = time.Hour, 10*time.Millisecond })
		large["nonce"] = "0x6"
		type answer struct {
			res  json.RawMessage
			jerr *jsonrpc.Error
		}
		answers := make(chan answer, 1)
		go func() {
			res, jerr := call(t, la, "eth_signTransaction", large)
			answers <- answer{res, jerr}
		}()
		approveAll(t, st, <-ids)
		got := <-answers
		if got.jerr != nil {
			t.Fatal(got.jerr)
		}
		json.Unmarshal(got.res, &raw)
		checkRaw(t, raw, txOf(t, large), addr)

		// A wait that ends without approvals answers pending.
		wa := newAgent(t, st, st.URL, func(c *Config) { c.ApprovalTimeout, c.ApprovalPoll = 1, 1 })
		large["nonce"] = "0x5"
		_, jerr = call(t, wa, "eth_signTransaction", large)
		pending(t, jerr)
	})

	t.Run("proxy", func(t *testing.T) {
		fp := &fakeProxy{chainID: big.NewInt(11155111)}
		pa := newAgent(t, st, st.URL, func(c *Config) { c.Proxy = fp })
		fp.signer = pa
		partial := map[string]any{"from": addr, "to": devstack.ExampleDestinationA, "value": "0x1"}

		res, jerr := call(t, pa, "eth_signTransaction", partial)
		if jerr != nil {
			t.Fatal(jerr)
		}
		var raw string
		json.Unmarshal(res, &raw)
		filled := func() *ethtx.Tx {
			b, _ := json.Marshal(partial)
			args, _ := txargs.Parse(b)
			tx, err := fp.Fill(context.Background(), args)
			if err != nil {
				t.Fatal(err)
			}
			return tx
		}
		checkRaw(t, raw, filled(), addr)

		res, jerr = call(t, pa, "eth_sendTransaction", partial)
		if jerr != nil {
			t.Fatal(jerr)
		}
		fp.mu.Lock()
		sent := fp.sent
		fp.mu.Unlock()
		if len(sent) != 1 {
			t.Fatalf("sent %d transactions", len(sent))
		}
		if h := ethtx.TransactionHash(sent[0]); string(res) != `"0x`+hex.EncodeToString(h[:])+`"` {
			t.Fatalf("sent %x, answered %s", sent, res)
		}
		checkRaw(t, "0x"+hex.EncodeToString(sent[0]), filled(), addr)

		res, jerr = call(t, pa, "eth_chainId")
		if jerr != nil || string(res) != `"0xaa36a7"` {
			t.Fatalf("forwarded eth_chainId = %s, %v", res, jerr)
		}
		// A send that waits for approvals is sent once approved, when
		// nitrosign_approval picks it up.
		qa := newAgent(t, st, st.URL, func(c *Config) { c.Proxy, c.ApprovalTimeout = fp, 0 })
		fp.signer = qa
		_, jerr = call(t, qa, "eth_sendTransaction", map[string]any{"from": addr, "to": devstack.ExampleDestinationB, "value": "0xb1a2bc2ec50000"}) // 0.05 ETH: no approval needed
		if jerr != nil {
			t.Fatalf("a small send: %v", jerr)
		}
		_, jerr = call(t, qa, "eth_sendTransaction", map[string]any{"from": addr, "to": devstack.ExampleDestinationB, "value": "0xb1a2bc2ec500000"}) // 0.8 ETH
		if jerr == nil || jerr.Code != jsonrpc.CodeApprovalPending {
			t.Fatalf("a send above the approval threshold: %v", jerr)
		}
		id := jerr.Data.(PendingData).ApprovalID
		approveAll(t, st, id)
		res, jerr = call(t, qa, "nitrosign_approval", id)
		if jerr != nil {
			t.Fatal(jerr)
		}
		fp.mu.Lock()
		last := fp.sent[len(fp.sent)-1]
		fp.mu.Unlock()
		if h := ethtx.TransactionHash(last); string(res) != `"0x`+hex.EncodeToString(h[:])+`"` {
			t.Fatalf("nitrosign_approval answered %s; the node was sent %x", res, last)
		}
		// The pending answer tells the proxy which approval holds the
		// transaction, and when it expires.
		big := txOf(t, txObject(addr, 11155111, "800000000000000000", false))
		from, _ := ethtx.ParseAddress(addr)
		_, err := qa.SignTransaction(context.Background(), from, big)
		var held ethproxy.Held
		var je *jsonrpc.Error
		if !errors.As(err, &held) || !errors.As(err, &je) || je.Code != jsonrpc.CodeApprovalPending {
			t.Fatalf("SignTransaction above the threshold: %v", err)
		}
		hid, expires := held.Approval()
		if d := je.Data.(PendingData); d.ApprovalID != hid || d.ExpiresAtMS != expires.UnixMilli() {
			t.Fatalf("held %s until %v; the answer says %+v", hid, expires, d)
		}
		// A rejection through nitrosign_approval tells the proxy.
		rejectOne(t, st, hid)
		_, jerr = call(t, qa, "nitrosign_approval", hid)
		if jerr == nil || jerr.Code != jsonrpc.CodeRefused || jerr.Data.(RefusalData).Code != "approval_rejected" {
			t.Fatalf("nitrosign_approval of a rejected send: %v", jerr)
		}
		fp.mu.Lock()
		ended := fp.ended
		fp.mu.Unlock()
		if len(ended) != 1 || ended[0] != hid {
			t.Fatalf("the proxy was told %v ended, want [%s]", ended, hid)
		}
		// A notification of eth_sendTransaction is not sent.
		if _, jerr := pa.Dispatch(context.Background(), jsonrpc.Request{Method: "eth_sendTransaction", Params: json.RawMessage(`[{"from":"` + addr + `"}]`)}); jerr == nil {
			t.Fatal("a notification was sent")
		}
	})
}

// approveAll approves the request id with every dev approver.
func approveAll(t *testing.T, st *devstack.Stack, id string) {
	t.Helper()
	c, err := client.New(st.URL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Approval(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := client.CheckApproval(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= devstack.ApproverCount; i++ {
		pemBytes, err := os.ReadFile(filepath.Join(st.DataDir, devstack.ApproverKeyFile(i)))
		if err != nil {
			t.Fatal(err)
		}
		signer, err := stamp.ParseSignerPEM(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		req, err := client.NewApproval(signer, devstack.ApproverName(i), id, api.DecisionApprove, digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Approve(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
}

// rejectOne rejects the request id with the first dev approver.
func rejectOne(t *testing.T, st *devstack.Stack, id string) {
	t.Helper()
	c, err := client.New(st.URL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Approval(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := client.CheckApproval(p)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(st.DataDir, devstack.ApproverKeyFile(1)))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := stamp.ParseSignerPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	req, err := client.NewApproval(signer, devstack.ApproverName(1), id, api.DecisionReject, digest)
	if err != nil {
		t.Fatal(err)
	}
	// The host answers a rejection as the refusal it is.
	var ae *client.APIError
	if _, _, err := c.Approve(context.Background(), req); err != nil && (!errors.As(err, &ae) || ae.Code != "approval_rejected") {
		t.Fatal(err)
	}
}

// fakeProxy fills transactions with fixed values and "sends" them by
// recording them; Forward answers eth_chainId.
type fakeProxy struct {
	chainID *big.Int
	signer  *Agent
	mu      sync.Mutex
	sent    [][]byte
	ended   []string
}

func (p *fakeProxy) SendApproved(_ context.Context, _ string, _ ethtx.Address, _ *ethtx.Tx, signed []byte) ([32]byte, error) {
	p.mu.Lock()
	p.sent = append(p.sent, signed)
	p.mu.Unlock()
	return ethtx.TransactionHash(signed), nil
}

func (p *fakeProxy) ApprovalEnded(id string) {
	p.mu.Lock()
	p.ended = append(p.ended, id)
	p.mu.Unlock()
}

func (p *fakeProxy) ChainID() *big.Int { return p.chainID }

func (p *fakeProxy) Fill(_ context.Context, a *txargs.Args) (*ethtx.Tx, error) {
	n, g := uint64(7), uint64(21000)
	a.Nonce, a.Gas, a.ChainID = &n, &g, p.chainID
	a.MaxFeePerGas, a.MaxPriorityFeePerGas = big.NewInt(30e9), big.NewInt(1e9)
	return a.Tx()
}

func (p *fakeProxy) SendTransaction(ctx context.Context, a *txargs.Args) ([32]byte, error) {
	tx, err := p.Fill(ctx, a)
	if err != nil {
		return [32]byte{}, err
	}
	raw, err := p.signer.SignTransaction(ctx, *a.From, tx)
	if err != nil {
		return [32]byte{}, err
	}
	p.mu.Lock()
	p.sent = append(p.sent, raw)
	p.mu.Unlock()
	return ethtx.TransactionHash(raw), nil
}

func (p *fakeProxy) Forward(_ context.Context, r jsonrpc.Request) (json.RawMessage, *jsonrpc.Error) {
	switch r.Method {
	case "eth_chainId":
		return json.RawMessage(`"0x` + p.chainID.Text(16) + `"`), nil
	case "eth_sendRawTransaction":
		var params []string
		json.Unmarshal(r.Params, &params)
		raw, err := hex.DecodeString(strings.TrimPrefix(params[0], "0x"))
		if len(params) != 1 || err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "", nil)
		}
		p.mu.Lock()
		p.sent = append(p.sent, raw)
		p.mu.Unlock()
		h := ethtx.TransactionHash(raw)
		return json.RawMessage(`"0x` + hex.EncodeToString(h[:]) + `"`), nil
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "", nil)
}

// The agent's hook takes package ethproxy's proxy, which signs through the
// agent.
var (
	_ Proxy           = (*ethproxy.Proxy)(nil)
	_ ethproxy.Signer = (*Agent)(nil)
	_ ethproxy.Held   = (*heldError)(nil)
)
