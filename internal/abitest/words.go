package abitest

import (
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
)

// Pack above checks its arguments against a signature. The functions
// below build calldata from words as they are given, so that tests can
// also build calldata no signature allows: wrong selectors, words out of a
// type's range, malformed MultiSend entries (calldata's tables), and the
// canonical encoding of a decoded call (testgen.EncodeCall).

// Dyn marks a dynamic bytes argument for Encode.
type Dyn []byte

// Encode returns sel followed by the canonical ABI encoding of vals, each a
// [32]byte static word or a Dyn: the head of words (static values, and
// offsets of dynamic ones), then the tail (each Dyn as its length and its
// bytes padded to a word).
func Encode(sel [4]byte, vals ...any) []byte {
	var head, tail []byte
	for _, v := range vals {
		switch v := v.(type) {
		case [32]byte:
			head = append(head, v[:]...)
		case Dyn:
			off := UintWord(uint64(32*len(vals) + len(tail)))
			head = append(head, off[:]...)
			n := UintWord(uint64(len(v)))
			tail = append(tail, n[:]...)
			tail = append(tail, v...)
			tail = append(tail, make([]byte, (32-len(v)%32)%32)...)
		default:
			panic(fmt.Sprintf("abitest.Encode: %T", v))
		}
	}
	return append(append(sel[:], head...), tail...)
}

// UintWord returns the word of v.
func UintWord(v uint64) (w [32]byte) {
	new(big.Int).SetUint64(v).FillBytes(w[:])
	return w
}

// IntWord returns the word of v, which must fit in 256 bits.
func IntWord(v *big.Int) (w [32]byte) {
	v.FillBytes(w[:])
	return w
}

// AddrWord returns the word of a.
func AddrWord(a ethtx.Address) (w [32]byte) {
	copy(w[12:], a[:])
	return w
}

// BoolWord returns the word of b.
func BoolWord(b bool) [32]byte {
	if b {
		return UintWord(1)
	}
	return UintWord(0)
}

// MultiSendEntry is an entry of a Safe MultiSend's transactions.
type MultiSendEntry struct {
	Op    uint8
	To    ethtx.Address
	Value *big.Int
	Data  []byte
}

// PackMultiSend returns the packed encoding of MultiSend entries, the
// bytes argument of multiSend(bytes): for each, operation (1 byte) || to
// (20) || value (32) || data length (32) || data.
func PackMultiSend(entries ...MultiSendEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = append(b, e.Op)
		b = append(b, e.To[:]...)
		v := IntWord(e.Value)
		b = append(b, v[:]...)
		n := UintWord(uint64(len(e.Data)))
		b = append(b, n[:]...)
		b = append(b, e.Data...)
	}
	return b
}
