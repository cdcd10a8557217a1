package attestation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// A test CA shaped like AWS's (root, regional, zonal and instance CAs, and
// a leaf, all ECDSA P-384 with ECDSA-SHA384 signatures, with AWS's key
// usages and path lengths), and documents that the tests sign with its
// leaf key, so that every check can be exercised both ways.

// testTime is the time at which test-CA documents are made and valid.
var testTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// level is one certificate of a test chain before it is issued: its
// template and its key. levels[0] is the root, the last one the leaf.
type level struct {
	template *x509.Certificate
	key      crypto.Signer
}

// chainSpec describes a test chain; tests change it before issuing it.
type chainSpec struct {
	levels []level
}

// testCA is an issued test chain.
type testCA struct {
	certs []*x509.Certificate // root first, leaf last
	ders  [][]byte
	key   crypto.Signer // the leaf's key
}

func (ca *testCA) root() *x509.Certificate { return ca.certs[0] }
func (ca *testCA) leaf() []byte            { return ca.ders[len(ca.ders)-1] }

// bundle returns the cabundle, in AWS order: the root first.
func (ca *testCA) bundle() [][]byte { return ca.ders[:len(ca.ders)-1] }

func mustKey(curve elliptic.Curve) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		panic(err)
	}
	return key
}

// awsLikeSpec returns the spec of a chain like AWS's, valid at testTime:
// the root (30 years), a regional CA (20 days, path length 2), a zonal CA
// (6 days, path length 1), an instance CA (1 day, path length 0) and the
// leaf (3 hours, starting 3 seconds before the document).
func awsLikeSpec() *chainSpec {
	ca := func(cn string, from, to time.Duration, pathLen int, usage x509.KeyUsage) *x509.Certificate {
		return &x509.Certificate{
			Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"nitrosign test"}, CommonName: cn},
			NotBefore:             testTime.Add(from),
			NotAfter:              testTime.Add(to),
			IsCA:                  true,
			BasicConstraintsValid: true,
			MaxPathLen:            pathLen,
			MaxPathLenZero:        pathLen == 0,
			KeyUsage:              usage,
		}
	}
	const caUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	templates := []*x509.Certificate{
		ca("test.nitro-enclaves", -365*24*time.Hour, 30*365*24*time.Hour, -1, caUsage),
		ca("regional.test.nitro-enclaves", -3*24*time.Hour, 17*24*time.Hour, 2, caUsage),
		ca("zonal.regional.test.nitro-enclaves", -24*time.Hour, 5*24*time.Hour, 1, caUsage),
		ca("i-0123456789abcdef0.test.nitro-enclaves", -2*time.Hour, 22*time.Hour, 0, x509.KeyUsageCertSign),
		{
			Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"nitrosign test"}, CommonName: "i-0123456789abcdef0-enc0123456789abcdef.test"},
			NotBefore:             testTime.Add(-3 * time.Second),
			NotAfter:              testTime.Add(3 * time.Hour),
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		},
	}
	spec := &chainSpec{}
	for i, tmpl := range templates {
		tmpl.SerialNumber = big.NewInt(int64(1000 + i))
		spec.levels = append(spec.levels, level{template: tmpl, key: mustKey(elliptic.P384())})
	}
	return spec
}

// at returns level i (negative: from the end, -1 being the leaf).
func (s *chainSpec) at(i int) *level {
	if i < 0 {
		i += len(s.levels)
	}
	return &s.levels[i]
}

