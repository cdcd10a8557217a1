package jsonrpc

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: Decode never panics, refuses with the right code (a parse
// error exactly when the body is not valid UTF-8 JSON within MaxBody), and
// every request it accepts re-encodes to the same members as sent; every
// answer encodes to valid JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"eth_accounts","id":1}`,
		`{"jsonrpc":"2.0","method":"eth_signTransaction","params":[{"from":"0x01","to":"0x02","gas":"0x5208","value":"0x1"}],"id":"a"}`,
		`{"jsonrpc":"2.0","method":"account_signTransaction","params":{"a":[1,2]},"id":null}`,
		`{"jsonrpc":"2.0","method":"notify"}`,
		`[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"foo":"boo"},1]`,
		`[]`, `[1,2,3]`, `{`, `null`, ` "x" `,
		`{"jsonrpc":"2.0","method":"m","id":1,"id":2}`,
		`{"jsonrpc":"2\u002e0","method":"\u006d","id":-1.5e3}`,
		`{"jsonrpc":"2.0","method":"m","params":["\ud800"],"id":1}`,
		`{"jsonrpc":"2.0","Method":"m","id":1}`,
		`{"jsonrpc":"2.0","method":"m","params":"bar","id":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, batch, err := Decode(body)
		if err != nil {
			wellFormed := len(body) <= MaxBody && utf8.Valid(body) && json.Valid(body)
			if reqs != nil {
				t.Fatalf("error %v with requests", err)
			}
			switch err.Code {
			case CodeParseError:
				if wellFormed {
					t.Fatalf("parse error for valid JSON: %v", err)
				}
			case CodeInvalidRequest:
				if !wellFormed || !batch {
					t.Fatalf("whole-body Invalid Request for a body that is not a well-formed batch: %v", err)
				}
			default:
				t.Fatalf("code %d", err.Code)
			}
			checkEncodes(t, []Response{{Error: err}}, false)
			return
		}
		var elems []json.RawMessage
		if batch {
			if e := json.Unmarshal(body, &elems); e != nil || len(elems) != len(reqs) || len(reqs) == 0 || len(reqs) > MaxBatch {
				t.Fatalf("batch of %d requests from %d elements (%v)", len(reqs), len(elems), e)
			}
		} else {
			if len(reqs) != 1 {
				t.Fatalf("%d requests from one", len(reqs))
			}
			elems = []json.RawMessage{bytes.TrimSpace(body)}
		}
		resps := make([]Response, len(reqs))
		for i, r := range reqs {
			resps[i] = ResponseTo(r, "ok", nil)
			if r.Invalid != nil {
				if r.Invalid.Code != CodeInvalidRequest {
					t.Fatalf("invalid request with code %d", r.Invalid.Code)
				}
				continue
			}
			sameMembers(t, elems[i], r)
		}
		checkEncodes(t, resps, batch)
	})
}

// sameMembers checks that r, re-encoded, has exactly the members of elem,
// each with the same value.
func sameMembers(t *testing.T, elem []byte, r Request) {
	t.Helper()
	again, err := r.MarshalJSON()
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", r, err)
	}
	var sent, got map[string]json.RawMessage
	if err := json.Unmarshal(elem, &sent); err != nil {
		t.Fatalf("accepted %q, which is not an object: %v", elem, err)
	}
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	if len(sent) != len(got) {
		t.Fatalf("sent %s, re-encoded %s", elem, again)
	}
	for k, v := range sent {
		if k == "jsonrpc" || k == "method" {
			// Escapes may differ; the values must not.
			var a, b string
			if json.Unmarshal(v, &a) != nil || json.Unmarshal(got[k], &b) != nil || a != b {
				t.Fatalf("member %q: sent %s, re-encoded %s", k, v, got[k])
			}
			continue
		}
		var a, b bytes.Buffer
		if json.Compact(&a, v) != nil || json.Compact(&b, got[k]) != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("member %q: sent %s, re-encoded %s", k, v, got[k])
		}
	}
}

func checkEncodes(t *testing.T, resps []Response, batch bool) {
	t.Helper()
	out := Encode(resps, batch)
	if !json.Valid(out) {
		t.Fatalf("Encode gave invalid JSON %q", out)
	}
	if batch != (out[0] == '[') {
		t.Fatalf("batch %v encoded as %q", batch, out)
	}
}
