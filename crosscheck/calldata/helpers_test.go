package calldata

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
)

// This file is a copy of calldata's test helpers (calldata/helpers_test.go
// and the generators of calldata/gen_test.go), written against the
// package's exported API: the tests' canonical encoder (the inverse of
// Decode), a printer that makes decoded calls comparable, and random calls
// of every function. Keep them in step with the originals.

// The canonical signatures of the functions package calldata decodes.
const (
	sigTransfer                = "transfer(address,uint256)"
	sigTransferFrom            = "transferFrom(address,address,uint256)"
	sigApprove                 = "approve(address,uint256)"
	sigIncreaseAllowance       = "increaseAllowance(address,uint256)"
	sigSafeTransferFrom721     = "safeTransferFrom(address,address,uint256)"
	sigSafeTransferFrom721Data = "safeTransferFrom(address,address,uint256,bytes)"
	sigSafeTransferFrom1155    = "safeTransferFrom(address,address,uint256,uint256,bytes)"
	sigSetApprovalForAll       = "setApprovalForAll(address,bool)"
	sigExecTransaction         = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
	sigMultiSend               = "multiSend(bytes)"
)

// sigs are the signatures above, whose selectors are known.
var sigs = []string{sigTransfer, sigTransferFrom, sigApprove, sigIncreaseAllowance, sigSafeTransferFrom721,
	sigSafeTransferFrom721Data, sigSafeTransferFrom1155, sigSetApprovalForAll, sigExecTransaction, sigMultiSend}

func known(sel [4]byte) bool {
	for _, s := range sigs {
		if [4]byte(crypto.Keccak256([]byte(s))) == sel {
			return true
		}
	}
	return false
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// dyn marks a dynamic bytes argument for abiEncode.
type dyn []byte

// abiEncode returns sel followed by the canonical ABI encoding of vals,
// each a [32]byte static word or a dyn.
func abiEncode(sel [4]byte, vals ...any) []byte {
	var head, tail []byte
	for _, v := range vals {
		switch v := v.(type) {
		case [32]byte:
			head = append(head, v[:]...)
		case dyn:
			off := uintWord(uint64(32*len(vals) + len(tail)))
			head = append(head, off[:]...)
			n := uintWord(uint64(len(v)))
			tail = append(tail, n[:]...)
			tail = append(tail, v...)
			tail = append(tail, make([]byte, (32-len(v)%32)%32)...)
		default:
			panic(fmt.Sprintf("abiEncode: %T", v))
		}
	}
	return append(append(sel[:], head...), tail...)
}

func uintWord(v uint64) (w [32]byte) {
	new(big.Int).SetUint64(v).FillBytes(w[:])
	return w
}

func intWord(v *big.Int) (w [32]byte) {
	v.FillBytes(w[:])
	return w
}

func addrWord(a ethtx.Address) (w [32]byte) {
	copy(w[12:], a[:])
	return w
}

func boolWord(b bool) [32]byte {
	if b {
		return uintWord(1)
	}
	return uintWord(0)
}

// encode returns the canonical encoding of c, with the data of inner calls
// encoded from their decoded calldata.Call (not copied from their Data).
func encode(c calldata.Call) []byte {
	switch c := c.(type) {
	case *calldata.NoCall:
		return nil
	case *calldata.Unknown:
		return append(c.ID[:], c.Args...)
	case *calldata.ERC20Transfer:
		return abiEncode(c.Selector(), addrWord(c.To), intWord(c.Amount))
	case *calldata.TransferFrom:
		return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.Value))
	case *calldata.Approve:
		return abiEncode(c.Selector(), addrWord(c.Spender), intWord(c.Amount))
	case *calldata.IncreaseAllowance:
		return abiEncode(c.Selector(), addrWord(c.Spender), intWord(c.Added))
	case *calldata.SafeTransferFrom721:
		if !c.WithData {
			return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.TokenID))
		}
		return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.TokenID), dyn(c.Data))
	case *calldata.SafeTransferFrom1155:
		return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.ID), intWord(c.Amount), dyn(c.Data))
	case *calldata.SetApprovalForAll:
		return abiEncode(c.Selector(), addrWord(c.Operator), boolWord(c.Approved))
	case *calldata.SafeExecTransaction:
		return abiEncode(c.Selector(), addrWord(c.To), intWord(c.Value), dyn(encode(c.Inner)),
			uintWord(uint64(c.Operation)), intWord(c.SafeTxGas), intWord(c.BaseGas), intWord(c.GasPrice),
			addrWord(c.GasToken), addrWord(c.RefundReceiver), dyn(c.Signatures))
	case *calldata.MultiSend:
		var calls []packedCall
		for _, e := range c.Calls {
			calls = append(calls, packedCall{uint8(e.Operation), e.To, e.Value, encode(e.Call)})
		}
		return abiEncode(c.Selector(), dyn(pack(calls...)))
	}
	panic(fmt.Sprintf("encode: %T", c))
}

// packedCall is a calldata.MultiSend entry as the tests build it by hand.
type packedCall struct {
	op    uint8
	to    ethtx.Address
	value *big.Int
	data  []byte
}

