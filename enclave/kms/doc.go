// Package kms is the enclave's side of AWS KMS: the key policy that
// releases the sealing key only to the measured enclave image
// ([KeyPolicy], printed by `nitrosign kms-policy`), and the client that
// uses that key from inside the enclave ([Client]) with a Recipient, so
// that plaintext exists only in the enclave.
//
// # What goes where
//
//   - In the enclave: this package. It makes every TLS connection to KMS
//     itself, signs every request with SigV4, generates the ephemeral RSA
//     key of every operation, has the NSM attest it, and opens KMS's
//     answer (enclave/cms). It is linked into the enclave binary.
//   - On the parent instance: vsock-proxy, which carries the TCP bytes of
//     those TLS connections from a vsock port ([DefaultProxyPort] at CID 3)
//     to kms.REGION.amazonaws.com:443 (`vsock-proxy 8000
//     kms.us-east-1.amazonaws.com 443`); and nitrosign-host, which fetches
//     the instance role's credentials from IMDSv2 and pushes them to the
//     enclave ([PushedCredentials]), and stores the ciphertext blobs.
//   - In AWS KMS: the key, whose policy allows Decrypt, GenerateDataKey
//     and GenerateRandom only with an attestation document of the
//     measured image (kms:RecipientAttestation:ImageSha384).
//
// # Why TLS ends in the enclave
//
// The host is trusted for availability only (see the design's trust
// model). If the enclave let the host make the HTTPS request, or trusted
// roots the host supplies, the host could answer in KMS's place: hand the
// enclave a data key of its own choosing for GenerateDataKey, so that it
// knows the key the seed is sealed under, or a seed of its choosing for
// GenerateRandom. So the enclave runs TLS itself over the bytes
// vsock-proxy carries, verifies KMS's certificate against roots compiled
// into its own measured binary ([Config.RootCAs] nil), with the server
// name taken from the endpoint, never from the host; a certificate that
// does not verify fails the operation at once, without retrying. The host
// sees ciphertext, and the credentials it pushed.
//
// The Recipient adds a second, independent protection: KMS encrypts every
// plaintext (data key, decrypted seed, random bytes) to an RSA key whose
// public half is in an NSM attestation document of this image, so even a
// party that could read the TLS session, or KMS's logs of the response,
// sees no plaintext; and KMS answers at all only because the key policy's
// attestation condition holds.
//
// # An operation
//
// GenerateDataKey, Decrypt and GenerateRandom each:
//
//  1. check there are credentials that have not expired, so that a host
//     that stopped pushing them gets a clear error;
//  2. generate a fresh RSA-2048 key, and have the NSM attest its DER
//     SubjectPublicKeyInfo as the document's public_key, with a fresh
//     32-byte nonce;
//  3. call KMS with Recipient {RSAES_OAEP_SHA_256, the document};
//  4. refuse an answer that carries a Plaintext field (KMS never sends one
//     with a Recipient), open CiphertextForRecipient (CMS EnvelopedData,
//     RSAES-OAEP-SHA-256 and AES-256-CBC) with the ephemeral key, and check
//     the result's size (a 32-byte data key, the n random bytes asked);
//  5. overwrite the private key's numbers and drop it, whatever happened.
//
// Errors start with "kms: " and never contain key material, plaintext or
// credentials. A refusal by KMS's policies is an [*AccessDeniedError]
// (errors.Is(err, [ErrAccessDenied])): for these operations, usually an
// image whose PCR0 the key policy does not name.
//
// # Transport limits
//
// TLS 1.2 or later, HTTP/1.1, no HTTP proxy, no redirects, no plaintext
// connections; a connection only to the endpoint's host and port. Connect
// and handshake within 10 s, an answer's headers within 20 s, an attempt
// within 30 s, an operation within 90 s including at most two retries
// (throttling, 5xx, broken connections) with backoff of at most 2 s. The
// SDK logs nothing. Request signatures use [Config.Now], the enclave's
// clock, without skew correction.
//
// # Root certificates
//
// [Config.RootCAs] nil means the roots compiled into the binary: Amazon
// Trust Services' roots (Amazon Root CA 1 to 4 and Starfield Services Root
// G2) taken from the Mozilla set that golang.org/x/crypto/x509roots/fallback
// embeds, and no others, so that neither the host nor any other
// certificate authority can stand in for KMS. The system's roots are never
// consulted (an enclave has none anyway). The development stack names its
// simulator's CA in the measured genesis configuration instead.
package kms
