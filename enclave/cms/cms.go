package cms

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Object identifiers, as the contents octets of their DER encoding.
var (
	oidEnvelopedData = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03} // 1.2.840.113549.1.7.3
	oidData          = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01} // 1.2.840.113549.1.7.1
	oidRSAESOAEP     = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07} // 1.2.840.113549.1.1.7
	oidMGF1          = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08} // 1.2.840.113549.1.1.8
	oidPSpecified    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09} // 1.2.840.113549.1.1.9
	oidSHA256        = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01} // 2.16.840.1.101.3.4.2.1
	oidAES256CBC     = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a} // 2.16.840.1.101.3.4.1.42
)

// names of object identifiers that error messages mention.
var oidNames = map[string]string{
	"1.2.840.113549.1.7.1":       "id-data",
	"1.2.840.113549.1.7.2":       "id-signedData",
	"1.2.840.113549.1.7.3":       "id-envelopedData",
	"1.2.840.113549.1.7.6":       "id-encryptedData",
	"1.2.840.113549.1.9.16.1.2":  "id-ct-authData",
	"1.2.840.113549.1.9.16.1.23": "id-ct-authEnvelopedData",
	"1.2.840.113549.1.1.1":       "rsaEncryption, PKCS #1 v1.5",
	"1.2.840.113549.1.1.7":       "id-RSAES-OAEP",
	"1.2.840.113549.1.1.8":       "id-mgf1",
	"1.2.840.113549.1.1.9":       "id-pSpecified",
	"1.3.14.3.2.26":              "sha-1",
	"2.16.840.1.101.3.4.2.1":     "sha-256",
	"2.16.840.1.101.3.4.2.2":     "sha-384",
	"2.16.840.1.101.3.4.2.3":     "sha-512",
	"2.16.840.1.101.3.4.1.2":     "aes128-CBC",
	"2.16.840.1.101.3.4.1.22":    "aes192-CBC",
	"2.16.840.1.101.3.4.1.42":    "aes256-CBC",
	"2.16.840.1.101.3.4.1.46":    "aes256-GCM",
}

const (
	// encryptedKeySize is the size of an RSA-2048 ciphertext.
	encryptedKeySize = 256
	// maxSubjectKeyIDSize bounds the subject key identifier (KMS sends 32
	// bytes, openssl 20).
	maxSubjectKeyIDSize = 64
	ivSize              = 16
)

// EnvelopedData is the one recipient's part of a CMS EnvelopedData that
// [Parse] accepted. Its slices are copies, not views of the input.
type EnvelopedData struct {
	// SubjectKeyID is the recipient's subjectKeyIdentifier (rid [0]).
	// Nothing authenticates it; see [WithSubjectKeyID].
	SubjectKeyID []byte
	// EncryptedKey is the content-encryption key encrypted with
	// RSAES-OAEP (SHA-256, MGF1 with SHA-256, empty label): 256 bytes.
	EncryptedKey []byte
	// IV is the AES-256-CBC initialisation vector: 16 bytes.
	IV []byte
	// Ciphertext is the AES-256-CBC encrypted content, PKCS #7 padded: a
	// non-zero multiple of 16 bytes, at most MaxCiphertextSize.
	Ciphertext []byte
}

// Parse decodes ber, a CMS ContentInfo holding an EnvelopedData in the
// exact form the package documentation describes, and returns its
// recipient's fields. Any other input is an error, which names the first
// problem found; errors never quote the input's bytes.
func Parse(ber []byte) (*EnvelopedData, error) {
	root, err := decodeBER(ber)
	if err != nil {
		return nil, err
	}

	// ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT ANY }
	ci, err := sequence(root, "content info")
	if err != nil {
		return nil, err
	}
	if len(ci) != 2 {
		return nil, fmt.Errorf("cms: content info has %d fields, want 2", len(ci))
	}
	if err := wantOID(ci[0], oidEnvelopedData, "content type"); err != nil {
		return nil, err
	}
	if !ci[1].is(classContext, 0, true) || len(ci[1].children) != 1 {
		return nil, errors.New("cms: content info's content is not [0] EXPLICIT holding one element")
	}

	// EnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL,
	//   recipientInfos SET, encryptedContentInfo, unprotectedAttrs [1] OPTIONAL }
	ed, err := sequence(ci[1].children[0], "enveloped data")
	if err != nil {
		return nil, err
	}
	if len(ed) == 0 {
		return nil, errors.New("cms: enveloped data is empty")
	}
	if err := wantVersion(ed[0], 2, "enveloped data"); err != nil {
		return nil, err
	}
	fields := ed[1:]
	if len(fields) > 0 && fields[0].class == classContext && fields[0].tag == 0 {
		return nil, errors.New("cms: originatorInfo is not accepted")
	}
	if len(fields) == 3 && fields[2].class == classContext && fields[2].tag == 1 {
		return nil, errors.New("cms: unprotectedAttrs are not accepted")
	}
	if len(fields) != 2 {
		return nil, fmt.Errorf("cms: enveloped data has %d fields, want version, recipientInfos and encryptedContentInfo", len(ed))
	}

	out := &EnvelopedData{}
	if err := parseRecipientInfos(fields[0], out); err != nil {
		return nil, err
	}
	if err := parseEncryptedContentInfo(fields[1], out); err != nil {
		return nil, err
	}
	return out, nil
}

