package attestation

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/hf/nitrite"
)

// nitriteVerify runs github.com/hf/nitrite's Verify with the roots and time
// of opts, and turns a panic into an error.
func nitriteVerify(doc []byte, opts Options) (res *nitrite.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	var roots *x509.CertPool // nil: nitrite's copy of the AWS root G1
	if opts.Roots != nil {
		roots = x509.NewCertPool()
		for _, root := range opts.Roots {
			roots.AddCert(root)
		}
	}
	return nitrite.Verify(doc, nitrite.VerifyOptions{Roots: roots, CurrentTime: opts.Time})
}

// crossCheckNitrite fails the test unless nitrite accepts doc, which
// Verify accepted with opts, and reads the same fields from it.
func crossCheckNitrite(t testing.TB, doc []byte, opts Options) {
	t.Helper()
	res, err := nitriteVerify(doc, opts)
	if err != nil || !res.SignatureOK {
		t.Fatalf("Verify accepts the document, nitrite does not: %v", err)
	}
	d, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	nd := res.Document
	if nd.ModuleID != d.ModuleID || nd.Timestamp != d.Timestamp || len(nd.PCRs) != len(d.PCRs) ||
		string(nd.Nonce) != string(d.Nonce) || string(nd.UserData) != string(d.UserData) ||
		string(nd.PublicKey) != string(d.PublicKey) || len(res.Certificates) != len(d.CABundle)+1 {
		t.Fatalf("nitrite reads the document differently")
	}
}

func TestNitriteRealDocuments(t *testing.T) {
	for _, rd := range loadRealDocs(t) {
		opts := realOptions(rd)
		if _, err := Verify(rd.doc, opts); err != nil {
			t.Fatalf("%s: %v", rd.file, err)
		}
		crossCheckNitrite(t, rd.doc, opts)
		// nitrite too refuses them outside their window.
		opts.Time = rd.notAfter.Add(1e9)
		if _, err := nitriteVerify(rd.doc, opts); err == nil {
			t.Errorf("%s: nitrite accepts an expired document", rd.file)
		}
	}
}

// TestP521Leaf shows why the leaf key is checked before anything else uses
// it: a document whose chain is correct but whose leaf key is P-521 makes
// nitrite panic, and Verify refuses it with an error.
func TestP521Leaf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		honest bool
		check  string
	}{
		// Signed with the P-521 key: r || s is 132 bytes, refused as a
		// COSE_Sign1 that is not ES384.
		{"honest signature", true, CheckCOSE},
		// The same document with a 96-byte signature is well formed, and
		// refused by the leaf key check, before the signature check.
		{"96-byte signature", false, CheckLeaf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := p521Document(tc.honest)(t)
			opts := testOptions(b.ca)
			res, err := Verify(b.doc, opts)
			if res != nil {
				t.Fatal("a result with an error")
			}
			wantCheck(t, err, tc.check)
			if tc.check == CheckLeaf && !strings.Contains(err.Error(), "P-521") {
				t.Errorf("%v does not name the curve", err)
			}
			t.Log(err)
			_, err = nitriteVerify(b.doc, opts)
			if err == nil || !strings.Contains(err.Error(), "panic: unknown ECDSA curve name P-521") {
				t.Fatalf("nitrite did not panic on the P-521 leaf (it returned %v): this test no longer shows the hazard", err)
			}
			t.Logf("nitrite: %v", err)
		})
	}
}
