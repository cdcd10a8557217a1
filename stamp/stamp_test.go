package stamp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

var testBody = []byte(`{"request_id":"r-1","timestamp_ms":1700000000000,"key":"hot","eth_transaction":{"unsigned":"0x02c0"}}`)

// fixed keys, so that committed corpus entries stay valid.
func testEd25519(t testing.TB) Signer {
	t.Helper()
	seed := sha256.Sum256([]byte("nitrosign stamp test ed25519 key"))
	s, err := NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testP256Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d := sha256.Sum256([]byte("nitrosign stamp test p256 key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testP256(t testing.TB) Signer {
	t.Helper()
	s, err := NewP256Signer(testP256Key(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(js string) string { return base64.RawURLEncoding.EncodeToString([]byte(js)) }

func mk(scheme, key, sig string) string {
	js, err := json.Marshal(wire{Scheme: Scheme(scheme), PublicKey: key, Signature: sig})
	if err != nil {
		panic(err)
	}
	return encode(string(js))
}

// decodeStamp splits a valid header into its fields.
func decodeStamp(t *testing.T, h string) wire {
	t.Helper()
	js, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var w wire
	if err := json.Unmarshal(js, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// writeCorpus commits a table case as a FuzzVerify seed, with -update.
func writeCorpus(t *testing.T, name, header string, body []byte) {
	t.Helper()
	if *update && len(header) <= 2*MaxHeaderSize {
		fuzzseed.Write(t, "FuzzVerify", "table-"+name, header, body)
	}
}

func TestRoundTrip(t *testing.T) {
	genEd, err := GenerateSigner(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	genP, err := GenerateSigner(P256)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]Signer{
		"ed25519 fixed":     testEd25519(t),
		"p256 fixed":        testP256(t),
		"ed25519 generated": genEd,
		"p256 generated":    genP,
	}
	bodies := map[string][]byte{"request": testBody, "empty": nil, "binary": {0, 0xff, '\n'}}
	for sname, s := range signers {
		for bname, body := range bodies {
			t.Run(sname+"/"+bname, func(t *testing.T) {
				h, err := Create(s, body)
				if err != nil {
					t.Fatal(err)
				}
				if len(h) > MaxHeaderSize {
					t.Fatalf("header is %d bytes", len(h))
				}
				got, err := Verify(h, body)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !got.Equal(s.PublicKey()) {
					t.Errorf("Verify returned %v, want %v", got, s.PublicKey())
				}
				if sname == "ed25519 fixed" || sname == "p256 fixed" {
					writeCorpus(t, "ok-"+sname+"-"+bname, h, body)
				}
				// Upper-case hex is accepted and names the same key.
				w := decodeStamp(t, h)
				up := mk(string(w.Scheme), strings.ToUpper(w.PublicKey), strings.ToUpper(w.Signature))
				if got2, err := Verify(up, body); err != nil || !got2.Equal(got) {
					t.Errorf("upper-case hex: %v, %v", got2, err)
				}
				// A tampered body fails.
				tampered := append(bytes.Clone(body), ' ')
				if _, err := Verify(h, tampered); !errors.Is(err, ErrBadSignature) {
					t.Errorf("tampered body: error = %v, want ErrBadSignature", err)
				}
				if len(body) > 0 {
					flipped := bytes.Clone(body)
					flipped[0] ^= 1
					if _, err := Verify(h, flipped); !errors.Is(err, ErrBadSignature) {
						t.Errorf("flipped body: error = %v, want ErrBadSignature", err)
					}
				}
			})
		}
	}
}

// TestRFC8032 checks the Ed25519 path against RFC 8032 §7.1 test 1.
func TestRFC8032(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	const pub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	const sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	s, err := NewEd25519Signer(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.PublicKey().String(); got != "ed25519:"+pub {
		t.Errorf("public key %s", got)
	}
	h, err := Create(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := decodeStamp(t, h); w.Signature != sig {
		t.Errorf("signature %s, want %s", w.Signature, sig)
	}
	if _, err := Verify(mk("ed25519", pub, sig), []byte{}); err != nil {
		t.Errorf("RFC 8032 vector: %v", err)
	}
}

func compress(t *testing.T, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	u, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0x02 | u[64]&1}, u[1:33]...)
}

// TestP256CrossCheck verifies stamps made directly with crypto/ecdsa from an
// independently generated key, and checks this package's signatures with
// crypto/ecdsa.
func TestP256CrossCheck(t *testing.T) {
	for i := range 20 {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		digest := sha256.Sum256(body)
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		comp := compress(t, &key.PublicKey)
		h := mk("p256", hex.EncodeToString(comp), hex.EncodeToString(sig))
		got, err := Verify(h, body)
		if err != nil {
			t.Fatalf("Verify of a crypto/ecdsa stamp: %v", err)
		}
		if !bytes.Equal(got.Key, comp) {
			t.Fatalf("key %x, want %x", got.Key, comp)
		}
		_, parsed, err := parseKey(P256, hex.EncodeToString(comp))
		if err != nil || !parsed.Equal(&key.PublicKey) {
			t.Fatalf("decompressed key differs from the original: %v", err)
		}

		s, err := NewP256Signer(key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.PublicKey().Key, comp) {
			t.Fatalf("signer key %x, want %x", s.PublicKey().Key, comp)
		}
		mine, err := s.SignBody(body)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], mine) {
			t.Fatal("crypto/ecdsa does not verify this package's signature")
		}
	}
}

// TestP256HighS documents that the malleated (r, n-s) form is accepted.
func TestP256HighS(t *testing.T) {
	s := testP256(t)
	h, err := Create(s, testBody)
	if err != nil {
		t.Fatal(err)
	}
	w := decodeStamp(t, h)
	der, _ := hex.DecodeString(w.Signature)
	r, sv := parseDER(t, der)
	n := elliptic.P256().Params().N
	other := derSig(r, new(big.Int).Sub(n, sv))
	if _, err := Verify(mk("p256", w.PublicKey, hex.EncodeToString(other)), testBody); err != nil {
		t.Errorf("malleated signature refused: %v", err)
	}
}

func parseDER(t *testing.T, der []byte) (r, s *big.Int) {
	t.Helper()
	var v struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) != 0 {
		t.Fatalf("parsing DER: %v", err)
	}
	return v.R, v.S
}

// derSig encodes r and s as a DER ECDSA signature.
func derSig(r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		panic(err)
	}
	return b
}

func TestVerifyRefuses(t *testing.T) {
	ed := testEd25519(t)
	p := testP256(t)
	edH, _ := Create(ed, testBody)
	// A P-256 signature short enough that the cases below which add a byte
	// still pass the length check and reach DER parsing.
	var pH string
	for pH == "" || len(decodeStamp(t, pH).Signature) > 2*70 {
		pH, _ = Create(p, testBody)
	}
	edW, pW := decodeStamp(t, edH), decodeStamp(t, pH)
	pDER, _ := hex.DecodeString(pW.Signature)
	r, s := parseDER(t, pDER)
	n := elliptic.P256().Params().N

	otherEd, _ := GenerateSigner(Ed25519)
	otherP, _ := GenerateSigner(P256)
	otherEdKey := hex.EncodeToString(otherEd.PublicKey().Key)
	otherPKey := hex.EncodeToString(otherP.PublicKey().Key)

	// An x coordinate with no point on P-256, and an uncompressed key.
	var offCurve string
	for x := int64(1); ; x++ {
		c := append([]byte{0x02}, new(big.Int).SetInt64(x).FillBytes(make([]byte, 32))...)
		if px, _ := elliptic.UnmarshalCompressed(elliptic.P256(), c); px == nil {
			offCurve = hex.EncodeToString(c)
			break
		}
	}
	uncompressed, _ := testP256Key(t).PublicKey.Bytes()
	pFieldP := elliptic.P256().Params().P

	// A header whose length leaves trailing bits, with those bits set.
	trailing := func(h string) string {
		for len(h)%4 == 0 {
			panic("no trailing bits")
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, h[len(h)-1])
		return h[:len(h)-1] + string(alphabet[last^1])
	}
	// Pad the JSON with spaces (valid JSON) until its encoding has trailing bits.
	spaced := func(scheme, key, sig string, rem int) string {
		js := fmt.Sprintf(`{"scheme":%q,"public_key":%q,"signature":%q}`, scheme, key, sig)
		for len(js)%3 != rem {
			js += " "
		}
		return encode(js)
	}
	validEdJSON := fmt.Sprintf(`{"scheme":"ed25519","public_key":%q,"signature":%q}`, edW.PublicKey, edW.Signature)

	tests := []struct {
		name   string
		header string
		body   []byte // testBody when nil
		want   error
	}{
		{name: "empty header", header: "", want: ErrMissing},
		{name: "too long", header: strings.Repeat("A", MaxHeaderSize+1), want: ErrMalformed},
		{name: "not base64", header: "!!!!", want: ErrMalformed},
		{name: "standard alphabet", header: "+" + edH[1:], want: ErrMalformed},
		{name: "padded", header: base64.URLEncoding.EncodeToString([]byte(validEdJSON + " ")), want: ErrMalformed},
		{name: "trailing bits one char", header: trailing(spaced("ed25519", edW.PublicKey, edW.Signature, 1)), want: ErrMalformed},
		{name: "trailing bits two chars", header: trailing(spaced("ed25519", edW.PublicKey, edW.Signature, 2)), want: ErrMalformed},
		{name: "newline inside", header: edH[:10] + "\n" + edH[10:], want: ErrMalformed},
		{name: "carriage return at end", header: edH + "\r", want: ErrMalformed},
		{name: "space at end", header: edH + " ", want: ErrMalformed},
		{name: "json array", header: encode(`[]`), want: ErrMalformed},
		{name: "json empty object", header: encode(`{}`), want: ErrMalformed},
		{name: "json not json", header: encode(`scheme=ed25519`), want: ErrMalformed},
		{name: "json duplicate key", header: encode(`{"scheme":"p256","scheme":"ed25519","public_key":"` + edW.PublicKey + `","signature":"` + edW.Signature + `"}`), want: ErrMalformed},
		{name: "json duplicate key other case", header: encode(`{"scheme":"ed25519","Scheme":"ed25519","public_key":"` + edW.PublicKey + `","signature":"` + edW.Signature + `"}`), want: ErrMalformed},
		{name: "json unknown field", header: encode(strings.TrimSuffix(validEdJSON, "}") + `,"x":1}`), want: ErrMalformed},
		{name: "json trailing data", header: encode(validEdJSON + `{}`), want: ErrMalformed},
		{name: "json invalid utf8", header: encode(strings.TrimSuffix(validEdJSON, "}") + ",\"\xff\":1}"), want: ErrMalformed},
		{name: "json null scheme", header: encode(`{"scheme":null,"public_key":"` + edW.PublicKey + `","signature":"` + edW.Signature + `"}`), want: ErrMalformed},
		{name: "json number key", header: encode(`{"scheme":"ed25519","public_key":1,"signature":"` + edW.Signature + `"}`), want: ErrMalformed},
		{name: "missing scheme", header: encode(`{"public_key":"` + edW.PublicKey + `","signature":"` + edW.Signature + `"}`), want: ErrMalformed},
		{name: "missing public_key", header: encode(`{"scheme":"ed25519","signature":"` + edW.Signature + `"}`), want: ErrMalformed},
		{name: "missing signature", header: encode(`{"scheme":"ed25519","public_key":"` + edW.PublicKey + `"}`), want: ErrMalformed},
		{name: "empty signature", header: mk("ed25519", edW.PublicKey, ""), want: ErrMalformed},
		{name: "scheme upper case", header: mk("Ed25519", edW.PublicKey, edW.Signature), want: ErrMalformed},
		{name: "scheme unknown", header: mk("secp256k1", edW.PublicKey, edW.Signature), want: ErrMalformed},
		{name: "scheme with space", header: mk("ed25519 ", edW.PublicKey, edW.Signature), want: ErrMalformed},
		{name: "ed25519 key short", header: mk("ed25519", edW.PublicKey[2:], edW.Signature), want: ErrMalformed},
		{name: "ed25519 key long", header: mk("ed25519", edW.PublicKey+"00", edW.Signature), want: ErrMalformed},
		{name: "ed25519 key odd", header: mk("ed25519", edW.PublicKey[1:], edW.Signature), want: ErrMalformed},
		{name: "ed25519 key not hex", header: mk("ed25519", "zz"+edW.PublicKey[2:], edW.Signature), want: ErrMalformed},
		{name: "ed25519 key 0x prefix", header: mk("ed25519", "0x"+edW.PublicKey[2:], edW.Signature), want: ErrMalformed},
		{name: "ed25519 sig short", header: mk("ed25519", edW.PublicKey, edW.Signature[2:]), want: ErrMalformed},
		{name: "ed25519 sig long", header: mk("ed25519", edW.PublicKey, edW.Signature+"00"), want: ErrMalformed},
		{name: "ed25519 sig with p256 key", header: mk("ed25519", pW.PublicKey, edW.Signature), want: ErrMalformed},
		{name: "ed25519 other key", header: mk("ed25519", otherEdKey, edW.Signature), want: ErrBadSignature},
		{name: "ed25519 sig flipped", header: mk("ed25519", edW.PublicKey, "00"+edW.Signature[2:]), want: ErrBadSignature},
		{name: "ed25519 zero key", header: mk("ed25519", strings.Repeat("00", 32), edW.Signature), want: ErrBadSignature},
		{name: "ed25519 wrong body", header: edH, body: []byte("other"), want: ErrBadSignature},
		{name: "ed25519 empty body", header: edH, body: []byte{}, want: ErrBadSignature},
		{name: "p256 key uncompressed", header: mk("p256", hex.EncodeToString(uncompressed), pW.Signature), want: ErrMalformed},
		{name: "p256 key prefix 04", header: mk("p256", "04"+pW.PublicKey[2:], pW.Signature), want: ErrMalformed},
		{name: "p256 key prefix 00", header: mk("p256", "00"+pW.PublicKey[2:], pW.Signature), want: ErrMalformed},
		{name: "p256 key off curve", header: mk("p256", offCurve, pW.Signature), want: ErrMalformed},
		{name: "p256 key x equals p", header: mk("p256", "02"+hex.EncodeToString(pFieldP.Bytes()), pW.Signature), want: ErrMalformed},
		{name: "p256 key x all ff", header: mk("p256", "03"+strings.Repeat("ff", 32), pW.Signature), want: ErrMalformed},
		{name: "p256 key x zero", header: mk("p256", "02"+strings.Repeat("00", 32), pW.Signature), want: ErrBadSignature}, // a valid point
		{name: "p256 key short", header: mk("p256", pW.PublicKey[:64], pW.Signature), want: ErrMalformed},
		{name: "p256 key ed25519 size", header: mk("p256", edW.PublicKey, pW.Signature), want: ErrMalformed},
		{name: "p256 sig too long", header: mk("p256", pW.PublicKey, hex.EncodeToString(append(pDER, make([]byte, 73-len(pDER))...))), want: ErrMalformed},
		{name: "p256 sig too short", header: mk("p256", pW.PublicKey, "30050201010201"), want: ErrMalformed},
		{name: "p256 sig odd hex", header: mk("p256", pW.PublicKey, pW.Signature[1:]), want: ErrMalformed},
		{name: "p256 sig not hex", header: mk("p256", pW.PublicKey, "zz"+pW.Signature[2:]), want: ErrMalformed},
		{name: "p256 sig trailing byte", header: mk("p256", pW.PublicKey, pW.Signature+"00"), want: ErrBadSignature},
		{name: "p256 sig raw r||s", header: mk("p256", pW.PublicKey, hex.EncodeToString(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))), want: ErrBadSignature},
		{name: "p256 sig non-minimal integer", header: mk("p256", pW.PublicKey, hex.EncodeToString(nonMinimal(r, s))), want: ErrBadSignature},
		{name: "p256 sig long-form length", header: mk("p256", pW.PublicKey, hex.EncodeToString(longForm(pDER))), want: ErrBadSignature},
		{name: "p256 sig r zero", header: mk("p256", pW.PublicKey, hex.EncodeToString(derSig(big.NewInt(0), s))), want: ErrBadSignature},
		{name: "p256 sig s zero", header: mk("p256", pW.PublicKey, hex.EncodeToString(derSig(r, big.NewInt(0)))), want: ErrBadSignature},
		{name: "p256 sig r plus n", header: mk("p256", pW.PublicKey, hex.EncodeToString(derSig(new(big.Int).Add(r, n), s))), want: ErrBadSignature},
		{name: "p256 sig negative s", header: mk("p256", pW.PublicKey, hex.EncodeToString(derSig(r, new(big.Int).Neg(s)))), want: ErrBadSignature},
		{name: "p256 other key", header: mk("p256", otherPKey, pW.Signature), want: ErrBadSignature},
		{name: "p256 other parity", header: mk("p256", flipParity(pW.PublicKey), pW.Signature), want: ErrBadSignature},
		{name: "p256 ed25519 signature", header: mk("p256", pW.PublicKey, edW.Signature), want: ErrBadSignature},
		{name: "p256 wrong body", header: pH, body: []byte("other"), want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = testBody
			}
			writeCorpus(t, "bad-"+tt.name, tt.header, body)
			got, err := Verify(tt.header, body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "stamp: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if got.Scheme != "" || got.Key != nil {
				t.Errorf("Verify returned key %v with an error", got)
			}
			for _, other := range []error{ErrMissing, ErrMalformed, ErrBadSignature} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also wraps %v", err, other)
				}
			}
		})
	}
}

