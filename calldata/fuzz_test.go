package calldata

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"golang.org/x/crypto/sha3"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seeds in testdata/fuzz")

// maxSeedSize keeps the committed corpus small: the table cases above it
// (the size and call caps) are tested by the tables only.
const maxSeedSize = 4096

// seeds returns the named seeds of FuzzDecode: every valid and malformed
// table case, and random valid calls of every function.
func seeds(t testing.TB) map[string][]byte {
	s := map[string][]byte{}
	add := func(name string, b []byte) {
		if len(b) > maxSeedSize {
			return
		}
		if _, dup := s[name]; dup {
			t.Fatalf("two seeds named %s", name)
		}
		s[name] = b
	}
	for _, tt := range valid {
		add("valid "+tt.name, tt.data)
	}
	for _, tt := range malformed {
		add("bad "+tt.name, tt.data)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range functions {
		for i := range 3 {
			b := encode(f.gen(r, 0))
			add(fmt.Sprintf("random %s %x %d", f.sig[:strings.IndexByte(f.sig, '(')], b[:4], i), b)
		}
	}
	return s
}

// TestSeedCorpus checks that testdata/fuzz/FuzzDecode holds every seed, as
// written by go test ./calldata -run TestSeedCorpus -update-corpus. Files
// that are not seeds (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzDecode", "seed_", '_', seeds(t), *updateCorpus, "go test ./calldata -run TestSeedCorpus -update-corpus")
}

// FuzzDecode checks that Decode never panics, that its errors are the
// package's own and come without a call, and that whatever it accepts is
// canonical: re-encoding the decoded call (inner calls from their decoded
// form) gives back exactly the input, each inner call's Data is the
// encoding of its Call, and its selector is that of its method.
// (crosscheck/calldata fuzzes Decode against go-ethereum's unpacking.) The
// committed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if c != nil {
				t.Fatalf("Decode returned %T and error %v", c, err)
			}
			if !strings.HasPrefix(err.Error(), "calldata: ") {
				t.Fatalf("error without package prefix: %q", err)
			}
			return
		}
		if c == nil {
			t.Fatal("Decode returned neither a call nor an error")
		}
		if enc := encode(c); !bytes.Equal(enc, b) {
			t.Fatalf("Decode accepted\n%x\nwhich re-encodes as\n%x\n%s", b, enc, describe(c))
		}
		checkTree(t, c, b)
	})
}

// checkTree checks c, decoded from data, and its inner calls.
func checkTree(t *testing.T, c Call, data []byte) {
	t.Helper()
	switch c := c.(type) {
	case *NoCall:
		if len(data) != 0 {
			t.Fatalf("NoCall from %x", data)
		}
		return
	case *Unknown:
		if known(c.ID) || !bytes.Equal(c.ID[:], data[:4]) {
			t.Fatalf("Unknown %x from %x", c.ID, data)
		}
		return
	case *SafeExecTransaction:
		if c.Operation > OperationDelegateCall || !bytes.Equal(encode(c.Inner), c.Data) {
			t.Fatalf("execTransaction: operation %d, data %x, inner call encodes as %x", c.Operation, c.Data, encode(c.Inner))
		}
		checkTree(t, c.Inner, c.Data)
	case *MultiSend:
		for i, e := range c.Calls {
			if e.Operation > OperationDelegateCall || !bytes.Equal(encode(e.Call), e.Data) {
				t.Fatalf("multiSend call %d: operation %d, data %x, call encodes as %x", i, e.Operation, e.Data, encode(e.Call))
			}
			checkTree(t, e.Call, e.Data)
		}
	}
	sel := c.Selector()
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(c.Method()))
	if !bytes.Equal(sel[:], data[:4]) || !bytes.Equal(h.Sum(nil)[:4], sel[:]) {
		t.Fatalf("%T: selector %x, method %q, from %x", c, sel, c.Method(), data)
	}
}
