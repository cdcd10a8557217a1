package kms

import (
	"crypto/x509"
	"errors"
	"fmt"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// kmsRootNames are the subjects of the roots a Client trusts by default:
// Amazon Trust Services', to which every KMS endpoint's certificate chains
// (AWS's regional endpoints serve ACM certificates under Amazon Root CA 1
// to 4, cross-signed by Starfield Services Root G2 for old clients).
// Trusting only these, rather than the whole Web PKI, means that no other
// certificate authority can issue a certificate the enclave would take
// for KMS's.
var kmsRootNames = map[string]bool{
	"CN=Amazon Root CA 1,O=Amazon,C=US": true,
	"CN=Amazon Root CA 2,O=Amazon,C=US": true,
	"CN=Amazon Root CA 3,O=Amazon,C=US": true,
	"CN=Amazon Root CA 4,O=Amazon,C=US": true,
	"CN=Starfield Services Root Certificate Authority - G2,O=Starfield Technologies\\, Inc.,L=Scottsdale,ST=Arizona,C=US": true,
}

// embeddedRoots returns the roots a Client trusts when Config.RootCAs is
// nil: Amazon Trust Services' roots from the Mozilla set compiled into the
// binary (golang.org/x/crypto/x509roots/fallback/bundle), so that the
// enclave verifies KMS's certificate without anything from the host or a
// file system. The system's roots are never consulted.
func embeddedRoots() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	found := map[string]bool{}
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			return nil, fmt.Errorf("kms: embedded root: %w", err)
		}
		name := c.Subject.String()
		if !kmsRootNames[name] {
			continue
		}
		if r.Constraint != nil {
			pool.AddCertWithConstraint(c, r.Constraint)
		} else {
			pool.AddCert(c)
		}
		found[name] = true
	}
	if len(found) == 0 {
		return nil, errors.New("kms: the embedded root bundle holds none of Amazon Trust Services' roots")
	}
	return pool, nil
}
