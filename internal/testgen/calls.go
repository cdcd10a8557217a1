package testgen

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
)

// Function is a function package calldata decodes, with a generator of
// random calls of it.
type Function struct {
	// Sig is the function's canonical signature, as Call.Method gives it.
	Sig string
	// Gen returns a random call of the function at nesting depth depth (0
	// for the outermost): inner calls of Safe transactions and MultiSends
	// are random calls themselves, empty, or unknown, while calldata's
	// depth cap allows.
	Gen func(r *rand.Rand, depth int) calldata.Call
}

// Functions lists every function calldata decodes (set in init: the
// generators of nested calls draw from it).
var Functions []Function

// The signatures of the functions whose calls nest others.
var (
	sigExecTransaction = (&calldata.SafeExecTransaction{}).Method()
	sigMultiSend       = (&calldata.MultiSend{}).Method()
)

func init() {
	fn := func(proto calldata.Call, gen func(r *rand.Rand, depth int) calldata.Call) Function {
		return Function{Sig: proto.Method(), Gen: gen}
	}
	Functions = []Function{
		fn(&calldata.ERC20Transfer{}, func(r *rand.Rand, _ int) calldata.Call {
			to, amount := callAddr(r), callUint(r)
			return &calldata.ERC20Transfer{To: to, Amount: amount}
		}),
		fn(&calldata.TransferFrom{}, func(r *rand.Rand, _ int) calldata.Call {
			from, to, v := callAddr(r), callAddr(r), callUint(r)
			return &calldata.TransferFrom{From: from, To: to, Value: v}
		}),
		fn(&calldata.Approve{}, func(r *rand.Rand, _ int) calldata.Call {
			s, v := callAddr(r), callUint(r)
			return &calldata.Approve{Spender: s, Amount: v}
		}),
		fn(&calldata.IncreaseAllowance{}, func(r *rand.Rand, _ int) calldata.Call {
			s, v := callAddr(r), callUint(r)
			return &calldata.IncreaseAllowance{Spender: s, Added: v}
		}),
		fn(&calldata.SafeTransferFrom721{}, func(r *rand.Rand, _ int) calldata.Call {
			from, to, id := callAddr(r), callAddr(r), callUint(r)
			return &calldata.SafeTransferFrom721{From: from, To: to, TokenID: id}
		}),
		fn(&calldata.SafeTransferFrom721{WithData: true}, func(r *rand.Rand, _ int) calldata.Call {
			from, to, id, data := callAddr(r), callAddr(r), callUint(r), callBytes(r)
			return &calldata.SafeTransferFrom721{From: from, To: to, TokenID: id, Data: data, WithData: true}
		}),
		fn(&calldata.SafeTransferFrom1155{}, func(r *rand.Rand, _ int) calldata.Call {
			from, to, id, amount, data := callAddr(r), callAddr(r), callUint(r), callUint(r), callBytes(r)
			return &calldata.SafeTransferFrom1155{From: from, To: to, ID: id, Amount: amount, Data: data}
		}),
		fn(&calldata.SetApprovalForAll{}, func(r *rand.Rand, _ int) calldata.Call {
			op, ok := callAddr(r), r.IntN(2) == 1
			return &calldata.SetApprovalForAll{Operator: op, Approved: ok}
		}),
		fn(&calldata.SafeExecTransaction{}, genExecTransaction),
		fn(&calldata.MultiSend{}, genMultiSend),
	}
}

// KnownSelector reports whether sel is the selector of a function calldata
// decodes: the Keccak-256 of one of the signatures of Functions.
func KnownSelector(sel [4]byte) bool {
	for _, f := range Functions {
		if abitest.Selector(f.Sig) == sel {
			return true
		}
	}
	return false
}

// innerCall returns the data of a random inner call at depth and its
// decoding: empty, unknown, or (while depth allows) any function.
func innerCall(r *rand.Rand, depth int) ([]byte, calldata.Call) {
	switch n := r.IntN(8); {
	case n == 0:
		return nil, &calldata.NoCall{}
	case n == 1:
		return unknownCall(r)
	}
	for {
		f := Functions[r.IntN(len(Functions))]
		if depth >= calldata.MaxDepth-1 && (f.Sig == sigExecTransaction || f.Sig == sigMultiSend) {
			continue
		}
		want := f.Gen(r, depth+1)
		return EncodeCall(want), want
	}
}

func genExecTransaction(r *rand.Rand, depth int) calldata.Call {
	data, inner := innerCall(r, depth)
	c := &calldata.SafeExecTransaction{
		To: callAddr(r), Value: callUint(r), Data: data, Operation: calldata.Operation(r.IntN(2)),
		SafeTxGas: callUint(r), BaseGas: callUint(r), GasPrice: callUint(r),
		GasToken: callAddr(r), RefundReceiver: callAddr(r), Signatures: callBytes(r),
		Inner: inner,
	}
	return c
}

