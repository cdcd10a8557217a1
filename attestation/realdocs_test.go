package attestation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// nitroDir holds the real AWS documents, relative to the package directory:
// the copy in the repository's testdata/aws (see its README for provenance).
const nitroDir = "../testdata/aws/nitro"

// realDoc is a real AWS attestation document and what its README says of
// it.
type realDoc struct {
	file      string
	moduleID  string
	timestamp time.Time // the document's timestamp, inside the window
	notBefore time.Time // the window in which its certificates are all valid
	notAfter  time.Time
	debug     bool
	doc       []byte // CBOR, decoded from the base64 file
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// realDocs are the documents of testdata/aws/nitro/README.md.
var realDocs = []realDoc{
	{
		file:      "attestation_production.b64",
		moduleID:  "i-0a22e5c5f24d22174-enc0191cceb4289903f",
		timestamp: utc("2024-09-07T14:37:39.545Z"),
		notBefore: utc("2024-09-07T14:37:36Z"),
		notAfter:  utc("2024-09-07T17:37:39Z"),
	},
	{
		file:      "attestation_debug.b64",
		moduleID:  "i-0a22e5c5f24d22174-enc0191ccebaf8feaba",
		timestamp: utc("2024-09-07T14:38:06.508Z"),
		notBefore: utc("2024-09-07T14:38:03Z"),
		notAfter:  utc("2024-09-07T17:38:06Z"),
		debug:     true,
	},
	{
		file:      "attestation_production_2024-05.b64",
		moduleID:  "i-0eec57d9c38705a57-enc018f25eda1b897b7",
		timestamp: utc("2024-05-07T17:43:06.613Z"),
		notBefore: utc("2024-05-07T17:43:03Z"),
		notAfter:  utc("2024-05-07T20:43:06Z"),
	},
}

// loadRealDocs reads the real documents, and fails the test (never skips)
// if they are not there.
func loadRealDocs(t testing.TB) []realDoc {
	t.Helper()
	if _, err := os.Stat(nitroDir); err != nil {
		t.Fatalf("the real AWS documents are missing: %v\n"+
			"they live in testdata/aws/nitro (%s from the attestation package)", err, nitroDir)
	}
	docs := slices.Clone(realDocs)
	for i := range docs {
		b, err := os.ReadFile(filepath.Join(nitroDir, docs[i].file))
		if err != nil {
			t.Fatal(err)
		}
		if docs[i].doc, err = Decode(b); err != nil {
			t.Fatalf("%s: %v", docs[i].file, err)
		}
	}
	return docs
}

// realOptions returns the options that rd passes: its own time, the
// default root, debug mode allowed for the debug document.
func realOptions(rd realDoc) Options {
	return Options{Time: rd.timestamp, AllowDebug: rd.debug}
}

// wantCheck fails the test unless err is a *CheckError for check, on one
// line with the package prefix.
func wantCheck(t testing.TB, err error, check string) {
	t.Helper()
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want a *CheckError for %q", err, err, check)
	}
	if ce.Check != check {
		t.Fatalf("failed check %q (%v), want %q", ce.Check, err, check)
	}
	msg := err.Error()
	if prefix := "attestation: " + check + ": "; len(msg) <= len(prefix) || msg[:len(prefix)] != prefix || bytes.ContainsAny([]byte(msg), "\n\r") {
		t.Fatalf("message %q is not one line starting %q", msg, prefix)
	}
}

