package nsmsim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/hf/nitrite"
	"github.com/nitrosign/nitrosign/enclave/nsm"
)

// t0 is the simulated clock's start in the tests.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func seeded(seed byte) *mrand.ChaCha8 { return mrand.NewChaCha8([32]byte{seed}) }

var testImage = MeasureBytes([]byte("enclave binary"), []byte(`{"genesis":1}`))

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Image == (Measurement{}) && !opts.Debug {
		opts.Image = testImage
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func attest(t *testing.T, d nsm.Device, req nsm.AttestRequest) []byte {
	t.Helper()
	doc, err := d.Attest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// verify checks doc with hf/nitrite against roots at time at.
func verify(t *testing.T, doc []byte, roots *x509.CertPool, at time.Time) *nitrite.Result {
	t.Helper()
	res, err := nitrite.Verify(doc, nitrite.VerifyOptions{Roots: roots, CurrentTime: at})
	if err != nil {
		t.Fatalf("nitrite.Verify at %v: %v", at, err)
	}
	if !res.SignatureOK {
		t.Fatal("nitrite: signature not OK")
	}
	return res
}

func TestNitriteVerifies(t *testing.T) {
	s := newServer(t, Options{}) // the real clock and crypto/rand
	req := nsm.AttestRequest{Nonce: []byte("nonce"), UserData: []byte("user data"), PublicKey: []byte("public key")}
	before := time.Now()
	doc := attest(t, s, req)
	res := verify(t, doc, s.Roots(), time.Now())
	d := res.Document
	if !bytes.Equal(d.Nonce, req.Nonce) || !bytes.Equal(d.UserData, req.UserData) || !bytes.Equal(d.PublicKey, req.PublicKey) {
		t.Errorf("fields %q %q %q, want %q %q %q", d.Nonce, d.UserData, d.PublicKey, req.Nonce, req.UserData, req.PublicKey)
	}
	if d.ModuleID != s.ModuleID() || !strings.HasPrefix(d.ModuleID, "i-0") || !strings.Contains(d.ModuleID, "-enc") {
		t.Errorf("module id %q (server says %q)", d.ModuleID, s.ModuleID())
	}
	if d.Digest != "SHA384" {
		t.Errorf("digest %q", d.Digest)
	}
	if ts := time.UnixMilli(int64(d.Timestamp)); ts.Before(before.Truncate(time.Millisecond)) || ts.After(time.Now()) {
		t.Errorf("timestamp %v, not between %v and now", ts, before)
	}
	pcrs := s.PCRs()
	if len(d.PCRs) != 16 {
		t.Errorf("%d PCRs, want 16", len(d.PCRs))
	}
	for i := range pcrs {
		if !bytes.Equal(d.PCRs[uint(i)], pcrs[i][:]) {
			t.Errorf("PCR%d = %x, want %x", i, d.PCRs[uint(i)], pcrs[i])
		}
	}
	if pcrs[0] != testImage.PCR0 || pcrs[1] != testImage.PCR1 || pcrs[2] != testImage.PCR2 || pcrs[3] != [48]byte{} || pcrs[15] != [48]byte{} {
		t.Error("PCRs are not the image's measurement and zeros")
	}
	if len(res.Certificates) != 5 {
		t.Errorf("%d certificates, want a leaf and a bundle of 4", len(res.Certificates))
	}

	// The same, against RootPEM, as a verifier reading nsm-root.pem does.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.RootPEM()) {
		t.Fatal("RootPEM holds no certificate")
	}
	verify(t, doc, pool, time.Now())

	// Not against the AWS root: the documents are not AWS's.
	if _, err := nitrite.Verify(doc, nitrite.VerifyOptions{CurrentTime: time.Now()}); err == nil {
		t.Error("a simulated document verifies against the AWS root")
	}
	// Nor against another simulator's root.
	other := newServer(t, Options{})
	if _, err := nitrite.Verify(doc, nitrite.VerifyOptions{Roots: other.Roots(), CurrentTime: time.Now()}); err == nil {
		t.Error("a document verifies against another simulator's root")
	}
	// A flipped payload bit breaks the signature.
	bad := bytes.Clone(doc)
	i := bytes.Index(bad, []byte("user data"))
	bad[i] ^= 1
	if res, err := nitrite.Verify(bad, nitrite.VerifyOptions{Roots: s.Roots(), CurrentTime: time.Now()}); err == nil || res == nil || res.SignatureOK {
		t.Errorf("a tampered document: %v", err)
	}
}

func TestFieldsRoundTrip(t *testing.T) {
	c := &clock{t: t0}
	s := newServer(t, Options{Rand: seeded(1), Now: c.Now})
	full := bytes.Repeat([]byte{0xab}, nsm.MaxFieldSize)
	tests := []struct {
		name string
		req  nsm.AttestRequest
	}{
		{name: "none", req: nsm.AttestRequest{}},
		{name: "empty not nil", req: nsm.AttestRequest{Nonce: []byte{}, UserData: []byte{}, PublicKey: []byte{}}},
		{name: "nonce only", req: nsm.AttestRequest{Nonce: []byte{0}}},
		{name: "user data only", req: nsm.AttestRequest{UserData: []byte("u")}},
		{name: "public key only", req: nsm.AttestRequest{PublicKey: []byte("-----BEGIN PUBLIC KEY-----")}},
		{name: "all at the limit", req: nsm.AttestRequest{Nonce: full, UserData: full, PublicKey: full}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := attest(t, s, tt.req)
			res := verify(t, doc, s.Roots(), t0)
			_, values := payloadFields(t, doc)
			for _, f := range []struct {
				name      string
				sent, got []byte
			}{
				{"nonce", tt.req.Nonce, res.Document.Nonce},
				{"user_data", tt.req.UserData, res.Document.UserData},
				{"public_key", tt.req.PublicKey, res.Document.PublicKey},
			} {
				if !bytes.Equal(f.got, f.sent) {
					t.Errorf("%s = %x, want %x", f.name, f.got, f.sent)
				}
				// Absent fields are null, as in AWS's documents.
				if raw := values[f.name]; len(f.sent) == 0 && !bytes.Equal(raw, []byte{0xf6}) {
					t.Errorf("absent %s encoded as %x, want null (f6)", f.name, raw)
				}
			}
			if got := time.UnixMilli(int64(res.Document.Timestamp)); !got.Equal(t0) {
				t.Errorf("timestamp %v, want %v", got, t0)
			}
		})
	}
	for _, req := range []nsm.AttestRequest{
		{Nonce: append(full, 1)}, {UserData: append(full, 1)}, {PublicKey: append(full, 1)},
	} {
		if doc, err := s.Attest(context.Background(), req); err == nil || !strings.Contains(err.Error(), "limit 1024") {
			t.Errorf("Attest of an oversized field = %d bytes, %v", len(doc), err)
		}
	}
}

