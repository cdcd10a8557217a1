package calldata

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
	"golang.org/x/crypto/sha3"
)

// selector returns the first 4 bytes of the Keccak-256 hash of sig.
func selector(sig string) [4]byte {
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(sig))
	return [4]byte(h.Sum(nil))
}

// args reads the ABI-encoded arguments of one function: a head of one
// 32-byte word per argument (the value of a static argument, the offset of
// a dynamic one), followed by the tails of the dynamic arguments, in
// order. Errors name the function and the argument.
type args struct {
	fn   string // function name, for errors
	b    []byte // the arguments, after the selector
	next int    // canonical offset of the next dynamic argument's tail
}

// newArgs returns the reader of b, the arguments of function fn: n head
// words, of which dynamic are dynamic (bytes). A function with no dynamic
// argument takes exactly n words; one with dynamic arguments takes at least
// a length word for each, and [args.end] checks that the tails end the
// arguments exactly.
func newArgs(fn string, b []byte, n, dynamic int) (args, error) {
	a := args{fn: fn, b: b, next: 32 * n}
	if dynamic == 0 {
		if len(b) != 32*n {
			return a, fmt.Errorf("%s: %d bytes of arguments, want %d", fn, len(b), 32*n)
		}
		return a, nil
	}
	if least := 32 * (n + dynamic); len(b) < least {
		return a, fmt.Errorf("%s: %d bytes of arguments, want at least %d", fn, len(b), least)
	}
	return a, nil
}

// errorf returns an error about argument name.
func (a *args) errorf(name, format string, v ...any) error {
	return fmt.Errorf("%s: %s: %s", a.fn, name, fmt.Sprintf(format, v...))
}

// word returns head word i.
func (a *args) word(i int) []byte { return a.b[32*i : 32*i+32] }

// address returns head word i as an address, whose 12 high bytes must be
// zero.
func (a *args) address(i int, name string) (ethtx.Address, error) {
	w := a.word(i)
	if !allZero(w[:12]) {
		return ethtx.Address{}, a.errorf(name, "high bytes not zero")
	}
	return ethtx.Address(w[12:]), nil
}

// uint256 returns head word i as an integer.
func (a *args) uint256(i int) *big.Int { return new(big.Int).SetBytes(a.word(i)) }

// uint8 returns head word i as a uint8, whose 31 high bytes must be zero.
func (a *args) uint8(i int, name string) (uint8, error) {
	w := a.word(i)
	if !allZero(w[:31]) {
		return 0, a.errorf(name, "high bytes not zero")
	}
	return w[31], nil
}

// bool returns head word i as a bool, which must be 0 or 1.
func (a *args) bool(i int, name string) (bool, error) {
	w := a.word(i)
	if !allZero(w[:31]) || w[31] > 1 {
		return false, a.errorf(name, "bool %s, want 0 or 1", hexWord(w))
	}
	return w[31] == 1, nil
}

// bytes returns the dynamic bytes argument whose offset is head word i.
// The offset must be the canonical one, and the tail a length word, the
// data and zero padding to a multiple of 32 bytes. The result is nil if
// empty and aliases a.b otherwise.
func (a *args) bytes(i int, name string) ([]byte, error) {
	w := a.word(i)
	if off, ok := smallInt(w); !ok || off != a.next {
		return nil, a.errorf(name, "offset %s, want %#x", hexWord(w), a.next)
	}
	rest := a.b[a.next:]
	if len(rest) < 32 {
		return nil, a.errorf(name, "length missing at %#x", a.next)
	}
	lw, rest := rest[:32], rest[32:]
	n, ok := smallInt(lw)
	if !ok || n > len(rest) {
		return nil, a.errorf(name, "length %s exceeds the %d bytes left", hexWord(lw), len(rest))
	}
	padded := (n + 31) &^ 31
	if padded > len(rest) {
		return nil, a.errorf(name, "length %#x needs %d bytes with padding, %d left", n, padded, len(rest))
	}
	if !allZero(rest[n:padded]) {
		return nil, a.errorf(name, "padding not zero")
	}
	a.next += 32 + padded
	return nilIfEmpty(rest[:n]), nil
}

// end checks that the tails read so far end the arguments.
func (a *args) end() error {
	if a.next != len(a.b) {
		return fmt.Errorf("%s: %d bytes of arguments, want %d", a.fn, len(a.b), a.next)
	}
	return nil
}

// smallInt returns the integer w if it is at most MaxDataSize, the most an
// offset or a length inside the data can be.
func smallInt(w []byte) (int, bool) {
	if !allZero(w[:len(w)-4]) {
		return 0, false
	}
	v := binary.BigEndian.Uint32(w[len(w)-4:])
	if v > MaxDataSize {
		return 0, false
	}
	return int(v), true
}

// hexWord formats the integer w for an error: 0x-prefixed hex without
// leading zeros.
func hexWord(w []byte) string { return fmt.Sprintf("%#x", new(big.Int).SetBytes(w)) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