func flipParity(h string) string {
	if h[:2] == "02" {
		return "03" + h[2:]
	}
	return "02" + h[2:]
}

// nonMinimal encodes r with a superfluous leading zero byte.
func nonMinimal(r, s *big.Int) []byte {
	rb := append([]byte{0, 0}, r.Bytes()...)
	if r.Bytes()[0] < 0x80 {
		rb = rb[1:]
	}
	sb := s.Bytes()
	if sb[0] >= 0x80 {
		sb = append([]byte{0}, sb...)
	}
	inner := append(append([]byte{0x02, byte(len(rb))}, rb...), append([]byte{0x02, byte(len(sb))}, sb...)...)
	return append([]byte{0x30, byte(len(inner))}, inner...)
}

// longForm re-encodes the outer SEQUENCE length in the long form (0x81 n).
func longForm(der []byte) []byte {
	return append([]byte{0x30, 0x81, der[1]}, der[2:]...)
}

func TestPublicKey(t *testing.T) {
	ed := testEd25519(t).PublicKey()
	p := testP256(t).PublicKey()
	if s := ed.String(); !strings.HasPrefix(s, "ed25519:") || len(s) != len("ed25519:")+64 || strings.ToLower(s) != s {
		t.Errorf("ed25519 String() = %q", s)
	}
	if s := p.String(); !strings.HasPrefix(s, "p256:0") || len(s) != len("p256:")+66 {
		t.Errorf("p256 String() = %q", s)
	}
	for _, k := range []PublicKey{ed, p} {
		h := hex.EncodeToString(k.Key)
		for _, in := range []string{h, strings.ToUpper(h)} {
			got, err := ParsePublicKey(k.Scheme, in)
			if err != nil || !got.Equal(k) || got.String() != k.String() {
				t.Errorf("ParsePublicKey(%s, %s) = %v, %v", k.Scheme, in, got, err)
			}
		}
	}
	if ed.Equal(p) || ed.Equal(PublicKey{Scheme: P256, Key: ed.Key}) {
		t.Error("Equal confuses different keys")
	}
	for _, tt := range []struct {
		name   string
		scheme Scheme
		hex    string
	}{
		{"unknown scheme", "rsa", hex.EncodeToString(ed.Key)},
		{"empty", Ed25519, ""},
		{"wrong length", Ed25519, hex.EncodeToString(p.Key)},
		{"uncompressed", P256, "04" + hex.EncodeToString(ed.Key)},
	} {
		if _, err := ParsePublicKey(tt.scheme, tt.hex); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error = %v, want ErrMalformed", tt.name, err)
		}
	}
}

