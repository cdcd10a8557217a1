package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

// fuzzMethods are the methods FuzzDispatch calls, by index: every method
// the agent serves, and one it does not.
var fuzzMethods = []string{
	"eth_accounts", "account_list", "account_version", "eth_sign", "personal_sign",
	"eth_signTypedData", "eth_signTypedData_v4", "account_signTypedData", "account_signData",
	"eth_signTransaction", "account_signTransaction", "eth_sendTransaction", "nitrosign_approval",
	"eth_chainId",
}

// FuzzDispatch calls every method with arbitrary params against a fake
// host whose answer to the sign request is chosen by the fuzzer: a good
// one, or arbitrary bytes with status 200, 202, 403 or 503. The agent must
// answer every request with a result or an error that encodes, never
// panic, and never return a signature the host made up.
func FuzzDispatch(f *testing.F) {
	h := newFakeHost(f)
	a := newFakeAgent(f, h, nil)
	f.Fuzz(func(t *testing.T, m uint8, params []byte, mode uint8, answer []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		status := []int{0, http.StatusOK, http.StatusAccepted, http.StatusForbidden, http.StatusServiceUnavailable}[int(mode)%5]
		if status == 0 {
			h.setAnswer(nil)
		} else {
			h.setAnswer(func([]byte) (int, []byte) { return status, answer })
		}
		req := jsonrpc.Request{Method: method, Params: params, ID: json.RawMessage("1")}
		if len(params) > 0 && params[0] != '[' && params[0] != '{' || !json.Valid(params) {
			req.Params = nil
		}
		res, jerr := a.Dispatch(context.Background(), req)
		if jerr == nil {
			if status == http.StatusOK && methods[method].signs {
				t.Fatalf("%s signed with a made-up answer %q: %v", method, answer, res)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("%s: result %v does not encode: %v", method, res, err)
			}
		}
		out := jsonrpc.Encode([]jsonrpc.Response{jsonrpc.ResponseTo(req, res, jerr)}, false)
		if !json.Valid(out) {
			t.Fatalf("%s: answer %q is not JSON", method, out)
		}
	})
}