// splitDocument returns the four items of a COSE_Sign1 document, raw.
func splitDocument(t *testing.T, doc []byte) [4]cbor.RawMessage {
	t.Helper()
	if len(doc) == 0 || doc[0] != 0x84 {
		t.Fatalf("document starts with %x, want an untagged array of 4 (84)", doc[:min(len(doc), 4)])
	}
	var items [4]cbor.RawMessage
	d := cbor.NewDecoder(bytes.NewReader(doc[1:]))
	for i := range items {
		if err := d.Decode(&items[i]); err != nil {
			t.Fatal(err)
		}
	}
	if d.NumBytesRead() != len(doc)-1 {
		t.Fatal("trailing bytes after the COSE_Sign1 array")
	}
	return items
}

// payloadFields returns the payload's keys in order and its raw values.
func payloadFields(t *testing.T, doc []byte) ([]string, map[string]cbor.RawMessage) {
	t.Helper()
	var p []byte
	if err := cbor.Unmarshal(splitDocument(t, doc)[2], &p); err != nil {
		t.Fatal(err)
	}
	if p[0] != 0xa9 {
		t.Fatalf("payload starts with %x, want a map of 9 (a9)", p[0])
	}
	var keys []string
	values := map[string]cbor.RawMessage{}
	d := cbor.NewDecoder(bytes.NewReader(p[1:]))
	for range 9 {
		var k string
		var v cbor.RawMessage
		if err := d.Decode(&k); err != nil {
			t.Fatal(err)
		}
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		values[k] = v
	}
	if d.NumBytesRead() != len(p)-1 {
		t.Fatal("trailing bytes after the payload")
	}
	return keys, values
}

