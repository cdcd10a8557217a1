package attestation

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestDecode(t *testing.T) {
	// The real documents are base64 text, one unpadded (7539 bytes) and
	// one padded (7538 bytes).
	docs := loadRealDocs(t)
	doc, padded := docs[0].doc, docs[1].doc
	if len(doc)%3 != 0 || len(padded)%3 == 0 {
		t.Fatal("the real documents are not the ones this test expects")
	}
	std := base64.StdEncoding.EncodeToString(doc)
	var wrapped strings.Builder
	for s := std; s != ""; {
		n := min(64, len(s))
		wrapped.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	for _, tc := range []struct {
		name  string
		input string
		want  []byte // nil: an error
	}{
		{"raw CBOR", string(doc), doc},
		{"base64", std, doc},
		{"base64 padded", base64.StdEncoding.EncodeToString(padded), padded},
		{"base64 without padding", base64.RawStdEncoding.EncodeToString(padded), padded},
		{"base64 with whitespace around", " \n\t" + std + "\r\n", doc},
		{"base64 in lines", wrapped.String(), doc},
		{"empty", "", nil},
		{"whitespace", " \n", nil},
		{"base64url", base64.URLEncoding.EncodeToString(doc), nil},
		{"base64 with a space inside", std[:10] + " " + std[10:], nil},
		{"base64 with non-zero padding bits", nonZeroPaddingBits(base64.StdEncoding.EncodeToString(padded)), nil},
		{"base64 padding where none is due", std + "=", nil},
		{"base64 of an impossible length", std[:len(std)-3], nil},
		{"too long", strings.Repeat("A", 2*MaxDocumentSize+4), nil},
		{"hex", "84", nil},
	} {
		got, err := Decode([]byte(tc.input))
		switch {
		case tc.want != nil && (err != nil || !bytes.Equal(got, tc.want)):
			t.Errorf("%s: got %d bytes, %v; want the document", tc.name, len(got), err)
		case tc.want == nil && err == nil:
			t.Errorf("%s: got %d bytes, want an error", tc.name, len(got))
		case tc.want == nil && !strings.HasPrefix(err.Error(), "attestation: "):
			t.Errorf("%s: error %q has no package prefix", tc.name, err)
		}
	}
}

// nonZeroPaddingBits changes the last character of s, base64 with one
// padding character, so that the bits it pads with are not zero.
func nonZeroPaddingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := []byte(s)
	b[len(b)-2] = alphabet[strings.IndexByte(alphabet, b[len(b)-2])^1]
	return string(b)
}

// TestParseSize checks that the size cap comes first and is exact.
func TestParseSize(t *testing.T) {
	doc := validDoc(defaultCA())
	at := append(bytes.Clone(doc), make([]byte, MaxDocumentSize-len(doc))...)
	_, err := Parse(at)
	wantCheck(t, err, CheckCOSE) // trailing bytes, past the size check
	_, err = Parse(append(at, 0))
	wantCheck(t, err, CheckSize)
	// The size is checked before the structure.
	_, err = Parse(make([]byte, MaxDocumentSize+1))
	wantCheck(t, err, CheckSize)
}

// TestParseDoesNotAlias checks that Parse copies its input.
func TestParseDoesNotAlias(t *testing.T) {
	doc := validDoc(defaultCA())
	d, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	nonce, cert := bytes.Clone(d.Nonce), bytes.Clone(d.Certificate)
	clear(doc)
	if !bytes.Equal(d.Nonce, nonce) || !bytes.Equal(d.Certificate, cert) {
		t.Fatal("the document aliases the input")
	}
}

// TestParseOptionalFields checks the three encodings of the optional
// fields: absent and null give nil, an empty byte string an empty slice.
func TestParseOptionalFields(t *testing.T) {
	ca := defaultCA()
	for _, tc := range []struct {
		name string
		fs   fields
		null bool
	}{
		{"absent", ca.payload().without(fieldPublicKey).without(fieldUserData).without(fieldNonce), true},
		{"null", nullOptional(cbNull)(ca.payload()), true},
		{"empty", nullOptional(cbBytes(nil))(ca.payload()), false},
	} {
		d, err := Parse(ca.document(tc.fs))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, b := range [][]byte{d.PublicKey, d.UserData, d.Nonce} {
			if (b == nil) != tc.null || len(b) != 0 {
				t.Errorf("%s: got %#v", tc.name, b)
			}
		}
	}
}

// TestSigStructure checks the Sig_structure digest against fxamacker/cbor's
// encoding of the same array, for payloads whose length needs each size of
// head.
func TestSigStructure(t *testing.T) {
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536} {
		payload := bytes.Repeat([]byte{0xa5}, n)
		want, err := cbor.Marshal([]any{"Signature1", protectedES384, []byte{}, payload})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha512.Sum384(want)
		if got := sigStructureDigest(protectedES384, payload); !bytes.Equal(got, sum[:]) {
			t.Errorf("payload of %d bytes: digest differs from fxamacker/cbor's", n)
		}
	}
}

func TestAppendHead(t *testing.T) {
	for _, n := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		want, err := cbor.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendHead(nil, majorUint, n); !bytes.Equal(got, want) {
			t.Errorf("appendHead(%d) = %x, want %x", n, got, want)
		}
		r := &cborReader{b: want}
		if major, got, err := r.head(); err != nil || major != majorUint || got != n || r.off != len(want) {
			t.Errorf("head(%x) = %d, %d, %v", want, major, got, err)
		}
	}
}

func TestHeadRefuses(t *testing.T) {
	for _, b := range [][]byte{
		{},                 // nothing
		{0x18},             // truncated argument
		{0x19, 0x01},       // truncated argument
		{0x18, 0x17},       // 23 in two bytes
		{0x19, 0x00, 0xff}, // 255 in three bytes
		{0x1a, 0x00, 0x00, 0xff, 0xff},
		{0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		{0x1c}, {0x1d}, {0x1e}, // reserved
		{0x1f},                         // indefinite unsigned integer: ill-formed
		{0x5f}, {0x7f}, {0x9f}, {0xbf}, // indefinite lengths
		{0xff},                 // break
		{0xf4}, {0xf5}, {0xf7}, // false, true, undefined
		{0xf8, 0x20},       // simple value 32
		{0xf9, 0, 0},       // half float
		{0xfa, 0, 0, 0, 0}, // float
		{0xfb, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		r := &cborReader{b: b}
		if major, arg, err := r.head(); err == nil {
			t.Errorf("head(%x) = %d, %d, want an error", b, major, arg)
		}
	}
	// Lengths beyond the input are refused before slicing.
	for _, b := range [][]byte{{0x41}, {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		r := &cborReader{b: b}
		if _, err := r.bytes("x", 0, MaxDocumentSize); err == nil {
			t.Errorf("bytes(%x) did not fail", b)
		}
	}
}

// TestParseErrors checks that Parse's errors are CheckErrors.
func TestParseErrors(t *testing.T) {
	for _, doc := range [][]byte{nil, {0x84}, cbCOSE(protectedES384, cbArray(), make([]byte, 96))} {
		d, err := Parse(doc)
		var ce *CheckError
		if d != nil || !errors.As(err, &ce) || (ce.Check != CheckCOSE && ce.Check != CheckPayload) {
			t.Errorf("Parse(%x) = %v, %v", doc, d, err)
		}
	}
}
