package stamp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Signer signs request bodies for [Create]. Signers made by this package hold
// their private key in memory; a Signer backed by an HSM or KMS can implement
// the interface as well.
type Signer interface {
	// PublicKey returns the key that verifies this signer's signatures.
	PublicKey() PublicKey
	// SignBody returns the signature over body in the encoding of the
	// scheme: 64 bytes for Ed25519, ASN.1 DER of SHA-256(body) for P-256.
	SignBody(body []byte) ([]byte, error)
}

// pemType is the only PEM block type [ParseSignerPEM] accepts (PKCS #8).
const pemType = "PRIVATE KEY"

type ed25519Signer struct {
	priv ed25519.PrivateKey
	pub  PublicKey
}

// NewEd25519Signer returns a Signer for an Ed25519 private key. The key is
// copied.
func NewEd25519Signer(key ed25519.PrivateKey) (Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("stamp: ed25519 private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	// Recompute the public half from the seed rather than trusting the
	// second half of key, so a corrupted key cannot sign under a wrong key.
	priv := ed25519.NewKeyFromSeed(key.Seed())
	pub := priv.Public().(ed25519.PublicKey)
	return &ed25519Signer{priv: priv, pub: PublicKey{Scheme: Ed25519, Key: bytes.Clone(pub)}}, nil
}

func (s *ed25519Signer) PublicKey() PublicKey {
	return PublicKey{Scheme: s.pub.Scheme, Key: bytes.Clone(s.pub.Key)}
}

func (s *ed25519Signer) SignBody(body []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, body), nil
}

type p256Signer struct {
	priv *ecdsa.PrivateKey
	pub  PublicKey
}

// NewP256Signer returns a Signer for an ECDSA private key on P-256.
func NewP256Signer(key *ecdsa.PrivateKey) (Signer, error) {
	if key == nil {
		return nil, errors.New("stamp: nil p256 private key")
	}
	if key.Curve != elliptic.P256() {
		return nil, errors.New("stamp: ecdsa private key is not on P-256")
	}
	raw, err := key.Bytes()
	if err != nil {
		return nil, errors.New("stamp: invalid p256 private key")
	}
	// Round-trip through the raw encoding: validates the scalar and the
	// public point, and gives the signer its own copy.
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	clear(raw)
	if err != nil {
		return nil, errors.New("stamp: invalid p256 private key")
	}
	uncompressed, err := priv.PublicKey.Bytes()
	if err != nil || len(uncompressed) != p256UncompressedN {
		return nil, errors.New("stamp: invalid p256 public key")
	}
	if !key.PublicKey.Equal(&priv.PublicKey) {
		return nil, errors.New("stamp: p256 public key does not match the private key")
	}
	compressed := make([]byte, p256KeySize)
	compressed[0] = 0x02 | uncompressed[64]&1
	copy(compressed[1:], uncompressed[1:33])
	return &p256Signer{priv: priv, pub: PublicKey{Scheme: P256, Key: compressed}}, nil
}

func (s *p256Signer) PublicKey() PublicKey {
	return PublicKey{Scheme: s.pub.Scheme, Key: bytes.Clone(s.pub.Key)}
}

func (s *p256Signer) SignBody(body []byte) ([]byte, error) {
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
	if err != nil {
		return nil, fmt.Errorf("stamp: p256 signing: %w", err)
	}
	return sig, nil
}

// GenerateSigner returns a Signer for a new random key of the given scheme;
// [MarshalPrivateKeyPEM] saves it.
func GenerateSigner(scheme Scheme) (Signer, error) {
	switch scheme {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("stamp: generating ed25519 key: %w", err)
		}
		return NewEd25519Signer(priv)
	case P256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("stamp: generating p256 key: %w", err)
		}
		return NewP256Signer(priv)
	}
	return nil, fmt.Errorf("stamp: unknown scheme %s", quote(string(scheme)))
}

// ParseSignerPEM parses a single PKCS #8 "PRIVATE KEY" PEM block holding an
// Ed25519 or P-256 key. It refuses other key types, encrypted or legacy PEM
// ("EC PRIVATE KEY"), and anything but whitespace around the block. Errors
// never contain key material.
func ParseSignerPEM(pemBytes []byte) (Signer, error) {
	trimmed := bytes.TrimSpace(pemBytes)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, errors.New("stamp: private key: no PEM block at the start of the input")
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, errors.New("stamp: private key: invalid PEM")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("stamp: private key: data after the PEM block")
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("stamp: private key: PEM block type %s, want %q (PKCS #8; convert with openssl pkcs8 -topk8 -nocrypt)", quote(block.Type), pemType)
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("stamp: private key: PEM headers are not supported (encrypted keys are refused)")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	clear(block.Bytes)
	if err != nil {
		// The x509 error is not wrapped: it could describe key bytes.
		return nil, errors.New("stamp: private key: not a valid PKCS #8 key")
	}
	switch key := key.(type) {
	case ed25519.PrivateKey:
		return NewEd25519Signer(key)
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return nil, fmt.Errorf("stamp: private key: ecdsa curve %s, want P-256", key.Curve.Params().Name)
		}
		return NewP256Signer(key)
	default:
		return nil, fmt.Errorf("stamp: private key: unsupported key type %T, want Ed25519 or ECDSA P-256", key)
	}
}

// MarshalPrivateKeyPEM returns the private key of a Signer made by this
// package as a PKCS #8 "PRIVATE KEY" PEM block, which [ParseSignerPEM] reads.
// The result is secret: write it to a file only readable by its owner.
func MarshalPrivateKeyPEM(s Signer) ([]byte, error) {
	var key any
	switch s := s.(type) {
	case *ed25519Signer:
		key = s.priv
	case *p256Signer:
		key = s.priv
	default:
		return nil, fmt.Errorf("stamp: cannot export the private key of a %T", s)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errors.New("stamp: encoding private key failed")
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}
