package attestation

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// built is a test document and the CA that made it.
type built struct {
	doc []byte
	ca  *testCA
}

// verifyCase is a document, the changes to testOptions it is verified
// with, and the check that must refuse it ("" if it must pass).
type verifyCase struct {
	name  string
	build func(t testing.TB) built
	opts  func(o *Options)
	check string
}

// std builds a document from the default CA with its payload fields
// changed by mod (nil: unchanged).
func std(mod func(fs fields) fields) func(testing.TB) built {
	return func(testing.TB) built {
		ca := defaultCA()
		fs := ca.payload()
		if mod != nil {
			fs = mod(fs)
		}
		return built{ca.document(fs), ca}
	}
}

// raw builds a document of any bytes with the default CA.
func raw(f func(ca *testCA) []byte) func(testing.TB) built {
	return func(testing.TB) built {
		ca := defaultCA()
		return built{f(ca), ca}
	}
}

// withChain issues a chain from the AWS-like spec changed by mod, and
// builds a document from it with its payload fields changed by fsMod.
func withChain(mod func(s *chainSpec), fsMod func(ca *testCA, fs fields) fields) func(testing.TB) built {
	return func(t testing.TB) built {
		s := awsLikeSpec()
		mod(s)
		ca := s.mustIssue(t)
		fs := ca.payload()
		if fsMod != nil {
			fs = fsMod(ca, fs)
		}
		return built{ca.document(fs), ca}
	}
}

// signed returns a document holding payload, signed by ca.
func signed(ca *testCA, payload []byte) []byte {
	return cbCOSE(protectedES384, payload, ca.sign(protectedES384, payload))
}

// validDoc returns the valid document of the default CA.
func validDoc(ca *testCA) []byte { return ca.document(ca.payload()) }

// leafKey changes the key of the leaf.
func leafKey(key crypto.Signer) func(s *chainSpec) {
	return func(s *chainSpec) { s.at(-1).key = key }
}

// rsaKey is an RSA key for a leaf of the wrong type, made once (RSA key
// generation is slow under the race detector).
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
})

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// nullOptional sets public_key, user_data and nonce to val.
func nullOptional(val []byte) func(fields) fields {
	return func(fs fields) fields {
		return fs.with(fieldPublicKey, val).with(fieldUserData, val).with(fieldNonce, val)
	}
}

// noUserDataChecks turns off the nonce and user_data checks.
func noUserDataChecks(o *Options) { o.Nonce, o.UserData = nil, nil }

