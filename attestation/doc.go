// Package attestation will verify AWS Nitro Enclaves attestation documents:
// strict CBOR/COSE_Sign1 parsing with size caps, the ES384 signature, the
// certificate chain to a pinned root (AWS Nitro Enclaves root G1), validity
// at a given time, expected PCRs, the nonce, debug mode, and the binding of
// user_data to the enclave's keys, policy and audit head.
//
// Nothing is implemented here yet: the enclave does not produce attestation
// documents until the NSM seam exists, and no code may rely on this package
// until the verifier and its tests on the real AWS documents in
// shared/testdata/nitro land.
package attestation
