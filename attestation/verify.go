package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"
)

// The checks of [Verify], in the order it runs them. A [*CheckError] names
// the one that failed; [Result.Checks] lists the ones that passed.
const (
	CheckOptions      = "options"      // the Options are usable
	CheckSize         = "size"         // at most MaxDocumentSize bytes
	CheckCOSE         = "cose"         // the COSE_Sign1 envelope
	CheckPayload      = "payload"      // the payload fields
	CheckLeaf         = "leaf"         // the leaf certificate and its key
	CheckSignature    = "signature"    // the COSE signature by the leaf key
	CheckCertificates = "certificates" // every certificate of the bundle
	CheckRoot         = "root"         // the bundle starts at a pinned root
	CheckValidity     = "validity"     // every certificate valid at Options.Time
	CheckChain        = "chain"        // root → bundle → leaf, with constraints
	CheckPCRs         = "pcrs"         // the PCRs of Options.PCRs
	CheckNonce        = "nonce"        // Options.Nonce
	CheckDebug        = "debug"        // not a debug-mode enclave
	CheckUserData     = "user data"    // Options.UserData accepts user_data
)

// CheckError is the error of [Parse] and [Verify]: the name of the check
// that failed (one of the Check constants) and why. Its message is one line:
// "attestation: <check>: <reason>".
type CheckError struct {
	Check string
	Err   error
}

func (e *CheckError) Error() string { return "attestation: " + e.Check + ": " + e.Err.Error() }

func (e *CheckError) Unwrap() error { return e.Err }

func checkErrorf(check, format string, args ...any) *CheckError {
	return &CheckError{Check: check, Err: fmt.Errorf(format, args...)}
}

// Options are what the verifier of a document expects of it.
type Options struct {
	// Time is the time at which every certificate must be valid. It is
	// required: Verify never reads the clock. Pass time.Now() to verify a
	// fresh document.
	Time time.Time

	// Roots are the trusted roots: the document's cabundle[0] must be one
	// of them, byte for byte. Nil means the AWS Nitro Enclaves root G1
	// ([AWSRootG1]); a test CA's root in simulation.
	Roots []*x509.Certificate

	// PCRs maps PCR indexes (0..31) to the values they must have: each must
	// be in the document and equal. Pin at least PCR0 (the enclave image);
	// see the package documentation.
	PCRs map[int][]byte

	// Nonce, when not nil, must equal the document's nonce. It must not be
	// empty.
	Nonce []byte

	// AllowDebug accepts documents from debug-mode enclaves, whose PCR0,
	// PCR1 and PCR2 are all zeros and whose memory the parent instance can
	// read. Only for development.
	AllowDebug bool

	// UserData, when not nil, is called with the document's user_data (nil
	// when absent), after every other check has passed; an error refuses
	// the document. It is where the binding of user_data to the enclave's
	// keys, policy and audit head is checked.
	UserData func(userData []byte) error
}

// Result is a verified attestation document: what it attests, and how.
type Result struct {
	ModuleID string         // the Nitro hypervisor module that issued it
	Time     time.Time      // when it was made (its timestamp, UTC)
	PCRs     map[int][]byte // every PCR it holds, not only the pinned ones

	// PublicKey, UserData and Nonce are nil when the document leaves them
	// out or holds null.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte

	// Debug reports a debug-mode enclave (PCR0, PCR1 or PCR2 all zeros or
	// absent), accepted only with Options.AllowDebug.
	Debug bool

	// Chain is the verified chain, leaf first and the pinned root last.
	Chain []*x509.Certificate

	// Checks names the checks that passed, in order (the Check constants):
	// CheckPCRs, CheckNonce and CheckUserData only when the Options asked
	// for them, and CheckDebug only when the enclave is not in debug mode.
	Checks []string
}

