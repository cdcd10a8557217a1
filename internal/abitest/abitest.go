// Package abitest encodes contract calls (a function's selector and its
// ABI-encoded arguments) for tests that need calldata: policy and enclave
// tests build ERC-20, ERC-721, ERC-1155 and Safe calls with it. It encodes
// the few argument types those calls take (address, uintN, bool, bytes),
// strictly: a value of the wrong Go type or out of range is an error, as it
// is for go-ethereum's abi.Pack, against which crosscheck/abitest checks
// it. Production code decodes calldata with package calldata and never
// imports this package.
package abitest

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
	"golang.org/x/crypto/sha3"
)

// Selector returns the first four bytes of the Keccak-256 of the canonical
// signature sig, such as "transfer(address,uint256)".
func Selector(sig string) [4]byte {
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(sig))
	return [4]byte(h.Sum(nil))
}

// Pack returns the calldata of a call of sig with args: the selector, then
// the head of 32-byte words (static values, and offsets of dynamic ones),
// then the tail (each bytes value as its length and its bytes padded to a
// word). An address takes an ethtx.Address, a uintN a *big.Int or a Go
// unsigned integer type, a bool a bool, bytes a []byte.
func Pack(sig string, args ...any) ([]byte, error) {
	open := strings.IndexByte(sig, '(')
	if open <= 0 || !strings.HasSuffix(sig, ")") {
		return nil, fmt.Errorf("abitest: signature %q: want name(type,...)", sig)
	}
	var types []string
	if inner := sig[open+1 : len(sig)-1]; inner != "" {
		types = strings.Split(inner, ",")
	}
	if len(args) != len(types) {
		return nil, fmt.Errorf("abitest: %s: %d arguments, want %d", sig, len(args), len(types))
	}
	var head, tail []byte
	for i, typ := range types {
		switch {
		case typ == "bytes":
			b, ok := args[i].([]byte)
			if !ok {
				return nil, fmt.Errorf("abitest: %s: argument %d: %T for bytes", sig, i, args[i])
			}
			head = append(head, word(big.NewInt(int64(32*len(types)+len(tail))))...)
			tail = append(tail, word(big.NewInt(int64(len(b))))...)
			tail = append(tail, b...)
			tail = append(tail, make([]byte, (32-len(b)%32)%32)...)
		default:
			w, err := static(typ, args[i])
			if err != nil {
				return nil, fmt.Errorf("abitest: %s: argument %d: %w", sig, i, err)
			}
			head = append(head, w...)
		}
	}
	sel := Selector(sig)
	return append(append(sel[:], head...), tail...), nil
}

// MustPack is Pack for arguments known to be right; it panics on an error.
func MustPack(sig string, args ...any) []byte {
	b, err := Pack(sig, args...)
	if err != nil {
		panic(err)
	}
	return b
}

// static returns the 32-byte word of v as a value of the static type typ.
func static(typ string, v any) ([]byte, error) {
	switch typ {
	case "address":
		a, ok := v.(ethtx.Address)
		if !ok {
			return nil, fmt.Errorf("%T for address", v)
		}
		return append(make([]byte, 12), a[:]...), nil
	case "bool":
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%T for bool", v)
		}
		if b {
			return word(big.NewInt(1)), nil
		}
		return word(new(big.Int)), nil
	}
	bits, ok := strings.CutPrefix(typ, "uint")
	if !ok {
		return nil, fmt.Errorf("type %q is not supported", typ)
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 8 || n > 256 || n%8 != 0 || bits != strconv.Itoa(n) {
		return nil, fmt.Errorf("type %q is not supported", typ)
	}
	var x *big.Int
	switch v := v.(type) {
	case *big.Int:
		x = v
	case uint8:
		x = new(big.Int).SetUint64(uint64(v))
	case uint16:
		x = new(big.Int).SetUint64(uint64(v))
	case uint32:
		x = new(big.Int).SetUint64(uint64(v))
	case uint64:
		x = new(big.Int).SetUint64(v)
	default:
		return nil, fmt.Errorf("%T for %s", v, typ)
	}
	if x == nil || x.Sign() < 0 || x.BitLen() > n {
		return nil, fmt.Errorf("value %v out of range for %s", x, typ)
	}
	return word(x), nil
}

func word(x *big.Int) []byte { return x.FillBytes(make([]byte, 32)) }
