package ethtx

import (
	"math/big"
	rand2 "math/rand"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestFormatUnits(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, tc := range []struct {
		name string
		v    *big.Int
		dec  int
		want string
	}{
		{"zero", big.NewInt(0), 18, "0"},
		{"nil", nil, 18, "0"},
		{"one wei", big.NewInt(1), 18, "0.000000000000000001"},
		{"half ether", big.NewInt(5e17), 18, "0.5"},
		{"one ether", big.NewInt(1e18), 18, "1"},
		{"usdc", big.NewInt(1_000_250_000), 6, "1000.25"},
		{"no decimals", big.NewInt(42), 0, "42"},
		{"negative", big.NewInt(-15), 1, "-1.5"},
		{"max uint256", max, 18, "115792089237316195423570985008687907853269984665640564039457.584007913129639935"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FormatUnits(tc.v, tc.dec); got != tc.want {
				t.Fatalf("FormatUnits = %q, want %q", got, tc.want)
			}
			if tc.v != nil && tc.v.Sign() >= 0 {
				back, err := ParseUnits(tc.want, tc.dec)
				if err != nil || back.Cmp(tc.v) != 0 {
					t.Fatalf("ParseUnits(FormatUnits) = %v, %v; want %v", back, err, tc.v)
				}
			}
		})
	}
	if got := FormatEther(big.NewInt(2e18)); got != "2 ETH" {
		t.Errorf("FormatEther = %q", got)
	}
}

func TestParseUnitsRefusals(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "not a non-negative"},
		{"-1", "not a non-negative"},
		{"+1", "not a non-negative"},
		{".5", "not a non-negative"},
		{"1.", "not a non-negative"},
		{"1e18", "not a non-negative"},
		{"1.2.3", "not a non-negative"},
		{" 1", "not a non-negative"},
		{"0.0000000000000000001", "more than 18 decimals"},
		{"115792089237316195423570985008687907853269984665640564039458", "out of range"},
	} {
		if _, err := ParseUnits(tc.in, 18); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseUnits(%q) err = %v, want %q", tc.in, err, tc.msg)
		}
	}
}

// formatUnitsReference is FormatUnits as first written, with strings: the
// text FormatUnits must keep byte for byte (summaries are compared and
// pinned by hash).
func formatUnitsReference(v *big.Int, decimals int) string {
	if v == nil {
		return "0"
	}
	if decimals <= 0 || decimals > maxDecimals {
		return v.String()
	}
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).String()
	if len(digits) <= decimals {
		digits = strings.Repeat("0", decimals-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-decimals], strings.TrimRight(digits[len(digits)-decimals:], "0")
	s := whole
	if frac != "" {
		s += "." + frac
	}
	if neg {
		s = "-" + s
	}
	return s
}

func TestFormatUnitsMatchesReference(t *testing.T) {
	if got := string(AppendUnits(nil, nil, 18)) + FormatEther(nil); got != "00 ETH" {
		t.Errorf("nil: %q", got)
	}
	// Around the uint64 bound, where AppendUnits changes how it makes the
	// digits.
	for _, s := range []string{"0", "1", "18446744073709551615", "18446744073709551616", "-18446744073709551615", "-1"} {
		v, _ := new(big.Int).SetString(s, 10)
		for _, dec := range []int{0, 9, 18, 20, maxDecimals} {
			if got, want := string(AppendUnits(nil, v, dec)), formatUnitsReference(v, dec); got != want {
				t.Fatalf("AppendUnits(%v, %d) = %q, want %q", v, dec, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		v := new(big.Int).Rand(rand2.New(rand2.NewSource(int64(i))), new(big.Int).Lsh(big.NewInt(1), uint(r.IntN(300))))
		if r.IntN(3) == 0 {
			// Trailing zeros, so that trimming is exercised.
			v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(r.IntN(30))), nil))
		}
		if r.IntN(4) == 0 {
			v.Neg(v)
		}
		dec := r.IntN(maxDecimals+4) - 2
		if got, want := FormatUnits(v, dec), formatUnitsReference(v, dec); got != want {
			t.Fatalf("FormatUnits(%v, %d) = %q, want %q", v, dec, got, want)
		}
		if got, want := string(AppendUnits([]byte("x"), v, dec)), "x"+formatUnitsReference(v, dec); got != want {
			t.Fatalf("AppendUnits(%v, %d) = %q, want %q", v, dec, got, want)
		}
		if got, want := FormatEther(v), formatUnitsReference(v, EtherDecimals)+" ETH"; got != want {
			t.Fatalf("FormatEther(%v) = %q, want %q", v, got, want)
		}
	}
}
