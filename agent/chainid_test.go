package agent

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

// TestChainID: Config.ChainID is Clef's --chainid: it fills an absent
// chainId, refuses another chain, and answers eth_chainId and net_version
// when there is no node.
func TestChainID(t *testing.T) {
	h := newFakeHost(t)
	from := h.Addr.Hex()
	sepolia := func(c *Config) { c.ChainID = big.NewInt(11155111) }
	noChain := txObject(from, 1, "1000", false)
	delete(noChain, "chainId")
	noChainLegacy := txObject(from, 1, "1000", true)
	delete(noChainLegacy, "chainId")
	noChainGas := txObject(from, 1, "1000", false)
	delete(noChainGas, "chainId")
	delete(noChainGas, "gas")
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		method string
		params []any
		// chain is the signed transaction's chain id; 0 when refused
		// with code and a message holding want.
		chain int64
		code  int
		want  string
	}{
		{"absent chainId filled", sepolia, "eth_signTransaction", []any{noChain}, 11155111, 0, ""},
		{"absent chainId filled, legacy", sepolia, "eth_signTransaction", []any{noChainLegacy}, 11155111, 0, ""},
		{"absent chainId filled, Clef's method", sepolia, "account_signTransaction", []any{noChain, nil}, 11155111, 0, ""},
		{"the agent's chain", sepolia, "eth_signTransaction", []any{txObject(from, 11155111, "1000", false)}, 11155111, 0, ""},
		{"another chain", sepolia, "eth_signTransaction", []any{txObject(from, 1, "1000", false)}, 0, jsonrpc.CodeInvalidParams, "chainId 1 is not the agent's chain id 11155111"},
		{"another chain, Clef's method", sepolia, "account_signTransaction", []any{txObject(from, 5, "1000", true)}, 0, jsonrpc.CodeInvalidParams, "chainId 5 is not the agent's chain id 11155111"},
		{"no chain id anywhere", nil, "eth_signTransaction", []any{noChain}, 0, jsonrpc.CodeInvalidParams, "missing chainId (start the agent with --chain-id N"},
		{"no chain id and no gas", nil, "account_signTransaction", []any{noChainGas}, 0, jsonrpc.CodeInvalidParams, "missing gas, chainId (the agent fills them in only with an --upstream node; chainId also with --chain-id N)"},
		{"chain id does not fill gas", sepolia, "eth_signTransaction", []any{noChainGas}, 0, jsonrpc.CodeInvalidParams, "missing gas (the agent fills them in only with an --upstream node)"},
		{"a proxy on another chain", func(c *Config) {
			c.ChainID = big.NewInt(11155111)
			c.Proxy = &fakeProxy{chainID: big.NewInt(1)}
		}, "eth_signTransaction", []any{noChain}, 0, jsonrpc.CodeInvalidParams, "the agent's chain id 11155111 (--chain-id) is not the node's (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeAgent(t, h, tc.edit)
			res, jerr := call(t, a, tc.method, tc.params...)
			if tc.chain == 0 {
				if jerr == nil || jerr.Code != tc.code || !strings.Contains(jerr.Message, tc.want) {
					t.Fatalf("got %s, %v; want code %d and %q", res, jerr, tc.code, tc.want)
				}
				return
			}
			if jerr != nil {
				t.Fatal(jerr)
			}
			var raw string
			if tc.method == "account_signTransaction" {
				var r clefSignTxResult
				json.Unmarshal(res, &r)
				raw = r.Raw
			} else {
				json.Unmarshal(res, &raw)
			}
			o := map[string]any{}
			for k, v := range tc.params[0].(map[string]any) {
				o[k] = v
			}
			o["chainId"] = "0x" + big.NewInt(tc.chain).Text(16)
			checkRaw(t, raw, txOf(t, o), from)
		})
	}
}

// TestChainIDMethods: without a node, eth_chainId and net_version answer
// Config.ChainID, and are not served without one.
func TestChainIDMethods(t *testing.T) {
	h := newFakeHost(t)
	with := newFakeAgent(t, h, func(c *Config) { c.ChainID = big.NewInt(11155111) })
	without := newFakeAgent(t, h, nil)
	for _, tc := range []struct {
		name   string
		a      *Agent
		method string
		params string
		want   string
		code   int
	}{
		{"eth_chainId", with, "eth_chainId", `[]`, `"0xaa36a7"`, 0},
		{"eth_chainId without params", with, "eth_chainId", ``, `"0xaa36a7"`, 0},
		{"net_version", with, "net_version", `[]`, `"11155111"`, 0},
		{"eth_chainId with a param", with, "eth_chainId", `["latest"]`, "", jsonrpc.CodeInvalidParams},
		{"eth_chainId without --chain-id", without, "eth_chainId", `[]`, "", jsonrpc.CodeMethodNotFound},
		{"net_version without --chain-id", without, "net_version", `[]`, "", jsonrpc.CodeMethodNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, jerr := tc.a.Dispatch(t.Context(), jsonrpc.Request{Method: tc.method, Params: json.RawMessage(tc.params), ID: json.RawMessage("1")})
			if tc.code != 0 {
				if jerr == nil || jerr.Code != tc.code {
					t.Fatalf("got %v, %v; want code %d", res, jerr, tc.code)
				}
				return
			}
			b, _ := json.Marshal(res)
			if jerr != nil || string(b) != tc.want {
				t.Fatalf("got %s, %v; want %s", b, jerr, tc.want)
			}
		})
	}
}

func TestChainIDConfig(t *testing.T) {
	h := newFakeHost(t)
	for _, tc := range []struct {
		name string
		id   *big.Int
	}{
		{"zero", big.NewInt(0)},
		{"negative", big.NewInt(-1)},
		{"above 256 bits", new(big.Int).Lsh(big.NewInt(1), 256)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeAgent(t, h, nil).cfg
			c.ChainID = tc.id
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), "agent: the chain id") {
				t.Fatalf("New with chain id %v: %v", tc.id, err)
			}
		})
	}
	// The agent keeps its own copy.
	id := big.NewInt(5)
	c := newFakeAgent(t, h, nil).cfg
	c.ChainID = id
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	id.SetInt64(6)
	if a.cfg.ChainID.Int64() != 5 {
		t.Fatal("the agent's chain id changed with the caller's value")
	}
}
