package ethmsg

import (
	"errors"
	"fmt"
	"strconv"
)

// personalPrefix starts every EIP-191 version 0x45 ("personal_sign") message.
const personalPrefix = "\x19Ethereum Signed Message:\n"

// PersonalHash returns the EIP-191 personal_sign digest of msg:
// keccak256("\x19Ethereum Signed Message:\n" || decimal len(msg) || msg).
//
// msg is always data: one that starts with 0x19, that is 32 bytes long like
// a digest, or that holds typed-data JSON is hashed with the prefix like any
// other. PersonalHash does not enforce [MaxPersonalMessage];
// package api/request does.
func PersonalHash(msg []byte) [32]byte {
	var n [20]byte
	return keccak256([]byte(personalPrefix), strconv.AppendInt(n[:0], int64(len(msg)), 10), msg)
}

// decodeHex decodes "0x" followed by an even number of hex digits of either
// case. Its errors carry no package prefix: callers add the path.
func decodeHex(s string) ([]byte, error) {
	if len(s) < 2 || s[0] != '0' || s[1] != 'x' {
		return nil, errors.New("want 0x-prefixed hex")
	}
	digits := s[2:]
	if len(digits)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(digits))
	}
	b := make([]byte, len(digits)/2)
	for i := 0; i < len(digits); i++ {
		v, ok := hexDigit(digits[i])
		if !ok {
			return nil, fmt.Errorf("invalid hex digit %q at position %d", digits[i], i+2)
		}
		b[i/2] |= v << (4 * (1 - i%2))
	}
	return b, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