func TestSignerPEM(t *testing.T) {
	for _, s := range []Signer{testEd25519(t), testP256(t)} {
		pemBytes, err := MarshalPrivateKeyPEM(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----\n")) {
			t.Errorf("PEM starts %q", pemBytes[:30])
		}
		for _, in := range [][]byte{pemBytes, append([]byte("\n  \n"), append(pemBytes, "\n\n"...)...)} {
			back, err := ParseSignerPEM(in)
			if err != nil {
				t.Fatal(err)
			}
			if !back.PublicKey().Equal(s.PublicKey()) {
				t.Errorf("PEM round trip changed the key: %v, want %v", back.PublicKey(), s.PublicKey())
			}
			h, err := Create(back, testBody)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(h, testBody); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestParseSignerPEMRefuses(t *testing.T) {
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256 := testP256Key(t)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	good := pkcs8(p256)
	block, _ := pem.Decode(good)
	secret := base64.StdEncoding.EncodeToString(block.Bytes)
	corrupt := block.Bytes[:len(block.Bytes)-10]

	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"not pem", []byte("hello"), "no PEM block"},
		{"text before", append([]byte("junk\n"), good...), "no PEM block"},
		{"text after", append(bytes.Clone(good), "junk"...), "data after the PEM block"},
		{"two blocks", append(bytes.Clone(good), good...), "data after the PEM block"},
		{"truncated", good[:len(good)-20], "invalid PEM"},
		{"sec1 ec key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), `"EC PRIVATE KEY"`},
		{"public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes}), "block type"},
		{"encrypted headers", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: block.Bytes}), "PEM headers"},
		{"corrupt der", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: corrupt}), "not a valid PKCS #8 key"},
		{"sec1 labelled pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sec1}), "not a valid PKCS #8 key"},
		{"p384", pkcs8(p384), "P-384"},
		{"rsa", pkcs8(rsaKey), "*rsa.PrivateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSignerPEM(tt.in)
			if err == nil {
				t.Fatalf("ParseSignerPEM accepted it: %v", s.PublicKey())
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "stamp: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to contain %q", msg, tt.want)
			}
			if strings.Contains(msg, secret[20:40]) || strings.Contains(msg, hex.EncodeToString(block.Bytes[40:50])) {
				t.Errorf("error %q contains key material", msg)
			}
		})
	}
}