// rawItems decodes the items of a raw array or map (n items, head h).
func rawItems(t *testing.T, raw cbor.RawMessage, head byte, n int) []cbor.RawMessage {
	t.Helper()
	if raw[0] != head {
		t.Fatalf("starts with %x, want %x", raw[0], head)
	}
	d := cbor.NewDecoder(bytes.NewReader(raw[1:]))
	out := make([]cbor.RawMessage, n)
	for i := range out {
		if err := d.Decode(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestShapeMatchesAWS compares a document of the simulator with a real one
// of AWS's, encoding by encoding, wherever the content is the same.
func TestShapeMatchesAWS(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "aws_attestation_production.b64"))
	if err != nil {
		t.Fatal(err)
	}
	aws, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	s := newServer(t, Options{Rand: seeded(2), Now: c.Now})
	ones := bytes.Repeat([]byte{1}, 1024) // what the AWS document carries
	sim := attest(t, s, nsm.AttestRequest{Nonce: ones, UserData: ones, PublicKey: ones})

	a, m := splitDocument(t, aws), splitDocument(t, sim)
	if !bytes.Equal(m[0], a[0]) || !bytes.Equal(m[0], []byte{0x44, 0xa1, 0x01, 0x38, 0x22}) {
		t.Errorf("protected header %x, AWS %x", m[0], a[0])
	}
	if !bytes.Equal(m[1], a[1]) || !bytes.Equal(m[1], []byte{0xa0}) {
		t.Errorf("unprotected header %x, AWS %x", m[1], a[1])
	}
	if m[2][0] != a[2][0] || m[2][0] != 0x59 {
		t.Errorf("payload head %x, AWS %x", m[2][0], a[2][0])
	}
	if len(m[3]) != 98 || !bytes.Equal(m[3][:2], a[3][:2]) {
		t.Errorf("signature head %x (%d bytes), AWS %x (%d bytes)", m[3][:2], len(m[3]), a[3][:2], len(a[3]))
	}

	akeys, avals := payloadFields(t, aws)
	mkeys, mvals := payloadFields(t, sim)
	if strings.Join(mkeys, ",") != strings.Join(akeys, ",") {
		t.Errorf("payload keys\n got %v\nwant %v (AWS)", mkeys, akeys)
	}
	for _, k := range []string{"digest", "nonce", "user_data", "public_key"} {
		if !bytes.Equal(mvals[k], avals[k]) {
			t.Errorf("%s encoded as %.16x…, AWS %.16x…", k, mvals[k], avals[k])
		}
	}
	for _, k := range []string{"module_id", "timestamp", "certificate"} {
		if mvals[k][0]>>5 != avals[k][0]>>5 {
			t.Errorf("%s has major type %d, AWS %d", k, mvals[k][0]>>5, avals[k][0]>>5)
		}
	}
	if len(mvals["timestamp"]) != 9 || len(mvals["module_id"]) != len(avals["module_id"]) {
		t.Errorf("timestamp %x, module_id %q (AWS %q)", mvals["timestamp"], mvals["module_id"], avals["module_id"])
	}
	apcr := rawItems(t, avals["pcrs"], 0xb0, 32)
	mpcr := rawItems(t, mvals["pcrs"], 0xb0, 32)
	for i := 0; i < 32; i += 2 {
		if !bytes.Equal(mpcr[i], apcr[i]) {
			t.Errorf("PCR key %d encoded as %x, AWS %x", i/2, mpcr[i], apcr[i])
		}
		if len(mpcr[i+1]) != 50 || !bytes.Equal(mpcr[i+1][:2], apcr[i+1][:2]) {
			t.Errorf("PCR%d value head %x, AWS %x", i/2, mpcr[i+1][:2], apcr[i+1][:2])
		}
	}
	if len(mvals["pcrs"]) != len(avals["pcrs"]) {
		t.Errorf("pcrs are %d bytes, AWS %d", len(mvals["pcrs"]), len(avals["pcrs"]))
	}
	var abundle, mbundle [][]byte
	if err := cbor.Unmarshal(avals["cabundle"], &abundle); err != nil {
		t.Fatal(err)
	}
	if err := cbor.Unmarshal(mvals["cabundle"], &mbundle); err != nil {
		t.Fatal(err)
	}
	if len(mbundle) != len(abundle) {
		t.Errorf("cabundle of %d, AWS %d", len(mbundle), len(abundle))
	}
	if !bytes.Equal(mbundle[0], s.root.Raw) {
		t.Error("cabundle does not start with the root")
	}
}

func TestCertificates(t *testing.T) {
	c := &clock{t: t0}
	s := newServer(t, Options{Rand: seeded(3), Now: c.Now})
	res := verify(t, attest(t, s, nsm.AttestRequest{}), s.Roots(), t0)
	leaf, bundle := res.Certificates[0], res.Certificates[1:]
	now := t0.Truncate(time.Second)
	for i, want := range []struct {
		name       string
		lifetime   time.Duration
		ca         bool
		pathLen    int
		usage      x509.KeyUsage
		selfSigned bool
	}{
		{"root", 30 * 365 * 24 * time.Hour, true, -1, x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign, true},
		{"regional", 20 * 24 * time.Hour, true, 2, x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign, false},
		{"zonal", 6 * 24 * time.Hour, true, 1, x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign, false},
		{"instance", 24 * time.Hour, true, 0, x509.KeyUsageCertSign, false},
		{"leaf", 3 * time.Hour, false, -1, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, false},
	} {
		cert := leaf
		if i < len(bundle) {
			cert = bundle[i]
		}
		t.Run(want.name, func(t *testing.T) {
			pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P384() {
				t.Errorf("public key %T, want P-384", cert.PublicKey)
			}
			if cert.SignatureAlgorithm != x509.ECDSAWithSHA384 {
				t.Errorf("signature algorithm %v", cert.SignatureAlgorithm)
			}
			if !cert.NotBefore.Equal(now) || !cert.NotAfter.Equal(now.Add(want.lifetime)) {
				t.Errorf("valid %v to %v, want %v for %v", cert.NotBefore, cert.NotAfter, now, want.lifetime)
			}
			if !cert.BasicConstraintsValid || cert.IsCA != want.ca {
				t.Errorf("CA %v, want %v", cert.IsCA, want.ca)
			}
			if want.ca {
				gotLen := cert.MaxPathLen
				if gotLen == 0 && !cert.MaxPathLenZero {
					gotLen = -1
				}
				if gotLen != want.pathLen {
					t.Errorf("path length %d, want %d", gotLen, want.pathLen)
				}
			}
			if cert.KeyUsage != want.usage {
				t.Errorf("key usage %b, want %b", cert.KeyUsage, want.usage)
			}
			if self := bytes.Equal(cert.RawIssuer, cert.RawSubject); self != want.selfSigned {
				t.Errorf("self-signed %v", self)
			}
			if !strings.Contains(cert.Subject.String(), "not AWS") {
				t.Errorf("subject %q does not say it is not AWS", cert.Subject)
			}
		})
	}
	block, _ := pem.Decode(s.RootPEM())
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, bundle[0].Raw) {
		t.Error("RootPEM is not the bundle's root")
	}
}

