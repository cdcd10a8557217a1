package attestation

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Limits of the parser. The AWS documents in testdata/aws/nitro are 4.7
// to 7.4 KiB: a 5-byte protected header, an empty unprotected header, the
// payload (16 PCRs of 48 bytes, a 640-byte leaf certificate, a bundle of 4
// certificates of about 700 bytes, and public_key, user_data and nonce of up
// to 1024 bytes each) and a 96-byte signature.
const (
	// MaxDocumentSize is the largest document [Parse] and [Verify] accept,
	// in bytes of CBOR: 16 KiB, as the enclave protocol allows (proto's
	// MaxAttestationLen). It is checked before anything else.
	MaxDocumentSize = 16 << 10

	// maxCABundle is the most certificates a cabundle may hold. AWS issues
	// 4: the root, a regional, a zonal and an instance CA.
	maxCABundle = 8
	// maxCertificateSize is the largest certificate, in bytes of DER
	// (AWS specification: cert = bytes .size (1..1024)).
	maxCertificateSize = 1024
	// maxPCRs is the most PCRs a document may hold (indexes 0..31).
	maxPCRs = 32
	// maxUserDataSize is the largest public_key, user_data or nonce
	// (AWS specification: user_data = bytes .size (0..1024)).
	maxUserDataSize = 1024
	// signatureSize is the size of an ES384 signature: r and s, 48 bytes
	// each, big-endian.
	signatureSize = 96
)

// protectedES384 is the one protected header accepted: the CBOR map
// {1: -35}, that is {alg: ES384}, as AWS encodes it.
var protectedES384 = []byte{0xa1, 0x01, 0x38, 0x22}

// Document is a parsed attestation document: the COSE_Sign1 envelope and the
// fields of its payload. A Document from [Parse] is well formed, not
// verified: nothing in it may be trusted before [Verify] accepts it.
// Its byte slices are its own (Parse copies its input).
type Document struct {
	// Protected is the protected header, as signed: always {1: -35}.
	Protected []byte
	// Payload is the CBOR payload, as signed.
	Payload []byte
	// Signature is the ES384 signature, r || s.
	Signature []byte

	// ModuleID identifies the issuing Nitro hypervisor module.
	ModuleID string
	// Digest is the digest of the PCRs: always "SHA384".
	Digest string
	// Timestamp is when the document was made, in milliseconds since the
	// Unix epoch (UTC).
	Timestamp uint64
	// PCRs maps PCR indexes (0..31) to their values (32, 48 or 64 bytes).
	PCRs map[int][]byte
	// Certificate is the DER leaf certificate whose key signed the document.
	Certificate []byte
	// CABundle holds the DER certificates that issued Certificate, in AWS
	// order: CABundle[0] is the root, each next certificate is issued by
	// the one before it, and the last one issued Certificate.
	CABundle [][]byte
	// PublicKey, UserData and Nonce are the optional fields, nil when the
	// document leaves them out or holds null (as AWS encodes an absent
	// field); a present empty byte string is an empty, non-nil slice.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte
}

// Time returns the document's timestamp as a time.Time in UTC.
func (d *Document) Time() time.Time {
	return time.UnixMilli(int64(d.Timestamp)).UTC()
}

// Decode returns the CBOR bytes of an attestation document given either as
// raw CBOR or as base64 text (standard alphabet, with or without padding,
// surrounding whitespace ignored), as the AWS CLI and SDKs print documents.
// Input that starts with a byte of 0x80 or more is raw CBOR (a COSE_Sign1
// array starts with 0x84, and base64 text is ASCII); anything else must be
// base64. Decode does not parse the document: pass the result to [Parse] or
// [Verify].
func Decode(input []byte) ([]byte, error) {
	if len(input) > 0 && input[0] >= 0x80 {
		return input, nil
	}
	text := bytes.TrimSpace(input)
	if len(text) == 0 {
		return nil, errors.New("attestation: empty document")
	}
	// Room for the base64 text of the largest document, wrapped in lines.
	if len(text) > 2*MaxDocumentSize {
		return nil, fmt.Errorf("attestation: base64 document of %d bytes is longer than %d", len(text), 2*MaxDocumentSize)
	}
	enc := base64.StdEncoding
	if text[len(text)-1] != '=' {
		enc = base64.RawStdEncoding
	}
	doc := make([]byte, enc.DecodedLen(len(text)))
	n, err := enc.Strict().Decode(doc, text)
	if err != nil {
		return nil, fmt.Errorf("attestation: document is neither CBOR nor base64: %v", err)
	}
	return doc[:n], nil
}

