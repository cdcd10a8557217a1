package ethtx

import (
	"errors"
	"fmt"
)

// Address is a 20-byte Ethereum account address.
type Address [20]byte

const hexDigits = "0123456789abcdef"

// Hex returns a in its EIP-55 mixed-case checksum form, 0x-prefixed.
func (a Address) Hex() string {
	var buf [42]byte
	buf[0], buf[1] = '0', 'x'
	lower := buf[2:]
	for i, b := range a {
		lower[2*i] = hexDigits[b>>4]
		lower[2*i+1] = hexDigits[b&0x0f]
	}
	h := keccak256(lower)
	for i, c := range lower {
		// Nibble i of the hash of the lowercase hex decides the case of
		// character i.
		nibble := h[i/2] >> 4
		if i%2 == 1 {
			nibble = h[i/2] & 0x0f
		}
		if c >= 'a' && nibble >= 8 {
			lower[i] = c - 'a' + 'A'
		}
	}
	return string(buf[:])
}

// String returns a.Hex().
func (a Address) String() string { return a.Hex() }

// MarshalText returns a.Hex(), so addresses appear checksummed in JSON.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.Hex()), nil }

// UnmarshalText parses an address as ParseAddress does. On error a is
// unchanged.
func (a *Address) UnmarshalText(text []byte) error {
	parsed, err := ParseAddress(string(text))
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}

// ParseAddress parses a 0x-prefixed, 40-digit hexadecimal address. An
// address written in mixed case must carry a valid EIP-55 checksum, since
// mixed case is how a checksum is written and a wrong one means a typo; an
// all-lowercase or all-uppercase address carries no checksum and is
// accepted as is.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) < 2 || s[0] != '0' || s[1] != 'x' {
		return a, errors.New("ethtx: address: want 0x prefix")
	}
	digits := s[2:]
	if len(digits) != 2*len(a) {
		return a, fmt.Errorf("ethtx: address: want 40 hex digits, got %d", len(digits))
	}
	var upper, lower bool
	for i := range len(digits) {
		c := digits[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v, lower = c-'a'+10, true
		case c >= 'A' && c <= 'F':
			v, upper = c-'A'+10, true
		default:
			return Address{}, fmt.Errorf("ethtx: address: invalid hex digit %q at position %d", c, i+2)
		}
		a[i/2] |= v << (4 * (1 - i%2))
	}
	if upper && lower && a.Hex() != s {
		return Address{}, errors.New("ethtx: address: invalid EIP-55 checksum")
	}
	return a, nil
}
