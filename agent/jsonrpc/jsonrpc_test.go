package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	for _, tc := range []struct {
		name, body     string
		method, params string
		id             string // "" for none
	}{
		{"no params", `{"jsonrpc":"2.0","method":"eth_accounts","id":1}`, "eth_accounts", "", "1"},
		{"array params", `{"jsonrpc":"2.0","method":"m","params":[1, "a"],"id":"x"}`, "m", `[1, "a"]`, `"x"`},
		{"object params", `{"params":{"a":1},"id":null,"method":"m","jsonrpc":"2.0"}`, "m", `{"a":1}`, "null"},
		{"notification", `{"jsonrpc":"2.0","method":"m"}`, "m", "", ""},
		{"id kept as written", `{"jsonrpc":"2.0","method":"m","id":123456789012345678901234567890}`, "m", "", "123456789012345678901234567890"},
		{"fractional id", `{"jsonrpc":"2.0","method":"m","id":-1.5e3}`, "m", "", "-1.5e3"},
		{"escaped id", `{"jsonrpc":"2.0","method":"m","id":"\u00e9\n"}`, "m", "", `"\u00e9\n"`},
		{"escaped version and method", `{"jsonrpc":"2\u002e0","method":"eth_\u0073ign","id":1}`, "eth_sign", "", "1"},
		{"whitespace", " \r\n\t{ \"jsonrpc\" : \"2.0\" , \"method\" : \"m\" , \"id\" : 7 } \n", "m", "", "7"},
		{"longest method", `{"jsonrpc":"2.0","method":"` + strings.Repeat("m", MaxMethod) + `","id":1}`, strings.Repeat("m", MaxMethod), "", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, batch, err := Decode([]byte(tc.body))
			if err != nil || batch || len(reqs) != 1 {
				t.Fatalf("Decode = %v, %v, %v", reqs, batch, err)
			}
			r := reqs[0]
			if r.Invalid != nil {
				t.Fatalf("invalid: %v (%v)", r.Invalid, r.Invalid.Data)
			}
			if r.Method != tc.method || string(r.Params) != tc.params || string(r.ID) != tc.id {
				t.Errorf("got method %q params %q id %q", r.Method, r.Params, r.ID)
			}
			if r.IsNotification() != (tc.id == "") {
				t.Errorf("IsNotification() = %v", r.IsNotification())
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	const ok = `"jsonrpc":"2.0","method":"m"`
	for _, tc := range []struct {
		name, body string
		code       int
		batch      bool   // a whole-body error in a batch
		id         string // the id still echoed, "" for null
	}{
		{"empty body", ``, CodeParseError, false, ""},
		{"whitespace only", ` `, CodeParseError, false, ""},
		{"trailing value", `{` + ok + `} {}`, CodeParseError, false, ""},
		{"truncated", `{` + ok, CodeParseError, false, ""},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"method\":\"m\xff\"}", CodeParseError, false, ""},
		{"too large", `{` + ok + `,"params":["` + strings.Repeat("a", MaxBody) + `"]}`, CodeParseError, false, ""},
		{"empty batch", `[ ]`, CodeInvalidRequest, true, ""},
		{"batch too long", `[` + strings.TrimSuffix(strings.Repeat(`{`+ok+`},`, MaxBatch+1), ",") + `]`, CodeInvalidRequest, true, ""},
		{"not an object", `"2.0"`, CodeInvalidRequest, false, ""},
		{"null", `null`, CodeInvalidRequest, false, ""},
		{"no version", `{"method":"m","id":1}`, CodeInvalidRequest, false, "1"},
		{"version 1.0", `{"jsonrpc":"1.0","method":"m","id":1}`, CodeInvalidRequest, false, "1"},
		{"version number", `{"jsonrpc":2.0,"method":"m","id":1}`, CodeInvalidRequest, false, "1"},
		{"version null", `{"jsonrpc":null,"method":"m","id":1}`, CodeInvalidRequest, false, "1"},
		{"version with space", `{"jsonrpc":"2.0 ","method":"m","id":1}`, CodeInvalidRequest, false, "1"},
		{"no method", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, false, "1"},
		{"method null", `{"jsonrpc":"2.0","method":null,"id":1}`, CodeInvalidRequest, false, "1"},
		{"method number", `{"jsonrpc":"2.0","method":1,"id":1}`, CodeInvalidRequest, false, "1"},
		{"method empty", `{"jsonrpc":"2.0","method":"","id":1}`, CodeInvalidRequest, false, "1"},
		{"method too long", `{"jsonrpc":"2.0","method":"` + strings.Repeat("m", MaxMethod+1) + `","id":1}`, CodeInvalidRequest, false, "1"},
		{"params string", `{` + ok + `,"params":"bar","id":1}`, CodeInvalidRequest, false, "1"},
		{"params null", `{` + ok + `,"params":null,"id":1}`, CodeInvalidRequest, false, "1"},
		{"params number", `{` + ok + `,"params":3,"id":1}`, CodeInvalidRequest, false, "1"},
		{"id object", `{` + ok + `,"id":{}}`, CodeInvalidRequest, false, ""},
		{"id array", `{` + ok + `,"id":[1]}`, CodeInvalidRequest, false, ""},
		{"id bool", `{` + ok + `,"id":true}`, CodeInvalidRequest, false, ""},
		{"unknown member", `{` + ok + `,"id":1,"extra":1}`, CodeInvalidRequest, false, ""},
		{"member in other case", `{"jsonrpc":"2.0","Method":"m","id":1}`, CodeInvalidRequest, false, ""},
		{"duplicate method", `{` + ok + `,"method":"n","id":1}`, CodeInvalidRequest, false, ""},
		{"duplicate id", `{` + ok + `,"id":1,"id":2}`, CodeInvalidRequest, false, ""},
		{"duplicate key in params", `{` + ok + `,"params":{"a":1,"a":2},"id":1}`, CodeInvalidRequest, false, ""},
		{"lone surrogate", `{` + ok + `,"params":["\ud800"],"id":1}`, CodeInvalidRequest, false, ""},
		{"too deep", `{` + ok + `,"params":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `,"id":1}`, CodeInvalidRequest, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, batch, err := Decode([]byte(tc.body))
			if err == nil {
				if len(reqs) != 1 || batch {
					t.Fatalf("Decode = %v, %v, nil; want one invalid request", reqs, batch)
				}
				err = reqs[0].Invalid
				if err == nil {
					t.Fatalf("accepted: %+v", reqs[0])
				}
				if string(reqs[0].ID) != tc.id {
					t.Errorf("id %q, want %q", reqs[0].ID, tc.id)
				}
				if reqs[0].IsNotification() {
					t.Errorf("an invalid request is no notification: it is answered")
				}
			} else if reqs != nil || batch != tc.batch {
				t.Errorf("with a whole-body error, reqs %v batch %v", reqs, batch)
			}
			if err.Code != tc.code || err.Message != standardMessage(tc.code) {
				t.Errorf("error %v, want code %d", err, tc.code)
			}
			if s, _ := err.Data.(string); s == "" {
				t.Errorf("error %v says not why", err)
			}
		})
	}
}

// TestDecodeBatchLimits: a batch of exactly MaxBatch requests decodes, and a
// body of exactly MaxBody bytes is not refused for its size.
func TestDecodeBatchLimits(t *testing.T) {
	body := `[` + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","method":"m","id":1},`, MaxBatch), ",") + `]`
	reqs, batch, err := Decode([]byte(body))
	if err != nil || !batch || len(reqs) != MaxBatch {
		t.Fatalf("Decode of %d requests = %d, %v, %v", MaxBatch, len(reqs), batch, err)
	}
	prefix, suffix := `{"jsonrpc":"2.0","method":"m","params":["`, `"]}`
	body = prefix + strings.Repeat("a", MaxBody-len(prefix)-len(suffix)) + suffix
	if reqs, _, err := Decode([]byte(body)); err != nil || reqs[0].Invalid != nil {
		t.Fatalf("a body of MaxBody bytes refused: %v %v", err, reqs[0].Invalid)
	}
}

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		resps []Response
		batch bool
		want  string
	}{
		{"result", []Response{{ID: json.RawMessage(`1`), Result: "0xab"}}, false,
			`{"jsonrpc":"2.0","result":"0xab","id":1}`},
		{"null result", []Response{{ID: json.RawMessage(`"a"`)}}, false,
			`{"jsonrpc":"2.0","result":null,"id":"a"}`},
		{"error with data", []Response{{ID: json.RawMessage(`2`), Error: NewError(CodeRefused, "refused by policy", map[string]string{"rule": "allowlist"})}}, false,
			`{"jsonrpc":"2.0","error":{"code":-32000,"message":"refused by policy","data":{"rule":"allowlist"}},"id":2}`},
		{"null id", []Response{{Error: NewError(CodeParseError, "", nil)}}, false,
			`{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`},
		{"big id kept", []Response{{ID: json.RawMessage(`123456789012345678901234567890`), Result: 1}}, false,
			`{"jsonrpc":"2.0","result":1,"id":123456789012345678901234567890}`},
		{"unencodable result", []Response{{ID: json.RawMessage(`3`), Result: math.NaN()}}, false,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error","data":"jsonrpc: response cannot be encoded"},"id":3}`},
		{"unencodable data", []Response{{ID: json.RawMessage(`3`), Error: NewError(CodeRefused, "", func() {})}}, false,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error","data":"jsonrpc: response cannot be encoded"},"id":3}`},
		{"no HTML escaping", []Response{{ID: json.RawMessage(`"<&>"`), Result: "<&>"}}, false,
			`{"jsonrpc":"2.0","result":"<&>","id":"<&>"}`},
		{"id not JSON", []Response{{ID: json.RawMessage(`{`), Result: 1}}, false,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error","data":"jsonrpc: response cannot be encoded"},"id":null}`},
		{"batch of one", []Response{{ID: json.RawMessage(`1`), Result: true}}, true,
			`[{"jsonrpc":"2.0","result":true,"id":1}]`},
		{"batch in order", []Response{{ID: json.RawMessage(`2`), Result: 2}, {ID: json.RawMessage(`1`), Error: NewError(CodeApprovalPending, "approval pending", nil)}}, true,
			`[{"jsonrpc":"2.0","result":2,"id":2},{"jsonrpc":"2.0","error":{"code":-32001,"message":"approval pending"},"id":1}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Encode(tc.resps, tc.batch)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAgentCodesInImplementationRange(t *testing.T) {
	for _, c := range []int{CodeRefused, CodeApprovalPending, CodeEnclaveUnavailable, CodeAttestationFailed} {
		if c > -32000 || c < -32099 {
			t.Errorf("code %d outside -32099..-32000", c)
		}
		if NewError(c, "", nil).Message != "Server error" {
			t.Errorf("code %d: default message", c)
		}
	}
}

func TestHTTPRefusals(t *testing.T) {
	called := false
	h := NewHTTPHandler(func(context.Context, Request) (any, *Error) { called = true; return nil, nil })
	body := `{"jsonrpc":"2.0","method":"m","id":1}`
	for _, tc := range []struct {
		name, method, ctype, body string
		status                    int
	}{
		{"GET", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, "application/json", body, http.StatusMethodNotAllowed},
		{"no content type", http.MethodPost, "", body, http.StatusUnsupportedMediaType},
		{"text/plain", http.MethodPost, "text/plain", body, http.StatusUnsupportedMediaType},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", body, http.StatusUnsupportedMediaType},
		{"latin-1", http.MethodPost, "application/json; charset=iso-8859-1", body, http.StatusUnsupportedMediaType},
		{"other parameter", http.MethodPost, "application/json; foo=bar", body, http.StatusUnsupportedMediaType},
		{"too large", http.MethodPost, "application/json", body + strings.Repeat(" ", MaxBody), http.StatusRequestEntityTooLarge},
		{"parse error", http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{"invalid request", http.MethodPost, "application/json", `{"jsonrpc":"2.0","method":"m","id":1,"x":0}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q", rec.Header().Get("Allow"))
			}
		})
	}
	if called {
		t.Error("dispatch called for a refused body")
	}
	// Content-Type parameters JSON allows.
	for _, ct := range []string{"application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("Content-Type %q: status %d", ct, rec.Code)
		}
	}
}

