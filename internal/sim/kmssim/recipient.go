package kmssim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/nitrosign/nitrosign/attestation"
)

// The one key encryption algorithm of RecipientInfo.
const keyEncryptionRSAOAEP256 = "RSAES_OAEP_SHA_256"

// recipientInfo is the Recipient member of GenerateDataKey, Decrypt and
// GenerateRandom.
type recipientInfo struct {
	KeyEncryptionAlgorithm *string `json:"KeyEncryptionAlgorithm"`
	AttestationDocument    []byte  `json:"AttestationDocument"`
}

// UnmarshalJSON reads the structure as every input is read: exact member
// names, unknown members ignored.
func (r *recipientInfo) UnmarshalJSON(data []byte) error {
	type plain recipientInfo
	return decodeObject(data, (*plain)(r))
}

// recipient is a Recipient whose attestation document passed verification.
type recipient struct {
	pub          *rsa.PublicKey
	subjectKeyID []byte
	pcrs         map[int][]byte
}

func errBadAttestation(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "ValidationException", "The attestation document in the Recipient parameter is not valid: "+format, args...)
}

// verifyRecipient checks a Recipient as KMS does before it answers one: the
// algorithm, then the attestation document, verified with
// attestation.Verify against s.roots at now (debug-mode documents
// included: their all-zero PCRs are for the key policy to refuse), then
// its public_key, which must be an RSA key of 2048 to 4096 bits in a DER
// SubjectPublicKeyInfo.
func (s *Server) verifyRecipient(ri *recipientInfo, now time.Time) (*recipient, *apiError) {
	var v validation
	v.required("recipient.keyEncryptionAlgorithm", ri.KeyEncryptionAlgorithm != nil)
	v.enum("recipient.keyEncryptionAlgorithm", ri.KeyEncryptionAlgorithm, keyEncryptionRSAOAEP256)
	v.required("recipient.attestationDocument", ri.AttestationDocument != nil)
	v.blobLen("recipient.attestationDocument", ri.AttestationDocument, 1, 262144)
	if err := v.err(); err != nil {
		return nil, err
	}
	res, err := attestation.Verify(ri.AttestationDocument, attestation.Options{
		Time:       now,
		Roots:      s.roots,
		AllowDebug: true,
	})
	if err != nil {
		return nil, errBadAttestation("%v", err)
	}
	if res.PublicKey == nil {
		return nil, errBadAttestation("it carries no public_key")
	}
	pub, err := x509.ParsePKIXPublicKey(res.PublicKey)
	if err != nil {
		return nil, errBadAttestation("its public_key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errBadAttestation("its public_key is a %T, not an RSA key", pub)
	}
	if bits := rsaPub.N.BitLen(); bits < 2048 || bits > 4096 {
		return nil, errBadAttestation("its public_key is a %d-bit RSA key, not 2048 to 4096 bits", bits)
	}
	skid := sha256.Sum256(res.PublicKey)
	return &recipient{pub: rsaPub, subjectKeyID: skid[:], pcrs: maps.Clone(res.PCRs)}, nil
}

// context adds the recipient's condition keys to ctx:
// kms:RecipientAttestation:ImageSha384 (PCR0) and
// kms:RecipientAttestation:PCR<n> for every PCR of the document, in
// lower-case hex.
func (rc *recipient) context(ctx map[string]string) {
	if rc == nil {
		return
	}
	for i, v := range rc.pcrs {
		ctx[keyPCRPrefix+strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	if pcr0, ok := rc.pcrs[0]; ok {
		ctx[keyImageSHA384] = hex.EncodeToString(pcr0)
	}
}

// envelope returns plaintext as KMS returns it to a recipient: a CMS
// EnvelopedData (see marshalEnvelope), its content encrypted with
// AES-256-CBC under a fresh key and IV, the key encrypted to the
// recipient's public key with RSAES-OAEP (SHA-256, MGF1 with SHA-256, empty
// label).
func (rc *recipient) envelope(plaintext []byte) ([]byte, error) {
	cek := make([]byte, 32)
	defer clear(cek)
	iv := make([]byte, aes.BlockSize)
	rand.Read(cek)
	rand.Read(iv)
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("kmssim: envelope: %w", err)
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	ct := make([]byte, len(plaintext)+pad)
	copy(ct, plaintext)
	for i := len(plaintext); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rc.pub, cek, nil)
	if err != nil {
		return nil, fmt.Errorf("kmssim: envelope: %w", err)
	}
	return marshalEnvelope(rc.subjectKeyID, ek, iv, ct), nil
}

// DER encodings of the object identifiers and algorithm identifiers of
// the envelope.
var (
	derOIDEnvelopedData = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03} // 1.2.840.113549.1.7.3
	derOIDData          = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01} // 1.2.840.113549.1.7.1
	derOIDRSAESOAEP     = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07} // 1.2.840.113549.1.1.7
	derOIDMGF1          = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08} // 1.2.840.113549.1.1.8
	derOIDSHA256        = []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01} // 2.16.840.1.101.3.4.2.1
	derOIDAES256CBC     = []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a} // 2.16.840.1.101.3.4.1.42
	derNull             = []byte{0x05, 0x00}
	derVersion2         = []byte{0x02, 0x01, 0x02}
)

