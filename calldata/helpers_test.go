package calldata

import (
	"encoding/hex"
	"math/big"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
)

// The tables build calldata from words with abitest's encoder, which can
// build malformed calldata too. The canonical encoder of decoded calls
// (the inverse of Decode), the printer that makes them comparable, and the
// random calls are testgen's (EncodeCall, DescribeCall, Functions): the
// tests that use them are in the external test package, as testgen imports
// this package.
var (
	abiEncode = abitest.Encode
	uintWord  = abitest.UintWord
	addrWord  = abitest.AddrWord
	boolWord  = abitest.BoolWord
)

// dyn marks a dynamic bytes argument for abiEncode.
type dyn = abitest.Dyn

// packedCall is a MultiSend entry as the tests build it by hand.
type packedCall struct {
	op    uint8
	to    ethtx.Address
	value *big.Int
	data  []byte
}

// pack returns the packed encoding of MultiSend entries (see
// abitest.PackMultiSend).
func pack(calls ...packedCall) []byte {
	entries := make([]abitest.MultiSendEntry, len(calls))
	for i, c := range calls {
		entries[i] = abitest.MultiSendEntry{Op: c.op, To: c.to, Value: c.value, Data: c.data}
	}
	return abitest.PackMultiSend(entries...)
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