// TestDeterministicKeys: a fixed Rand gives the same keys and names. (The
// certificates' signatures differ: Go's ECDSA signing is always randomized.)
func TestDeterministicKeys(t *testing.T) {
	c := &clock{t: t0}
	a := newServer(t, Options{Rand: seeded(4), Now: c.Now})
	b := newServer(t, Options{Rand: seeded(4), Now: c.Now})
	other := newServer(t, Options{Rand: seeded(5), Now: c.Now})
	if !a.root.PublicKey.(*ecdsa.PublicKey).Equal(b.root.PublicKey) || a.root.SerialNumber.Cmp(b.root.SerialNumber) != 0 || a.ModuleID() != b.ModuleID() {
		t.Error("the same Rand gave different roots")
	}
	if a.root.PublicKey.(*ecdsa.PublicKey).Equal(other.root.PublicKey) || a.ModuleID() == other.ModuleID() {
		t.Error("different Rands gave the same root")
	}
	ra := verify(t, attest(t, a, nsm.AttestRequest{}), a.Roots(), t0)
	rb := verify(t, attest(t, b, nsm.AttestRequest{}), b.Roots(), t0)
	if !ra.Certificates[0].PublicKey.(*ecdsa.PublicKey).Equal(rb.Certificates[0].PublicKey) {
		t.Error("the same Rand gave different leaf keys")
	}
	if _, err := New(Options{Image: testImage, Rand: bytes.NewReader(make([]byte, 10))}); err == nil || !strings.HasPrefix(err.Error(), "nsmsim: ") {
		t.Errorf("New with a short Rand = %v", err)
	}
	// An all-ones reader never gives a scalar below the order.
	if _, err := newKey(bytes.NewReader(bytes.Repeat([]byte{0xff}, 48*64))); err == nil || !strings.Contains(err.Error(), "no valid P-384 scalar") {
		t.Errorf("newKey = %v", err)
	}
}

