package testgen

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
)

// TestDeterministic checks that a seed gives the same inputs on every run:
// committed fuzz seeds are made from them.
func TestDeterministic(t *testing.T) {
	gen := func() []byte {
		r := rand.New(rand.NewPCG(1, 2))
		var b []byte
		for _, typ := range TxTypes {
			b = append(b, Tx(r, typ).EncodeUnsigned()...)
		}
		b = append(b, TypedData(r)...)
		for _, f := range Functions {
			b = append(b, EncodeCall(f.Gen(r, 0))...)
		}
		return b
	}
	if !bytes.Equal(gen(), gen()) {
		t.Fatal("the same seed gave different inputs")
	}
}

// TestGenerated checks that what the generators make is what they promise:
// transactions that ethtx decodes to the same encoding, typed-data
// documents that are JSON, calls of the function they are listed under,
// and unknown selectors that are not any function's.
func TestGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		for _, typ := range TxTypes {
			enc := Tx(r, typ).EncodeUnsigned()
			tx, err := ethtx.DecodeUnsigned(enc)
			if err != nil || tx.Type != typ || !bytes.Equal(tx.EncodeUnsigned(), enc) {
				t.Fatalf("%v transaction %x: %v", typ, enc, err)
			}
		}
		if js := TypedData(r); !json.Valid(js) {
			t.Fatalf("not JSON: %s", js)
		}
		for i, f := range Functions {
			want := f.Gen(r, 0)
			data := EncodeCall(want)
			CheckCanonical(t, CheckDecode(t, i, data, want, f.Sig), data)
		}
		data, c := unknownCall(r)
		if KnownSelector([4]byte(data)) || c.(*calldata.Unknown).ID != [4]byte(data) {
			t.Fatalf("unknown call %x", data)
		}
	}
	for _, f := range Functions {
		if !KnownSelector(abitest.Selector(f.Sig)) {
			t.Errorf("%s: selector not known", f.Sig)
		}
	}
}