// Parse parses an attestation document, raw CBOR, strictly: the size cap
// first, then the COSE_Sign1 envelope, then the payload, as AWS specifies
// and emits them (Nitro Enclaves attestation process, section 2.2, and the
// aws-nitro-enclaves-nsm-api AttestationDoc):
//
//   - at most [MaxDocumentSize] bytes;
//   - CBOR items in their shortest form, with definite lengths, no tags,
//     no floats or simple values other than null where allowed, and no
//     bytes after the document or after the payload;
//   - an untagged array of 4: the protected header, a byte string holding
//     exactly {1: -35} (ES384); the unprotected header, an empty map; the
//     payload, a non-empty byte string; the signature, a byte string of 96
//     bytes;
//   - the payload, a map of text keys, each at most once, no others:
//     module_id (non-empty UTF-8 text), digest ("SHA384"), timestamp
//     (unsigned integer, milliseconds, 1..2^63-1), pcrs (a map of 1 to 32
//     entries from an index 0..31 to a byte string of 32, 48 or 64 bytes),
//     certificate (a byte string of 1..1024 bytes), cabundle (an array of
//     1 to 8 byte strings of 1..1024 bytes each), and optionally public_key,
//     user_data and nonce (each null or a byte string of 0..1024 bytes).
//
// Parse does not look inside the certificates and checks no signature: see
// [Verify]. Errors are [*CheckError] values for CheckSize, CheckCOSE or
// CheckPayload.
func Parse(doc []byte) (*Document, error) {
	if len(doc) > MaxDocumentSize {
		return nil, checkErrorf(CheckSize, "document of %d bytes is larger than %d", len(doc), MaxDocumentSize)
	}
	d := new(Document)
	r := &cborReader{b: bytes.Clone(doc)}
	if err := d.parseCOSE(r); err != nil {
		return nil, &CheckError{Check: CheckCOSE, Err: err}
	}
	if err := d.parsePayload(&cborReader{b: d.Payload}); err != nil {
		return nil, &CheckError{Check: CheckPayload, Err: err}
	}
	return d, nil
}

// parseCOSE reads the COSE_Sign1 envelope into d.
func (d *Document) parseCOSE(r *cborReader) error {
	if len(r.b) == 0 {
		return errors.New("empty document")
	}
	major, n, err := r.head()
	if err != nil {
		return err
	}
	if major == majorTag {
		return fmt.Errorf("tag %d: a COSE_Sign1 from AWS is untagged", n)
	}
	if major != majorArray || n != 4 {
		return fmt.Errorf("want an array of 4 items (COSE_Sign1), got %s", describe(major, n))
	}
	if d.Protected, err = r.bytes("protected header", 0, MaxDocumentSize); err != nil {
		return err
	}
	if !bytes.Equal(d.Protected, protectedES384) {
		return fmt.Errorf("protected header is %x, want exactly {1: -35} (ES384), %x", d.Protected, protectedES384)
	}
	major, n, err = r.head()
	if err != nil {
		return err
	}
	if major != majorMap || n != 0 {
		return fmt.Errorf("unprotected header: want an empty map, got %s", describe(major, n))
	}
	if d.Payload, err = r.bytes("payload", 1, MaxDocumentSize); err != nil {
		return err
	}
	if d.Signature, err = r.bytes("signature", signatureSize, signatureSize); err != nil {
		return err
	}
	return r.end("document")
}

// Payload field names, as AWS spells them.
const (
	fieldModuleID    = "module_id"
	fieldDigest      = "digest"
	fieldTimestamp   = "timestamp"
	fieldPCRs        = "pcrs"
	fieldCertificate = "certificate"
	fieldCABundle    = "cabundle"
	fieldPublicKey   = "public_key"
	fieldUserData    = "user_data"
	fieldNonce       = "nonce"
)

// payloadFields lists the fields of the payload, required ones first.
var payloadFields = [...]struct {
	name     string
	required bool
}{
	{fieldModuleID, true}, {fieldDigest, true}, {fieldTimestamp, true}, {fieldPCRs, true},
	{fieldCertificate, true}, {fieldCABundle, true},
	{fieldPublicKey, false}, {fieldUserData, false}, {fieldNonce, false},
}

