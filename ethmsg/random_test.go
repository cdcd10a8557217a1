package ethmsg

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nitrosign/nitrosign/internal/testgen"
)

// TestRandom parses random typed data: random type graphs (nested structs,
// arrays of structs, fixed-size, dynamic and nested arrays, recursion through
// dynamic arrays, names that are prefixes of one another or sort lower case
// after upper case) holding every atomic type, with values written in every
// form go-ethereum accepts too (testgen.TypedData). crosscheck/ethmsg
// compares the hashes of the same documents with go-ethereum's.
func TestRandom(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 100
	}
	r := rand.New(rand.NewPCG(712, 191))
	var kinds [KindString + 1]int
	for i := range n {
		js := testgen.TypedData(r)
		td, err := ParseTypedData(js)
		if err != nil {
			t.Fatalf("case %d: ParseTypedData: %v\n%s", i, err, js)
		}
		ds, mh := td.DomainSeparator(), td.MessageHash()
		if keccak256([]byte{0x19, 0x01}, ds[:], mh[:]) != td.Hash() {
			t.Fatalf("case %d: Hash() is not keccak256(0x19 0x01 || DomainSeparator() || MessageHash())\n%s", i, js)
		}
		if again, err := ParseTypedData(js); err != nil || again.Hash() != td.Hash() {
			t.Fatalf("case %d: second parse: %v", i, err)
		}
		countKinds(td.Message(), &kinds)
		if i < 12 {
			commitSeed(t, "FuzzParseTypedData", fmt.Sprintf("random-%d", i), string(js))
		}
	}
	for k := KindStruct; k <= KindString; k++ {
		if kinds[k] == 0 {
			t.Errorf("no value of kind %v was generated", k)
		}
	}
	t.Logf("values by kind: %v", kinds[1:])
}

func countKinds(v *Value, kinds *[KindString + 1]int) {
	kinds[v.Kind]++
	for _, f := range v.Fields {
		countKinds(f.Value, kinds)
	}
	for _, e := range v.Elems {
		countKinds(e, kinds)
	}
}
