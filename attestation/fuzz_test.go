package attestation

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/hf/nitrite"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz and the fuzz CA's root")

const updateHow = "go test ./attestation -run TestSeedCorpus -update-corpus"

// fuzzRootPath holds the root of the test CA that signed the committed
// test-CA seeds, so that FuzzVerify can take them all the way.
var fuzzRootPath = filepath.Join("testdata", "fuzzca_root.pem")

var fuzzTargets = []string{"FuzzParse", "FuzzVerify"}

// Prefixes of the seed files: the real documents, and documents from a
// test CA (made anew, with new keys, by each update).
const (
	realPrefix   = "seed_real_"
	testCAPrefix = "seed_testca_"
)

// realSeeds returns the real AWS documents, by file name.
func realSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, rd := range loadRealDocs(t) {
		seeds[strings.TrimSuffix(rd.file, ".b64")] = rd.doc
	}
	return seeds
}

// testCASeedNames are the names of the seeds of testCASeeds.
var testCASeedNames = []string{"valid", "valid null fields", "valid no fields", "valid debug",
	"bad p521 leaf", "bad duplicate key", "bad unknown field", "bad indefinite map", "bad tagged"}

// testCASeeds returns documents from a new AWS-like test CA, valid ones
// and near misses, and the CA.
func testCASeeds(t testing.TB) (map[string][]byte, *testCA) {
	s := awsLikeSpec()
	ca := s.mustIssue(t)
	valid := ca.document(ca.payload())
	allZero := make([]byte, 48)
	// A P-521 leaf under the same CAs, with a 96-byte signature.
	s.at(-1).key = mustKey(elliptic.P521())
	p521 := s.mustIssue(t)
	p521doc := p521.document(p521.payload())
	p521doc = cbCOSE(protectedES384, p521.payload().encode(), mustParseBytes(t, p521doc, 132).sig[:96])
	return map[string][]byte{
		"valid":              valid,
		"valid null fields":  ca.document(nullOptional(cbNull)(ca.payload())),
		"valid no fields":    ca.document(ca.payload().without(fieldPublicKey).without(fieldUserData).without(fieldNonce)),
		"valid debug":        ca.document(ca.payload().with(fieldPCRs, pcrMap(allZero, allZero, allZero))),
		"bad p521 leaf":      p521doc,
		"bad duplicate key":  ca.document(append(ca.payload().without(fieldNonce), field{fieldDigest, cbText("SHA384")})),
		"bad unknown field":  ca.document(ca.payload().without(fieldNonce).with("extra", cbNull)),
		"bad indefinite map": signed(ca, append(append([]byte{0xbf}, ca.payload().encode()[1:]...), 0xff)),
		"bad tagged":         append([]byte{0xd2}, valid...),
	}, ca
}

// TestSeedCorpus checks that testdata/fuzz holds the seeds of FuzzParse
// and FuzzVerify: the real AWS documents, byte for byte, and documents from
// the test CA whose root is testdata/fuzzca_root.pem, of which the valid
// ones must verify. With -update-corpus, it writes them (the test-CA ones
// from a new CA).
func TestSeedCorpus(t *testing.T) {
	real := realSeeds(t)
	for _, target := range fuzzTargets {
		fuzzseed.Sync(t, target, realPrefix, '_', real, *updateCorpus, updateHow)
	}
	if *updateCorpus {
		seeds, ca := testCASeeds(t)
		if len(seeds) != len(testCASeedNames) {
			t.Fatal("testCASeedNames does not name every seed")
		}
		for _, target := range fuzzTargets {
			fuzzseed.Sync(t, target, testCAPrefix, '_', seeds, true, updateHow)
		}
		root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.root().Raw})
		if err := os.WriteFile(fuzzRootPath, root, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := fuzzRoot(t)
	for _, target := range fuzzTargets {
		for _, name := range testCASeedNames {
			path := fuzzseed.Path(target, fuzzseed.FileName(testCAPrefix+name, '_'))
			doc, err := readSeed(path)
			if err != nil {
				t.Errorf("%v; run %s", err, updateHow)
				continue
			}
			d, err := Parse(doc)
			if err != nil {
				if strings.HasPrefix(name, "valid") {
					t.Errorf("%s: %v", path, err)
				}
				continue
			}
			opts := Options{Time: d.Time(), Roots: []*x509.Certificate{root}, AllowDebug: true}
			if _, err := Verify(doc, opts); (err == nil) != strings.HasPrefix(name, "valid") {
				t.Errorf("%s: %v; run %s", path, err, updateHow)
			}
		}
	}
}

// readSeed reads a corpus file holding one []byte.
func readSeed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		return nil, errors.New(path + ": not a corpus file of one []byte")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	return []byte(s), err
}

