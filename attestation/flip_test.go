package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestByteFlips changes every byte of each real AWS document, one at a
// time (flipping one bit, a different one at each position), and checks
// that Verify refuses every variant, with a *CheckError and without
// panicking, at the document's own time, with debug mode allowed.
//
// Every variant goes through all of Verify. Normally each signature is
// checked with real ECDSA (about 20,000 P-384 verifications, some 15 s of
// CPU). Under the race detector, where one takes some 7 ms, or with -short,
// real ECDSA checks every 97th variant and a stand-in the others. The
// stand-in accepts only the genuine digest with the genuine signature
// (which it hands to real ECDSA) and refuses anything else, as ECDSA does
// unless broken: a changed byte in the protected header or the payload
// changes the digest, one in the signature changes the signature.
func TestByteFlips(t *testing.T) {
	for _, rd := range loadRealDocs(t) {
		t.Run(rd.file, func(t *testing.T) {
			t.Parallel()
			d, err := Parse(rd.doc)
			if err != nil {
				t.Fatal(err)
			}
			genuineDigest := sigStructureDigest(d.Protected, d.Payload)
			var standIns atomic.Int64
			standIn := func(pub *ecdsa.PublicKey, digest, sig []byte) bool {
				if bytes.Equal(digest, genuineDigest) && bytes.Equal(sig, d.Signature) {
					return verifyES384(pub, digest, sig)
				}
				standIns.Add(1)
				return false
			}
			fast := raceEnabled || testing.Short()
			opts := realOptions(rd)
			opts.AllowDebug = true
			if _, err := verify(rd.doc, opts, standIn); err != nil {
				t.Fatalf("the genuine document: %v", err)
			}
			refusedBy := map[string]int{}
			variant := bytes.Clone(rd.doc)
			for i := range rd.doc {
				variant[i] ^= 1 << (i % 8)
				sigVerifier := verifyES384
				if fast && i%97 != 0 {
					sigVerifier = standIn
				}
				check, err := verifyNoPanic(variant, opts, sigVerifier)
				if err != nil {
					t.Fatalf("byte %d (0x%02x → 0x%02x): %v", i, rd.doc[i], variant[i], err)
				}
				refusedBy[check]++
				variant[i] = rd.doc[i]
			}
			var counts []string
			for _, check := range slices.Sorted(maps.Keys(refusedBy)) {
				counts = append(counts, fmt.Sprintf("%s %d", check, refusedBy[check]))
			}
			t.Logf("%d variants refused: %s; %d signatures checked by the stand-in", len(rd.doc), strings.Join(counts, ", "), standIns.Load())
		})
	}
}

// verifyNoPanic verifies doc, which must be refused, and returns the check
// that refused it; the error reports an acceptance, an error that is not a
// *CheckError, or a panic.
func verifyNoPanic(doc []byte, opts Options, sig signatureVerifier) (check string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	res, err := verify(doc, opts, sig)
	if err == nil || res != nil {
		return "", errors.New("accepted")
	}
	var ce *CheckError
	if !errors.As(err, &ce) {
		return "", fmt.Errorf("error %v is not a *CheckError", err)
	}
	return ce.Check, nil
}