// issue issues the chain: each level signed by the one before it, the root
// by itself.
func (s *chainSpec) issue() (*testCA, error) {
	ca := &testCA{}
	for i, l := range s.levels {
		parent, signer := l.template, l.key
		if i > 0 {
			parent, signer = ca.certs[i-1], s.levels[i-1].key
		}
		der, err := x509.CreateCertificate(rand.Reader, l.template, parent, l.key.Public(), signer)
		if err != nil {
			return nil, fmt.Errorf("level %d: %v", i, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("level %d: %v", i, err)
		}
		ca.certs = append(ca.certs, cert)
		ca.ders = append(ca.ders, der)
	}
	ca.key = s.levels[len(s.levels)-1].key
	return ca, nil
}

func (s *chainSpec) mustIssue(t testing.TB) *testCA {
	t.Helper()
	ca, err := s.issue()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// defaultCA returns the AWS-like test CA most tests share.
var defaultCA = sync.OnceValue(func() *testCA {
	ca, err := awsLikeSpec().issue()
	if err != nil {
		panic(err)
	}
	return ca
})

// Test values of the document fields.
var (
	testPCR0      = sha512.Sum384([]byte("test pcr0: the enclave image"))
	testPCR1      = sha512.Sum384([]byte("test pcr1: kernel and ramdisk"))
	testPCR2      = sha512.Sum384([]byte("test pcr2: the application"))
	testModuleID  = "i-0123456789abcdef0-enc0123456789abcdef"
	testPublicKey = []byte("-----BEGIN PUBLIC KEY-----\ntest\n-----END PUBLIC KEY-----\n")
	testUserData  = []byte("test user data")
	testNonce     = []byte("test nonce, 32 bytes, from user")
)

// Minimal CBOR encoding for building documents, right and wrong.

func cbHead(major byte, n uint64) []byte { return appendHead(nil, major, n) }
func cbBytes(b []byte) []byte            { return append(cbHead(majorBytes, uint64(len(b))), b...) }
func cbText(s string) []byte             { return append(cbHead(majorText, uint64(len(s))), s...) }
func cbUint(n uint64) []byte             { return cbHead(majorUint, n) }

var cbNull = []byte{0xf6}

func cbArray(items ...[]byte) []byte {
	return slices.Concat(append([][]byte{cbHead(majorArray, uint64(len(items)))}, items...)...)
}

// cbMap encodes a map from alternating raw keys and values.
func cbMap(keysAndValues ...[]byte) []byte {
	return slices.Concat(append([][]byte{cbHead(majorMap, uint64(len(keysAndValues)/2))}, keysAndValues...)...)
}

// field is one entry of a payload map: a text key and a raw CBOR value.
type field struct {
	key string
	val []byte
}

// fields is a payload map in order, which may break the rules.
type fields []field

func (fs fields) encode() []byte {
	var kv [][]byte
	for _, f := range fs {
		kv = append(kv, cbText(f.key), f.val)
	}
	return cbMap(kv...)
}

// with returns fs with the value of key replaced, or added at the end.
func (fs fields) with(key string, val []byte) fields {
	out := slices.Clone(fs)
	for i := range out {
		if out[i].key == key {
			out[i].val = val
			return out
		}
	}
	return append(out, field{key, val})
}

// without returns fs without key.
func (fs fields) without(key string) fields {
	return slices.DeleteFunc(slices.Clone(fs), func(f field) bool { return f.key == key })
}

// pcrMap encodes a pcrs map holding PCR0..PCR15 as AWS does: pcr0..pcr2
// as given, the others zeros.
func pcrMap(pcr0, pcr1, pcr2 []byte) []byte {
	var kv [][]byte
	for i := range 16 {
		v := make([]byte, 48)
		switch i {
		case 0:
			v = pcr0
		case 1:
			v = pcr1
		case 2:
			v = pcr2
		}
		kv = append(kv, cbUint(uint64(i)), cbBytes(v))
	}
	return cbMap(kv...)
}

// payload returns the payload fields of a valid document from ca, in the
// order AWS writes them.
func (ca *testCA) payload() fields {
	var bundle [][]byte
	for _, der := range ca.bundle() {
		bundle = append(bundle, cbBytes(der))
	}
	return fields{
		{fieldModuleID, cbText(testModuleID)},
		{fieldDigest, cbText("SHA384")},
		{fieldTimestamp, cbUint(uint64(testTime.UnixMilli()))},
		{fieldPCRs, pcrMap(testPCR0[:], testPCR1[:], testPCR2[:])},
		{fieldCertificate, cbBytes(ca.leaf())},
		{fieldCABundle, cbArray(bundle...)},
		{fieldPublicKey, cbBytes(testPublicKey)},
		{fieldUserData, cbBytes(testUserData)},
		{fieldNonce, cbBytes(testNonce)},
	}
}

// document returns a document from ca holding fs, signed by ca's leaf key.
func (ca *testCA) document(fs fields) []byte {
	payload := fs.encode()
	return cbCOSE(protectedES384, payload, ca.sign(protectedES384, payload))
}

// cbCOSE encodes an untagged COSE_Sign1 with an empty unprotected header.
func cbCOSE(protected, payload, sig []byte) []byte {
	return cbArray(cbBytes(protected), cbMap(), cbBytes(payload), cbBytes(sig))
}

// sign signs the Sig_structure of protected and payload with ca's leaf key,
// built here with fxamacker/cbor rather than with the package's own code.
// An ECDSA key signs the SHA-384 digest, r and s each of the curve's size
// or 48 bytes, whichever is larger; other keys cannot make an ES384
// signature, and get 96 zero bytes.
func (ca *testCA) sign(protected, payload []byte) []byte {
	sigStructure, err := cbor.Marshal([]any{"Signature1", protected, []byte{}, payload})
	if err != nil {
		panic(err)
	}
	digest := sha512.Sum384(sigStructure)
	key, ok := ca.key.(*ecdsa.PrivateKey)
	if !ok {
		return make([]byte, signatureSize)
	}
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		panic(err)
	}
	size := max((key.Curve.Params().BitSize+7)/8, 48)
	return append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...)
}

// testOptions returns options that a valid document from ca passes, with
// every optional check on.
func testOptions(ca *testCA) Options {
	return Options{
		Time:  testTime,
		Roots: []*x509.Certificate{ca.root()},
		PCRs:  map[int][]byte{0: testPCR0[:], 1: testPCR1[:], 2: testPCR2[:]},
		Nonce: testNonce,
		UserData: func(b []byte) error {
			if string(b) != string(testUserData) {
				return fmt.Errorf("user_data is %q, want %q", b, testUserData)
			}
			return nil
		},
	}
}
