package calldata_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
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
	for _, tt := range calldata.ValidCases() {
		add("valid "+tt.Name, tt.Data)
	}
	for _, tt := range calldata.MalformedCases() {
		add("bad "+tt.Name, tt.Data)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range testgen.Functions {
		for i := range 3 {
			b := testgen.EncodeCall(f.Gen(r, 0))
			add(fmt.Sprintf("random %s %x %d", f.Sig[:strings.IndexByte(f.Sig, '(')], b[:4], i), b)
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
		c, err := calldata.Decode(b)
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
		testgen.CheckCanonical(t, c, b)
		checkTree(t, c, b)
	})
}

// checkTree checks c, decoded from data, and its inner calls.
func checkTree(t *testing.T, c calldata.Call, data []byte) {
	t.Helper()
	switch c := c.(type) {
	case *calldata.NoCall:
		if len(data) != 0 {
			t.Fatalf("NoCall from %x", data)
		}
		return
	case *calldata.Unknown:
		if testgen.KnownSelector(c.ID) || !bytes.Equal(c.ID[:], data[:4]) {
			t.Fatalf("Unknown %x from %x", c.ID, data)
		}
		return
	case *calldata.SafeExecTransaction:
		if c.Operation > calldata.OperationDelegateCall || !bytes.Equal(testgen.EncodeCall(c.Inner), c.Data) {
			t.Fatalf("execTransaction: operation %d, data %x, inner call encodes as %x", c.Operation, c.Data, testgen.EncodeCall(c.Inner))
		}
		checkTree(t, c.Inner, c.Data)
	case *calldata.MultiSend:
		for i, e := range c.Calls {
			if e.Operation > calldata.OperationDelegateCall || !bytes.Equal(testgen.EncodeCall(e.Call), e.Data) {
				t.Fatalf("multiSend call %d: operation %d, data %x, call encodes as %x", i, e.Operation, e.Data, testgen.EncodeCall(e.Call))
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
