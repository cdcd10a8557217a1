package ethproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

func TestForward(t *testing.T) {
	s := newFakeSigner(1)
	tests := []struct {
		name, method, params string
		hook                 func(string, json.RawMessage) (any, *jsonrpc.Error, bool)
		result               string
		err                  *jsonrpc.Error
	}{
		{"result", "eth_blockNumber", `[]`, nil, `"0x10"`, nil},
		{"params verbatim", "eth_call", `[{"to":"0x01","data":"0x<&>"},"latest"]`, func(m string, p json.RawMessage) (any, *jsonrpc.Error, bool) {
			return json.RawMessage(`{"echo":` + string(p) + `}`), nil, true
		}, `{"echo":[{"to":"0x01","data":"0x<&>"},"latest"]}`, nil},
		{"object params", "eth_x", `{"a":1}`, func(m string, p json.RawMessage) (any, *jsonrpc.Error, bool) {
			return p, nil, true
		}, `{"a":1}`, nil},
		{"null result", "eth_getTransactionReceipt", `["0x00"]`, func(string, json.RawMessage) (any, *jsonrpc.Error, bool) {
			return nil, nil, true
		}, `null`, nil},
		{"node error with data", "eth_call", `[]`, func(string, json.RawMessage) (any, *jsonrpc.Error, bool) {
			return nil, jsonrpc.NewError(3, "execution reverted: no", "0x08c379a0"), true
		}, "", &jsonrpc.Error{Code: 3, Message: "execution reverted: no", Data: json.RawMessage(`"0x08c379a0"`)}},
		{"node method not found", "eth_nothing", `[]`, nil, "", &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "the method eth_nothing does not exist/is not available"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t, s)
			p := start(t, n)
			n.hook = tt.hook
			res, err := p.Forward(context.Background(), jsonrpc.Request{Method: tt.method, Params: json.RawMessage(tt.params), ID: json.RawMessage(`"id-1"`)})
			if tt.err != nil {
				if err == nil || err.Code != tt.err.Code || err.Message != tt.err.Message || string(mustJSON(t, err.Data)) != string(mustJSON(t, tt.err.Data)) {
					t.Fatalf("Forward error %+v, want %+v", err, tt.err)
				}
				return
			}
			if err != nil || string(res) != tt.result {
				t.Fatalf("Forward = %s, %v; want %s", res, err, tt.result)
			}
			if got := string(n.last(tt.method)); got != tt.params {
				t.Errorf("node got params %s, want %s", got, tt.params)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestForwardRefused(t *testing.T) {
	s := newFakeSigner(1)
	n := newFakeNode(t, s)
	p := start(t, n)
	for _, m := range []string{
		"eth_sign", "personal_sign", "eth_signTransaction", "eth_sendTransaction", "eth_accounts",
		"eth_signTypedData", "eth_signTypedData_v4", "eth_signTypedData_v5",
		"account_list", "account_signTransaction", "personal_unlockAccount", "personal_sendTransaction",
		"admin_addPeer", "debug_setHead", "miner_setEtherbase", "engine_newPayloadV4", "clique_propose", "txpool_content",
	} {
		t.Run(m, func(t *testing.T) {
			_, err := p.Forward(context.Background(), jsonrpc.Request{Method: m, Params: json.RawMessage(`[]`), ID: json.RawMessage(`1`)})
			if err == nil || err.Code != jsonrpc.CodeMethodNotFound || !strings.Contains(err.Message, m+" is not forwarded") {
				t.Fatalf("Forward(%s) = %v", m, err)
			}
			if n.count(m) != 0 {
				t.Fatalf("%s reached the node", m)
			}
		})
	}
	for _, m := range []string{"eth_sendRawTransaction", "eth_getBalance", "net_version", "web3_clientVersion", "eth_feeHistory"} {
		if why := Refused(m); why != "" {
			t.Errorf("Refused(%s) = %q", m, why)
		}
	}
}

// TestForwardBadNode: a node that answers badly gives an internal error
// that says so, never a panic or a made-up result.
func TestForwardBadNode(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   int
		want   string
	}{
		{"http error", 502, "bad gateway", jsonrpc.CodeInternalError, "answered HTTP 502"},
		{"http error with rpc error", 429, `{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"rate limited"}}`, -32005, "rate limited"},
		{"not json", 200, "<html>", jsonrpc.CodeInternalError, "malformed answer"},
		{"wrong id", 200, `{"jsonrpc":"2.0","id":2,"result":"0x1"}`, jsonrpc.CodeInternalError, "id does not match"},
		{"null id error", 200, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, -32700, "parse error"},
		{"no version", 200, `{"id":1,"result":"0x1"}`, jsonrpc.CodeInternalError, `"jsonrpc" is not "2.0"`},
		{"both", 200, `{"jsonrpc":"2.0","id":1,"result":"0x1","error":{"code":1,"message":"x"}}`, jsonrpc.CodeInternalError, "both result and error"},
		{"neither", 200, `{"jsonrpc":"2.0","id":1}`, jsonrpc.CodeInternalError, "neither result nor error"},
		{"extra member", 200, `{"jsonrpc":"2.0","id":1,"result":"0x1","x":1}`, jsonrpc.CodeInternalError, `unknown field "x"`},
		{"duplicate result", 200, `{"jsonrpc":"2.0","id":1,"result":"0x1","result":"0x2"}`, jsonrpc.CodeInternalError, "duplicate"},
		{"error without message", 200, `{"jsonrpc":"2.0","id":1,"error":{"code":1}}`, jsonrpc.CodeInternalError, "without code or message"},
		{"error not object", 200, `{"jsonrpc":"2.0","id":1,"error":"x"}`, jsonrpc.CodeInternalError, "error is not an object"},
		{"batch", 200, `[{"jsonrpc":"2.0","id":1,"result":"0x1"}]`, jsonrpc.CodeInternalError, "malformed answer"},
		{"too large", 200, `{"jsonrpc":"2.0","id":1,"result":"` + strings.Repeat("a", 2000) + `"}`, jsonrpc.CodeInternalError, "exceeds the limit of 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			p, err := New(Options{Upstream: srv.URL, MaxResponse: 1024}, newFakeSigner(1))
			if err != nil {
				t.Fatal(err)
			}
			_, rerr := p.Forward(context.Background(), jsonrpc.Request{Method: "eth_blockNumber", ID: json.RawMessage(`1`)})
			if rerr == nil || rerr.Code != tt.code || !strings.Contains(rerr.Message, tt.want) {
				t.Fatalf("Forward = %+v, want %d %q", rerr, tt.code, tt.want)
			}
		})
	}
}
