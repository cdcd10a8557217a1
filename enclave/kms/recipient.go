package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/nitrosign/nitrosign/enclave/cms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
)

const (
	// DataKeySize is the size of the data keys GenerateDataKey returns
	// (AES_256).
	DataKeySize = 32
	// MaxRandomSize is the most bytes GenerateRandom returns at once, KMS's
	// limit.
	MaxRandomSize = 1024
	// recipientKeyBits is the size of the ephemeral RSA key.
	recipientKeyBits = 2048
	// nonceSize is the size of the attestation document's nonce.
	nonceSize = 32
)

// GenerateDataKey asks KMS for a new AES-256 data key under keyID, bound to
// encCtx (which Decrypt must repeat), and returns it in clear together with
// KMS's ciphertext blob of it, which the host may store. KMS returns the
// key only inside a CMS envelope for this operation's ephemeral key, which
// the enclave opens; an answer that carries the key in clear (a Plaintext
// field) is refused, as is a key that is not DataKeySize bytes.
func (c *Client) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, ciphertextBlob []byte, err error) {
	const op = "GenerateDataKey"
	if keyID == "" {
		return nil, nil, fmt.Errorf("kms: %s: no key id", op)
	}
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	r, err := c.newRecipient(ctx, op)
	if err != nil {
		return nil, nil, err
	}
	defer r.destroy()
	out, err := c.api.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             aws.String(keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encCtx,
		Recipient:         r.info,
	})
	if err != nil {
		return nil, nil, apiError(op, err)
	}
	key, err := r.open(op, out.Plaintext, out.CiphertextForRecipient)
	if err != nil {
		return nil, nil, err
	}
	if len(key) != DataKeySize {
		clear(key)
		return nil, nil, fmt.Errorf("kms: %s: the data key is %d bytes, want %d", op, len(key), DataKeySize)
	}
	if len(out.CiphertextBlob) == 0 {
		clear(key)
		return nil, nil, fmt.Errorf("kms: %s: KMS answered without a ciphertext blob", op)
	}
	return key, bytes.Clone(out.CiphertextBlob), nil
}

// Decrypt asks KMS to decrypt blob, a ciphertext blob of keyID made with
// encCtx, and returns the plaintext, which KMS sends only inside a CMS
// envelope for this operation's ephemeral key. keyID is required: KMS then
// refuses a blob of another key (IncorrectKeyException), so a host cannot
// make the enclave unseal something under a key it did not choose.
func (c *Client) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	const op = "Decrypt"
	if keyID == "" {
		return nil, fmt.Errorf("kms: %s: no key id", op)
	}
	if len(blob) == 0 {
		return nil, fmt.Errorf("kms: %s: empty ciphertext blob", op)
	}
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	r, err := c.newRecipient(ctx, op)
	if err != nil {
		return nil, err
	}
	defer r.destroy()
	out, err := c.api.Decrypt(ctx, &awskms.DecryptInput{
		KeyId:             aws.String(keyID),
		CiphertextBlob:    blob,
		EncryptionContext: encCtx,
		Recipient:         r.info,
	})
	if err != nil {
		return nil, apiError(op, err)
	}
	return r.open(op, out.Plaintext, out.CiphertextForRecipient)
}

// GenerateRandom returns n (1 to MaxRandomSize) random bytes from KMS's
// HSMs, sent inside a CMS envelope for this operation's ephemeral key.
func (c *Client) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	const op = "GenerateRandom"
	if n < 1 || n > MaxRandomSize {
		return nil, fmt.Errorf("kms: %s: %d bytes asked, want 1 to %d", op, n, MaxRandomSize)
	}
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	r, err := c.newRecipient(ctx, op)
	if err != nil {
		return nil, err
	}
	defer r.destroy()
	out, err := c.api.GenerateRandom(ctx, &awskms.GenerateRandomInput{
		NumberOfBytes: aws.Int32(int32(n)),
		Recipient:     r.info,
	})
	if err != nil {
		return nil, apiError(op, err)
	}
	b, err := r.open(op, out.Plaintext, out.CiphertextForRecipient)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		clear(b)
		return nil, fmt.Errorf("kms: %s: KMS answered %d bytes, want %d", op, len(b), n)
	}
	return b, nil
}

// recipient is one operation's ephemeral key and the Recipient parameter
// that attests it.
type recipient struct {
	key  *rsa.PrivateKey
	info *types.RecipientInfo
}

// newRecipient checks that there are credentials to sign with (before the
// costly steps), makes a fresh RSA-2048 key, and has the NSM attest its
// public key (DER SubjectPublicKeyInfo) with a fresh nonce.
func (c *Client) newRecipient(ctx context.Context, op string) (*recipient, error) {
	if err := ctx.Err(); err != nil {
		return nil, &opError{op: op, err: err}
	}
	creds, err := c.creds.Retrieve(ctx)
	if err == nil {
		err = check(creds, c.now())
	}
	if err != nil {
		return nil, &opError{op: op, err: err}
	}
	key, err := rsa.GenerateKey(rand.Reader, recipientKeyBits)
	if err != nil {
		return nil, fmt.Errorf("kms: %s: ephemeral key: %w", op, err)
	}
	r := &recipient{key: key}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		r.destroy()
		return nil, fmt.Errorf("kms: %s: ephemeral key: %w", op, err)
	}
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	doc, err := c.nsm.Attest(ctx, nsm.AttestRequest{Nonce: nonce, PublicKey: spki})
	if err != nil {
		r.destroy()
		return nil, fmt.Errorf("kms: %s: attestation: %w", op, err)
	}
	r.info = &types.RecipientInfo{
		KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256,
		AttestationDocument:    doc,
	}
	return r, nil
}

// open returns the content of KMS's CiphertextForRecipient, refusing an
// answer that also carries the plaintext: KMS never sends it with a
// Recipient, so one that does is not KMS's answer to this request, and the
// plaintext has crossed the wire in clear. The plaintext field is
// overwritten.
func (r *recipient) open(op string, plaintext, envelope []byte) ([]byte, error) {
	if plaintext != nil {
		clear(plaintext)
		return nil, fmt.Errorf("kms: %s: refusing an answer with a Plaintext field: KMS sends the plaintext only in CiphertextForRecipient when given a Recipient", op)
	}
	if len(envelope) == 0 {
		return nil, fmt.Errorf("kms: %s: KMS answered without a CiphertextForRecipient", op)
	}
	env, err := cms.Parse(envelope)
	if err != nil {
		return nil, fmt.Errorf("kms: %s: CiphertextForRecipient: %w", op, err)
	}
	// The subject key identifier is not checked: AWS does not document how
	// it derives it (see enclave/cms). What binds the envelope to this
	// key is that it decrypts under it.
	b, err := env.Decrypt(r.key)
	if err != nil {
		return nil, fmt.Errorf("kms: %s: CiphertextForRecipient: %w", op, err)
	}
	return b, nil
}

// destroy overwrites what Go lets a caller overwrite of the private key:
// the private exponent, the primes and the CRT values. (crypto/rsa keeps a
// copy of them in its own form, out of reach, which the garbage collector
// frees.)
func (r *recipient) destroy() {
	k := r.key
	if k == nil {
		return
	}
	r.key = nil
	zero := func(x *big.Int) {
		if x != nil {
			clear(x.Bits())
			x.SetInt64(0)
		}
	}
	zero(k.D)
	for _, p := range k.Primes {
		zero(p)
	}
	zero(k.Precomputed.Dp)
	zero(k.Precomputed.Dq)
	zero(k.Precomputed.Qinv)
}