// TestHTTPBatchSequentialInOrder: a batch is dispatched one request at a
// time in its order (nonces), notifications included, and answered in
// its order without the notifications.
func TestHTTPBatchSequentialInOrder(t *testing.T) {
	var order []string
	inFlight := 0
	h := NewHTTPHandler(func(_ context.Context, r Request) (any, *Error) {
		inFlight++
		defer func() { inFlight-- }()
		if inFlight != 1 {
			t.Errorf("%d requests dispatched at once", inFlight)
		}
		order = append(order, r.Method)
		return r.Method, nil
	})
	var b strings.Builder
	b.WriteString("[")
	var want []string
	for i := range 20 {
		if i > 0 {
			b.WriteString(",")
		}
		if i%3 == 0 {
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","method":"n%d"}`, i)
		} else {
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","method":"m%d","id":%d}`, i, i)
			want = append(want, fmt.Sprintf("m%d", i))
		}
	}
	b.WriteString("]")
	rec := post(t, h, b.String())
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if len(order) != 20 {
		t.Errorf("dispatched %d of 20 requests (notifications are dispatched too)", len(order))
	}
	for i, m := range order {
		if i%3 == 0 && m != fmt.Sprintf("n%d", i) || i%3 != 0 && m != fmt.Sprintf("m%d", i) {
			t.Fatalf("dispatch order %v", order)
		}
	}
	var resps []struct {
		Result string `json:"result"`
		ID     int    `json:"id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resps); err != nil || len(resps) != len(want) {
		t.Fatalf("responses %s: %v", rec.Body, err)
	}
	for i, r := range resps {
		if r.Result != want[i] || fmt.Sprintf("m%d", r.ID) != want[i] {
			t.Errorf("response %d: %+v, want %s", i, r, want[i])
		}
	}
}

// TestHTTPCancelledBatch: once the client has gone, the rest of a batch is
// not dispatched, so that nothing is signed for nobody.
func TestHTTPCancelledBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls []string
	h := NewHTTPHandler(func(_ context.Context, r Request) (any, *Error) {
		calls = append(calls, r.Method)
		cancel() // the client goes during the first request
		return "0x1", nil
	})
	body := `[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b","id":2},{"jsonrpc":"2.0","method":"c"}]`
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if len(calls) != 1 || calls[0] != "a" {
		t.Errorf("dispatched %v after the client went", calls)
	}
	want := `[{"jsonrpc":"2.0","result":"0x1","id":1},{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error","data":"request cancelled before dispatch"},"id":2}]`
	if rec.Body.String() != want {
		t.Errorf("got  %s\nwant %s", rec.Body, want)
	}
}

// TestHTTPEchoesID: the id comes back byte for byte, even one no float64
// holds, and invalid elements of a batch keep a valid id.
func TestHTTPEchoesID(t *testing.T) {
	h := NewHTTPHandler(func(context.Context, Request) (any, *Error) { return nil, nil })
	rec := post(t, h, `[{"jsonrpc":"2.0","method":"m","id":18446744073709551617},{"jsonrpc":"1.0","method":"m","id":"\u0041"}]`)
	want := `[{"jsonrpc":"2.0","result":null,"id":18446744073709551617},{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"\"jsonrpc\" must be the string \"2.0\""},"id":"\u0041"}]`
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("status %d\ngot  %s\nwant %s", rec.Code, rec.Body, want)
	}
}

// TestRequestMarshalRoundTrip: a request encodes as a client sends it and
// decodes to itself.
func TestRequestMarshalRoundTrip(t *testing.T) {
	in := Request{Method: "eth_signTransaction", Params: json.RawMessage(`[{"to":"0x01","data":"<&>"}]`), ID: json.RawMessage(`"7"`)}
	b, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","method":"eth_signTransaction","params":[{"to":"0x01","data":"<&>"}],"id":"7"}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	reqs, _, derr := Decode(b)
	if derr != nil || reqs[0].Invalid != nil || reqs[0].Method != in.Method || !bytes.Equal(reqs[0].Params, in.Params) || !bytes.Equal(reqs[0].ID, in.ID) {
		t.Errorf("round trip: %+v %v", reqs, derr)
	}
}
