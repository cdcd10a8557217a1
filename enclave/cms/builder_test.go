package cms

import "bytes"

// A small DER writer for building envelopes in tests: the accepted shape
// and every near miss of it.

// tlv encodes one element with identifier id, definite length, and the
// concatenation of parts as contents.
func tlv(id byte, parts ...[]byte) []byte {
	content := bytes.Join(parts, nil)
	n := len(content)
	var out []byte
	switch {
	case n < 0x80:
		out = []byte{id, byte(n)}
	case n < 0x100:
		out = []byte{id, 0x81, byte(n)}
	default:
		out = []byte{id, 0x82, byte(n >> 8), byte(n)}
	}
	return append(out, content...)
}

// indefinite encodes one constructed element with an indefinite length.
func indefinite(id byte, parts ...[]byte) []byte {
	out := append([]byte{id, 0x80}, bytes.Join(parts, nil)...)
	return append(out, 0, 0)
}

func seq(parts ...[]byte) []byte { return tlv(0x30, parts...) }
func set(parts ...[]byte) []byte { return tlv(0x31, parts...) }
func oid(contents []byte) []byte { return tlv(0x06, contents) }
func octets(b []byte) []byte     { return tlv(0x04, b) }
func integer(v byte) []byte      { return tlv(0x02, []byte{v}) }

var null = []byte{0x05, 0x00}

// Object identifiers that the package refuses, as DER contents.
var (
	oidRSAEncryption = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01} // 1.2.840.113549.1.1.1
	oidSHA1          = []byte{0x2b, 0x0e, 0x03, 0x02, 0x1a}                         // 1.3.14.3.2.26
	oidSHA384        = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02} // 2.16.840.1.101.3.4.2.2
	oidAES128CBC     = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02} // 2.16.840.1.101.3.4.1.2
	oidAES256GCM     = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e} // 2.16.840.1.101.3.4.1.46
	oidSignedData    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02} // 1.2.840.113549.1.7.2
	oidAuthEnveloped = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17}
)

// hashAlg is the AlgorithmIdentifier of the hash o, with NULL parameters
// as KMS writes them.
func hashAlg(o []byte) []byte { return seq(oid(o), null) }

// oaepParams are RSAES-OAEP parameters: hash, MGF1 with mgfHash.
func oaepParams(hash, mgfHash []byte) []byte {
	return seq(tlv(0xa0, hash), tlv(0xa1, seq(oid(oidMGF1), mgfHash)))
}

// recip is a KeyTransRecipientInfo, field by field (each a whole element).
type recip struct {
	version, rid, alg, key []byte
}

func (r recip) der() []byte { return seq(r.version, r.rid, r.alg, r.key) }

// spec is a ContentInfo with EnvelopedData, field by field (each a whole
// element; nil leaves a field out).
type spec struct {
	ciType      []byte
	version     []byte
	originator  []byte
	recipients  [][]byte
	ecType      []byte
	ceAlg       []byte
	content     []byte
	unprotected []byte
}

func (s spec) der() []byte {
	ed := seq(s.version, s.originator, set(s.recipients...), seq(s.ecType, s.ceAlg, s.content), s.unprotected)
	return seq(s.ciType, tlv(0xa0, ed))
}

// ber encodes s as KMS does: indefinite lengths on the outer elements and a
// constructed, indefinite encrypted content.
func (s spec) ber() []byte {
	content := s.content
	if len(content) > 0 && content[0] == 0x80 {
		// Re-wrap a primitive [0] as KMS's constructed [0] with one segment.
		content = indefinite(0xa0, octets(primitiveContents(content)))
	}
	ed := indefinite(0x30, s.version, s.originator, set(s.recipients...), indefinite(0x30, s.ecType, s.ceAlg, content), s.unprotected)
	return indefinite(0x30, s.ciType, indefinite(0xa0, ed))
}

// primitiveContents returns the contents of a definite-length element
// written by tlv.
func primitiveContents(e []byte) []byte {
	switch e[1] {
	case 0x81:
		return e[3:]
	case 0x82:
		return e[4:]
	default:
		return e[2:]
	}
}

// Field values of the valid spec.
var (
	testSKI = bytes.Repeat([]byte{0x5a}, 32)
	testKey = bytes.Repeat([]byte{0xa5}, 256)
	testIV  = []byte("0123456789abcdef")
	testCT  = bytes.Repeat([]byte("ciphertext block"), 3)
)

func validRecip() recip {
	return recip{
		version: integer(2),
		rid:     tlv(0x80, testSKI),
		alg:     seq(oid(oidRSAESOAEP), oaepParams(hashAlg(oidSHA256), hashAlg(oidSHA256))),
		key:     octets(testKey),
	}
}

// valid returns the spec of an envelope Parse accepts, shaped as KMS's.
func valid() spec {
	return spec{
		ciType:     oid(oidEnvelopedData),
		version:    integer(2),
		recipients: [][]byte{validRecip().der()},
		ecType:     oid(oidData),
		ceAlg:      seq(oid(oidAES256CBC), octets(testIV)),
		content:    tlv(0x80, testCT),
	}
}

// specOf returns the DER spec of an envelope with ed's fields.
func specOf(ed *EnvelopedData) spec {
	r := validRecip()
	r.rid = tlv(0x80, ed.SubjectKeyID)
	r.key = octets(ed.EncryptedKey)
	s := valid()
	s.recipients = [][]byte{r.der()}
	s.ceAlg = seq(oid(oidAES256CBC), octets(ed.IV))
	s.content = tlv(0x80, ed.Ciphertext)
	return s
}

// withSpec returns the DER of the valid spec changed by f.
func withSpec(f func(*spec)) []byte {
	s := valid()
	f(&s)
	return s.der()
}

// withRecip returns the DER of the valid spec whose recipient is changed
// by f.
func withRecip(f func(*recip)) []byte {
	r := validRecip()
	f(&r)
	return withSpec(func(s *spec) { s.recipients = [][]byte{r.der()} })
}
