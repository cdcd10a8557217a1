package genesisedit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/nitrosign/nitrosign/stamp"
)

// MaxKeyFileSize caps a key file that [ParsePublicKeyPEM] reads.
const MaxKeyFileSize = 16 << 10

// ParsePublicKeyPEM returns the stamp public key of a single PEM block: a
// "PUBLIC KEY" (SPKI, as `openssl pkey -pubout` writes) or a PKCS #8
// "PRIVATE KEY" (as the project's tools write key files; only its public
// half is kept), Ed25519 or ECDSA P-256. It refuses anything else, data
// around the block, PEM headers and inputs over [MaxKeyFileSize]. Errors
// never contain key material.
func ParsePublicKeyPEM(b []byte) (stamp.PublicKey, error) {
	if len(b) > MaxKeyFileSize {
		return stamp.PublicKey{}, fmt.Errorf("genesisedit: key file: larger than %d KiB", MaxKeyFileSize>>10)
	}
	trimmed := bytes.TrimSpace(b)
	block, rest := pem.Decode(trimmed)
	if block == nil || !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return stamp.PublicKey{}, errors.New("genesisedit: key file: no PEM block at the start")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return stamp.PublicKey{}, errors.New("genesisedit: key file: data after the PEM block")
	}
	if len(block.Headers) != 0 {
		return stamp.PublicKey{}, errors.New("genesisedit: key file: PEM headers are not supported (encrypted keys are refused)")
	}
	switch block.Type {
	case "PRIVATE KEY":
		s, err := stamp.ParseSignerPEM(trimmed)
		clear(block.Bytes)
		if err != nil {
			return stamp.PublicKey{}, fmt.Errorf("genesisedit: key file: %w", err)
		}
		return s.PublicKey(), nil
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return stamp.PublicKey{}, errors.New("genesisedit: key file: not a valid SPKI public key")
		}
		var pub stamp.PublicKey
		switch key := key.(type) {
		case ed25519.PublicKey:
			pub = stamp.PublicKey{Scheme: stamp.Ed25519, Key: []byte(key)}
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() {
				return stamp.PublicKey{}, fmt.Errorf("genesisedit: key file: ecdsa curve %s, want P-256", key.Curve.Params().Name)
			}
			ek, err := key.ECDH()
			if err != nil {
				return stamp.PublicKey{}, errors.New("genesisedit: key file: not a valid P-256 key")
			}
			u := ek.Bytes() // 0x04 || X || Y
			c := append([]byte{0x02 | u[64]&1}, u[1:33]...)
			pub = stamp.PublicKey{Scheme: stamp.P256, Key: c}
		default:
			return stamp.PublicKey{}, fmt.Errorf("genesisedit: key file: unsupported key type %T, want Ed25519 or ECDSA P-256", key)
		}
		// The same checks as a key given in hex (small-order Ed25519
		// keys, points off the curve).
		return ParsePublicKey(string(pub.Scheme), hex.EncodeToString(pub.Key))
	default:
		return stamp.PublicKey{}, fmt.Errorf("genesisedit: key file: PEM block type %q, want \"PUBLIC KEY\" or \"PRIVATE KEY\" (PKCS #8)", block.Type)
	}
}

// ParsePublicKey parses a public key in hex of the given scheme (ed25519
// or p256: the 32-byte Ed25519 key or the 33-byte compressed P-256 point),
// with the checks the policy applies to client keys.
func ParsePublicKey(scheme, hexKey string) (stamp.PublicKey, error) {
	pub, err := stamp.ParsePublicKey(stamp.Scheme(scheme), hexKey)
	if err != nil {
		return stamp.PublicKey{}, fmt.Errorf("genesisedit: public key: %w", err)
	}
	return pub, nil
}