// pack returns the packed encoding of calldata.MultiSend entries: for each,
// operation (1 byte) || to (20) || value (32) || data length (32) || data.
func pack(calls ...packedCall) []byte {
	var b []byte
	for _, c := range calls {
		b = append(b, c.op)
		b = append(b, c.to[:]...)
		v := intWord(c.value)
		b = append(b, v[:]...)
		n := uintWord(uint64(len(c.data)))
		b = append(b, n[:]...)
		b = append(b, c.data...)
	}
	return b
}

// describe prints c completely, one field a line, so that decoded calls
// can be compared and their differences read.
func describe(c calldata.Call) string {
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
		panic(fmt.Sprintf("describe: %T", c))
	}
}

// randAddr returns a random address, often one with extreme bytes.
func randAddr(r *rand.Rand) (a ethtx.Address) {
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

// randUint returns a random integer of a random bit length up to 256.
func randUint(r *rand.Rand) *big.Int {
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

// randBytes returns random bytes of a length around the word boundaries,
// nil if empty.
func randBytes(r *rand.Rand) []byte {
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

// randUnknown returns data of at least 4 bytes whose selector this package
// does not decode, and its decoding.
func randUnknown(r *rand.Rand) ([]byte, calldata.Call) {
	for {
		data := randBytes(r)
		if len(data) < 4 {
			continue
		}
		c := &calldata.Unknown{ID: [4]byte(data), Args: nilIfEmpty(data[4:])}
		if !known(c.ID) {
			return data, c
		}
	}
}

// function is a function package calldata decodes, with a generator of
// random calls.
type function struct {
	sig string
	gen func(r *rand.Rand, depth int) calldata.Call
}

// functions lists every function decoded (set in init: its generators use it).
var functions []function

func init() {
	functions = []function{
		{sigTransfer, func(r *rand.Rand, _ int) calldata.Call {
			to, amount := randAddr(r), randUint(r)
			return &calldata.ERC20Transfer{To: to, Amount: amount}
		}},
		{sigTransferFrom, func(r *rand.Rand, _ int) calldata.Call {
			from, to, v := randAddr(r), randAddr(r), randUint(r)
			return &calldata.TransferFrom{From: from, To: to, Value: v}
		}},
		{sigApprove, func(r *rand.Rand, _ int) calldata.Call {
			s, v := randAddr(r), randUint(r)
			return &calldata.Approve{Spender: s, Amount: v}
		}},
		{sigIncreaseAllowance, func(r *rand.Rand, _ int) calldata.Call {
			s, v := randAddr(r), randUint(r)
			return &calldata.IncreaseAllowance{Spender: s, Added: v}
		}},
		{sigSafeTransferFrom721, func(r *rand.Rand, _ int) calldata.Call {
			from, to, id := randAddr(r), randAddr(r), randUint(r)
			return &calldata.SafeTransferFrom721{From: from, To: to, TokenID: id}
		}},
		{sigSafeTransferFrom721Data, func(r *rand.Rand, _ int) calldata.Call {
			from, to, id, data := randAddr(r), randAddr(r), randUint(r), randBytes(r)
			return &calldata.SafeTransferFrom721{From: from, To: to, TokenID: id, Data: data, WithData: true}
		}},
		{sigSafeTransferFrom1155, func(r *rand.Rand, _ int) calldata.Call {
			from, to, id, amount, data := randAddr(r), randAddr(r), randUint(r), randUint(r), randBytes(r)
			return &calldata.SafeTransferFrom1155{From: from, To: to, ID: id, Amount: amount, Data: data}
		}},
		{sigSetApprovalForAll, func(r *rand.Rand, _ int) calldata.Call {
			op, ok := randAddr(r), r.IntN(2) == 1
			return &calldata.SetApprovalForAll{Operator: op, Approved: ok}
		}},
		{sigExecTransaction, genExecTransaction},
		{sigMultiSend, genMultiSend},
	}
}

// randInner returns the data of a random inner call at depth and its
// decoding: empty, unknown, or (while depth allows) any function.
func randInner(r *rand.Rand, depth int) ([]byte, calldata.Call) {
	switch n := r.IntN(8); {
	case n == 0:
		return nil, &calldata.NoCall{}
	case n == 1:
		return randUnknown(r)
	}
	for {
		f := functions[r.IntN(len(functions))]
		if depth >= calldata.MaxDepth-1 && (f.sig == sigExecTransaction || f.sig == sigMultiSend) {
			continue
		}
		want := f.gen(r, depth+1)
		return encode(want), want
	}
}

func genExecTransaction(r *rand.Rand, depth int) calldata.Call {
	data, inner := randInner(r, depth)
	c := &calldata.SafeExecTransaction{
		To: randAddr(r), Value: randUint(r), Data: data, Operation: calldata.Operation(r.IntN(2)),
		SafeTxGas: randUint(r), BaseGas: randUint(r), GasPrice: randUint(r),
		GasToken: randAddr(r), RefundReceiver: randAddr(r), Signatures: randBytes(r),
		Inner: inner,
	}
	return c
}

func genMultiSend(r *rand.Rand, depth int) calldata.Call {
	c := &calldata.MultiSend{}
	for range r.IntN(6) {
		data, inner := randInner(r, depth)
		c.Calls = append(c.Calls, calldata.MultiSendCall{Operation: calldata.Operation(r.IntN(2)), To: randAddr(r), Value: randUint(r), Data: data, Call: inner})
	}
	return c
}