func TestNewSignerRefuses(t *testing.T) {
	if _, err := NewEd25519Signer(make([]byte, 32)); err == nil {
		t.Error("NewEd25519Signer accepted a 32-byte key")
	}
	if _, err := NewP256Signer(nil); err == nil {
		t.Error("NewP256Signer accepted nil")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewP256Signer(p384); err == nil {
		t.Error("NewP256Signer accepted a P-384 key")
	}
	if _, err := GenerateSigner("rsa"); err == nil {
		t.Error("GenerateSigner accepted an unknown scheme")
	}
	if _, err := MarshalPrivateKeyPEM(badSigner{}); err == nil {
		t.Error("MarshalPrivateKeyPEM accepted a foreign signer")
	}
}

type badSigner struct {
	pub PublicKey
	sig []byte
	err error
}

func (b badSigner) PublicKey() PublicKey                 { return b.pub }
func (b badSigner) SignBody(body []byte) ([]byte, error) { return b.sig, b.err }

func TestCreateRefuses(t *testing.T) {
	good := testEd25519(t).PublicKey()
	tests := []struct {
		name string
		s    Signer
	}{
		{"nil", nil},
		{"empty key", badSigner{pub: PublicKey{Scheme: Ed25519}, sig: make([]byte, 64)}},
		{"unknown scheme", badSigner{pub: PublicKey{Scheme: "rsa", Key: good.Key}, sig: make([]byte, 64)}},
		{"short signature", badSigner{pub: good, sig: make([]byte, 63)}},
		{"p256 long signature", badSigner{pub: PublicKey{Scheme: P256, Key: make([]byte, 33)}, sig: make([]byte, 73)}},
		{"sign error", badSigner{pub: good, err: errors.New("hsm offline")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, err := Create(tt.s, testBody); err == nil || !strings.HasPrefix(err.Error(), "stamp: ") {
				t.Errorf("Create = %q, %v", h, err)
			}
		})
	}
}

// FuzzVerify checks that Verify never panics, classifies every failure, and
// that what it accepts is bound to the body.
func FuzzVerify(f *testing.F) {
	for _, s := range []Signer{testEd25519(f), testP256(f)} {
		h, err := Create(s, testBody)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h, testBody)
		f.Add(h[:len(h)-1], testBody)
	}
	f.Add("", []byte(nil))
	f.Add(encode(`{"scheme":"p256","public_key":"","signature":""}`), []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		key, err := Verify(header, body)
		if err != nil {
			n := 0
			for _, e := range []error{ErrMissing, ErrMalformed, ErrBadSignature} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 || !strings.HasPrefix(err.Error(), "stamp: ") {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if _, err := ParsePublicKey(key.Scheme, hex.EncodeToString(key.Key)); err != nil {
			t.Fatalf("accepted key %v does not parse: %v", key, err)
		}
		if _, err := Verify(header, append(bytes.Clone(body), 0)); err == nil {
			t.Fatal("stamp also verifies a different body")
		}
	})
}
