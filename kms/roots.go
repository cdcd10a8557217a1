package kms

import (
	"crypto/x509"
	"errors"
)

// embeddedRoots returns the roots a Client trusts when Config.RootCAs is
// nil: roots compiled into the binary, so that the enclave verifies KMS's
// certificate without anything from the host or a file system.
//
// They are to come from golang.org/x/crypto/x509roots/fallback/bundle
// (Mozilla's set, which holds the Amazon Trust Services roots KMS chains
// to), a module this build does not depend on yet. Until it does, a nil
// RootCAs is refused rather than replaced by the system's roots.
func embeddedRoots() (*x509.CertPool, error) {
	return nil, errors.New("kms: Config.RootCAs is nil and this build embeds no root certificates " +
		"(golang.org/x/crypto/x509roots/fallback is not linked yet); pass RootCAs")
}