func genMultiSend(r *rand.Rand, depth int) calldata.Call {
	c := &calldata.MultiSend{}
	for range r.IntN(6) {
		data, inner := innerCall(r, depth)
		c.Calls = append(c.Calls, calldata.MultiSendCall{Operation: calldata.Operation(r.IntN(2)), To: callAddr(r), Value: callUint(r), Data: data, Call: inner})
	}
	return c
}

// unknownCall returns data of at least 4 bytes whose selector calldata does
// not decode, and its decoding.
func unknownCall(r *rand.Rand) ([]byte, calldata.Call) {
	for {
		data := callBytes(r)
		if len(data) < 4 {
			continue
		}
		args := data[4:]
		if len(args) == 0 {
			args = nil
		}
		c := &calldata.Unknown{ID: [4]byte(data), Args: args}
		if !KnownSelector(c.ID) {
			return data, c
		}
	}
}

// callAddr returns a random address, often one with extreme bytes.
func callAddr(r *rand.Rand) (a ethtx.Address) {
	switch r.IntN(8) {
	case 0: // zero
	case 1:
		for i := range a {
			a[i] = 0xff
		}
	default:
		for i := range a {
			a[i] = byte(r.Uint32())
		}
	}
	return a
}

// callUint returns a random integer of a random bit length up to 256.
func callUint(r *rand.Rand) *big.Int {
	switch r.IntN(8) {
	case 0:
		return new(big.Int)
	case 1:
		return new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	}
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return new(big.Int).Rsh(new(big.Int).SetBytes(b), uint(r.IntN(257)))
}

// callBytes returns random bytes of a length around the word boundaries,
// nil if empty.
func callBytes(r *rand.Rand) []byte {
	lengths := []int{0, 1, 4, 31, 32, 33, 63, 64, 65, 100, 200}
	n := lengths[r.IntN(len(lengths))]
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// EncodeCall returns the canonical encoding of c, the inverse of
// calldata.Decode, with the data of inner calls encoded from their decoded
// Call (not copied from their Data). It is the oracle of calldata's
// FuzzDecode and round-trip tests; crosscheck/calldata checks it against
// go-ethereum's abi.Pack.
func EncodeCall(c calldata.Call) []byte {
	enc, addr, num, b := abitest.Encode, abitest.AddrWord, abitest.IntWord, abitest.BoolWord
	type dyn = abitest.Dyn
	switch c := c.(type) {
	case *calldata.NoCall:
		return nil
	case *calldata.Unknown:
		return append(c.ID[:], c.Args...)
	case *calldata.ERC20Transfer:
		return enc(c.Selector(), addr(c.To), num(c.Amount))
	case *calldata.TransferFrom:
		return enc(c.Selector(), addr(c.From), addr(c.To), num(c.Value))
	case *calldata.Approve:
		return enc(c.Selector(), addr(c.Spender), num(c.Amount))
	case *calldata.IncreaseAllowance:
		return enc(c.Selector(), addr(c.Spender), num(c.Added))
	case *calldata.SafeTransferFrom721:
		if !c.WithData {
			return enc(c.Selector(), addr(c.From), addr(c.To), num(c.TokenID))
		}
		return enc(c.Selector(), addr(c.From), addr(c.To), num(c.TokenID), dyn(c.Data))
	case *calldata.SafeTransferFrom1155:
		return enc(c.Selector(), addr(c.From), addr(c.To), num(c.ID), num(c.Amount), dyn(c.Data))
	case *calldata.SetApprovalForAll:
		return enc(c.Selector(), addr(c.Operator), b(c.Approved))
	case *calldata.SafeExecTransaction:
		return enc(c.Selector(), addr(c.To), num(c.Value), dyn(EncodeCall(c.Inner)),
			abitest.UintWord(uint64(c.Operation)), num(c.SafeTxGas), num(c.BaseGas), num(c.GasPrice),
			addr(c.GasToken), addr(c.RefundReceiver), dyn(c.Signatures))
	case *calldata.MultiSend:
		var entries []abitest.MultiSendEntry
		for _, e := range c.Calls {
			entries = append(entries, abitest.MultiSendEntry{Op: uint8(e.Operation), To: e.To, Value: e.Value, Data: EncodeCall(e.Call)})
		}
		return enc(c.Selector(), dyn(abitest.PackMultiSend(entries...)))
	}
	panic(fmt.Sprintf("testgen.EncodeCall: %T", c))
}

// DescribeCall prints c completely, one field a line, so that decoded
// calls can be compared and their differences read.
func DescribeCall(c calldata.Call) string {
	var b strings.Builder
	describeTo(&b, c, "")
	return b.String()
}

func describeTo(b *strings.Builder, c calldata.Call, indent string) {
	p := func(name string, v any) {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(b, "%s  %s: %x (%d)\n", indent, name, v, len(v))
		case *big.Int:
			if v == nil {
				fmt.Fprintf(b, "%s  %s: <nil>\n", indent, name)
			} else {
				fmt.Fprintf(b, "%s  %s: %#x\n", indent, name, v)
			}
		case ethtx.Address:
			fmt.Fprintf(b, "%s  %s: %x\n", indent, name, v[:])
		default:
			fmt.Fprintf(b, "%s  %s: %v\n", indent, name, v)
		}
	}
	if c == nil {
		fmt.Fprintf(b, "%s<nil>\n", indent)
		return
	}
	fmt.Fprintf(b, "%s%T %s %x\n", indent, c, c.Method(), c.Selector())
	switch c := c.(type) {
	case *calldata.NoCall:
	case *calldata.Unknown:
		p("ID", c.ID[:])
		p("Args", c.Args)
	case *calldata.ERC20Transfer:
		p("To", c.To)
		p("Amount", c.Amount)
	case *calldata.TransferFrom:
		p("From", c.From)
		p("To", c.To)
		p("Value", c.Value)
	case *calldata.Approve:
		p("Spender", c.Spender)
		p("Amount", c.Amount)
	case *calldata.IncreaseAllowance:
		p("Spender", c.Spender)
		p("Added", c.Added)
	case *calldata.SafeTransferFrom721:
		p("From", c.From)
		p("To", c.To)
		p("TokenID", c.TokenID)
		p("Data", c.Data)
		p("WithData", c.WithData)
	case *calldata.SafeTransferFrom1155:
		p("From", c.From)
		p("To", c.To)
		p("ID", c.ID)
		p("Amount", c.Amount)
		p("Data", c.Data)
	case *calldata.SetApprovalForAll:
		p("Operator", c.Operator)
		p("Approved", c.Approved)
	case *calldata.SafeExecTransaction:
		p("To", c.To)
		p("Value", c.Value)
		p("Data", c.Data)
		p("Operation", c.Operation)
		p("SafeTxGas", c.SafeTxGas)
		p("BaseGas", c.BaseGas)
		p("GasPrice", c.GasPrice)
		p("GasToken", c.GasToken)
		p("RefundReceiver", c.RefundReceiver)
		p("Signatures", c.Signatures)
		describeTo(b, c.Inner, indent+"    ")
	case *calldata.MultiSend:
		for i, e := range c.Calls {
			fmt.Fprintf(b, "%s  call %d\n", indent, i)
			p("  Operation", e.Operation)
			p("  To", e.To)
			p("  Value", e.Value)
			p("  Data", e.Data)
			describeTo(b, e.Call, indent+"    ")
		}
	default:
		panic(fmt.Sprintf("testgen.DescribeCall: %T", c))
	}
}

