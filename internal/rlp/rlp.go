// Package rlp decodes and encodes the canonical subset of Ethereum's
// Recursive Length Prefix encoding.
//
// The enclave signs only what it has decoded, so the decoder is the security
// boundary: if two byte strings could decode to the same transaction, what
// the policy approved and what the network executes could differ. This
// package therefore accepts exactly one encoding for every value, the one the
// encoder in this package produces, so that decoding followed by encoding is
// the identity on every accepted input. It refuses:
//
//   - a single byte below 0x80 wrapped in a string header (it must be encoded
//     as itself);
//   - a long-form size (0xb8..0xbf, 0xf8..0xff) for a payload shorter than 56
//     bytes, and a size whose big-endian length has a leading zero byte;
//   - integers with leading zero bytes (zero is the empty string, 0x80);
//   - payloads that run past the end of their input or enclosing list, and
//     trailing bytes after a top-level value ([Parse]);
//   - inputs over [MaxInputSize] bytes and lists nested over [MaxDepth].
//
// # Errors
//
// Decoding errors are the sentinel values below, sometimes wrapped with a
// detail. Like [strconv.ErrRange] they carry no package prefix: they describe
// a reason, and the caller, which knows which field it was decoding, wraps
// them, for example "ethtx: tx.value: non-canonical integer". Test for them
// with [errors.Is].
//
// # Decoding
//
// The Split functions read one value from the front of their input and return
// the rest, without copying: returned slices alias the input. A decoder for a
// fixed structure (a transaction) calls them in sequence; [Parse] decodes an
// arbitrary tree.
//
// # Encoding
//
// The Append functions append one encoded value to a buffer. A list is built
// in place: remember start := len(dst), append the items, then call
// [EndList](dst, start).
package rlp

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
)

// MaxInputSize is the largest input, in bytes, that the Split functions and
// [Parse] accept. It is far above any transaction the enclave signs and bounds
// the work done on hostile input.
const MaxInputSize = 1 << 20

// MaxDepth is the deepest list nesting [Parse] accepts; a top-level list has
// depth 1. Ethereum transactions nest three deep.
const MaxDepth = 32

// MaxIntBytes is the largest integer, in bytes, that [SplitUint256] and
// [SplitBigInt] accept: 256 bits, the EVM word.
const MaxIntBytes = 32

// Kind is the kind of an RLP value.
type Kind uint8

const (
	// String is a byte string (including a single byte below 0x80).
	String Kind = 1 + iota
	// List is a list of values.
	List
)

// String returns "string" or "list".
func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case List:
		return "list"
	default:
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
}

// Decoding errors. See the package documentation for how to report them.
var (
	// ErrUnexpectedEnd means a header or payload runs past the end of the
	// input or of the enclosing list.
	ErrUnexpectedEnd = errors.New("unexpected end of input")
	// ErrTooLarge means the input is larger than MaxInputSize.
	ErrTooLarge = errors.New("input exceeds size limit")
	// ErrNonCanonicalSize means a size prefix is not in its shortest form.
	ErrNonCanonicalSize = errors.New("non-canonical size")
	// ErrNonCanonicalInteger means an integer has a leading zero byte.
	ErrNonCanonicalInteger = errors.New("non-canonical integer")
	// ErrIntegerTooLarge means an integer does not fit the requested width.
	ErrIntegerTooLarge = errors.New("integer too large")
	// ErrExpectedString means a list was found where a string was expected.
	ErrExpectedString = errors.New("expected string, got list")
	// ErrExpectedList means a string was found where a list was expected.
	ErrExpectedList = errors.New("expected list, got string")
	// ErrTrailingBytes means bytes follow a complete top-level value.
	ErrTrailingBytes = errors.New("trailing bytes after value")
	// ErrTooDeep means lists are nested deeper than MaxDepth.
	ErrTooDeep = errors.New("lists nested too deep")
)

// Detailed forms of ErrNonCanonicalSize, built once so that refusing hostile
// input does not allocate.
var (
	errSingleByte   = fmt.Errorf("%w: single byte below 0x80 must be encoded as itself", ErrNonCanonicalSize)
	errLongForm     = fmt.Errorf("%w: long form for a payload under 56 bytes", ErrNonCanonicalSize)
	errSizeZeroLead = fmt.Errorf("%w: size with a leading zero byte", ErrNonCanonicalSize)
)

// Split reads the value at the front of b. It returns the value's kind, its
// payload (for a string the bytes, for a list the concatenated encodings of
// the items) and the bytes after it.
func Split(b []byte) (kind Kind, content, rest []byte, err error) {
	if len(b) > MaxInputSize {
		return 0, nil, nil, ErrTooLarge
	}
	kind, hdr, size, err := readHeader(b)
	if err != nil {
		return 0, nil, nil, err
	}
	end := hdr + size
	return kind, b[hdr:end], b[end:], nil
}

