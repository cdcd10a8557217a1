package api

import (
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
}