func TestLeafReissue(t *testing.T) {
	c := &clock{t: t0}
	s := newServer(t, Options{Rand: seeded(6), Now: c.Now})
	leafOf := func(at time.Time) (*x509.Certificate, []byte) {
		t.Helper()
		c.Set(at)
		doc := attest(t, s, nsm.AttestRequest{Nonce: []byte("n")})
		return verify(t, doc, s.Roots(), at).Certificates[0], doc
	}
	first, doc1 := leafOf(t0)
	if again, _ := leafOf(t0.Add(2 * time.Hour)); !again.Equal(first) {
		t.Error("the leaf was re-issued while valid")
	}
	// Less than 5 minutes left: a new leaf, with a new key.
	second, _ := leafOf(t0.Add(3*time.Hour - 4*time.Minute))
	if second.Equal(first) || second.PublicKey.(*ecdsa.PublicKey).Equal(first.PublicKey) {
		t.Error("the leaf was not re-issued with a new key before it expired")
	}
	// The first document is dead once its leaf has expired.
	if _, err := nitrite.Verify(doc1, nitrite.VerifyOptions{Roots: s.Roots(), CurrentTime: t0.Add(3*time.Hour + time.Second)}); err == nil {
		t.Error("a document verifies after its leaf expired")
	}
	// Days later, the intermediates have been re-issued too; the chain
	// still verifies at that time, under the same root.
	later := t0.Add(25 * 24 * time.Hour)
	third, doc3 := leafOf(later)
	if third.Equal(second) {
		t.Error("no new leaf after 25 days")
	}
	res := verify(t, doc3, s.Roots(), later)
	for _, cert := range res.Certificates[1:] {
		if later.Before(cert.NotBefore) || later.After(cert.NotAfter) {
			t.Errorf("%s is not valid at %v", cert.Subject.CommonName, later)
		}
	}
	// Beyond the root's 30 years, the simulator refuses.
	c.Set(t0.Add(31 * 365 * 24 * time.Hour))
	if _, err := s.Attest(context.Background(), nsm.AttestRequest{}); err == nil || !strings.Contains(err.Error(), "root is not valid") {
		t.Errorf("Attest after the root expired = %v", err)
	}
}

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bin, gen := write("bin", "enclave binary"), write("genesis.json", `{"genesis":1}`)
	pcr0, err := MeasureImage(bin, gen)
	if err != nil {
		t.Fatal(err)
	}
	// The definition, spelled out.
	b, g := sha512.Sum384([]byte("enclave binary")), sha512.Sum384([]byte(`{"genesis":1}`))
	if want := sha512.Sum384(append(b[:], g[:]...)); pcr0 != want {
		t.Errorf("PCR0 %x, want SHA-384(SHA-384(binary) || SHA-384(genesis)) = %x", pcr0, want)
	}
	m, err := Measure(bin, gen)
	if err != nil {
		t.Fatal(err)
	}
	if m != testImage || m.PCR0 != pcr0 || m.PCR2 != b || m.PCR1 != sha512.Sum384([]byte("nitrosign nsmsim: kernel and bootstrap v1")) {
		t.Errorf("Measure = %x, want %x", m, testImage)
	}
	for _, tt := range []struct{ name, bin, gen string }{
		{"binary changed", "enclave binarY", `{"genesis":1}`},
		{"genesis changed", "enclave binary", `{"genesis":2}`},
		{"bytes moved between the files", "enclave binary{", `"genesis":1}`},
		{"files swapped", `{"genesis":1}`, "enclave binary"},
	} {
		got, err := MeasureImage(write("bin2", tt.bin), write("gen2", tt.gen))
		if err != nil {
			t.Fatal(err)
		}
		if got == pcr0 {
			t.Errorf("%s: PCR0 unchanged", tt.name)
		}
	}
	if _, err := MeasureImage(filepath.Join(dir, "missing"), gen); err == nil || !strings.HasPrefix(err.Error(), "nsmsim: measure") {
		t.Errorf("MeasureImage of a missing file = %v", err)
	}
	if _, err := MeasureImage(bin, dir); err == nil {
		t.Error("MeasureImage of a directory succeeded")
	}

	// A document carries the measurement, and a changed genesis changes it.
	m2, err := Measure(bin, write("gen3", `{"genesis":3}`))
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := newServer(t, Options{Image: m}), newServer(t, Options{Image: m2})
	d1 := verify(t, attest(t, s1, nsm.AttestRequest{}), s1.Roots(), time.Now()).Document
	d2 := verify(t, attest(t, s2, nsm.AttestRequest{}), s2.Roots(), time.Now()).Document
	if !bytes.Equal(d1.PCRs[0], m.PCR0[:]) || !bytes.Equal(d2.PCRs[0], m2.PCR0[:]) || bytes.Equal(d1.PCRs[0], d2.PCRs[0]) {
		t.Error("documents do not carry their image's PCR0")
	}
	if !bytes.Equal(d1.PCRs[2], d2.PCRs[2]) || !bytes.Equal(d1.PCRs[1], d2.PCRs[1]) {
		t.Error("PCR1 or PCR2 changed with the genesis alone")
	}
}

