// Package stamp signs and verifies request stamps: the header that proves
// which registered client sent a request body.
//
// The host that forwards requests to the enclave may be compromised, so the
// enclave trusts no authentication done outside it. Each client signs the
// exact bytes of its request body with its own key and sends the signature in
// the [Header]; the enclave verifies it itself with [Verify] and identifies the
// client by the public key (its [PublicKey.String]). Freshness and uniqueness
// come from the request_id and timestamp_ms inside the signed body, checked by
// the caller: a stamp alone is replayable.
//
// # Format
//
// The header value is the unpadded base64url encoding (RFC 4648 §5) of the
// JSON object
//
//	{"scheme":"ed25519"|"p256","public_key":HEX,"signature":HEX}
//
// For "ed25519" the public key is the raw 32-byte key and the signature the
// 64-byte Ed25519 signature of the body (RFC 8032, pure Ed25519). For "p256"
// the public key is the 33-byte SEC 1 compressed point and the signature the
// ASN.1 DER ECDSA signature of SHA-256(body). Hex is case-insensitive.
//
// # Checks
//
// [Verify] refuses, with [ErrMissing], an empty header, and with
// [ErrMalformed]:
//   - a header longer than [MaxHeaderSize];
//   - anything but canonical unpadded base64url (no padding, no line breaks,
//     zero trailing bits), checked by re-encoding;
//   - JSON that [strictjson] refuses: duplicate or unknown keys, trailing data,
//     invalid UTF-8, or anything but the three string fields, all required;
//   - a scheme other than exactly "ed25519" or "p256";
//   - hex of the wrong length: 64 digits for an Ed25519 key, 128 for its
//     signature, 66 for a P-256 key, at most 144 (72 bytes) for its signature;
//   - a P-256 key not in compressed form or not on the curve;
//   - a signature that verifies under an Ed25519 key that [CheckPublicKey]
//     refuses (a non-canonical encoding or a point of small order: under
//     such a key a valid-looking signature needs no private key), checked
//     after the signature so that a bad signature is [ErrBadSignature]
//     whatever its key;
//
// and with [ErrBadSignature] a signature that does not verify, including a
// P-256 signature that is not strict DER (crypto/ecdsa parses it with
// cryptobyte: minimal lengths and integers, no trailing bytes).
//
// P-256 signatures are malleable: (r, n-s) verifies as well as (r, s), and
// Verify accepts both, because common signers (OpenSSL, WebCrypto, KMS) do not
// normalize s. Nothing may therefore use the stamp or signature bytes as an
// identifier, for example as a replay-cache key; use the signed request_id or
// a digest of the body. Ed25519 verification answers as crypto/ed25519's
// does, for every input (it is the same computation, with the keys that
// verified decoded once and kept: see verifyEd25519): canonical S is
// required, but it accepts small-order public keys, under which anyone can
// forge signatures (with the identity as key, R the identity and S zero verify
// for every message). [CheckPublicKey] therefore refuses them and
// non-canonical encodings, and so does [ParsePublicKey], with which clients
// and approvers are registered; [Verify] refuses a stamp that verifies under
// such a key.
package stamp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// Header is the HTTP header that carries the stamp.
const Header = "X-Nitrosign-Stamp"

// MaxHeaderSize caps the length of the header value. The largest valid stamp
// (P-256 with a 72-byte signature) is about 360 bytes.
const MaxHeaderSize = 1024

// Sizes of the encoded keys and signatures.
const (
	ed25519KeySize    = ed25519.PublicKeySize // 32
	ed25519SigSize    = ed25519.SignatureSize // 64
	p256KeySize       = 33                    // SEC 1 compressed point
	p256MinSigSize    = 8                     // SEQUENCE { INTEGER 1 byte, INTEGER 1 byte }
	p256MaxSigSize    = 72                    // SEQUENCE { INTEGER 33 bytes, INTEGER 33 bytes }
	p256UncompressedN = 65
)

