// Package userdata defines what the nitrosign enclave puts in the user_data
// field of its attestation documents: a commitment to the signing keys it
// holds, the policy it enforces, its audit log and its version, so that a
// verifier can tell from the document alone which keys, under which
// policy, the attested image serves.
//
// # Format
//
// user_data is the deterministic CBOR encoding (RFC 8949 core deterministic:
// shortest forms, map keys sorted) of a map with these integer keys, all
// present:
//
//	1  format          text   "nitrosign-attestation-v1"
//	2  version         text   the enclave software version
//	3  keys_hash       bytes  32: KeysHash of the enclave's signing keys
//	4  key_count       uint   number of signing keys
//	5  policy_hash     bytes  32: SHA-256 of the active policy (policy.Hash)
//	6  policy_version  uint
//	7  audit_seq       uint   sequence number of the audit head (0: none yet)
//	8  audit_head      bytes  32: hash of the audit head record (zero: none yet)
//	9  audit_key       bytes  the audit log's public key (null: none yet, a locked enclave)
//
// KeysHash is SHA-256 over the text "nitrosign keys v1\n" followed, for
// each key in the order GET /v1/keys lists them, by "id\naddress\npath\n"
// with the address in lower-case 0x-hex. Anyone can recompute it from the
// /v1/keys answer and compare.
package userdata

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitrosign/nitrosign/internal/strictcbor"
)

// Format is the value of the format field.
const Format = "nitrosign-attestation-v1"

// MaxSize is the NSM's limit on user_data.
const MaxSize = 1024

// Field caps checked by Marshal, which keep an encoding within MaxSize: the
// audit key is a public key, the version a build's version string (as
// proto.MaxAuditKeyLen and proto.MaxVersionLen).
const (
	maxAuditKeyLen = 64
	maxVersionLen  = 128
)

// UserData is the decoded user_data of a nitrosign attestation document.
type UserData struct {
	Format        string   `cbor:"1,keyasint"`
	Version       string   `cbor:"2,keyasint"`
	KeysHash      [32]byte `cbor:"3,keyasint"`
	KeyCount      uint64   `cbor:"4,keyasint"`
	PolicyHash    [32]byte `cbor:"5,keyasint"`
	PolicyVersion uint64   `cbor:"6,keyasint"`
	AuditSeq      uint64   `cbor:"7,keyasint"`
	AuditHead     [32]byte `cbor:"8,keyasint"`
	AuditKey      []byte   `cbor:"9,keyasint"`
}

// Key is a signing key as the enclave lists it.
type Key struct {
	ID      string
	Address [20]byte
	Path    string
}

// KeysHash commits to a list of signing keys, as the package doc defines.
func KeysHash(keys []Key) [32]byte {
	var b strings.Builder
	b.WriteString("nitrosign keys v1\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\n0x%x\n%s\n", k.ID, k.Address, k.Path)
	}
	return sha256.Sum256([]byte(b.String()))
}

// Decoder caps: user_data is one map of 9 pairs holding no array or map,
// so the library's smallest caps leave room; its size is capped by MaxSize
// before it is decoded.
const (
	maxNestedLevels  = 4
	maxArrayElements = 16
	maxMapPairs      = 16
)

// The encoding writes a nil slice as null, as it always has: a locked
// enclave's user_data (no audit key) holds null for audit_key, and
// changing that would change the bytes it attests.
var (
	encMode = strictcbor.EncMode(cbor.NilContainerAsNull)
	decMode = strictcbor.DecMode(strictcbor.Limits{
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
	})
)

// Marshal encodes u (with Format filled in).
func Marshal(u UserData) ([]byte, error) {
	u.Format = Format
	if len(u.AuditKey) > maxAuditKeyLen || len(u.Version) > maxVersionLen {
		return nil, errors.New("userdata: field too long")
	}
	b, err := encMode.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("userdata: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("userdata: %d bytes, the NSM takes at most %d", len(b), MaxSize)
	}
	return b, nil
}

// Parse decodes user_data strictly: deterministic encoding only, every field
// present, no unknown fields, the format this package knows.
func Parse(b []byte) (*UserData, error) {
	if len(b) == 0 {
		return nil, errors.New("userdata: empty (not a nitrosign attestation)")
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("userdata: %d bytes, limit %d", len(b), MaxSize)
	}
	var u UserData
	if err := decMode.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("userdata: %w", err)
	}
	re, err := encMode.Marshal(u)
	if err != nil || !bytes.Equal(re, b) {
		return nil, errors.New("userdata: not the deterministic encoding of a complete user_data")
	}
	if u.Format != Format {
		return nil, fmt.Errorf("userdata: format %q, want %q", u.Format, Format)
	}
	return &u, nil
}
