package calldata

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
)

// Random calls of every function this package decodes, for the round-trip
// test below and the seeds of FuzzDecode.

// function is a function this package decodes, with a generator of random
// calls. (crosscheck/calldata has the same generators, and packs their
// arguments with go-ethereum's accounts/abi: keep the two in step.)
type function struct {
	sig string
	gen func(r *rand.Rand, depth int) Call
}

// functions lists every function decoded (set in init: its generators use it).
var functions []function

func init() {
	functions = []function{
		{sigTransfer, func(r *rand.Rand, _ int) Call {
			to, amount := randAddr(r), randUint(r)
			return &ERC20Transfer{To: to, Amount: amount}
		}},
		{sigTransferFrom, func(r *rand.Rand, _ int) Call {
			from, to, v := randAddr(r), randAddr(r), randUint(r)
			return &TransferFrom{From: from, To: to, Value: v}
		}},
		{sigApprove, func(r *rand.Rand, _ int) Call {
			s, v := randAddr(r), randUint(r)
			return &Approve{Spender: s, Amount: v}
		}},
		{sigIncreaseAllowance, func(r *rand.Rand, _ int) Call {
			s, v := randAddr(r), randUint(r)
			return &IncreaseAllowance{Spender: s, Added: v}
		}},
		{sigSafeTransferFrom721, func(r *rand.Rand, _ int) Call {
			from, to, id := randAddr(r), randAddr(r), randUint(r)
			return &SafeTransferFrom721{From: from, To: to, TokenID: id}
		}},
		{sigSafeTransferFrom721Data, func(r *rand.Rand, _ int) Call {
			from, to, id, data := randAddr(r), randAddr(r), randUint(r), randBytes(r)
			return &SafeTransferFrom721{From: from, To: to, TokenID: id, Data: data, WithData: true}
		}},
		{sigSafeTransferFrom1155, func(r *rand.Rand, _ int) Call {
			from, to, id, amount, data := randAddr(r), randAddr(r), randUint(r), randUint(r), randBytes(r)
			return &SafeTransferFrom1155{From: from, To: to, ID: id, Amount: amount, Data: data}
		}},
		{sigSetApprovalForAll, func(r *rand.Rand, _ int) Call {
			op, ok := randAddr(r), r.IntN(2) == 1
			return &SetApprovalForAll{Operator: op, Approved: ok}
		}},
		{sigExecTransaction, genExecTransaction},
		{sigMultiSend, genMultiSend},
	}
}

// randInner returns the data of a random inner call at depth and its
// decoding: empty, unknown, or (while depth allows) any function.
func randInner(r *rand.Rand, depth int) ([]byte, Call) {
	switch n := r.IntN(8); {
	case n == 0:
		return nil, &NoCall{}
	case n == 1:
		return randUnknown(r)
	}
	for {
		f := functions[r.IntN(len(functions))]
		if depth >= MaxDepth-1 && (f.sig == sigExecTransaction || f.sig == sigMultiSend) {
			continue
		}
		want := f.gen(r, depth+1)
		return encode(want), want
	}
}

func genExecTransaction(r *rand.Rand, depth int) Call {
	data, inner := randInner(r, depth)
	c := &SafeExecTransaction{
		To: randAddr(r), Value: randUint(r), Data: data, Operation: Operation(r.IntN(2)),
		SafeTxGas: randUint(r), BaseGas: randUint(r), GasPrice: randUint(r),
		GasToken: randAddr(r), RefundReceiver: randAddr(r), Signatures: randBytes(r),
		Inner: inner,
	}
	return c
}

func genMultiSend(r *rand.Rand, depth int) Call {
	c := &MultiSend{}
	for range r.IntN(6) {
		data, inner := randInner(r, depth)
		c.Calls = append(c.Calls, MultiSendCall{Operation: Operation(r.IntN(2)), To: randAddr(r), Value: randUint(r), Data: data, Call: inner})
	}
	return c
}

// TestRandomCalls decodes thousands of random calls of every function, as
// the tests' encoder encodes them, and checks that the decoded call is the
// one encoded and re-encodes to the same bytes. (crosscheck/calldata packs
// the same calls with go-ethereum's accounts/abi, which checks the encoder.)
func TestRandomCalls(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for _, f := range functions {
		t.Run(f.sig, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(len(f.sig))))
			for i := range n {
				want := f.gen(r, 0)
				data := encode(want)
				got, err := Decode(data)
				if err != nil {
					t.Fatalf("#%d: Decode(%x): %v", i, data, err)
				}
				if g, w := describe(got), describe(want); g != w {
					t.Fatalf("#%d: Decode(%x)\n got %s\nwant %s", i, data, g, w)
				}
				if got.Method() != f.sig {
					t.Fatalf("#%d: Method() = %q, want %q", i, got.Method(), f.sig)
				}
				if enc := encode(got); !bytes.Equal(enc, data) {
					t.Fatalf("#%d: re-encoding gives\n%x\nwant\n%x", i, enc, data)
				}
			}
		})
	}
}

// TestSelectors checks the selectors, as computed by this package, against
// their well-known values. (crosscheck/calldata checks them against
// go-ethereum's Keccak-256.)
func TestSelectors(t *testing.T) {
	tests := []struct {
		call Call
		want string
	}{
		{&ERC20Transfer{}, "a9059cbb"},
		{&TransferFrom{}, "23b872dd"},
		{&Approve{}, "095ea7b3"},
		{&IncreaseAllowance{}, "39509351"},
		{&SafeTransferFrom721{}, "42842e0e"},
		{&SafeTransferFrom721{WithData: true}, "b88d4fde"},
		{&SafeTransferFrom1155{}, "f242432a"},
		{&SetApprovalForAll{}, "a22cb465"},
		{&SafeExecTransaction{}, "6a761202"},
		{&MultiSend{}, "8d80ff0a"},
	}
	for _, tt := range tests {
		sel := tt.call.Selector()
		if got := fmt.Sprintf("%x", sel); got != tt.want {
			t.Errorf("%s: selector %s, want %s", tt.call.Method(), got, tt.want)
		}
	}
	u := &Unknown{ID: [4]byte{1, 2, 3, 4}}
	if u.Selector() != u.ID || u.Method() != "" {
		t.Errorf("Unknown: Selector() %x, Method() %q", u.Selector(), u.Method())
	}
	if n := (&NoCall{}); n.Selector() != [4]byte{} || n.Method() != "" {
		t.Errorf("NoCall: Selector() %x, Method() %q", n.Selector(), n.Method())
	}
}

// bigOf returns the integer of hex s, or panics.
func bigOf(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 0)
	if !ok {
		panic(s)
	}
	return v
}
