package calldata

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
)

// This file holds a canonical encoder written for the tests only (the
// inverse of Decode, checked against go-ethereum's abi.Pack in
// crosscheck/calldata), a printer that makes decoded calls comparable, and
// random argument generators.

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
// encoded from their decoded Call (not copied from their Data).
func encode(c Call) []byte {
	switch c := c.(type) {
	case *NoCall:
		return nil
	case *Unknown:
		return append(c.ID[:], c.Args...)
	case *ERC20Transfer:
		return abiEncode(c.Selector(), addrWord(c.To), intWord(c.Amount))
	case *TransferFrom:
		return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.Value))
	case *Approve:
		return abiEncode(c.Selector(), addrWord(c.Spender), intWord(c.Amount))
	case *IncreaseAllowance:
		return abiEncode(c.Selector(), addrWord(c.Spender), intWord(c.Added))
	case *SafeTransferFrom721:
		if !c.WithData {
			return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.TokenID))
		}
		return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.TokenID), dyn(c.Data))
	case *SafeTransferFrom1155:
		return abiEncode(c.Selector(), addrWord(c.From), addrWord(c.To), intWord(c.ID), intWord(c.Amount), dyn(c.Data))
	case *SetApprovalForAll:
		return abiEncode(c.Selector(), addrWord(c.Operator), boolWord(c.Approved))
	case *SafeExecTransaction:
		return abiEncode(c.Selector(), addrWord(c.To), intWord(c.Value), dyn(encode(c.Inner)),
			uintWord(uint64(c.Operation)), intWord(c.SafeTxGas), intWord(c.BaseGas), intWord(c.GasPrice),
			addrWord(c.GasToken), addrWord(c.RefundReceiver), dyn(c.Signatures))
	case *MultiSend:
		var calls []packedCall
		for _, e := range c.Calls {
			calls = append(calls, packedCall{uint8(e.Operation), e.To, e.Value, encode(e.Call)})
		}
		return abiEncode(c.Selector(), dyn(pack(calls...)))
	}
	panic(fmt.Sprintf("encode: %T", c))
}

// packedCall is a MultiSend entry as the tests build it by hand.
type packedCall struct {
	op    uint8
	to    ethtx.Address
	value *big.Int
	data  []byte
}

// pack returns the packed encoding of MultiSend entries: for each,
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
func describe(c Call) string {
	var b strings.Builder
	describeTo(&b, c, "")
	return b.String()
}

func describeTo(b *strings.Builder, c Call, indent string) {
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
	case *NoCall:
	case *Unknown:
		p("ID", c.ID[:])
		p("Args", c.Args)
	case *ERC20Transfer:
		p("To", c.To)
		p("Amount", c.Amount)
	case *TransferFrom:
		p("From", c.From)
		p("To", c.To)
		p("Value", c.Value)
	case *Approve:
		p("Spender", c.Spender)
		p("Amount", c.Amount)
	case *IncreaseAllowance:
		p("Spender", c.Spender)
		p("Added", c.Added)
	case *SafeTransferFrom721:
		p("From", c.From)
		p("To", c.To)
		p("TokenID", c.TokenID)
		p("Data", c.Data)
		p("WithData", c.WithData)
	case *SafeTransferFrom1155:
		p("From", c.From)
		p("To", c.To)
		p("ID", c.ID)
		p("Amount", c.Amount)
		p("Data", c.Data)
	case *SetApprovalForAll:
		p("Operator", c.Operator)
		p("Approved", c.Approved)
	case *SafeExecTransaction:
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
	case *MultiSend:
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

// hexBytes decodes hex, ignoring spaces and newlines, or panics.
func hexBytes(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func addr(s string) ethtx.Address {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
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
func randUnknown(r *rand.Rand) ([]byte, Call) {
	for {
		data := randBytes(r)
		if len(data) < 4 {
			continue
		}
		c := &Unknown{ID: [4]byte(data), Args: nilIfEmpty(data[4:])}
		if !known(c.ID) {
			return data, c
		}
	}
}

func known(sel [4]byte) bool {
	for _, s := range [][4]byte{selTransfer, selTransferFrom, selApprove, selIncreaseAllowance,
		selSafeTransferFrom721, selSafeTransferFrom721Data, selSafeTransferFrom1155,
		selSetApprovalForAll, selExecTransaction, selMultiSend} {
		if s == sel {
			return true
		}
	}
	return false
}
