package ethmsg

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

// doc and one build typed-data documents (testgen.Doc, testgen.OneField).
var doc, one = testgen.Doc, testgen.OneField

func hexString(h [32]byte) string { return hex.EncodeToString(h[:]) }

// commitSeed commits the table case js to the corpus of the fuzz target
// under name, with -update. Without it, it checks that the committed file is
// there and current: crosscheck/ethmsg reads these corpora to check every
// table document against go-ethereum, so they must stay in step with the
// tables. Documents over 4 KiB are not seeds.
func commitSeed(t *testing.T, target, name, js string) {
	t.Helper()
	if len(js) > 4096 {
		return
	}
	if *update {
		fuzzseed.Write(t, target, name, []byte(js))
		return
	}
	want, err := fuzzseed.Encode([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	path := fuzzseed.Path(target, fuzzseed.FileName(name, '-'))
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("seed %s is missing or stale (%v): run go test ./ethmsg -update", path, err)
	}
}

func mustParse(t testing.TB, js string) *TypedData {
	t.Helper()
	td, err := ParseTypedData([]byte(js))
	if err != nil {
		t.Fatalf("ParseTypedData: %v\n%s", err, js)
	}
	return td
}

// preimage returns 0x19 0x01 || DomainSeparator() || MessageHash(), the bytes
// whose Keccak-256 is td.Hash().
func preimage(td *TypedData) []byte {
	ds, mh := td.DomainSeparator(), td.MessageHash()
	return append(append([]byte{0x19, 0x01}, ds[:]...), mh[:]...)
}
