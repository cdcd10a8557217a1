package calldata

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nitrosign/nitrosign/ethtx"
)

// go-ethereum's accounts/abi is the reference encoder of these tests (and
// only of the tests: the package itself imports no go-ethereum code).

var gethArgs sync.Map // signature -> abi.Arguments

// gethArguments returns the abi.Arguments of the canonical signature sig.
func gethArguments(sig string) abi.Arguments {
	if v, ok := gethArgs.Load(sig); ok {
		return v.(abi.Arguments)
	}
	open := strings.IndexByte(sig, '(')
	var args abi.Arguments
	for t := range strings.SplitSeq(sig[open+1:len(sig)-1], ",") {
		typ, err := abi.NewType(t, "", nil)
		if err != nil {
			panic(err)
		}
		args = append(args, abi.Argument{Type: typ})
	}
	gethArgs.Store(sig, args)
	return args
}

// gethPack returns the calldata of sig with args, as go-ethereum packs it.
func gethPack(t testing.TB, sig string, args ...any) []byte {
	t.Helper()
	b, err := gethArguments(sig).Pack(args...)
	if err != nil {
		t.Fatalf("abi.Pack %s: %v", sig, err)
	}
	return append(crypto.Keccak256([]byte(sig))[:4], b...)
}

// gethValues returns the arguments of c as go-ethereum unpacks them,
// printed, or "" for NoCall and Unknown.
func gethValues(c Call) string {
	a := func(x ethtx.Address) common.Address { return common.Address(x) }
	b := func(x []byte) []byte { return append([]byte{}, x...) }
	var v []any
	switch c := c.(type) {
	case *NoCall, *Unknown:
		return ""
	case *ERC20Transfer:
		v = []any{a(c.To), c.Amount}
	case *TransferFrom:
		v = []any{a(c.From), a(c.To), c.Value}
	case *Approve:
		v = []any{a(c.Spender), c.Amount}
	case *IncreaseAllowance:
		v = []any{a(c.Spender), c.Added}
	case *SafeTransferFrom721:
		v = []any{a(c.From), a(c.To), c.TokenID}
		if c.WithData {
			v = append(v, b(c.Data))
		}
	case *SafeTransferFrom1155:
		v = []any{a(c.From), a(c.To), c.ID, c.Amount, b(c.Data)}
	case *SetApprovalForAll:
		v = []any{a(c.Operator), c.Approved}
	case *SafeExecTransaction:
		v = []any{a(c.To), c.Value, b(c.Data), uint8(c.Operation), c.SafeTxGas, c.BaseGas, c.GasPrice,
			a(c.GasToken), a(c.RefundReceiver), b(c.Signatures)}
	case *MultiSend:
		v = []any{b(pack(packedCalls(c)...))}
	}
	return fmt.Sprintf("%v", v)
}

// packedCalls returns the entries of m for pack.
func packedCalls(m *MultiSend) []packedCall {
	var calls []packedCall
	for _, e := range m.Calls {
		calls = append(calls, packedCall{uint8(e.Operation), e.To, e.Value, e.Data})
	}
	return calls
}

// gethUnpacked returns the arguments of data as go-ethereum unpacks them,
// printed.
func gethUnpacked(t testing.TB, sig string, data []byte) string {
	t.Helper()
	v, err := gethArguments(sig).Unpack(data[4:])
	if err != nil {
		t.Fatalf("abi.Unpack %s of accepted %x: %v", sig, data, err)
	}
	return fmt.Sprintf("%v", v)
}

