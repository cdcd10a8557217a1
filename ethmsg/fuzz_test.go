package ethmsg

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/testgen"
)

// FuzzParseTypedData feeds arbitrary documents to ParseTypedData. Properties:
// no panic; an error starts with "ethmsg: "; an accepted document hashes the
// same when parsed again, its hash is keccak256(0x19 0x01 || separator ||
// message hash), and hashing the copies the accessors return changes
// nothing. (crosscheck/ethmsg fuzzes ParseTypedData against go-ethereum.)
func FuzzParseTypedData(f *testing.F) {
	f.Add([]byte(testgen.MailJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ParseTypedData(data)
		if err != nil {
			if td != nil {
				t.Fatal("non-nil result with an error")
			}
			if !strings.HasPrefix(err.Error(), "ethmsg: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		h := td.Hash()
		ds, mh := td.DomainSeparator(), td.MessageHash()
		if keccak256([]byte{0x19, 0x01}, ds[:], mh[:]) != h {
			t.Fatal("Hash() is not keccak256(0x19 0x01 || DomainSeparator() || MessageHash())")
		}
		again, err := ParseTypedData(bytes.Clone(data))
		if err != nil || again.Hash() != h {
			t.Fatalf("second parse: %v, hash %x vs %x", err, again.Hash(), h)
		}
		// Hashing the decoded tree handed out by the accessors gives the
		// same digests: what policy sees is what is signed.
		if td.hashStruct(td.Message()) != mh || td.hashStruct(td.DomainValue()) != ds {
			t.Fatal("the accessors' copies hash differently")
		}
		if _, ok := td.EncodeType(td.PrimaryType()); !ok {
			t.Fatal("no encodeType for the primary type")
		}
	})
}

// FuzzParsePersonalMessage feeds arbitrary strings to ParsePersonalMessage.
// Properties: no panic; an accepted string is "0x" and the lower- or
// upper-case hex of the result; its hash is deterministic and never the
// message itself.
func FuzzParsePersonalMessage(f *testing.F) {
	f.Add("0x48656c6c6f")
	f.Fuzz(func(t *testing.T, s string) {
		msg, err := ParsePersonalMessage(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ethmsg: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if len(msg) > MaxPersonalMessage {
			t.Fatalf("accepted %d bytes", len(msg))
		}
		if !strings.EqualFold(s, "0x"+hex.EncodeToString(msg)) || !strings.HasPrefix(s, "0x") {
			t.Fatalf("%q decoded to %x", s, msg)
		}
		h := PersonalHash(msg)
		if PersonalHash(bytes.Clone(msg)) != h {
			t.Fatal("PersonalHash is not deterministic")
		}
		if bytes.Equal(h[:], msg) {
			t.Fatal("a message hashed to itself")
		}
	})
}
