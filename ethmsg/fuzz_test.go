package ethmsg

import (
	"bytes"
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
