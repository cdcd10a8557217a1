package ethmsg

import (
	"bytes"
	"strconv"
	"testing"

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
}
