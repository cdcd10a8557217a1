package calldata_test

import (
	"bytes"
	"testing"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// These tests check decoded calls with testgen's canonical encoder
// (EncodeCall) and printer (DescribeCall), which crosscheck/calldata checks
// against go-ethereum.

func TestDecodeMalformed(t *testing.T) {
	for _, tt := range calldata.MalformedCases() {
		t.Run(tt.Name, func(t *testing.T) {
			got, err := calldata.Decode(tt.Data)
			if err == nil {
				t.Fatalf("Decode accepted %x as\n%s", tt.Data, testgen.DescribeCall(got))
			}
			if got != nil {
				t.Errorf("Decode returned a call with error %v", err)
			}
			if err.Error() != tt.Err {
				t.Errorf("Decode error\n got %q\nwant %q", err, tt.Err)
			}
		})
	}
}

func TestDecodeValid(t *testing.T) {
	for _, tt := range calldata.ValidCases() {
		t.Run(tt.Name, func(t *testing.T) {
			got, err := calldata.Decode(tt.Data)
			if err != nil {
				t.Fatalf("Decode(%x): %v", tt.Data, err)
			}
			if g, w := testgen.DescribeCall(got), testgen.DescribeCall(tt.Want); g != w {
				t.Errorf("Decode(%x)\n got %s\nwant %s", tt.Data, g, w)
			}
			if enc := testgen.EncodeCall(got); !bytes.Equal(enc, tt.Data) {
				t.Errorf("re-encoded as %x", enc)
			}
		})
	}
}

// TestDecodeCopies checks that a decoded call does not share memory with
// the input.
func TestDecodeCopies(t *testing.T) {
	data := bytes.Clone(calldata.SafeTransfer)
	c, err := calldata.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := testgen.DescribeCall(c)
	for i := range data {
		data[i] = 0x5a
	}
	if got := testgen.DescribeCall(c); got != want {
		t.Errorf("changing the input changed the call:\n%s\nwas\n%s", got, want)
	}
}

// TestRandomCalls decodes thousands of random calls of every function
// (testgen.Functions), as testgen's encoder encodes them, and checks that
// the decoded call is the one encoded and re-encodes to the same bytes.
// (crosscheck/calldata packs the same calls with go-ethereum's
// accounts/abi, which checks the encoder.)
func TestRandomCalls(t *testing.T) {
	testgen.RandomCalls(t, func(t *testing.T, i int, f testgen.Function, want calldata.Call) {
		data := testgen.EncodeCall(want)
		got := testgen.CheckDecode(t, i, data, want, f.Sig)
		testgen.CheckCanonical(t, got, data)
	})
}
