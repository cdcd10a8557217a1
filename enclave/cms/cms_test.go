package cms

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// kmsDir holds the real KMS outputs, in the shared test data beside the
// repository (/work/main and /work/shared).
const kmsDir = "../../testdata/aws/kms"

type kmsVector struct {
	Input        string `json:"input_ber_hex"`
	EncryptedKey string `json:"want_encrypted_key_hex"`
	IV           string `json:"want_iv_hex"`
	Ciphertext   string `json:"want_ciphertext_hex"`
}

// kmsVectors returns the real CiphertextForRecipient samples by name.
func kmsVectors(t testing.TB) map[string]kmsVector {
	t.Helper()
	path := filepath.Join(kmsDir, "ciphertext_for_recipient_parse_vectors.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the real KMS samples are missing: %v (they live in testdata/aws/kms)", err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var vectors map[string]kmsVector
	if err := d.Decode(&vectors); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(vectors) < 2 {
		t.Fatalf("%s holds %d vectors, want at least 2", path, len(vectors))
	}
	return vectors
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseKMSVectors: Parse extracts from real KMS outputs exactly the
// encrypted key, IV and ciphertext that the vectors list.
func TestParseKMSVectors(t *testing.T) {
	for name, v := range kmsVectors(t) {
		t.Run(name, func(t *testing.T) {
			in := unhex(t, v.Input)
			ed, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, f := range []struct {
				name      string
				got, want []byte
			}{
				{"encrypted key", ed.EncryptedKey, unhex(t, v.EncryptedKey)},
				{"IV", ed.IV, unhex(t, v.IV)},
				{"ciphertext", ed.Ciphertext, unhex(t, v.Ciphertext)},
			} {
				if !bytes.Equal(f.got, f.want) {
					t.Errorf("%s:\n got %x\nwant %x", f.name, f.got, f.want)
				}
			}
			// KMS's subject key identifier is 32 bytes, right after the
			// recipient's version in the input.
			if len(ed.SubjectKeyID) != 32 || !bytes.Contains(in, append([]byte{0x02, 0x01, 0x02, 0x80, 0x20}, ed.SubjectKeyID...)) {
				t.Errorf("subject key identifier %x is not the 32 bytes of rid [0]", ed.SubjectKeyID)
			}
			// The same fields in DER, from the test's own writer, and in
			// the writer's imitation of KMS's BER, parse the same.
			for form, b := range map[string][]byte{"der": specOf(ed).der(), "ber": specOf(ed).ber()} {
				again, err := Parse(b)
				if err != nil || !reflect.DeepEqual(again, ed) {
					t.Errorf("%s re-encoding: %+v, %v; want %+v", form, again, err, ed)
				}
			}
		})
	}
}

type validCase struct {
	name string
	in   []byte
	want func(*EnvelopedData) // changes the fields of the valid spec
}

// validCases are inputs Parse accepts: the valid spec in DER and in KMS's
// BER, and the variants that the format allows.
func validCases() []validCase {
	oaep := func(params ...[]byte) []byte {
		return withRecip(func(r *recip) { r.alg = seq(oid(oidRSAESOAEP), seq(params...)) })
	}
	mgf := tlv(0xa1, seq(oid(oidMGF1), hashAlg(oidSHA256)))
	segments := func(parts ...[]byte) []byte {
		return withSpec(func(s *spec) { s.content = tlv(0xa0, parts...) })
	}
	id64 := bytes.Repeat(testSKI[:1], 64)
	largest := make([]byte, MaxCiphertextSize)
	return []validCase{
		{"der", valid().der(), nil},
		{"ber", valid().ber(), nil},
		{"hash without NULL", oaep(tlv(0xa0, seq(oid(oidSHA256))), tlv(0xa1, seq(oid(oidMGF1), seq(oid(oidSHA256))))), nil},
		{"explicit empty label", oaep(tlv(0xa0, hashAlg(oidSHA256)), mgf, tlv(0xa2, seq(oid(oidPSpecified), octets(nil)))), nil},
		{"segments definite", segments(octets(testCT[:16]), octets(testCT[16:])), nil},
		{"segments uneven", segments(octets(testCT[:5]), octets(nil), octets(testCT[5:])), nil},
		{"segments indefinite", withSpec(func(s *spec) { s.content = indefinite(0xa0, octets(testCT[:32]), octets(testCT[32:])) }), nil},
		{"indefinite only inside", withSpec(func(s *spec) { s.ceAlg = indefinite(0x30, oid(oidAES256CBC), octets(testIV)) }), nil},
		{"subject key id 1 byte", withRecip(func(r *recip) { r.rid = tlv(0x80, testSKI[:1]) }), func(e *EnvelopedData) { e.SubjectKeyID = testSKI[:1] }},
		{"subject key id 64 bytes", withRecip(func(r *recip) { r.rid = tlv(0x80, id64) }), func(e *EnvelopedData) { e.SubjectKeyID = id64 }},
		{"one block", withSpec(func(s *spec) { s.content = tlv(0x80, testCT[:16]) }), func(e *EnvelopedData) { e.Ciphertext = testCT[:16] }},
		{"largest ciphertext", withSpec(func(s *spec) { s.content = tlv(0x80, largest) }), func(e *EnvelopedData) { e.Ciphertext = largest }},
	}
}

// TestParseValid: Parse accepts each valid case, with its fields.
func TestParseValid(t *testing.T) {
	for _, tt := range validCases() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := &EnvelopedData{SubjectKeyID: testSKI, EncryptedKey: testKey, IV: testIV, Ciphertext: testCT}
			if tt.want != nil {
				tt.want(want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestParseCopies: what Parse returns does not share memory with its input.
func TestParseCopies(t *testing.T) {
	for _, in := range [][]byte{valid().der(), valid().ber()} {
		got, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		for i := range in {
			in[i] = 0
		}
		want := &EnvelopedData{SubjectKeyID: testSKI, EncryptedKey: testKey, IV: testIV, Ciphertext: testCT}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after the input was overwritten: %+v", got)
		}
	}
}

type refusal struct {
	name string
	in   []byte
	want string // in the error
}

// refusals are inputs Parse must refuse, each near the valid shape.
func refusals(t testing.TB) []refusal {
	t.Helper()
	kms := unhex(t, kmsVectors(t)["aws_kms_sample"].Input)
	mgf := tlv(0xa1, seq(oid(oidMGF1), hashAlg(oidSHA256)))
	sha := tlv(0xa0, hashAlg(oidSHA256))
	keyAlg := func(a []byte) []byte { return withRecip(func(r *recip) { r.alg = a }) }
	oaep := func(params ...[]byte) []byte { return keyAlg(seq(oid(oidRSAESOAEP), seq(params...))) }
	ceAlg := func(a []byte) []byte { return withSpec(func(s *spec) { s.ceAlg = a }) }
	content := func(c []byte) []byte { return withSpec(func(s *spec) { s.content = c }) }
	asSequence := bytes.Replace(valid().der(), []byte{0x31, 0x82, 0x01, 0x6b}, []byte{0x30, 0x82, 0x01, 0x6b}, 1)
	if bytes.Equal(asSequence, valid().der()) {
		t.Fatal("the valid envelope's recipientInfos header is not 31 82 01 6b")
	}
	nested := func(n int) []byte {
		return append(bytes.Repeat([]byte{0x30, 0x80}, n), make([]byte, 2*n)...)
	}

	rs := []refusal{
		// ContentInfo
		{"empty", nil, "input is empty"},
		{"content type signed data", withSpec(func(s *spec) { s.ciType = oid(oidSignedData) }), "content type is 1.2.840.113549.1.7.2 (id-signedData), want 1.2.840.113549.1.7.3"},
		{"content type auth enveloped", withSpec(func(s *spec) { s.ciType = oid(oidAuthEnveloped) }), "id-ct-authEnvelopedData"},
		{"content type not an oid", withSpec(func(s *spec) { s.ciType = octets(oidEnvelopedData) }), "content type is not an OBJECT IDENTIFIER"},
		{"content info a set", set(oid(oidEnvelopedData), tlv(0xa0, seq(integer(2)))), "content info is not a SEQUENCE"},
		{"content not explicit", seq(oid(oidEnvelopedData), tlv(0x80, []byte{1})), "content info's content is not [0] EXPLICIT"},
		{"content info extra field", seq(oid(oidEnvelopedData), tlv(0xa0, seq(integer(2))), null), "content info has 3 fields"},
		{"content missing", seq(oid(oidEnvelopedData)), "content info has 1 fields"},

		// EnvelopedData
		{"version 0", withSpec(func(s *spec) { s.version = integer(0) }), "enveloped data version is 0, want 2"},
		{"version 3", withSpec(func(s *spec) { s.version = integer(3) }), "enveloped data version is 3, want 2"},
		{"version non-minimal", withSpec(func(s *spec) { s.version = tlv(0x02, []byte{0, 2}) }), "enveloped data version is not 2"},
		{"version not an integer", withSpec(func(s *spec) { s.version = octets([]byte{2}) }), "version is not an INTEGER"},
		{"originator info", withSpec(func(s *spec) { s.originator = tlv(0xa0, seq()) }), "originatorInfo is not accepted"},
		{"unprotected attrs", withSpec(func(s *spec) { s.unprotected = tlv(0xa1, seq(oid(oidData), set(null))) }), "unprotectedAttrs are not accepted"},
		{"extra field", withSpec(func(s *spec) { s.unprotected = null }), "enveloped data has 4 fields"},

		// RecipientInfos
		{"no recipients", withSpec(func(s *spec) { s.recipients = nil }), "0 recipients, want exactly 1"},
		{"two recipients", withSpec(func(s *spec) { s.recipients = append(s.recipients, validRecip().der()) }), "2 recipients, want exactly 1"},
		{"recipients a sequence", asSequence, "recipientInfos is not a SET"},
		{"key agreement recipient", withSpec(func(s *spec) { s.recipients = [][]byte{tlv(0xa1, integer(3))} }), "recipient is key agreement (kari)"},
		{"password recipient", withSpec(func(s *spec) { s.recipients = [][]byte{tlv(0xa3, integer(0))} }), "recipient is password (pwri)"},
		{"recipient version 0 issuer and serial", withRecip(func(r *recip) {
			r.version = integer(0)
			r.rid = seq(seq(set(seq(oid([]byte{0x55, 0x04, 0x03}), tlv(0x0c, []byte("test"))))), integer(1))
		}), "recipient info version is 0, want 2"},
		{"issuer and serial number rid", withRecip(func(r *recip) {
			r.rid = seq(seq(set(seq(oid([]byte{0x55, 0x04, 0x03}), tlv(0x0c, []byte("test"))))), integer(1))
		}), "identified by issuerAndSerialNumber"},
		{"constructed subject key id", withRecip(func(r *recip) { r.rid = tlv(0xa0, octets(testSKI)) }), "subject key identifier is constructed"},
		{"rid [1]", withRecip(func(r *recip) { r.rid = tlv(0x81, testSKI) }), "recipient identifier is not a subjectKeyIdentifier"},
		{"empty subject key id", withRecip(func(r *recip) { r.rid = tlv(0x80, nil) }), "subject key identifier is empty"},
		{"long subject key id", withRecip(func(r *recip) { r.rid = tlv(0x80, make([]byte, 65)) }), "subject key identifier is 65 bytes"},
		{"recipient missing key", withSpec(func(s *spec) {
			r := validRecip()
			s.recipients = [][]byte{seq(r.version, r.rid, r.alg)}
		}), "has 3 fields, want 4"},

		// keyEncryptionAlgorithm
		{"pkcs1 v1.5 key transport", keyAlg(seq(oid(oidRSAEncryption), null)), "key encryption algorithm is 1.2.840.113549.1.1.1 (rsaEncryption, PKCS #1 v1.5), want 1.2.840.113549.1.1.7"},
		{"oaep without parameters", keyAlg(seq(oid(oidRSAESOAEP))), "RSAES-OAEP parameters are absent, which means SHA-1"},
		{"oaep NULL parameters", keyAlg(seq(oid(oidRSAESOAEP), null)), "RSAES-OAEP parameters field is not a SEQUENCE"},
		{"oaep empty parameters", oaep(), "RSAES-OAEP hash is absent, which means SHA-1"},
		{"oaep sha1", oaep(tlv(0xa0, hashAlg(oidSHA1)), mgf), "RSAES-OAEP hash is 1.3.14.3.2.26 (sha-1), want 2.16.840.1.101.3.4.2.1 (sha-256)"},
		{"oaep sha384", oaep(tlv(0xa0, hashAlg(oidSHA384)), mgf), "RSAES-OAEP hash is 2.16.840.1.101.3.4.2.2 (sha-384)"},
		{"oaep mgf1 sha1", oaep(sha, tlv(0xa1, seq(oid(oidMGF1), hashAlg(oidSHA1)))), "MGF1 hash is 1.3.14.3.2.26 (sha-1)"},
		{"oaep mgf missing", oaep(sha), "mask generation function is absent, which means MGF1 with SHA-1"},
		{"oaep mgf not mgf1", oaep(sha, tlv(0xa1, seq(oid(oidSHA256), hashAlg(oidSHA256)))), "mask generation function is 2.16.840.1.101.3.4.2.1 (sha-256), want 1.2.840.113549.1.1.8 (id-mgf1)"},
		{"oaep mgf without hash", oaep(sha, tlv(0xa1, seq(oid(oidMGF1)))), "not MGF1 with a hash"},
		{"oaep hash params not null", oaep(tlv(0xa0, seq(oid(oidSHA256), octets(nil))), mgf), "parameters are neither absent nor NULL"},
		{"oaep hash NULL with contents", oaep(tlv(0xa0, seq(oid(oidSHA256), tlv(0x05, []byte{0}))), mgf), "parameters are neither absent nor NULL"},
		{"oaep hash implicit", oaep(tlv(0x80, oidSHA256), mgf), "RSAES-OAEP hash is absent"},
		{"oaep hash explicit two", oaep(tlv(0xa0, hashAlg(oidSHA256), null), mgf), "not an EXPLICIT tag holding one element"},
		{"oaep label", oaep(sha, mgf, tlv(0xa2, seq(oid(oidPSpecified), octets([]byte("label"))))), "RSAES-OAEP label is not empty"},
		{"oaep label source", oaep(sha, mgf, tlv(0xa2, seq(oid(oidSHA256), octets(nil)))), "label source is 2.16.840.1.101.3.4.2.1 (sha-256), want 1.2.840.113549.1.1.9 (id-pSpecified)"},
		{"oaep label constructed", oaep(sha, mgf, tlv(0xa2, seq(oid(oidPSpecified), tlv(0x24, octets(nil))))), "label is a constructed OCTET STRING"},
		{"oaep extra field", oaep(sha, mgf, tlv(0xa3, null)), "RSAES-OAEP parameters have extra fields"},
		{"oaep fields reordered", oaep(mgf, sha), "RSAES-OAEP hash is absent"},
		{"key encryption algorithm three fields", keyAlg(seq(oid(oidRSAESOAEP), oaepParams(hashAlg(oidSHA256), hashAlg(oidSHA256)), null)), "key encryption algorithm is not an AlgorithmIdentifier"},

		// encryptedKey
		{"encrypted key 255 bytes", withRecip(func(r *recip) { r.key = octets(testKey[1:]) }), "encrypted key is 255 bytes, want 256"},
		{"encrypted key 257 bytes", withRecip(func(r *recip) { r.key = octets(append(testKey, 0)) }), "encrypted key is 257 bytes, want 256"},
		{"encrypted key 512 bytes", withRecip(func(r *recip) { r.key = octets(append(testKey, testKey...)) }), "encrypted key is 512 bytes"},
		{"encrypted key constructed", withRecip(func(r *recip) { r.key = tlv(0x24, octets(testKey[:128]), octets(testKey[128:])) }), "encrypted key is a constructed OCTET STRING"},
		{"encrypted key a bit string", withRecip(func(r *recip) { r.key = tlv(0x03, append([]byte{0}, testKey...)) }), "encrypted key is not an OCTET STRING"},

		// EncryptedContentInfo
		{"content type enveloped data", withSpec(func(s *spec) { s.ecType = oid(oidEnvelopedData) }), "encrypted content type is 1.2.840.113549.1.7.3 (id-envelopedData), want 1.2.840.113549.1.7.1 (id-data)"},
		{"aes-128-cbc", ceAlg(seq(oid(oidAES128CBC), octets(testIV))), "content encryption algorithm is 2.16.840.1.101.3.4.1.2 (aes128-CBC), want 2.16.840.1.101.3.4.1.42 (aes256-CBC)"},
		{"aes-256-gcm", ceAlg(seq(oid(oidAES256GCM), octets(testIV[:12]))), "(aes256-GCM)"},
		{"iv 15 bytes", ceAlg(seq(oid(oidAES256CBC), octets(testIV[:15]))), "AES-256-CBC IV is 15 bytes, want 16"},
		{"iv 17 bytes", ceAlg(seq(oid(oidAES256CBC), octets(append(testIV, 0)))), "AES-256-CBC IV is 17 bytes, want 16"},
		{"iv absent", ceAlg(seq(oid(oidAES256CBC))), "AES-256-CBC IV is absent"},
		{"iv NULL", ceAlg(seq(oid(oidAES256CBC), null)), "AES-256-CBC IV is not an OCTET STRING"},
		{"iv constructed", ceAlg(seq(oid(oidAES256CBC), tlv(0x24, octets(testIV)))), "AES-256-CBC IV is a constructed OCTET STRING"},
		{"ciphertext 47 bytes", content(tlv(0x80, testCT[1:])), "encrypted content is 47 bytes, not a multiple"},
		{"ciphertext 1 byte", content(tlv(0x80, testCT[:1])), "encrypted content is 1 bytes, not a multiple"},
		{"ciphertext segments 33 bytes", content(tlv(0xa0, octets(testCT[:16]), octets(testCT[:17]))), "encrypted content is 33 bytes, not a multiple"},
		{"ciphertext empty", content(tlv(0x80, nil)), "encrypted content is empty"},
		{"ciphertext no segments", content(indefinite(0xa0)), "encrypted content is empty"},
		{"ciphertext absent", withSpec(func(s *spec) { s.content = nil }), "encrypted content is absent"},
		{"ciphertext [1]", content(tlv(0x81, testCT)), "encrypted content is not [0] IMPLICIT OCTET STRING"},
		{"ciphertext universal", content(octets(testCT)), "encrypted content is not [0] IMPLICIT OCTET STRING"},
		{"ciphertext nested segments", content(tlv(0xa0, tlv(0x24, octets(testCT)))), "encrypted content segments nest"},
		{"ciphertext segment not octets", content(tlv(0xa0, tlv(0x80, testCT))), "segment is not an OCTET STRING"},
		{"ciphertext too large", content(tlv(0x80, make([]byte, MaxCiphertextSize+16))), "encrypted content is 16400 bytes, more than the 16384 accepted"},
		{"ciphertext segments too large", content(tlv(0xa0, octets(make([]byte, MaxCiphertextSize)), octets(testCT[:16]))), "encrypted content is 16400 bytes, more than the 16384 accepted"},
		{"encrypted content info extra", withSpec(func(s *spec) { s.content = append(tlv(0x80, testCT), null...) }), "encrypted content info has 4 fields, want 3"},

		// Encoding
		{"trailing zero", append(valid().der(), 0), "1 trailing bytes after the content info"},
		{"trailing eoc", append(valid().der(), 0, 0), "2 trailing bytes"},
		{"trailing copy", append(valid().der(), valid().der()...), "trailing bytes"},
		{"kms trailing byte", append(bytes.Clone(kms), 0), "1 trailing bytes"},
		{"kms missing last eoc", kms[:len(kms)-2], "input is truncated"},
		{"truncated", valid().der()[:100], "input is truncated"},
		{"truncated header", []byte{0x30}, "input is truncated"},
		{"truncated long length", []byte{0x30, 0x82, 0x01}, "input is truncated"},
		{"nested beyond the cap", nested(maxDepth + 1), "elements nest deeper than 16"},
		{"nested far beyond the cap", nested(1000), "elements nest deeper than 16"},
		{"nested within the cap", nested(maxDepth), "content info has 1 fields"},
		{"oversized", make([]byte, MaxSize+1), "input is 65537 bytes, more than the 65536 accepted"},
		{"oversized valid prefix", append(valid().der(), make([]byte, MaxSize)...), "more than the 65536 accepted"},
		{"too many elements", content(indefinite(0xa0, slices.Repeat([][]byte{octets(nil)}, maxElements)...)), "more than 1024 elements"},
		{"non-minimal long length", append([]byte{0x30, 0x81, 0x05}, oid(oidData)[:5]...), "length is not in its shortest form"},
		{"leading zero length", append([]byte{0x30, 0x82, 0x00, 0x85}, make([]byte, 0x85)...), "length is not in its shortest form"},
		{"length of 4 bytes", []byte{0x30, 0x84, 0, 0, 0, 5, 0, 0, 0, 0, 0}, "length of 4 bytes is too long"},
		{"reserved length 0xff", []byte{0x30, 0xff, 0}, "length of 127 bytes is too long"},
		{"indefinite primitive", []byte{0x30, 0x80, 0x04, 0x80, 0x00, 0x00, 0x00, 0x00}, "indefinite length on a primitive element"},
		{"eoc in definite content", seq(null, []byte{0, 0}), "end-of-contents marker where an element belongs"},
		{"eoc with length", []byte{0x30, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00}, "end-of-contents marker where an element belongs"},
		{"eoc alone", []byte{0x00, 0x00}, "end-of-contents marker where an element belongs"},
		{"eoc missing", []byte{0x30, 0x80, 0x05, 0x00}, "input is truncated"},
		{"high tag number", []byte{0x1f, 0x81, 0x00, 0x00}, "high tag numbers are not accepted"},
		{"high tag number inside", seq([]byte{0xbf, 0x20, 0x00}), "high tag numbers are not accepted"},
		{"length beyond input", []byte{0x30, 0x05, 0x05, 0x00}, "input is truncated"},
	}

	// A wrong OID anywhere: every OID of the valid envelope, of KMS's and
	// of openssl's shape, with its last arc changed.
	ossl := withRecip(func(r *recip) {
		r.alg = seq(oid(oidRSAESOAEP), oaepParams(seq(oid(oidSHA256)), seq(oid(oidSHA256))))
	})
	for form, in := range map[string][]byte{"der": valid().der(), "kms": kms, "openssl shape": ossl} {
		n := 0
		for i := 0; i+2 < len(in); i++ {
			if in[i] != 0x06 || in[i+1] != 0x09 || i+11 > len(in) || !knownOID(in[i+2:i+11]) {
				continue
			}
			b := bytes.Clone(in)
			b[i+10] ^= 0x01
			rs = append(rs, refusal{fmt.Sprintf("%s wrong oid at %d", form, i), b, ", want "})
			n++
		}
		if n != 7 {
			t.Fatalf("found %d OIDs in the %s envelope, want 7", n, form)
		}
	}
	return rs
}

// knownOID reports whether b is one of the OIDs the accepted format uses.
func knownOID(b []byte) bool {
	for _, o := range [][]byte{oidEnvelopedData, oidData, oidRSAESOAEP, oidMGF1, oidSHA256, oidAES256CBC} {
		if bytes.Equal(b, o) {
			return true
		}
	}
	return false
}

// TestParseRefuses: each near miss is refused, with an error that says why.
func TestParseRefuses(t *testing.T) {
	names := map[string]bool{}
	for _, tt := range refusals(t) {
		if names[tt.name] {
			t.Fatalf("two cases named %q", tt.name)
		}
		names[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", got)
			}
			if got != nil {
				t.Errorf("Parse returned %+v with its error", got)
			}
			if !strings.HasPrefix(err.Error(), "cms: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestParseTruncated: every proper prefix of a valid input is refused.
func TestParseTruncated(t *testing.T) {
	inputs := map[string][]byte{"der": valid().der(), "ber": valid().ber()}
	for name, v := range kmsVectors(t) {
		inputs[name] = unhex(t, v.Input)
	}
	for name, in := range inputs {
		if _, err := Parse(in); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n := range len(in) {
			if got, err := Parse(in[:n]); err == nil {
				t.Fatalf("%s: Parse accepted the first %d of %d bytes: %+v", name, n, len(in), got)
			}
		}
	}
}

// TestParseCorrupted: no change of one byte of a real sample makes Parse
// panic, and whatever Parse accepts still has the format's sizes.
func TestParseCorrupted(t *testing.T) {
	for name, v := range kmsVectors(t) {
		in := unhex(t, v.Input)
		for i := range in {
			for _, x := range []byte{0x01, 0x20, 0x80, 0xff} {
				b := bytes.Clone(in)
				b[i] ^= x
				if ed, err := Parse(b); err == nil {
					checkSizes(t, fmt.Sprintf("%s byte %d ^ %#x", name, i, x), ed)
				}
			}
		}
	}
}

// checkSizes checks that ed has the sizes Parse promises.
func checkSizes(t *testing.T, name string, ed *EnvelopedData) {
	t.Helper()
	if n := len(ed.SubjectKeyID); n < 1 || n > maxSubjectKeyIDSize || len(ed.EncryptedKey) != 256 || len(ed.IV) != 16 ||
		len(ed.Ciphertext) == 0 || len(ed.Ciphertext)%16 != 0 || len(ed.Ciphertext) > MaxCiphertextSize {
		t.Fatalf("%s: Parse accepted sizes %d, %d, %d, %d", name, len(ed.SubjectKeyID), len(ed.EncryptedKey), len(ed.IV), len(ed.Ciphertext))
	}
}

// TestDecodeDepth: the decoder accepts nesting to maxDepth and no deeper,
// with definite and indefinite lengths.
func TestDecodeDepth(t *testing.T) {
	for _, form := range []string{"definite", "indefinite"} {
		build := func(depth int) []byte {
			b := null
			for range depth - 1 {
				if form == "definite" {
					b = seq(b)
				} else {
					b = indefinite(0x30, b)
				}
			}
			return b
		}
		if _, err := decodeBER(build(maxDepth)); err != nil {
			t.Errorf("%s, depth %d: %v", form, maxDepth, err)
		}
		if _, err := decodeBER(build(maxDepth + 1)); err == nil || !strings.Contains(err.Error(), "nest deeper") {
			t.Errorf("%s, depth %d: %v, want a depth error", form, maxDepth+1, err)
		}
	}
}

// TestDecodeElements: the decoder accepts maxElements elements and no more.
func TestDecodeElements(t *testing.T) {
	build := func(n int) []byte { return indefinite(0x30, slices.Repeat([][]byte{null}, n-1)...) }
	if _, err := decodeBER(build(maxElements)); err != nil {
		t.Errorf("%d elements: %v", maxElements, err)
	}
	if _, err := decodeBER(build(maxElements + 1)); err == nil || !strings.Contains(err.Error(), "elements") {
		t.Errorf("%d elements: %v, want a count error", maxElements+1, err)
	}
}

// TestDecodeLengths: long-form lengths decode, at the sizes where their
// forms change.
func TestDecodeLengths(t *testing.T) {
	for _, n := range []int{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff - 4} {
		in := tlv(0x04, make([]byte, n))
		e, err := decodeBER(in)
		if err != nil || len(e.content) != n || e.constructed || e.tag != tagOctetString {
			t.Errorf("length %d: %+v, %v", n, e, err)
		}
	}
}

// TestDescribeOID formats what the error messages show.
func TestDescribeOID(t *testing.T) {
	for in, want := range map[string]string{
		"2a864886f70d010703":     "1.2.840.113549.1.7.3 (id-envelopedData)",
		"2b0e03021a":             "1.3.14.3.2.26 (sha-1)",
		"608648016503040201":     "2.16.840.1.101.3.4.2.1 (sha-256)",
		"550403":                 "2.5.4.3",
		"8837":                   "2.999",
		"":                       "an empty OBJECT IDENTIFIER",
		"2a86":                   "an invalid OBJECT IDENTIFIER",
		"2a8001":                 "an invalid OBJECT IDENTIFIER",
		"2affffffffffffffffff7f": "an invalid OBJECT IDENTIFIER",
		"2affffffffffffffff7f":   "1.2.9223372036854775807",
	} {
		if got := describeOID(unhex(t, in)); got != want {
			t.Errorf("describeOID(%s) = %q, want %q", in, got, want)
		}
	}
}

// refUnpad is PKCS #7 unpadding written plainly.
func refUnpad(b []byte) (int, bool) {
	p := int(b[len(b)-1])
	if p < 1 || p > 16 {
		return 0, false
	}
	for i := 1; i <= p; i++ {
		if b[len(b)-i] != byte(p) {
			return 0, false
		}
	}
	return len(b) - p, true
}

// TestUnpad checks the constant-time unpadding against refUnpad on every
// valid padding, every padding with one wrong byte, every last byte, and
// random blocks.
func TestUnpad(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		n, ok := unpad(b)
		wn, wok := refUnpad(b)
		if ok != 0 && ok != 1 || (ok == 1) != wok || wok && n != wn || !wok && n != len(b) {
			t.Fatalf("unpad(%x) = %d, %d; want %d, %v", b, n, ok, wn, wok)
		}
	}
	for _, size := range []int{16, 32, 48} {
		for last := range 256 {
			b := make([]byte, size)
			b[size-1] = byte(last)
			check(b)
			if last >= 1 && last <= 16 {
				for i := range last {
					b[size-1-i] = byte(last)
				}
				check(b)
				for i := range last + 1 {
					if size-1-i < 0 {
						break
					}
					c := bytes.Clone(b)
					c[size-1-i] ^= 0x01
					check(c)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 20000 {
		b := make([]byte, 16*(1+r.IntN(3)))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if r.IntN(2) == 0 { // mostly valid padding, sometimes one byte off
			p := 1 + r.IntN(16)
			for i := range p {
				b[len(b)-1-i] = byte(p)
			}
			if r.IntN(3) == 0 {
				b[len(b)-1-r.IntN(16)] ^= byte(1 + r.IntN(255))
			}
		}
		check(b)
	}
}

// TestErrorsDoNotQuote: errors do not quote the input's bytes.
func TestErrorsDoNotQuote(t *testing.T) {
	marker := bytes.Repeat([]byte{0x41}, 48) // "AAAA…", ciphertext that would show if quoted
	in := withSpec(func(s *spec) { s.content = tlv(0x80, marker[:47]) })
	_, err := Parse(in)
	if err == nil || strings.Contains(err.Error(), "AAAA") || strings.Contains(err.Error(), "4141") {
		t.Fatalf("error %v", err)
	}
	if ErrDecryption.Error() != "cms: decryption failed" {
		t.Fatal(ErrDecryption)
	}
}
