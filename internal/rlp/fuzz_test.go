package rlp

import (
	"bytes"
	"testing"
)

// FuzzRoundTrip checks that decoding is the inverse of encoding on every
// accepted input: whatever Parse or the integer splitters accept re-encodes
// to the very same bytes, so no value has two accepted encodings. The
// committed corpus is in testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	for _, seed := range [][]byte{
		{0x80}, {0x00}, {0x7f}, {0x81, 0x80}, {0x81, 0x00}, {0xb8, 0x01, 0x00},
		{0xc0}, {0xc1, 0xc0}, {0xf8, 0x00}, {0xc2, 0x81, 0x05},
		{0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0},
		{0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte("\xc8\x83cat\x83dog"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err == nil {
			if got := AppendValue(nil, v); !bytes.Equal(got, b) {
				t.Fatalf("Parse accepted %x but it re-encodes as %x", b, got)
			}
		}

		// The generic and the specific decoders agree on what they accept.
		kind, content, rest, splitErr := Split(b)
		if (splitErr == nil && len(rest) == 0 && kind == String) != (err == nil && v.Kind == String) {
			t.Fatalf("Split and Parse disagree on %x: %v / %v", b, splitErr, err)
		}
		if splitErr == nil && !bytes.Equal(b[len(b)-len(rest)-len(content):len(b)-len(rest)], content) {
			t.Fatalf("Split(%x) content is not a suffix-aligned slice of the input", b)
		}

		if x, rest, err := SplitUint64(b); err == nil && len(rest) == 0 {
			if got := AppendUint64(nil, x); !bytes.Equal(got, b) {
				t.Fatalf("SplitUint64 accepted %x as %d, which encodes as %x", b, x, got)
			}
		}
		if x, rest, err := SplitBigInt(b); err == nil && len(rest) == 0 {
			if got := AppendBigInt(nil, x); !bytes.Equal(got, b) {
				t.Fatalf("SplitBigInt accepted %x as %v, which encodes as %x", b, x, got)
			}
		}
		if num, rest, err := SplitUint256(b); err == nil && len(rest) == 0 {
			if got := AppendUintBytes(nil, num); !bytes.Equal(got, b) {
				t.Fatalf("SplitUint256 accepted %x as %x, which encodes as %x", b, num, got)
			}
		}
	})
}