// Verify parses, authenticates and validates the attestation document doc
// (raw CBOR; see [Decode] for base64), and returns what it attests. It runs
// these checks, in this order, and stops at the first that fails, returning
// a [*CheckError] that names it:
//
// Options:
//
//  1. options: opts.Time is set; opts.Roots, if not nil, holds at least one
//     certificate; every index of opts.PCRs is 0..31 and every value 32, 48
//     or 64 bytes; opts.Nonce, if not nil, is 1..1024 bytes.
//
// Parsing, as [Parse] does it:
//
//  2. size: doc is at most [MaxDocumentSize] bytes, before anything else.
//  3. cose: doc is an untagged COSE_Sign1 in strict CBOR (shortest forms,
//     definite lengths, no trailing bytes): the protected header exactly
//     {1: -35} (ES384), an empty unprotected header, a non-empty payload, a
//     96-byte signature.
//  4. payload: the payload is the AWS attestation document map, with no
//     unknown or duplicate field: module_id, digest "SHA384", timestamp,
//     pcrs, certificate and cabundle present and within the AWS limits;
//     public_key, user_data and nonce absent, null or at most 1024 bytes.
//
// Authentication, with the parsed document:
//
//  5. leaf: the leaf certificate parses (DER) and its key is ECDSA on
//     P-384; any other key type or curve is refused here, before the key is
//     used.
//  6. signature: the signature is a valid ECDSA P-384 signature by the leaf
//     key of the SHA-384 digest of the Sig_structure ["Signature1",
//     protected, external_aad, payload] with an empty external_aad (RFC
//     9052, section 4.4).
//  7. certificates: every cabundle certificate parses (DER); no
//     certificate appears twice; every certificate, leaf included, has an
//     ECDSA P-384 key and is signed with ECDSA-SHA384, as AWS issues them.
//  8. root: cabundle[0] is one of the pinned roots, byte for byte (AWS
//     order: the root first).
//  9. validity: opts.Time is within the validity of every certificate,
//     root and leaf included, and the document's timestamp within the
//     leaf's.
//  10. chain: each certificate is issued by the one before it in the
//     bundle, the leaf by the last one (issuer name equals subject, and the
//     issuer's key verifies the signature); every certificate has basic
//     constraints (critical for CAs) and no unhandled critical extension;
//     every CA is a CA, may sign certificates (keyCertSign) and has no more
//     CAs below it than its path length allows; the leaf is not a CA, has
//     no path length and may sign (digitalSignature); and crypto/x509's
//     path validation from the leaf to that root, at opts.Time, agrees.
//
// Validation, with the authenticated document:
//
//  11. pcrs: every PCR in opts.PCRs is in the document, equal.
//  12. nonce: if opts.Nonce is not nil, the document has a nonce, equal.
//  13. debug: unless opts.AllowDebug, none of PCR0, PCR1 and PCR2 is
//     absent or all zeros (a debug-mode enclave reports all three as
//     zeros).
//  14. user data: if opts.UserData is not nil, it accepts the document's
//     user_data.
//
// Revocation is not checked (see the package documentation), and neither
// is freshness beyond opts.Time and the nonce: a caller that wants a
// document at most a minute old compares [Result.Time] with its clock.
func Verify(doc []byte, opts Options) (*Result, error) {
	return verify(doc, opts, verifyES384)
}

// signatureVerifier reports whether sig (r || s) is a valid signature of
// digest by pub. Verify passes verifyES384; the test that changes every
// byte of the real documents passes a stand-in for most of its variants
// under the race detector, where P-384 is too slow to run some twenty
// thousand times.
type signatureVerifier func(pub *ecdsa.PublicKey, digest, sig []byte) bool

// verifyES384 is the signatureVerifier of Verify: ECDSA with r and s as
// fixed-size big-endian halves of sig.
func verifyES384(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	half := len(sig) / 2
	r := new(big.Int).SetBytes(sig[:half])
	s := new(big.Int).SetBytes(sig[half:])
	return ecdsa.Verify(pub, digest, r, s)
}

// step is one check of Verify: its name, whether it runs, and the check.
type step struct {
	name string
	run  bool
	do   func() error
}

// verifier holds the state of one verification, filled in by its steps.
type verifier struct {
	opts      Options
	verifySig signatureVerifier
	doc       *Document
	leaf      *x509.Certificate
	leafKey   *ecdsa.PublicKey
	bundle    []*x509.Certificate // the parsed cabundle, in AWS order
	debug     bool
}