func TestRootFingerprint(t *testing.T) {
	root := AWSRootG1()
	sum := sha256.Sum256(root.Raw)
	const published = "641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"
	if got := hex.EncodeToString(sum[:]); got != "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b" || AWSRootG1Fingerprint != published {
		t.Fatalf("root G1 fingerprint %s, constant %s, want %s", got, AWSRootG1Fingerprint, published)
	}
	if root.Subject.CommonName != "aws.nitro-enclaves" || !root.IsCA {
		t.Errorf("root G1 is %v, CA %v", root.Subject, root.IsCA)
	}
	// The embedded copy is the shared file.
	if _, err := os.Stat(nitroDir); err != nil {
		t.Fatalf("the shared test data is missing: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(nitroDir, "aws_nitro_enclaves_root_g1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || !bytes.Equal(block.Bytes, root.Raw) {
		t.Fatal("the embedded root is not aws_nitro_enclaves_root_g1.pem")
	}
	// AWSRootG1 hands out copies.
	AWSRootG1().Raw[0] ^= 0xff
	if !bytes.Equal(AWSRootG1().Raw, root.Raw) || !bytes.Equal(awsRootG1.Raw, root.Raw) {
		t.Fatal("changing a copy of the root changed the pinned root")
	}
	// A wrong fingerprint is refused at initialisation.
	defer func() {
		if recover() == nil {
			t.Fatal("mustPinnedDER accepted a wrong fingerprint")
		}
	}()
	mustPinnedDER(awsRootG1PEM, "00"+AWSRootG1Fingerprint[2:])
}

func TestRealDocuments(t *testing.T) {
	for _, rd := range loadRealDocs(t) {
		t.Run(rd.file, func(t *testing.T) {
			res, err := Verify(rd.doc, realOptions(rd))
			if err != nil {
				t.Fatalf("at its own time: %v", err)
			}
			if res.ModuleID != rd.moduleID || !res.Time.Equal(rd.timestamp) || res.Debug != rd.debug {
				t.Errorf("module %q time %s debug %v, want %q %s %v", res.ModuleID, res.Time, res.Debug, rd.moduleID, rd.timestamp, rd.debug)
			}
			if len(res.Chain) != 5 || !bytes.Equal(res.Chain[4].Raw, awsRootG1.Raw) || res.Chain[0].IsCA {
				t.Errorf("chain of %d certificates, not leaf to root G1", len(res.Chain))
			}
			want := []string{CheckOptions, CheckSize, CheckCOSE, CheckPayload, CheckLeaf, CheckSignature,
				CheckCertificates, CheckRoot, CheckValidity, CheckChain}
			if !rd.debug {
				want = append(want, CheckDebug)
			}
			if !slices.Equal(res.Checks, want) {
				t.Errorf("checks %q, want %q", res.Checks, want)
			}

			// Inside the window, at both ends; outside it, refused.
			for _, at := range []time.Time{rd.notBefore, rd.notAfter} {
				opts := realOptions(rd)
				opts.Time = at
				if _, err := Verify(rd.doc, opts); err != nil {
					t.Errorf("at %s: %v", at, err)
				}
			}
			for _, at := range []time.Time{rd.notBefore.Add(-time.Second), rd.notAfter.Add(time.Second), time.Now(), rd.timestamp.AddDate(-1, 0, 0)} {
				opts := realOptions(rd)
				opts.Time = at
				_, err := Verify(rd.doc, opts)
				wantCheck(t, err, CheckValidity)
			}

			// Not without a time.
			_, err = Verify(rd.doc, Options{AllowDebug: rd.debug})
			wantCheck(t, err, CheckOptions)

			// Not under another root.
			opts := realOptions(rd)
			opts.Roots = []*x509.Certificate{defaultCA().root()}
			_, err = Verify(rd.doc, opts)
			wantCheck(t, err, CheckRoot)

			d, err := Parse(rd.doc)
			if err != nil {
				t.Fatal(err)
			}

			// Its own PCRs pass; any other value of one of them does not.
			opts = realOptions(rd)
			opts.PCRs = map[int][]byte{0: d.PCRs[0], 1: d.PCRs[1], 2: d.PCRs[2], 4: d.PCRs[4]}
			if res, err := Verify(rd.doc, opts); err != nil || !slices.Contains(res.Checks, CheckPCRs) {
				t.Errorf("with its own PCRs: %v", err)
			}
			for _, index := range []int{0, 4, 15} {
				opts := realOptions(rd)
				opts.PCRs = map[int][]byte{index: bytes.Clone(d.PCRs[index])}
				opts.PCRs[index][47] ^= 1
				_, err := Verify(rd.doc, opts)
				wantCheck(t, err, CheckPCRs)
			}
			opts.PCRs = map[int][]byte{16: make([]byte, 48)}
			_, err = Verify(rd.doc, opts)
			wantCheck(t, err, CheckPCRs)

			// Its own nonce passes; another does not.
			opts = realOptions(rd)
			opts.Nonce = d.Nonce
			if len(d.Nonce) > 0 {
				if _, err := Verify(rd.doc, opts); err != nil {
					t.Errorf("with its own nonce: %v", err)
				}
				opts.Nonce = bytes.Clone(d.Nonce)
				opts.Nonce[0] ^= 1
			} else {
				opts.Nonce = []byte("a nonce")
			}
			_, err = Verify(rd.doc, opts)
			wantCheck(t, err, CheckNonce)

			// The user_data hook sees user_data, and refuses for it.
			opts = realOptions(rd)
			var seen []byte
			opts.UserData = func(b []byte) error { seen = b; return nil }
			if _, err := Verify(rd.doc, opts); err != nil || !bytes.Equal(seen, d.UserData) {
				t.Errorf("user_data hook: %v, saw %d bytes, want %d", err, len(seen), len(d.UserData))
			}
			opts.UserData = func([]byte) error { return errors.New("not bound to the expected keys") }
			_, err = Verify(rd.doc, opts)
			wantCheck(t, err, CheckUserData)

			// Debug mode: refused unless allowed.
			opts = realOptions(rd)
			opts.AllowDebug = false
			res, err = Verify(rd.doc, opts)
			if rd.debug {
				wantCheck(t, err, CheckDebug)
			} else if err != nil || res.Debug {
				t.Errorf("without AllowDebug: %v", err)
			}
		})
	}
}

// TestRealDocumentFields checks Parse on the real documents against what
// is known of them, and the test CBOR encoder against AWS's bytes.
func TestRealDocumentFields(t *testing.T) {
	for _, rd := range loadRealDocs(t) {
		d, err := Parse(rd.doc)
		if err != nil {
			t.Fatalf("%s: %v", rd.file, err)
		}
		if d.ModuleID != rd.moduleID || d.Digest != "SHA384" || !d.Time().Equal(rd.timestamp) ||
			len(d.PCRs) != 16 || len(d.CABundle) != 4 || len(d.Signature) != 96 {
			t.Errorf("%s: parsed %q %q %s, %d PCRs, %d CAs", rd.file, d.ModuleID, d.Digest, d.Time(), len(d.PCRs), len(d.CABundle))
		}
		if !bytes.Equal(d.CABundle[0], awsRootG1.Raw) {
			t.Errorf("%s: cabundle[0] is not the root G1", rd.file)
		}
		if got := debugMode(d.PCRs); got != rd.debug {
			t.Errorf("%s: debug mode %v, want %v", rd.file, got, rd.debug)
		}
		// Encoded again by the tests' encoder, in AWS's order, the fields
		// give AWS's payload byte for byte; so do the envelope's.
		var kv [][]byte
		for i := range 16 {
			kv = append(kv, cbUint(uint64(i)), cbBytes(d.PCRs[i]))
		}
		var bundle [][]byte
		for _, c := range d.CABundle {
			bundle = append(bundle, cbBytes(c))
		}
		optional := func(b []byte) []byte {
			if b == nil {
				return cbNull
			}
			return cbBytes(b)
		}
		payload := fields{
			{fieldModuleID, cbText(d.ModuleID)},
			{fieldDigest, cbText(d.Digest)},
			{fieldTimestamp, cbUint(d.Timestamp)},
			{fieldPCRs, cbMap(kv...)},
			{fieldCertificate, cbBytes(d.Certificate)},
			{fieldCABundle, cbArray(bundle...)},
			{fieldPublicKey, optional(d.PublicKey)},
			{fieldUserData, optional(d.UserData)},
			{fieldNonce, optional(d.Nonce)},
		}.encode()
		if !bytes.Equal(payload, d.Payload) {
			t.Errorf("%s: the payload encoded again differs", rd.file)
		}
		if !bytes.Equal(cbCOSE(d.Protected, d.Payload, d.Signature), rd.doc) {
			t.Errorf("%s: the document encoded again differs", rd.file)
		}
	}
}
