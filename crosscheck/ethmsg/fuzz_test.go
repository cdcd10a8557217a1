package ethmsg

import (
	"testing"

	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// FuzzParseTypedData feeds arbitrary documents to ParseTypedData: go-ethereum
// accepts every document it accepts, with the same digest, domain
// separator, message hash and encodeType (except for an empty domain name or
// version, which go-ethereum refuses). ethmsg's FuzzParseTypedData checks
// the package's own properties; its corpus is in
// testdata/fuzz/FuzzParseTypedData here too.
func FuzzParseTypedData(f *testing.F) {
	f.Add([]byte(testgen.MailJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ethmsg.ParseTypedData(data)
		if err != nil {
			return
		}
		checkAccepted(t, td, data)
	})
}