// parsePayload reads the attestation document map in r into d.
func (d *Document) parsePayload(r *cborReader) error {
	major, n, err := r.head()
	if err != nil {
		return err
	}
	if major != majorMap {
		return fmt.Errorf("want a map, got %s", describe(major, n))
	}
	if n > uint64(len(payloadFields)) {
		return fmt.Errorf("map of %d entries: the payload has at most %d fields", n, len(payloadFields))
	}
	seen := map[string]bool{}
	for range n {
		key, err := r.text("field name")
		if err != nil {
			return err
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		if err := d.parseField(r, key); err != nil {
			return err
		}
	}
	for _, f := range payloadFields {
		if f.required && !seen[f.name] {
			return fmt.Errorf("missing required field %q", f.name)
		}
	}
	return r.end("payload")
}

// parseField reads the value of the payload field key into d.
func (d *Document) parseField(r *cborReader, key string) error {
	var err error
	switch key {
	case fieldModuleID:
		if d.ModuleID, err = r.text(key); err == nil && d.ModuleID == "" {
			err = errors.New("module_id is empty")
		}
	case fieldDigest:
		if d.Digest, err = r.text(key); err == nil && d.Digest != "SHA384" {
			err = fmt.Errorf("digest is %q, want \"SHA384\"", d.Digest)
		}
	case fieldTimestamp:
		d.Timestamp, err = r.uint(key)
		if err == nil && (d.Timestamp == 0 || d.Timestamp > math.MaxInt64) {
			err = fmt.Errorf("timestamp %d is out of range 1..2^63-1", d.Timestamp)
		}
	case fieldPCRs:
		d.PCRs, err = parsePCRs(r)
	case fieldCertificate:
		d.Certificate, err = r.bytes(key, 1, maxCertificateSize)
	case fieldCABundle:
		d.CABundle, err = parseCABundle(r)
	case fieldPublicKey:
		d.PublicKey, err = r.optionalBytes(key, maxUserDataSize)
	case fieldUserData:
		d.UserData, err = r.optionalBytes(key, maxUserDataSize)
	case fieldNonce:
		d.Nonce, err = r.optionalBytes(key, maxUserDataSize)
	default:
		err = fmt.Errorf("unknown field %q", key)
	}
	return err
}

// parsePCRs reads the pcrs map.
func parsePCRs(r *cborReader) (map[int][]byte, error) {
	major, n, err := r.head()
	if err != nil {
		return nil, err
	}
	if major != majorMap {
		return nil, fmt.Errorf("pcrs: want a map, got %s", describe(major, n))
	}
	if n < 1 || n > maxPCRs {
		return nil, fmt.Errorf("pcrs: map of %d entries, want 1..%d", n, maxPCRs)
	}
	pcrs := make(map[int][]byte, n)
	for range n {
		index, err := r.uint("pcr index")
		if err != nil {
			return nil, err
		}
		if index >= maxPCRs {
			return nil, fmt.Errorf("pcrs: index %d is out of range 0..%d", index, maxPCRs-1)
		}
		if _, ok := pcrs[int(index)]; ok {
			return nil, fmt.Errorf("pcrs: duplicate index %d", index)
		}
		value, err := r.bytes(fmt.Sprintf("pcr%d", index), 0, MaxDocumentSize)
		if err != nil {
			return nil, err
		}
		if len(value) != 32 && len(value) != 48 && len(value) != 64 {
			return nil, fmt.Errorf("pcr%d is %d bytes, want 32, 48 or 64", index, len(value))
		}
		pcrs[int(index)] = value
	}
	return pcrs, nil
}

// parseCABundle reads the cabundle array.
func parseCABundle(r *cborReader) ([][]byte, error) {
	major, n, err := r.head()
	if err != nil {
		return nil, err
	}
	if major != majorArray {
		return nil, fmt.Errorf("cabundle: want an array, got %s", describe(major, n))
	}
	if n < 1 || n > maxCABundle {
		return nil, fmt.Errorf("cabundle: %d certificates, want 1..%d", n, maxCABundle)
	}
	bundle := make([][]byte, 0, n)
	for i := range n {
		cert, err := r.bytes(fmt.Sprintf("cabundle[%d]", i), 1, maxCertificateSize)
		if err != nil {
			return nil, err
		}
		bundle = append(bundle, cert)
	}
	return bundle, nil
}

// CBOR major types (RFC 8949, section 3.1).
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7 // simple values and floats
)

// simpleNull is the argument of null, the simple value 22.
const simpleNull = 22

// cborReader reads CBOR items from b in the strict subset Parse accepts:
// definite lengths and shortest-form arguments only. It decodes only the
// shapes the attestation document has, so nesting is bounded by the
// schema (the pcrs map, in the payload map, in a byte string, in the
// COSE_Sign1 array), and every length is checked against the bytes left
// before anything is allocated.
type cborReader struct {
	b   []byte
	off int
}