// strictRawURL decodes stamps: unpadded base64url with zero trailing bits.
var strictRawURL = base64.RawURLEncoding.Strict()

// Errors that callers branch on; every error from [Verify] wraps exactly one.
var (
	// ErrMissing means the request carried no stamp at all.
	ErrMissing = errors.New("stamp: missing stamp")
	// ErrMalformed means the stamp could not be parsed.
	ErrMalformed = errors.New("stamp: malformed stamp")
	// ErrBadSignature means the stamp parsed but its signature does not
	// verify over the body with the key it names.
	ErrBadSignature = errors.New("stamp: signature does not verify")
)

// Scheme names a signature scheme.
type Scheme string

// The supported schemes.
const (
	Ed25519 Scheme = "ed25519" // Ed25519 over the raw body
	P256    Scheme = "p256"    // ECDSA P-256 over SHA-256 of the body, DER signature
)

// PublicKey is a client's public key as carried in stamps.
type PublicKey struct {
	Scheme Scheme
	// Key is the 32-byte Ed25519 key or the 33-byte compressed P-256 point.
	Key []byte
}

// String returns "ed25519:<hex>" or "p256:<hex>" with lowercase hex: a stable
// identity for the client, suitable as a registry key.
func (k PublicKey) String() string {
	var buf [80]byte // "p256:" and 66 hex digits fit
	return string(k.AppendString(buf[:0]))
}

// AppendString appends k.String() to b: with a buffer on the stack, a
// lookup keyed by the client's identity (m[string(k.AppendString(buf))])
// allocates nothing.
func (k PublicKey) AppendString(b []byte) []byte {
	b = append(b, k.Scheme...)
	b = append(b, ':')
	return hex.AppendEncode(b, k.Key)
}

// Equal reports whether k and other are the same key.
func (k PublicKey) Equal(other PublicKey) bool {
	return k.Scheme == other.Scheme && bytes.Equal(k.Key, other.Key)
}

// ParsePublicKey parses a hex-encoded public key of the given scheme, with the
// same checks as [Verify], [CheckPublicKey]'s included. Errors wrap
// [ErrMalformed].
func ParsePublicKey(scheme Scheme, hexKey string) (PublicKey, error) {
	k, _, err := parseKey(scheme, hexKey)
	if err != nil {
		return PublicKey{}, err
	}
	if k.Scheme == Ed25519 {
		if err := checkEd25519(k.Key); err != nil {
			return PublicKey{}, err
		}
	}
	return k, nil
}

// parseKey checks a key and returns it with its P-256 form when it has one.
func parseKey(scheme Scheme, hexKey string) (PublicKey, *ecdsa.PublicKey, error) {
	return parseKeyHex([]byte(scheme), []byte(hexKey))
}

// parseKeyHex is parseKey of the bytes of a stamp's fields: the key is
// decoded on the stack, and only its copy in the PublicKey allocates.
func parseKeyHex(scheme, hexKey []byte) (PublicKey, *ecdsa.PublicKey, error) {
	var size int
	var sc Scheme
	switch string(scheme) {
	case string(Ed25519):
		size, sc = ed25519KeySize, Ed25519
	case string(P256):
		size, sc = p256KeySize, P256
	default:
		return PublicKey{}, nil, fmt.Errorf("%w: unknown scheme %s, want %q or %q", ErrMalformed, quote(string(scheme)), Ed25519, P256)
	}
	var buf [p256KeySize]byte
	key, err := decodeHex(buf[:0], "public_key", hexKey, size, size)
	if err != nil {
		return PublicKey{}, nil, err
	}
	return parseKeyBytes(sc, key, false)
}

func decompressP256(key []byte) (*ecdsa.PublicKey, error) {
	if key[0] != 0x02 && key[0] != 0x03 {
		return nil, fmt.Errorf("%w: public_key: p256 key must be a compressed point (prefix 02 or 03), got prefix %02x", ErrMalformed, key[0])
	}
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), key)
	if x == nil {
		return nil, fmt.Errorf("%w: public_key: not a point on P-256", ErrMalformed)
	}
	uncompressed := make([]byte, p256UncompressedN)
	uncompressed[0] = 0x04
	x.FillBytes(uncompressed[1:33])
	y.FillBytes(uncompressed[33:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), uncompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: public_key: %v", ErrMalformed, err)
	}
	return pub, nil
}