func verify(doc []byte, opts Options, verifySig signatureVerifier) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, &CheckError{Check: CheckOptions, Err: err}
	}
	d, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	checks := []string{CheckOptions, CheckSize, CheckCOSE, CheckPayload}
	v := &verifier{opts: opts, verifySig: verifySig, doc: d, debug: debugMode(d.PCRs)}
	steps := []step{
		// Authentication.
		{CheckLeaf, true, v.checkLeaf},
		{CheckSignature, true, v.checkSignature},
		{CheckCertificates, true, v.checkCertificates},
		{CheckRoot, true, v.checkRoot},
		{CheckValidity, true, v.checkValidity},
		{CheckChain, true, v.checkChain},
		// Validation: only data that passed authentication gets here.
		{CheckPCRs, len(opts.PCRs) > 0, v.checkPCRs},
		{CheckNonce, opts.Nonce != nil, v.checkNonce},
		{CheckDebug, !(opts.AllowDebug && v.debug), v.checkDebug},
		{CheckUserData, opts.UserData != nil, func() error { return opts.UserData(d.UserData) }},
	}
	for _, s := range steps {
		if !s.run {
			continue
		}
		if err := s.do(); err != nil {
			return nil, &CheckError{Check: s.name, Err: err}
		}
		checks = append(checks, s.name)
	}
	chain := []*x509.Certificate{v.leaf}
	for _, c := range slices.Backward(v.bundle) {
		chain = append(chain, c)
	}
	return &Result{
		ModuleID:  d.ModuleID,
		Time:      d.Time(),
		PCRs:      d.PCRs,
		PublicKey: d.PublicKey,
		UserData:  d.UserData,
		Nonce:     d.Nonce,
		Debug:     v.debug,
		Chain:     chain,
		Checks:    checks,
	}, nil
}

// check reports whether the options can be used.
func (o *Options) check() error {
	if o.Time.IsZero() {
		return errors.New("no time given (Options.Time): the time at which the certificates must be valid is required")
	}
	if o.Roots != nil && len(o.Roots) == 0 {
		return errors.New("no roots in Options.Roots (nil means the AWS root G1)")
	}
	if slices.Contains(o.Roots, nil) {
		return errors.New("a nil certificate in Options.Roots")
	}
	for _, index := range slices.Sorted(maps.Keys(o.PCRs)) {
		if index < 0 || index >= maxPCRs {
			return fmt.Errorf("index %d of Options.PCRs is out of range 0..%d", index, maxPCRs-1)
		}
		if n := len(o.PCRs[index]); n != 32 && n != 48 && n != 64 {
			return fmt.Errorf("pcr%d of Options.PCRs is %d bytes, want 32, 48 or 64", index, n)
		}
	}
	if o.Nonce != nil && (len(o.Nonce) == 0 || len(o.Nonce) > maxUserDataSize) {
		return fmt.Errorf("a nonce (Options.Nonce) of %d bytes, want 1..%d (or nil: no nonce check)", len(o.Nonce), maxUserDataSize)
	}
	return nil
}

func (v *verifier) checkLeaf() error {
	leaf, err := x509.ParseCertificate(v.doc.Certificate)
	if err != nil {
		return fmt.Errorf("leaf certificate: %v", err)
	}
	key, err := p384Key(leaf)
	if err != nil {
		return fmt.Errorf("leaf certificate: %v", err)
	}
	v.leaf, v.leafKey = leaf, key
	return nil
}

// p384Key returns the key of c if it is an ECDSA P-384 key.
func p384Key(c *x509.Certificate) (*ecdsa.PublicKey, error) {
	key, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key is %v, want ECDSA P-384", c.PublicKeyAlgorithm)
	}
	if key.Curve != elliptic.P384() {
		return nil, fmt.Errorf("key is ECDSA on %s, want P-384", key.Curve.Params().Name)
	}
	return key, nil
}

