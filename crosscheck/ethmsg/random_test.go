package ethmsg

import (
	"math/rand/v2"
	"testing"

	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// TestGethRandom compares hashes with go-ethereum on random typed data:
// random type graphs (nested structs, arrays of structs, fixed-size, dynamic
// and nested arrays, recursion through dynamic arrays, names that are
// prefixes of one another or sort lower case after upper case) holding every
// atomic type, with values written in every form both accept: the
// documents of ethmsg's TestRandom (testgen.TypedData, same seed).
func TestGethRandom(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 100
	}
	r := rand.New(rand.NewPCG(712, 191))
	var kinds [ethmsg.KindString + 1]int
	for i := range n {
		js := testgen.TypedData(r)
		td, err := ethmsg.ParseTypedData(js)
		if err != nil {
			t.Fatalf("case %d: ParseTypedData: %v\n%s", i, err, js)
		}
		gh, err := gethHash(js)
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, js)
		}
		if td.Hash() != gh {
			t.Fatalf("case %d: Hash() = %x, go-ethereum %x\n%s", i, td.Hash(), gh, js)
		}
		ds, mh, enc := gethParts(t, js)
		if td.DomainSeparator() != ds || td.MessageHash() != mh {
			t.Fatalf("case %d: DomainSeparator/MessageHash differ from go-ethereum's\n%s", i, js)
		}
		if got, _ := td.EncodeType(td.PrimaryType()); got != enc {
			t.Fatalf("case %d: EncodeType = %q, go-ethereum %q", i, got, enc)
		}
		countKinds(td.Message(), &kinds)
	}
	for k := ethmsg.KindStruct; k <= ethmsg.KindString; k++ {
		if kinds[k] == 0 {
			t.Errorf("no value of kind %v was generated", k)
		}
	}
	t.Logf("values by kind: %v", kinds[1:])
}

func countKinds(v *ethmsg.Value, kinds *[ethmsg.KindString + 1]int) {
	kinds[v.Kind]++
	for _, f := range v.Fields {
		countKinds(f.Value, kinds)
	}
	for _, e := range v.Elems {
		countKinds(e, kinds)
	}
}
