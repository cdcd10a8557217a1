package txargs

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seeds in testdata/fuzz")

// seeds are the client shapes, one random transaction object of each
// type, and a few refusals.
func seeds(t *testing.T) map[string][]byte {
	s := map[string][]byte{}
	for name, js := range clientShapes {
		s[name] = []byte(js)
	}
	r := rand.New(rand.NewPCG(15, 2))
	for _, typ := range testgen.TxTypes {
		tx := testgen.Tx(r, typ)
		for len(tx.Data) > 256 {
			tx = testgen.Tx(r, typ)
		}
		s["random "+strings.ToLower(typ.String())] = argsOf(t, tx)
	}
	s["null members"] = []byte(`{"from":null,"to":null,"nonce":null,"accessList":null}`)
	s["duplicate"] = []byte(`{"gas":"0x1","gas":"0x1"}`)
	s["sidecar"] = []byte(`{"blobs":[],"blobVersionedHashes":[]}`)
	return s
}

func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzParse", "seed ", '-', seeds(t), *updateCorpus, "go test ./agent/txargs -run TestSeedCorpus -update-corpus")
}

// FuzzParse: Parse never panics; what it accepts has a type or a clear
// error, builds a transaction that ethtx decodes, re-encodes as a
// transaction object that parses to the same transaction, and has a
// SignedJSON that is valid JSON.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := Parse(raw)
		if err != nil {
			if a != nil {
				t.Fatalf("Args with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "txargs: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON")
		}
		if _, err := a.TxType(); err != nil {
			if a.Missing() != nil {
				t.Fatalf("Missing with type error")
			}
			return
		}
		tx, err := a.Tx()
		if err != nil {
			return
		}
		if len(a.Missing()) != 0 {
			t.Fatalf("Tx succeeded with %q missing", a.Missing())
		}
		enc := tx.EncodeUnsigned()
		if _, err := ethtx.DecodeUnsigned(enc); err != nil {
			t.Fatalf("Tx not decodable: %v", err)
		}
		again, err := Parse(argsOf(t, tx))
		if err != nil {
			t.Fatalf("re-encoded object refused: %v", err)
		}
		tx2, err := again.Tx()
		if err != nil || !bytes.Equal(tx2.EncodeUnsigned(), enc) {
			t.Fatalf("re-encoded object differs (%v)", err)
		}
	})
}
