// Package cms opens the CiphertextForRecipient that AWS KMS returns to a
// Nitro enclave.
//
// When the enclave calls KMS GenerateDataKey, Decrypt or GenerateRandom with
// a Recipient (its attestation document, carrying an ephemeral RSA-2048
// public key), KMS returns the plaintext only inside a CMS (RFC 5652)
// EnvelopedData encrypted to that key. [Parse] decodes it, accepting one
// exact shape and refusing everything else; [EnvelopedData.Decrypt] opens it
// with the ephemeral private key. The package is linked into the enclave and
// uses only the standard library.
//
// # Format accepted
//
// The input is BER, as KMS writes it: indefinite lengths on the outer
// elements and on the encrypted content. The accepted structure, with each
// restriction and its reason:
//
//	ContentInfo ::= SEQUENCE {
//	  contentType  OBJECT IDENTIFIER,  -- id-envelopedData 1.2.840.113549.1.7.3
//	  content      [0] EXPLICIT EnvelopedData }
//
//	EnvelopedData ::= SEQUENCE {
//	  version  INTEGER (2),      -- 2, as RFC 5652 6.1 requires with a v2 recipient
//	  -- originatorInfo [0]:     refused; key transport has no use for it
//	  recipientInfos  SET SIZE (1) OF KeyTransRecipientInfo,
//	  encryptedContentInfo  EncryptedContentInfo
//	  -- unprotectedAttrs [1]:   refused; KMS sends none, and nothing protects them
//	}
//
//	KeyTransRecipientInfo ::= SEQUENCE {
//	  version  INTEGER (2),      -- 2, as RFC 5652 6.2.1 requires with a subjectKeyIdentifier
//	  rid  [0] IMPLICIT OCTET STRING (SIZE (1..64)),  -- subjectKeyIdentifier, primitive
//	  keyEncryptionAlgorithm  SEQUENCE {
//	    algorithm   id-RSAES-OAEP 1.2.840.113549.1.1.7,
//	    parameters  SEQUENCE {   -- present: absent parameters mean SHA-1
//	      hashAlgorithm    [0] EXPLICIT { sha-256, NULL or absent },
//	      maskGenAlgorithm [1] EXPLICIT { id-mgf1 1.2.840.113549.1.1.8,
//	                                      { sha-256, NULL or absent } },
//	      pSourceAlgorithm [2] EXPLICIT { id-pSpecified 1.2.840.113549.1.1.9,
//	                                      OCTET STRING (SIZE (0)) } OPTIONAL } },
//	  encryptedKey  OCTET STRING (SIZE (256)) }  -- one RSA-2048 block
//
//	EncryptedContentInfo ::= SEQUENCE {
//	  contentType  id-data 1.2.840.113549.1.7.1,
//	  contentEncryptionAlgorithm  SEQUENCE {
//	    algorithm   aes256-CBC 2.16.840.1.101.3.4.1.42,
//	    parameters  OCTET STRING (SIZE (16)) },   -- the IV
//	  encryptedContent  [0] IMPLICIT OCTET STRING }
//	    -- present (no detached content); primitive, or constructed from
//	    -- primitive OCTET STRING segments, which are joined; a non-zero
//	    -- multiple of 16 bytes, at most MaxCiphertextSize
//
// Why so narrow:
//   - One recipient, key transport only. KMS sends exactly one; a second
//     recipient would mean someone else can read the content too, and
//     supporting kari, kekri, pwri or ori would be code with no input.
//   - RSAES-OAEP with SHA-256 and MGF1-SHA-256 only: PKCS #1 v1.5 key
//     transport invites Bleichenbacher-style oracles, and OAEP's defaults
//     (no parameters, or a missing hash or mask generation function) mean
//     SHA-1. The parameters must be explicit, as KMS and openssl write them;
//     the SHA-256 AlgorithmIdentifiers may carry NULL (KMS) or nothing
//     (openssl), which RFC 4055 asks readers to accept. A label other than
//     the empty default is refused, because the enclave would not know it.
//   - AES-256-CBC with a 16-byte IV: what KMS uses. AES-128 or any other
//     cipher is refused rather than guessed at.
//   - A subjectKeyIdentifier, not issuerAndSerialNumber: the enclave's key
//     has no certificate.
//
// # Encoding and limits
//
// The decoder reads the X.690 forms CMS encoders emit: identifiers with low
// tag numbers (0 to 30); definite lengths in their shortest form (BER
// allows longer forms, which neither KMS nor openssl writes); indefinite
// lengths on constructed elements, ended by an end-of-contents marker. Only
// the encrypted content may be a constructed string; every other OCTET
// STRING (the identifier, encrypted key, IV, label) must be primitive.
// INTEGERs and OBJECT IDENTIFIERs are compared with their DER encodings, so
// a non-minimal encoding is refused. The input must be one element with no
// trailing bytes, at most MaxSize (64 KiB) long, nest at most 16 elements
// deep and hold at most 1024 elements; these caps bound the decoder's time,
// memory and recursion whatever the input (KMS's answers are about 500
// bytes, 11 deep and 30 elements for a data key).
//
// # The subject key identifier
//
// KMS's identifier is 32 bytes in every sample seen (the two in
// testdata/aws/kms and a third in a public demo), so it is presumably a
// SHA-256 digest of the recipient's public key; but AWS documents neither
// the input nor the form hashed (the SubjectPublicKeyInfo DER that the
// attestation document carries, the RSAPublicKey, or the subjectPublicKey
// bits as in RFC 5280 and RFC 7093), and no public sample comes with its
// public key, so it could not be checked here. (openssl, by contrast, writes
// the certificate's subjectKeyIdentifier extension, by default the 20-byte
// SHA-1 of the subjectPublicKey bits.) Decrypt therefore does not check the
// identifier unless the caller passes [WithSubjectKeyID]; the identifier is
// unauthenticated in any case, and what binds an envelope to the key is
// that it decrypts under it.
//
// # Decryption
//
// Decrypt uses crypto/rsa's OAEP decryption, which does not reveal why a
// block fails, requires a 32-byte content key, decrypts with AES-256-CBC
// and removes the PKCS #7 padding with a constant-time check. A wrong key, a
// damaged encrypted key, a content key of the wrong size and bad padding
// all give the same [ErrDecryption], so tampering with the IV or the
// ciphertext teaches an attacker nothing about the content. The content key
// is overwritten before Decrypt returns (the AES key schedule inside
// crypto/aes cannot be, and is left to the garbage collector), and the
// decrypted buffer is overwritten when the padding is bad. Errors never
// contain key, ciphertext or plaintext bytes.
//
// EnvelopedData with CBC is not authenticated encryption. The enclave's
// defence is the design's: its TLS session to KMS ends inside the enclave,
// so the host cannot alter the envelope, and the data key it carries is
// used with AES-GCM, which fails on a wrong key.
package cms