// parseRecipientInfos reads the SET OF RecipientInfo, which must hold one
// KeyTransRecipientInfo:
//
//	KeyTransRecipientInfo ::= SEQUENCE { version CMSVersion (2),
//	  rid [0] SubjectKeyIdentifier, keyEncryptionAlgorithm, encryptedKey }
func parseRecipientInfos(e element, out *EnvelopedData) error {
	if !e.is(classUniversal, tagSet, true) {
		return errors.New("cms: recipientInfos is not a SET")
	}
	if n := len(e.children); n != 1 {
		return fmt.Errorf("cms: %d recipients, want exactly 1", n)
	}
	ri := e.children[0]
	if ri.class == classContext {
		name := map[byte]string{1: "key agreement (kari)", 2: "key encryption key (kekri)", 3: "password (pwri)", 4: "other (ori)"}[ri.tag]
		if name == "" {
			name = "[" + strconv.Itoa(int(ri.tag)) + "]"
		}
		return fmt.Errorf("cms: recipient is %s, want key transport (ktri)", name)
	}
	kt, err := sequence(ri, "key transport recipient info")
	if err != nil {
		return err
	}
	if len(kt) != 4 {
		return fmt.Errorf("cms: key transport recipient info has %d fields, want 4", len(kt))
	}
	if err := wantVersion(kt[0], 2, "recipient info"); err != nil {
		return err
	}
	rid := kt[1]
	switch {
	case rid.is(classUniversal, tagSequence, true):
		return errors.New("cms: recipient is identified by issuerAndSerialNumber, want subjectKeyIdentifier")
	case rid.is(classContext, 0, true):
		return errors.New("cms: subject key identifier is constructed, want primitive")
	case !rid.is(classContext, 0, false):
		return errors.New("cms: recipient identifier is not a subjectKeyIdentifier [0]")
	case len(rid.content) == 0:
		return errors.New("cms: subject key identifier is empty")
	case len(rid.content) > maxSubjectKeyIDSize:
		return fmt.Errorf("cms: subject key identifier is %d bytes, more than the %d accepted", len(rid.content), maxSubjectKeyIDSize)
	}
	if err := parseKeyEncryptionAlgorithm(kt[2]); err != nil {
		return err
	}
	ek, err := octetString(kt[3], "encrypted key")
	if err != nil {
		return err
	}
	if len(ek) != encryptedKeySize {
		return fmt.Errorf("cms: encrypted key is %d bytes, want %d (RSA-2048)", len(ek), encryptedKeySize)
	}
	out.SubjectKeyID = bytes.Clone(rid.content)
	out.EncryptedKey = bytes.Clone(ek)
	return nil
}