// fuzzRoot reads the root of the test CA of the committed seeds.
func fuzzRoot(t testing.TB) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(fuzzRootPath)
	if err != nil {
		t.Fatalf("%v; run %s", err, updateHow)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block; run %s", fuzzRootPath, updateHow)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// FuzzParse: Parse never panics; it returns a document or a *CheckError
// for size, cose or payload; a document it returns keeps every limit, is
// the one encoding of its envelope, and reads as fxamacker/cbor reads it.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(doc)
		if (d == nil) == (err == nil) {
			t.Fatalf("document %v with error %v", d, err)
		}
		if err != nil {
			var ce *CheckError
			if !errors.As(err, &ce) || (ce.Check != CheckSize && ce.Check != CheckCOSE && ce.Check != CheckPayload) {
				t.Fatalf("error %v is not a parse CheckError", err)
			}
			return
		}
		if len(doc) > MaxDocumentSize || !bytes.Equal(d.Protected, protectedES384) || len(d.Signature) != signatureSize {
			t.Fatal("envelope outside the limits")
		}
		if !bytes.Equal(cbCOSE(d.Protected, d.Payload, d.Signature), doc) {
			t.Fatal("accepted an envelope that is not in its one encoding")
		}
		if d.ModuleID == "" || !utf8.ValidString(d.ModuleID) || d.Digest != "SHA384" || d.Timestamp == 0 || d.Timestamp>>63 != 0 {
			t.Fatalf("fields outside the limits: %q %q %d", d.ModuleID, d.Digest, d.Timestamp)
		}
		if len(d.PCRs) < 1 || len(d.PCRs) > 32 || len(d.Certificate) < 1 || len(d.Certificate) > 1024 ||
			len(d.CABundle) < 1 || len(d.CABundle) > maxCABundle || len(d.PublicKey) > 1024 || len(d.UserData) > 1024 || len(d.Nonce) > 1024 {
			t.Fatal("fields outside the limits")
		}
		for i, v := range d.PCRs {
			if i < 0 || i > 31 || len(v) != 32 && len(v) != 48 && len(v) != 64 {
				t.Fatalf("pcr%d of %d bytes", i, len(v))
			}
		}
		for _, c := range d.CABundle {
			if len(c) < 1 || len(c) > 1024 {
				t.Fatal("cabundle entry outside the limits")
			}
		}
		// fxamacker/cbor, as nitrite uses it, reads the same fields.
		var nd nitrite.Document
		if err := cbor.Unmarshal(d.Payload, &nd); err != nil {
			t.Fatalf("fxamacker/cbor refuses a payload Parse accepts: %v", err)
		}
		if nd.ModuleID != d.ModuleID || nd.Timestamp != d.Timestamp || len(nd.PCRs) != len(d.PCRs) ||
			!bytes.Equal(nd.Certificate, d.Certificate) || len(nd.CABundle) != len(d.CABundle) ||
			!bytes.Equal(nd.PublicKey, d.PublicKey) || !bytes.Equal(nd.UserData, d.UserData) || !bytes.Equal(nd.Nonce, d.Nonce) {
			t.Fatal("fxamacker/cbor reads the payload differently")
		}
		for i, v := range d.PCRs {
			if !bytes.Equal(nd.PCRs[uint(i)], v) {
				t.Fatalf("fxamacker/cbor reads pcr%d differently", i)
			}
		}
	})
}

// FuzzVerify: Verify never panics, at the document's own time (so that
// the real documents and the test-CA seeds are verified all the way),
// under the AWS root and the fuzz CA's; it returns a result or a one-line
// *CheckError; and what it accepts, nitrite accepts.
func FuzzVerify(f *testing.F) {
	roots := []*x509.Certificate{AWSRootG1(), fuzzRoot(f)}
	f.Fuzz(func(t *testing.T, doc []byte) {
		opts := Options{Time: testTime, Roots: roots, AllowDebug: true, UserData: func([]byte) error { return nil }}
		if d, err := Parse(doc); err == nil {
			opts.Time = d.Time()
		}
		res, err := Verify(doc, opts)
		if (res == nil) == (err == nil) {
			t.Fatalf("result %v with error %v", res, err)
		}
		if err != nil {
			var ce *CheckError
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "attestation: "+ce.Check+": ") || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %q is not a one-line *CheckError", err)
			}
			return
		}
		if len(res.Checks) < 10 || res.Checks[len(res.Checks)-1] != CheckUserData {
			t.Fatalf("accepted after checks %q", res.Checks)
		}
		crossCheckNitrite(t, doc, opts)
	})
}