func verifyCases() []verifyCase {
	allZero := make([]byte, 48)
	pcrs32 := func(fs fields) fields {
		var kv [][]byte
		for i := range 32 {
			v := repeat(byte(i), 64)
			switch i {
			case 0, 1, 2:
				v = [][]byte{testPCR0[:], testPCR1[:], testPCR2[:]}[i]
			case 3:
				v = repeat(3, 32)
			}
			kv = append(kv, cbUint(uint64(i)), cbBytes(v))
		}
		return fs.with(fieldPCRs, cbMap(kv...))
	}
	pcrEntries := func(extra ...[]byte) []byte {
		return cbMap(append([][]byte{cbUint(0), cbBytes(testPCR0[:]), cbUint(1), cbBytes(testPCR1[:]), cbUint(2), cbBytes(testPCR2[:])}, extra...)...)
	}
	bundle := func(ca *testCA, order ...int) []byte {
		var items [][]byte
		for _, i := range order {
			items = append(items, cbBytes(ca.ders[i]))
		}
		return cbArray(items...)
	}
	otherCA := sync.OnceValue(func() *testCA {
		ca, err := awsLikeSpec().issue()
		if err != nil {
			panic(err)
		}
		return ca
	})
	tmpl := func(i int, f func(c *x509.Certificate)) func(s *chainSpec) {
		return func(s *chainSpec) { f(s.at(i).template) }
	}
	unknownCritical := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Critical: true, Value: []byte{0x05, 0x00}}
	nonCriticalCA, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	leafPathLen, _ := asn1.Marshal(struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int
	}{false, 0})

	return []verifyCase{
		// Accepted.
		{name: "valid", build: std(nil)},
		{name: "valid optional fields null", build: std(nullOptional(cbNull)), opts: func(o *Options) {
			o.Nonce = nil
			o.UserData = func(b []byte) error {
				if b != nil {
					return errors.New("want nil")
				}
				return nil
			}
		}},
		{name: "valid optional fields absent", build: std(func(fs fields) fields {
			return fs.without(fieldPublicKey).without(fieldUserData).without(fieldNonce)
		}), opts: noUserDataChecks},
		{name: "valid optional fields empty", build: std(nullOptional(cbBytes(nil))), opts: func(o *Options) {
			o.Nonce = nil
			o.UserData = func(b []byte) error {
				if b == nil || len(b) != 0 {
					return errors.New("want empty")
				}
				return nil
			}
		}},
		{name: "valid optional fields of 1024 bytes", build: std(nullOptional(cbBytes(repeat('x', 1024)))), opts: func(o *Options) {
			o.Nonce, o.UserData = repeat('x', 1024), nil
		}},
		{name: "valid fields in another order", build: std(func(fs fields) fields {
			fs = slices.Clone(fs)
			slices.Reverse(fs)
			return fs
		})},
		{name: "valid at the leaf's not before", build: std(nil), opts: func(o *Options) { o.Time = testTime.Add(-3 * time.Second) }},
		{name: "valid at the leaf's not after", build: std(nil), opts: func(o *Options) { o.Time = testTime.Add(3 * time.Hour) }},
		{name: "valid timestamp at the leaf's not before", build: std(func(fs fields) fields {
			return fs.with(fieldTimestamp, cbUint(uint64(testTime.Add(-3*time.Second).UnixMilli())))
		})},
		{name: "valid leaf issued by the root", build: withChain(func(s *chainSpec) {
			s.levels = []level{s.levels[0], s.levels[4]}
		}, nil)},
		{name: "valid 32 pcrs", build: std(pcrs32), opts: func(o *Options) { o.PCRs[31] = repeat(31, 64); o.PCRs[3] = repeat(3, 32) }},
		{name: "valid without options", build: std(nil), opts: func(o *Options) { o.PCRs, o.Nonce, o.UserData = nil, nil, nil }},
		{name: "valid debug allowed", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrMap(allZero, allZero, allZero))
		}), opts: func(o *Options) { o.PCRs, o.AllowDebug = nil, true }},
		{name: "valid several roots", build: std(nil), opts: func(o *Options) {
			o.Roots = []*x509.Certificate{AWSRootG1(), otherCA().root(), defaultCA().root()}
		}},

		// options
		{name: "no time", build: std(nil), opts: func(o *Options) { o.Time = time.Time{} }, check: CheckOptions},
		{name: "empty roots", build: std(nil), opts: func(o *Options) { o.Roots = []*x509.Certificate{} }, check: CheckOptions},
		{name: "nil root", build: std(nil), opts: func(o *Options) { o.Roots = append(o.Roots, nil) }, check: CheckOptions},
		{name: "option pcr index 32", build: std(nil), opts: func(o *Options) { o.PCRs[32] = testPCR0[:] }, check: CheckOptions},
		{name: "option pcr index -1", build: std(nil), opts: func(o *Options) { o.PCRs[-1] = testPCR0[:] }, check: CheckOptions},
		{name: "option pcr of 31 bytes", build: std(nil), opts: func(o *Options) { o.PCRs[0] = testPCR0[:31] }, check: CheckOptions},
		{name: "option empty nonce", build: std(nil), opts: func(o *Options) { o.Nonce = []byte{} }, check: CheckOptions},
		{name: "option nonce of 1025 bytes", build: std(nil), opts: func(o *Options) { o.Nonce = repeat(1, 1025) }, check: CheckOptions},

		// size
		{name: "oversized document", build: raw(func(ca *testCA) []byte {
			doc := validDoc(ca)
			return append(doc, make([]byte, MaxDocumentSize+1-len(doc))...)
		}), check: CheckSize},

		// cose
		{name: "empty document", build: raw(func(*testCA) []byte { return nil }), check: CheckCOSE},
		{name: "tag 18", build: raw(func(ca *testCA) []byte { return append([]byte{0xd2}, validDoc(ca)...) }), check: CheckCOSE},
		{name: "array of 3", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(cbBytes(d.Protected), cbMap(), cbBytes(d.Payload))
		}), check: CheckCOSE},
		{name: "array of 5", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(cbBytes(d.Protected), cbMap(), cbBytes(d.Payload), cbBytes(d.Signature), cbNull)
		}), check: CheckCOSE},
		{name: "map", build: raw(func(*testCA) []byte { return cbMap() }), check: CheckCOSE},
		{name: "indefinite-length array", build: raw(func(ca *testCA) []byte {
			doc := validDoc(ca)
			return append(append([]byte{0x9f}, doc[1:]...), 0xff)
		}), check: CheckCOSE},
		{name: "non-shortest array head", build: raw(func(ca *testCA) []byte {
			return append([]byte{0x98, 0x04}, validDoc(ca)[1:]...)
		}), check: CheckCOSE},
		{name: "non-shortest payload length", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			n := len(d.Payload)
			return slices.Concat(cbHead(majorArray, 4), cbBytes(d.Protected), cbMap(),
				[]byte{0x5a, 0, 0, byte(n >> 8), byte(n)}, d.Payload, cbBytes(d.Signature))
		}), check: CheckCOSE},
		{name: "indefinite-length payload", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return slices.Concat(cbHead(majorArray, 4), cbBytes(d.Protected), cbMap(),
				[]byte{0x5f}, cbBytes(d.Payload), []byte{0xff}, cbBytes(d.Signature))
		}), check: CheckCOSE},
		{name: "protected ES256", build: raw(func(ca *testCA) []byte {
			protected := []byte{0xa1, 0x01, 0x26}
			payload := ca.payload().encode()
			return cbCOSE(protected, payload, ca.sign(protected, payload))
		}), check: CheckCOSE},
		{name: "protected ES384 and a kid", build: raw(func(ca *testCA) []byte {
			protected := cbMap(cbUint(1), []byte{0x38, 0x22}, cbUint(4), cbBytes([]byte("k")))
			payload := ca.payload().encode()
			return cbCOSE(protected, payload, ca.sign(protected, payload))
		}), check: CheckCOSE},
		{name: "protected alg as text", build: raw(func(ca *testCA) []byte {
			protected := cbMap(cbUint(1), cbText("ES384"))
			payload := ca.payload().encode()
			return cbCOSE(protected, payload, ca.sign(protected, payload))
		}), check: CheckCOSE},
		{name: "protected empty", build: raw(func(ca *testCA) []byte {
			payload := ca.payload().encode()
			return cbCOSE(nil, payload, ca.sign(nil, payload))
		}), check: CheckCOSE},
		{name: "protected not a byte string", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(d.Protected, cbMap(), cbBytes(d.Payload), cbBytes(d.Signature))
		}), check: CheckCOSE},
		{name: "unprotected not empty", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(cbBytes(d.Protected), cbMap(cbUint(4), cbBytes([]byte("k"))), cbBytes(d.Payload), cbBytes(d.Signature))
		}), check: CheckCOSE},
		{name: "unprotected null", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(cbBytes(d.Protected), cbNull, cbBytes(d.Payload), cbBytes(d.Signature))
		}), check: CheckCOSE},
		{name: "payload empty", build: raw(func(ca *testCA) []byte { return signed(ca, nil) }), check: CheckCOSE},
		{name: "payload null", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(cbBytes(d.Protected), cbMap(), cbNull, cbBytes(d.Signature))
		}), check: CheckCOSE},
		{name: "signature of 95 bytes", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbCOSE(d.Protected, d.Payload, d.Signature[:95])
		}), check: CheckCOSE},
		{name: "signature of 97 bytes", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbCOSE(d.Protected, d.Payload, append(d.Signature, 0))
		}), check: CheckCOSE},
		{name: "signature in DER", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			digest := sigStructureDigest(d.Protected, d.Payload)
			sig, _ := ecdsa.SignASN1(rand.Reader, ca.key.(*ecdsa.PrivateKey), digest)
			return cbCOSE(d.Protected, d.Payload, sig)
		}), check: CheckCOSE},
		{name: "signature as text", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbArray(cbBytes(d.Protected), cbMap(), cbBytes(d.Payload), cbText(string(d.Signature)))
		}), check: CheckCOSE},
		{name: "trailing byte", build: raw(func(ca *testCA) []byte { return append(validDoc(ca), 0) }), check: CheckCOSE},
		{name: "two documents", build: raw(func(ca *testCA) []byte { return append(validDoc(ca), validDoc(ca)...) }), check: CheckCOSE},
		{name: "truncated", build: raw(func(ca *testCA) []byte { doc := validDoc(ca); return doc[:len(doc)-1] }), check: CheckCOSE},
		{name: "truncated head", build: raw(func(ca *testCA) []byte { return validDoc(ca)[:7] }), check: CheckCOSE},

		// payload
		{name: "payload not a map", build: raw(func(ca *testCA) []byte { return signed(ca, cbArray()) }), check: CheckPayload},
		{name: "payload empty map", build: raw(func(ca *testCA) []byte { return signed(ca, cbMap()) }), check: CheckPayload},
		{name: "payload trailing byte", build: raw(func(ca *testCA) []byte {
			return signed(ca, append(ca.payload().encode(), 0))
		}), check: CheckPayload},
		{name: "payload indefinite-length map", build: raw(func(ca *testCA) []byte {
			p := ca.payload().encode()
			return signed(ca, append(append([]byte{0xbf}, p[1:]...), 0xff))
		}), check: CheckPayload},
		{name: "payload non-shortest map head", build: raw(func(ca *testCA) []byte {
			p := ca.payload().encode()
			return signed(ca, append([]byte{0xb8, 0x09}, p[1:]...))
		}), check: CheckPayload},
		{name: "payload map of 10 entries", build: std(func(fs fields) fields { return fs.with("extra", cbNull) }), check: CheckPayload},
		{name: "unknown field", build: std(func(fs fields) fields {
			return fs.without(fieldNonce).with("pcr_digest", cbBytes([]byte("x")))
		}), check: CheckPayload},
		{name: "field name in upper case", build: std(func(fs fields) fields {
			return fs.without(fieldNonce).with("Nonce", cbBytes(testNonce))
		}), check: CheckPayload},
		{name: "field name not text", build: raw(func(ca *testCA) []byte {
			p := ca.payload().without(fieldNonce).encode()
			p[0]++ // one more entry
			return signed(ca, slices.Concat(p, cbUint(9), cbBytes(testNonce)))
		}), check: CheckPayload},
		{name: "duplicate field", build: std(func(fs fields) fields {
			return append(fs.without(fieldNonce), field{fieldModuleID, cbText("i-other")})
		}), check: CheckPayload},
		{name: "duplicate field same value", build: std(func(fs fields) fields {
			return append(fs.without(fieldNonce), fs[0])
		}), check: CheckPayload},
		{name: "missing module_id", build: std(func(fs fields) fields { return fs.without(fieldModuleID) }), check: CheckPayload},
		{name: "missing digest", build: std(func(fs fields) fields { return fs.without(fieldDigest) }), check: CheckPayload},
		{name: "missing timestamp", build: std(func(fs fields) fields { return fs.without(fieldTimestamp) }), check: CheckPayload},
		{name: "missing pcrs", build: std(func(fs fields) fields { return fs.without(fieldPCRs) }), check: CheckPayload},
		{name: "missing certificate", build: std(func(fs fields) fields { return fs.without(fieldCertificate) }), check: CheckPayload},
		{name: "missing cabundle", build: std(func(fs fields) fields { return fs.without(fieldCABundle) }), check: CheckPayload},
		{name: "module_id empty", build: std(func(fs fields) fields { return fs.with(fieldModuleID, cbText("")) }), check: CheckPayload},
		{name: "module_id not UTF-8", build: std(func(fs fields) fields { return fs.with(fieldModuleID, cbText("i-\xff")) }), check: CheckPayload},
		{name: "module_id as bytes", build: std(func(fs fields) fields { return fs.with(fieldModuleID, cbBytes([]byte(testModuleID))) }), check: CheckPayload},
		{name: "module_id null", build: std(func(fs fields) fields { return fs.with(fieldModuleID, cbNull) }), check: CheckPayload},
		{name: "digest SHA256", build: std(func(fs fields) fields { return fs.with(fieldDigest, cbText("SHA256")) }), check: CheckPayload},
		{name: "digest sha384", build: std(func(fs fields) fields { return fs.with(fieldDigest, cbText("sha384")) }), check: CheckPayload},
		{name: "digest as integer", build: std(func(fs fields) fields { return fs.with(fieldDigest, cbUint(1)) }), check: CheckPayload},
		{name: "timestamp 0", build: std(func(fs fields) fields { return fs.with(fieldTimestamp, cbUint(0)) }), check: CheckPayload},
		{name: "timestamp 2^63", build: std(func(fs fields) fields { return fs.with(fieldTimestamp, cbUint(1<<63)) }), check: CheckPayload},
		{name: "timestamp negative", build: std(func(fs fields) fields { return fs.with(fieldTimestamp, cbHead(majorNegInt, 5)) }), check: CheckPayload},
		{name: "timestamp as float", build: std(func(fs fields) fields {
			return fs.with(fieldTimestamp, []byte{0xfb, 0x42, 0x78, 0xf5, 0x42, 0x6e, 0x6a, 0x80, 0x00})
		}), check: CheckPayload},
		{name: "timestamp as text", build: std(func(fs fields) fields { return fs.with(fieldTimestamp, cbText("1748779200000")) }), check: CheckPayload},
		{name: "timestamp tagged", build: std(func(fs fields) fields {
			return fs.with(fieldTimestamp, append(cbHead(majorTag, 1), cbUint(uint64(testTime.Unix()))...))
		}), check: CheckPayload},
		{name: "timestamp non-shortest", build: std(func(fs fields) fields {
			return fs.with(fieldTimestamp, []byte{0x1b, 0, 0, 0, 0, 0, 0, 0, 5})
		}), check: CheckPayload},
		{name: "pcrs empty", build: std(func(fs fields) fields { return fs.with(fieldPCRs, cbMap()) }), check: CheckPayload},
		{name: "pcrs of 33 entries", build: raw(func(ca *testCA) []byte {
			var kv [][]byte
			for i := range 33 {
				kv = append(kv, cbUint(uint64(i%32)), cbBytes(repeat(1, 48)))
			}
			return ca.document(ca.payload().with(fieldPCRs, cbMap(kv...)))
		}), check: CheckPayload},
		{name: "pcr index 32", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbUint(32), cbBytes(allZero)))
		}), check: CheckPayload},
		{name: "pcr duplicate index", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbUint(0), cbBytes(testPCR0[:])))
		}), check: CheckPayload},
		{name: "pcr of 31 bytes", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbUint(3), cbBytes(allZero[:31])))
		}), check: CheckPayload},
		{name: "pcr of 49 bytes", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbUint(3), cbBytes(repeat(0, 49))))
		}), check: CheckPayload},
		{name: "pcr of 65 bytes", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbUint(3), cbBytes(repeat(0, 65))))
		}), check: CheckPayload},
		{name: "pcr text index", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbText("3"), cbBytes(allZero)))
		}), check: CheckPayload},
		{name: "pcr negative index", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbHead(majorNegInt, 0), cbBytes(allZero)))
		}), check: CheckPayload},
		{name: "pcr null", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrEntries(cbUint(3), cbNull))
		}), check: CheckPayload},
		{name: "pcrs as array", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, cbArray(cbBytes(testPCR0[:])))
		}), check: CheckPayload},
		{name: "certificate empty", build: std(func(fs fields) fields { return fs.with(fieldCertificate, cbBytes(nil)) }), check: CheckPayload},
		{name: "certificate of 1025 bytes", build: std(func(fs fields) fields {
			return fs.with(fieldCertificate, cbBytes(repeat(0x30, 1025)))
		}), check: CheckPayload},
		{name: "certificate null", build: std(func(fs fields) fields { return fs.with(fieldCertificate, cbNull) }), check: CheckPayload},
		{name: "cabundle empty", build: std(func(fs fields) fields { return fs.with(fieldCABundle, cbArray()) }), check: CheckPayload},
		{name: "cabundle of 9 certificates", build: raw(func(ca *testCA) []byte {
			var items [][]byte
			for range 9 {
				items = append(items, cbBytes(ca.ders[0]))
			}
			return ca.document(ca.payload().with(fieldCABundle, cbArray(items...)))
		}), check: CheckPayload},
		{name: "cabundle entry empty", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, cbArray(cbBytes(ca.ders[0]), cbBytes(nil))))
		}), check: CheckPayload},
		{name: "cabundle entry of 1025 bytes", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, cbArray(cbBytes(ca.ders[0]), cbBytes(repeat(0x30, 1025)))))
		}), check: CheckPayload},
		{name: "cabundle as one byte string", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, cbBytes(ca.ders[0])))
		}), check: CheckPayload},
		{name: "public_key of 1025 bytes", build: std(func(fs fields) fields { return fs.with(fieldPublicKey, cbBytes(repeat(1, 1025))) }), check: CheckPayload},
		{name: "user_data of 1025 bytes", build: std(func(fs fields) fields { return fs.with(fieldUserData, cbBytes(repeat(1, 1025))) }), check: CheckPayload},
		{name: "nonce of 1025 bytes", build: std(func(fs fields) fields { return fs.with(fieldNonce, cbBytes(repeat(1, 1025))) }), check: CheckPayload},
		{name: "nonce as text", build: std(func(fs fields) fields { return fs.with(fieldNonce, cbText(string(testNonce))) }), check: CheckPayload},
		{name: "nonce false", build: std(func(fs fields) fields { return fs.with(fieldNonce, []byte{0xf4}) }), check: CheckPayload},
		{name: "nonce undefined", build: std(func(fs fields) fields { return fs.with(fieldNonce, []byte{0xf7}) }), check: CheckPayload},
		{name: "nonce indefinite-length", build: std(func(fs fields) fields {
			return fs.with(fieldNonce, slices.Concat([]byte{0x5f}, cbBytes(testNonce), []byte{0xff}))
		}), check: CheckPayload},
		{name: "user_data as map", build: std(func(fs fields) fields { return fs.with(fieldUserData, cbMap()) }), check: CheckPayload},

		// leaf
		{name: "leaf not DER", build: std(func(fs fields) fields {
			return fs.with(fieldCertificate, cbBytes([]byte{0x30, 0x03, 0x02, 0x01, 0x01}))
		}), check: CheckLeaf},
		{name: "leaf with trailing data", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCertificate, cbBytes(append(slices.Clone(ca.leaf()), 0))))
		}), check: CheckLeaf},
		// r and s padded to 48 bytes, the P-256 signature of the SHA-384
		// digest (truncated) would verify as 96 bytes split in halves.
		{name: "leaf key P-256", build: withChain(leafKey(mustKey(elliptic.P256())), nil), check: CheckLeaf},
		{name: "leaf key P-521", build: p521Document(true), check: CheckCOSE}, // its signature is 132 bytes
		{name: "leaf key P-521, 96-byte signature", build: p521Document(false), check: CheckLeaf},
		{name: "leaf key RSA", build: withChain(func(s *chainSpec) { s.at(-1).key = rsaKey() }, nil), check: CheckLeaf},
		{name: "leaf key Ed25519", build: withChain(func(s *chainSpec) {
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			s.at(-1).key = key
		}, nil), check: CheckLeaf},

		// signature
		{name: "signed by another key", build: raw(func(ca *testCA) []byte {
			other := *ca
			other.key = mustKey(elliptic.P384())
			return other.document(ca.payload())
		}), check: CheckSignature},
		{name: "signature of another payload", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			payload := ca.payload().with(fieldUserData, cbBytes([]byte("other user data"))).encode()
			return cbCOSE(d.Protected, payload, d.Signature)
		}), check: CheckSignature},
		{name: "signature zero", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbCOSE(d.Protected, d.Payload, make([]byte, 96))
		}), check: CheckSignature},
		{name: "signature r and s swapped", build: raw(func(ca *testCA) []byte {
			d := parseValid(ca)
			return cbCOSE(d.Protected, d.Payload, append(slices.Clone(d.Signature[48:]), d.Signature[:48]...))
		}), check: CheckSignature},
		{name: "signature with external_aad", build: raw(func(ca *testCA) []byte {
			payload := ca.payload().encode()
			return cbCOSE(protectedES384, payload, signStructure(ca, []any{"Signature1", protectedES384, []byte("aad"), payload}))
		}), check: CheckSignature},
		{name: "signature with another context", build: raw(func(ca *testCA) []byte {
			payload := ca.payload().encode()
			return cbCOSE(protectedES384, payload, signStructure(ca, []any{"Signature", protectedES384, []byte{}, payload}))
		}), check: CheckSignature},
		{name: "signature of the payload alone", build: raw(func(ca *testCA) []byte {
			payload := ca.payload().encode()
			digest := sha512.Sum384(payload)
			return cbCOSE(protectedES384, payload, rawSign(ca, digest[:]))
		}), check: CheckSignature},

		// certificates
		{name: "cabundle entry not DER", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, cbArray(cbBytes(ca.ders[0]), cbBytes([]byte{0x30, 0x00}))))
		}), check: CheckCertificates},
		{name: "cabundle entry twice", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, bundle(ca, 0, 1, 1, 2, 3)))
		}), check: CheckCertificates},
		{name: "leaf also in cabundle", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, bundle(ca, 0, 1, 2, 3, 4)))
		}), check: CheckCertificates},
		{name: "intermediate key P-256", build: withChain(func(s *chainSpec) { s.at(2).key = mustKey(elliptic.P256()) }, nil), check: CheckCertificates},
		{name: "intermediate signed with ECDSA-SHA512", build: withChain(tmpl(2, func(c *x509.Certificate) {
			c.SignatureAlgorithm = x509.ECDSAWithSHA512
		}), nil), check: CheckCertificates},
		{name: "leaf signed with ECDSA-SHA256", build: withChain(tmpl(-1, func(c *x509.Certificate) {
			c.SignatureAlgorithm = x509.ECDSAWithSHA256
		}), nil), check: CheckCertificates},

		// root
		{name: "default root", build: std(nil), opts: func(o *Options) { o.Roots = nil }, check: CheckRoot},
		{name: "cabundle without the root", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, bundle(ca, 1, 2, 3)))
		}), check: CheckRoot},
		{name: "cabundle reversed", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, bundle(ca, 3, 2, 1, 0)))
		}), check: CheckRoot},
		{name: "pinned root of the same name", build: std(nil), opts: func(o *Options) {
			o.Roots = []*x509.Certificate{otherCA().root()} // another key, not byte for byte the root
			if otherCA().root().Subject.String() != defaultCA().root().Subject.String() {
				panic("the test CAs have different root names")
			}
		}, check: CheckRoot},

		// validity
		{name: "before the leaf", build: std(nil), opts: func(o *Options) { o.Time = testTime.Add(-3*time.Second - time.Nanosecond) }, check: CheckValidity},
		{name: "after the leaf", build: std(nil), opts: func(o *Options) { o.Time = testTime.Add(3*time.Hour + time.Nanosecond) }, check: CheckValidity},
		{name: "now", build: std(nil), opts: func(o *Options) { o.Time = time.Now() }, check: CheckValidity},
		{name: "intermediate expired", build: withChain(tmpl(2, func(c *x509.Certificate) { c.NotAfter = testTime.Add(-time.Hour) }), nil), check: CheckValidity},
		{name: "intermediate not yet valid", build: withChain(tmpl(1, func(c *x509.Certificate) { c.NotBefore = testTime.Add(time.Hour) }), nil), check: CheckValidity},
		{name: "root expired", build: withChain(tmpl(0, func(c *x509.Certificate) { c.NotAfter = testTime.Add(-time.Second) }), nil), check: CheckValidity},
		{name: "timestamp before the leaf", build: std(func(fs fields) fields {
			return fs.with(fieldTimestamp, cbUint(uint64(testTime.Add(-3*time.Second-time.Millisecond).UnixMilli())))
		}), check: CheckValidity},
		{name: "timestamp after the leaf", build: std(func(fs fields) fields {
			return fs.with(fieldTimestamp, cbUint(uint64(testTime.Add(3*time.Hour+time.Millisecond).UnixMilli())))
		}), check: CheckValidity},

		// chain
		{name: "intermediates swapped", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, bundle(ca, 0, 2, 1, 3)))
		}), check: CheckChain},
		{name: "intermediate missing", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, bundle(ca, 0, 1, 3)))
		}), check: CheckChain},
		{name: "leaf from another CA of the same names", build: raw(func(ca *testCA) []byte {
			other := otherCA()
			return other.document(other.payload().with(fieldCABundle, bundle(ca, 0, 1, 2, 3)))
		}), check: CheckChain},
		{name: "intermediate from another CA of the same names", build: raw(func(ca *testCA) []byte {
			return ca.document(ca.payload().with(fieldCABundle, cbArray(
				cbBytes(ca.ders[0]), cbBytes(ca.ders[1]), cbBytes(otherCA().ders[2]), cbBytes(ca.ders[3]))))
		}), check: CheckChain},
		{name: "intermediate not a CA", build: withChain(tmpl(2, func(c *x509.Certificate) {
			c.IsCA, c.MaxPathLen = false, -1
		}), nil), check: CheckChain},
		{name: "intermediate without keyCertSign", build: withChain(tmpl(2, func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature
		}), nil), check: CheckChain},
		{name: "intermediate without key usage", build: withChain(tmpl(2, func(c *x509.Certificate) { c.KeyUsage = 0 }), nil), check: CheckChain},
		{name: "intermediate without basic constraints", build: withChain(tmpl(2, func(c *x509.Certificate) {
			c.BasicConstraintsValid, c.IsCA, c.MaxPathLen = false, false, 0
		}), nil), check: CheckChain},
		{name: "intermediate basic constraints not critical", build: withChain(tmpl(2, func(c *x509.Certificate) {
			c.BasicConstraintsValid, c.IsCA, c.MaxPathLen = false, false, 0
			c.ExtraExtensions = []pkix.Extension{{Id: oidBasicConstraints, Value: nonCriticalCA}}
		}), nil), check: CheckChain},
		{name: "intermediate path length exceeded", build: withChain(tmpl(1, func(c *x509.Certificate) { c.MaxPathLen = 1 }), nil), check: CheckChain},
		{name: "instance CA with a CA below it", build: withChain(func(s *chainSpec) {
			extra := awsLikeSpec().levels[3]
			extra.template.Subject.CommonName = "below.instance"
			s.levels = slices.Insert(s.levels, 4, extra)
		}, nil), check: CheckChain},
		{name: "intermediate with an unknown critical extension", build: withChain(tmpl(3, func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{unknownCritical}
		}), nil), check: CheckChain},
		{name: "leaf is a CA", build: withChain(tmpl(-1, func(c *x509.Certificate) { c.IsCA = true }), nil), check: CheckChain},
		{name: "leaf without basic constraints", build: withChain(tmpl(-1, func(c *x509.Certificate) { c.BasicConstraintsValid = false }), nil), check: CheckChain},
		{name: "leaf with a path length", build: withChain(tmpl(-1, func(c *x509.Certificate) {
			c.BasicConstraintsValid = false
			c.ExtraExtensions = []pkix.Extension{{Id: oidBasicConstraints, Critical: true, Value: leafPathLen}}
		}), nil), check: CheckChain},
		{name: "leaf without digitalSignature", build: withChain(tmpl(-1, func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageContentCommitment
		}), nil), check: CheckChain},
		{name: "leaf with an unknown critical extension", build: withChain(tmpl(-1, func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{unknownCritical}
		}), nil), check: CheckChain},

		// pcrs
		{name: "pcr0 differs", build: std(nil), opts: func(o *Options) { o.PCRs[0] = testPCR1[:] }, check: CheckPCRs},
		{name: "pcr1 differs", build: std(nil), opts: func(o *Options) { o.PCRs[1] = testPCR0[:] }, check: CheckPCRs},
		{name: "pcr0 of another length", build: std(nil), opts: func(o *Options) { o.PCRs[0] = testPCR0[:32] }, check: CheckPCRs},
		{name: "pcr not in the document", build: std(nil), opts: func(o *Options) { o.PCRs[16] = make([]byte, 48) }, check: CheckPCRs},

		// nonce
		{name: "nonce differs", build: std(nil), opts: func(o *Options) { o.Nonce = []byte("another nonce") }, check: CheckNonce},
		{name: "nonce prefix", build: std(nil), opts: func(o *Options) { o.Nonce = testNonce[:8] }, check: CheckNonce},
		{name: "nonce null", build: std(func(fs fields) fields { return fs.with(fieldNonce, cbNull) }), check: CheckNonce},
		{name: "nonce absent", build: std(func(fs fields) fields { return fs.without(fieldNonce) }), check: CheckNonce},
		{name: "nonce empty", build: std(func(fs fields) fields { return fs.with(fieldNonce, cbBytes(nil)) }), check: CheckNonce},

		// debug
		{name: "debug mode", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrMap(allZero, allZero, allZero))
		}), opts: func(o *Options) { o.PCRs = nil }, check: CheckDebug},
		{name: "debug mode pinned", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrMap(allZero, allZero, allZero))
		}), opts: func(o *Options) { o.PCRs = map[int][]byte{0: allZero, 1: allZero, 2: allZero} }, check: CheckDebug},
		{name: "pcr2 all zeros", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, pcrMap(testPCR0[:], testPCR1[:], allZero))
		}), opts: func(o *Options) { delete(o.PCRs, 2) }, check: CheckDebug},
		{name: "pcr1 absent", build: std(func(fs fields) fields {
			return fs.with(fieldPCRs, cbMap(cbUint(0), cbBytes(testPCR0[:]), cbUint(2), cbBytes(testPCR2[:])))
		}), opts: func(o *Options) { delete(o.PCRs, 1) }, check: CheckDebug},

		// user data
		{name: "user data refused", build: std(nil), opts: func(o *Options) {
			o.UserData = func([]byte) error { return errors.New("does not commit to the expected keys") }
		}, check: CheckUserData},
		{name: "user data null", build: std(func(fs fields) fields { return fs.with(fieldUserData, cbNull) }), check: CheckUserData},
		{name: "user data differs", build: std(func(fs fields) fields { return fs.with(fieldUserData, cbBytes([]byte("other"))) }), check: CheckUserData},
	}
}

