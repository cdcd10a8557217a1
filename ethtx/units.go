package ethtx

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// EtherDecimals is the number of decimals of ETH (1 ETH = 10^18 wei).
const EtherDecimals = 18

// maxDecimals bounds the decimals FormatUnits and ParseUnits accept (ERC-20
// tokens use at most 18 in practice; 77 keeps every 256-bit amount exact).
const maxDecimals = 77

// FormatUnits renders an integer amount of a token's smallest unit as a
// decimal number of whole units, without trailing zeros: FormatUnits(1.5e18,
// 18) is "1.5". Negative amounts get a leading minus sign.
func FormatUnits(v *big.Int, decimals int) string {
	// The digits go to the stack (a 256-bit amount has at most 78) and
	// the result is made in one allocation: amounts are formatted for
	// every request's summary.
	var buf [96]byte
	return string(AppendUnits(buf[:0], v, decimals))
}

// AppendUnits appends FormatUnits(v, decimals) to dst.
func AppendUnits(dst []byte, v *big.Int, decimals int) []byte {
	if v == nil {
		return append(dst, '0')
	}
	if decimals <= 0 || decimals > maxDecimals {
		return appendDecimal(dst, v)
	}
	var buf [96]byte
	digits := appendDecimal(buf[:0], v)
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	whole, frac, zeros := digits, []byte(nil), 0
	if n := len(digits); n <= decimals {
		whole, frac, zeros = []byte("0"), digits, decimals-n
	} else {
		whole, frac = digits[:n-decimals], digits[n-decimals:]
	}
	frac = bytes.TrimRight(frac, "0")
	if neg {
		dst = append(dst, '-')
	}
	dst = append(dst, whole...)
	if len(frac) > 0 {
		dst = append(dst, '.')
		for range zeros {
			dst = append(dst, '0')
		}
		dst = append(dst, frac...)
	}
	return dst
}

// appendDecimal appends v in decimal, as v.Append(dst, 10) does, but
// without the allocation big.Int's conversion makes when v fits in a
// uint64, as amounts, fees and gas prices mostly do (a summary is made
// for every request).
func appendDecimal(dst []byte, v *big.Int) []byte {
	if v.IsUint64() {
		return strconv.AppendUint(dst, v.Uint64(), 10)
	}
	return v.Append(dst, 10)
}

// FormatEther renders wei as ETH, for example "0.5 ETH".
func FormatEther(wei *big.Int) string {
	var buf [100]byte
	return string(AppendEther(buf[:0], wei))
}

// AppendEther appends FormatEther(wei) to dst.
func AppendEther(dst []byte, wei *big.Int) []byte {
	return append(AppendUnits(dst, wei, EtherDecimals), " ETH"...)
}

// ParseUnits parses a non-negative decimal number of whole units, such as
// "0.5", into an integer amount of the smallest unit, given the token's
// decimals. It refuses signs, exponents, more fractional digits than the
// token has, and results of 256 bits or more.
func ParseUnits(s string, decimals int) (*big.Int, error) {
	if decimals < 0 || decimals > maxDecimals {
		return nil, fmt.Errorf("ethtx: %d decimals is out of range", decimals)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return nil, fmt.Errorf("ethtx: %q is not a non-negative decimal number", s)
	}
	if len(frac) > decimals {
		return nil, fmt.Errorf("ethtx: %q has more than %d decimals", s, decimals)
	}
	v, ok := new(big.Int).SetString(whole+frac+strings.Repeat("0", decimals-len(frac)), 10)
	if !ok {
		return nil, errors.New("ethtx: bad number")
	}
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("ethtx: %q is out of range", s)
	}
	return v, nil
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