// readHeader decodes the header at the front of b and checks that the payload
// fits in b. It returns the header length and the payload size.
func readHeader(b []byte) (kind Kind, hdr, size int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, ErrUnexpectedEnd
	}
	p := b[0]
	switch {
	case p < 0x80:
		// A single byte is its own encoding.
		return String, 0, 1, nil
	case p < 0xb8:
		kind, hdr, size = String, 1, int(p-0x80)
		if size == 1 {
			if len(b) < 2 {
				return 0, 0, 0, ErrUnexpectedEnd
			}
			if b[1] < 0x80 {
				return 0, 0, 0, errSingleByte
			}
		}
	case p < 0xc0:
		kind, hdr = String, 1+int(p-0xb7)
		if size, err = readLongSize(b[1:], int(p-0xb7)); err != nil {
			return 0, 0, 0, err
		}
	case p < 0xf8:
		kind, hdr, size = List, 1, int(p-0xc0)
	default:
		kind, hdr = List, 1+int(p-0xf7)
		if size, err = readLongSize(b[1:], int(p-0xf7)); err != nil {
			return 0, 0, 0, err
		}
	}
	if size > len(b)-hdr {
		return 0, 0, 0, ErrUnexpectedEnd
	}
	return kind, hdr, size, nil
}

// readLongSize decodes the n-byte (1 <= n <= 8) big-endian size at the front
// of b and checks that it is canonical. The result is capped at MaxInputSize+1
// so that it fits an int on every platform and still fails the bounds check.
func readLongSize(b []byte, n int) (int, error) {
	if len(b) < n {
		return 0, ErrUnexpectedEnd
	}
	if b[0] == 0 {
		return 0, errSizeZeroLead
	}
	var size uint64
	for _, c := range b[:n] {
		size = size<<8 | uint64(c)
	}
	if size < 56 {
		return 0, errLongForm
	}
	if size > MaxInputSize {
		return MaxInputSize + 1, nil
	}
	return int(size), nil
}

// SplitString reads a string from the front of b and returns its bytes and
// the bytes after it.
func SplitString(b []byte) (s, rest []byte, err error) {
	kind, content, rest, err := Split(b)
	if err != nil {
		return nil, nil, err
	}
	if kind != String {
		return nil, nil, ErrExpectedString
	}
	return content, rest, nil
}

// SplitList reads a list from the front of b and returns its payload (the
// concatenated encodings of its items) and the bytes after it.
func SplitList(b []byte) (content, rest []byte, err error) {
	kind, content, rest, err := Split(b)
	if err != nil {
		return nil, nil, err
	}
	if kind != List {
		return nil, nil, ErrExpectedList
	}
	return content, rest, nil
}

// SplitUint64 reads an unsigned integer of at most 64 bits from the front of
// b.
func SplitUint64(b []byte) (x uint64, rest []byte, err error) {
	num, rest, err := splitUint(b, 8)
	if err != nil {
		return 0, nil, err
	}
	for _, c := range num {
		x = x<<8 | uint64(c)
	}
	return x, rest, nil
}

// SplitUint256 reads an unsigned integer of at most 256 bits from the front of
// b and returns its minimal big-endian bytes (empty for zero), aliasing b.
func SplitUint256(b []byte) (num, rest []byte, err error) {
	return splitUint(b, MaxIntBytes)
}

// SplitBigInt reads an unsigned integer of at most 256 bits from the front of
// b.
func SplitBigInt(b []byte) (x *big.Int, rest []byte, err error) {
	num, rest, err := splitUint(b, MaxIntBytes)
	if err != nil {
		return nil, nil, err
	}
	return new(big.Int).SetBytes(num), rest, nil
}

// SplitUintBytes is SplitBigInt without the big.Int: it returns the
// integer's big-endian bytes (no leading zero, at most MaxIntBytes), for a
// caller that keeps integers in storage of its own.
func SplitUintBytes(b []byte) (num, rest []byte, err error) {
	return splitUint(b, MaxIntBytes)
}

func splitUint(b []byte, maxLen int) (num, rest []byte, err error) {
	num, rest, err = SplitString(b)
	if err != nil {
		return nil, nil, err
	}
	if len(num) > 0 && num[0] == 0 {
		return nil, nil, ErrNonCanonicalInteger
	}
	if len(num) > maxLen {
		return nil, nil, ErrIntegerTooLarge
	}
	return num, rest, nil
}

