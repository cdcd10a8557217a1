package ethtx

import (
	"encoding/json"
	"strings"
	"testing"
)

// eip55Vectors are the test cases of EIP-55: addresses whose checksummed
// form happens to be all caps, all lowercase, and mixed.
var eip55Vectors = []string{
	// All caps.
	"0x52908400098527886E0F7030069857D2E4169EE7",
	"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
	// All lowercase.
	"0xde709f2102306220921060314715629080e2fb77",
	"0x27b1fdb04752bbc536007a920d24acb045561c26",
	// Normal.
	"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
	"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
}

func TestEIP55Vectors(t *testing.T) {
	for _, v := range eip55Vectors {
		t.Run(v, func(t *testing.T) {
			for _, in := range []string{v, "0x" + strings.ToLower(v[2:]), "0x" + strings.ToUpper(v[2:])} {
				a, err := ParseAddress(in)
				if err != nil {
					t.Fatalf("ParseAddress(%s) error = %v", in, err)
				}
				if got := a.Hex(); got != v {
					t.Fatalf("ParseAddress(%s).Hex() = %s, want %s", in, got, v)
				}
			}
		})
	}
}

func TestParseAddressErrors(t *testing.T) {
	good := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "empty", in: "", wantErr: "ethtx: address: want 0x prefix"},
		{name: "no prefix", in: good[2:], wantErr: "ethtx: address: want 0x prefix"},
		{name: "0X prefix", in: "0X" + good[2:], wantErr: "ethtx: address: want 0x prefix"},
		{name: "prefix only", in: "0x", wantErr: "ethtx: address: want 40 hex digits, got 0"},
		{name: "39 digits", in: good[:41], wantErr: "ethtx: address: want 40 hex digits, got 39"},
		{name: "41 digits", in: good + "0", wantErr: "ethtx: address: want 40 hex digits, got 41"},
		{name: "non-hex digit", in: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", wantErr: "ethtx: address: invalid hex digit 'g' at position 41"},
		{name: "space", in: " 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", wantErr: "ethtx: address: want 0x prefix"},
		{name: "inner space", in: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA d", wantErr: "ethtx: address: invalid hex digit ' ' at position 40"},
		{name: "bad checksum one letter", in: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", wantErr: "ethtx: address: invalid EIP-55 checksum"},
		{name: "bad checksum swapped case", in: "0x5AaEB6053f3e94c9B9a09F33669435e7eF1bEaED", wantErr: "ethtx: address: invalid EIP-55 checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %s, want error", tt.in, a)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("ParseAddress(%q) error = %q, want %q", tt.in, err, tt.wantErr)
			}
			if a != (Address{}) {
				t.Fatalf("ParseAddress(%q) returned %s with an error", tt.in, a)
			}
		})
	}
}

func TestAddressJSON(t *testing.T) {
	a, err := ParseAddress(eip55Vectors[4])
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]Address{"to": a})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"to":"` + eip55Vectors[4] + `"}`; string(b) != want {
		t.Fatalf("json.Marshal = %s, want %s", b, want)
	}
	var back map[string]Address
	if err := json.Unmarshal(b, &back); err != nil || back["to"] != a {
		t.Fatalf("json.Unmarshal = %v, %v", back, err)
	}

	before := a
	if err := a.UnmarshalText([]byte("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")); err == nil {
		t.Fatal("UnmarshalText accepted a bad checksum")
	}
	if a != before {
		t.Fatal("UnmarshalText changed the address on error")
	}
}
