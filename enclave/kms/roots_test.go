package kms

import (
	"crypto/x509"
	"testing"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// TestEmbeddedRoots: the default roots are Amazon Trust Services' and
// nothing else: a certificate chaining to another well-known root (in the
// same embedded bundle) does not verify.
func TestEmbeddedRoots(t *testing.T) {
	pool, err := embeddedRoots()
	if err != nil {
		t.Fatal(err)
	}
	// Each Amazon root verifies as its own chain; the pool is usable.
	found := 0
	for _, der := range allBundleRoots(t) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		_, verr := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: c.NotBefore.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if kmsRootNames[c.Subject.String()] {
			found++
			if verr != nil {
				t.Errorf("%s does not verify against the embedded roots: %v", c.Subject, verr)
			}
		} else if verr == nil {
			t.Errorf("%s verifies against the KMS roots; only Amazon's should", c.Subject)
		}
	}
	if found != len(kmsRootNames) {
		t.Errorf("found %d of the %d Amazon roots in the bundle", found, len(kmsRootNames))
	}
}

func allBundleRoots(t *testing.T) [][]byte {
	var out [][]byte
	for r := range bundle.Roots() {
		out = append(out, r.Certificate)
	}
	if len(out) < 50 {
		t.Fatalf("the bundle holds only %d roots", len(out))
	}
	return out
}
