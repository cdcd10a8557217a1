package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// ErrDecryption is the one error [EnvelopedData.Decrypt] returns when the
// content key does not decrypt under the private key (a wrong key or a
// damaged encrypted key), when it is not 32 bytes, and when the decrypted
// content's padding is not valid, so that a caller cannot tell these apart.
var ErrDecryption = errors.New("cms: decryption failed")

// contentKeySize is the size of an AES-256 key.
const contentKeySize = 32

// A DecryptOption changes what [EnvelopedData.Decrypt] checks.
type DecryptOption func(*decryptOptions)

type decryptOptions struct {
	checkSubjectKeyID bool
	subjectKeyID      []byte
}

// WithSubjectKeyID makes Decrypt refuse, before any decryption, an envelope
// whose subject key identifier is not id.
//
// Without it Decrypt does not look at the subject key identifier. That is
// deliberate: KMS does not document how it derives the identifier from the
// attestation document's public key (see the package documentation), and
// the identifier is not authenticated, so it proves nothing: what binds the
// envelope to the key is that RSAES-OAEP decryption under the key succeeds.
// Pass this option when the identifier is known, for instance to catch an
// envelope meant for another of the caller's keys with a clear error rather
// than the generic [ErrDecryption].
func WithSubjectKeyID(id []byte) DecryptOption {
	id = bytes.Clone(id)
	return func(o *decryptOptions) {
		o.checkSubjectKeyID = true
		o.subjectKeyID = id
	}
}

// Decrypt decrypts the content key with priv (RSAES-OAEP, SHA-256, MGF1
// with SHA-256, empty label), which must be exactly 32 bytes, then the
// content with AES-256-CBC, and returns the content without its PKCS #7
// padding.
//
// Every failure of the key or the padding is [ErrDecryption], and the
// padding is checked in constant time, so Decrypt is no padding oracle.
// Other errors are about public data only: a missing key, a key whose size
// is not the encrypted key's, a subject key identifier other than the one
// [WithSubjectKeyID] asks for, or fields that Parse would not have
// produced. Decrypt overwrites the content key before it returns.
//
// CBC is not authenticated: a tampered envelope either fails or decrypts
// to other bytes. The caller's protection is that the envelope reaches the
// enclave over a TLS session that ends inside it, and that what it protects
// (a data key) is checked by its own use (an AES-GCM open).
func (e *EnvelopedData) Decrypt(priv *rsa.PrivateKey, opts ...DecryptOption) ([]byte, error) {
	var o decryptOptions
	for _, opt := range opts {
		opt(&o)
	}
	if e == nil {
		return nil, errors.New("cms: no enveloped data")
	}
	if priv == nil || priv.N == nil {
		return nil, errors.New("cms: no private key")
	}
	if len(e.IV) != aes.BlockSize || len(e.Ciphertext) == 0 || len(e.Ciphertext)%aes.BlockSize != 0 ||
		len(e.Ciphertext) > MaxCiphertextSize {
		return nil, errors.New("cms: enveloped data has an IV or ciphertext that Parse does not return")
	}
	if o.checkSubjectKeyID && !bytes.Equal(e.SubjectKeyID, o.subjectKeyID) {
		return nil, errors.New("cms: subject key identifier is not the one expected")
	}
	if priv.Size() != len(e.EncryptedKey) {
		return nil, errors.New("cms: private key size does not match the encrypted key")
	}

	key, err := rsa.DecryptOAEP(sha256.New(), nil, priv, e.EncryptedKey, nil)
	defer clear(key)
	if err != nil || len(key) != contentKeySize {
		return nil, ErrDecryption
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrDecryption
	}
	buf := make([]byte, len(e.Ciphertext))
	cipher.NewCBCDecrypter(block, e.IV).CryptBlocks(buf, e.Ciphertext)
	var n, ok int
	subtle.WithDataIndependentTiming(func() {
		n, ok = unpad(buf)
	})
	if ok != 1 {
		clear(buf)
		return nil, ErrDecryption
	}
	return buf[:n:n], nil
}

// unpad returns the length of the content in buf, a non-empty whole number
// of AES blocks ending in PKCS #7 padding, and 1 if the padding is valid or
// 0 if not. It reads the same bytes and takes the same steps whatever the
// padding is: no branch or index depends on a byte of buf.
func unpad(buf []byte) (n, ok int) {
	last := buf[len(buf)-aes.BlockSize:]
	pad := int(last[aes.BlockSize-1])
	ok = subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := range aes.BlockSize {
		// The i-th byte from the end is padding when i < pad, and then it
		// must equal pad.
		inPad := subtle.ConstantTimeLessOrEq(i+1, pad)
		same := subtle.ConstantTimeByteEq(last[aes.BlockSize-1-i], byte(pad))
		ok &= same | (inPad ^ 1)
	}
	return subtle.ConstantTimeSelect(ok, len(buf)-pad, len(buf)), ok
}