func (v *verifier) checkSignature() error {
	digest := sigStructureDigest(v.doc.Protected, v.doc.Payload)
	if !v.verifySig(v.leafKey, digest, v.doc.Signature) {
		return errors.New("the ES384 signature does not verify with the leaf key")
	}
	return nil
}

// sigStructureDigest returns the SHA-384 digest of the COSE Sig_structure
// of a COSE_Sign1 with the given protected header and payload and an empty
// external_aad: the CBOR array ["Signature1", protected, external_aad,
// payload], external_aad being an empty byte string.
func sigStructureDigest(protected, payload []byte) []byte {
	h := sha512.New384()
	h.Write(appendHead([]byte{0x84}, majorText, uint64(len("Signature1"))))
	h.Write([]byte("Signature1"))
	h.Write(appendHead(nil, majorBytes, uint64(len(protected))))
	h.Write(protected)
	h.Write(appendHead(nil, majorBytes, 0))
	h.Write(appendHead(nil, majorBytes, uint64(len(payload))))
	h.Write(payload)
	return h.Sum(nil)
}

// appendHead appends the head of a CBOR item, in its shortest form.
func appendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major<<5|byte(n))
	case n <= 0xff:
		return append(b, major<<5|24, byte(n))
	case n <= 0xffff:
		return append(b, major<<5|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major<<5|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major<<5|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func (v *verifier) checkCertificates() error {
	for i, der := range v.doc.CABundle {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("cabundle[%d]: %v", i, err)
		}
		v.bundle = append(v.bundle, c)
	}
	all := append(slices.Clip(v.doc.CABundle), v.doc.Certificate)
	for i := range all {
		for j := range i {
			if bytes.Equal(all[i], all[j]) {
				return fmt.Errorf("%s and %s are the same certificate", v.name(j), v.name(i))
			}
		}
	}
	for i, c := range append(slices.Clip(v.bundle), v.leaf) {
		if _, err := p384Key(c); err != nil {
			return fmt.Errorf("%s: %v", v.name(i), err)
		}
		if c.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			return fmt.Errorf("%s is signed with %v, want %v", v.name(i), c.SignatureAlgorithm, x509.ECDSAWithSHA384)
		}
	}
	return nil
}

// name names the certificate at index i of the chain in AWS order: the
// cabundle, then the leaf.
func (v *verifier) name(i int) string {
	if i == len(v.doc.CABundle) {
		return "the leaf certificate"
	}
	return fmt.Sprintf("cabundle[%d]", i)
}

func (v *verifier) checkRoot() error {
	roots := v.opts.Roots
	if roots == nil {
		roots = []*x509.Certificate{awsRootG1}
	}
	for _, root := range roots {
		if bytes.Equal(root.Raw, v.doc.CABundle[0]) {
			return nil
		}
	}
	sum := sha256.Sum256(v.doc.CABundle[0])
	return fmt.Errorf("cabundle[0] (%q, SHA-256 %X) is not a pinned root", v.bundle[0].Subject.CommonName, sum)
}

func (v *verifier) checkValidity() error {
	at := v.opts.Time
	for i, c := range append(slices.Clip(v.bundle), v.leaf) {
		if at.Before(c.NotBefore) {
			return fmt.Errorf("%s is not valid before %s (checked at %s)", v.name(i), stamp(c.NotBefore), stamp(at))
		}
		if at.After(c.NotAfter) {
			return fmt.Errorf("%s expired at %s (checked at %s)", v.name(i), stamp(c.NotAfter), stamp(at))
		}
	}
	if t := v.doc.Time(); t.Before(v.leaf.NotBefore) || t.After(v.leaf.NotAfter) {
		return fmt.Errorf("the document's timestamp %s is outside the leaf certificate's validity, %s to %s",
			stamp(t), stamp(v.leaf.NotBefore), stamp(v.leaf.NotAfter))
	}
	return nil
}

// stamp formats t for error messages.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// oidBasicConstraints is the OID of the basic constraints extension.
var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

