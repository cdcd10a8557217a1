package policy_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/stamp"
)

// docExamples returns the JSON blocks of docs/policy.md, with every
// "public_key": "HEX" filled with a fresh key of its scheme.
func docExamples(t *testing.T) [][]byte {
	t.Helper()
	md, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, block := range strings.Split(string(md), "```json\n")[1:] {
		js := block[:strings.Index(block, "```")]
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Fatalf("a JSON block of docs/policy.md is not JSON: %v", err)
		}
		fillKeys(t, v)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func fillKeys(t *testing.T, v any) {
	switch v := v.(type) {
	case map[string]any:
		if v["public_key"] == "HEX" {
			if v["scheme"] == string(stamp.P256) {
				h, _ := approverKey(t, stamp.P256)
				v["public_key"] = h
			} else {
				v["public_key"] = hex.EncodeToString(client(t).Key)
			}
		}
		for _, e := range v {
			fillKeys(t, e)
		}
	case []any:
		for _, e := range v {
			fillKeys(t, e)
		}
	}
}

// TestDocsExamples checks that the policies of docs/policy.md parse.
func TestDocsExamples(t *testing.T) {
	ex := docExamples(t)
	if len(ex) < 2 {
		t.Fatalf("%d JSON blocks in docs/policy.md, want the full example and the dev example", len(ex))
	}
	for i, b := range ex {
		if _, err := policy.Parse(b); err != nil {
			t.Errorf("example %d of docs/policy.md: %v", i, err)
		}
	}
}