// BER identifier octets.
const (
	tagOctetString = 0x04
	tagSequence    = 0x30
	tagSet         = 0x31
	tagContext0    = 0xa0 // [0], constructed
	tagContext1    = 0xa1 // [1], constructed
	tagContext0Raw = 0x80 // [0] IMPLICIT, primitive
)

// definite encodes one element with a definite length in DER's shortest
// form.
func definite(tag byte, children ...[]byte) []byte {
	n := 0
	for _, c := range children {
		n += len(c)
	}
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	for _, c := range children {
		out = append(out, c...)
	}
	return out
}

// indefinite encodes one constructed element with an indefinite length,
// ended by the end-of-contents octets.
func indefinite(tag byte, children ...[]byte) []byte {
	out := []byte{tag, 0x80}
	for _, c := range children {
		out = append(out, c...)
	}
	return append(out, 0x00, 0x00)
}

// marshalEnvelope encodes a CMS (RFC 5652) ContentInfo holding an
// EnvelopedData in the BER that KMS writes (byte for byte the layout of
// the real CiphertextForRecipient in testdata/aws/kms): indefinite
// lengths on ContentInfo, its [0], EnvelopedData, EncryptedContentInfo and
// the encrypted content, definite ones inside the recipient info.
//
//	ContentInfo { id-envelopedData, [0] EnvelopedData {
//	  version 2,
//	  SET { KeyTransRecipientInfo { version 2, [0] subjectKeyIdentifier,
//	    { id-RSAES-OAEP, { [0] { sha-256, NULL }, [1] { id-mgf1, { sha-256, NULL } } } },
//	    encryptedKey } },
//	  EncryptedContentInfo { id-data, { aes256-CBC, IV },
//	    [0] { OCTET STRING ciphertext } } } }
func marshalEnvelope(subjectKeyID, encryptedKey, iv, ciphertext []byte) []byte {
	sha256ID := definite(tagSequence, derOIDSHA256, derNull)
	oaep := definite(tagSequence, derOIDRSAESOAEP,
		definite(tagSequence,
			definite(tagContext0, sha256ID),
			definite(tagContext1, definite(tagSequence, derOIDMGF1, sha256ID))))
	ktri := definite(tagSequence, derVersion2,
		definite(tagContext0Raw, subjectKeyID),
		oaep,
		definite(tagOctetString, encryptedKey))
	eci := indefinite(tagSequence, derOIDData,
		definite(tagSequence, derOIDAES256CBC, definite(tagOctetString, iv)),
		indefinite(tagContext0, definite(tagOctetString, ciphertext)))
	ed := indefinite(tagSequence, derVersion2, definite(tagSet, ktri), eci)
	return indefinite(tagSequence, derOIDEnvelopedData, indefinite(tagContext0, ed))
}

// measurement returns the request's image measurement (PCR0, lower-case
// hex) for a denial's details, or "" without a Recipient.
func (rc *recipient) measurement() string {
	if rc == nil {
		return ""
	}
	if pcr0, ok := rc.pcrs[0]; ok {
		return hex.EncodeToString(pcr0)
	}
	return ""
}

var _ json.Unmarshaler = (*recipientInfo)(nil)
