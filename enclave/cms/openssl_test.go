package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

// opensslLengths are the plaintext lengths of the openssl-made vectors:
// empty, within a block, a block exactly (a whole block of padding), and
// more.
var opensslLengths = []int{0, 1, 15, 16, 17, 32, 1000}

// opensslForms are the encodings openssl writes: DER, and BER with
// indefinite lengths and a constructed encrypted content (-stream), as KMS
// writes it.
var opensslForms = []string{"der", "stream"}

// opensslSeedName names the committed fuzz seed of one openssl vector.
func opensslSeedName(form string, n int) string {
	return fuzzseed.FileName(fmt.Sprintf("openssl %s %d", form, n), '-')
}

// kit is an RSA key and a self-signed certificate for it made by openssl,
// in a directory of their own.
type kit struct {
	dir  string
	priv *rsa.PrivateKey
	cert *x509.Certificate
}

// openssl runs openssl with args in dir and returns its standard output.
func openssl(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed: the decrypt vectors are made with openssl 3 when the tests run " +
			"(.ci/run installs it; on Debian or Ubuntu, apt-get install openssl)")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// newKit has openssl make an RSA key of bits bits and a self-signed
// certificate for it, which carries a subjectKeyIdentifier as openssl
// derives it.
func newKit(t testing.TB, bits int) *kit {
	t.Helper()
	dir := t.TempDir()
	openssl(t, dir, "req", "-x509", "-newkey", "rsa:"+strconv.Itoa(bits), "-nodes",
		"-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=nitrosign cms test", "-days", "1")
	k := &kit{dir: dir}
	for _, f := range []string{"key.pem", "cert.pem"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s is not PEM", f)
		}
		if f == "key.pem" {
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			priv, ok := key.(*rsa.PrivateKey)
			if !ok {
				t.Fatalf("openssl made a %T", key)
			}
			k.priv = priv
		} else if k.cert, err = x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.cert.SubjectKeyId) == 0 {
		t.Fatal("openssl's certificate has no subjectKeyIdentifier, which -keyid needs")
	}
	return k
}

