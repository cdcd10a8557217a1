package ethmsg

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

func TestPersonalHash(t *testing.T) {
	// ethers.js documents hashMessage("Hello World") with this digest.
	if got := hexString(PersonalHash([]byte("Hello World"))); got != "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2" {
		t.Errorf(`PersonalHash("Hello World") = %s`, got)
	}
	td := mustParse(t, testgen.MailJSON)
	h := td.Hash()
	msgs := map[string][]byte{
		"empty":                  {},
		"text":                   []byte("Hello World"),
		"32-byte digest":         h[:],
		"starts with 0x19":       []byte("\x19Ethereum Signed Message:\n3abc"),
		"typed-data preimage":    preimage(td),
		"typed-data json":        []byte(testgen.MailJSON),
		"0x-hex text":            []byte("0x1234"),
		"length with many digit": bytes.Repeat([]byte{7}, 12345),
		"max":                    bytes.Repeat([]byte{0xff}, MaxPersonalMessage),
	}
	for name, msg := range msgs {
		// EIP-191 version 0x45 (crosscheck/ethmsg compares with
		// go-ethereum's TextHash).
		want := keccak256([]byte("\x19Ethereum Signed Message:\n"+strconv.Itoa(len(msg))), msg)
		if got := PersonalHash(msg); got != want {
			t.Errorf("%s: PersonalHash = %x, want %x", name, got, want)
		}
	}
}

// TestPersonalPrefixConfusion checks that no personal message is signed raw:
// a digest, the EIP-712 preimage or typed-data JSON sent as a personal message
// hashes to something other than what it would sign directly.
func TestPersonalPrefixConfusion(t *testing.T) {
	td := mustParse(t, testgen.MailJSON)
	h := td.Hash()
	if PersonalHash(h[:]) == h {
		t.Error("a 32-byte digest sent as a personal message is signed as is")
	}
	preimage := preimage(td)
	if keccak256(preimage) != h {
		t.Fatal("test setup: preimage does not hash to the typed-data digest")
	}
	if PersonalHash(preimage) == h {
		t.Error("the EIP-712 preimage sent as a personal message hashes to the typed-data digest")
	}
	if PersonalHash([]byte(testgen.MailJSON)) == h {
		t.Error("typed-data JSON sent as a personal message hashes to the typed-data digest")
	}
	// Through the API form too.
	msg, err := ParsePersonalMessage("0x" + hex.EncodeToString(h[:]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, h[:]) || PersonalHash(msg) == h {
		t.Error("ParsePersonalMessage + PersonalHash of a digest gave the digest")
	}
}

func TestParsePersonalMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []byte
		wantErr string
	}{
		{name: "empty", in: "0x", want: []byte{}},
		{name: "bytes", in: "0x48656c6c6f", want: []byte("Hello")},
		{name: "upper case digits", in: "0xDEADbeef", want: []byte{0xde, 0xad, 0xbe, 0xef}},
		{name: "starts with 0x19", in: "0x1945", want: []byte{0x19, 0x45}},
		{name: "no prefix", in: "48656c6c6f", wantErr: "ethmsg: personal message: want 0x-prefixed hex"},
		{name: "text", in: "Hello", wantErr: "want 0x-prefixed hex"},
		{name: "capital X", in: "0X4865", wantErr: "want 0x-prefixed hex"},
		{name: "nothing", in: "", wantErr: "want 0x-prefixed hex"},
		{name: "odd", in: "0x486", wantErr: "odd number of hex digits (3)"},
		{name: "bad digit", in: "0x48zz", wantErr: `invalid hex digit 'z' at position 4`},
		{name: "space", in: "0x48 6", wantErr: `invalid hex digit ' ' at position 4`},
		{name: "second prefix", in: "0x0x48", wantErr: `invalid hex digit 'x' at position 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if *update {
				fuzzseed.Write(t, "FuzzParsePersonalMessage", "table-"+tt.name, tt.in)
			}
			got, err := ParsePersonalMessage(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("= %x, %v; want %x", got, err, tt.want)
			}
		})
	}

	max := "0x" + strings.Repeat("ab", MaxPersonalMessage)
	if b, err := ParsePersonalMessage(max); err != nil || len(b) != MaxPersonalMessage {
		t.Fatalf("message of MaxPersonalMessage bytes: %d, %v", len(b), err)
	}
	if _, err := ParsePersonalMessage(max + "ab"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("message over MaxPersonalMessage: err = %v, want ErrTooLarge", err)
	}
}