// CheckDecode decodes data, made from want, a call of the function sig,
// and checks that calldata.Decode gives want back: the same fields (as
// DescribeCall prints them) and the method sig. It returns the decoded
// call; i numbers the case in the messages.
func CheckDecode(t testing.TB, i int, data []byte, want calldata.Call, sig string) calldata.Call {
	t.Helper()
	got, err := calldata.Decode(data)
	if err != nil {
		t.Fatalf("#%d: Decode(%x): %v", i, data, err)
	}
	if g, w := DescribeCall(got), DescribeCall(want); g != w {
		t.Fatalf("#%d: Decode(%x)\n got %s\nwant %s", i, data, g, w)
	}
	if got.Method() != sig {
		t.Fatalf("#%d: Method() = %q, want %q", i, got.Method(), sig)
	}
	return got
}

// CheckCanonical checks that c, which calldata.Decode accepted from data,
// re-encodes (EncodeCall) to exactly data: Decode accepts only the
// canonical encoding of a call.
func CheckCanonical(t testing.TB, c calldata.Call, data []byte) {
	t.Helper()
	if enc := EncodeCall(c); !bytes.Equal(enc, data) {
		t.Fatalf("Decode accepted\n%x\nwhich re-encodes as\n%x\n%s", data, enc, DescribeCall(c))
	}
}

// RandomCalls runs check on 2,000 random calls (200 with -short) of every
// function of Functions, in a subtest named by its signature, drawn from a
// seed of the function's own: the same calls wherever it is called from.
func RandomCalls(t *testing.T, check func(t *testing.T, i int, f Function, want calldata.Call)) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for _, f := range Functions {
		t.Run(f.Sig, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(len(f.Sig))))
			for i := range n {
				check(t, i, f, f.Gen(r, 0))
			}
		})
	}
}