// wire is the JSON inside the header.
type wire struct {
	Scheme    Scheme `json:"scheme"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

// Create signs body with s and returns the value for the [Header].
func Create(s Signer, body []byte) (string, error) {
	if s == nil {
		return "", errors.New("stamp: nil signer")
	}
	pub := s.PublicKey()
	if !(pub.Scheme == Ed25519 && len(pub.Key) == ed25519KeySize || pub.Scheme == P256 && len(pub.Key) == p256KeySize) {
		return "", fmt.Errorf("stamp: signer has an invalid public key (scheme %s, %d bytes)", quote(string(pub.Scheme)), len(pub.Key))
	}
	sig, err := s.SignBody(body)
	if err != nil {
		return "", fmt.Errorf("stamp: signing: %w", err)
	}
	if err := checkSigSize(pub.Scheme, len(sig)); err != nil {
		return "", fmt.Errorf("stamp: signer produced an invalid signature: %w", err)
	}
	js, err := json.Marshal(wire{
		Scheme:    pub.Scheme,
		PublicKey: hex.EncodeToString(pub.Key),
		Signature: hex.EncodeToString(sig),
	})
	if err != nil {
		return "", fmt.Errorf("stamp: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(js), nil
}

// Verify checks the stamp header against body and returns the public key that
// signed it. Every error wraps one of [ErrMissing], [ErrMalformed] or
// [ErrBadSignature]; the package documentation lists the checks. On error the
// returned key is zero: an unverified key identifies no one.
//
// Verify establishes only who signed body. The caller must still check that
// the key belongs to a registered client, and that the request is fresh and
// not a replay.
func Verify(header string, body []byte) (PublicKey, error) {
	if header == "" {
		return PublicKey{}, ErrMissing
	}
	if len(header) > MaxHeaderSize {
		return PublicKey{}, fmt.Errorf("%w: header is %d bytes, limit %d", ErrMalformed, len(header), MaxHeaderSize)
	}
	// Decoded on the stack: a header within MaxHeaderSize decodes to at
	// most 3/4 of it.
	var jsBuf [MaxHeaderSize / 4 * 3]byte
	n, err := strictRawURL.Decode(jsBuf[:], []byte(header))
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: not unpadded base64url: %v", ErrMalformed, err)
	}
	js := jsBuf[:n]
	// Re-encoded on the stack: js encodes back within MaxHeaderSize.
	var enc [MaxHeaderSize]byte
	if string(base64.RawURLEncoding.AppendEncode(enc[:0], js)) != header {
		return PublicKey{}, fmt.Errorf("%w: not canonical unpadded base64url", ErrMalformed)
	}
	// The three fields, as bytes of js: read directly from the form
	// Create writes (canonicalWire), else by strictjson.
	scheme, pubHex, sigHex, canonical := canonicalWire(js)
	if !canonical {
		// A copy: js, on the stack, must not reach the decoder's
		// reflection, which escape analysis cannot follow.
		var w wire
		if err := strictjson.Unmarshal(bytes.Clone(js), &w, MaxHeaderSize); err != nil {
			return PublicKey{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		scheme, pubHex, sigHex = []byte(w.Scheme), []byte(w.PublicKey), []byte(w.Signature)
	}
	switch {
	case len(scheme) == 0:
		return PublicKey{}, fmt.Errorf("%w: scheme is missing or empty", ErrMalformed)
	case len(pubHex) == 0:
		return PublicKey{}, fmt.Errorf("%w: public_key is missing or empty", ErrMalformed)
	case len(sigHex) == 0:
		return PublicKey{}, fmt.Errorf("%w: signature is missing or empty", ErrMalformed)
	}
	key, p256Key, err := parseKeyHex(scheme, pubHex)
	if err != nil {
		return PublicKey{}, err
	}
	var ok bool
	switch key.Scheme {
	case Ed25519:
		// The signature is decoded on the stack, which the P-256 path
		// cannot do: crypto/ecdsa keeps its input out of escape analysis's
		// sight, and would move a shared buffer to the heap.
		var sigBuf [ed25519SigSize]byte
		sig, err := decodeHex(sigBuf[:0], "signature", sigHex, ed25519SigSize, ed25519SigSize)
		if err != nil {
			return PublicKey{}, err
		}
		ok = verifyEd25519(key.Key, body, sig)
	case P256:
		sig, err := decodeHex(make([]byte, 0, p256MaxSigSize), "signature", sigHex, p256MinSigSize, p256MaxSigSize)
		if err != nil {
			return PublicKey{}, err
		}
		digest := sha256.Sum256(body)
		ok = ecdsa.VerifyASN1(p256Key, digest[:], sig)
	}
	if !ok {
		return PublicKey{}, fmt.Errorf("%w (key %s)", ErrBadSignature, key)
	}
	// A signature that verifies under a small-order key proves nothing:
	// anyone can make one. The check comes after verification so that a
	// bad signature is reported as such whatever the key.
	if key.Scheme == Ed25519 {
		if err := checkEd25519(key.Key); err != nil {
			return PublicKey{}, err
		}
	}
	return key, nil
}

func checkSigSize(scheme Scheme, n int) error {
	switch {
	case scheme == Ed25519 && n != ed25519SigSize:
		return fmt.Errorf("%w: ed25519 signature is %d bytes, want %d", ErrMalformed, n, ed25519SigSize)
	case scheme == P256 && (n < p256MinSigSize || n > p256MaxSigSize):
		return fmt.Errorf("%w: p256 signature is %d bytes, want %d to %d", ErrMalformed, n, p256MinSigSize, p256MaxSigSize)
	}
	return nil
}

// canonicalWire returns the fields of js when it is exactly the JSON
// Create writes, {"scheme":S,"public_key":K,"signature":G}, with S, K
// and G non-empty runs of ASCII letters and digits: bytes that strictjson
// reads as the same three strings, without escapes or anything else to
// check. Any other form is left to strictjson.
func canonicalWire(js []byte) (scheme, pub, sig []byte, ok bool) {
	rest, ok := bytes.CutPrefix(js, []byte(`{"scheme":"`))
	if !ok {
		return nil, nil, nil, false
	}
	var fields [3][]byte
	for i, next := range []string{`","public_key":"`, `","signature":"`, `"}`} {
		n := 0
		for n < len(rest) && ('0' <= rest[n] && rest[n] <= '9' || 'a' <= rest[n] && rest[n] <= 'z' || 'A' <= rest[n] && rest[n] <= 'Z') {
			n++
		}
		if n == 0 || !bytes.HasPrefix(rest[n:], []byte(next)) {
			return nil, nil, nil, false
		}
		fields[i], rest = rest[:n], rest[n+len(next):]
	}
	if len(rest) != 0 {
		return nil, nil, nil, false
	}
	return fields[0], fields[1], fields[2], true
}

// decodeHex appends to dst the bytes of s, which must hold between
// minBytes and maxBytes bytes in hex of either case, checking the length
// before decoding.
func decodeHex(dst []byte, field string, s []byte, minBytes, maxBytes int) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: %s: odd number of hex digits (%d)", ErrMalformed, field, len(s))
	}
	if n := len(s) / 2; n < minBytes || n > maxBytes {
		if minBytes == maxBytes {
			return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, field, n, minBytes)
		}
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d to %d", ErrMalformed, field, n, minBytes, maxBytes)
	}
	b, err := hex.AppendDecode(dst, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not hex", ErrMalformed, field)
	}
	return b, nil
}

// quote quotes an attacker-chosen string for an error message.
func quote(s string) string {
	const limit = 32
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