func (v *verifier) checkChain() error {
	chain := append(slices.Clip(v.bundle), v.leaf) // root first, in AWS order
	last := len(chain) - 1
	for k := 1; k <= last; k++ {
		child, parent := chain[k], chain[k-1]
		if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
			return fmt.Errorf("%s is issued by %q, not by %s (%q)",
				v.name(k), child.Issuer.CommonName, v.name(k-1), parent.Subject.CommonName)
		}
		if err := child.CheckSignatureFrom(parent); err != nil {
			return fmt.Errorf("%s is not signed by %s: %v", v.name(k), v.name(k-1), err)
		}
	}
	for k, c := range chain {
		if len(c.UnhandledCriticalExtensions) > 0 {
			return fmt.Errorf("%s has an unhandled critical extension %v", v.name(k), c.UnhandledCriticalExtensions[0])
		}
		if !c.BasicConstraintsValid {
			return fmt.Errorf("%s has no basic constraints", v.name(k))
		}
		if k == last {
			break
		}
		if !criticalExtension(c, oidBasicConstraints) {
			return fmt.Errorf("%s has basic constraints that are not critical", v.name(k))
		}
		if !c.IsCA {
			return fmt.Errorf("%s is not a CA", v.name(k))
		}
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return fmt.Errorf("%s may not sign certificates (no keyCertSign key usage)", v.name(k))
		}
		if below := last - 1 - k; c.MaxPathLen >= 0 && below > c.MaxPathLen {
			return fmt.Errorf("%s allows %d CAs below it, the chain has %d", v.name(k), c.MaxPathLen, below)
		}
	}
	leaf := chain[last]
	switch {
	case leaf.IsCA:
		return errors.New("the leaf certificate is a CA")
	case leaf.MaxPathLen >= 0:
		return errors.New("the leaf certificate has a path length constraint")
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return errors.New("the leaf certificate may not sign (no digitalSignature key usage)")
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[0])
	for _, c := range chain[1:last] {
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   v.opts.Time,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("crypto/x509 path validation: %v", err)
	}
	return nil
}

// criticalExtension reports whether c has the extension id, marked
// critical.
func criticalExtension(c *x509.Certificate, id asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(id) {
			return e.Critical
		}
	}
	return false
}

func (v *verifier) checkPCRs() error {
	for _, index := range slices.Sorted(maps.Keys(v.opts.PCRs)) {
		got, ok := v.doc.PCRs[index]
		if !ok {
			return fmt.Errorf("pcr%d is not in the document", index)
		}
		if want := v.opts.PCRs[index]; !bytes.Equal(got, want) {
			return fmt.Errorf("pcr%d is %s, want %s", index, hex.EncodeToString(got), hex.EncodeToString(want))
		}
	}
	return nil
}

func (v *verifier) checkNonce() error {
	if v.doc.Nonce == nil {
		return errors.New("the document has no nonce")
	}
	if !bytes.Equal(v.doc.Nonce, v.opts.Nonce) {
		return fmt.Errorf("the document's nonce (%s) is not the one expected (%s)", short(v.doc.Nonce), short(v.opts.Nonce))
	}
	return nil
}

// short formats b in hex for error messages, at most 16 bytes of it.
func short(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	if len(b) > 16 {
		return fmt.Sprintf("%x… %d bytes", b[:16], len(b))
	}
	return fmt.Sprintf("%x", b)
}

// debugMode reports whether PCR0, PCR1 or PCR2 is absent or all zeros.
func debugMode(pcrs map[int][]byte) bool {
	return debugReason(pcrs) != ""
}

// debugReason says which of PCR0, PCR1 and PCR2 is absent or all zeros.
func debugReason(pcrs map[int][]byte) string {
	for i := range 3 {
		value, ok := pcrs[i]
		if !ok {
			return fmt.Sprintf("pcr%d is absent", i)
		}
		if !slices.ContainsFunc(value, func(b byte) bool { return b != 0 }) {
			return fmt.Sprintf("pcr%d is all zeros", i)
		}
	}
	return ""
}

func (v *verifier) checkDebug() error {
	if reason := debugReason(v.doc.PCRs); reason != "" {
		return fmt.Errorf("%s: a debug-mode enclave, whose memory the parent instance can read (Options.AllowDebug is not set)", reason)
	}
	return nil
}
