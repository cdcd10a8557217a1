package stamp

import (
	"testing"

	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// canonicalAgrees fails t when canonicalWire reads js other than
// strictjson does: whatever it accepts, strictjson accepts with the same
// three fields.
func canonicalAgrees(t *testing.T, js []byte) bool {
	t.Helper()
	scheme, pub, sig, ok := canonicalWire(js)
	if !ok {
		return false
	}
	var w wire
	if err := strictjson.Unmarshal(js, &w, MaxHeaderSize); err != nil {
		t.Fatalf("canonicalWire accepts %q, strictjson refuses it: %v", js, err)
	}
	if string(w.Scheme) != string(scheme) || w.PublicKey != string(pub) || w.Signature != string(sig) {
		t.Fatalf("%q: canonicalWire reads %q %q %q, strictjson %+v", js, scheme, pub, sig, w)
	}
	return true
}

var canonicalSeeds = []string{
	`{"scheme":"ed25519","public_key":"ab01","signature":"CD23"}`,
	`{"scheme":"p256","public_key":"02ff","signature":"3006"}`,
	`{"scheme":"ed25519","public_key":"ab01","signature":"cd23"} `,
	`{"scheme":"ed25519","public_key":"ab01","signature":"cd23","x":"y"}`,
	`{"scheme":"ed25519","public_key":"","signature":"cd23"}`,
	`{"scheme":"ed\u0032\u0035519","public_key":"ab","signature":"cd"}`,
	`{"scheme":"ed25519","signature":"cd23","public_key":"ab01"}`,
	`{ "scheme":"ed25519","public_key":"ab01","signature":"cd23"}`,
	`{"scheme":"ed25519","public_key":"ab 01","signature":"cd23"}`,
	`{"scheme":"ed25519","public_key":"ab01","signature":"cd23"`,
}

func TestCanonicalWire(t *testing.T) {
	for i, s := range canonicalSeeds {
		if got, want := canonicalAgrees(t, []byte(s)), i < 2; got != want {
			t.Errorf("canonicalWire(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzCanonicalWire checks that canonicalWire never reads a stamp's JSON
// other than strictjson does.
func FuzzCanonicalWire(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		if len(js) > MaxHeaderSize {
			return // Verify's headers decode to at most 3/4 of MaxHeaderSize
		}
		canonicalAgrees(t, js)
	})
}
