package ethproxy

import (
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seeds in testdata/fuzz")

var responseSeeds = map[string]string{
	"result":          `{"jsonrpc":"2.0","id":1,"result":"0x10"}`,
	"null result":     `{"jsonrpc":"2.0","id":1,"result":null}`,
	"block":           `{"jsonrpc":"2.0","id":1,"result":{"number":"0x10","baseFeePerGas":"0x3b9aca00","transactions":[]}}`,
	"error":           `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low: next nonce 5, tx nonce 4"}}`,
	"error with data": `{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted","data":"0x08c379a0"}}`,
	"null id error":   `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
	"wrong id":        `{"jsonrpc":"2.0","id":"1","result":"0x1"}`,
	"both":            `{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":""}}`,
	"batch":           `[{"jsonrpc":"2.0","id":1,"result":"0x1"}]`,
	"duplicate":       `{"jsonrpc":"2.0","id":1,"result":1,"Result":2}`,
}

func TestSeedCorpus(t *testing.T) {
	seeds := map[string][]byte{}
	for name, s := range responseSeeds {
		seeds[name] = []byte(s)
	}
	fuzzseed.Sync(t, "FuzzDecodeResponse", "seed ", '-', seeds, *updateCorpus, "go test ./agent/ethproxy -run TestSeedCorpus -update-corpus")
}

// FuzzDecodeResponse: a node's answer decodes to a result that is valid
// JSON, or to the node's error, or is refused; never a panic, never both.
// Quantities and hashes read from a result are canonical.
func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := decodeResponse(data, 1)
		var rpcErr *jsonrpc.Error
		switch {
		case err == nil:
			if !json.Valid(res) {
				t.Fatalf("result %q is not JSON", res)
			}
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON")
			}
		case errors.As(err, &rpcErr):
			if res != nil {
				t.Fatal("result with an error")
			}
			if _, e := json.Marshal(rpcErr); e != nil {
				t.Fatalf("node error cannot be encoded again: %v", e)
			}
		}
		if err != nil {
			return
		}
		if x, err := parseQuantity(res, 256); err == nil {
			var s string
			if json.Unmarshal(res, &s) != nil || x.Sign() < 0 || !strings.EqualFold(s, *hexQuantity(x)) {
				t.Fatalf("quantity %s read as %v", res, x)
			}
		}
		if h, err := parseHash(res); err == nil {
			var s string
			if json.Unmarshal(res, &s) != nil || len(s) != 66 {
				t.Fatalf("hash %s read as %x", res, h)
			}
		}
	})
}

func TestParseQuantity(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" for an error
	}{
		{`"0x0"`, "0"}, {`"0x10"`, "16"}, {`"0xAb"`, "171"},
		{`"0x"`, ""}, {`"0x01"`, ""}, {`"0x-1"`, ""}, {`"0x+1"`, ""}, {`"1"`, ""}, {`16`, ""}, {`"0x_1"`, ""},
		{`"0x1` + strings.Repeat("0", 64) + `"`, ""},
	} {
		x, err := parseQuantity(json.RawMessage(tt.in), 256)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("parseQuantity(%s) = %v", tt.in, x)
		case tt.want != "" && (err != nil || x.String() != tt.want):
			t.Errorf("parseQuantity(%s) = %v, %v; want %s", tt.in, x, err, tt.want)
		}
	}
}
