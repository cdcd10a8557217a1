package abitest

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
)

// TestPack checks encodings worked out by hand (crosscheck/abitest checks
// Pack against go-ethereum's abi.Pack on random arguments).
func TestPack(t *testing.T) {
	to, _ := ethtx.ParseAddress("0x1111111111111111111111111111111111111111")
	w := func(s string) string { return strings.Repeat("0", 64-len(s)) + s }
	tests := []struct {
		sig  string
		args []any
		want string
	}{
		{"deposit()", nil, "d0e30db0"},
		{"transfer(address,uint256)", []any{to, big.NewInt(1000)}, "a9059cbb" + w("1111111111111111111111111111111111111111") + w("3e8")},
		{"setApprovalForAll(address,bool)", []any{to, true}, "a22cb465" + w("1111111111111111111111111111111111111111") + w("1")},
		{"multiSend(bytes)", []any{[]byte{0xab, 0xcd}}, "8d80ff0a" + w("20") + w("2") + "abcd" + strings.Repeat("0", 60)},
		{"multiSend(bytes)", []any{[]byte{}}, "8d80ff0a" + w("20") + w("0")},
	}
	for _, tt := range tests {
		got, err := Pack(tt.sig, tt.args...)
		if err != nil || hex.EncodeToString(got) != tt.want {
			t.Errorf("Pack(%s) = %x, %v\nwant %s", tt.sig, got, err, tt.want)
		}
	}
}

func TestPackRefuses(t *testing.T) {
	var a ethtx.Address
	for _, tt := range []struct {
		sig  string
		args []any
	}{
		{"transfer(address,uint256)", []any{a}},
		{"transfer(address,uint256)", []any{"0x11", big.NewInt(1)}},
		{"transfer(address,uint256)", []any{a, big.NewInt(-1)}},
		{"transfer(address,uint256)", []any{a, 1}},
		{"transfer(address,uint8)", []any{a, big.NewInt(256)}},
		{"transfer(address,uint256)", []any{a, new(big.Int).Lsh(big.NewInt(1), 256)}},
		{"f(int256)", []any{big.NewInt(1)}},
		{"f(uint7)", []any{big.NewInt(1)}},
		{"f(uint08)", []any{big.NewInt(1)}},
		{"f(bytes)", []any{"ab"}},
		{"f", nil},
	} {
		if b, err := Pack(tt.sig, tt.args...); err == nil {
			t.Errorf("Pack(%s, %v) = %x, want an error", tt.sig, tt.args, b)
		}
	}
}