// function is a function this package decodes, with a generator of random
// arguments (in go-ethereum's types) and of the call they should decode to.
type function struct {
	sig string
	gen func(t testing.TB, r *rand.Rand, depth int) (args []any, want Call)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// functions lists every function decoded (set in init: its generators use it).
var functions []function

func init() {
	functions = []function{
		{sigTransfer, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			to, amount := randAddr(r), randUint(r)
			return []any{common.Address(to), amount}, &ERC20Transfer{To: to, Amount: amount}
		}},
		{sigTransferFrom, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			from, to, v := randAddr(r), randAddr(r), randUint(r)
			return []any{common.Address(from), common.Address(to), v}, &TransferFrom{From: from, To: to, Value: v}
		}},
		{sigApprove, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			s, v := randAddr(r), randUint(r)
			return []any{common.Address(s), v}, &Approve{Spender: s, Amount: v}
		}},
		{sigIncreaseAllowance, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			s, v := randAddr(r), randUint(r)
			return []any{common.Address(s), v}, &IncreaseAllowance{Spender: s, Added: v}
		}},
		{sigSafeTransferFrom721, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			from, to, id := randAddr(r), randAddr(r), randUint(r)
			return []any{common.Address(from), common.Address(to), id},
				&SafeTransferFrom721{From: from, To: to, TokenID: id}
		}},
		{sigSafeTransferFrom721Data, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			from, to, id, data := randAddr(r), randAddr(r), randUint(r), randBytes(r)
			return []any{common.Address(from), common.Address(to), id, nonNil(data)},
				&SafeTransferFrom721{From: from, To: to, TokenID: id, Data: data, WithData: true}
		}},
		{sigSafeTransferFrom1155, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			from, to, id, amount, data := randAddr(r), randAddr(r), randUint(r), randUint(r), randBytes(r)
			return []any{common.Address(from), common.Address(to), id, amount, nonNil(data)},
				&SafeTransferFrom1155{From: from, To: to, ID: id, Amount: amount, Data: data}
		}},
		{sigSetApprovalForAll, func(t testing.TB, r *rand.Rand, _ int) ([]any, Call) {
			op, ok := randAddr(r), r.IntN(2) == 1
			return []any{common.Address(op), ok}, &SetApprovalForAll{Operator: op, Approved: ok}
		}},
		{sigExecTransaction, genExecTransaction},
		{sigMultiSend, genMultiSend},
	}
}

// randInner returns the data of a random inner call at depth and its
// decoding: empty, unknown, or (while depth allows) any function.
func randInner(t testing.TB, r *rand.Rand, depth int) ([]byte, Call) {
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
		args, want := f.gen(t, r, depth+1)
		return gethPack(t, f.sig, args...), want
	}
}

func genExecTransaction(t testing.TB, r *rand.Rand, depth int) ([]any, Call) {
	data, inner := randInner(t, r, depth)
	c := &SafeExecTransaction{
		To: randAddr(r), Value: randUint(r), Data: data, Operation: Operation(r.IntN(2)),
		SafeTxGas: randUint(r), BaseGas: randUint(r), GasPrice: randUint(r),
		GasToken: randAddr(r), RefundReceiver: randAddr(r), Signatures: randBytes(r),
		Inner: inner,
	}
	return []any{common.Address(c.To), c.Value, nonNil(c.Data), uint8(c.Operation), c.SafeTxGas, c.BaseGas,
		c.GasPrice, common.Address(c.GasToken), common.Address(c.RefundReceiver), nonNil(c.Signatures)}, c
}

func genMultiSend(t testing.TB, r *rand.Rand, depth int) ([]any, Call) {
	c := &MultiSend{}
	var calls []packedCall
	for range r.IntN(6) {
		data, inner := randInner(t, r, depth)
		e := MultiSendCall{Operation: Operation(r.IntN(2)), To: randAddr(r), Value: randUint(r), Data: data, Call: inner}
		c.Calls = append(c.Calls, e)
		calls = append(calls, packedCall{uint8(e.Operation), e.To, e.Value, e.Data})
	}
	return []any{nonNil(pack(calls...))}, c
}

// TestGethPack decodes thousands of random argument sets of every function
// as go-ethereum packs them, and checks that the decoded call holds exactly
// those arguments, that the tests' own encoder gives the same bytes, and
// that go-ethereum unpacks the same values.
func TestGethPack(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for _, f := range functions {
		t.Run(f.sig, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(len(f.sig))))
			for i := range n {
				args, want := f.gen(t, r, 0)
				data := gethPack(t, f.sig, args...)
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
					t.Fatalf("#%d: test encoder gives\n%x\nwant (abi.Pack)\n%x", i, enc, data)
				}
				if g, w := gethValues(got), gethUnpacked(t, f.sig, data); g != w {
					t.Fatalf("#%d: values %s, go-ethereum unpacks %s", i, g, w)
				}
			}
		})
	}
}

// TestSelectors checks the selectors, as computed by this package, against
// go-ethereum's Keccak-256 and against their well-known values.
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
		if ref := crypto.Keccak256([]byte(tt.call.Method()))[:4]; !bytes.Equal(sel[:], ref) {
			t.Errorf("%s: selector %x, go-ethereum computes %x", tt.call.Method(), sel, ref)
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