// CountValues returns the number of values encoded back to back in b, such
// as the payload of a list. It checks each value's header and bounds but not
// the contents of nested lists.
func CountValues(b []byte) (int, error) {
	if len(b) > MaxInputSize {
		return 0, ErrTooLarge
	}
	n := 0
	for len(b) > 0 {
		_, hdr, size, err := readHeader(b)
		if err != nil {
			return 0, err
		}
		b = b[hdr+size:]
		n++
	}
	return n, nil
}

// Value is a decoded RLP tree, as returned by Parse.
type Value struct {
	Kind Kind
	// Bytes is the payload of a String, aliasing the parsed input.
	Bytes []byte
	// List holds the items of a List.
	List []Value
}

// Parse decodes b, which must hold exactly one value, into a tree. Memory use
// is proportional to len(b).
func Parse(b []byte) (Value, error) {
	if len(b) > MaxInputSize {
		return Value{}, ErrTooLarge
	}
	v, rest, err := parseValue(b, 0)
	if err != nil {
		return Value{}, err
	}
	if len(rest) != 0 {
		return Value{}, ErrTrailingBytes
	}
	return v, nil
}

func parseValue(b []byte, depth int) (Value, []byte, error) {
	kind, content, rest, err := Split(b)
	if err != nil {
		return Value{}, nil, err
	}
	if kind == String {
		return Value{Kind: String, Bytes: content}, rest, nil
	}
	if depth == MaxDepth {
		return Value{}, nil, ErrTooDeep
	}
	n, err := CountValues(content)
	if err != nil {
		return Value{}, nil, err
	}
	items := make([]Value, n)
	for i := range items {
		if items[i], content, err = parseValue(content, depth+1); err != nil {
			return Value{}, nil, err
		}
	}
	return Value{Kind: List, List: items}, rest, nil
}

// AppendValue appends the canonical encoding of v to dst. A Value whose Kind
// is neither String nor List encodes as an empty string.
func AppendValue(dst []byte, v Value) []byte {
	if v.Kind != List {
		return AppendString(dst, v.Bytes)
	}
	start := len(dst)
	for _, item := range v.List {
		dst = AppendValue(dst, item)
	}
	return EndList(dst, start)
}

// AppendString appends the encoding of the byte string s to dst.
func AppendString(dst, s []byte) []byte {
	if len(s) == 1 && s[0] < 0x80 {
		return append(dst, s[0])
	}
	dst = appendHeader(dst, 0x80, len(s))
	return append(dst, s...)
}

// AppendUint64 appends the encoding of the unsigned integer x to dst.
func AppendUint64(dst []byte, x uint64) []byte {
	switch {
	case x == 0:
		return append(dst, 0x80)
	case x < 0x80:
		return append(dst, byte(x))
	}
	n := byteLen(x)
	dst = append(dst, 0x80+byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(x>>(8*i)))
	}
	return dst
}

// AppendBigInt appends the encoding of the unsigned integer x to dst; nil
// encodes as zero. It panics if x is negative, which RLP cannot represent:
// that is a programming error, not a property of untrusted input.
func AppendBigInt(dst []byte, x *big.Int) []byte {
	if x == nil {
		return append(dst, 0x80)
	}
	if x.Sign() < 0 {
		panic("rlp: cannot encode a negative integer")
	}
	if x.IsUint64() {
		return AppendUint64(dst, x.Uint64())
	}
	n := (x.BitLen() + 7) / 8
	dst = appendHeader(dst, 0x80, n)
	dst = append(dst, make([]byte, n)...)
	x.FillBytes(dst[len(dst)-n:])
	return dst
}

// AppendUintBytes appends the encoding of the unsigned integer whose
// big-endian bytes are num, dropping its leading zero bytes.
func AppendUintBytes(dst, num []byte) []byte {
	for len(num) > 0 && num[0] == 0 {
		num = num[1:]
	}
	return AppendString(dst, num)
}

// AppendList appends a list whose payload is content, the concatenated
// encodings of its items.
func AppendList(dst, content []byte) []byte {
	dst = appendHeader(dst, 0xc0, len(content))
	return append(dst, content...)
}

// EndList turns dst[start:], the encodings of a list's items appended after
// start, into an encoded list by inserting the list header at start.
func EndList(dst []byte, start int) []byte {
	size := len(dst) - start
	var hdr [9]byte
	h := appendHeader(hdr[:0], 0xc0, size)
	dst = append(dst, h...)
	copy(dst[start+len(h):], dst[start:start+size])
	copy(dst[start:], h)
	return dst
}

func appendHeader(dst []byte, offset byte, size int) []byte {
	if size < 56 {
		return append(dst, offset+byte(size))
	}
	n := byteLen(uint64(size))
	dst = append(dst, offset+55+byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(size>>(8*i)))
	}
	return dst
}

// byteLen returns the number of bytes in the minimal big-endian form of x > 0.
func byteLen(x uint64) int {
	return (bits.Len64(x) + 7) / 8
}
