// Package nsmsim is a simulated Nitro Security Module, for `nitrosign dev`
// and the tests: machines without Nitro hardware that must still run the
// real enclave binary, have it attested, and have the simulated KMS release
// keys only to the image it measured.
//
// It is never linked into the enclave binary (the dependency test in
// cmd/nitrosign-enclave forbids every *sim package): an enclave reaches it
// only over the vsock simulator, through nsm.DialRemote, when its measured
// command line says "-nsm vsock:CID:PORT". See package nsm for why that is
// safe.
//
// A [Server] is an nsm.Device (for tests in one process) and serves the
// remote protocol of package nsm on any net.Listener (the dev stack listens
// on the vsock simulator at the parent's CID). [ServeConn], the protocol's
// server half, serves any nsm.Device on one connection; it is here rather
// than in package nsm so that the enclave binary, which links nsm, does not
// link it. Both halves use the wire format of package nsmwire.
//
// # Documents
//
// Documents have exactly the shape of AWS's, as in the real documents of
// testdata/aws/nitro (a copy is in testdata/), so that a verifier that
// accepts the simulator's documents has parsed the real format:
//
//   - an untagged COSE_Sign1 array (AWS does not use tag 18): the protected
//     header as the byte string of {1: -35} (ES384), an empty unprotected
//     map, the payload as a byte string, and a 96-byte signature r‖s;
//   - the signature is ECDSA P-384 with SHA-384 over the Sig_structure:
//     the array of "Signature1", the protected header, an empty byte
//     string (no external data) and the payload;
//   - the payload is a map with text keys in AWS's order (not sorted):
//     module_id, digest ("SHA384"), timestamp (milliseconds since the
//     epoch), pcrs (a map of the 16 indexes 0..15, ascending, to 48-byte
//     values), certificate (DER), cabundle (DER, root first, then each
//     intermediate down to the leaf's issuer), public_key, user_data,
//     nonce; a field the request left empty is null, as AWS writes it.
//
// # Certificates
//
// The test CA is shaped like AWS's: a self-signed P-384 root valid 30
// years; three intermediates as AWS's regional (20 days, path length 2),
// zonal (6 days, path length 1) and instance (1 day, path length 0)
// certificates; and a leaf valid 3 hours (CA false, key usage digital
// signature and non-repudiation) that signs the documents. All signatures
// are ECDSA with SHA-384. The leaf is re-issued, with a new key, when less
// than 5 minutes of its validity remain at an attestation; an intermediate
// is re-issued (same key and name) when it would not outlive the new leaf.
// The root and intermediate keys, the serial numbers and the names are
// drawn from Options.Rand (at [New], and at each issue for the leaf keys),
// so a fixed Rand gives the same keys, names and serials every time (not
// the same certificate bytes: Go's ECDSA signatures are always randomized);
// the names say "nsmsim" and "not AWS". [Server.RootPEM] is the root the
// dev stack writes to DIR/nsm-root.pem for verifiers and the simulated KMS.
//
// # PCRs
//
// The simulator measures what the dev stack launches: the enclave binary
// file and the genesis configuration the enclave reads (the genesis admin
// set is part of the image on Nitro, so it must be part of PCR0 here).
// With b = SHA-384(binary file bytes) and g = SHA-384(genesis file bytes):
//
//	PCR0 = SHA-384(b ‖ g)       the whole image: change either file, and PCR0 changes
//	PCR1 = SHA-384("nitrosign nsmsim: kernel and bootstrap v1")
//	                            a constant: on AWS, PCR1 measures the kernel and
//	                            boot ramdisk, the same for every image of one
//	                            nitro-cli version
//	PCR2 = b                    the application alone
//	PCR3..PCR15 = 48 zero bytes
//
// ([MeasureImage] returns PCR0; [Measure] all three.) In debug mode
// (Options.Debug), PCR0, PCR1 and PCR2 are all zero, as AWS reports them
// for an enclave started with --debug-mode; verifiers refuse such documents
// unless told otherwise.
//
// Unlike a real enclave image file, the simulator does not measure the
// enclave's command line: the dev stack chooses it.
//
// # Randomness
//
// Read, and the remote random requests, draw from crypto/rand.
package nsmsim
