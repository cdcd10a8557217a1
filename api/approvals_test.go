package api

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

func TestDecodeApprovalRequest(t *testing.T) {
	good := `{"approval_id":"ab12","decision":"approve","approver":"alice","signature":"0a0b"}`
	for _, tc := range []struct {
		name, body, err string
	}{
		{"good", good, ""},
		{"reject", strings.Replace(good, "approve", "reject", 1), ""},
		{"other decision", strings.Replace(good, `"approve"`, `"maybe"`, 1), "decision"},
		{"unknown field", strings.Replace(good, `}`, `,"x":1}`, 1), "unknown"},
		{"duplicate field", strings.Replace(good, `}`, `,"approver":"bob"}`, 1), "duplicate"},
		{"no id", strings.Replace(good, `"ab12"`, `""`, 1), "approval_id"},
		{"long id", strings.Replace(good, `"ab12"`, `"`+strings.Repeat("a", 65)+`"`, 1), "approval_id"},
		{"no approver", strings.Replace(good, `"alice"`, `""`, 1), "approver"},
		{"no signature", strings.Replace(good, `"0a0b"`, `""`, 1), "signature"},
		{"huge signature", strings.Replace(good, `"0a0b"`, `"`+strings.Repeat("0", 513)+`"`, 1), "signature"},
		{"trailing data", good + "{}", "trailing"},
		{"not an object", `[]`, "approval"},
		{"too large", `{"approval_id":"` + strings.Repeat("a", MaxApprovalBodySize) + `"}`, "approval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if *update && len(tc.body) <= 1024 {
				fuzzseed.Write(t, "FuzzDecodeApprovalRequest", "table-"+tc.name, []byte(tc.body))
			}
			r, err := DecodeApprovalRequest([]byte(tc.body))
			if tc.err == "" {
				if err != nil || r.Approver == "" {
					t.Fatalf("%v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// FuzzDecodeApprovalRequest: POST /v1/approvals bodies are untrusted; the
// decoder never panics, and what it accepts re-encodes to a request it
// accepts again, with the same fields.
func FuzzDecodeApprovalRequest(f *testing.F) {
	f.Add([]byte(`{"approval_id":"ab12","decision":"approve","approver":"alice","signature":"0a0b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeApprovalRequest(b)
		if err != nil {
			return
		}
		again, _ := json.Marshal(r)
		r2, err := DecodeApprovalRequest(again)
		if err != nil || *r2 != *r {
			t.Fatalf("%s re-encoded as %s does not decode alike: %v", b, again, err)
		}
	})
}

func TestApprovalDigest(t *testing.T) {
	a, b := ApprovalDigest([]byte("x")), ApprovalDigest([]byte("y"))
	if a == b || a != ApprovalDigest([]byte("x")) {
		t.Fatal("the approval digest does not depend on the body alone")
	}
	// The construction, pinned: SHA-256(domain || SHA-256(compact body)).
	body := []byte(` { "request_id" : "r 1",` + "\n\t" + `"timestamp_ms": 1 } ` + "\n")
	compact := []byte(`{"request_id":"r 1","timestamp_ms":1}`)
	h := sha256.Sum256(compact)
	want := sha256.Sum256(append([]byte("nitrosign approval digest v2\n"), h[:]...))
	if got := ApprovalDigest(body); got != want {
		t.Fatalf("ApprovalDigest = %x, want %x", got, want)
	}
	if ApprovalDigest(compact) != want {
		t.Fatal("the compact form has another digest than the body")
	}
	// Whitespace inside a string is the request's: another digest.
	if ApprovalDigest([]byte(`{"request_id":"r  1","timestamp_ms":1}`)) == want {
		t.Fatal("whitespace inside a string does not change the digest")
	}
	// A padded body costs nothing once compact.
	padded := append([]byte("{"+strings.Repeat(" ", 256<<10)), compact[1:]...)
	c, err := CompactRequest(padded)
	if err != nil || string(c) != string(compact) || ApprovalDigest(padded) != want {
		t.Fatalf("padded body: compact %q, %v", c, err)
	}
	if _, err := CompactRequest([]byte(`{"a":`)); err == nil {
		t.Fatal("CompactRequest accepted a body that is not JSON")
	}
}

// FuzzCompactRequest: the compact form is its own compact form, has the
// body's approval digest, and decodes (DecodeSignRequest) exactly as the
// body does, so that the enclave can keep it instead of the body.
func FuzzCompactRequest(f *testing.F) {
	f.Add([]byte(` {"request_id":"r-1", "timestamp_ms":1,"key":"hot-0",` + "\n" + `"eth_personal_message":{"message":"0x6869"}}`))
	f.Add([]byte(`{"request_id":"r-1","timestamp_ms":1,"key":"hot-0","eth_typed_data":{ "types" : { } } }`))
	f.Add([]byte(`{"a":"\u00e9 \"  x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CompactRequest(b)
		if err != nil {
			if _, derr := DecodeSignRequest(b); derr == nil {
				t.Fatalf("a request that decodes does not compact: %v", err)
			}
			return
		}
		if len(c) > len(b) {
			t.Fatalf("the compact form is longer (%d) than the body (%d)", len(c), len(b))
		}
		cc, err := CompactRequest(c)
		if err != nil || string(cc) != string(c) {
			t.Fatalf("not idempotent: %q -> %q (%v)", c, cc, err)
		}
		if ApprovalDigest(b) != ApprovalDigest(c) {
			t.Fatal("the compact form has another approval digest")
		}
		r1, err1 := DecodeSignRequest(b)
		r2, err2 := DecodeSignRequest(c)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("the body decodes (%v), the compact form (%v)", err1, err2)
		}
		if err1 == nil {
			j1, _ := json.Marshal(r1)
			j2, _ := json.Marshal(r2)
			if string(j1) != string(j2) {
				t.Fatalf("decoded differently: %s, %s", j1, j2)
			}
		}
	})
}