// encrypt has openssl encrypt plain to k's certificate as KMS does:
// recipient by subjectKeyIdentifier, RSAES-OAEP with SHA-256 and
// MGF1-SHA-256, AES-256-CBC, in the given form.
func (k *kit) encrypt(t testing.TB, plain []byte, form string) []byte {
	t.Helper()
	f, err := os.CreateTemp(k.dir, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	args := []string{"cms", "-encrypt", "-binary", "-aes256", "-keyid", "-outform", "DER", "-in", f.Name(),
		"-recip", "cert.pem", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"}
	if form == "stream" {
		args = append(args, "-stream")
	}
	return openssl(t, k.dir, args...)
}

// plaintext returns n bytes that are the same on every run.
func plaintext(n int) []byte {
	r := mrand.New(mrand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestDecryptOpenSSL: Decrypt opens what openssl encrypts as KMS does, of
// every length and in both encodings. With -update-corpus it also writes
// the envelopes as seeds of FuzzParse.
func TestDecryptOpenSSL(t *testing.T) {
	k := newKit(t, 2048)

	// openssl's -keyid writes the certificate's subjectKeyIdentifier,
	// which it derives as RFC 5280 method 1: SHA-1 of the subjectPublicKey
	// bits.
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(k.cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	if sum := sha1.Sum(spki.PublicKey.Bytes); !bytes.Equal(k.cert.SubjectKeyId, sum[:]) {
		t.Logf("openssl's subjectKeyIdentifier %x is not SHA-1 of the key bits %x", k.cert.SubjectKeyId, sum)
	}

	if *updateCorpus {
		old, _ := filepath.Glob(fuzzseed.Path("FuzzParse", "openssl-*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, form := range opensslForms {
		for _, n := range opensslLengths {
			t.Run(fmt.Sprintf("%s %d", form, n), func(t *testing.T) {
				plain := plaintext(n)
				in := k.encrypt(t, plain, form)
				if indefinite := in[1] == 0x80; indefinite != (form == "stream") {
					t.Fatalf("openssl's %s output starts %x", form, in[:2])
				}
				ed, err := Parse(in)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if want := (n/16 + 1) * 16; len(ed.Ciphertext) != want {
					t.Errorf("ciphertext is %d bytes, want %d", len(ed.Ciphertext), want)
				}
				if !bytes.Equal(ed.SubjectKeyID, k.cert.SubjectKeyId) {
					t.Errorf("subject key identifier %x, want the certificate's %x", ed.SubjectKeyID, k.cert.SubjectKeyId)
				}
				for _, opts := range [][]DecryptOption{nil, {WithSubjectKeyID(k.cert.SubjectKeyId)}} {
					got, err := ed.Decrypt(k.priv, opts...)
					if err != nil {
						t.Fatalf("Decrypt: %v", err)
					}
					if !bytes.Equal(got, plain) {
						t.Fatalf("Decrypt:\n got %x\nwant %x", got, plain)
					}
				}
				if *updateCorpus {
					fuzzseed.WriteFile(t, fuzzseed.Path("FuzzParse", opensslSeedName(form, n)), in)
				}
			})
		}
	}
}

// goEnvelope encrypts plain to pub as KMS does, with content key key,
// using Go's crypto, and returns the parsed envelope.
func goEnvelope(t *testing.T, pub *rsa.PublicKey, key, plain []byte) *EnvelopedData {
	t.Helper()
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	pad := 16 - len(plain)%16
	padded := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	iv := make([]byte, 16)
	rand.Read(iv)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(padded, padded)
	ed, err := Parse(specOf(&EnvelopedData{SubjectKeyID: testSKI, EncryptedKey: ek, IV: iv, Ciphertext: padded}).ber())
	if err != nil {
		t.Fatal(err)
	}
	return ed
}

// TestDecryptFails: a wrong key, a damaged encrypted key, a content key
// that is not an AES-256 key, and every kind of bad padding all give the
// one generic error, and no plaintext.
func TestDecryptFails(t *testing.T) {
	k, other := newKit(t, 2048), newKit(t, 2048)
	plain := plaintext(17) // two blocks, the last with 15 bytes of padding
	base, err := Parse(k.encrypt(t, plain, "der"))
	if err != nil {
		t.Fatal(err)
	}
	short, err := Parse(k.encrypt(t, plain[:1], "stream")) // one block, IV before it
	if err != nil {
		t.Fatal(err)
	}
	const pad = 15
	key32 := bytes.Repeat([]byte{7}, 32)
	if got, err := goEnvelope(t, &k.priv.PublicKey, key32, plain).Decrypt(k.priv); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("a Go-made envelope: %x, %v", got, err)
	}
	oaepWith := func(f func(pub *rsa.PublicKey) ([]byte, error)) func(*EnvelopedData) {
		return func(ed *EnvelopedData) {
			ek, err := f(&k.priv.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			ed.EncryptedKey = ek
		}
	}
	// prev returns the index in ed of the byte that XORs into byte i of the
	// last plaintext block: in the previous ciphertext block or the IV.
	prev := func(ed *EnvelopedData, i int) *byte {
		if len(ed.Ciphertext) == 16 {
			return &ed.IV[i]
		}
		return &ed.Ciphertext[len(ed.Ciphertext)-32+i]
	}

	cases := []struct {
		name string
		ed   *EnvelopedData
		priv *rsa.PrivateKey
		f    func(*EnvelopedData)
	}{
		{"wrong key", base, other.priv, nil},
		{"wrong key, one block", short, other.priv, nil},
		{"encrypted key changed", base, nil, func(ed *EnvelopedData) { ed.EncryptedKey[100] ^= 1 }},
		{"encrypted key first byte", base, nil, func(ed *EnvelopedData) { ed.EncryptedKey[0] ^= 0x80 }},
		{"encrypted key zero", base, nil, func(ed *EnvelopedData) { clear(ed.EncryptedKey) }},
		{"encrypted key above the modulus", base, nil, func(ed *EnvelopedData) {
			for i := range ed.EncryptedKey {
				ed.EncryptedKey[i] = 0xff
			}
		}},
		{"encrypted key of another envelope's key", base, nil, func(ed *EnvelopedData) { ed.EncryptedKey = bytes.Clone(short.EncryptedKey) }},
		{"content key 16 bytes", base, nil, oaepWith(func(pub *rsa.PublicKey) ([]byte, error) {
			return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, key32[:16], nil)
		})},
		{"content key 33 bytes", base, nil, oaepWith(func(pub *rsa.PublicKey) ([]byte, error) {
			return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, append(key32, 0), nil)
		})},
		{"content key empty", base, nil, oaepWith(func(pub *rsa.PublicKey) ([]byte, error) {
			return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, nil, nil)
		})},
		{"content key with a label", base, nil, oaepWith(func(pub *rsa.PublicKey) ([]byte, error) {
			return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, key32, []byte("label"))
		})},
		{"content key by oaep sha-1", base, nil, oaepWith(func(pub *rsa.PublicKey) ([]byte, error) {
			return rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key32, nil)
		})},
		{"content key by pkcs1 v1.5", base, nil, oaepWith(func(pub *rsa.PublicKey) ([]byte, error) {
			//lint:ignore SA1019 the test needs a PKCS #1 v1.5 block to show that Decrypt refuses it.
			return rsa.EncryptPKCS1v15(rand.Reader, pub, key32)
		})},
		{"padding byte 0", base, nil, func(ed *EnvelopedData) { *prev(ed, 15) ^= pad }},
		{"padding byte 17", base, nil, func(ed *EnvelopedData) { *prev(ed, 15) ^= pad ^ 17 }},
		{"padding byte 255", base, nil, func(ed *EnvelopedData) { *prev(ed, 15) ^= pad ^ 255 }},
		{"padding byte 16", base, nil, func(ed *EnvelopedData) { *prev(ed, 15) ^= pad ^ 16 }},
		{"padding second to last byte", base, nil, func(ed *EnvelopedData) { *prev(ed, 14) ^= 1 }},
		{"padding first byte", base, nil, func(ed *EnvelopedData) { *prev(ed, 1) ^= 0x40 }},
		{"last block garbled", base, nil, func(ed *EnvelopedData) {
			// The first change of the last byte that garbles the padding.
			last := len(ed.Ciphertext) - 1
			orig := ed.Ciphertext[last]
			for v := 1; v < 256; v++ {
				if ed.Ciphertext[last] = orig ^ byte(v); badPadding(t, k.priv, ed) {
					return
				}
			}
			t.Fatal("no change of the last byte garbles the padding")
		}},
		{"iv padding byte 0", short, nil, func(ed *EnvelopedData) { *prev(ed, 15) ^= pad }},
		{"iv padding byte 2", short, nil, func(ed *EnvelopedData) { *prev(ed, 15) ^= pad ^ 2 }},
		{"iv padding first byte", short, nil, func(ed *EnvelopedData) { *prev(ed, 1) ^= 1 }},
		{"iv padding middle byte", short, nil, func(ed *EnvelopedData) { *prev(ed, 8) ^= 0xff }},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			ed := &EnvelopedData{
				SubjectKeyID: bytes.Clone(tt.ed.SubjectKeyID),
				EncryptedKey: bytes.Clone(tt.ed.EncryptedKey),
				IV:           bytes.Clone(tt.ed.IV),
				Ciphertext:   bytes.Clone(tt.ed.Ciphertext),
			}
			if tt.f != nil {
				tt.f(ed)
			}
			priv := tt.priv
			if priv == nil {
				priv = k.priv
			}
			got, err := ed.Decrypt(priv)
			if err != ErrDecryption || err.Error() != "cms: decryption failed" {
				t.Fatalf("Decrypt: %x, %v; want ErrDecryption", got, err)
			}
			if got != nil {
				t.Fatalf("Decrypt returned %x with its error", got)
			}
		})
	}
}

