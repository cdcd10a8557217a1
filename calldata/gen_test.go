package calldata

import (
	"fmt"
	"math/big"
	"testing"
)

// TestSelectors checks the selectors, as computed by this package, against
// their well-known values. (crosscheck/calldata checks them against
// go-ethereum's Keccak-256.)
func TestSelectors(t *testing.T) {
	tests := []struct {
		call Call
		want string
	}{
		{&ERC20Transfer{}, "a9059cbb"},
		{&TransferFrom{}, "23b872dd"},
		{&Approve{}, "095ea7b3"},
		{&IncreaseAllowance{}, "39509351"},
		{&SafeTransferFrom721{}, "42842e0e"},
		{&SafeTransferFrom721{WithData: true}, "b88d4fde"},
		{&SafeTransferFrom1155{}, "f242432a"},
		{&SetApprovalForAll{}, "a22cb465"},
		{&SafeExecTransaction{}, "6a761202"},
		{&MultiSend{}, "8d80ff0a"},
	}
	for _, tt := range tests {
		sel := tt.call.Selector()
		if got := fmt.Sprintf("%x", sel); got != tt.want {
			t.Errorf("%s: selector %s, want %s", tt.call.Method(), got, tt.want)
		}
	}
	u := &Unknown{ID: [4]byte{1, 2, 3, 4}}
	if u.Selector() != u.ID || u.Method() != "" {
		t.Errorf("Unknown: Selector() %x, Method() %q", u.Selector(), u.Method())
	}
	if n := (&NoCall{}); n.Selector() != [4]byte{} || n.Method() != "" {
		t.Errorf("NoCall: Selector() %x, Method() %q", n.Selector(), n.Method())
	}
}

// bigOf returns the integer of hex s, or panics.
func bigOf(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 0)
	if !ok {
		panic(s)
	}
	return v
}