// parseKeyEncryptionAlgorithm accepts id-RSAES-OAEP with explicit
// parameters naming SHA-256 and MGF1 with SHA-256, and at most an explicit
// empty label:
//
//	RSAES-OAEP-params ::= SEQUENCE {
//	  hashAlgorithm    [0] HashAlgorithm    DEFAULT sha1,
//	  maskGenAlgorithm [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
//	  pSourceAlgorithm [2] PSourceAlgorithm DEFAULT pSpecifiedEmpty }
func parseKeyEncryptionAlgorithm(e element) error {
	alg, err := sequence(e, "key encryption algorithm")
	if err != nil {
		return err
	}
	if len(alg) == 0 || len(alg) > 2 {
		return errors.New("cms: key encryption algorithm is not an AlgorithmIdentifier")
	}
	if err := wantOID(alg[0], oidRSAESOAEP, "key encryption algorithm"); err != nil {
		return err
	}
	if len(alg) == 1 {
		return errors.New("cms: RSAES-OAEP parameters are absent, which means SHA-1")
	}
	p, err := sequence(alg[1], "RSAES-OAEP parameters field")
	if err != nil {
		return err
	}
	i := 0
	if i == len(p) || !p[i].is(classContext, 0, true) {
		return errors.New("cms: RSAES-OAEP hash is absent, which means SHA-1")
	}
	hash, err := explicit(p[i], "RSAES-OAEP hash")
	if err != nil {
		return err
	}
	if err := wantSHA256(hash, "RSAES-OAEP hash"); err != nil {
		return err
	}
	i++
	if i == len(p) || !p[i].is(classContext, 1, true) {
		return errors.New("cms: RSAES-OAEP mask generation function is absent, which means MGF1 with SHA-1")
	}
	mgf, err := explicit(p[i], "RSAES-OAEP mask generation function")
	if err != nil {
		return err
	}
	mgfAlg, err := sequence(mgf, "RSAES-OAEP mask generation function")
	if err != nil {
		return err
	}
	if len(mgfAlg) != 2 {
		return errors.New("cms: RSAES-OAEP mask generation function is not MGF1 with a hash")
	}
	if err := wantOID(mgfAlg[0], oidMGF1, "RSAES-OAEP mask generation function"); err != nil {
		return err
	}
	if err := wantSHA256(mgfAlg[1], "MGF1 hash"); err != nil {
		return err
	}
	i++
	if i < len(p) && p[i].is(classContext, 2, true) {
		src, err := explicit(p[i], "RSAES-OAEP label source")
		if err != nil {
			return err
		}
		srcAlg, err := sequence(src, "RSAES-OAEP label source")
		if err != nil {
			return err
		}
		if len(srcAlg) != 2 {
			return errors.New("cms: RSAES-OAEP label source is not id-pSpecified with a label")
		}
		if err := wantOID(srcAlg[0], oidPSpecified, "RSAES-OAEP label source"); err != nil {
			return err
		}
		label, err := octetString(srcAlg[1], "RSAES-OAEP label")
		if err != nil {
			return err
		}
		if len(label) != 0 {
			return errors.New("cms: RSAES-OAEP label is not empty")
		}
		i++
	}
	if i != len(p) {
		return errors.New("cms: RSAES-OAEP parameters have extra fields")
	}
	return nil
}

// parseEncryptedContentInfo reads
//
//	EncryptedContentInfo ::= SEQUENCE { contentType (id-data),
//	  contentEncryptionAlgorithm (aes256-CBC, IV OCTET STRING (16)),
//	  encryptedContent [0] IMPLICIT OCTET STRING }
//
// where encryptedContent may be primitive, or constructed from primitive
// OCTET STRING segments (as KMS and openssl -stream write it), which are
// joined.
func parseEncryptedContentInfo(e element, out *EnvelopedData) error {
	eci, err := sequence(e, "encrypted content info")
	if err != nil {
		return err
	}
	if len(eci) == 2 {
		return errors.New("cms: encrypted content is absent (detached content is not accepted)")
	}
	if len(eci) != 3 {
		return fmt.Errorf("cms: encrypted content info has %d fields, want 3", len(eci))
	}
	if err := wantOID(eci[0], oidData, "encrypted content type"); err != nil {
		return err
	}
	alg, err := sequence(eci[1], "content encryption algorithm")
	if err != nil {
		return err
	}
	if len(alg) == 0 || len(alg) > 2 {
		return errors.New("cms: content encryption algorithm is not an AlgorithmIdentifier")
	}
	if err := wantOID(alg[0], oidAES256CBC, "content encryption algorithm"); err != nil {
		return err
	}
	if len(alg) == 1 {
		return errors.New("cms: AES-256-CBC IV is absent")
	}
	iv, err := octetString(alg[1], "AES-256-CBC IV")
	if err != nil {
		return err
	}
	if len(iv) != ivSize {
		return fmt.Errorf("cms: AES-256-CBC IV is %d bytes, want %d", len(iv), ivSize)
	}

	ec := eci[2]
	if ec.class != classContext || ec.tag != 0 {
		return errors.New("cms: encrypted content is not [0] IMPLICIT OCTET STRING")
	}
	var ct []byte
	if !ec.constructed {
		ct = bytes.Clone(ec.content)
	} else {
		for _, s := range ec.children {
			if s.is(classUniversal, tagOctetString, true) {
				return errors.New("cms: encrypted content segments nest, which is not accepted")
			}
			if !s.is(classUniversal, tagOctetString, false) {
				return errors.New("cms: encrypted content segment is not an OCTET STRING")
			}
		}
		n := segmentsSize(ec.children)
		if n > MaxCiphertextSize {
			return fmt.Errorf("cms: encrypted content is %d bytes, more than the %d accepted", n, MaxCiphertextSize)
		}
		ct = make([]byte, 0, n)
		for _, s := range ec.children {
			ct = append(ct, s.content...)
		}
	}
	switch {
	case len(ct) == 0:
		return errors.New("cms: encrypted content is empty")
	case len(ct) > MaxCiphertextSize:
		return fmt.Errorf("cms: encrypted content is %d bytes, more than the %d accepted", len(ct), MaxCiphertextSize)
	case len(ct)%ivSize != 0:
		return fmt.Errorf("cms: encrypted content is %d bytes, not a multiple of the AES block size", len(ct))
	}
	out.IV = bytes.Clone(iv)
	out.Ciphertext = ct
	return nil
}