// badPadding reports whether ed, under priv, decrypts to bad padding: it
// opens the content key and the content without Decrypt.
func badPadding(t *testing.T, priv *rsa.PrivateKey, ed *EnvelopedData) bool {
	t.Helper()
	key, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ed.EncryptedKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	buf := make([]byte, len(ed.Ciphertext))
	cipher.NewCBCDecrypter(block, ed.IV).CryptBlocks(buf, ed.Ciphertext)
	_, ok := refUnpad(buf)
	return !ok
}

// TestDecryptCBCIsMalleable documents what Decrypt cannot catch: a change to
// the IV outside the padding changes the plaintext and still decrypts.
func TestDecryptCBCIsMalleable(t *testing.T) {
	k := newKit(t, 2048)
	plain := plaintext(32)
	ed, err := Parse(k.encrypt(t, plain, "der"))
	if err != nil {
		t.Fatal(err)
	}
	ed.IV[0] ^= 1
	got, err := ed.Decrypt(k.priv)
	if err != nil || got[0] != plain[0]^1 || !bytes.Equal(got[1:], plain[1:]) {
		t.Fatalf("Decrypt: %x, %v", got, err)
	}
}

// TestDecryptPublicErrors: what Decrypt refuses before decrypting anything
// has its own errors, none of them ErrDecryption, and no panic.
func TestDecryptPublicErrors(t *testing.T) {
	k := newKit(t, 2048)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := Parse(k.encrypt(t, plaintext(5), "der"))
	if err != nil {
		t.Fatal(err)
	}
	changed := func(f func(*EnvelopedData)) *EnvelopedData {
		c := *ed
		c.IV, c.Ciphertext = bytes.Clone(ed.IV), bytes.Clone(ed.Ciphertext)
		f(&c)
		return &c
	}
	const errShape = "cms: enveloped data has an IV or ciphertext that Parse does not return"
	otherID := bytes.Clone(k.cert.SubjectKeyId)
	otherID[0] ^= 1
	cases := []struct {
		name string
		ed   *EnvelopedData
		priv *rsa.PrivateKey
		opts []DecryptOption
		want string
	}{
		{"nil envelope", nil, k.priv, nil, "cms: no enveloped data"},
		{"nil key", ed, nil, nil, "cms: no private key"},
		{"empty key", ed, &rsa.PrivateKey{}, nil, "cms: no private key"},
		{"rsa-1024 key", ed, small, nil, "cms: private key size does not match the encrypted key"},
		{"other subject key id", ed, k.priv, []DecryptOption{WithSubjectKeyID(otherID)}, "cms: subject key identifier is not the one expected"},
		{"shorter subject key id", ed, k.priv, []DecryptOption{WithSubjectKeyID(k.cert.SubjectKeyId[:19])}, "cms: subject key identifier is not the one expected"},
		{"empty subject key id", ed, k.priv, []DecryptOption{WithSubjectKeyID(nil)}, "cms: subject key identifier is not the one expected"},
		{"other subject key id, wrong key", ed, small, []DecryptOption{WithSubjectKeyID(otherID)}, "cms: subject key identifier is not the one expected"},
		{"iv 15 bytes", changed(func(c *EnvelopedData) { c.IV = c.IV[:15] }), k.priv, nil, errShape},
		{"iv absent", changed(func(c *EnvelopedData) { c.IV = nil }), k.priv, nil, errShape},
		{"ciphertext 17 bytes", changed(func(c *EnvelopedData) { c.Ciphertext = append(c.Ciphertext, 0) }), k.priv, nil, errShape},
		{"ciphertext empty", changed(func(c *EnvelopedData) { c.Ciphertext = nil }), k.priv, nil, errShape},
		{"ciphertext too large", changed(func(c *EnvelopedData) { c.Ciphertext = make([]byte, MaxCiphertextSize+16) }), k.priv, nil, errShape},
		{"encrypted key short", changed(func(c *EnvelopedData) { c.EncryptedKey = c.EncryptedKey[:255] }), k.priv, nil, "cms: private key size does not match the encrypted key"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ed.Decrypt(tt.priv, tt.opts...)
			if err == nil || got != nil || errors.Is(err, ErrDecryption) || err.Error() != tt.want {
				t.Fatalf("Decrypt: %x, %v; want %q", got, err, tt.want)
			}
		})
	}
	// The option keeps its own copy of the identifier.
	id := bytes.Clone(k.cert.SubjectKeyId)
	opt := WithSubjectKeyID(id)
	id[0] ^= 1
	if _, err := ed.Decrypt(k.priv, opt); err != nil {
		t.Fatalf("after the caller changed its identifier: %v", err)
	}
}
