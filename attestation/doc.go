// Package attestation verifies AWS Nitro Enclaves attestation documents, so
// that whoever talks to a nitrosign enclave can answer from the document
// alone: is this real Nitro hardware, running the image we reviewed, holding
// the keys and enforcing the policy we expect?
//
// It works in three stages, each a step of [Verify]: [Parse] reads the
// document strictly and checks nothing cryptographic; authentication checks
// the COSE signature and the certificate chain to a pinned root at a given
// time; validation compares what the authenticated document says with what
// the caller expects (PCRs, nonce, debug mode, user_data). Only data that
// passed authentication is validated. [Decode] accepts a document in base64
// as well, as the AWS tools print it.
//
//	doc, err := attestation.Decode(input)
//	...
//	res, err := attestation.Verify(doc, attestation.Options{
//		Time:  time.Now(),
//		PCRs:  map[int][]byte{0: pcr0},
//		Nonce: nonce,
//		UserData: func(b []byte) error { ... },
//	})
//	if err != nil {
//		return err // "attestation: <check>: <reason>", one line
//	}
//	// res.PublicKey, res.UserData, res.Checks ...
//
// # What is checked, and why
//
// An attestation document is a COSE_Sign1 whose payload the Nitro
// hypervisor's NSM signs with a short-lived leaf key, certified by a chain
// (instance, zonal and regional CAs) that ends at the AWS Nitro Enclaves
// root G1. The verifier checks, in the order listed in [Verify]'s
// documentation, each under the name a [*CheckError] gives it:
//
//   - the document's encoding (size, cose, payload): a signed document is
//     still untrusted input, and the signature covers only the payload, so
//     the whole document is parsed strictly before any of it is used, with
//     a size cap checked first and limits on every field (see [Parse]);
//   - that AWS signed it (leaf, signature, certificates, root, validity,
//     chain): the ES384 signature by the leaf key, and a chain from the
//     leaf through the bundle, in the order AWS sends it, to a root pinned
//     byte for byte ([AWSRootG1], whose SHA-256 fingerprint
//     [AWSRootG1Fingerprint] is checked when the package is initialised),
//     with every certificate valid at [Options.Time], the key usages and
//     CA constraints AWS issues, and crypto/x509's own path validation in
//     agreement. Time is an option, never the clock, so that recorded
//     documents can be verified at the time they were made;
//   - what it attests (pcrs, nonce, debug, user data): the measurements of
//     the image, the nonce that makes the document fresh, that the enclave
//     does not run in debug mode (where the parent instance can read its
//     memory and the PCRs are zeros), and, through [Options.UserData], the
//     binding of user_data to the enclave's keys, policy and audit head.
//
// The leaf key must be ECDSA P-384 before it is used for anything: other
// keys and curves are refused by name. github.com/hf/nitrite, which the
// tests use as a cross-check, panics on a document whose leaf key is P-521,
// and has no limits on what it parses; this package does not import it.
//
// # What is not checked
//
//   - Revocation. The AWS attestation process says not to use CRLs, and
//     to disable revocation checking when validating the chain. In the
//     real documents, the regional and zonal CA certificates name CRL
//     distribution points (on S3), but the instance CA and the leaf, which
//     live for a day and for three hours, name none; fetching lists would
//     also put the network inside verification. The short lifetimes, with
//     [Options.Time], bound how long a compromised leaf or instance CA can
//     be used.
//   - Freshness beyond the nonce and [Options.Time]: a document without a
//     nonce can be replayed for as long as its certificates are valid
//     (three hours for the leaf). Callers that need a bound compare
//     [Result.Time] with their clock, or better, send a nonce.
//   - The meaning of public_key and user_data, which belongs to the
//     protocol between the enclave and its verifier: [Verify] returns them,
//     and the [Options.UserData] hook checks the binding.
//   - PCRs that [Options.PCRs] does not name, and the module_id, which are
//     returned as they are.
//
// # Pinning PCRs
//
// Without [Options.PCRs], a document only proves that some enclave on real
// Nitro hardware made it: any image, anyone's. Pin at least PCR0, the
// SHA-384 measurement of the whole enclave image file, which
// `nitro-cli build-enclave` and `nitro-cli describe-eif` print (48 bytes,
// hex); nitrosign's enclave build is reproducible so that a reviewer can
// rebuild the image and get the same PCR0. PCR1 (kernel and boot ramdisk)
// and PCR2 (the application) are covered by PCR0 but can be pinned too;
// PCR3 (the parent instance's IAM role) and PCR8 (the certificate that
// signed the image, for signed images) pin the deployment rather than the
// code; PCR4 (the parent instance ID) is rarely worth pinning. Under
// simulation, the simulated NSM's PCR0 is the SHA-384 of the enclave binary
// with its genesis configuration, and its documents chain to a test root
// passed in [Options.Roots].
//
// # Strict encoding
//
// [Parse] accepts only the subset of CBOR that AWS emits: items in their
// shortest form, definite lengths, no tags (AWS sends its COSE_Sign1
// untagged), no floats, no duplicate or unknown fields, no trailing bytes,
// and only the shape of the attestation document, so nesting is bounded by
// construction. A document is at most [MaxDocumentSize] bytes; the AWS
// documents in testdata/aws/nitro are 4.7 to 7.4 KiB. public_key,
// user_data and nonce may be absent, null (as AWS encodes a field the
// enclave did not set) or a byte string of at most 1024 bytes.
package attestation