// segmentsSize is the total size of the contents of segments.
func segmentsSize(segments []element) int {
	n := 0
	for _, s := range segments {
		n += len(s.content)
	}
	return n
}

// sequence returns the children of e, which must be a constructed SEQUENCE.
func sequence(e element, what string) ([]element, error) {
	if !e.is(classUniversal, tagSequence, true) {
		return nil, fmt.Errorf("cms: %s is not a SEQUENCE", what)
	}
	return e.children, nil
}

// explicit returns the one element that e, an EXPLICIT tag, wraps.
func explicit(e element, what string) (element, error) {
	if len(e.children) != 1 {
		return element{}, fmt.Errorf("cms: %s is not an EXPLICIT tag holding one element", what)
	}
	return e.children[0], nil
}

// octetString returns the contents of e, which must be a primitive OCTET
// STRING.
func octetString(e element, what string) ([]byte, error) {
	if e.is(classUniversal, tagOctetString, true) {
		return nil, fmt.Errorf("cms: %s is a constructed OCTET STRING, which is not accepted here", what)
	}
	if !e.is(classUniversal, tagOctetString, false) {
		return nil, fmt.Errorf("cms: %s is not an OCTET STRING", what)
	}
	return e.content, nil
}

// wantVersion checks that e is the INTEGER v, encoded as DER requires.
func wantVersion(e element, v byte, what string) error {
	if !e.is(classUniversal, tagInteger, false) {
		return fmt.Errorf("cms: %s version is not an INTEGER", what)
	}
	if len(e.content) != 1 || e.content[0] != v {
		if len(e.content) == 1 && e.content[0] < 0x80 {
			return fmt.Errorf("cms: %s version is %d, want %d", what, e.content[0], v)
		}
		return fmt.Errorf("cms: %s version is not %d", what, v)
	}
	return nil
}

// wantOID checks that e is the OBJECT IDENTIFIER whose DER contents are
// want.
func wantOID(e element, want []byte, what string) error {
	if !e.is(classUniversal, tagOID, false) {
		return fmt.Errorf("cms: %s is not an OBJECT IDENTIFIER", what)
	}
	if !bytes.Equal(e.content, want) {
		return fmt.Errorf("cms: %s is %s, want %s", what, describeOID(e.content), describeOID(want))
	}
	return nil
}

// wantSHA256 checks that e is the AlgorithmIdentifier of SHA-256, with
// parameters absent or NULL (RFC 4055 and RFC 5754 require accepting both:
// openssl leaves them out, KMS writes NULL).
func wantSHA256(e element, what string) error {
	alg, err := sequence(e, what)
	if err != nil {
		return err
	}
	if len(alg) == 0 || len(alg) > 2 {
		return fmt.Errorf("cms: %s is not an AlgorithmIdentifier", what)
	}
	if err := wantOID(alg[0], oidSHA256, what); err != nil {
		return err
	}
	if len(alg) == 2 && (!alg[1].is(classUniversal, tagNull, false) || len(alg[1].content) != 0) {
		return fmt.Errorf("cms: %s parameters are neither absent nor NULL", what)
	}
	return nil
}

// describeOID formats the DER contents of an object identifier in dotted
// form, with its name when it is one this package knows.
func describeOID(b []byte) string {
	var arcs []string
	var v uint64
	for i, c := range b {
		if v == 0 && c == 0x80 || v > 1<<56 {
			return "an invalid OBJECT IDENTIFIER"
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 != 0 {
			if i == len(b)-1 {
				return "an invalid OBJECT IDENTIFIER"
			}
			continue
		}
		if len(arcs) == 0 {
			first := min(v/40, 2)
			arcs = append(arcs, strconv.FormatUint(first, 10), strconv.FormatUint(v-40*first, 10))
		} else {
			arcs = append(arcs, strconv.FormatUint(v, 10))
		}
		v = 0
	}
	if len(arcs) == 0 {
		return "an empty OBJECT IDENTIFIER"
	}
	s := strings.Join(arcs, ".")
	if name, ok := oidNames[s]; ok {
		return s + " (" + name + ")"
	}
	return s
}
