package nsmsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Validity periods, after AWS's certificates.
const (
	rootLifetime      = 30 * 365 * 24 * time.Hour
	regionalLifetime  = 20 * 24 * time.Hour
	zonalLifetime     = 6 * 24 * time.Hour
	instanceLifetime  = 24 * time.Hour
	leafLifetime      = 3 * time.Hour
	leafRenewBefore   = 5 * time.Minute
	simRegion         = "sim-region-1"
	simOrganizational = "nsmsim (simulated, not AWS)"
)

// authority is one CA certificate and its key.
type authority struct {
	key      *ecdsa.PrivateKey
	subject  pkix.Name
	lifetime time.Duration
	pathLen  int // for intermediates
	cert     *x509.Certificate
}

// ca is the simulator's certificate authority: root, the regional, zonal
// and instance intermediates, and the current leaf.
type ca struct {
	rand     io.Reader
	moduleID string
	root     authority
	inter    [3]authority // regional, zonal, instance: each issues the next
	leaf     *x509.Certificate
	leafKey  *ecdsa.PrivateKey
	bundle   [][]byte // root first, then inter
}

func name(cn string) pkix.Name {
	return pkix.Name{Country: []string{"US"}, Organization: []string{"nitrosign"}, OrganizationalUnit: []string{simOrganizational}, CommonName: cn}
}

// newKey draws a P-384 private key from r: a big-endian scalar, drawn
// again in the rare case it is zero or not below the group order.
// (crypto/ecdsa.GenerateKey ignores its reader since Go 1.26.)
func newKey(r io.Reader) (*ecdsa.PrivateKey, error) {
	var b [48]byte
	for range 64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("nsmsim: draw a key: %w", err)
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), b[:]); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("nsmsim: draw a key: the random source gives no valid P-384 scalar")
}

func newSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("nsmsim: draw a serial number: %w", err)
	}
	b[0] = b[0]&0x7f | 0x01 // positive, non-zero, 16 bytes
	return new(big.Int).SetBytes(b[:]), nil
}

func randomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("nsmsim: draw an identifier: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}

// newCA draws the CA's keys and names from r and issues the root at now.
// Intermediates and the leaf are issued at the first attestation.
func newCA(r io.Reader, now time.Time, moduleID, instanceID string) (*ca, error) {
	c := &ca{rand: r, moduleID: moduleID}
	now = now.UTC().Truncate(time.Second)
	regional, err := randomHex(r, 8)
	if err != nil {
		return nil, err
	}
	zonal, err := randomHex(r, 8)
	if err != nil {
		return nil, err
	}
	c.root = authority{subject: name("nsmsim.nitro-enclaves"), lifetime: rootLifetime}
	c.inter = [3]authority{
		{subject: name(regional + "." + simRegion + ".nsmsim.nitro-enclaves"), lifetime: regionalLifetime, pathLen: 2},
		{subject: name(zonal + ".zonal." + simRegion + ".nsmsim.nitro-enclaves"), lifetime: zonalLifetime, pathLen: 1},
		{subject: name(instanceID + "." + simRegion + ".nsmsim.nitro-enclaves"), lifetime: instanceLifetime, pathLen: 0},
	}
	for _, a := range append([]*authority{&c.root}, &c.inter[0], &c.inter[1], &c.inter[2]) {
		if a.key, err = newKey(r); err != nil {
			return nil, err
		}
	}
	tmpl := &x509.Certificate{
		Subject:               c.root.subject,
		NotBefore:             now,
		NotAfter:              now.Add(rootLifetime),
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            -1,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if c.root.cert, err = c.issue(tmpl, nil, &c.root.key.PublicKey); err != nil {
		return nil, err
	}
	return c, nil
}

// issue signs tmpl with parent (nil: self-signed by the root) after
// giving it a fresh serial number.
func (c *ca) issue(tmpl *x509.Certificate, parent *authority, pub *ecdsa.PublicKey) (*x509.Certificate, error) {
	var err error
	if tmpl.SerialNumber, err = newSerial(c.rand); err != nil {
		return nil, err
	}
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
	parentCert, parentKey := tmpl, c.root.key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("nsmsim: issue %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("nsmsim: issue %s: %w", tmpl.Subject.CommonName, err)
	}
	return cert, nil
}

func covers(cert *x509.Certificate, from, to time.Time) bool {
	return cert != nil && !from.Before(cert.NotBefore) && !to.After(cert.NotAfter)
}

// signer returns the leaf to sign a document at now, its key and the
// cabundle, re-issuing the leaf (and intermediates that would not outlive
// it) when it is about to expire.
func (c *ca) signer(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, [][]byte, error) {
	now = now.UTC().Truncate(time.Second) // what a certificate can say
	if covers(c.leaf, now, now.Add(leafRenewBefore)) {
		return c.leaf, c.leafKey, c.bundle, nil
	}
	until := now.Add(leafLifetime)
	if !covers(c.root.cert, now, until) {
		return nil, nil, nil, fmt.Errorf("nsmsim: the simulated root is not valid from %v to %v", now, until)
	}
	changed := c.bundle == nil
	for i := range c.inter {
		a := &c.inter[i]
		if covers(a.cert, now, until) {
			continue
		}
		parent := &c.root
		if i > 0 {
			parent = &c.inter[i-1]
		}
		tmpl := &x509.Certificate{
			Subject:               a.subject,
			NotBefore:             now,
			NotAfter:              now.Add(a.lifetime),
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLen:            a.pathLen,
			MaxPathLenZero:        a.pathLen == 0,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if i == len(c.inter)-1 {
			tmpl.KeyUsage = x509.KeyUsageCertSign // as AWS's instance certificate
		}
		cert, err := c.issue(tmpl, parent, &a.key.PublicKey)
		if err != nil {
			return nil, nil, nil, err
		}
		a.cert, changed = cert, true
	}
	key, err := newKey(c.rand)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf, err := c.issue(&x509.Certificate{
		Subject:               name(c.moduleID + "." + simRegion + ".nsmsim"),
		NotBefore:             now,
		NotAfter:              until,
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}, &c.inter[len(c.inter)-1], &key.PublicKey)
	if err != nil {
		return nil, nil, nil, err
	}
	if changed {
		bundle := [][]byte{c.root.cert.Raw}
		for _, a := range c.inter {
			bundle = append(bundle, a.cert.Raw)
		}
		c.bundle = bundle
	}
	c.leaf, c.leafKey = leaf, key
	return c.leaf, c.leafKey, c.bundle, nil
}