// parseValid parses the valid document of ca.
func parseValid(ca *testCA) *Document {
	d, err := Parse(validDoc(ca))
	if err != nil {
		panic(err)
	}
	return d
}

// signStructure signs the CBOR encoding of a Sig_structure with ca's key.
func signStructure(ca *testCA, structure []any) []byte {
	b, err := cbor.Marshal(structure)
	if err != nil {
		panic(err)
	}
	digest := sha512.Sum384(b)
	return rawSign(ca, digest[:])
}

// rawSign signs digest with ca's P-384 key, r || s.
func rawSign(ca *testCA, digest []byte) []byte {
	r, s, err := ecdsa.Sign(rand.Reader, ca.key.(*ecdsa.PrivateKey), digest)
	if err != nil {
		panic(err)
	}
	return append(r.FillBytes(make([]byte, 48)), s.FillBytes(make([]byte, 48))...)
}

// p521Document builds a document whose chain is correct but whose leaf key
// is P-521 (root, CAs P-384 as AWS's, leaf signed with ECDSA-SHA384 so that
// nitrite goes as far as using the leaf key). With honest, the COSE
// signature is the P-521 one, 132 bytes; without, it is cut to the 96 bytes
// of an ES384 signature, so that the document is well formed.
func p521Document(honest bool) func(testing.TB) built {
	return func(t testing.TB) built {
		s := awsLikeSpec()
		s.at(-1).key = mustKey(elliptic.P521())
		ca := s.mustIssue(t)
		doc := ca.document(ca.payload())
		if !honest {
			d := mustParseBytes(t, doc, 132)
			doc = cbCOSE(d.protected, d.payload, d.sig[:96])
		}
		return built{doc, ca}
	}
}