func TestDebug(t *testing.T) {
	s := newServer(t, Options{Debug: true, Image: testImage})
	d := verify(t, attest(t, s, nsm.AttestRequest{}), s.Roots(), time.Now()).Document
	for i := range uint(16) {
		if !bytes.Equal(d.PCRs[i], make([]byte, 48)) {
			t.Errorf("debug PCR%d = %x, want zeros", i, d.PCRs[i])
		}
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "no image measurement") {
		t.Errorf("New without an image = %v", err)
	}
}

func TestDevice(t *testing.T) {
	s := newServer(t, Options{})
	p := make([]byte, 64)
	if n, err := s.Read(p); n != len(p) || err != nil || bytes.Equal(p, make([]byte, 64)) {
		t.Errorf("Read = %d, %v, %x", n, err, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Attest(ctx, nsm.AttestRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Attest with a cancelled context = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := s.Attest(context.Background(), nsm.AttestRequest{}); !errors.Is(err, nsm.ErrClosed) {
		t.Errorf("Attest after Close = %v", err)
	}
	if _, err := s.Read(p); !errors.Is(err, nsm.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
}

// TestConcurrent attests from many goroutines while the clock runs past
// re-issues, under -race.
func TestConcurrent(t *testing.T) {
	c := &clock{t: t0}
	s := newServer(t, Options{Rand: seeded(7), Now: c.Now})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				if i == 0 {
					c.Set(t0.Add(time.Duration(j) * 4 * time.Hour))
				}
				if _, err := s.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte{byte(i), byte(j)}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