var errTruncated = errors.New("truncated CBOR item")

// head reads the initial byte and argument of the next item. For majors 0
// to 6 the argument is the value, length or count, in its shortest form;
// for major 7 only null is accepted.
func (r *cborReader) head() (major byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, errTruncated
	}
	start := r.off
	ib := r.b[r.off]
	r.off++
	major, info := ib>>5, ib&0x1f
	switch {
	case major == majorSimple && info == simpleNull:
		return major, simpleNull, nil
	case major == majorSimple:
		return 0, 0, fmt.Errorf("simple value or float (0x%02x) at offset %d", ib, start)
	case info < 24:
		return major, uint64(info), nil
	case info == 31:
		return 0, 0, fmt.Errorf("indefinite-length item (0x%02x) at offset %d", ib, start)
	case info > 27:
		return 0, 0, fmt.Errorf("reserved additional information (0x%02x) at offset %d", ib, start)
	}
	size := 1 << (info - 24) // 1, 2, 4 or 8 bytes
	if len(r.b)-r.off < size {
		return 0, 0, errTruncated
	}
	for _, b := range r.b[r.off : r.off+size] {
		arg = arg<<8 | uint64(b)
	}
	r.off += size
	// The shortest form: an argument below 24 fits in the initial byte,
	// one below 2^8 in one byte, and so on.
	if shortest := [...]uint64{24, 1 << 8, 1 << 16, 1 << 32}[info-24]; arg < shortest {
		return 0, 0, fmt.Errorf("argument %d not in its shortest form at offset %d", arg, start)
	}
	return major, arg, nil
}

// describe names an item for error messages.
func describe(major byte, arg uint64) string {
	switch major {
	case majorUint:
		return "an unsigned integer"
	case majorNegInt:
		return "a negative integer"
	case majorBytes:
		return fmt.Sprintf("a byte string of %d bytes", arg)
	case majorText:
		return fmt.Sprintf("a text string of %d bytes", arg)
	case majorArray:
		return fmt.Sprintf("an array of %d items", arg)
	case majorMap:
		return fmt.Sprintf("a map of %d entries", arg)
	case majorTag:
		return fmt.Sprintf("tag %d", arg)
	default:
		return "null"
	}
}

// contents reads the contents of a byte or text string of n bytes.
func (r *cborReader) contents(what string, n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.off) {
		return nil, fmt.Errorf("%s: %d bytes run past the end", what, n)
	}
	b := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// bytes reads a byte string of lo..hi bytes.
func (r *cborReader) bytes(what string, lo, hi int) ([]byte, error) {
	major, n, err := r.head()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return r.bytesAfter(what, major, n, lo, hi)
}

// optionalBytes reads null, returned as nil, or a byte string of 0..hi
// bytes.
func (r *cborReader) optionalBytes(what string, hi int) ([]byte, error) {
	major, n, err := r.head()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if major == majorSimple {
		return nil, nil // null
	}
	return r.bytesAfter(what, major, n, 0, hi)
}

// bytesAfter checks that the item whose head was read is a byte string of
// lo..hi bytes, and reads it.
func (r *cborReader) bytesAfter(what string, major byte, n uint64, lo, hi int) ([]byte, error) {
	if major != majorBytes {
		return nil, fmt.Errorf("%s: want a byte string, got %s", what, describe(major, n))
	}
	if n < uint64(lo) || n > uint64(hi) {
		if lo == hi {
			return nil, fmt.Errorf("%s is %d bytes, want %d", what, n, lo)
		}
		return nil, fmt.Errorf("%s is %d bytes, want %d..%d", what, n, lo, hi)
	}
	return r.contents(what, n)
}

// text reads a text string, which must be valid UTF-8.
func (r *cborReader) text(what string) (string, error) {
	major, n, err := r.head()
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if major != majorText {
		return "", fmt.Errorf("%s: want a text string, got %s", what, describe(major, n))
	}
	b, err := r.contents(what, n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s: text is not valid UTF-8", what)
	}
	return string(b), nil
}

// uint reads an unsigned integer.
func (r *cborReader) uint(what string) (uint64, error) {
	major, n, err := r.head()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if major != majorUint {
		return 0, fmt.Errorf("%s: want an unsigned integer, got %s", what, describe(major, n))
	}
	return n, nil
}

// end reports an error if bytes are left after the item that was read.
func (r *cborReader) end(what string) error {
	if r.off != len(r.b) {
		return fmt.Errorf("%d bytes after the %s", len(r.b)-r.off, what)
	}
	return nil
}
