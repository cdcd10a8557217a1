// Package kmssim is a simulated AWS KMS, for `nitrosign dev` and the tests:
// machines without AWS that must still seal the enclave's seed the way
// production does, with a key policy that releases data keys only to the
// measured enclave image.
//
// A [Server] is an HTTPS server (a CA and certificate of its own, made at
// [New]; trust [Server.CACertPEM], or use [Server.Client]) speaking the
// KMS JSON protocol, so that the real AWS SDK talks to it unchanged:
//
//	srv, err := kmssim.New(kmssim.Options{Roots: []*x509.Certificate{nsmRoot}})
//	...
//	client := kms.NewFromConfig(aws.Config{
//		Region:      kmssim.DefaultRegion,
//		Credentials: credentials.NewStaticCredentialsProvider(kmssim.DefaultAccessKeyID, kmssim.DefaultSecretAccessKey, ""),
//		HTTPClient:  srv.Client(),
//	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
//
// It is never linked into the enclave binary (the dependency test in
// cmd/nitrosign-enclave forbids it); the enclave reaches it over the
// network like the real service, its TLS session ending inside the
// enclave.
//
// # Protocol
//
// Requests are POST / with Content-Type application/x-amz-json-1.1 (1.0 is
// accepted too), X-Amz-Target TrentService.<Operation>, a JSON body with
// blobs in base64 and timestamps in epoch seconds. A request is checked in
// this order, and the first failure is the answer, in AWS's error shape
// {"__type": "<Code>", "message": "..."} (AccessDeniedException says
// "Message", as AWS does) with the status of the KMS API model:
//
//   - method other than POST: 405 UnknownOperationException; path other
//     than /: 404 UnknownOperationException;
//   - a body larger than Options.MaxRequestSize (DefaultMaxRequestSize):
//     413 RequestEntityTooLargeException, read no further;
//   - X-Amz-Target missing, not TrentService.*, or an operation the
//     simulator does not serve: 400 UnknownOperationException;
//   - another Content-Type: 400 UnknownOperationException;
//   - authentication (below): MissingAuthenticationTokenException (403),
//     IncompleteSignatureException, UnrecognizedClientException,
//     InvalidSignatureException (400);
//   - the body: not one JSON object, duplicate member names at any depth,
//     nesting deeper than 32, a member of the wrong type, bad base64: 400
//     SerializationException. Member names match exactly (case matters);
//     unknown members are ignored, as AWS's JSON services ignore them (so
//     a newer SDK's new members do not break an older server); null is
//     the same as absent;
//   - constraints (required members, lengths, ranges, enumerations): 400
//     ValidationException, worded as AWS words it ("1 validation error
//     detected: Value null at 'keyId' failed to satisfy constraint: Member
//     must not be null");
//   - then the operation's own errors, listed below.
//
// # Authentication
//
// Every request must carry a Signature Version 4 Authorization header, and
// the simulator verifies it fully: the access key id must be one of
// Options.Identities (UnrecognizedClientException otherwise), a session
// token must be exactly the identity's (none if it has none), the
// credential scope must be this region and the kms service on the day of
// X-Amz-Date, X-Amz-Date within five minutes of the simulator's clock,
// host and x-amz-date among the signed headers, and the signature the
// HMAC-SHA256 of the canonical request (method, path, query, signed
// headers, SHA-256 of the body) under the key derived from the identity's
// secret. Presigned URLs (query-string signatures) and SigV4a are not
// accepted.
//
// # Operations
//
// CreateKey, DescribeKey, ListKeys, GetKeyPolicy, PutKeyPolicy, Encrypt,
// Decrypt, GenerateDataKey and GenerateRandom, for symmetric encryption
// keys (SYMMETRIC_DEFAULT) only. KeyId may be a key id or a key ARN of
// this account and region; aliases do not exist (NotFoundException).
// DryRun answers DryRunOperationException (412) after authorization.
//
//   - CreateKey: other key specs, usages, origins, multi-Region keys and
//     external key stores are UnsupportedOperationException; a custom key
//     store is CustomKeyStoreNotFoundException. Without a Policy the key
//     gets [DefaultKeyPolicy]. A policy is checked as PutKeyPolicy checks
//     it. Tags are ignored. At most 10000 keys (LimitExceededException).
//   - GetKeyPolicy, PutKeyPolicy: the policy name is "default" or absent
//     (NotFoundException otherwise). PutKeyPolicy refuses a policy it
//     cannot evaluate, and, unless BypassPolicyLockoutSafetyCheck, one that
//     would not let the caller put a policy again, both as
//     MalformedPolicyDocumentException. The policy is returned as put.
//   - Encrypt: 1 to 4096 bytes; GenerateDataKey: KeySpec AES_256 or
//     AES_128, or NumberOfBytes 1 to 1024, exactly one of them; Decrypt:
//     a blob of 1 to 6144 bytes. EncryptionAlgorithm, if given, must be
//     SYMMETRIC_DEFAULT (InvalidKeyUsageException for the RSA and SM2
//     ones).
//   - Decrypt: a blob that is not this simulator's, names a key it does
//     not hold, was changed, or was made with another encryption context
//     is InvalidCiphertextException, with no message, as AWS answers; so
//     is a blob whose key id was rewritten to name another key, since it
//     no longer authenticates. A KeyId naming another key than the one
//     that made the blob is IncorrectKeyException, AWS's answer.
//     Authorization comes before decryption: a refused caller learns
//     nothing of the ciphertext.
//   - GenerateRandom: 1 to 1024 bytes.
//
// Ciphertext blobs are opaque to clients but not AWS's format: a version
// byte, the key's id, a nonce and an AES-256-GCM ciphertext under a secret
// of the key, with the version, key id and encryption context (its pairs
// sorted, length-prefixed) as additional data. So a blob opens only under
// its key, unchanged, with the same context.
//
// # Recipient
//
// GenerateDataKey, Decrypt and GenerateRandom take a Recipient, as KMS
// does for Nitro Enclaves: KeyEncryptionAlgorithm RSAES_OAEP_SHA_256 and an
// AttestationDocument. The document is verified with [attestation.Verify]
// against Options.Roots at the simulator's clock (debug-mode documents are
// not refused: their all-zero PCRs are for the key policy to refuse, as
// on AWS), and its public_key must be a DER SubjectPublicKeyInfo of an RSA
// key of 2048 to 4096 bits; a failure is ValidationException naming the
// check. The answer then has no Plaintext (GenerateDataKey still returns
// the CiphertextBlob) but CiphertextForRecipient: a CMS EnvelopedData
// (RFC 5652) in the BER KMS writes, laid out byte for byte as the real
// sample in testdata/aws/kms: version 2; one KeyTransRecipientInfo
// (version 2) identified by a 32-byte subjectKeyIdentifier; RSAES-OAEP
// with explicit SHA-256 and MGF1-SHA-256 parameters; the content
// encrypted with AES-256-CBC under a fresh key and IV, PKCS #7 padded.
// enclave/cms opens it. The subjectKeyIdentifier is the SHA-256 of the
// document's public_key bytes (the SubjectPublicKeyInfo): AWS does not say
// what it hashes, and nothing checks it (see enclave/cms).
//
// # Policies
//
// Key operations are authorized by the key's policy and the caller's
// identity-based policy ([Identity.Policy]) as AWS evaluates them for KMS:
//
//  1. an explicit Deny in either, whose principal, action, resource and
//     conditions match, refuses the request;
//  2. otherwise the key policy must allow it: by an Allow naming the
//     caller (its ARN, its role for an assumed-role session, or "*"), or
//     by an Allow naming the caller's account ("111122223333" or
//     "arn:aws:iam::111122223333:root"), which delegates to IAM: then the
//     identity-based policy must allow it too;
//  3. anything else is refused (default deny).
//
// CreateKey, ListKeys and GenerateRandom are on no key: the identity-based
// policy alone decides them. A refusal is AccessDeniedException (400) in
// AWS's words, such as "User: ARN is not authorized to perform:
// kms:Decrypt on resource: KEY-ARN with an explicit deny in a
// resource-based policy" or "... because no resource-based policy allows
// the kms:Decrypt action"; [Server.LastDenial] returns its details,
// including the request's measurement and the ones the policy's Allow
// statements expect, for the dev stack's error message.
//
// The policy language understood: Version, Id, Statement (one or a list);
// Sid, Effect, Principal ("*" or {"AWS": ...}; other principal types never
// match), Action and NotAction (case-insensitive, with * and ?), Resource
// and NotResource (with * and ?), Condition with the operators
// StringEquals, StringNotEquals, StringEqualsIgnoreCase,
// StringNotEqualsIgnoreCase, StringLike, StringNotLike and Bool (each also
// ...IfExists) and Null. Within an operator every key must hold; a key
// holds when its request value equals one of the policy's values
// (negated operators: none of them); a missing key fails a positive
// operator and passes a negated one or an IfExists one; Null "true" holds
// when the key is missing. Condition keys are case-insensitive. A policy
// using anything else (NotPrincipal, ForAnyValue:, Arn*, Numeric*, Date*,
// IpAddress, ...) is refused as MalformedPolicyDocumentException rather
// than evaluated wrongly.
//
// The request context holds aws:PrincipalArn, aws:PrincipalAccount,
// kms:CallerAccount, kms:EncryptionContext:KEY for each pair of the
// request's encryption context (Encrypt, Decrypt, GenerateDataKey), and
// with a verified Recipient
// kms:RecipientAttestation:ImageSha384 and kms:RecipientAttestation:PCR<n>
// for each PCR of the document, in lower-case hex (so compare with
// StringEqualsIgnoreCase, as AWS advises). ImageSha384 is PCR0, on AWS as
// here; under simulation PCR0 is what internal/sim/nsmsim measures: the
// SHA-384 of the enclave binary's and genesis configuration's digests.
// So the policy `nitrosign kms-policy` prints works unchanged: an Allow of
// kms:Decrypt and kms:GenerateDataKey for the enclave's role on the
// condition StringEqualsIgnoreCase kms:RecipientAttestation:ImageSha384
// (or PCR0), and a Deny when {"Null": {"kms:RecipientAttestation:...":
// "true"}}. The dev stack's --accept-new-image puts a new policy with
// PutKeyPolicy, as an admin would.
//
// # Not simulated
//
//   - Key types other than symmetric encryption keys, and the operations
//     on them; aliases, grants (GrantTokens are ignored), tags, key
//     rotation (one secret per key, for ever), key states (every key is
//     Enabled; no DisableKey or ScheduleKeyDeletion), multi-Region keys,
//     custom and external key stores, ReEncrypt, the ...WithoutPlaintext
//     and ...Pair operations, DeriveSharedSecret.
//   - AWS's ciphertext blob format (blobs of real KMS are not accepted,
//     nor the simulator's by real KMS).
//   - IAM beyond one policy per identity: no groups, permission
//     boundaries, SCPs, session policies or resource-based policies other
//     than key policies; the condition keys listed above only (others are
//     missing from the context); no policy variables.
//   - Quotas and throttling (except the 10000-key cap), CloudTrail.
//   - The TLS certificate's validity follows the wall clock, not
//     Options.Now, since TLS clients check it against theirs.
//
// # State
//
// Keys live in memory, or with Options.StatePath in a JSON file holding
// their secrets in clear (mode 0600, replaced atomically after every
// CreateKey and PutKeyPolicy), so that a dev stack's sealed seed opens
// again after a restart. It is for development only.
package kmssim