// mustParseBytes reads the envelope of doc, whose signature must be
// sigSize bytes.
func mustParseBytes(t testing.TB, doc []byte, sigSize int) (e struct{ protected, payload, sig []byte }) {
	t.Helper()
	var arr []cbor.RawMessage
	if err := cbor.Unmarshal(doc, &arr); err != nil || len(arr) != 4 {
		t.Fatalf("not a COSE_Sign1: %v", err)
	}
	for i, dst := range []*[]byte{&e.protected, nil, &e.payload, &e.sig} {
		if dst != nil {
			if err := cbor.Unmarshal(arr[i], dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(e.sig) != sigSize {
		t.Fatalf("signature of %d bytes, want %d", len(e.sig), sigSize)
	}
	return e
}

func TestVerify(t *testing.T) {
	all := []string{CheckOptions, CheckSize, CheckCOSE, CheckPayload, CheckLeaf, CheckSignature, CheckCertificates,
		CheckRoot, CheckValidity, CheckChain, CheckPCRs, CheckNonce, CheckDebug, CheckUserData}
	refused := map[string]bool{}
	names := map[string]bool{}
	for _, tc := range verifyCases() {
		if names[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		names[tc.name] = true
		refused[tc.check] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.build(t)
			opts := testOptions(b.ca)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			res, err := Verify(b.doc, opts)
			if tc.check != "" {
				if res != nil {
					t.Errorf("a result with an error")
				}
				wantCheck(t, err, tc.check)
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res, b, opts)
			crossCheckNitrite(t, b.doc, opts)
		})
	}
	for _, check := range all {
		if !refused[check] || !refused[""] {
			t.Errorf("no case is refused by check %q", check)
		}
	}
}

// checkResult checks a Result against the document it came from.
func checkResult(t *testing.T, res *Result, b built, opts Options) {
	t.Helper()
	d, err := Parse(b.doc)
	if err != nil {
		t.Fatal(err)
	}
	if res.ModuleID != d.ModuleID || !res.Time.Equal(d.Time()) || !bytes.Equal(res.PublicKey, d.PublicKey) ||
		!bytes.Equal(res.UserData, d.UserData) || !bytes.Equal(res.Nonce, d.Nonce) || len(res.PCRs) != len(d.PCRs) {
		t.Errorf("result %+v does not match the document", res)
	}
	if (res.Nonce == nil) != (d.Nonce == nil) || (res.UserData == nil) != (d.UserData == nil) {
		t.Errorf("absent and empty fields confused")
	}
	if n := len(res.Chain); n != len(d.CABundle)+1 || !bytes.Equal(res.Chain[0].Raw, d.Certificate) ||
		!bytes.Equal(res.Chain[n-1].Raw, d.CABundle[0]) || !slices.ContainsFunc(opts.Roots, func(c *x509.Certificate) bool {
		return bytes.Equal(c.Raw, res.Chain[n-1].Raw)
	}) {
		t.Errorf("chain is not leaf to pinned root")
	}
	want := []string{CheckOptions, CheckSize, CheckCOSE, CheckPayload, CheckLeaf, CheckSignature, CheckCertificates,
		CheckRoot, CheckValidity, CheckChain}
	if len(opts.PCRs) > 0 {
		want = append(want, CheckPCRs)
	}
	if opts.Nonce != nil {
		want = append(want, CheckNonce)
	}
	if !res.Debug {
		want = append(want, CheckDebug)
	} else if !opts.AllowDebug {
		t.Error("debug mode without AllowDebug")
	}
	if opts.UserData != nil {
		want = append(want, CheckUserData)
	}
	if !slices.Equal(res.Checks, want) {
		t.Errorf("checks %q, want %q", res.Checks, want)
	}
}

func TestCheckError(t *testing.T) {
	inner := errors.New("inner")
	err := error(&CheckError{Check: CheckChain, Err: fmt.Errorf("wrapped: %w", inner)})
	if err.Error() != "attestation: chain: wrapped: inner" || !errors.Is(err, inner) {
		t.Errorf("CheckError %q does not format or unwrap", err)
	}
	// The user_data hook's error comes back wrapped, for callers that branch.
	ca := defaultCA()
	opts := testOptions(ca)
	opts.UserData = func([]byte) error { return inner }
	if _, err := Verify(validDoc(ca), opts); !errors.Is(err, inner) {
		t.Errorf("Verify returned %v, which does not wrap the hook's error", err)
	}
}

// TestVerifyDoesNotAlias checks that Verify's result does not change when
// the caller reuses the document's buffer.
func TestVerifyDoesNotAlias(t *testing.T) {
	ca := defaultCA()
	doc := validDoc(ca)
	res, err := Verify(doc, testOptions(ca))
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Clone(res.Nonce)
	leaf := bytes.Clone(res.Chain[0].Raw)
	clear(doc)
	if !bytes.Equal(res.Nonce, nonce) || !bytes.Equal(res.Chain[0].Raw, leaf) {
		t.Fatal("the result aliases the input")
	}
}

func TestVerifyMessages(t *testing.T) {
	// A few messages, as the CLI prints them.
	ca := defaultCA()
	for _, tc := range []struct {
		opts func(o *Options)
		want string
	}{
		{func(o *Options) { o.Time = testTime.Add(4 * time.Hour) }, "attestation: validity: the leaf certificate expired at 2025-06-01T15:00:00Z (checked at 2025-06-01T16:00:00Z)"},
		{func(o *Options) { o.PCRs = map[int][]byte{16: make([]byte, 48)} }, "attestation: pcrs: pcr16 is not in the document"},
		{func(o *Options) { o.Time = time.Time{} }, "attestation: options: no time given (Options.Time)"},
	} {
		opts := testOptions(ca)
		tc.opts(&opts)
		if _, err := Verify(validDoc(ca), opts); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}
