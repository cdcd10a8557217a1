package jsonrpc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// specDispatch implements the methods of the specification's examples
// (section 7), and records what it was called with.
type specDispatch struct{ calls []string }

func (d *specDispatch) dispatch(_ context.Context, r Request) (any, *Error) {
	d.calls = append(d.calls, r.Method)
	switch r.Method {
	case "subtract":
		var pos []float64
		if json.Unmarshal(r.Params, &pos) == nil && len(pos) == 2 {
			return pos[0] - pos[1], nil
		}
		var named struct{ Minuend, Subtrahend float64 }
		if json.Unmarshal(r.Params, &named) == nil {
			return named.Minuend - named.Subtrahend, nil
		}
		return nil, NewError(CodeInvalidParams, "", nil)
	case "sum":
		var xs []float64
		if json.Unmarshal(r.Params, &xs) != nil {
			return nil, NewError(CodeInvalidParams, "", nil)
		}
		var s float64
		for _, x := range xs {
			s += x
		}
		return s, nil
	case "get_data":
		return []any{"hello", 5}, nil
	case "update", "notify_hello", "notify_sum":
		return nil, nil
	}
	return nil, NewError(CodeMethodNotFound, "", nil)
}

// post sends body to h as a JSON-RPC client would.
func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// normalize decodes a response body for comparison, dropping each error's
// "data": the specification's examples leave it out, and ours say why.
func normalize(t *testing.T, b string) any {
	t.Helper()
	if b == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(b), &v); err != nil {
		t.Fatalf("response %q is not JSON: %v", b, err)
	}
	strip := func(m any) {
		if o, ok := m.(map[string]any); ok {
			if e, ok := o["error"].(map[string]any); ok {
				delete(e, "data")
			}
		}
	}
	if a, ok := v.([]any); ok {
		for _, m := range a {
			strip(m)
		}
	} else {
		strip(v)
	}
	return v
}

// TestSpecificationExamples runs the examples of the JSON-RPC 2.0
// specification, section 7, copied from its text: "-->" data sent,
// "<--" data received ("" for nothing).
func TestSpecificationExamples(t *testing.T) {
	for _, tc := range []struct {
		name       string
		send, want string
		status     int
	}{
		{"positional parameters 1", `{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 1}`, 200},
		{"positional parameters 2", `{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`,
			`{"jsonrpc": "2.0", "result": -19, "id": 2}`, 200},
		{"named parameters 1", `{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 3}`, 200},
		{"named parameters 2", `{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 4}`, 200},
		{"notification 1", `{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`, ``, 204},
		{"notification 2", `{"jsonrpc": "2.0", "method": "foobar"}`, ``, 204},
		{"non-existent method", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
			`{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`, 200},
		{"invalid JSON", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
			`{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`, 400},
		{"invalid Request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
			`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`, 400},
		{"batch, invalid JSON", `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`, `{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`, 400},
		{"empty Array", `[]`,
			`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`, 400},
		{"invalid Batch (but not empty)", `[1]`,
			`[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]`, 200},
		{"invalid Batch", `[1,2,3]`, `[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]`, 200},
		{"batch", `[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]`, `[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]`, 200},
		{"batch, all notifications", `[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]`, ``, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &specDispatch{}
			rec := post(t, NewHTTPHandler(d.dispatch), tc.send)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			got, want := normalize(t, rec.Body.String()), normalize(t, tc.want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %s\nwant %s", rec.Body.String(), tc.want)
			}
			if tc.want != "" && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}
